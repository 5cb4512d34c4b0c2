"""Envelope encryption of the token-encryption keys with a Key Vault key (the shell).

Owns: turning ``TokenEncryptionKeyWrapped`` entries (``kid:keyVersion:wrapped``) into the
AES-256 data keys the ``Sealer`` uses, with Key Vault's ``unwrapKey`` (RSA-OAEP-256) on
the key named by ``TokenEncryptionKeyVaultKey`` at that version, once per process; and
the reverse for ``outlook-sync keygen --wrap-with``: a fresh data key wrapped by the
current version of the key, printed only wrapped.

The data keys are never in an app setting, a Key Vault secret or an admin's shell: only
Key Vault can unwrap them, and only for an identity with Key Vault Crypto User on that
key (the app's managed identity; infra/app/rbac.bicep). A wrapped entry names the key
version that wrapped it, so rotating the Key Vault key (a new version) leaves older
entries readable until they are re-wrapped (docs/operations.md, "Rotating the encryption
key"). Local runs keep the plain ``TokenEncryptionKey`` and never come here.
"""

from __future__ import annotations

import base64
import os
import threading
from typing import Any, Callable, Protocol

#: The wrap algorithm: RSA-OAEP with SHA-256 (Key Vault's "RSA-OAEP-256").
ALGORITHM = "RSA-OAEP-256"
DATA_KEY_BYTES = 32


class KeyVaultError(RuntimeError):
    """A wrapped key cannot be unwrapped (no access, key disabled, wrong version)."""


class Unwrapper(Protocol):
    def __call__(self, key_id: str, wrapped: bytes) -> bytes: ...


def credential(client_id: str | None = None) -> Any:
    """The app's managed identity in Azure (its client id), else DefaultAzureCredential (az login)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else DefaultAzureCredential()


def key_vault_unwrapper(cred: Any) -> Unwrapper:
    """Unwrap with Key Vault (azure-keyvault-keys), one client per key version."""
    from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

    def unwrap(key_id: str, wrapped: bytes) -> bytes:
        return CryptographyClient(key_id, cred).unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key

    return unwrap


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


_cache: dict[tuple[str, tuple[tuple[str, str, bytes], ...]], tuple[tuple[str, bytes], ...]] = {}
_lock = threading.Lock()


def unwrap_keys(vault_key: str, wrapped: tuple[tuple[str, str, bytes], ...],
                unwrapper: Callable[[], Unwrapper]) -> tuple[tuple[str, bytes], ...]:
    """The data keys, in the configured order; Key Vault is asked once per process.

    Raises:
        KeyVaultError: naming the entry and why (no role, key disabled or deleted...).
    """
    cache_key = (vault_key, wrapped)
    with _lock:
        if cache_key in _cache:
            return _cache[cache_key]
        unwrap = unwrapper()
        keys = []
        for kid, version, blob in wrapped:
            key_id = f"{vault_key}/{version}"
            try:
                key = unwrap(key_id, blob)
            except Exception as exc:  # noqa: BLE001 - any SDK/auth error: one clear message
                raise KeyVaultError(f"TokenEncryptionKeyWrapped entry {kid!r} could not be unwrapped with "
                                    f"{key_id}: {type(exc).__name__}: {exc}") from exc
            if len(key) != DATA_KEY_BYTES:
                raise KeyVaultError(f"TokenEncryptionKeyWrapped entry {kid!r} is not a 32-byte key once unwrapped")
            keys.append((kid, key))
        _cache[cache_key] = tuple(keys)
        return _cache[cache_key]


class Wrapper(Protocol):
    def __call__(self, key_id: str, plaintext: bytes) -> tuple[str, bytes]: ...


def key_vault_wrapper(cred: Any) -> Wrapper:
    """Wrap with Key Vault; answers (versioned key id that wrapped, wrapped bytes)."""
    from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

    def wrap(key_id: str, plaintext: bytes) -> tuple[str, bytes]:
        result = CryptographyClient(key_id, cred).wrap_key(KeyWrapAlgorithm.rsa_oaep_256, plaintext)
        return str(result.key_id or ""), result.encrypted_key

    return wrap


def wrap_new_key(kid: str, vault_key: str, wrap: Wrapper,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh data key wrapped by the current version of ``vault_key``: one
    ``kid:keyVersion:wrapped`` entry for TokenEncryptionKeyWrapped. The plain key exists
    only in this process's memory."""
    key_id, wrapped = wrap(vault_key.rstrip("/"), random_bytes(DATA_KEY_BYTES))
    version = key_id.rstrip("/").rsplit("/", 1)[-1]
    if not version or version == vault_key.rstrip("/").rsplit("/", 1)[-1]:
        raise KeyVaultError(f"Key Vault did not say which version of {vault_key} wrapped the key")
    return f"{kid}:{version}:{_b64e(wrapped)}"
