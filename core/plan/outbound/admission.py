"""Admission of an outbound message (pure): what makes a parsed message impossible to apply
whatever the stored state, so the producer, ``outlook-sync enqueue`` and the queue trigger
refuse it with the same reason (issue 11; SPEC section 7).

- rule C6: a space calendar is never synced;
- size: the queue carries base64 of the UTF-8 JSON, at most 64 KiB, so the JSON may be
  at most ``MAX_MESSAGE_BYTES`` **bytes** (not characters: a CJK character is 3 bytes).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_MESSAGE_BYTES", "SPACE_CALENDAR", "refusal", "size_refusal"]

#: base64 turns 3 bytes into 4 characters: 49,152 bytes of JSON are 65,536 on the queue.
MAX_MESSAGE_BYTES = 49_152
SPACE_CALENDAR = "space calendars are never synced with Outlook (rule C6); only My Calendar is"


def size_refusal(size_bytes: int) -> str:
    if size_bytes > MAX_MESSAGE_BYTES:
        return (f"the message is {size_bytes} bytes of UTF-8 JSON; at most {MAX_MESSAGE_BYTES} fit in a queue "
                "message once base64-encoded (64 KiB); shorten the body")
    return ""


def refusal(msg: Any, size_bytes: int | None = None) -> str:
    """The reason a parsed ``OutboundMessage`` can never be applied, or "" when it can be tried."""
    if msg.calendar != "my":
        return SPACE_CALENDAR
    if size_bytes is not None:
        return size_refusal(size_bytes)
    return ""
