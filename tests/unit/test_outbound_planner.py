"""The pure outbound planner, rule by rule: which Graph writes, why, and the new state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from core.plan.model import Attendee, Event, InstanceException, OutlookLink, Rsvp, Segment
from core.plan.outbound import DirectoryUser, parse_message, plan_outbound, plan_title_fixes, transaction_id
from core.plan.recurrence import parse_recurrence

UTC = timezone.utc
PROP = "String {00000000-0000-0000-0000-000000000000} Name CommunifireEventId"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
ORG = {"user_id": "1001", "email": ALICE}
USERS = {
    "1001": DirectoryUser("1001", ALICE, True),
    "1002": DirectoryUser("1002", BOB, True),
    "1003": DirectoryUser("1003", CAROL, True),
}


def z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def msg(operation: str, scope: str = "all", instance: datetime | None = None, actor: str = "1001", **extra):
    data = {"v": 1, "operation_id": "op-1", "occurred_at": "2026-03-01T08:00:00Z", "actor": {"user_id": actor},
            "calendar": extra.pop("calendar", "my"), "operation": operation, "scope": scope,
            "event": {"id": "e1", "organizer": ORG, **extra.pop("event", {})}, **extra}
    if instance is not None:
        data["instance"] = {"original_start": z(instance)}
    return parse_message(data)


def series(count: int = 5, exceptions=None, deleted=frozenset(), title: str = "Standup") -> Event:
    rec = parse_recurrence({"pattern": {"type": "daily", "interval": 1},
                            "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": count,
                                      "recurrenceTimeZone": "UTC"}})
    seg = Segment(T0, T0 + timedelta(minutes=30), title, time_zone="UTC", recurrence=rec,
                  attendees=(Attendee(BOB), Attendee(CAROL)))
    return Event("e1", ALICE, (seg,), exceptions=exceptions or {}, deleted=deleted, meeting_uid="UID")


def links(event: Event) -> list[OutlookLink]:
    seg = event.segments[0]
    return [OutlookLink("1001", "M1", "e1", "series", "h", segment_start=seg.start),
            OutlookLink("1002", "B1", "e1", "series", "h", segment_start=seg.start, evidence="A7: x"),
            OutlookLink("1003", "C1", "e1", "series", "h", segment_start=seg.start, evidence="A7: x")]


def plan(m, event=None, link_list=None, users=USERS):
    return plan_outbound(m, event, link_list if link_list is not None else (links(event) if event else []), users,
                         app_property=PROP)


def exc(key, **changes):
    return InstanceException(key, changes, datetime(2026, 2, 1, tzinfo=UTC), "communifire")


def test_a_create_posts_once_to_the_organizer_with_a_transaction_id_and_our_event_id_rules_c1_d4():
    p = plan(msg("create", event={"title": "Standup", "start": z(T0), "end": z(T0 + timedelta(minutes=30)),
                                  "recurrence": {"pattern": {"type": "daily", "interval": 1},
                                                 "range": {"type": "numbered", "startDate": "2026-03-02",
                                                           "numberOfOccurrences": 3}},
                                  "attendees": [{"email": BOB, "user_id": "1002"}]}))
    (step,) = p.steps
    assert (step.user_id, step.action, step.rule) == ("1001", "create", "D4")
    assert step.body["transactionId"] == transaction_id("op-1", "e1", T0)
    assert step.body["recurrence"]["range"] == {"type": "numbered", "startDate": "2026-03-02",
                                               "numberOfOccurrences": 3, "recurrenceTimeZone": "UTC"}
    assert step.body["singleValueExtendedProperties"] == [{"id": PROP, "value": "e1"}]
    assert [(e.user_id, e.discover) for e in p.expects] == [("1001", ""), ("1002", "meeting")]
    assert p.new_event.title == "Standup" and p.new_event.organizer == ALICE


def test_a_replanned_create_gives_the_same_step_ids_so_done_steps_are_skipped():
    m = msg("create", event={"title": "X", "start": z(T0), "end": z(T0 + timedelta(hours=1))})
    assert [s.id for s in plan(m).steps] == [s.id for s in plan(m).steps]


def test_a_space_calendar_is_refused_with_a_reason_rule_c6():
    p = plan(msg("create", calendar="space", event={"title": "X", "start": z(T0), "end": z(T0)}))
    assert "C6" in p.refused and p.steps == ()


def test_an_organizer_who_is_not_connected_is_refused_before_any_write_section_7():
    users = {**USERS, "1001": DirectoryUser("1001", ALICE, False)}
    p = plan(msg("update", event={"title": "Y"}), series(), users=users)
    assert "not connected" in p.refused and p.steps == ()


def test_an_unknown_instance_is_refused_rule_d2():
    p = plan(msg("update", "single", T0 + timedelta(hours=1), event={"title": "Y"}), series())
    assert "not an instance" in p.refused


def test_an_update_that_changes_nothing_writes_nothing():
    p = plan(msg("update", event={"title": "Standup"}), series())
    assert p.steps == () and p.ok


def test_a_title_change_to_all_is_written_once_on_the_master_and_reaches_other_exceptions_rules_a3_a6_o4():
    key = T0 + timedelta(days=1)
    event = series(exceptions={key: exc(key, location="Room 9")})
    p = plan(msg("update", event={"title": "Daily"}), event)
    assert [(s.action, s.target, s.rule) for s in p.steps] == [("patch", "M1", "A3"), ("patch_occurrence", "M1", "A6")]
    assert p.steps[0].body == {"subject": "Daily"} and p.steps[1].body == {"subject": "Daily"}
    assert p.steps[1].original_start == key
    assert dict(p.new_event.exceptions[key].changes) == {"location": "Room 9"}


def test_an_exception_that_changed_the_title_on_purpose_keeps_it_rule_a6():
    key = T0 + timedelta(days=1)
    p = plan(msg("update", event={"title": "Daily"}), series(exceptions={key: exc(key, title="Planning")}))
    assert [s.action for s in p.steps] == ["patch"]
    assert dict(p.new_event.exceptions[key].changes) == {"title": "Planning"}


def test_a_series_time_change_reapplies_own_non_time_changes_and_deletes_after_the_reset_rules_a6_o5():
    key, gone = T0 + timedelta(days=1), T0 + timedelta(days=3)
    event = series(exceptions={key: exc(key, title="Planning", start=key + timedelta(hours=1),
                                        end=key + timedelta(hours=1, minutes=30))}, deleted=frozenset({gone}))
    p = plan(msg("update", event={"start": z(T0 + timedelta(hours=2)), "end": z(T0 + timedelta(hours=2, minutes=30))}),
             event)
    actions = [(s.action, s.rule) for s in p.steps]
    assert actions == [("patch", "A3"), ("patch_occurrence", "A6"), ("delete_occurrence", "A6")]
    assert "recurrence" in p.steps[0].body and p.steps[1].body == {"subject": "Planning"}
    new_key = key + timedelta(hours=2)
    assert dict(p.new_event.exceptions[new_key].changes) == {"title": "Planning"}  # time change dropped (O5)
    assert p.new_event.deleted == frozenset({gone + timedelta(hours=2)})


def test_editing_one_instance_patches_only_that_occurrence_rule_c3_o1():
    key = T0 + timedelta(days=2)
    p = plan(msg("update", "single", key, event={"title": "Special"}), series())
    (step,) = p.steps
    assert (step.action, step.original_start, step.body) == ("patch_occurrence", key, {"subject": "Special"})
    assert dict(p.new_event.exceptions[key].changes) == {"title": "Special"}


def test_editing_from_an_instance_forward_cuts_the_master_and_creates_a_linked_child_rules_c3_o2_a1():
    key = T0 + timedelta(days=2)
    p = plan(msg("update", "following", key, event={"title": "Later"}), series())
    assert [(s.action, s.rule) for s in p.steps] == [("patch", "O2"), ("create", "O2")]
    assert p.steps[0].body["recurrence"]["range"] == {"type": "endDate", "startDate": "2026-03-02",
                                                      "endDate": "2026-03-03", "recurrenceTimeZone": "UTC"}
    assert p.steps[1].body["recurrence"]["range"]["numberOfOccurrences"] == 3  # D4: the remaining count
    assert [s.title for s in p.new_event.segments] == ["Standup", "Later"]  # one event, two segments (A1)
    assert p.new_event.segments[1].start == key


def test_editing_from_the_first_instance_forward_is_an_edit_of_all_rule_c3():
    p = plan(msg("update", "following", T0, event={"title": "All"}), series())
    assert [(s.action, s.rule) for s in p.steps] == [("patch", "A3")]


def test_deleting_a_series_cancels_single_instance_invitations_first_rules_a8_o6():
    key = T0 + timedelta(days=1)
    event = series(exceptions={key: exc(key, attendees=(Attendee(BOB), Attendee(CAROL), Attendee("dave@contoso.com")))})
    link_list = links(event) + [OutlookLink("1003", "C-inst", "e1", "instance", "h", instance_start=key)]
    p = plan(msg("delete"), event, link_list)
    assert [(s.user_id, s.action, s.rule) for s in p.steps] == [
        ("1001", "delete_occurrence", "A8"), ("1001", "delete", "C2"), ("1003", "delete", "A8"),
        ("1002", "delete", "C2"), ("1003", "delete", "C2")]
    assert p.delete_event and p.new_event is None


def test_deleting_an_event_that_is_not_stored_is_nothing_to_do():
    p = plan(msg("delete"), None)
    assert p.ok and p.steps == () and not p.delete_event


def test_deleting_one_instance_deletes_the_occurrence_and_records_it_rule_c2():
    key = T0 + timedelta(days=1)
    p = plan(msg("delete", "single", key), series())
    assert [(s.action, s.original_start) for s in p.steps] == [("delete_occurrence", key)]
    assert key in p.new_event.deleted


def test_deleting_from_an_instance_forward_ends_the_series_before_it_rule_c2():
    key = T0 + timedelta(days=3)
    p = plan(msg("delete", "following", key), series())
    assert [s.action for s in p.steps] == ["patch"]
    assert p.steps[0].body["recurrence"]["range"]["endDate"] == "2026-03-04"


def test_an_rsvp_from_an_instance_forward_is_an_all_instances_answer_in_outlook_rule_a5():
    p = plan(msg("rsvp", "following", T0 + timedelta(days=2), actor="1002", rsvp={"response": "accepted"}), series())
    (step,) = p.steps
    assert (step.user_id, step.action, step.target, step.body, step.rule) == ("1002", "respond", "B1",
                                                                             {"action": "accept"}, "A5")
    (rsvp,) = p.new_event.rsvps
    assert (rsvp.scope, rsvp.response) == ("following", "accepted")


def test_an_rsvp_to_one_instance_answers_that_occurrence_only_rule_c4():
    key = T0 + timedelta(days=1)
    p = plan(msg("rsvp", "single", key, actor="1003", rsvp={"response": "declined"}), series())
    (step,) = p.steps
    assert (step.action, step.target, step.original_start) == ("respond_occurrence", "C1", key)
    assert p.new_event.rsvps == (Rsvp("1003", "single", "declined", p.new_event.rsvps[0].at, key),)


def test_the_organizer_cannot_rsvp_to_their_own_meeting():
    assert "organizer" in plan(msg("rsvp", "all", rsvp={"response": "accepted"}), series()).refused


def test_inviting_to_one_instance_adds_the_invitee_to_that_occurrence_only_rule_c5():
    key = T0 + timedelta(days=2)
    p = plan(msg("invite", "single", key, invitee={"user_id": "1004", "email": "dave@contoso.com"}), series())
    (step,) = p.steps
    assert (step.action, step.rule, step.original_start) == ("patch_occurrence", "C5", key)
    assert [a["emailAddress"]["address"] for a in step.body["attendees"]] == [BOB, CAROL, "dave@contoso.com"]
    assert [a.email for a in p.new_event.exceptions[key].changes["attendees"]][-1] == "dave@contoso.com"
    assert p.new_event.segments[0].attendees == series().segments[0].attendees


def test_a_connected_single_instance_invitee_is_expected_to_get_an_instance_copy_rule_c5():
    users = {**USERS, "1004": DirectoryUser("1004", "dave@contoso.com", True)}
    key = T0 + timedelta(days=2)
    p = plan(msg("invite", "single", key, invitee={"user_id": "1004", "email": "dave@contoso.com"}), series(),
             users=users)
    (exp,) = [e for e in p.expects if e.user_id == "1004"]
    assert (exp.kind, exp.discover, exp.instance_start) == ("instance", "instance", key)


def test_a_single_instance_copy_showing_another_name_gets_communifires_title_rule_a7():
    key = T0 + timedelta(days=1)
    event = series(title="New name")
    copy = OutlookLink("1003", "C-inst", "e1", "instance", "h", instance_start=key)
    (step,) = plan_title_fixes(event, [(copy, {"subject": "Old name"})], "1001", ["1003"])
    assert (step.user_id, step.action, step.body, step.rule) == ("1003", "patch", {"subject": "New name"}, "A7")
    assert plan_title_fixes(event, [(copy, {"subject": "New name"})], "1001", ["1003"]) == ()


@pytest.mark.parametrize("operation", ["update", "rsvp", "invite"])
def test_a_change_to_an_unknown_event_is_refused(operation):
    extra = {"rsvp": {"response": "accepted"}} if operation == "rsvp" else (
        {"invitee": {"email": "dave@contoso.com"}} if operation == "invite" else {"event": {"title": "x"}})
    m = msg(operation, "single" if operation == "invite" else "all", actor="1002", **extra)
    assert "unknown" in plan(m, None).refused
