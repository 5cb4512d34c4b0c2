"""Local stand-in for Entra ID (v2 OAuth endpoints) and Microsoft Graph v1.0 calendars.

A test oracle for the Outlook sync app: it never imports the app (``core/``). Start it
in-process with ``emulator.server.EmulatorServer`` or as ``python -m emulator``; drive it
with ``emulator.control.EmulatorControl``. See ``emulator/README.md``.
"""
