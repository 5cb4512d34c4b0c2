"""Encryption at rest for token caches and pending auth flows (SPEC section 7).

Owns: the sealed-value format ``v1.<kid>.<base64url(nonce || AES-256-GCM ciphertext)>``.
The associated data binds a value to its owner (e.g. the user id), so a sealed cache
copied onto another user's row does not open. Several keys may be configured; the first
seals, any of them opens (key rotation: ``outlook-sync rotate-key``). Pure: the nonce
source is a parameter.
"""

from __future__ import annotations

import base64
import os
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


class CryptoError(ValueError):
    """A sealed value cannot be opened (wrong key, wrong owner, or corrupt)."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key(kid: str, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A new key in the TokenEncryptionKey format."""
    return f"{kid}:{_b64e(random_bytes(32))}"


class Sealer:
    """Seals and opens values with the configured keys (first one seals)."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...], random_bytes: Callable[[int], bytes] = os.urandom):
        if not keys:
            raise CryptoError("no encryption key configured")
        self._keys = dict(keys)
        self._current = keys[0][0]
        self._random = random_bytes

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def kids(self) -> tuple[str, ...]:
        """The configured key ids, the sealing one first."""
        return tuple(self._keys)

    def has_key(self, kid: str) -> bool:
        return kid in self._keys

    def seal(self, plaintext: bytes, owner: str) -> str:
        nonce = self._random(12)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, plaintext, owner.encode("utf-8"))
        return f"{_VERSION}.{self._current}.{_b64e(nonce + sealed)}"

    def kid_of(self, token: str) -> str:
        parts = token.split(".", 2)
        if len(parts) != 3 or parts[0] != _VERSION:
            raise CryptoError("not a sealed value of a known version")
        return parts[1]

    def open(self, token: str, owner: str) -> bytes:
        kid = self.kid_of(token)
        key = self._keys.get(kid)
        if key is None:
            raise CryptoError(f"sealed with key {kid!r}, which is no longer configured in TokenEncryptionKey")
        raw = _b64d(token.split(".", 2)[2])
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], owner.encode("utf-8"))
        except InvalidTag as exc:
            raise CryptoError(f"sealed value does not open with key {kid!r} for this owner") from exc

    def needs_reseal(self, token: str) -> bool:
        return self.kid_of(token) != self._current
