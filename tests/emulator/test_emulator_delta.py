"""calendarView/delta: rounds, bare occurrences, master rows, tombstones (GRAPH.md section 2)."""
from __future__ import annotations

import json

import pytest

from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo
WINDOW = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z"


@pytest.fixture
def alice(tenant):
    user = tenant.user("alice")
    return user, tenant.graph(user["upn"])


def _daily(g, n=3, subject="Daily", start_day="2030-01-06"):
    return g.ok("POST", "/me/events", 201, json={
        "subject": subject, "start": {"dateTime": f"{start_day}T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{start_day}T10:30:00", "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "daily", "interval": 1},
                       "range": {"type": "numbered", "startDate": start_day, "numberOfOccurrences": n}}})


def test_first_round_has_master_row_bare_occurrences_and_recorded_shapes(alice, ev):
    _, g = alice
    m = _daily(g)
    s = g.ok("POST", "/me/events", 201, json=ev("Single", "2030-01-10T10:00:00", "2030-01-10T11:00:00"))
    rows, delta_link = g.delta_round(f"/me/calendarView/delta?{WINDOW}")
    by_type = {}
    for r in rows:
        by_type.setdefault(r["type"], []).append(r)
    assert [r["id"] for r in by_type["seriesMaster"]] == [m["id"]]
    assert [r["id"] for r in by_type["singleInstance"]] == [s["id"]]
    recorded = json.loads((PAYLOADS / "calendarview_delta_page_seriesmaster_and_bare_occurrences.json").read_text())
    bare_keys = set(recorded["value"][1])
    assert all(set(o) == bare_keys for o in by_type["occurrence"]) and len(by_type["occurrence"]) == 3
    assert set(recorded["value"][0]) - set(by_type["seriesMaster"][0]) == set()
    assert "$deltatoken=" in delta_link
    again, _ = g.delta_round(delta_link)
    assert again == []


def test_pages_follow_maxpagesize_and_a_full_last_page_is_followed_by_an_empty_one(alice, ev):
    _, g = alice
    for i in range(4):
        g.ok("POST", "/me/events", 201, json=ev(f"E{i}", f"2030-01-1{i}T10:00:00", f"2030-01-1{i}T11:00:00"))
    headers = {"Prefer": "odata.maxpagesize=2"}
    p1 = g.ok("GET", f"/me/calendarView/delta?{WINDOW}", headers=headers)
    assert len(p1["value"]) == 2 and "@odata.nextLink" in p1 and "$skiptoken=" in p1["@odata.nextLink"]
    p2 = g.ok("GET", p1["@odata.nextLink"], headers=headers)
    assert len(p2["value"]) == 2 and "@odata.nextLink" in p2
    p3 = g.ok("GET", p2["@odata.nextLink"], headers=headers)
    assert p3["value"] == [] and "@odata.deltaLink" in p3
    assert g.get(f"/me/calendarView/delta?{WINDOW}&$select=subject").status_code == 400


def test_updates_deletes_and_out_of_window_changes(alice, ev):
    _, g = alice
    inside = g.ok("POST", "/me/events", 201, json=ev("In", "2030-01-10T10:00:00", "2030-01-10T11:00:00"))
    gone = g.ok("POST", "/me/events", 201, json=ev("Gone", "2030-01-11T10:00:00", "2030-01-11T11:00:00"))
    _, link = g.delta_round(f"/me/calendarView/delta?{WINDOW}")
    g.ok("PATCH", f"/me/events/{inside['id']}", json={"subject": "In2"})
    g.delete(f"/me/events/{gone['id']}")
    outside = g.ok("POST", "/me/events", 201, json=ev("Far", "2031-06-01T10:00:00", "2031-06-01T11:00:00"))
    rows, link = g.delta_round(link)
    removed = {r["id"] for r in rows if "@removed" in r}
    changed = {r["id"]: r for r in rows if "@removed" not in r}
    assert changed[inside["id"]]["subject"] == "In2"
    assert removed == {gone["id"], outside["id"]}
    tomb = next(r for r in rows if r["id"] == gone["id"])
    recorded = json.loads((PAYLOADS / "calendarview_delta_docs_next_round_removed_deltalink.json").read_text())["value"][0]
    assert set(tomb) == set(recorded) and tomb["@removed"] == {"reason": "deleted"}


def test_deleted_occurrence_leaves_no_tombstone_but_master_is_re_emitted(alice):
    _, g = alice
    m = _daily(g)
    rows, link = g.delta_round(f"/me/calendarView/delta?{WINDOW}")
    occ = sorted((r for r in rows if r["type"] == "occurrence"), key=lambda r: r["start"]["dateTime"])
    g.delete(f"/me/events/{occ[1]['id']}")
    rows, _ = g.delta_round(link)
    assert not any("@removed" in r for r in rows)
    assert occ[1]["id"] not in {r["id"] for r in rows}
    assert m["id"] in {r["id"] for r in rows}


def test_series_edit_re_emits_master_and_all_occurrences_D1(alice):
    _, g = alice
    m = _daily(g)
    _, link = g.delta_round(f"/me/calendarView/delta?{WINDOW}")
    g.ok("PATCH", f"/me/events/{m['id']}", json={"subject": "New"})
    rows, _ = g.delta_round(link)
    assert sorted(r["type"] for r in rows) == ["occurrence"] * 3 + ["seriesMaster"]


def test_exception_rows_are_full_and_series_delete_gives_tombstones(alice):
    _, g = alice
    m = _daily(g)
    rows, link = g.delta_round(f"/me/calendarView/delta?{WINDOW}")
    occ = [r for r in rows if r["type"] == "occurrence"]
    g.ok("PATCH", f"/me/events/{occ[0]['id']}", json={"subject": "Exc"})
    rows, link = g.delta_round(link)
    exc = next(r for r in rows if r["id"] == occ[0]["id"])
    assert exc["type"] == "exception" and exc["subject"] == "Exc" and "iCalUId" in exc
    g.delete(f"/me/events/{m['id']}")
    rows, _ = g.delta_round(link)
    assert {r["id"] for r in rows if "@removed" in r} == {m["id"]} | {o["id"] for o in occ}


def test_expired_delta_token_is_410_full_resync(alice, ctl):
    user, g = alice
    _, link = g.delta_round(f"/me/calendarView/delta?{WINDOW}")
    ctl.expire_delta_tokens(user["upn"])
    r = g.get(link)
    assert r.status_code == 410 and "$deltatoken=" in r.headers["Location"]
    assert r.json()["error"]["code"] == "SyncStateNotFound"


def test_delta_for_users_path_keeps_the_prefix(alice, ev):
    user, g = alice
    g.ok("POST", "/me/events", 201, json=ev("X", "2030-01-10T10:00:00", "2030-01-10T11:00:00"))
    page = g.ok("GET", f"/users/{user['id']}/calendarView/delta?{WINDOW}")
    assert f"/v1.0/users/{user['id']}/calendarView/delta?" in page["@odata.deltaLink"]
