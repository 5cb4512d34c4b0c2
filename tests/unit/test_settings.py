"""Settings (SPEC section 2): one place validates them, each problem names its setting."""

import pytest

from core.adapters.crypto import new_key
from core.config.settings import SettingsError, mask, parse_settings

GOOD = {
    "OutlookApiClientID": "11111111-2222-3333-4444-555555555555",
    "OutlookApiClientSecret": "s3cret-value",
    "SAMLTenantID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    "EnableCalendarSync": "true",
    "SiteUrl": "https://intranet.example.com/",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "TokenEncryptionKey": new_key("k1"),
}


def problems_of(values):
    with pytest.raises(SettingsError) as info:
        parse_settings(values)
    return {p.setting: p.message for p in info.value.problems}


def test_valid_settings_give_the_redirect_uri_and_single_tenant_authority():
    s = parse_settings(GOOD)
    assert s.redirect_uri == "https://intranet.example.com/oauth2/outlook/callback"
    assert s.authority == "https://login.microsoftonline.com/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert s.single_tenant and s.sync_enabled
    assert s.sync_schedule == "0 */15 * * * *"
    assert s.graph_base_url == "https://graph.microsoft.com/v1.0"


def test_multitenant_uses_the_organizations_authority_and_needs_no_tenant():
    values = dict(GOOD, UseSAMLtenantIDForOutlook="false", OutlookAllowedTenantIDs=OTHER_TENANT)
    del values["SAMLTenantID"]
    assert parse_settings(values).authority.endswith("/organizations")


OTHER_TENANT = "99999999-8888-7777-6666-555555555555"


def test_multitenant_mode_without_a_tenant_allowlist_is_invalid():
    """Issue 10: UseSAMLtenantIDForOutlook=false alone would let every organization in."""
    problems = problems_of(dict(GOOD, UseSAMLtenantIDForOutlook="false"))
    assert set(problems) == {"OutlookAllowedTenantIDs"} and "UseSAMLtenantIDForOutlook is false" in problems["OutlookAllowedTenantIDs"]
    assert "not a tenant id" in problems_of(dict(GOOD, OutlookAllowedTenantIDs="contoso.com"))["OutlookAllowedTenantIDs"]


def test_multitenant_mode_allows_only_the_listed_tenants_and_the_home_tenant():
    s = parse_settings(dict(GOOD, UseSAMLtenantIDForOutlook="false", OutlookAllowedTenantIDs=f" {OTHER_TENANT.upper()} ;"))
    assert s.tenant_allowed(OTHER_TENANT) and s.tenant_allowed(GOOD["SAMLTenantID"])
    assert not s.tenant_allowed("12345678-1234-1234-1234-123456789012") and not s.tenant_allowed("")
    single = parse_settings(dict(GOOD, OutlookAllowedTenantIDs=OTHER_TENANT))
    assert single.tenant_allowed(GOOD["SAMLTenantID"]) and not single.tenant_allowed(OTHER_TENANT)


def test_account_matching_is_on_by_default_and_can_be_relaxed():
    assert parse_settings(GOOD).require_matching_account is True
    assert parse_settings(dict(GOOD, RequireMatchingOutlookAccount="false")).require_matching_account is False
    assert "true or false" in problems_of(dict(GOOD, RequireMatchingOutlookAccount="maybe"))["RequireMatchingOutlookAccount"]


def test_sync_is_disabled_by_default():
    values = dict(GOOD)
    del values["EnableCalendarSync"]
    assert parse_settings(values).sync_enabled is False


def test_every_missing_setting_is_named_at_once():
    found = problems_of({})
    for name in ("OutlookApiClientID", "OutlookApiClientSecret", "SAMLTenantID", "SiteUrl", "AzureWebJobsStorage",
                 "TokenEncryptionKey"):
        assert name in found


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("OutlookApiClientID", "not-a-guid", "GUID"),
        ("SAMLTenantID", "contoso.com", "GUID"),
        ("UseSAMLtenantIDForOutlook", "maybe", "true or false"),
        ("SiteUrl", "ftp://x", "https://"),
        ("AuthorityHost", "http://login.example.com", "MSAL refuses"),
        ("TokenEncryptionKey", "k1:c2hvcnQ", "32 bytes"),
        ("TokenEncryptionKey", "nokid", "kid:base64url"),
        ("SyncSchedule", "*/5 * * *", "six fields"),
        ("MaxDeleteShare", "2", "at most 1"),
        ("SyncIntervalMinutes", "0", "between 1 and 1440"),
        ("NotificationUrl", "http://app.example.com", "https://"),
        ("NotificationUrl", "https://app.example.com/?x=1", "without ? or #"),
        ("SubscriptionMaxMinutes", "20000", "between 45 and 10080"),
        ("SubscribedSyncIntervalMinutes", "0", "between 1 and 1440"),
        ("OutlookApiClientSecret", "@Microsoft.KeyVault(SecretUri=https://kv/secrets/x)", "unresolved Key Vault"),
    ],
)
def test_invalid_values_are_reported_with_their_setting(name, value, fragment):
    assert fragment in problems_of(dict(GOOD, **{name: value}))[name]


def test_a_missing_ca_bundle_file_is_a_problem():
    with pytest.raises(SettingsError) as info:
        parse_settings(dict(GOOD, TlsCaBundle="/nowhere/ca.pem"), file_exists=lambda p: False)
    found = {p.setting: p.message for p in info.value.problems}
    assert "file not found" in found["TlsCaBundle"]


def test_identity_based_storage_settings_are_accepted():
    values = dict(GOOD)
    del values["AzureWebJobsStorage"]
    values["AzureWebJobsStorage__tableServiceUri"] = "https://acct.table.core.windows.net"
    values["AzureWebJobsStorage__queueServiceUri"] = "https://acct.queue.core.windows.net"
    s = parse_settings(values)
    assert s.storage.uses_identity and s.storage.table_uri.startswith("https://acct.table")


def test_secrets_are_masked_when_shown():
    assert mask("OutlookApiClientSecret", "s3cret-value") == "(set, 12 characters)"
    assert "s3cret" not in mask("AzureWebJobsStorage", "AccountKey=s3cret")
    assert mask("SiteUrl", "https://x") == "https://x"
    assert mask("TlsCaBundle", "") == "(not set)"


# -- SyncSchedule: NCRONTAB as Azure Functions reads it, checked by croniter (issue 15) ------


@pytest.mark.parametrize("schedule", ["0 */15 * * * *", "30 0 9 * * MON-FRI", "0 0 6 1 Jan *", "*/10 * * * * *",
                                      "0 0 0 * * 0,6", "0 5-55/10 8-18 * * 1-5"])
def test_valid_ncrontab_schedules_pass(schedule):
    assert parse_settings(dict(GOOD, SyncSchedule=schedule)).sync_schedule == schedule


@pytest.mark.parametrize("schedule,fragment", [
    ("99 99 99 99 99 99", "out of range"),
    ("0 60 * * * *", "out of range"),
    ("0 0 25 * * *", "out of range"),
    ("*/15 * * * *", "five fields; Azure Functions needs six, seconds first (e.g. '0 */15 * * * *')"),
    ("0 0 0 31 2 *", "never fires"),
    ("0 0 0 L * *", "does not allow"),
    ("0 0 0 ? * *", "does not allow"),
    ("00:15:00", "six fields"),
])
def test_invalid_ncrontab_schedules_are_named(schedule, fragment):
    assert fragment in problems_of(dict(GOOD, SyncSchedule=schedule))["SyncSchedule"]


def test_storage_only_settings_need_no_secret_and_no_key():
    """The CLI's read-only commands (issue 15): only the storage settings are checked."""
    from core.config.settings import STORAGE_SETTINGS

    values = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "TokenEncryptionKey": "garbage"}
    settings = parse_settings(values, only=STORAGE_SETTINGS)
    assert settings.storage.connection_string == "UseDevelopmentStorage=true" and settings.encryption_keys == ()
    with pytest.raises(SettingsError) as info:
        parse_settings({"StorageNamePrefix": "Bad-Prefix"}, only=STORAGE_SETTINGS)
    assert {p.setting for p in info.value.problems} == {"AzureWebJobsStorage", "StorageNamePrefix"}


def test_key_ids_are_checked_the_same_way_by_keygen_and_the_setting():
    from core.config.settings import kid_problem

    assert kid_problem("k-2026_01") is None
    assert "1-32 letters" in kid_problem("bad kid!")
    assert "1-32 letters" in problems_of(dict(GOOD, TokenEncryptionKey="bad kid!:" + "A" * 43))["TokenEncryptionKey"]


def test_queue_names_default_to_the_documented_ones():
    """Issue 11 item 8: defaults unchanged (sync-jobs, writes, outbound), poison twins follow."""
    s = parse_settings(GOOD)
    assert [s.queue_name(q) for q in ("sync-jobs", "writes", "outbound")] == ["sync-jobs", "writes", "outbound"]
    assert s.queue_name("outbound-poison") == "outbound-poison"


def test_queue_names_come_from_their_settings_with_their_poison_twins():
    s = parse_settings(dict(GOOD, SyncJobsQueue="t1-sync-jobs", WritesQueue="t1-writes", OutboundQueue="t1-outbound"))
    assert [s.queue_name(q) for q in ("sync-jobs", "writes-poison", "outbound")] == [
        "t1-sync-jobs", "t1-writes-poison", "t1-outbound"]
    assert s.queue_name("not-an-app-queue") == "not-an-app-queue"


@pytest.mark.parametrize("name", ["Sync-Jobs", "ab", "a--b", "-abc", "abc-", "a" * 57, "with space"])
def test_a_queue_name_azure_would_refuse_is_a_problem_naming_its_setting(name):
    assert "lower-case letters" in problems_of(dict(GOOD, OutboundQueue=name))["OutboundQueue"]


def test_the_clis_storage_only_checks_include_the_queue_names():
    from core.config.settings import STORAGE_SETTINGS

    values = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "OutboundQueue": "cf-outbound"}
    assert parse_settings(values, only=STORAGE_SETTINGS).queue_name("outbound-poison") == "cf-outbound-poison"
    assert "OutboundQueue" in {p.setting for p in pytest.raises(SettingsError, parse_settings,
                                                                dict(values, OutboundQueue="Bad"),
                                                                only=STORAGE_SETTINGS).value.problems}


def test_two_queue_settings_naming_one_queue_is_a_problem():
    assert "another queue setting" in problems_of(dict(GOOD, WritesQueue="sync-jobs"))["WritesQueue"]


def test_notifications_are_off_by_default_and_the_endpoints_follow_the_notification_url():
    """Issue 13: NotificationUrl is the function app's own URL (not SiteUrl)."""
    off = parse_settings(GOOD)
    assert not off.notifications_enabled and off.subscription_max_minutes == 4230
    assert off.subscribed_sync_interval_minutes == 60
    on = parse_settings(dict(GOOD, NotificationUrl="https://app.azurewebsites.net/", SubscriptionMaxMinutes="10080"))
    assert on.notifications_enabled and on.subscription_max_minutes == 10080
    assert on.notification_endpoint == "https://app.azurewebsites.net/oauth2/outlook/notifications"
    assert on.lifecycle_endpoint == "https://app.azurewebsites.net/oauth2/outlook/lifecycle"
