"""Token caches are encrypted at rest and bound to their owner (SPEC section 7)."""

import pytest

from core.adapters.crypto import CryptoError, Sealer, new_key
from core.config.settings import parse_encryption_keys


def sealer(*raw):
    return Sealer(parse_encryption_keys(",".join(raw)))


def test_a_sealed_value_opens_for_its_owner_and_hides_the_plaintext():
    s = sealer(new_key("k1"))
    token = s.seal(b'{"refresh_token": "rt-secret"}', owner="user-1")
    assert "rt-secret" not in token and token.startswith("v1.k1.")
    assert s.open(token, owner="user-1") == b'{"refresh_token": "rt-secret"}'


def test_a_value_sealed_for_one_user_does_not_open_for_another():
    s = sealer(new_key("k1"))
    with pytest.raises(CryptoError):
        s.open(s.seal(b"x", owner="user-1"), owner="user-2")


def test_rotation_new_key_first_still_opens_old_values_and_reseals_them():
    old = new_key("k1")
    before = sealer(old).seal(b"cache", owner="u")
    after = sealer(new_key("k2"), old)
    assert after.open(before, owner="u") == b"cache"
    assert after.needs_reseal(before)
    assert not after.needs_reseal(after.seal(b"cache", owner="u"))


def test_a_value_sealed_with_a_removed_key_names_that_key():
    before = sealer(new_key("k1")).seal(b"cache", owner="u")
    with pytest.raises(CryptoError, match="k1"):
        sealer(new_key("k2")).open(before, owner="u")


def test_tampering_is_detected():
    s = sealer(new_key("k1"))
    token = s.seal(b"cache", owner="u")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(CryptoError):
        s.open(tampered, owner="u")
