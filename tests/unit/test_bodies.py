"""Bodies by meaning (rule A9, GRAPH.md section 10): what Exchange returns reads back as
what was written, against the recorded create responses."""

import json

from hypothesis import given
from hypothesis import strategies as st

from core.plan.bodies import body_meaning, html_to_text, same_body
from core.plan.outlook_items import content_hash, parse_item
from tests.payloads import PAYLOADS  # noqa: E402 - shared/ beside the repo


def recorded(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def test_the_converted_from_text_template_reads_as_the_text_written():
    request = recorded("seriesmaster_create_request_daily_enddate.json")
    response = recorded("seriesmaster_create_response_daily_enddate.json")
    assert html_to_text(response["body"]["content"]) == request["body"]["content"]


def test_exchanges_html_envelope_reads_as_its_content():
    response = recorded("seriesmaster_create_response_weekly_docs.json")
    assert html_to_text(response["body"]["content"]) == "Does late morning work for you?"


def test_line_breaks_blocks_entities_and_markup():
    assert html_to_text("<p>New &amp; <b>better</b></p><p>Second&nbsp;para</p>") == "New & better\n\nSecond para"
    assert html_to_text("a<br>\r\nb<br/><br>c") == "a\nb\n\nc"
    assert html_to_text("<div>x</div>\n\n\n<div></div><div>y</div>") == "x\n\ny"
    assert html_to_text("<!-- note --><style>p {}</style><ul><li>one</li><li>two</li></ul>") == "one\ntwo"
    assert html_to_text("&lt;b&gt;not markup&lt;/b&gt;") == "<b>not markup</b>"
    assert html_to_text("") == ""


def test_same_body_ignores_how_whitespace_is_laid_out_but_not_words():
    assert same_body("Agenda:\n- a\n\nThanks", "Agenda: - a Thanks  ")
    assert not same_body("Agenda", "Agenda!")
    assert body_meaning("  a \t b\r\n") == "a b"


def _item(content_type: str, content: str) -> dict:
    return {"id": "AAMk1", "type": "singleInstance", "subject": "S", "changeKey": "k",
            "start": {"dateTime": "2030-01-01T10:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-01T11:00:00.0000000", "timeZone": "UTC"},
            "body": {"contentType": content_type, "content": content}}


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20), min_size=1, max_size=5))
def test_a_text_body_and_exchanges_html_of_it_hash_alike(lines):
    """A9: reading back what we wrote, as HTML or as text, is no change."""
    import html

    text = "\n".join(lines)
    converted = ("<html><head><!-- converted from text --></head><body><div class=\"PlainText\">"
                 + "<br>\r\n".join(html.escape(line, quote=False) for line in lines) + "</div></body></html>")
    as_html, as_text = parse_item(_item("html", converted)), parse_item(_item("text", text))
    assert same_body(as_html.body, as_text.body)
    assert content_hash(as_html) == content_hash(as_text)
