"""Unit tests for core.plan.outlook_items: Graph event JSON (the real payloads in
shared/graph-payloads beside the repo) normalised into OutlookItem values, the content hash
(rules A9, D1), and build_snapshot."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from core.plan.model import Attendee, Window
from core.plan.outlook_items import (
    APP_EVENT_ID_PROPERTY,
    OutlookItemError,
    build_snapshot,
    content_hash,
    content_of,
    field_from_json,
    field_to_json,
    parse_item,
    recurrence_from_json,
    recurrence_to_json,
)

from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo
UTC = timezone.utc


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


def test_a_series_master_from_a_real_response_has_its_normalised_recurrence_and_zone():
    item = parse_item(load("seriesmaster_create_response_weekly_docs.json"))
    assert item.type == "seriesMaster"
    assert item.title == "Let's go for lunch"
    # 12:00 Pacific Daylight Time on 2017-09-04 is 19:00 UTC
    assert item.start == datetime(2017, 9, 4, 19, 0, tzinfo=UTC)
    assert item.time_zone == "Pacific Standard Time"
    assert item.recurrence is not None
    assert item.recurrence.pattern.days_of_week == ("monday",)
    assert item.recurrence.range.end_date == date(2017, 12, 31)
    assert item.is_organizer and item.response == "organizer"
    assert item.response_time is None  # the 0001-01-01 sentinel means "no time"
    assert item.attendees == (Attendee("adelev@contoso.onmicrosoft.com", "Adele Vance", "required", "none"),)
    assert item.organizer == "alexw@contoso.onmicrosoft.com"
    assert item.last_modified == datetime(2017, 10, 7, 4, 59, 13, 813642, tzinfo=UTC)  # 7 digits truncated


def test_a_single_instance_keeps_the_text_of_its_html_body_and_its_identity():
    item = parse_item(load("event_single_instance_symplicity.json"))
    assert item.type == "singleInstance"
    assert item.original_start is None and item.series_master_id is None
    assert "Testing Reader Interface" in item.body
    assert "\r" not in item.body and "<" not in item.body  # an HTML body that still arrives: its text only (issue 10)
    assert item.ical_uid == "foo_uid"
    assert item.change_key == "FVL/lW3rKQAACGSF4A=="
    assert item.location == "Sikkim"


def test_an_html_body_that_still_arrives_is_reduced_to_its_visible_text_nothing_active():
    """Issue 10: bodies are read as text (Prefer); an HTML one is a fallback, never stored as is."""
    raw = dict(load("event_single_instance_symplicity.json"))
    raw["body"] = {"contentType": "html", "content": (
        "<html><head><style>p{}</style><script>var a=1</script></head><body><p>Agenda &amp; notes</p>"
        "<script>alert(document.cookie)</script><img src=x onerror=\"alert(1)\"><div onclick=\"x()\">Room 4<br>"
        "2nd floor</div><a href=\"javascript:alert(2)\">minutes</a> &lt;b&gt;</body></html>")}
    assert parse_item(raw).body == "Agenda & notes\n\nRoom 4\n2nd floor\nminutes <b>"  # core/plan/bodies.py
    raw["body"] = {"contentType": "text", "content": "Bus at 8:00\r\nBring <boots>"}
    assert parse_item(raw).body == "Bus at 8:00\nBring <boots>"  # text stays text, as typed


def test_a_bare_delta_occurrence_row_parses_and_is_marked_bare():
    # GRAPH.md 2: delta occurrence rows carry only id, seriesMasterId, type, start, end
    item = parse_item(load("delta_bare_occurrence_item_issue34.json"))
    assert item.type == "occurrence" and item.bare
    assert item.series_master_id == "seriesMasterId"
    assert item.start == datetime(2023, 7, 23, 10, 25, tzinfo=UTC)
    assert item.change_key == "DwAAABYAAAC9YbapXssvT4RTG13UUr6AAAhT48i7"  # from the etag


def test_a_delta_page_with_a_series_master_and_bare_occurrences_parses_row_by_row():
    rows = load("calendarview_delta_page_seriesmaster_and_bare_occurrences.json")["value"]
    items = [parse_item(r) for r in rows]
    assert [i.type for i in items] == ["seriesMaster", "occurrence", "occurrence"]
    assert not items[0].bare and items[1].bare and items[2].bare
    assert items[0].recurrence is not None and items[0].recurrence.range.time_zone == "Eastern Standard Time"


def test_instances_with_an_exception_and_occurrences_keep_their_types_and_starts():
    rows = load("instances_docs_exception_and_occurrences.json")["value"]
    items = {i.id: i for i in map(parse_item, rows)}
    exc = items["AAMkAGUzYAgI1sE1TatAAEYAAAAAlNFb2CNPe0ucP9you"]
    assert exc.type == "exception" and exc.series_master_id == "AAMkAGUzYRgWAAA="
    assert exc.start == datetime(2019, 4, 16, 20, 30, tzinfo=UTC)
    assert exc.recurrence is None


def test_instances_with_occurrence_ids_keep_the_occurrence_id():
    rows = load("instances_occurrences_with_occurrenceId.json")["value"]
    item = parse_item(rows[0])
    assert item.occurrence_id == "OID.1==.2023-12-05"
    assert item.original_start is None  # not selected in that fixture


def test_a_missing_id_is_a_typed_error():
    raw = load("event_single_instance_symplicity.json")
    raw.pop("id")
    with pytest.raises(OutlookItemError):
        parse_item(raw)


def test_a_bad_datetime_is_a_typed_error_naming_the_item_and_field():
    raw = load("event_single_instance_symplicity.json")
    raw["start"] = {"dateTime": "not a date", "timeZone": "UTC"}
    with pytest.raises(OutlookItemError) as info:
        parse_item(raw)
    assert info.value.item_id == "AAA==" and info.value.field == "start"
    assert "AAA==" in str(info.value)


def test_an_unknown_response_is_a_typed_error():
    raw = load("seriesmaster_create_response_weekly_docs.json")
    raw["responseStatus"] = {"response": "maybe", "time": "0001-01-01T00:00:00Z"}
    with pytest.raises(OutlookItemError) as info:
        parse_item(raw)
    assert info.value.field == "responseStatus.response"


def test_graph_responses_map_onto_the_model_vocabulary():
    raw = load("seriesmaster_create_response_weekly_docs.json")
    raw["responseStatus"] = {"response": "tentativelyAccepted", "time": "2024-01-01T10:00:00Z"}
    raw["isOrganizer"] = False
    item = parse_item(raw)
    assert item.response == "tentative"
    assert item.response_time == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_the_app_event_id_is_read_from_our_extended_property():
    raw = load("event_single_instance_symplicity.json")
    raw["singleValueExtendedProperties"] = [{"id": APP_EVENT_ID_PROPERTY, "value": "evt-42"}]
    assert parse_item(raw).app_event_id == "evt-42"
    raw["singleValueExtendedProperties"] = [{"id": "String {x} Name Other", "value": "nope"}]
    assert parse_item(raw).app_event_id == ""


def test_A9_a_new_change_key_alone_does_not_change_the_content_hash():
    raw = load("seriesmaster_create_response_weekly_docs.json")
    before = parse_item(raw)
    raw["changeKey"] = "something-new"
    raw["@odata.etag"] = 'W/"something-new"'
    raw["lastModifiedDateTime"] = "2030-01-01T00:00:00.0000000Z"
    after = parse_item(raw)
    assert after.change_key != before.change_key
    assert content_hash(after) == content_hash(before)


def test_D1_a_real_content_change_changes_the_hash_and_attendee_order_does_not():
    raw = load("seriesmaster_create_response_weekly_docs.json")
    raw["attendees"] = raw["attendees"] + [
        {"type": "optional", "status": {"response": "accepted", "time": "2017-10-07T00:00:00Z"},
         "emailAddress": {"name": "Bob", "address": "Bob@Contoso.com"}}]
    one = parse_item(raw)
    raw["attendees"] = list(reversed(raw["attendees"]))
    two = parse_item(raw)
    assert content_hash(one) == content_hash(two)
    assert [a.email for a in one.attendees] == ["adelev@contoso.onmicrosoft.com", "bob@contoso.com"]
    raw["subject"] = "Let's go for dinner"
    assert content_hash(parse_item(raw)) != content_hash(one)


def test_the_normalised_recurrence_and_a_minimal_request_recurrence_hash_alike():
    response = load("seriesmaster_create_response_weekly_docs.json")
    request_style = dict(response)
    request_style["recurrence"] = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["Monday"]},
        "range": {"type": "endDate", "startDate": "2017-09-04", "endDate": "2017-12-31",
                  "recurrenceTimeZone": "Pacific Standard Time"},
    }
    assert content_hash(parse_item(response)) == content_hash(parse_item(request_style))


def test_content_of_is_json_and_round_trips_each_field():
    item = parse_item(load("seriesmaster_create_response_weekly_docs.json"))
    content = content_of(item)
    assert json.loads(json.dumps(content)) == content
    for name in ("start", "end", "attendees", "title", "is_all_day"):
        assert field_from_json(name, field_to_json(name, item.value(name))) == item.value(name)
    assert recurrence_from_json(recurrence_to_json(item.recurrence)) == item.recurrence


WINDOW = Window(datetime(2019, 4, 1, tzinfo=UTC), datetime(2020, 4, 1, tzinfo=UTC))


def _master_for_docs_instances():
    master = load("seriesmaster_create_response_weekly_docs.json")
    master.update({"id": "AAMkAGUzYRgWAAA=",
                   "start": {"dateTime": "2019-04-08T20:30:00.0000000", "timeZone": "UTC"},
                   "end": {"dateTime": "2019-04-08T21:00:00.0000000", "timeZone": "UTC"},
                   "originalStartTimeZone": "UTC"})
    master["recurrence"] = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                            "range": {"type": "noEnd", "startDate": "2019-04-08", "recurrenceTimeZone": "UTC"}}
    return master


def test_build_snapshot_keys_instances_by_original_start_with_occurrence_fallbacks():
    master = _master_for_docs_instances()
    rows = load("instances_docs_exception_and_occurrences.json")["value"]
    rows[0]["originalStart"] = "2019-04-15T20:30:00Z"  # the exception moved from 4/15 to 4/16
    snap = build_snapshot("u", WINDOW, [], {"AAMkAGUzYRgWAAA=": master}, {"AAMkAGUzYRgWAAA=": rows})
    series = snap.series["AAMkAGUzYRgWAAA="]
    assert sorted(series.instances) == [datetime(2019, 4, d, 20, 30, tzinfo=UTC) for d in (8, 15, 22, 29)]
    assert series.instances[datetime(2019, 4, 15, 20, 30, tzinfo=UTC)].type == "exception"
    assert series.cancelled is None  # the master did not return cancelledOccurrences


def test_build_snapshot_reads_cancelled_occurrences_as_dates():
    master = _master_for_docs_instances()
    master["cancelledOccurrences"] = ["OID.AAMkAGUzYRgWAAA=.2019-04-22"]
    snap = build_snapshot("u", WINDOW, [], {"AAMkAGUzYRgWAAA=": master}, {"AAMkAGUzYRgWAAA=": []})
    assert snap.series["AAMkAGUzYRgWAAA="].cancelled == frozenset({date(2019, 4, 22)})


def test_build_snapshot_derives_an_original_start_from_the_occurrence_id():
    master = _master_for_docs_instances()
    row = {"id": "occ", "type": "exception", "seriesMasterId": "AAMkAGUzYRgWAAA=", "subject": "x",
           "occurrenceId": "OID.AAMkAGUzYRgWAAA=.2019-04-22",
           "start": {"dateTime": "2019-04-23T08:00:00.0000000", "timeZone": "UTC"},
           "end": {"dateTime": "2019-04-23T08:30:00.0000000", "timeZone": "UTC"}}
    snap = build_snapshot("u", WINDOW, [], {"AAMkAGUzYRgWAAA=": master}, {"AAMkAGUzYRgWAAA=": [row]})
    assert list(snap.series["AAMkAGUzYRgWAAA="].instances) == [datetime(2019, 4, 22, 20, 30, tzinfo=UTC)]


def test_build_snapshot_keeps_singles_drops_series_rows_from_them_and_filters_removed_ids():
    single = load("event_single_instance_symplicity.json")
    occurrence = load("delta_bare_occurrence_item_issue34.json")
    snap = build_snapshot("u", WINDOW, [single, occurrence], {}, {}, removed_ids=["AAA==", "gone"], complete=False)
    assert list(snap.singles) == ["AAA=="]
    assert snap.removed_ids == frozenset({"gone"})  # read just now, so not removed
    assert not snap.complete


def test_build_snapshot_keeps_the_later_copy_of_a_replayed_single():
    older = load("event_single_instance_symplicity.json")
    newer = dict(older, subject="Renamed", lastModifiedDateTime="2024-01-01T00:00:00.0000000Z")
    snap = build_snapshot("u", WINDOW, [newer, older], {}, {})
    assert snap.singles["AAA=="].title == "Renamed"


def test_build_snapshot_rejects_an_instance_of_another_series():
    master = _master_for_docs_instances()
    rows = load("instances_docs_exception_and_occurrences.json")["value"]
    rows[0]["originalStart"] = "2019-04-15T20:30:00Z"
    rows[1] = dict(rows[1], seriesMasterId="someone-else")
    with pytest.raises(OutlookItemError) as info:
        build_snapshot("u", WINDOW, [], {"AAMkAGUzYRgWAAA=": master}, {"AAMkAGUzYRgWAAA=": rows})
    assert info.value.field == "seriesMasterId"


def test_an_exception_without_original_start_or_occurrence_id_is_a_typed_error():
    master = _master_for_docs_instances()
    rows = load("instances_docs_exception_and_occurrences.json")["value"]
    with pytest.raises(OutlookItemError) as info:
        build_snapshot("u", WINDOW, [], {"AAMkAGUzYRgWAAA=": master}, {"AAMkAGUzYRgWAAA=": rows})
    assert info.value.item_id == "AAMkAGUzYAgI1sE1TatAAEYAAAAAlNFb2CNPe0ucP9you"


def test_items_are_frozen_values():
    item = parse_item(load("event_single_instance_symplicity.json"))
    with pytest.raises(AttributeError):
        item.title = "x"  # type: ignore[misc]
    assert replace(item, title="x").title == "x"


def test_C5_a_one_instance_invitation_names_its_series_and_date_in_its_icaluid():
    from datetime import date

    from core.plan.outlook_items import instance_uid_parts

    series = "040000008200E00074C5B7101A82E00800000000A1B2C3D4E5F6A7B80000000000000000100000007F"
    instance = series[:32] + "07EA0C08" + series[40:]  # 2026-12-08 in bytes 16-19 (MS-OXOCAL)
    assert instance_uid_parts(instance) == (series, date(2026, 12, 8))
    assert instance_uid_parts(series) is None  # the series itself names no date
    assert instance_uid_parts("not-an-exchange-uid") is None
