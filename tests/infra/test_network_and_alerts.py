"""Infra parity with the Azure samples (issue 15): VNet and private endpoints, Flex
Consumption regions, envelope encryption key, alert rules and their runbook queries."""

from __future__ import annotations

import re
from pathlib import Path

from tests.infra.test_bicep import block_after, code, modules, read

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
ALERTS = sorted((INFRA / "alerts").glob("*.kql"))
RUNBOOK = ROOT / "docs" / "operations.md"

#: Regions offering the Flex Consumption plan (as listed by the Azure Functions samples).
FLEX_REGIONS = {
    "australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia", "centralus",
    "eastasia", "eastus", "eastus2", "francecentral", "germanywestcentral", "italynorth", "japaneast",
    "koreacentral", "northcentralus", "northeurope", "norwayeast", "southafricanorth", "southcentralus",
    "southeastasia", "southindia", "spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest",
    "westcentralus", "westeurope", "westus", "westus2", "westus3",
}


def _param_block(text: str, name: str) -> str:
    """The decorators and declaration of one parameter."""
    m = re.search(rf"^param {name} .*$", text, re.MULTILINE)
    assert m, name
    start = text.rfind("\n\n", 0, m.start())
    return text[start:m.end()]


def test_location_is_restricted_to_flex_consumption_regions() -> None:
    block = _param_block(code(MAIN), "location")
    allowed = set(re.findall(r"^\s*'([a-z0-9]+)'\s*$", block, re.MULTILINE))
    assert allowed == FLEX_REGIONS
    assert re.search(r"type:\s*'location'", block), "azd asks for the region from this list"


def test_vnet_is_on_by_default_with_private_endpoints_for_storage_and_key_vault() -> None:
    text = code(MAIN)
    assert re.search(r"^param vnetEnabled bool = true$", text, re.MULTILINE)
    declared = {symbol: path.name for symbol, path, _ in modules(MAIN)}
    assert declared["vnet"] == "vnet.bicep"
    storage = block_after(text, text.index("var storagePrivateEndpoints"), "[]")
    assert set(re.findall(r"'(\w+)'", storage)) == {"blob", "queue", "table"}
    for symbol, group in (("keyVaultEndpoint", "vault"), ("functionAppEndpoint", "sites")):
        body = block_after(text, text.index(f"module {symbol} "))
        assert f"groupId: '{group}'" in body
        assert re.search(rf"module {symbol} '[^']+' = if \(vnetEnabled\)", text)
    assert "groupId: service" in block_after(text, text.index("module storageEndpoints "))
    # The modules take their network settings from vnetEnabled ...
    assert text.count("publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'") == 3
    # ... and default to the closed setup, which is what checkov scans (infra/check.sh).
    for path in (INFRA / "core" / "storage.bicep", INFRA / "core" / "keyvault.bicep", INFRA / "app" / "function.bicep"):
        assert re.search(r"^param publicNetworkAccess string = 'Disabled'$", code(path), re.MULTILINE), path.name
    vnet = code(INFRA / "network" / "vnet.bicep")
    assert "serviceName: 'Microsoft.App/environments'" in vnet, "Flex Consumption VNet integration needs this delegation"


def test_network_checks_are_no_longer_skipped() -> None:
    for path in INFRA.rglob("*.bicep"):
        for check in ("CKV_AZURE_35", "CKV_AZURE_59", "CKV_AZURE_109", "CKV_AZURE_189", "CKV_AZURE_222"):
            assert f"checkov:skip={check}:" not in read(path), f"{path.name} skips {check}"


def test_the_token_encryption_key_is_wrapped_by_a_key_vault_key() -> None:
    vault = code(INFRA / "core" / "keyvault.bicep")
    key = block_after(vault, vault.index("resource keyEncryptionKey"))
    assert "kty: 'RSA'" in key and "'unwrapKey'" in key and "exportable: false" in key
    function = code(INFRA / "app" / "function.bicep")
    # The plain key is referenced only in the legacy (migration) branch.
    assert re.search(r"legacyTokenEncryptionKey \? \[\s*\{\s*name: 'TokenEncryptionKey'", function)


def test_every_alert_query_is_a_rule_and_is_in_the_runbook() -> None:
    alerts_bicep = code(INFRA / "core" / "alerts.bicep")
    runbook = read(RUNBOOK)
    assert {p.stem for p in ALERTS} == {"poison-messages", "reconnect-rising", "sync-failure-rate",
                                        "notification-failures"}
    for path in ALERTS:
        assert f"loadTextContent('../alerts/{path.name}')" in alerts_bicep
        assert read(path).strip() in runbook, f"docs/operations.md must show {path.name} as it is"
    assert "module alerts 'core/alerts.bicep'" in code(MAIN)
