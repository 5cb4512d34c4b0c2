"""The I/O edge: Microsoft Graph, Table and Queue Storage, the token store, MSAL, crypto and
logging. May import ``core.plan`` and ``core.config``; never ``core.app`` or ``core.cli``."""
