"""The local host started as `make run` starts it: `python -m devhost --with-services`."""

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


def test_python_m_devhost_serves_the_apps_own_functions_and_stops_cleanly(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {
        "OutlookApiClientID": "11111111-2222-3333-4444-555555555555", "OutlookApiClientSecret": "x",
        "SAMLTenantID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "EnableCalendarSync": "false",
        "SiteUrl": "http://127.0.0.1:7071", "SyncSchedule": "0 0 3 * * *",
        "TokenEncryptionKey": "k1:" + "A" * 43}}))
    env = {k: v for k, v in os.environ.items() if k not in ("AzureWebJobsStorage",)}
    env["OUTLOOK_SYNC_SETTINGS_FILE"] = str(settings)
    proc = subprocess.Popen([sys.executable, "-m", "devhost", "--with-services", "--port", "0", "--settings", str(settings),
                             "--function-key", "test-key"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
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
        assert "sync-jobs" in status["queues"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
