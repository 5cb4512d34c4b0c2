"""What an event body means, whatever Exchange made of it (rule A9, GRAPH.md section 10).

Owns: reading an Outlook body as the plain text Communifire keeps, and comparing two
bodies by meaning. Exchange never returns a body as written: HTML comes back inside its
``<html><head><meta ...></head><body>`` envelope, text comes back as HTML in its
"converted from text" template, and a text read (``Prefer: outlook.body-content-type``)
may break lines differently. So:

- ``html_to_text``: the text a reader sees: markup, ``<head>``, ``<style>``, scripts and
  comments dropped; ``<br>``, block starts and ends (``p``, ``div``, headings; a list item
  or table row starts one) are line breaks; entities decoded; spaces collapsed as a browser does;
- ``body_meaning``: one canonical form for comparisons and hashes (all whitespace runs
  become one space), so ``same_body`` never sees a change where there is none and the
  app's own writes do not echo back as user edits.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import html
import re

__all__ = ["body_meaning", "html_to_text", "same_body"]

_DROP = re.compile(r"(?is)<!--.*?-->|<head\b.*?</head\s*>|<style\b.*?</style\s*>|<script\b.*?</script\s*>")
_BREAK = re.compile(r"(?i)<br\s*/?>")
_BLOCK_END = re.compile(r"(?i)</(p|div|h[1-6]|blockquote|pre|table|ul|ol)\s*>|<(p|div|li|tr|h[1-6]|hr)\b[^>]*>")
_TAG = re.compile(r"(?s)<[^>]*>")
_NEWLINE = "\x00"  # a line break that HTML whitespace rules must not collapse


def html_to_text(content: str) -> str:
    """The plain text an HTML body shows, one line per line break or block."""
    text = _DROP.sub("", content or "")
    text = _BREAK.sub(_NEWLINE, text)
    text = _BLOCK_END.sub(_NEWLINE, text)
    text = _TAG.sub("", text)
    text = re.sub(r"\s+", " ", text)  # source line breaks and runs of spaces are one space in HTML
    text = html.unescape(text).replace("\xa0", " ")
    lines = [" ".join(line.split()) for line in text.split(_NEWLINE)]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):  # at most one blank line between paragraphs
            out.append(line)
    return "\n".join(out).strip("\n")


def body_meaning(text: str) -> str:
    """The form two bodies are compared in: every run of whitespace is one space."""
    return " ".join((text or "").split())


def same_body(a: str, b: str) -> bool:
    """Do two bodies say the same thing (A9: Exchange's rewriting is no change)?"""
    return body_meaning(a) == body_meaning(b)
