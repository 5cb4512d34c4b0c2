"""The pure decisions of connect (issue 10): which account, which mailbox, where back to."""

import pytest

from core.plan.connect import (
    NEW,
    REFUSE,
    REPLACE,
    SAME_MAILBOX,
    WRONG_ACCOUNT,
    ConnectInputError,
    ExpectedAccount,
    check_account,
    check_return_url,
    expected_account,
    reconnect_decision,
)

OID = "11111111-2222-3333-4444-555555555555"
OTHER_OID = "99999999-2222-3333-4444-555555555555"
TID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SITE = "https://intranet.example.com"


def test_the_expected_sign_in_name_is_compared_case_insensitively():
    expected = ExpectedAccount(upn="Alice@Contoso.com")
    assert check_account(expected, {"preferred_username": "alice@contoso.COM", "oid": OID}, match_upn=True) is None
    assert check_account(expected, {"preferred_username": "mallory@contoso.com", "oid": OID}, match_upn=True) == WRONG_ACCOUNT
    assert check_account(expected, {"oid": OID}, match_upn=True) == WRONG_ACCOUNT  # no name in the token: refused


def test_an_expected_object_id_is_always_compared_even_when_names_are_relaxed():
    expected = ExpectedAccount(upn="alice@contoso.com", oid=OID)
    assert check_account(expected, {"preferred_username": "ALICE@contoso.com", "oid": OID.upper()}, match_upn=True) is None
    assert check_account(expected, {"preferred_username": "alice@contoso.com", "oid": OTHER_OID}, match_upn=False) == WRONG_ACCOUNT
    # relaxed: the sign-in name may differ from Communifire's email, the object id still binds
    assert check_account(expected, {"preferred_username": "a.smith@corp.example", "oid": OID}, match_upn=False) is None
    assert check_account(ExpectedAccount(upn="alice@contoso.com"), {"preferred_username": "x@y.z"}, match_upn=False) is None


def test_connect_needs_an_expected_account_unless_matching_is_relaxed():
    with pytest.raises(ConnectInputError, match="'upn'"):
        expected_account("", None, required=True)
    assert expected_account(None, None, required=False).empty
    assert expected_account(" alice@contoso.com ", OID.upper(), required=True) == ExpectedAccount("alice@contoso.com", OID)
    with pytest.raises(ConnectInputError, match="sign-in name"):
        expected_account("not an address", None, required=True)
    with pytest.raises(ConnectInputError, match="GUID"):
        expected_account(None, "123", required=True)


def test_a_second_connect_refreshes_the_same_mailbox_and_replaces_another_only_when_asked():
    assert reconnect_decision(None, None, OID, TID, replace=False) == NEW
    assert reconnect_decision(OID, TID, OID.upper(), TID.upper(), replace=False) == SAME_MAILBOX
    assert reconnect_decision(OID, TID, OTHER_OID, TID, replace=False) == REFUSE
    assert reconnect_decision(OID, TID, OTHER_OID, TID, replace=True) == REPLACE
    assert reconnect_decision("", TID, OID, TID, replace=False) == REFUSE


@pytest.mark.parametrize("url", [
    "https://intranet.example.com/calendar?view=month#today",
    "https://INTRANET.example.com:443/calendar",
])
def test_a_return_url_on_the_site_origin_is_kept(url):
    assert check_return_url(url, SITE) == url


def test_a_path_is_taken_on_the_site_origin_and_empty_means_none():
    assert check_return_url("/calendar/my", SITE + "/") == "https://intranet.example.com/calendar/my"
    assert check_return_url("", SITE) == "" and check_return_url(None, SITE) == ""


@pytest.mark.parametrize("url", [
    "https://evil.example.com/calendar",
    "http://intranet.example.com/calendar",  # another scheme
    "https://intranet.example.com:8443/calendar",  # another port
    "//evil.example.com/calendar",  # scheme-relative
    "/\\evil.example.com",  # browsers read a backslash as a slash
    "https://intranet.example.com@evil.example.com/",
    "https://user:pw@intranet.example.com/",
    "javascript:alert(1)",
    "https://intranet.example.com.evil.example.com/",
    "/calendar\r\nSet-Cookie: x=1",
    "calendar",
])
def test_a_return_url_anywhere_else_is_refused(url):
    with pytest.raises(ConnectInputError, match="return_url"):
        check_return_url(url, SITE)
