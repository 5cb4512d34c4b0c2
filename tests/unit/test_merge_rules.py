"""Issue 11, concurrent edits merged by field (pure): the three-way merge after a 412,
D2 newer-wins for a field changed on both sides, and the snapshot after a write."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from core.plan.outbound.merge import merge_patch, snapshot_after_write, written_fields

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
BASE = {"title": "Standup", "location": "Room 1", "body": "", "organizer": "alice@contoso.com", "is_organizer": True}

#: snapshot field -> Graph PATCH property (the test's own small mapping)
GRAPH = {"title": "subject", "location": "location", "body": "body"}


def graph_body(values: dict) -> dict:
    out = {}
    for f, v in values.items():
        out[GRAPH[f]] = {"displayName": v} if f == "location" else {"contentType": "text", "content": v} \
            if f == "body" else v
    return out


def test_an_outlook_edit_of_another_field_is_left_alone_and_stays_a_change_for_the_inbound_sync():
    theirs = dict(BASE, location="Room 7")
    m = merge_patch({"subject": "Renamed"}, BASE, theirs, T0 + timedelta(minutes=5), T0)
    assert m.body == {"subject": "Renamed"} and m.conflicts == () and m.outlook_only == ("location",)
    after = snapshot_after_write(BASE, written_fields(m.body), dict(theirs, title="Renamed"))
    assert after["title"] == "Renamed" and after["location"] == "Room 1"  # the base: Room 7 is still news


def test_a_field_changed_on_both_sides_goes_to_the_newer_change_d2():
    theirs = dict(BASE, title="Outlook's name")
    newer_outlook = merge_patch({"subject": "Communifire's name"}, BASE, theirs, T0 + timedelta(minutes=1), T0)
    assert newer_outlook.body == {}
    (c,) = newer_outlook.conflicts
    assert (c.field, c.winner, c.kept, c.lost) == ("title", "outlook", "Outlook's name", "Communifire's name")
    assert c.reason.startswith("D2")
    newer_cf = merge_patch({"subject": "Communifire's name"}, BASE, theirs, T0 - timedelta(minutes=1), T0)
    assert newer_cf.body == {"subject": "Communifire's name"}
    assert newer_cf.conflicts[0].winner == "communifire" and newer_cf.conflicts[0].lost == "Outlook's name"


def test_time_properties_are_decided_together():
    base = dict(BASE, start="2026-03-02T09:00:00Z", end="2026-03-02T09:30:00Z", time_zone="UTC", is_all_day=False)
    theirs = dict(base, end="2026-03-02T10:00:00Z")
    ours = {"start": {"dateTime": "2026-03-02T08:00:00", "timeZone": "UTC"}, "isAllDay": False,
            "end": {"dateTime": "2026-03-02T08:30:00", "timeZone": "UTC"}, "subject": "x"}
    lost = merge_patch(ours, base, theirs, T0 + timedelta(hours=1), T0)
    assert lost.body == {"subject": "x"} and [c.field for c in lost.conflicts] == ["time"]
    won = merge_patch(ours, base, theirs, T0 - timedelta(hours=1), T0)
    assert won.body == ours


def test_properties_outside_the_snapshot_are_always_written():
    assert merge_patch({"sensitivity": "private"}, BASE, dict(BASE, title="t"), T0, T0).body == {"sensitivity": "private"}


# --------------------------------------------------------------------------- property

FIELDS = ("title", "location", "body")
edits = st.lists(
    st.one_of(
        st.tuples(st.just("outlook"), st.sampled_from(FIELDS), st.integers(0, 3)),
        st.tuples(st.just("communifire"), st.sampled_from(FIELDS), st.integers(0, 3)),
        st.tuples(st.just("deliver"), st.just(""), st.just(0)),
        st.tuples(st.just("sync"), st.just(""), st.just(0)),
    ),
    max_size=25,
)


class World:
    """One Outlook item and Communifire's copy, with the app between them: outbound
    writes guarded by the change key (412, merge, retry), inbound syncs by field against
    the synced snapshot."""

    def __init__(self):
        self.outlook = {f: "v0" for f in FIELDS}
        self.outlook_ck, self.outlook_modified = 0, T0
        self.cf = dict(self.outlook)
        self.base, self.base_ck = dict(self.outlook), 0
        self.pending: list[tuple[str, str, datetime]] = []

    def outlook_edit(self, f, v, now):
        self.outlook[f] = v
        self.outlook_ck += 1
        self.outlook_modified = now

    def deliver(self, now):
        if not self.pending:
            return
        f, v, at = self.pending.pop(0)
        ours = graph_body({f: v})
        body = ours
        if self.outlook_ck != self.base_ck:  # If-Match fails: 412, re-read, merge
            body = merge_patch(ours, self.base, dict(self.outlook), self.outlook_modified, at).body
        written = []
        for prop, value in body.items():
            field = next(k for k, p in GRAPH.items() if p == prop)
            self.outlook[field] = value["displayName"] if prop == "location" else value["content"] \
                if prop == "body" else value
            written.append(field)
        if body:
            self.outlook_ck += 1
            self.outlook_modified = now
            self.cf.update({fld: self.outlook[fld] for fld in written})
        # the link records what we wrote (from the response) and the response's change key
        self.base = snapshot_after_write(self.base, written, dict(self.outlook))
        self.base_ck = self.outlook_ck

    def sync(self):
        for f in FIELDS:
            if self.outlook[f] != self.base[f]:
                self.cf[f] = self.outlook[f]
        self.base, self.base_ck = dict(self.outlook), self.outlook_ck


@settings(max_examples=300, deadline=None)
@given(edits)
def test_property_interleaved_outlook_and_communifire_edits_lose_no_field_change(script):
    w = World()
    last = {"outlook": {}, "communifire": {}}
    for i, (kind, f, v) in enumerate(script):
        now = T0 + timedelta(minutes=i + 1)
        if kind == "outlook":
            value = f"outlook {i} {v}"
            w.outlook_edit(f, value, now)
            last["outlook"][f] = value
        elif kind == "communifire":
            value = f"cf {i} {v}"
            w.cf[f] = value
            w.pending.append((f, value, now))
            last["communifire"][f] = value
        elif kind == "deliver":
            w.deliver(now)
        else:
            w.sync()
    end = T0 + timedelta(minutes=len(script) + 1)
    while w.pending:
        w.deliver(end)
    w.sync()
    assert w.cf == w.outlook  # both sides agree
    for f in FIELDS:
        sides = [s for s in ("outlook", "communifire") if f in last[s]]
        if sides == ["outlook"] or sides == ["communifire"]:
            # changed on one side only: that change is what both show (nothing lost)
            assert w.outlook[f] == last[sides[0]][f], (f, script)
        elif sides:
            # changed on both: one side's latest change won (D2), never an older value
            assert w.outlook[f] in (last["outlook"][f], last["communifire"][f]), (f, script)
