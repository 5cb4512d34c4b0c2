"""STYLE rule 2: the planning core does no I/O and reads no clock."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
PURE = ["model", "recurrence", "timezones", "outlook_items", "reconcile", "rows", "calendar_view", "outbound", "settings"]
FORBIDDEN_MODULES = {"os", "azure", "msal", "requests", "socket", "subprocess", "time", "urllib3"}


@pytest.mark.parametrize("name", PURE)
def test_planning_modules_import_no_adapter_and_read_no_clock(name):
    tree = ast.parse((CORE / f"{name}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_MODULES
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not {c for c in calls if c.endswith(("datetime.now", "datetime.utcnow", "date.today", "time.time"))}
