"""The outbound message contract (v1): parsing, validation, schema and examples agree."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from core.plan.outbound import MessageError, parse_message
from core.app.producer import InvalidMessage, OutboundProducer, encode, schema, validate

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "docs" / "examples" / "outbound").glob("*.json"))


def example(name: str) -> dict:
    return json.loads((EXAMPLES[0].parent / f"{name}.json").read_text())


def test_there_is_one_example_per_operation_and_scope_in_the_docs():
    names = {p.stem for p in EXAMPLES}
    assert {"create", "update-all", "update-single", "update-following", "delete-single", "delete-following",
            "delete-all", "rsvp-following", "invite-single"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_documented_example_passes_the_schema_and_the_parser(path):
    data = json.loads(path.read_text())
    Draft202012Validator(schema()).validate(data)
    msg = parse_message(data)
    assert msg.operation_id == data["operation_id"] and msg.operation == data["operation"]


def test_a_create_keeps_a_numbered_recurrence_rule_d4():
    msg = parse_message(example("create"))
    assert msg.event.recurrence.range.type == "numbered" and msg.event.recurrence.range.number_of_occurrences == 10
    assert msg.event.start.tzinfo is not None and [a.email for a in msg.event.attendees] == [
        "bob@contoso.com", "carol@contoso.com"]


def test_the_instance_is_the_instance_replace_date_in_utc_rule_d2():
    msg = parse_message(example("update-single"))
    assert msg.instance.isoformat() == "2026-03-04T09:00:00+00:00"


def test_a_field_left_out_of_an_update_is_not_given():
    msg = parse_message(example("update-all"))
    assert msg.event.has("title") and msg.event.has("location") and not msg.event.has("start")


@pytest.mark.parametrize("mutate, field", [
    (lambda m: m.update(v=2), "v"),
    (lambda m: m.pop("operation_id"), "operation_id"),
    (lambda m: m.update(operation_id="has space"), "operation_id"),
    (lambda m: m.update(occurred_at="2026-03-01T08:00:00"), "occurred_at"),  # naive: refused
    (lambda m: m.update(calendar="team"), "calendar"),
    (lambda m: m.update(operation="move"), "operation"),
    (lambda m: m["event"].update(end="2026-03-02T08:00:00Z"), "event.end"),
    (lambda m: m["event"].update(time_zone="Mars/Olympus"), "event.time_zone"),
    (lambda m: m["event"]["recurrence"]["pattern"].update(daysOfWeek=[]), "event.recurrence.pattern.daysOfWeek"),
    (lambda m: m["event"]["recurrence"]["range"].update(startDate="2026-03-03"), "event.recurrence.range.startDate"),
    (lambda m: m["event"].update(attendees=[{"email": "bob@contoso.com"}, {"email": "BOB@contoso.com"}]), "event.attendees"),
    (lambda m: m["event"].update(attendees=[{"email": "not-an-address"}]), "event.attendees[0].email"),
    (lambda m: m["event"].pop("organizer"), "event.organizer"),
    (lambda m: m.update(extra=1), ""),
    (lambda m: m.update(instance={"original_start": "2026-03-02T09:00:00Z"}), "scope"),
])
def test_an_invalid_create_is_refused_naming_the_field_section_7(mutate, field):
    data = copy.deepcopy(example("create"))
    mutate(data)
    with pytest.raises(MessageError) as err:
        parse_message(data)
    assert err.value.field == field


def test_an_rsvp_needs_a_known_response_and_an_invite_only_a_single_instance_rules_c4_c5():
    data = example("rsvp-following")
    data["rsvp"]["response"] = "maybe"
    with pytest.raises(MessageError, match="rsvp.response"):
        parse_message(data)
    data = example("invite-single")
    data["scope"] = "all"
    data.pop("instance")
    with pytest.raises(MessageError, match="single instance"):
        parse_message(data)


def test_an_all_day_event_must_start_and_end_at_midnight_in_its_zone():
    data = copy.deepcopy(example("create"))
    data["event"].update(all_day=True, recurrence=None, start="2026-03-02T00:00:00Z", end="2026-03-02T12:00:00Z",
                         time_zone="UTC")
    with pytest.raises(MessageError, match="all_day"):
        parse_message(data)
    data["event"]["end"] = "2026-03-03T00:00:00Z"
    assert parse_message(data).event.all_day


class FakeQueue:
    """Stands in for azure.storage.queue.QueueClient (fakes over mocks)."""

    def __init__(self):
        self.sent: list[str] = []

    def send_message(self, content):
        self.sent.append(content)
        return type("Sent", (), {"id": f"m{len(self.sent)}"})()


def test_the_producer_enqueues_valid_messages_and_refuses_invalid_ones_with_every_reason():
    queue = FakeQueue()
    producer = OutboundProducer(queue)
    assert producer.send(example("create")) == "m1"
    assert json.loads(queue.sent[0]) == example("create") and queue.sent[0] == encode(example("create"))
    bad = example("create")
    bad["v"] = 3
    bad["calendar"] = "x"
    with pytest.raises(InvalidMessage) as err:
        producer.send(bad)
    assert len(err.value.problems) >= 2 and len(queue.sent) == 1


def test_the_producer_queue_client_encodes_base64_as_the_functions_trigger_expects():
    from azure.storage.queue import TextBase64EncodePolicy

    producer = OutboundProducer.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;")
    assert isinstance(producer._queue._message_encode_policy, TextBase64EncodePolicy)


def test_validate_agrees_with_the_parser_on_a_semantic_error_the_schema_cannot_see():
    data = copy.deepcopy(example("create"))
    data["event"]["recurrence"]["range"]["startDate"] = "2026-03-03"
    Draft202012Validator(schema()).validate(data)  # structurally fine
    with pytest.raises(InvalidMessage, match="range.startDate"):
        validate(data)


def test_the_cli_commands_parse_as_build_parser_wires_them():
    from core.cli.main import build_parser
    from core.cli.outbound import cmd_enqueue, cmd_poison_list, cmd_poison_replay

    parser = build_parser()
    assert parser.parse_args(["enqueue", "m.json"]).func is cmd_enqueue
    args = parser.parse_args(["poison", "list", "--json", "--queue", "outbound"])
    assert args.func is cmd_poison_list and args.output == "json"
    assert parser.parse_args(["poison", "list", "-o", "tsv"]).output == "tsv"
    assert parser.parse_args(["poison", "replay", "op-1"]).func is cmd_poison_replay


def test_enqueue_refuses_an_invalid_file_with_exit_code_2_and_sends_nothing(tmp_path, capsys):
    from core.cli.main import main

    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({**example("create"), "v": 9}))
    assert main(["enqueue", str(bad)]) == 2  # refused before any settings or storage are needed
    err = capsys.readouterr().err
    assert "invalid" in err and "Traceback" not in err
