"""`make demo` tells its story through the real paths; this keeps the story true (rules
D4, O1/D2, A1/A2, A3, A8/O6): each step checks itself and raises DemoFailed otherwise."""

from __future__ import annotations

import io

import pytest

from core.cli.output import Output
from devhost.demo import ALICE, BOB, NEW_TITLE, Demo, run_story

pytestmark = pytest.mark.slow


def test_the_demo_story_runs_step_by_step_and_ends_with_nothing_left_in_outlook(stack):
    for upn in (ALICE, BOB):
        stack.add_user(upn)
    assert stack.connect("1001", ALICE).status_code == 200
    assert stack.connect("1002", BOB).status_code == 200
    text = io.StringIO()
    run_story(Demo(stack, Output(stream=text)))
    steps = [line for line in text.getvalue().splitlines() if line[:3] in ("1. ", "2. ", "3. ", "4. ", "5. ")]
    assert [s[:2] for s in steps] == ["1.", "2.", "3.", "4.", "5."]
    for step, rule in zip(steps, ("(D4)", "D2)", "(A1, A2)", "(A3)", "(A8, O6)"), strict=True):
        assert rule in step, step
    assert f"{NEW_TITLE}  " in text.getvalue()  # the renamed event in the table of step 4
    heard = [line for line in text.getvalue().splitlines() if "Communifire hears:" in line]
    assert any("series_split" in line for line in heard)  # issue 12: the split reaches Communifire's feed
    assert any("applied  operation demo-" in line for line in heard)  # and each outbound operation's result
    assert stack.calendar("1001")["events"] == [] and stack.calendar("1002")["events"] == []
