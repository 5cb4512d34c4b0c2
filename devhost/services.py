"""Start and stop the local services the app needs: Azurite and the Outlook emulator.

Owns: finding free loopback ports (Azurite is started on port 0 and reports the ports
it took), the Azurite development connection string, and stopping both cleanly
(Azurite with SIGINT: after SIGTERM it was seen spinning at full CPU).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Azurite's well-known development account (public, documented; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    raise FileNotFoundError("Azurite is not installed: run 'npm ci' (the Makefile does it)")


@dataclass
class Azurite:
    """An in-memory Azurite on free loopback ports."""

    process: subprocess.Popen | None = None
    ports: dict[str, int] = field(default_factory=dict)
    workdir: str = ""

    def start(self, timeout: float = 60.0) -> "Azurite":
        self.workdir = tempfile.mkdtemp(prefix="azurite-")
        log_path = Path(self.workdir) / "azurite.log"
        cmd = [
            azurite_binary(), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", "0", "--queueHost", "127.0.0.1", "--queuePort", "0",
            "--tableHost", "127.0.0.1", "--tablePort", "0",
        ]
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")
        while time.monotonic() < deadline:
            found = {m.group(1).lower(): int(m.group(2)) for m in pattern.finditer(log_path.read_text())}
            if len(found) == 3:
                self.ports = found
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited early:\n{log_path.read_text()}")
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("Azurite did not start in time")

    @property
    def connection_string(self) -> str:
        p = self.ports
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{p['blob']}/{DEV_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{p['queue']}/{DEV_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{p['table']}/{DEV_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class EmulatorProcess:
    """The Outlook emulator (``python -m emulator``) in its own process."""

    process: subprocess.Popen | None = None
    url: str = ""
    ca_bundle: str = ""
    state_dir: str = ""

    def start(self, seed: str | None = None, timeout: float = 60.0) -> "EmulatorProcess":
        self.state_dir = tempfile.mkdtemp(prefix="outlook-emulator-")
        cmd = [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", "0", "--state-dir", self.state_dir]
        if seed:
            cmd += ["--seed", seed]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, text=True,
                                        start_new_session=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Outlook emulator exited before it was ready")
        ready = json.loads(line)
        self.url, self.ca_bundle = ready["url"], ready["ca_bundle"]
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
