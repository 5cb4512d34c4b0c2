"""Hypothesis properties: calendarView vs instances, paging and delta exactly-once."""
from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ZONES = ["UTC", "Pacific Standard Time", "W. Europe Standard Time", "AUS Eastern Standard Time"]
DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_counter = itertools.count()


@st.composite
def series(draw):
    kind = draw(st.sampled_from(["daily", "weekly", "absoluteMonthly", "relativeMonthly",
                                 "absoluteYearly", "relativeYearly"]))
    pattern = {"type": kind, "interval": draw(st.integers(1, 3))}
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        pattern["daysOfWeek"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
    if kind in ("absoluteMonthly", "absoluteYearly"):
        pattern["dayOfMonth"] = draw(st.integers(1, 31))
    if kind in ("absoluteYearly", "relativeYearly"):
        pattern["month"] = draw(st.integers(1, 12))
    if kind.startswith("relative"):
        pattern["index"] = draw(st.sampled_from(["first", "second", "third", "fourth", "last"]))
    start = dt.date(2030, 1, 1) + dt.timedelta(days=draw(st.integers(0, 120)))
    rtype = draw(st.sampled_from(["noEnd", "endDate", "numbered"]))
    rng = {"type": rtype, "startDate": start.isoformat()}
    if rtype == "endDate":
        rng["endDate"] = (start + dt.timedelta(days=draw(st.integers(0, 400)))).isoformat()
    if rtype == "numbered":
        rng["numberOfOccurrences"] = draw(st.integers(1, 30))
    hour = draw(st.integers(0, 23))
    minutes = draw(st.sampled_from([15, 30, 60, 90, 24 * 60]))
    tz = draw(st.sampled_from(ZONES))
    s = dt.datetime.combine(start, dt.time(hour))
    e = s + dt.timedelta(minutes=minutes)
    return {"subject": f"S{next(_counter)}",
            "start": {"dateTime": s.isoformat(), "timeZone": tz},
            "end": {"dateTime": e.isoformat(), "timeZone": tz},
            "recurrence": {"pattern": pattern, "range": rng}}


@st.composite
def single(draw):
    s = dt.datetime(2030, 1, 1) + dt.timedelta(hours=draw(st.integers(0, 24 * 200)))
    e = s + dt.timedelta(minutes=draw(st.sampled_from([0, 30, 60, 600])))
    return {"subject": f"E{next(_counter)}", "start": {"dateTime": s.isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": e.isoformat(), "timeZone": "UTC"}}


def _create(g, body):
    """Create, or None for a series whose range holds no slot (Exchange refuses those)."""
    r = g.post("/me/events", json=body)
    if r.status_code == 400 and r.json()["error"]["code"] == "ErrorRecurrenceHasNoOccurrence":
        return None
    assert r.status_code == 201, r.text
    return r.json()


def _fresh(tenant):
    user = tenant.user(f"p{next(_counter)}")
    return tenant.graph(user["upn"])


def _window(draw_start: int, span: int) -> tuple[str, str]:
    lo = dt.datetime(2030, 1, 1) + dt.timedelta(days=draw_start)
    hi = lo + dt.timedelta(days=span)
    return lo.strftime("%Y-%m-%dT%H:%M:%SZ"), hi.strftime("%Y-%m-%dT%H:%M:%SZ")


@SETTINGS
@given(masters=st.lists(series(), min_size=1, max_size=3), singles=st.lists(single(), max_size=3),
       start=st.integers(0, 200), span=st.integers(1, 200), edits=st.lists(st.integers(0, 50), max_size=3))
def test_calendar_view_is_union_of_instances_and_singles(tenant, masters, singles, start, span, edits):
    g = _fresh(tenant)
    ids = [m["id"] for m in (_create(g, b) for b in masters) if m]
    assume(ids)
    for s in singles:
        g.ok("POST", "/me/events", 201, json=s)
    lo, hi = _window(start, span)
    # delete or change a few occurrences (O1/O7) before comparing
    first = g.all_pages(f"/me/events/{ids[0]}/instances?startDateTime={lo}&endDateTime={hi}")
    for n, k in enumerate(edits):
        if first:
            target = first[k % len(first)]["id"]
            if n % 2:
                g.delete(f"/me/events/{target}")
            else:
                g.patch(f"/me/events/{target}", json={"subject": "edited"})
    view = g.all_pages(f"/me/calendarView?startDateTime={lo}&endDateTime={hi}&$top=1000")
    expected = set()
    for mid in ids:
        expected |= {(r["id"], r["start"]["dateTime"]) for r in
                     g.all_pages(f"/me/events/{mid}/instances?startDateTime={lo}&endDateTime={hi}&$top=1000")}
    lo_s, hi_s = lo[:-1] + ".0000000", hi[:-1] + ".0000000"
    for e in g.all_pages("/me/events?$top=1000"):
        if e["type"] == "singleInstance" and e["start"]["dateTime"] <= hi_s and e["end"]["dateTime"] >= lo_s:
            expected.add((e["id"], e["start"]["dateTime"]))
    assert {(r["id"], r["start"]["dateTime"]) for r in view} == expected
    assert all(r["type"] != "seriesMaster" for r in view)


@SETTINGS
@given(masters=st.lists(series(), min_size=1, max_size=2), singles=st.lists(single(), max_size=5),
       page=st.integers(1, 12), start=st.integers(0, 100), span=st.integers(1, 300))
def test_paging_returns_each_item_exactly_once(tenant, masters, singles, page, start, span):
    g = _fresh(tenant)
    for m in masters + singles:
        _create(g, m)
    lo, hi = _window(start, span)
    whole = g.ok("GET", f"/me/calendarView?startDateTime={lo}&endDateTime={hi}&$top=1000")["value"]
    paged = g.all_pages(f"/me/calendarView?startDateTime={lo}&endDateTime={hi}",
                        headers={"Prefer": f"odata.maxpagesize={page}"})
    ids = [r["id"] for r in paged]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r["id"] for r in whole}


@SETTINGS
@given(masters=st.lists(series(), min_size=1, max_size=2), singles=st.lists(single(), max_size=4),
       page=st.integers(1, 7), start=st.integers(0, 100), span=st.integers(1, 200),
       changes=st.lists(st.sampled_from(["patch_master", "add_single", "delete_single", "edit_occ"]), max_size=4))
def test_delta_rounds_return_each_item_once_and_match_calendar_view(tenant, masters, singles, page, start,
                                                                    span, changes):
    g = _fresh(tenant)
    made = [m for m in (_create(g, b) for b in masters + singles) if m]
    assume(made)
    lo, hi = _window(start, span)
    headers = {"Prefer": f"odata.maxpagesize={page}"}
    rows, link = g.delta_round(f"/me/calendarView/delta?startDateTime={lo}&endDateTime={hi}", headers)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    view = g.all_pages(f"/me/calendarView?startDateTime={lo}&endDateTime={hi}&$top=1000")
    assert {r["id"] for r in rows if r["type"] != "seriesMaster"} == {r["id"] for r in view}
    replica = {r["id"]: r for r in rows}
    for c in changes:
        if c == "patch_master" and made:  # an earlier delete_single may have removed the only item
            g.ok("PATCH", f"/me/events/{made[0]['id']}", json={"subject": "changed"})
        elif c == "add_single":
            made.append(g.ok("POST", "/me/events", 201, json={
                "subject": "new", "start": {"dateTime": lo[:-1], "timeZone": "UTC"},
                "end": {"dateTime": lo[:-1], "timeZone": "UTC"}}))
        elif c == "delete_single":
            singles_made = [m for m in made if m["type"] == "singleInstance"]
            if singles_made:
                g.delete(f"/me/events/{singles_made[-1]['id']}")
                made.remove(singles_made[-1])
        elif c == "edit_occ" and view:
            g.patch(f"/me/events/{view[0]['id']}", json={"subject": "exc"})
    rows2, _ = g.delta_round(link, headers)
    ids2 = [r["id"] for r in rows2]
    assert len(ids2) == len(set(ids2))
    for r in rows2:
        if "@removed" in r:
            replica.pop(r["id"], None)
        else:
            replica[r["id"]] = r
    view2 = g.all_pages(f"/me/calendarView?startDateTime={lo}&endDateTime={hi}&$top=1000")
    # no occurrence was deleted, so the replica converges to calendarView (+ master rows)
    assert {i for i, r in replica.items() if r["type"] != "seriesMaster"} == {r["id"] for r in view2}
