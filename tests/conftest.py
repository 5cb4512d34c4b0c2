"""Shared fixtures: a real Azurite for the session, and a fresh local stack per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def azurite():
    """Azurite from npm (pinned in package.json), in memory, on free loopback ports."""
    from devhost.services import Azurite

    server = Azurite().start()
    yield server
    server.stop()


@pytest.fixture
def stack(azurite, tmp_path):
    """Emulator + local host + the app's settings, isolated by a table-name prefix."""
    from devhost.stack import Stack

    s = Stack(connection_string=azurite.connection_string, state_dir=tmp_path / "emulator").start()
    yield s
    s.close()


@pytest.fixture
def make_stack(azurite, tmp_path):
    """Build a stack with other settings (sync disabled, multitenant...)."""
    from devhost.stack import Stack

    made = []

    def make(**kwargs):
        s = Stack(connection_string=azurite.connection_string, state_dir=tmp_path / f"emulator{len(made)}", **kwargs).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
