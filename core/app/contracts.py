"""The message contracts with Communifire, checked the same way on both sides (issue 12).

Owns: loading the JSON Schemas in ``schemas/`` (one registry, referenced by their ``$id``
URNs), and the one validation every producer and consumer runs (docs/messages.md,
"Versioning"):

- ``v`` is the major version: a message of another major version is refused;
- a field this version does not declare (an additive change from a newer producer) is
  accepted and ignored, with one log line naming it; ``strip_unknown`` removes it
  before the semantic checks;
- everything the schema says is checked with the maintained ``jsonschema`` validator,
  then the semantic checks in code (``core.plan.outbound.parse_message`` for outbound).

Producers (``core.app.producer``, the app's own feeds) call ``problems(..., strict=True)``:
they refuse the unknown fields a consumer would only tolerate.
"""

from __future__ import annotations

import copy
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from core.adapters import logs

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
#: contract name -> (schema file, major version this app speaks)
CONTRACTS: dict[str, tuple[str, int]] = {
    "outbound": ("outbound-message.v1.schema.json", 1),
    "calendar-changes": ("calendar-change.v1.schema.json", 1),
    "outbound-results": ("outbound-result.v1.schema.json", 1),
    "calendar": ("calendar.v1.schema.json", 1),
}


class ContractError(ValueError):
    """A message that breaks its contract; ``problems`` lists each reason."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def schema_of(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / CONTRACTS[name][0]).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _registry() -> Any:
    from referencing import Registry, Resource

    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        resources.append((data["$id"], Resource.from_contents(data)))
    return Registry().with_resources(resources)


def _strict(node: Any, in_branch: bool = False) -> Any:
    """The schema with ``additionalProperties: false`` wherever an object lists its
    properties (not inside oneOf/anyOf branches, which list only their own)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out[key] = _strict(value, in_branch or key in ("oneOf", "anyOf", "allOf", "if", "then", "else", "not"))
        if "properties" in out and "additionalProperties" not in out and not in_branch and "oneOf" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v, in_branch) for v in node]
    return node


@lru_cache(maxsize=None)
def validator(name: str, strict: bool = False) -> Any:
    from jsonschema import Draft202012Validator

    data = schema_of(name)
    if strict:
        data = _strict(copy.deepcopy(data))
    return Draft202012Validator(data, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _path(err: Any) -> str:
    return "/".join(str(p) for p in err.absolute_path) or "<message>"


def check_version(name: str, message: Mapping[str, Any]) -> None:
    """Refuse another major version (docs/messages.md, "Versioning")."""
    major = CONTRACTS[name][1]
    version = message.get("v", message.get("version"))
    if version != major:
        raise ContractError([f"v: unknown message version {version!r} (a major version); this app reads version {major}"])


def problems(name: str, message: Mapping[str, Any], *, strict: bool = False) -> list[str]:
    """Every way the message breaks its schema (strict: unknown fields too)."""
    errors = sorted(validator(name, strict).iter_errors(dict(message)), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_path(e)}: {e.message}" for e in errors]


def unknown_fields(name: str, message: Mapping[str, Any]) -> list[str]:
    """The fields the schema does not declare, as ``path/field`` strings."""
    out = []
    for err in validator(name, True).iter_errors(dict(message)):
        if err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties") or {})
            for key in sorted(set(err.instance) - allowed):
                out.append("/".join([*map(str, err.absolute_path), key]))
    return sorted(out)


def accept(name: str, message: Mapping[str, Any], *, source: str = "", schema: bool = True) -> dict[str, Any]:
    """The consumer's check: the major version, the schema (unless the caller runs it
    after its own semantic checks), and unknown fields tolerated (one log line, then
    removed). Returns the message to act on.

    Raises:
        ContractError: another major version, or a schema problem.
    """
    check_version(name, message)
    found = problems(name, message) if schema else []
    if found:
        raise ContractError(found)
    unknown = unknown_fields(name, message)
    if not unknown:
        return dict(message)
    logs.info(log, "message has fields this version does not know; ignored", contract=name, source=source,
              fields=",".join(unknown))
    return strip_unknown(message, unknown)


def strip_unknown(message: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(message))
    for path in paths:
        parts = path.split("/")
        node: Any = out
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def validate_feed(name: str, message: Mapping[str, Any]) -> None:
    """The producer's check of its own feed message: strict, nothing unknown.

    Raises:
        ContractError: the message breaks its schema (a bug in this app).
    """
    check_version(name, message)
    found = problems(name, message, strict=True)
    if found:
        raise ContractError(found)
