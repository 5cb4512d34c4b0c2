"""The local development host: Azurite, the Outlook emulator and the function app's own
functions run together on this machine (the stand-in for Core Tools and Azure)."""
