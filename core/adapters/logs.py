"""Structured, secret-free logging for the app.

Owns: how a log line carries its context (``user_id``, ``event_id``, ``operation_id``
...): as ``extra`` fields (custom dimensions where the host keeps them) *and* as
``key=value`` text at the end of the message, so Application Insights queries work
either way (docs/operations.md). Also quiets the libraries that log secrets at DEBUG:
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
#: Field names that may never appear in a log line, whatever their value.
FORBIDDEN = frozenset({"token", "access_token", "refresh_token", "id_token", "code", "state", "secret", "password",
                       "client_secret", "code_verifier", "body"})


def quiet_libraries() -> None:
    for name, level in _QUIET.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < level:
            logger.setLevel(level)


def _fmt(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")  # no forged log lines
    return text if " " not in text else repr(text)


def emit(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log ``message user_id=... event_id=...`` with the same fields as extras."""
    bad = FORBIDDEN & set(fields)
    if bad:
        raise ValueError(f"refusing to log sensitive fields {sorted(bad)}")
    if not logger.isEnabledFor(level):
        return
    tail = " ".join(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None and v != "")
    logger.log(level, "%s%s", message, f" | {tail}" if tail else "", extra=fields)


def info(logger: logging.Logger, message: str, **fields: Any) -> None:
    emit(logger, logging.INFO, message, **fields)


def warning(logger: logging.Logger, message: str, **fields: Any) -> None:
    emit(logger, logging.WARNING, message, **fields)
