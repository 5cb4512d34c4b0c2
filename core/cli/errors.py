"""Exit codes and the CLI's one error handler: every failure becomes one clear line.

Owns: the documented exit codes, ``CliError`` (what a command raises to stop with a
message and a code), and ``describe``, which turns any exception that reaches the top
(invalid settings, storage unreachable or refusing, Graph down, bad input, Ctrl-C, a
closed pipe) into that line and code. Tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Exit codes (README "Administration"): keep in step with docs/operations.md.
EXIT_OK = 0  #: all well
EXIT_FAIL = 1  #: a check or an operation failed; an unknown user; storage or Graph unreachable
EXIT_USAGE = 2  #: bad usage, invalid input or invalid settings
EXIT_ATTENTION = 3  #: attention needed: a sync held for confirmation, a user who must reconnect
EXIT_INTERRUPTED = 130  #: stopped with Ctrl-C (128 + SIGINT, as shells report it)


class CliError(Exception):
    """Stop the command with ``message`` (one line, printed to stderr) and ``code``.

    ``hint`` is an optional second line saying what to do next.
    """

    def __init__(self, message: str, code: int = EXIT_FAIL, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint


def usage(message: str, hint: str = "") -> CliError:
    return CliError(message, EXIT_USAGE, hint)


def unknown_user(user_id: str) -> CliError:
    return CliError(f"user {user_id} is not connected", EXIT_FAIL, "see 'outlook-sync users' for the connected users")


@dataclass(frozen=True)
class Described:
    message: str
    code: int
    hint: str = ""
    #: the error is ours and fully explained: no traceback is useful even with --debug
    expected: bool = True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def describe(exc: BaseException) -> Described:
    """The one-line message and exit code for an exception that reached the top."""
    from core.config.settings import SettingsError

    if isinstance(exc, CliError):
        return Described(exc.message, exc.code, exc.hint)
    if isinstance(exc, KeyboardInterrupt):
        return Described("interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, SettingsError):
        problems = "; ".join(str(p) for p in exc.problems)
        return Described(f"settings are missing or invalid: {problems}", EXIT_USAGE,
                         "run 'outlook-sync doctor' to see every setting")
    storage = _describe_azure(exc)
    if storage is not None:
        return storage
    try:
        from core.app.service import BadRequest
    except ImportError:  # pragma: no cover - the app layer always imports
        BadRequest = ()  # type: ignore[assignment]
    if BadRequest and isinstance(exc, BadRequest):
        return Described(str(exc), EXIT_USAGE)
    import requests

    if isinstance(exc, requests.Timeout):
        return Described(f"no answer in time from {_url_of(exc)}", EXIT_FAIL, expected=False)
    if isinstance(exc, requests.ConnectionError):
        return Described(f"cannot reach {_url_of(exc)}", EXIT_FAIL, expected=False)
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return Described(f"{exc.strerror}: {exc.filename}", EXIT_USAGE)
    return Described(f"unexpected error: {type(exc).__name__}: {_first_line(exc)}", EXIT_FAIL,
                     "run again with --debug for the traceback", expected=False)


def _url_of(exc: BaseException) -> str:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", "") or ""
    return url.split("?")[0] or "the server"


def _describe_azure(exc: BaseException) -> Described | None:
    """Storage (Azure SDK) errors: unreachable, refused credentials, refused requests."""
    try:
        from azure.core import exceptions as az
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, az.AzureError) and type(exc).__name__ != "CredentialUnavailableError":
        return None
    hint = "check AzureWebJobsStorage (outlook-sync doctor)"
    if type(exc).__name__ == "CredentialUnavailableError":
        return Described("no Azure credential for identity-based storage access", EXIT_FAIL,
                         "sign in with 'az login' (or set AzureWebJobsStorage to a connection string)")
    if isinstance(exc, (az.ServiceRequestError, az.ServiceResponseError)):
        return Described(f"cannot reach storage: {_first_line(exc)}", EXIT_FAIL, hint, expected=False)
    if isinstance(exc, az.ClientAuthenticationError):
        return Described(f"storage refused the credentials: {_first_line(exc)}", EXIT_FAIL, hint)
    if isinstance(exc, az.HttpResponseError):
        status = getattr(exc, "status_code", None)
        code = getattr(exc, "error_code", None) or ""
        what = f"HTTP {status}" + (f" {code}" if code else "")
        if status == 403:
            return Described(f"storage refused the request ({what}): the identity needs the Storage Table/Queue "
                             "Data Contributor roles", EXIT_FAIL, hint)
        return Described(f"storage answered {what}: {_first_line(exc)}", EXIT_FAIL, hint, expected=False)
    return Described(f"storage error: {_first_line(exc)}", EXIT_FAIL, hint, expected=False)
