"""``Prefer: outlook.body-content-type="text"`` (GRAPH.md 1 and 10): bodies as Exchange gives them in text."""
from __future__ import annotations

from emulator.bodytext import exchange_text

TEXT = {"Prefer": 'outlook.body-content-type="text"'}


def test_a_text_read_keeps_the_visible_text_and_its_lines_and_drops_everything_active(tenant, ev):
    g = tenant.graph(tenant.user("alice")["upn"])
    html = ("<html><head><title>t</title><style>p{color:red}</style></head><body>"
            "<p>Agenda &amp; notes</p>\r\n<script>alert(document.cookie)</script>"
            "<div onclick=\"steal()\">Room <b>4</b><br>2nd floor</div><img src=x onerror=\"alert(1)\">"
            "<!-- hidden --></body></html>")
    created = g.ok("POST", "/me/events", 201, json=ev("Planted", "2030-01-01T10:00:00", "2030-01-01T11:00:00",
                                                        body={"contentType": "html", "content": html}))
    as_text = g.get(f"/me/events/{created['id']}", headers=TEXT)
    assert as_text.json()["body"] == {"contentType": "text", "content": "Agenda & notes\r\nRoom 4\r\n2nd floor"}
    assert 'outlook.body-content-type="text"' in as_text.headers["Preference-Applied"]
    assert g.ok("GET", f"/me/events/{created['id']}")["body"]["contentType"] == "html"  # default: HTML


def test_a_text_body_written_comes_back_with_its_lines_in_a_text_read_also_inside_batch(tenant, ev):
    g = tenant.graph(tenant.user("alice")["upn"])
    created = g.ok("POST", "/me/events", 201, json=ev("Plain", "2030-01-02T10:00:00", "2030-01-02T11:00:00",
                                                        body={"contentType": "text", "content": "one\ntwo <x> & y"}))
    out = g.ok("POST", "/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"/me/events/{created['id']}", "headers": TEXT},
        {"id": "2", "method": "GET", "url": f"/me/events/{created['id']}"}]})
    by_id = {r["id"]: r["body"]["body"] for r in out["responses"]}
    assert by_id["1"] == {"contentType": "text", "content": "one\r\ntwo <x> & y"}
    assert by_id["2"]["contentType"] == "html"  # the envelope's headers never reach the items


def test_exchange_text_of_the_converted_from_text_template_and_empty_bodies():
    template = ('<html><head><meta name="Generator" content="Microsoft Exchange Server">'
                '<!-- converted from text --></head><body><div class="PlainText">a<br>\r\nb<br>\r\n<br>\r\nc</div>'
                '</body></html>')
    assert exchange_text(template) == "a\r\nb\r\n\r\nc"
    assert exchange_text("") == "" and exchange_text("<html><body>\r\n</body></html>") == ""
