"""Envelope encryption of the token-encryption keys (issue 15, AZURE.md section 5).

Key Vault's unwrapKey/wrapKey with RSA-OAEP-256 is played by a local RSA key with the
same algorithm (cryptography's OAEP with SHA-256), so the format of the entries, the
order of the keys, the per-process caching and the errors are tested without Azure.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from core.adapters import keyvault
from core.adapters.crypto import Sealer, new_key
from core.app.bootstrap import App
from core.config.settings import SettingsError, parse_settings, parse_wrapped_keys

VAULT_KEY = "https://kv-outlook-abc.vault.azure.net/keys/TokenEncryptionKek"
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


class LocalKeyVault:
    """Two versions of one RSA key, wrapping and unwrapping as Key Vault does."""

    def __init__(self):
        self.versions = {v: rsa.generate_private_key(public_exponent=65537, key_size=2048) for v in ("v1", "v2")}
        self.current = "v2"
        self.unwraps: list[str] = []

    def wrap(self, key_id: str, plaintext: bytes) -> tuple[str, bytes]:
        assert key_id == VAULT_KEY  # versionless: the current version wraps
        return f"{key_id}/{self.current}", self.versions[self.current].public_key().encrypt(plaintext, OAEP)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        self.unwraps.append(key_id)
        version = key_id.rsplit("/", 1)[-1]
        return self.versions[version].decrypt(wrapped, OAEP)


def base_values(**extra: str) -> dict[str, str]:
    return {
        "OutlookApiClientID": "11111111-1111-1111-1111-111111111111", "OutlookApiClientSecret": "s",
        "SAMLTenantID": "22222222-2222-2222-2222-222222222222", "SiteUrl": "https://intranet.example.com",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true", **extra,
    }


def test_a_wrapped_key_names_its_key_version_and_opens_only_with_key_vault():
    kv = LocalKeyVault()
    entry = keyvault.wrap_new_key("k2", VAULT_KEY, kv.wrap)
    kid, version, wrapped = entry.split(":", 2)
    assert (kid, version) == ("k2", "v2")
    assert len(base64.urlsafe_b64decode(wrapped + "==")) == 256  # RSA-2048 ciphertext, not the 32-byte key
    (parsed,) = parse_wrapped_keys(entry)
    assert len(kv.unwrap(f"{VAULT_KEY}/{parsed[1]}", parsed[2])) == 32


def test_the_app_seals_with_the_first_wrapped_key_and_still_opens_the_plain_ones():
    """Migration: wrapped k2 first (seals), the plain k1 of the old deployment still opens."""
    kv = LocalKeyVault()
    old = new_key("k1")
    sealed_before = Sealer(((old.split(":")[0], base64.urlsafe_b64decode(old.split(":")[1] + "=")),)).seal(
        b"cache", owner="1001")
    kv.current = "v1"
    older = keyvault.wrap_new_key("k3", VAULT_KEY, kv.wrap)  # wrapped by an older key version
    kv.current = "v2"
    newer = keyvault.wrap_new_key("k2", VAULT_KEY, kv.wrap)
    settings = parse_settings(base_values(TokenEncryptionKeyWrapped=f"{newer},{older}",
                                          TokenEncryptionKeyVaultKey=VAULT_KEY, TokenEncryptionKey=old))
    app = App(settings, unwrapper=lambda: kv.unwrap)
    assert app.sealer.current_kid == "k2"
    assert app.sealer.open(sealed_before, owner="1001") == b"cache"
    assert app.sealer.open(app.sealer.seal(b"new", owner="1001"), owner="1001") == b"new"
    assert kv.unwraps == [f"{VAULT_KEY}/v2", f"{VAULT_KEY}/v1"]
    # Once per process: another App (same settings) does not ask Key Vault again.
    assert App(settings, unwrapper=lambda: kv.unwrap).sealer.current_kid == "k2"
    assert len(kv.unwraps) == 2


def test_wrapped_keys_need_the_key_vault_key_and_make_the_plain_key_optional():
    with pytest.raises(SettingsError) as err:
        parse_settings(base_values(TokenEncryptionKeyWrapped="k2:v2:AAAA"))
    assert [p.setting for p in err.value.problems] == ["TokenEncryptionKeyVaultKey"]
    with pytest.raises(SettingsError) as err:
        parse_settings(base_values(TokenEncryptionKeyWrapped="k2:v2:AAAA",
                                   TokenEncryptionKeyVaultKey="https://kv.vault.azure.net/secrets/x"))
    assert "versionless Key Vault key URI" in str(err.value)
    with pytest.raises(SettingsError) as err:
        parse_settings(base_values())
    assert [p.setting for p in err.value.problems] == ["TokenEncryptionKey"]  # local runs: the plain key


@pytest.mark.parametrize("raw,reason", [
    ("k2:AAAA", "kid:keyVersion:wrapped-key"),
    ("bad kid!:v2:AAAA", "key id"),
    ("k2:v2:AAAA,k2:v1:BBBB", "appears twice"),
    ("", "no key given"),
])
def test_bad_wrapped_entries_are_refused_with_the_reason(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_wrapped_keys(raw)


def test_an_entry_key_vault_refuses_is_reported_by_name_and_key_version():
    settings = parse_settings(base_values(TokenEncryptionKeyWrapped="k9:v404:AAAA", TokenEncryptionKeyVaultKey=VAULT_KEY))

    def refuse(key_id: str, wrapped: bytes) -> bytes:
        raise PermissionError("Forbidden: the identity has no Key Vault Crypto User role")

    with pytest.raises(keyvault.KeyVaultError, match=r"'k9'.*TokenEncryptionKek/v404.*Crypto User"):
        App(settings, unwrapper=lambda: refuse).encryption_keys()


def test_keygen_refuses_a_wrap_key_that_is_not_a_key_vault_key_uri(capsys):
    from core.cli.main import main

    assert main(["keygen", "--kid", "k2", "--wrap-with", "https://kv.vault.azure.net/secrets/TokenEncryptionKey"]) == 2
    assert "versionless Key Vault key URI" in capsys.readouterr().err
