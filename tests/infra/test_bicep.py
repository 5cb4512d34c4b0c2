"""Static assertions over the Bicep templates in infra/ (and azure.yaml).

The Bicep CLI cannot be installed on our machines, and checkov (infra/check.sh) lives in
its own virtual environment, so these tests read the templates as text with careful
regular expressions. They pin what a deployment must never lose: no shared keys or
connection strings, Flex Consumption on Python 3.11, Key Vault with RBAC and purge
protection, every app setting the app reads, identity-based host storage, and a reason
on every deliberate checkov skip. They also do the wiring checks a Bicep build would
do: every module parameter passed exists, every required one is passed, every module
output used is declared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.config.settings import QUEUE_SETTINGS, SETTING_HELP

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
MAIN = INFRA / "main.bicep"
FUNCTION = INFRA / "app" / "function.bicep"
STORAGE = INFRA / "core" / "storage.bicep"
KEYVAULT = INFRA / "core" / "keyvault.bicep"
MONITORING = INFRA / "core" / "monitoring.bicep"
RBAC = INFRA / "app" / "rbac.bicep"

# App settings the function app must have in Azure (SPEC section 2 + identity-based storage).
REQUIRED_APP_SETTINGS = {
    "OutlookApiClientID",
    "OutlookApiClientSecret",
    "SAMLTenantID",
    "UseSAMLtenantIDForOutlook",
    "OutlookAllowedTenantIDs",
    "RequireMatchingOutlookAccount",
    "EnableCalendarSync",
    "SiteUrl",
    "TokenEncryptionKeyWrapped",
    "TokenEncryptionKeyVaultKey",
    "SyncSchedule",
    "SyncIntervalMinutes",
    "MaxDeleteShare",
    "GraphApiBaseUrl",
    "AuthorityHost",
    "TlsCaBundle",
    "SyncJobsQueue",
    "WritesQueue",
    "OutboundQueue",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

# Settings the app knows that are deliberately not set in Azure.
NOT_SET_IN_AZURE = {
    "AzureWebJobsStorage",  # replaced by the identity-based AzureWebJobsStorage__* settings
    "StorageNamePrefix",  # empty in Azure: one app per storage account
}

QUEUES = {"sync-jobs", "writes", "outbound"}
FEEDS = {"calendar-changes", "outbound-results"}  # read by Communifire (issue 12): no poison twin


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def code(path: Path) -> str:
    """The template without comments (whole-line and trailing `// ...`; URLs stay)."""
    lines = []
    for line in read(path).splitlines():
        if line.lstrip().startswith("//"):
            continue
        lines.append(re.sub(r"\s+//\s.*$", "", line))
    return "\n".join(lines)


def block_after(text: str, start: int, brackets: str = "{}") -> str:
    """The text of the `{ ... }` (or other ``brackets``) block opening at or after ``start``."""
    opening, closing = brackets
    open_at = text.index(opening, start)
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
    raise AssertionError(f"unbalanced braces after index {start}")


def declared_params(path: Path) -> dict[str, bool]:
    """param name -> whether it has a default value."""
    return {
        m.group(1): bool(m.group(2))
        for m in re.finditer(r"^param\s+(\w+)\s+\w+(\s*=)?", read(path), re.MULTILINE)
    }


def declared_outputs(path: Path) -> set[str]:
    return set(re.findall(r"^output\s+(\w+)\s", read(path), re.MULTILINE))


def top_level_keys(block: str) -> set[str]:
    """Keys at the first nesting level of an object body."""
    keys, depth = set(), 0
    for line in block.splitlines():
        if depth == 0 and (m := re.match(r"\s*(\w+)\s*:", line)):
            keys.add(m.group(1))
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return keys


def modules(path: Path) -> list[tuple[str, Path, set[str]]]:
    """(symbol, file, params passed) for every module declared in ``path``."""
    text = code(path)
    found = []
    # `= {`, `= if (cond) {` and `= [for x in xs: {` (conditional and looped modules)
    head = r"^module\s+(\w+)\s+'([^']+)'\s*=\s*(?:if\s*\(\w+\)\s*)?(?:\[\s*for\b.*?:\s*)?\{"
    for m in re.finditer(head, text, re.MULTILINE):
        body = block_after(text, m.end() - 1)
        params_at = re.search(r"^\s*params\s*:\s*\{", body, re.MULTILINE)
        passed = top_level_keys(block_after(body, params_at.end() - 1)) if params_at else set()
        found.append((m.group(1), (path.parent / m.group(2)).resolve(), passed))
    return found


def app_settings() -> dict[str, str]:
    """App setting name -> Bicep value expression, from the function app's siteConfig."""
    text = code(FUNCTION)
    names = re.findall(r"name:\s*'([^']+)'\s*\n\s*value:\s*(.+)", text)
    return {name: value.strip() for name, value in names}


# --- no shared keys, no connection strings -------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES + [INFRA / "main.parameters.json"], ids=lambda p: p.name)
def test_no_account_key_connection_string_or_sas_anywhere(path: Path) -> None:
    text = code(path) if path.suffix == ".bicep" else read(path)
    for forbidden in ("AccountKey", "listKeys(", "listAccountSas(", "listServiceSas(", "DefaultEndpointsProtocol",
                      "SharedAccessSignature", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "InstrumentationKey="):
        assert forbidden not in text, f"{path.name} contains {forbidden!r}"


def test_host_storage_is_identity_based_not_a_connection_string() -> None:
    settings = app_settings()
    assert "AzureWebJobsStorage" not in settings, "a plain AzureWebJobsStorage setting is a connection string"
    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == "identity.properties.clientId"
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"storage.properties.primaryEndpoints.{service}"


def test_storage_account_accepts_only_entra_tokens_over_tls12() -> None:
    text = code(STORAGE)
    assert re.search(r"^\s*allowSharedKeyAccess:\s*false\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*defaultToOAuthAuthentication:\s*true\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*allowBlobPublicAccess:\s*false\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*minimumTlsVersion:\s*'TLS1_2'\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*supportsHttpsTrafficOnly:\s*true\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*publicAccess:\s*'None'\s*$", text, re.MULTILINE), "the deployment container must be private"
    for path in BICEP_FILES:
        assert not re.search(r"allowSharedKeyAccess:\s*true", code(path)), path.name


def test_the_communifire_queues_and_their_poison_twins_are_created() -> None:
    text = code(STORAGE)
    names = set(re.findall(r"^\s*'([a-z-]+)'\s*$", block_after(text, text.index("var queueNames"), "[]"), re.MULTILINE))
    assert names == QUEUES | {f"{q}-poison" for q in QUEUES} | FEEDS


def test_the_queue_settings_name_the_created_queues() -> None:
    # Issue 11 item 8: the triggers bind %SyncJobsQueue%...; in Azure they name the queues
    # storage.bicep creates (the defaults), so the host, the app and the backend agree.
    settings = app_settings()
    named = {setting: settings[setting].strip("'") for setting in QUEUE_SETTINGS.values()}
    assert set(named.values()) == QUEUES | FEEDS
    assert named == {setting: logical for logical, setting in QUEUE_SETTINGS.items()}  # the app's defaults


# --- the function app ------------------------------------------------------------------


def test_plan_is_flex_consumption_on_linux() -> None:
    text = code(FUNCTION)
    plan = block_after(text, text.index("resource plan 'Microsoft.Web/serverfarms@"))
    assert re.search(r"name:\s*'FC1'", plan)
    assert re.search(r"tier:\s*'FlexConsumption'", plan)
    assert re.search(r"reserved:\s*true", plan)


def test_function_app_runs_python_311_from_a_blob_package_read_with_the_identity() -> None:
    text = code(FUNCTION)
    runtime = block_after(text, text.index("runtime: {"))
    assert re.search(r"name:\s*'python'", runtime)
    assert re.search(r"version:\s*'3\.11'", runtime)
    deployment = block_after(text, text.index("deployment: {"))
    assert re.search(r"type:\s*'blobContainer'", deployment)
    assert re.search(r"type:\s*'UserAssignedIdentity'", deployment)
    assert re.search(r"kind:\s*'functionapp,linux'", text)
    assert re.search(r"httpsOnly:\s*true", text)
    assert re.search(r"minTlsVersion:\s*'1\.2'", text)


def test_function_app_runs_as_the_user_assigned_identity_for_key_vault_references_too() -> None:
    text = code(FUNCTION)
    assert re.search(r"type:\s*'UserAssigned'", text)
    assert re.search(r"keyVaultReferenceIdentity:\s*identity\.id", text)
    assert re.search(r"'azd-service-name':\s*'api'", text), "azd finds the app to deploy by this tag"


def test_settings_that_flex_consumption_rejects_are_absent() -> None:
    text = code(FUNCTION)
    for name in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                 "WEBSITE_CONTENTSHARE", "WEBSITE_TIME_ZONE", "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD"):
        assert name not in text
    for prop in ("linuxFxVersion", "ftpsState", "alwaysOn", "use32BitWorkerProcess", "numberOfWorkers"):
        assert not re.search(rf"^\s*{prop}\s*:", text, re.MULTILINE), prop


def test_every_app_setting_is_present() -> None:
    missing = REQUIRED_APP_SETTINGS - set(app_settings())
    assert not missing, f"app settings missing from infra/app/function.bicep: {sorted(missing)}"


def test_every_setting_the_app_reads_is_provided_in_azure() -> None:
    # core/config/settings.py is the app's list; a new setting there must reach Azure too.
    missing = set(SETTING_HELP) - NOT_SET_IN_AZURE - set(app_settings())
    assert not missing, f"settings the app reads but infra does not set: {sorted(missing)}"


def test_secrets_are_key_vault_references_never_values() -> None:
    settings = app_settings()
    assert settings["OutlookApiClientSecret"] == "'@Microsoft.KeyVault(SecretUri=${outlookApiClientSecretUri})'"
    assert settings["TokenEncryptionKey"] == "'@Microsoft.KeyVault(SecretUri=${tokenEncryptionKeyUri})'"  # legacy only
    # Envelope encryption: the data keys are in the settings only wrapped by the Key Vault key.
    assert settings["TokenEncryptionKeyWrapped"] == "tokenEncryptionKeyWrapped"
    assert settings["TokenEncryptionKeyVaultKey"] == "keyEncryptionKeyUri"
    uris = code(KEYVAULT)
    assert re.search(r"output outlookApiClientSecretUri string = '\$\{vault\.properties\.vaultUri\}secrets/", uris)
    assert re.search(r"output tokenEncryptionKeyUri string = '\$\{vault\.properties\.vaultUri\}secrets/", uris)


def test_telemetry_uses_entra_authentication() -> None:
    assert app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${identity.properties.clientId};Authorization=AAD'"
    )
    assert re.search(r"^\s*DisableLocalAuth:\s*true\s*$", code(MONITORING), re.MULTILINE)


def test_booleans_are_written_as_lower_case_true_or_false() -> None:
    settings = app_settings()
    assert settings["UseSAMLtenantIDForOutlook"] == "useSamlTenantIdForOutlook ? 'true' : 'false'"
    assert settings["EnableCalendarSync"] == "enableCalendarSync ? 'true' : 'false'"
    assert settings["RequireMatchingOutlookAccount"] == "requireMatchingOutlookAccount ? 'true' : 'false'"


def test_redirect_uri_is_site_url_plus_the_callback_path() -> None:
    text = code(FUNCTION)
    assert "output redirectUri string = '${effectiveSiteUrl}/oauth2/outlook/callback'" in text
    assert "'https://${functionAppName}.azurewebsites.net'" in text, "default SiteUrl: the app's own host"


# --- parameters ---------------------------------------------------------------------


def test_secret_parameters_are_secure_and_have_no_default_value() -> None:
    for path in (MAIN, KEYVAULT):
        lines = read(path).splitlines()
        for name in ("outlookApiClientSecret", "tokenEncryptionKey"):
            index = next(i for i, line in enumerate(lines) if re.match(rf"param\s+{name}\s", line))
            assert re.match(rf"param\s+{name}\s+string\s*=\s*''\s*$", lines[index]), f"{path.name}: {name} default"
            decorators = []
            for line in reversed(lines[:index]):
                if not line.startswith("@"):
                    break
                decorators.append(line)
            assert "@secure()" in decorators, f"{path.name}: {name} must be @secure()"


def test_default_schedule_is_every_15_minutes_in_six_ncrontab_fields() -> None:
    m = re.search(r"^param syncSchedule string = '([^']+)'", read(MAIN), re.MULTILINE)
    assert m and m.group(1) == "0 */15 * * * *"
    assert len(m.group(1).split()) == 6


def test_parameters_file_matches_main_and_carries_no_secret() -> None:
    data = json.loads(read(INFRA / "main.parameters.json"))
    given = set(data["parameters"])
    params = declared_params(MAIN)
    assert given <= set(params), f"unknown parameters: {sorted(given - set(params))}"
    assert {name for name, has_default in params.items() if not has_default} <= given
    assert data["parameters"]["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert data["parameters"]["location"]["value"] == "${AZURE_LOCATION}"
    assert data["parameters"]["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert not given & {"outlookApiClientSecret", "tokenEncryptionKey"}, "secrets must not sit in the azd environment"


# --- Key Vault and roles --------------------------------------------------------------


def test_key_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    text = code(KEYVAULT)
    vault = block_after(text, text.index("resource vault 'Microsoft.KeyVault/vaults@"))
    assert re.search(r"enableRbacAuthorization:\s*true", vault)
    assert re.search(r"enableSoftDelete:\s*true", vault)
    assert re.search(r"enablePurgeProtection:\s*true", vault)
    assert "accessPolicies" not in vault


def test_secrets_are_only_written_when_a_value_is_given() -> None:
    text = code(KEYVAULT)
    assert "= if (!empty(outlookApiClientSecret)) {" in text
    assert "= if (!empty(tokenEncryptionKey)) {" in text


def test_the_identity_gets_exactly_its_data_roles() -> None:
    text = code(RBAC)
    expected = {
        "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
        "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
        "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
        "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
        "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
        "storageQueueDataMessageSender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
        "keyVaultCryptoUser": "12338af0-0e69-4776-bea7-57ae8d297424",
        "keyVaultCryptoOfficer": "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
        "storageQueueDataMessageProcessor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    }
    for name, guid in expected.items():
        assert re.search(rf"{name}:\s*'{guid}'", text), name
    app_storage = block_after(text, text.index("var appStorageRoles"), "[]")
    assert set(re.findall(r"roles\.(\w+)", app_storage)) == {
        "storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"}
    # No broad roles (Owner, Contributor, Storage Account Contributor, Key Vault Administrator).
    for broad in ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                  "17d1049b-9a84-46fb-8f53-869881c3d3ab", "00482a5a-887f-4fb3-b363-3b7fe8e74483"):
        assert broad not in text
    # Roles are scoped to one resource, never the resource group or the subscription.
    scopes = set(re.findall(r"^\s*scope:\s*(\w+)", text, re.MULTILINE))
    assert scopes == {"storage", "vault", "keyEncryptionKey", "appInsights", "outboundQueue", "changesQueue",
                      "resultsQueue"}
    # The app may unwrap with the one key-encryption key, nothing else in the vault.
    unwrap = block_after(text, text.index("resource appUnwrap"))
    assert "scope: keyEncryptionKey" in unwrap and "roles.keyVaultCryptoUser" in unwrap


def test_the_communifire_backend_gets_exactly_send_on_outbound_and_read_delete_on_the_two_feeds() -> None:
    """Issue 12: the backend's identity sends to ``outbound`` and reads/deletes
    ``calendar-changes`` and ``outbound-results``; nothing on tables, nothing wider."""
    text = code(RBAC)
    grants = {}
    for m in re.finditer(r"^resource\s+(\w+)\s+'Microsoft\.Authorization/roleAssignments@[^']+'\s*=", text, re.MULTILINE):
        body = block_after(text, m.end())
        if "principalId: communifirePrincipalId" in body:
            scope = re.search(r"^\s*scope:\s*(\w+)", body, re.MULTILINE).group(1)
            grants[scope] = set(re.findall(r"roles\.(\w+)\)", body))
    assert grants == {"outboundQueue": {"storageQueueDataMessageSender"},
                      "changesQueue": {"storageQueueDataMessageProcessor"},
                      "resultsQueue": {"storageQueueDataMessageProcessor"}}
    queues = {sym: re.search(r"name:\s*'([^']+)'", block_after(text, text.index(f"resource {sym} "))).group(1)
              for sym in grants}
    assert queues == {"outboundQueue": "outbound", "changesQueue": "calendar-changes", "resultsQueue": "outbound-results"}
    settings = app_settings()
    assert settings["CalendarChangesQueue"] == "'calendar-changes'" and settings["OutboundResultsQueue"] == "'outbound-results'"


# --- wiring: what a Bicep build would check ---------------------------------------------


def test_no_registry_modules_only_local_files() -> None:
    for path in BICEP_FILES:
        for m in re.finditer(r"^module\s+\w+\s+'([^']+)'", read(path), re.MULTILINE):
            assert not re.match(r"(br|ts)[:/]", m.group(1)), f"{path.name}: {m.group(1)} (checkov cannot resolve it)"


def test_main_targets_the_subscription_and_creates_the_resource_group() -> None:
    text = code(MAIN)
    assert re.search(r"^targetScope = 'subscription'$", text, re.MULTILINE)
    assert "resource rg 'Microsoft.Resources/resourceGroups@" in text


@pytest.mark.parametrize("path", [MAIN], ids=lambda p: p.name)
def test_module_parameters_match_the_module(path: Path) -> None:
    found = modules(path)
    assert found, "main.bicep declares its resources in local modules"
    for symbol, file, passed in found:
        assert file.is_file(), f"module {symbol}: {file} does not exist"
        declared = declared_params(file)
        unknown = passed - set(declared)
        assert not unknown, f"module {symbol} passes unknown params {sorted(unknown)}"
        missing = {name for name, has_default in declared.items() if not has_default} - passed
        assert not missing, f"module {symbol} lacks required params {sorted(missing)}"


def test_module_outputs_used_are_declared() -> None:
    text = code(MAIN)
    files = {symbol: file for symbol, file, _ in modules(MAIN)}
    for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", text):
        assert output in declared_outputs(files[symbol]), f"{symbol}.outputs.{output}"


# --- checkov skips ---------------------------------------------------------------------


def test_every_checkov_skip_has_a_reason_and_sits_inside_a_resource_body() -> None:
    skips = 0
    for path in BICEP_FILES:
        depth, top = 0, ""
        for number, line in enumerate(read(path).splitlines(), 1):
            if depth == 0 and (m := re.match(r"(resource|module|param|var|output)\b", line)):
                top = m.group(1)
            if "checkov:skip" in line:
                skips += 1
                where = f"{path.relative_to(ROOT)}:{number}"
                m = re.fullmatch(r"\s*// checkov:skip=(CKV2?_AZURE_\d+): (.+)", line)
                assert m, f"{where}: write '// checkov:skip=CKV_AZURE_n: reason'"
                assert len(m.group(2).split()) >= 8, f"{where}: the reason for {m.group(1)} is too short"
                assert depth >= 1 and top == "resource", f"{where}: checkov only honours skips inside a resource body"
            if not line.lstrip().startswith("//"):
                depth += line.count("{") - line.count("}")
    assert skips, "expected the documented skips (see infra/check.sh)"


def test_check_script_runs_the_pinned_offline_scan_that_fails_on_parse_errors() -> None:
    text = read(INFRA / "check.sh")
    assert 'CHECKOV_VERSION="3.3.30"' in text
    assert "--framework bicep" in text and "--skip-download" in text
    assert "export CKV_PARSE_ERROR_FAIL=true" in text
    assert "set -euo pipefail" in text


# --- azure.yaml ------------------------------------------------------------------------


def test_azure_yaml_deploys_this_folder_as_a_python_function_app() -> None:
    text = read(ROOT / "azure.yaml")
    assert re.search(r"^services:\n  api:\n(    \w+: .+\n)+", text, re.MULTILINE)
    service = re.search(r"^  api:\n((?:    .+\n?)+)", text, re.MULTILINE).group(1)
    assert re.search(r"^    project: \.$", service, re.MULTILINE)
    assert re.search(r"^    language: python$", service, re.MULTILINE)
    assert re.search(r"^    host: function$", service, re.MULTILINE)
    assert re.search(r"^  path: infra$", text, re.MULTILINE)
