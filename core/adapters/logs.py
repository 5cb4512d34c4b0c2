"""Structured, secret-free logging for the app.

Owns: how a log line carries its context (``user_id``, ``event_id``, ``operation_id``
...): as attributes of the log record (``extra``), which the Azure Monitor OpenTelemetry
exporter sends as the row's ``customDimensions`` (core/adapters/telemetry.py), *and* as
``key=value`` text at the end of the message for local runs and plain log files
(docs/operations.md, "Queries"). Only ids, counts and outcomes are logged: field names
that would hold a secret or personal data (addresses, names, subjects, bodies) are
refused outright. Also quiets the libraries that log secrets at DEBUG:
MSAL's token cache logs the auth-code redemption (code and PKCE verifier) at DEBUG,
and the Azure SDK's HTTP logging prints every request.
"""

from __future__ import annotations

import logging
from typing import Any

_QUIET = {
    "msal": logging.INFO,
    "azure.core.pipeline.policies.http_logging_policy": logging.WARNING,
    "azure.identity": logging.WARNING,
    "urllib3": logging.INFO,
}
#: Field names that may never appear in a log line or span, whatever their value: secrets
#: (SPEC section 7) and personal data (customDimensions are readable by every operator).
FORBIDDEN = frozenset({"token", "access_token", "refresh_token", "id_token", "code", "state", "secret", "password",
                       "client_secret", "code_verifier", "body",
                       "upn", "email", "mail", "name", "display_name", "subject", "title", "location",
                       "attendees", "organizer", "description", "address"})


def quiet_libraries() -> None:
    for name, level in _QUIET.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


def _fmt(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")  # no forged log lines
    return text if " " not in text else repr(text)


def check_fields(fields: Any) -> None:
    """Refuse field names that would carry a secret or personal data."""
    bad = FORBIDDEN & set(fields)
    if bad:
        raise ValueError(f"refusing to log sensitive fields {sorted(bad)}")


def attribute_value(value: Any) -> str | bool | int | float:
    """A value OpenTelemetry keeps as an attribute (customDimensions): a primitive, else its text."""
    return value if isinstance(value, (str, bool, int, float)) else str(value)


def emit(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log ``message | user_id=... event_id=...`` with the same fields as record attributes."""
    check_fields(fields)
    if not logger.isEnabledFor(level):
        return
    present = {k: v for k, v in fields.items() if v is not None and v != ""}
    tail = " ".join(f"{k}={_fmt(v)}" for k, v in present.items())
    logger.log(level, "%s%s", message, f" | {tail}" if tail else "",
               extra={k: attribute_value(v) for k, v in present.items()})


def info(logger: logging.Logger, message: str, **fields: Any) -> None:
    emit(logger, logging.INFO, message, **fields)


def warning(logger: logging.Logger, message: str, **fields: Any) -> None:
    emit(logger, logging.WARNING, message, **fields)


def error(logger: logging.Logger, message: str, **fields: Any) -> None:
    emit(logger, logging.ERROR, message, **fields)
