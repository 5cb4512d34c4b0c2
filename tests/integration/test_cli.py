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


def test_doctor_names_missing_settings_and_exits_2_as_the_readme_says(env, capsys, monkeypatch):
    monkeypatch.delenv("OutlookApiClientID")
    monkeypatch.setenv("SiteUrl", "ftp://nope")
    code, out, _ = run(capsys, "doctor", "--json")
    doc = json.loads(out)
    problems = {s["name"]: s["problem"] for s in doc["settings"] if s["problem"]}
    assert code == EXIT_USAGE == doc["exit_code"] and set(problems) == {"OutlookApiClientID", "SiteUrl"}
    code, table, _ = run(capsys, "doctor")
    assert code == EXIT_USAGE and "OutlookApiClientID" in table and "missing" in table


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
    assert code == EXIT_OK and "re-sealed 1 token cache(s) with key 'k2'" in out
    row = next(iter(env.app.storage.table("Users").list_entities()))
    assert row["TokenCache0"].startswith("v1.k2.")


def test_invalid_settings_exit_with_usage_code_and_a_pointer_to_doctor(env, capsys, monkeypatch):
    from core.app.bootstrap import set_app

    connected(env)
    set_app(None)
    monkeypatch.setenv("TokenEncryptionKey", "garbage")
    code, _, err = run(capsys, "sync", "--user", "1001")
    assert code == EXIT_USAGE and "doctor" in err and "TokenEncryptionKey" in err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err


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


# -- issue 15: one error handler, exit codes, formats, read-only commands ----------------------


def no_traceback(err):
    return "Traceback" not in err


def test_read_only_commands_need_only_storage_access(env, capsys, monkeypatch):
    """users, calendar, audit, poison list and sync --all read or queue through storage only:
    no client secret, no encryption key (issue 15)."""
    from core.app.bootstrap import set_app

    connected(env)
    env.sync_all()
    set_app(None)
    for name in ("OutlookApiClientSecret", "TokenEncryptionKey", "OutlookApiClientID", "SAMLTenantID"):
        monkeypatch.delenv(name)
    for argv in (["users"], ["calendar", "--user", "1001"], ["audit", "--user", "1001"], ["poison", "list"]):
        code, out, err = run(capsys, *argv, "-o", "json")
        assert code == EXIT_OK and json.loads(out) and err == "", (argv, err)
    code, _, err = run(capsys, "sync", "--user", "1001")
    assert code == EXIT_USAGE and "OutlookApiClientSecret" in err and no_traceback(err)


def test_unknown_and_invalid_users_exit_non_zero(env, capsys):
    connected(env)
    for argv in (["sync", "--user", "9999"], ["plan", "--user", "9999"], ["calendar", "--user", "9999"],
                 ["audit", "--user", "9999"], ["confirm", "--user", "9999", "--yes"],
                 ["disconnect", "--user", "9999", "--yes"]):
        code, out, err = run(capsys, *argv)
        assert code == EXIT_FAIL and "user 9999 is not connected" in err and no_traceback(err), argv
    code, _, err = run(capsys, "sync", "--user", "bad id!")
    assert code == EXIT_USAGE and "'user' must be a Communifire user id" in err


def test_a_user_who_must_reconnect_exits_3_on_every_later_sync(env, capsys):
    connected(env)
    env.control.revoke_consent(ALICE)
    env.control.expire_access_tokens(ALICE)
    assert run(capsys, "sync", "--user", "1001")[0] == EXIT_ATTENTION  # finds out now
    code, out, err = run(capsys, "sync", "--user", "1001", "-o", "json")  # already known
    assert code == EXIT_ATTENTION and json.loads(out)["results"][0]["outcome"] == "needs_reconnect"
    code, out, _ = run(capsys, "users", "--state", "needs_reconnect", "-o", "json")
    assert [u["user_id"] for u in json.loads(out)["users"]] == ["1001"]
    code, out, _ = run(capsys, "users", "--state", "connected", "-o", "json")
    assert code == EXIT_OK and json.loads(out)["users"] == []
    code, _, err = run(capsys, "plan", "--user", "1001")
    assert code == EXIT_ATTENTION and "connect Outlook again" in err


def test_tsv_and_piped_tables_are_plain_and_keep_every_id_whole(env, capsys):
    connected(env)
    env.sync_all()
    code, out, _ = run(capsys, "users", "-o", "tsv")
    header, row = out.splitlines()
    assert code == EXIT_OK and header.split("\t")[:3] == ["user_id", "state", "upn"]
    assert row.split("\t")[:3] == ["1001", "connected", ALICE]
    (event,) = env.calendar("1001")["events"]
    for argv in (["calendar", "--user", "1001"], ["audit", "--user", "1001"], ["users"]):
        code, table, _ = run(capsys, *argv)  # stdout is not a terminal here: plain text
        assert code == EXIT_OK and not set("│┃━─┏└…") & set(table), table
    assert event["id"] in run(capsys, "calendar", "--user", "1001")[1]
    assert event["id"] in run(capsys, "audit", "--user", "1001", "-o", "tsv")[1]
    code, _, err = run(capsys, "keygen", "-o", "tsv")
    assert code == EXIT_USAGE and "-o tsv is not available" in err


def test_disconnect_asks_first_and_needs_yes_without_a_terminal(env, capsys):
    connected(env)
    code, _, err = run(capsys, "disconnect", "--user", "1001")  # stdin is not a terminal in tests
    assert code == EXIT_USAGE and "--yes" in err and env.app.users.get("1001") is not None
    code, out, _ = run(capsys, "disconnect", "--user", "1001", "--yes")
    assert code == EXIT_OK and "disconnected" in out and env.app.users.get("1001") is None


def test_a_held_sync_is_applied_by_confirm_only_with_yes(env, capsys):
    env.add_user(ALICE)
    env.connect("1001", ALICE)
    for n in range(4):
        env.control.create_event(ALICE, {"subject": f"Item {n}", "start": at(n + 1, 9), "end": at(n + 1, 10)})
    env.sync_all()
    for item in env.control.mailbox(ALICE):
        env.control.delete_event(ALICE, item["id"])
    code, out, err = run(capsys, "sync", "--user", "1001")
    assert code == EXIT_ATTENTION and "held" in out and "confirm --user 1001" in out
    code, out, _ = run(capsys, "users", "--state", "held", "-o", "tsv")
    assert [line.split("\t")[0] for line in out.splitlines()[1:]] == ["1001"]
    code, _, err = run(capsys, "confirm", "--user", "1001")
    assert code == EXIT_USAGE and "--yes" in err and len(env.calendar("1001")["events"]) == 4
    code, out, _ = run(capsys, "confirm", "--user", "1001", "--yes", "-o", "json")
    assert code == EXIT_OK and json.loads(out)["deletes"] == 4 and env.calendar("1001")["events"] == []
    code, _, err = run(capsys, "confirm", "--user", "1001", "--yes")
    assert code == EXIT_FAIL and "no held plan" in err


def test_sync_all_queues_one_job_per_user_and_follows_each_by_name(env, capsys):
    """The function app (the stack's local host) does the work, from the sync-jobs queue."""
    connected(env)
    env.add_user("bob@contoso.com")
    env.connect("1002", "bob@contoso.com")
    code, out, err = run(capsys, "sync", "--all", "--wait", "--timeout", "120", "-o", "json")
    results = {r["user_id"]: r["outcome"] for r in json.loads(out)["results"]}
    assert code == EXIT_OK and results == {"1001": "synced", "1002": "synced"}
    assert "queued a sync for user 1001 (alice@contoso.com)" in err and "user 1002 (bob@contoso.com): synced" in err
    env.host.wait_idle(timeout=60)
    assert [e["title"] for e in env.calendar("1001")["events"]] == ["Review"]
    code, _, err = run(capsys, "sync")
    assert code == EXIT_USAGE and "--all" in err


def test_storage_errors_are_one_line_without_a_traceback(env, capsys, monkeypatch):
    from core.app.bootstrap import set_app

    set_app(None)
    import re

    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    monkeypatch.setenv("AzureWebJobsStorage", re.sub(r"TableEndpoint=http://127\.0\.0\.1:\d+", "TableEndpoint=http://127.0.0.1:9",
                                                     env.environ["AzureWebJobsStorage"]))
    code, out, err = run(capsys, "users")
    assert code == EXIT_FAIL and out == "" and err.startswith("outlook-sync: error: cannot reach storage")
    assert no_traceback(err)
    code, _, err = run(capsys, "users", "--debug")
    assert code == EXIT_FAIL and "Traceback" in err  # --debug shows where it happened


def test_ctrl_c_and_a_closed_pipe_end_quietly(env, capsys, monkeypatch):
    import io
    import sys

    connected(env)
    import core.app.sync as sync_module

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sync_module, "sync_user", interrupted)
    code, _, err = run(capsys, "sync", "--user", "1001")
    assert code == 130 and err.strip().endswith("interrupted") and no_traceback(err)

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = main(["users", "-o", "json"])  # as in `outlook-sync users --json | head -1`
    assert code == EXIT_OK and capsys.readouterr().err == ""


def test_settings_can_come_from_an_env_file(env, capsys, monkeypatch, tmp_path):
    from core.app.bootstrap import set_app

    connected(env)
    set_app(None)
    lines = [f"export {k}='{v}'" for k, v in env.environ.items()]
    for key in env.environ:
        monkeypatch.delenv(key)
    path = tmp_path / "outlook-sync.env"
    path.write_text("# written by make run\n" + "\n".join(lines) + "\n")
    code, out, err = run(capsys, "--env-file", str(path), "users", "-o", "json")
    assert code == EXIT_OK and [u["user_id"] for u in json.loads(out)["users"]] == ["1001"], err


def test_version_and_bad_usage(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == EXIT_OK and out.startswith("outlook-sync 0.")
    code, _, err = run(capsys, "frobnicate")
    assert code == EXIT_USAGE and "invalid choice" in err and len(err.strip().splitlines()) == 2
    code, _, err = run(capsys, "keygen", "--kid", "bad kid!")
    assert code == EXIT_USAGE and "key id 'bad kid!'" in err


def test_local_reads_the_settings_make_run_wrote_or_says_to_start_it(env, capsys, monkeypatch, tmp_path):
    from core.app.bootstrap import set_app
    from core.cli import context

    connected(env)
    written = tmp_path / "run" / "local.settings.json"
    monkeypatch.setattr(context, "local_run_settings", lambda: written)
    code, _, err = run(capsys, "--local", "users")
    assert code == EXIT_FAIL and "no local stack settings" in err and "make run" in err
    written.parent.mkdir()
    written.write_text(json.dumps({"IsEncrypted": False, "Values": env.environ}))
    set_app(None)
    for key in env.environ:
        monkeypatch.delenv(key)
    code, out, err = run(capsys, "users", "--local", "-o", "tsv")  # before or after the command
    assert code == EXIT_OK and out.splitlines()[1].startswith("1001\tconnected\t"), err


def test_doctor_reports_unreachable_storage_as_a_failed_check(env, capsys, monkeypatch):
    import re

    monkeypatch.setenv("AzureWebJobsStorage", re.sub(r"(Table|Queue)Endpoint=http://127\.0\.0\.1:\d+", r"\1Endpoint=http://127.0.0.1:9",
                                                     env.environ["AzureWebJobsStorage"]))
    code, out, _ = run(capsys, "doctor", "-o", "json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == EXIT_FAIL and checks["table storage"]["ok"] is False and checks["queue storage"]["ok"] is False
    assert "ServiceRequestError" in checks["table storage"]["detail"] and checks["graph"]["ok"] is True
