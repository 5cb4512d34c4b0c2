"""The app's settings (SPEC section 2), parsed and validated in one place.

Owns: the names, defaults and validation of every setting. ``parse_settings`` is pure:
it takes the raw string mapping (app settings / ``local.settings.json`` ``Values``) and
returns either a ``Settings`` value or the list of problems, each naming its setting.
Reading the environment happens in ``core.app.bootstrap``, the composition root.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable, Collection, Mapping
from urllib.parse import urlsplit

from core.plan.connect import url_origin

DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_SCHEDULE = "0 */15 * * * *"
CALLBACK_PATH = "/oauth2/outlook/callback"
#: Graph change notifications (GRAPH.md section 7): the two anonymous endpoints, under
#: the same route prefix rules as the callback.
NOTIFICATIONS_PATH = "/oauth2/outlook/notifications"
LIFECYCLE_PATH = "/oauth2/outlook/lifecycle"
#: Outlook event subscriptions live at most 10,080 minutes per the current Graph docs,
#: 4,230 per older versions of the same page (GRAPH.md 7): the safe figure is the default.
DEFAULT_SUBSCRIPTION_MAX_MINUTES = 4230
#: Delegated Graph permissions (MSAL adds openid, profile and offline_access itself).
SCOPES: tuple[str, ...] = ("Calendars.ReadWrite", "User.Read")

#: The app's queues: logical name (used in code) -> the app setting naming the real queue.
#: The queue triggers bind the same settings (``%SyncJobsQueue%``...), so the host and the
#: app always agree, and each test stack or side-by-side install can use its own queues.
#: Every queue the app adds follows this pattern; ``<name>-poison`` is its poison twin.
QUEUE_SETTINGS: dict[str, str] = {
    "sync-jobs": "SyncJobsQueue",
    "writes": "WritesQueue",
    "outbound": "OutboundQueue",
    # the feeds to Communifire (issue 12, docs/changes.md): written by the app, read by
    # Communifire's backend; no trigger binds them and they have no poison twin
    "calendar-changes": "CalendarChangesQueue",
    "outbound-results": "OutboundResultsQueue",
}
#: The queues Communifire reads (no trigger, no poison twin).
FEED_QUEUES = frozenset({"calendar-changes", "outbound-results"})
#: Azure queue names: 3-63 lower-case letters, digits and single hyphens, starting and
#: ending with a letter or digit; 56 at most here so that ``-poison`` still fits.
_QUEUE_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,54}[a-z0-9]$")
POISON_SUFFIX = "-poison"

SECRET_SETTINGS = frozenset({"OutlookApiClientSecret", "TokenEncryptionKey", "AzureWebJobsStorage"})
_KEY_VAULT_LITERAL = "@Microsoft.KeyVault("
_STORAGE_IDENTITY_KEYS = ("AzureWebJobsStorage__tableServiceUri", "AzureWebJobsStorage__queueServiceUri")

#: Every setting the app reads, in display order, with a one-line meaning.
SETTING_HELP: dict[str, str] = {
    "OutlookApiClientID": "Application (client) ID of the Entra app registration",
    "OutlookApiClientSecret": "client secret of that app registration",
    "SAMLTenantID": "Directory (tenant) ID",
    "UseSAMLtenantIDForOutlook": "true: single tenant (default); false: multitenant app ('organizations')",
    "OutlookAllowedTenantIDs": "multitenant mode: comma-separated tenant ids whose users may connect (required then)",
    "RequireMatchingOutlookAccount": "true (default): connect refuses a Microsoft account other than the one expected",
    "EnableCalendarSync": "Enable calendar sync from 3rd party systems (default false)",
    "SiteUrl": "intranet base URL; redirect URI = SiteUrl + /oauth2/outlook/callback",
    "AzureWebJobsStorage": "storage account connection (or the identity-based AzureWebJobsStorage__* settings)",
    "TokenEncryptionKey": "key(s) encrypting token caches at rest: kid:base64url(32 bytes)[,older...] (local runs; "
                          "in Azure the wrapped keys below)",
    "TokenEncryptionKeyWrapped": "the same keys wrapped by the Key Vault key (envelope encryption): "
                                 "kid:keyVersion:base64url(wrapped)[,older...]",
    "TokenEncryptionKeyVaultKey": "versionless URI of the Key Vault key that unwraps TokenEncryptionKeyWrapped",
    "SyncSchedule": "timer NCRONTAB, six fields, UTC",
    "SyncIntervalMinutes": "minutes between two syncs of one user (default 15)",
    "NotificationUrl": "public https base URL of the function app, where Graph sends change notifications "
                       "(empty: no notifications, timer polling only)",
    "SubscriptionMaxMinutes": "longest lifetime asked for a Graph subscription, 45-10080 (default 4230)",
    "SubscribedSyncIntervalMinutes": "minutes between two timer syncs of a user whose notifications work (default 60)",
    "MaxDeleteShare": "share of a user's events one sync may delete before an admin must confirm (default 0.5)",
    "GraphApiBaseUrl": "Microsoft Graph base URL",
    "AuthorityHost": "Entra ID sign-in host",
    "TlsCaBundle": "optional extra CA certificates to trust (PEM file path)",
    "StorageNamePrefix": "optional prefix for table names (tests, side-by-side installs)",
    "SyncJobsQueue": "queue of per-user sync jobs (default sync-jobs; the sync_user trigger binds %SyncJobsQueue%)",
    "WritesQueue": "queue of reconciled writes (default writes; the apply_writes trigger binds %WritesQueue%)",
    "OutboundQueue": "queue of Communifire changes (default outbound; the apply_outbound trigger binds %OutboundQueue%)",
    "CalendarChangesQueue": "queue of the change feed Communifire reads (default calendar-changes, docs/changes.md)",
    "OutboundResultsQueue": "queue of outbound results Communifire reads (default outbound-results, docs/changes.md)",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """A missing or invalid setting."""

    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


class SettingsError(ValueError):
    """Settings are missing or invalid; ``problems`` names each one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid settings: " + "; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class StorageConnection:
    """Either a connection string or the identity-based service URIs."""

    connection_string: str = ""
    table_uri: str = ""
    queue_uri: str = ""
    client_id: str = ""

    @property
    def uses_identity(self) -> bool:
        return not self.connection_string


@dataclass(frozen=True, slots=True)
class Settings:
    client_id: str
    client_secret: str = field(repr=False)
    tenant_id: str
    single_tenant: bool
    sync_enabled: bool
    site_url: str
    storage: StorageConnection = field(repr=False)
    encryption_keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    sync_schedule: str = DEFAULT_SCHEDULE
    sync_interval_minutes: int = 15
    max_delete_share: float = 0.5
    graph_base_url: str = DEFAULT_GRAPH
    authority_host: str = DEFAULT_AUTHORITY_HOST
    ca_bundle: str | None = None
    name_prefix: str = ""
    #: Envelope encryption: (kid, key version, wrapped data key), unwrapped by the Key Vault
    #: key ``key_vault_key`` at start (core/adapters/keyvault.py). Their keys come before
    #: ``encryption_keys``: the first wrapped key seals.
    wrapped_keys: tuple[tuple[str, str, bytes], ...] = field(default=(), repr=False)
    key_vault_key: str = ""
    #: (logical name, real queue name) for each of QUEUE_SETTINGS.
    queues: tuple[tuple[str, str], ...] = tuple((name, name) for name in QUEUE_SETTINGS)
    allowed_tenants: frozenset[str] = frozenset()
    require_matching_account: bool = True

    def queue_name(self, logical: str) -> str:
        """The real name of a queue (or of its ``-poison`` twin) from its logical name.

        A name that is not one of the app's queues is returned unchanged.
        """
        base, poison = logical, ""
        if logical.endswith(POISON_SUFFIX):
            base, poison = logical[: -len(POISON_SUFFIX)], POISON_SUFFIX
        for name, real in self.queues:
            if name == base:
                return real + poison
        return logical
    notification_url: str = ""
    subscription_max_minutes: int = DEFAULT_SUBSCRIPTION_MAX_MINUTES
    subscribed_sync_interval_minutes: int = 60

    @property
    def notifications_enabled(self) -> bool:
        """Graph change notifications are used (NotificationUrl is set)."""
        return bool(self.notification_url)

    @property
    def notification_endpoint(self) -> str:
        return self.notification_url + NOTIFICATIONS_PATH

    @property
    def lifecycle_endpoint(self) -> str:
        return self.notification_url + LIFECYCLE_PATH

    @property
    def redirect_uri(self) -> str:
        return self.site_url.rstrip("/") + CALLBACK_PATH

    @property
    def authority(self) -> str:
        """Where users sign in: the tenant (single tenant) or 'organizations'."""
        return f"{self.authority_host}/{self.tenant_id if self.single_tenant else 'organizations'}"

    def tenant_allowed(self, tenant_id: str) -> bool:
        """May users of this tenant connect? Single tenant: only SAMLTenantID; multitenant:
        the OutlookAllowedTenantIDs allowlist (and SAMLTenantID when set)."""
        tid = (tenant_id or "").strip().lower()
        if self.single_tenant:
            return tid == self.tenant_id.lower()
        return bool(tid) and (tid in self.allowed_tenants or tid == self.tenant_id.lower())

    @property
    def site_origin(self) -> tuple[str, str, int]:
        """(scheme, host, port) of SiteUrl: the only origin connect may send a browser back to."""
        return url_origin(self.site_url) or ("", "", 0)

    def tenant_authority(self, tenant_id: str) -> str:
        """The tenant-specific authority used for silent calls after sign-in."""
        return f"{self.authority_host}/{tenant_id}"

    @property
    def microsoft_authority(self) -> bool:
        """True for Microsoft's own hosts (MSAL's instance discovery applies)."""
        host = urlsplit(self.authority_host).hostname or ""
        return host.endswith(("microsoftonline.com", "microsoftonline.us", "chinacloudapi.cn"))

    @property
    def verify(self) -> str | bool:
        """The TLS verification value to pass on every outgoing call."""
        return self.ca_bundle or True


def parse_tenant_list(raw: str) -> frozenset[str]:
    """``guid[,guid...]`` (spaces or semicolons also separate); raises ValueError naming a bad entry."""
    out: set[str] = set()
    for part in re.split(r"[,;\s]+", raw or ""):
        if not part:
            continue
        if not _is_guid(part):
            raise ValueError(f"{part!r} is not a tenant id (a GUID)")
        out.add(str(uuid.UUID(part)))
    return frozenset(out)


def _bool(raw: str | None, default: bool) -> bool | None:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    return None


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _url_problem(value: str, allow_loopback_http: bool) -> str | None:
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return None
    if allow_loopback_http and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"):
        return None
    return f"must be an https:// URL, got {value!r}"


_KID = re.compile(r"[A-Za-z0-9_-]{1,32}")


def kid_problem(kid: str) -> str | None:
    """Why ``kid`` cannot name a TokenEncryptionKey key (``keygen --kid`` and doctor agree)."""
    if _KID.fullmatch(kid):
        return None
    return f"key id {kid!r} must be 1-32 letters, digits, '-' or '_'"


def parse_encryption_keys(raw: str) -> tuple[tuple[str, bytes], ...]:
    """Parse ``kid:base64url(32 bytes)[,kid:key...]``; the first key encrypts."""
    keys: list[tuple[str, bytes]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, encoded = part.partition(":")
        if not sep:
            raise ValueError("each key must look like 'kid:base64url-key' (run 'outlook-sync keygen')")
        if msg := kid_problem(kid):
            raise ValueError(f"{msg} (each key looks like 'kid:base64url-key')")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError as exc:
            raise ValueError(f"key {kid!r} is not valid base64url") from exc
        if len(key) != 32:
            raise ValueError(f"key {kid!r} must be 32 bytes (256 bits), got {len(key)}")
        if any(k == kid for k, _ in keys):
            raise ValueError(f"key id {kid!r} appears twice")
        keys.append((kid, key))
    if not keys:
        raise ValueError("no key given")
    return tuple(keys)


def vault_key_problem(uri: str) -> str | None:
    """Why ``uri`` is not a versionless Key Vault key URI, or None."""
    if re.fullmatch(r"https://[A-Za-z0-9.-]+/keys/[A-Za-z0-9-]{1,127}/?", uri):
        return None
    return f"must be a versionless Key Vault key URI like https://<vault>.vault.azure.net/keys/<name>, got {uri!r}"


def parse_wrapped_keys(raw: str) -> tuple[tuple[str, str, bytes], ...]:
    """Parse ``kid:keyVersion:base64url(wrapped key)[,...]`` (``keygen --wrap-with`` prints one)."""
    keys: list[tuple[str, str, bytes]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        kid, version, encoded = (part.split(":", 2) + ["", ""])[:3]
        if msg := kid_problem(kid):
            raise ValueError(f"{msg} (each entry looks like 'kid:keyVersion:wrapped-key')")
        if not re.fullmatch(r"[0-9A-Za-z]{1,64}", version) or not encoded:
            raise ValueError(f"entry {kid!r} must look like 'kid:keyVersion:wrapped-key' "
                             "(run 'outlook-sync keygen --wrap-with <key URI>')")
        try:
            wrapped = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError as exc:
            raise ValueError(f"wrapped key {kid!r} is not valid base64url") from exc
        if any(k == kid for k, _, _ in keys):
            raise ValueError(f"key id {kid!r} appears twice")
        keys.append((kid, version, wrapped))
    if not keys:
        raise ValueError("no key given")
    return tuple(keys)


_NCRONTAB_FIELD = re.compile(r"[0-9*/,\-]+")


def ncrontab_problem(value: str) -> str | None:
    """Why ``value`` is not a timer schedule Azure Functions accepts (NCRONTAB, six fields,
    seconds first), or None. Field values, ranges, steps and month/day names are checked by
    croniter (a maintained cron parser); a schedule that can never fire is refused too."""
    from datetime import datetime, timezone

    from croniter import CroniterBadDateError, croniter

    fields = value.split()
    if len(fields) == 5:
        return (f"has five fields; Azure Functions needs six, seconds first "
                f"(e.g. '0 {value}'), got {value!r}")
    if len(fields) != 6:
        return f"must be an NCRONTAB expression with six fields (second minute hour day month weekday), got {value!r}"
    # Only numbers, * , - / and three-letter month/day names (no Quartz L, W, # or ?).
    if not all(_NCRONTAB_FIELD.fullmatch(re.sub(r"[A-Za-z]{3}", "0", f)) for f in fields):
        return f"has a character NCRONTAB does not allow (use digits, names, * , - /): {value!r}"
    if not croniter.is_valid(value, second_at_beginning=True):
        return f"has a value out of range (second 0-59, minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6): {value!r}"
    try:
        croniter(value, datetime(2000, 1, 1, tzinfo=timezone.utc), second_at_beginning=True).get_next(datetime)
    except (CroniterBadDateError, ValueError, KeyError):
        return f"never fires (no such date): {value!r}"
    return None


#: What reading the stored state needs (the read-only CLI commands): storage access only,
#: no client secret and no encryption key. Settings naming tables or queues belong here.
STORAGE_SETTINGS = frozenset({"AzureWebJobsStorage", "StorageNamePrefix", *QUEUE_SETTINGS.values()})


def parse_settings(values: Mapping[str, str], file_exists: Callable[[str], bool] = lambda _p: True,
                   only: Collection[str] | None = None) -> Settings:
    """Validate raw settings; raises SettingsError listing every problem at once.

    ``only``: check just these settings (e.g. ``STORAGE_SETTINGS``); the others keep
    whatever was given, or their empty/default value, and must not be used.
    """
    problems: list[Problem] = []

    def get(name: str) -> str:
        raw = (values.get(name) or "").strip()
        if raw.startswith(_KEY_VAULT_LITERAL):
            problems.append(Problem(name, "is an unresolved Key Vault reference (check the app's identity and access)"))
            return ""
        return raw

    def require(name: str) -> str:
        value = get(name)
        if not value and not any(p.setting == name for p in problems):
            problems.append(Problem(name, f"is missing ({SETTING_HELP[name]})"))
        return value

    client_id = require("OutlookApiClientID")
    if client_id and not _is_guid(client_id):
        problems.append(Problem("OutlookApiClientID", "must be the Application (client) ID, a GUID"))
    secret = require("OutlookApiClientSecret")

    single = _bool(values.get("UseSAMLtenantIDForOutlook"), True)
    if single is None:
        problems.append(Problem("UseSAMLtenantIDForOutlook", "must be true or false"))
        single = True
    tenant = get("SAMLTenantID")
    if single and not tenant:
        problems.append(Problem("SAMLTenantID", "is missing (required while UseSAMLtenantIDForOutlook is true)"))
    elif tenant and not _is_guid(tenant):
        problems.append(Problem("SAMLTenantID", "must be the Directory (tenant) ID, a GUID"))

    allowed: frozenset[str] = frozenset()
    try:
        allowed = parse_tenant_list(get("OutlookAllowedTenantIDs"))
    except ValueError as exc:
        problems.append(Problem("OutlookAllowedTenantIDs", str(exc)))
    else:
        if not single and not allowed:
            problems.append(Problem(
                "OutlookAllowedTenantIDs",
                "is missing (required while UseSAMLtenantIDForOutlook is false: without it users of any "
                "Microsoft 365 organization could connect)"))

    matching = _bool(values.get("RequireMatchingOutlookAccount"), True)
    if matching is None:
        problems.append(Problem("RequireMatchingOutlookAccount", "must be true or false"))
        matching = True

    enabled = _bool(values.get("EnableCalendarSync"), False)
    if enabled is None:
        problems.append(Problem("EnableCalendarSync", "must be true or false"))
        enabled = False

    site_url = require("SiteUrl")
    if site_url and (msg := _url_problem(site_url, allow_loopback_http=True)):
        problems.append(Problem("SiteUrl", msg))

    storage = StorageConnection()
    conn = get("AzureWebJobsStorage")
    if conn:
        storage = StorageConnection(connection_string=conn)
    elif all(get(k) for k in _STORAGE_IDENTITY_KEYS):
        storage = StorageConnection(
            table_uri=get("AzureWebJobsStorage__tableServiceUri"),
            queue_uri=get("AzureWebJobsStorage__queueServiceUri"),
            client_id=get("AzureWebJobsStorage__clientId"),
        )
    elif not any(p.setting == "AzureWebJobsStorage" for p in problems):
        problems.append(
            Problem("AzureWebJobsStorage", "is missing (a connection string, or AzureWebJobsStorage__tableServiceUri and __queueServiceUri)")
        )

    # Token encryption: wrapped keys (Azure, envelope encryption) and/or plain keys (local
    # runs; in Azure only while migrating). One of the two is required.
    wrapped: tuple[tuple[str, str, bytes], ...] = ()
    vault_key = ""
    raw_wrapped = get("TokenEncryptionKeyWrapped")
    if raw_wrapped:
        try:
            wrapped = parse_wrapped_keys(raw_wrapped)
        except ValueError as exc:
            problems.append(Problem("TokenEncryptionKeyWrapped", str(exc)))
        vault_key = require("TokenEncryptionKeyVaultKey").rstrip("/")
        if vault_key and (msg := vault_key_problem(vault_key)):
            problems.append(Problem("TokenEncryptionKeyVaultKey", msg))
    keys: tuple[tuple[str, bytes], ...] = ()
    raw_keys = get("TokenEncryptionKey") if raw_wrapped else require("TokenEncryptionKey")
    if raw_keys:
        try:
            keys = parse_encryption_keys(raw_keys)
        except ValueError as exc:
            problems.append(Problem("TokenEncryptionKey", str(exc)))
    if {k for k, _, _ in wrapped} & {k for k, _ in keys}:
        problems.append(Problem("TokenEncryptionKeyWrapped", "a key id is also used in TokenEncryptionKey"))

    schedule = get("SyncSchedule") or DEFAULT_SCHEDULE
    if msg := ncrontab_problem(schedule):
        problems.append(Problem("SyncSchedule", msg))

    interval = 15
    raw_interval = get("SyncIntervalMinutes")
    if raw_interval:
        if raw_interval.isdigit() and 1 <= int(raw_interval) <= 1440:
            interval = int(raw_interval)
        else:
            problems.append(Problem("SyncIntervalMinutes", "must be a whole number of minutes between 1 and 1440"))

    notification_url = get("NotificationUrl").rstrip("/")
    if notification_url:
        msg = _url_problem(notification_url, allow_loopback_http=True)
        if msg or urlsplit(notification_url).query or urlsplit(notification_url).fragment:
            problems.append(Problem("NotificationUrl", (msg or "must be a base URL without ? or #")
                                    + " (the function app's public URL, e.g. https://<app>.azurewebsites.net)"))

    def minutes(name: str, default: int, low: int, high: int) -> int:
        raw = get(name)
        if not raw:
            return default
        if raw.isdigit() and low <= int(raw) <= high:
            return int(raw)
        problems.append(Problem(name, f"must be a whole number of minutes between {low} and {high}"))
        return default

    sub_minutes = minutes("SubscriptionMaxMinutes", DEFAULT_SUBSCRIPTION_MAX_MINUTES, 45, 10080)
    subscribed_interval = minutes("SubscribedSyncIntervalMinutes", 60, 1, 1440)

    share = 0.5
    raw_share = get("MaxDeleteShare")
    if raw_share:
        try:
            share = float(raw_share)
        except ValueError:
            share = -1.0
        if not 0.0 < share <= 1.0:
            problems.append(Problem("MaxDeleteShare", "must be a number above 0 and at most 1 (e.g. 0.5)"))

    graph = (get("GraphApiBaseUrl") or DEFAULT_GRAPH).rstrip("/")
    if msg := _url_problem(graph, allow_loopback_http=False):
        problems.append(Problem("GraphApiBaseUrl", msg))
    authority_host = (get("AuthorityHost") or DEFAULT_AUTHORITY_HOST).rstrip("/")
    if msg := _url_problem(authority_host, allow_loopback_http=False):
        problems.append(Problem("AuthorityHost", msg + " (MSAL refuses http:// authorities)"))

    ca_bundle = get("TlsCaBundle") or None
    if ca_bundle and not file_exists(ca_bundle):
        problems.append(Problem("TlsCaBundle", f"file not found: {ca_bundle}"))

    prefix = get("StorageNamePrefix")
    if prefix and not re.fullmatch(r"[a-z][a-z0-9]{0,19}", prefix):
        problems.append(Problem("StorageNamePrefix", "must be 1-20 lower-case letters and digits, starting with a letter"))

    queues: list[tuple[str, str]] = []
    for logical, setting in QUEUE_SETTINGS.items():
        real = get(setting) or logical
        if not _QUEUE_NAME.match(real):
            problems.append(Problem(setting, "must be 3-56 lower-case letters, digits and single hyphens, "
                                             f"starting and ending with a letter or digit, got {real!r}"))
        elif any(real == other for _, other in queues):
            problems.append(Problem(setting, f"names the queue {real!r} that another queue setting already uses"))
        queues.append((logical, real))

    if only is not None:
        problems = [p for p in problems if p.setting in only]
    if problems:
        raise SettingsError(problems)
    return Settings(
        client_id=client_id,
        client_secret=secret,
        tenant_id=tenant,
        single_tenant=bool(single),
        sync_enabled=bool(enabled),
        site_url=site_url.rstrip("/"),
        storage=storage,
        encryption_keys=keys,
        wrapped_keys=wrapped,
        key_vault_key=vault_key,
        sync_schedule=schedule,
        sync_interval_minutes=interval,
        max_delete_share=share,
        graph_base_url=graph,
        authority_host=authority_host,
        ca_bundle=ca_bundle,
        name_prefix=prefix,
        queues=tuple(queues),
        allowed_tenants=allowed,
        require_matching_account=bool(matching),
        notification_url=notification_url,
        subscription_max_minutes=sub_minutes,
        subscribed_sync_interval_minutes=subscribed_interval,
    )


def mask(name: str, value: str | None) -> str:
    """A value fit to print: secrets show only that they are set."""
    if value is None or value == "":
        return "(not set)"
    if name in SECRET_SETTINGS or name.endswith("Secret") or "AccountKey=" in value:
        if value.startswith(_KEY_VAULT_LITERAL):
            return "(unresolved Key Vault reference)"
        return f"(set, {len(value)} characters)"
    return value
