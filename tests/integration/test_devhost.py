"""The local host: `make run` (`python -m devhost.run`, the whole stack with generated
settings) and `python -m devhost` (the function app alone, on local.settings.json)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = ("AzureWebJobsStorage", "OutlookApiClientID", "OutlookApiClientSecret", "SAMLTenantID",
                 "TokenEncryptionKey", "SiteUrl", "EnableCalendarSync", "GraphApiBaseUrl", "AuthorityHost",
                 "TlsCaBundle", "StorageNamePrefix", "SyncSchedule")


def clean_env(tmp_path, **extra):
    """No settings from this machine: the way a fresh clone would run."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env["OUTLOOK_SYNC_SETTINGS_FILE"] = str(tmp_path / "absent.json")
    env.update(extra)
    return env


def read_until(stream, marker):
    lines = []
    for line in stream:
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("ended before the marker:\n" + "".join(lines))


def processes_under(directory: Path) -> list[str]:
    """Processes whose working directory is inside ``directory`` (e.g. a leaked Azurite)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(Path(os.readlink(proc / "cwd"))).startswith(str(directory)):
                found.append(proc.name)
        except OSError:
            continue
    return found


def test_make_run_starts_the_stack_with_generated_settings_and_stops_everything_on_ctrl_c(tmp_path):
    """Issue 15: no hand-made file; prints where everything listens and how to point the CLI
    at it; registers the emulator's tenant; the Azure SDK's HTTP logging stays quiet;
    Ctrl-C stops Azurite and the emulator and removes the settings it wrote."""
    run_dir, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    env = clean_env(tmp_path, TMPDIR=str(scratch))  # Azurite and the emulator make their dirs in here
    proc = subprocess.Popen([sys.executable, "-m", "devhost.run", "--port", "0", "--run-dir", str(run_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        banner = read_until(proc.stdout, "Ctrl-C stops everything.")
        for words in ("function app      http://127.0.0.1:", "function key: ", "Azurite           table http://127.0.0.1:",
                      "Outlook emulator  https://127.0.0.1:", "tenant            Contoso ",
                      "connected         Communifire user 1001 -> alice@contoso.com", "outlook-sync --env-file"):
            assert words in banner, words
        values = json.loads((run_dir / "local.settings.json").read_text())["Values"]
        assert values["OutlookApiClientSecret"] not in banner  # printed masked; the file has it
        assert oct((run_dir / "outlook-sync.env").stat().st_mode & 0o777) == "0o600"
        # The CLI, pointed at the stack by the env file, sees the connected user and a healthy setup.
        cli = [sys.executable, "-m", "core.cli", "--env-file", str(run_dir / "outlook-sync.env")]
        users = subprocess.run(cli + ["users", "-o", "json"], cwd=ROOT, env=clean_env(tmp_path), capture_output=True,
                               text=True, timeout=120)
        assert users.returncode == 0, users.stderr
        assert [(u["user_id"], u["upn"]) for u in json.loads(users.stdout)["users"]] == [("1001", "alice@contoso.com")]
        doctor = subprocess.run(cli + ["doctor", "-o", "json"], cwd=ROOT, env=clean_env(tmp_path), capture_output=True,
                                text=True, timeout=120)
        assert doctor.returncode == 0 and json.loads(doctor.stdout)["ok"] is True, doctor.stdout
        s = requests.Session()
        s.trust_env = False
        url = values["SiteUrl"]
        assert s.get(f"{url}/oauth2/outlook/connect", params={"user": "1002"}).status_code == 401
        assert s.get(f"{url}/oauth2/outlook/callback").status_code == 400  # anonymous, no state
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopping..." in out
    assert not (run_dir / "local.settings.json").exists() and not (run_dir / "outlook-sync.env").exists()
    assert processes_under(scratch) == [] and list(scratch.iterdir()) == []  # Azurite and the emulator are gone
    assert "Request URL" not in err and "Response status" not in err  # SDK HTTP logging stays at WARNING
    assert "Traceback" not in err


def test_make_run_stops_what_it_started_when_it_cannot_start(tmp_path):
    """The port is taken: one clear line, exit 1, and Azurite (already started) is stopped."""
    import socket

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "devhost.run", "--port", str(port), "--run-dir", str(tmp_path / "run")],
                              cwd=ROOT, env=clean_env(tmp_path, TMPDIR=str(scratch)), capture_output=True, text=True,
                              timeout=180)
    assert done.returncode == 1 and f"port {port} is in use" in done.stderr and "Traceback" not in done.stderr
    assert processes_under(scratch) == [] and list(scratch.iterdir()) == []


def test_python_m_devhost_serves_the_apps_own_functions_and_stops_cleanly(tmp_path, azurite):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {
        "AzureWebJobsStorage": azurite.connection_string, "StorageNamePrefix": "devhost1",
        "OutlookApiClientID": "11111111-2222-3333-4444-555555555555", "OutlookApiClientSecret": "x",
        "SAMLTenantID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "EnableCalendarSync": "false",
        "SiteUrl": "http://127.0.0.1:7071", "SyncSchedule": "0 0 3 * * *",
        "TokenEncryptionKey": "k1:" + "A" * 43,
        "SyncJobsQueue": "devhost-sync-jobs", "WritesQueue": "devhost-writes", "OutboundQueue": "devhost-outbound"}}))
    proc = subprocess.Popen([sys.executable, "-m", "devhost", "--port", "0", "--settings", str(settings),
                             "--function-key", "test-key"], cwd=ROOT, env=clean_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert set(ready["functions"]) >= {"oauth_connect", "oauth_callback", "oauth_disconnect", "sync_timer",
                                           "sync_user", "apply_writes", "apply_outbound"}
        url = ready["url"]
        s = requests.Session()
        s.trust_env = False
        # Function-level routes need the key; sync is disabled in these settings.
        assert s.get(f"{url}/oauth2/outlook/connect", params={"user": "1"}).status_code == 401
        resp = s.get(f"{url}/oauth2/outlook/connect", params={"user": "1", "code": "test-key"})
        assert resp.status_code == 403 and resp.json()["error"] == "sync_disabled"
        assert s.get(f"{url}/oauth2/outlook/callback").status_code == 400  # anonymous, no state
        assert s.post(f"{url}/admin/functions/sync_timer", params={"code": "test-key"}).status_code == 202
        status = s.get(f"{url}/admin/host/status", params={"code": "test-key"}).json()
        # The queue triggers bind %SyncJobsQueue%...: the host resolves them from the settings.
        assert {"devhost-sync-jobs", "devhost-writes", "devhost-outbound"} <= set(status["queues"])
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_python_m_devhost_names_missing_settings_instead_of_a_traceback(tmp_path):
    """Issue 15: it used to crash with KeyError %SyncSchedule%."""
    done = subprocess.run([sys.executable, "-m", "devhost", "--port", "0", "--settings", str(tmp_path / "none.json")],
                          cwd=ROOT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "OutlookApiClientID: is missing" in done.stderr and "make run" in done.stderr
