"""The composition root: the only place that reads the environment and builds clients.

Owns: loading settings (process environment, else ``local.settings.json`` ``Values``),
and building each dependency once per process (storage, sealer, MSAL factory), lazily,
so cold start stays light and a bad setting gives one clear message, never a stack trace
at the first request (SPEC section 2).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

from core.adapters.auth import FlowStore, MsalFactory, msal_factory
from core.adapters import telemetry
from core.adapters.http import VerifyingSession
from core.adapters.logs import quiet_libraries
from core.adapters.crypto import Sealer
from core.config.settings import SETTING_HELP, STORAGE_SETTINGS, Settings, parse_settings
from core.adapters.storage import Storage
from core.adapters.users import UserStore

ROOT = Path(__file__).resolve().parents[2]
_IDENTITY_KEYS = (
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__clientId",
)


def raw_settings(environ: Mapping[str, str] | None = None, settings_file: Path | None = None) -> dict[str, str]:
    """Setting values: the environment wins over local.settings.json ``Values``."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    path = settings_file or Path(environ.get("OUTLOOK_SYNC_SETTINGS_FILE", ROOT / "local.settings.json"))
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        values.update({k: str(v) for k, v in (data.get("Values") or {}).items()})
    for name in (*SETTING_HELP, *_IDENTITY_KEYS):
        if name in environ:
            values[name] = environ[name]
    return values


def load_settings(environ: Mapping[str, str] | None = None, only: Collection[str] | None = None) -> Settings:
    """Validated settings; ``only`` checks just those (e.g. ``STORAGE_SETTINGS``)."""
    return parse_settings(raw_settings(environ), file_exists=os.path.isfile, only=only)


def configure_telemetry() -> bool:
    """OpenTelemetry to Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set."""
    return telemetry.configure()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class App:
    """Every dependency of the function app, built once from settings."""

    settings: Settings
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        quiet_libraries()  # MSAL logs the code redemption at DEBUG (SPEC section 7)

    @cached_property
    def storage(self) -> Storage:
        storage = Storage(self.settings)
        storage.ensure()
        return storage

    #: Where wrapped token-encryption keys are unwrapped (Key Vault; tests stand in).
    unwrapper: Callable[[], Any] | None = None

    @cached_property
    def sealer(self) -> Sealer:
        """The token-cache sealer: wrapped keys (unwrapped with Key Vault, envelope
        encryption) first, then any plain TokenEncryptionKey keys (local runs, migration)."""
        return Sealer(self.encryption_keys())

    def encryption_keys(self) -> tuple[tuple[str, bytes], ...]:
        settings = self.settings
        if not settings.wrapped_keys:
            return settings.encryption_keys
        from core.adapters import keyvault

        unwrapper = self.unwrapper or (lambda: keyvault.key_vault_unwrapper(
            keyvault.credential(settings.storage.client_id or None)))
        return keyvault.unwrap_keys(settings.key_vault_key, settings.wrapped_keys, unwrapper) + settings.encryption_keys

    @cached_property
    def session(self) -> VerifyingSession:
        """The process's one HTTP session (connection pool) for Graph and the authority."""
        return VerifyingSession(self.settings.verify)

    @cached_property
    def make_msal(self) -> MsalFactory:
        return msal_factory(self.settings, self.session)

    @cached_property
    def users(self) -> UserStore:
        return UserStore(self.storage)

    @cached_property
    def flows(self) -> FlowStore:
        return FlowStore(self.storage, self.sealer)


_lock = threading.Lock()
_app: App | None = None


def get_app() -> App:
    """The process-wide App (settings are validated on first use)."""
    global _app
    with _lock:
        if _app is None:
            _app = App(load_settings())
        return _app


def storage_app() -> App:
    """An App for reading stored state (the CLI's read-only commands): the installed one,
    or one built from the storage settings alone, so no client secret or encryption key
    is needed. It is not installed: a later ``get_app()`` still validates everything."""
    with _lock:
        if _app is not None:
            return _app
    return App(load_settings(only=STORAGE_SETTINGS))


def set_app(app: App | None) -> None:
    """Install an App (tests and the local host build their own)."""
    global _app
    with _lock:
        _app = app
