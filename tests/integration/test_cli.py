"""The administrator's CLI: tables for people, JSON for scripts, clear exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from core.cli.main import EXIT_ATTENTION, EXIT_FAIL, EXIT_OK, EXIT_USAGE, main
from core.config.settings import parse_encryption_keys

pytestmark = pytest.mark.slow
ALICE = "alice@contoso.com"


@pytest.fixture
def env(stack, monkeypatch, tmp_path):
    """The CLI reads the same settings as the app: the stack's, through the environment."""
    monkeypatch.setenv("OUTLOOK_SYNC_SETTINGS_FILE", str(tmp_path / "absent.json"))
    for key, value in stack.environ.items():
        monkeypatch.setenv(key, value)
    return stack


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def at(days, hour):
    d = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return {"dateTime": d.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def connected(stack):
    stack.add_user(ALICE)
    stack.connect("1001", ALICE)
    stack.control.create_event(ALICE, {"subject": "Review", "start": at(2, 9), "end": at(2, 10)})
    return stack


def test_doctor_reports_all_well_with_exit_zero_and_masks_secrets(env, capsys):
    code, out, _ = run(capsys, "doctor", "--json")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["ok"] is True
    assert {c["name"] for c in doc["checks"]} >= {"settings", "table storage", "queue storage", "authority", "graph"}
    assert env.client_secret not in out and "(set," in out
    code, table, _ = run(capsys, "doctor")
    assert code == EXIT_OK and "All well." in table and env.client_secret not in table


def test_doctor_names_missing_settings_and_fails(env, capsys, monkeypatch):
    monkeypatch.delenv("OutlookApiClientID")
    monkeypatch.setenv("SiteUrl", "ftp://nope")
    code, out, _ = run(capsys, "doctor", "--json")
    problems = {s["name"]: s["problem"] for s in json.loads(out)["settings"] if s["problem"]}
    assert code == EXIT_FAIL and set(problems) == {"OutlookApiClientID", "SiteUrl"}


def test_doctor_reports_an_unreachable_graph(env, capsys, monkeypatch):
    monkeypatch.setenv("GraphApiBaseUrl", "https://127.0.0.1:9/v1.0")
    code, out, _ = run(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == EXIT_FAIL and checks["graph"]["ok"] is False and checks["table storage"]["ok"] is True


def test_users_lists_state_without_secrets(env, capsys):
    connected(env)
    code, out, _ = run(capsys, "users", "--json")
    (user,) = json.loads(out)["users"]
    assert code == EXIT_OK and user["user_id"] == "1001" and user["state"] == "connected" and user["upn"] == ALICE
    assert "TokenCache" not in out and "v1.k1." not in out
    code, table, _ = run(capsys, "users")
    assert "1001" in table and ALICE in table


def test_sync_then_calendar_and_audit_show_the_pulled_event(env, capsys):
    connected(env)
    code, out, _ = run(capsys, "sync", "--user", "1001", "--json")
    assert code == EXIT_OK and json.loads(out)["results"][0]["outcome"] == "synced"
    code, out, _ = run(capsys, "calendar", "--user", "1001", "--json")
    doc = json.loads(out)
    assert code == EXIT_OK and doc["version"] == 1 and [e["title"] for e in doc["events"]] == ["Review"]
    code, table, _ = run(capsys, "calendar", "--user", "1001")
    assert "Review" in table
    code, out, _ = run(capsys, "audit", "--user", "1001", "--json")
    entries = json.loads(out)["entries"]
    assert code == EXIT_OK and entries and all(e["rule"] and e["reason"] for e in entries)


def test_plan_is_a_dry_run_and_empty_after_a_sync(env, capsys):
    connected(env)
    code, out, _ = run(capsys, "plan", "--user", "1001", "--json")
    before = json.loads(out)
    assert code == EXIT_OK and len(before["actions"]) >= 1 and before["held"] is None
    assert env.calendar("1001")["events"] == []  # nothing applied
    run(capsys, "sync", "--user", "1001")
    code, out, _ = run(capsys, "plan", "--user", "1001", "--json", "--full")
    assert code == EXIT_OK and json.loads(out)["actions"] == []


def test_sync_of_a_user_whose_consent_was_revoked_exits_with_attention(env, capsys):
    connected(env)
    env.control.revoke_consent(ALICE)
    env.control.expire_access_tokens(ALICE)
    code, out, _ = run(capsys, "sync", "--user", "1001", "--json")
    assert code == EXIT_ATTENTION and json.loads(out)["results"][0]["outcome"] == "needs_reconnect"
    code, out, _ = run(capsys, "users", "--json")
    (user,) = json.loads(out)["users"]
    assert user["state"] == "needs_reconnect" and user["pending"] == "the user must connect Outlook again"


def test_keygen_prints_a_valid_key_and_rotate_key_reseals_caches(env, capsys, monkeypatch):
    connected(env)
    code, key, _ = run(capsys, "keygen", "--kid", "k2")
    assert code == EXIT_OK and parse_encryption_keys(key.strip())[0][0] == "k2"
    from core.app.bootstrap import App, set_app
    from core.config.settings import parse_settings

    rotated = dict(env.environ, TokenEncryptionKey=f"{key.strip()},{env.environ['TokenEncryptionKey']}")
    set_app(App(parse_settings(rotated)))
    code, out, _ = run(capsys, "rotate-key")
    assert code == EXIT_OK and "re-encrypted 1 token cache" in out
    row = next(iter(env.app.storage.table("Users").list_entities()))
    assert row["TokenCache0"].startswith("v1.k2.")


def test_invalid_settings_exit_with_usage_code_and_a_pointer_to_doctor(env, capsys, monkeypatch):
    from core.app.bootstrap import set_app

    set_app(None)
    monkeypatch.setenv("TokenEncryptionKey", "garbage")
    code, _, err = run(capsys, "users")
    assert code == EXIT_USAGE and "doctor" in err and "TokenEncryptionKey" in err


def test_doctor_checks_a_deployed_configuration_and_app(env, capsys, tmp_path):
    settings = [{"name": k, "value": v, "slotSetting": False} for k, v in env.environ.items()]
    settings = [s if s["name"] != "OutlookApiClientSecret" else
                {**s, "value": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/client-secret/)"}
                for s in settings]
    path = tmp_path / "appsettings.json"
    path.write_text(json.dumps(settings))
    code, out, _ = run(capsys, "doctor", "--json", "--settings-file", str(path), "--app-url", env.host.url)
    doc = json.loads(out)
    checks = {c["name"]: c["ok"] for c in doc["checks"]}
    assert code == EXIT_OK and checks["deployed callback"] and checks["deployed connect key"]
    shown = {s["name"]: s["value"] for s in doc["settings"]}
    assert shown["OutlookApiClientSecret"] == "(Key Vault reference)"
