"""``python -m emulator``: one JSON line when ready, seed file, clean stop on SIGTERM."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_cli_prints_ready_line_serves_seed_and_stops(tmp_path):
    seed = {"tenants": [{"id": "6a8f3c1e-0000-4000-8000-000000000001", "name": "Contoso",
                         "apps": [{"client_id": "cid", "client_secret": "sec",
                                   "redirect_uris": ["https://x.example/cb"]}],
                         "users": [{"upn": "alice@contoso.onmicrosoft.com", "display_name": "Alice"}]}],
            "events": {"alice@contoso.onmicrosoft.com": [
                {"subject": "Tomorrow", "start": {"dateTime": "today+1T09:00:00", "timeZone": "UTC"},
                 "end": {"dateTime": "today+1T10:00:00", "timeZone": "UTC"}}]}}
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", "0",
                             "--state-dir", str(tmp_path / "state"), "--seed", str(seed_file)],
                            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert set(ready) == {"url", "ca_bundle"} and ready["url"].startswith("https://127.0.0.1:")
        s = requests.Session()
        s.trust_env = False
        users = s.get(ready["url"] + "/_control/users", verify=ready["ca_bundle"]).json()
        assert [u["upn"] for u in users] == ["alice@contoso.onmicrosoft.com"]
        box = s.get(ready["url"] + "/_control/mailbox/alice@contoso.onmicrosoft.com", verify=ready["ca_bundle"]).json()
        assert [e["subject"] for e in box] == ["Tomorrow"]
        assert box[0]["start"]["dateTime"][:4].isdigit() and "today" not in box[0]["start"]["dateTime"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
