"""STYLE rule 2: the planning core reads no clock.

What the planning core may *import* is checked by import-linter (pyproject.toml,
``[tool.importlinter]``, run by ``make test``); it cannot see a call to ``datetime.now``,
so this test does."""

import ast
from pathlib import Path

import pytest

PLAN = Path(__file__).resolve().parents[2] / "core" / "plan"
CLOCKS = ("datetime.now", "datetime.utcnow", "date.today", "time.time", "time.monotonic")


@pytest.mark.parametrize("path", sorted(PLAN.rglob("*.py")), ids=lambda p: str(p.relative_to(PLAN)))
def test_planning_module_reads_no_clock(path):
    tree = ast.parse(path.read_text())
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not {c for c in calls if c.endswith(CLOCKS)}, f"{path.name} reads the clock"
