"""``Prefer: outlook.body-content-type="text"``: an item's HTML body as Exchange gives it in text.

Owns: one conversion, stored HTML body -> text, used when a Graph read asks for text
bodies (GRAPH.md sections 1 and 10). Like Exchange's conversion it keeps the visible
text and its line breaks (``<br>``, paragraphs, divs, list items, table rows), drops
what is never shown (``<head>``, ``<script>``, ``<style>``, comments) and every tag
and attribute (so no event handler survives), decodes entities and ends lines with
CRLF. Standard library only (the emulator never imports the product).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements whose end (or, for ``br``, whose presence) is a line break in the text.
_BREAKS = {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
           "blockquote", "pre", "hr"}
#: Elements whose content is never visible text.
_HIDDEN = {"head", "script", "style", "title", "template", "noscript", "object", "iframe", "svg"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0

    def _at_line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def _newline(self) -> None:
        self.out.append("\n")

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br" and not self.hidden:
            self._newline()
        elif tag in _BREAKS and not self.hidden and not self._at_line_start():
            self._newline()

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag == "br" and not self.hidden:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BREAKS and tag != "br" and not self.hidden and not self._at_line_start():
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        text = re.sub(r"[ \t\f\v]+", " ", data.replace("\r\n", "\n").replace("\r", "\n"))
        if self._at_line_start():
            text = text.lstrip()
        if text.strip() or (text and not self._at_line_start()):
            self.out.append(text)


def exchange_text(content: str) -> str:
    """The text Exchange answers for a stored HTML body (CRLF line ends, no trailing blanks)."""
    parser = _Text()
    parser.feed(content or "")
    parser.close()
    lines = [line.strip(" ") for line in "".join(parser.out).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\r\n".join(lines)
