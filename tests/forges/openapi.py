"""Requests checked against a forge's published API description (tests/forges/specs/).

The extracts hold only the operations mlci calls, each with its parameters and its
request body's schema reduced to what a request can break: the type, the required
fields, the enum values and the lengths. `violations` answers what is wrong with one
request as GitHub's 422 lists it (`resource`, `field`, `code`, `message`); an empty list
means the description allows it. Stricter than the forges on one point: a body field
or query parameter the description does not name is refused, since a forge ignores it
silently (Gitea's `limit=50` on the comment list was such a parameter).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SPECS = Path(__file__).parent / "specs"


@cache
def load(name: str) -> dict[str, Any]:
    """The extract `specs/<name>.json` (github, gitea)."""
    spec: dict[str, Any] = json.loads((SPECS / f"{name}.json").read_text(encoding="utf-8"))
    return spec


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join(
        ("(?P<%s>.+)" if p == "{path}" else "(?P<%s>[^/]+)") % p[1:-1]
        if p.startswith("{")
        else re.escape(p)
        for p in parts
    )
    return re.compile(regex)


def operation(
    spec: dict[str, Any], method: str, path: str
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """The operation `method path` is, and its path parameters; None: not described."""
    for template, methods in spec["paths"].items():
        match = _pattern(template).fullmatch(path)
        if match and method.lower() in methods:
            return methods[method.lower()], match.groupdict()
    return None


def violations(
    spec: dict[str, Any], method: str, path: str, query: dict[str, str], body: Any
) -> list[dict[str, str]]:
    """What the description does not allow in this request (empty: all of it is allowed)."""
    found = operation(spec, method, path)
    if found is None:
        return [
            _error(
                "Request", "path", "missing", f"{method} {path} is not an operation mlci may call"
            )
        ]
    op, values = found
    errors: list[dict[str, str]] = []
    declared = {(p["in"], p["name"]): p for p in op["parameters"]}
    for name, value in values.items():
        param = declared.get(("path", name))
        if param is not None:
            errors += _scalar(param["schema"], value, name)
    for name, value in query.items():
        param = declared.get(("query", name))
        if param is None:
            errors.append(
                _error(
                    "Request", name, "invalid", f"{name} is not a parameter of {op['operationId']}"
                )
            )
        else:
            errors += _scalar(param["schema"], value, name)
    for (where, name), param in declared.items():
        if where == "query" and param["required"] and name not in query:
            errors.append(_error("Request", name, "missing_field", f"{name} is required"))
    if "requestBody" in op and isinstance(body, dict | list):
        errors += _value(op["requestBody"]["schema"], body, "")
    elif "requestBody" in op and op["requestBody"]["required"] and body is None:
        errors.append(_error("Request", "body", "missing", "a JSON body is required"))
    elif "requestBody" not in op and "formData" not in op and body not in (None, b""):
        errors.append(_error("Request", "body", "invalid", f"{op['operationId']} takes no body"))
    return errors


def _error(resource: str, field: str, code: str, message: str) -> dict[str, str]:
    return {"resource": resource, "field": field, "code": code, "message": message}


def _scalar(schema: dict[str, Any], text: str, name: str) -> list[dict[str, str]]:
    """A path or query value (always text on the wire) against its schema."""
    if schema.get("type") == "integer" and not re.fullmatch(r"-?\d+", text):
        return [_error("Request", name, "invalid", f"{name} must be an integer, not {text!r}")]
    if "enum" in schema and text not in schema["enum"]:
        return [_error("Request", name, "invalid", f"{name} must be one of {schema['enum']}")]
    return []


_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def _value(schema: dict[str, Any], value: Any, where: str) -> list[dict[str, str]]:
    field = where or "body"
    if value is None:
        ok = schema.get("nullable") or "type" not in schema
        return [] if ok else [_error("Request", field, "invalid", f"{field} may not be null")]
    kind = schema.get("type")
    wrong = kind is not None and (
        not isinstance(value, _TYPES[kind]) or (kind != "boolean" and isinstance(value, bool))
    )
    if wrong:
        return [_error("Request", field, "invalid", f"{field} must be {kind}")]
    errors: list[dict[str, str]] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(
            _error("Request", field, "invalid", f"{field} must be one of {schema['enum']}")
        )
    too_long = isinstance(value, str) and "maxLength" in schema
    if too_long and len(value.encode("utf-16-le")) // 2 > schema["maxLength"]:
        errors.append(
            _error(
                "Request",
                field,
                "custom",
                f"{field} is too long (maximum is {schema['maxLength']} characters)",
            )
        )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                _error(
                    "Request", field, "invalid", f"{field} has more than {schema['maxItems']} items"
                )
            )
        for index, item in enumerate(value):
            errors += _value(schema.get("items", {}), item, f"{field}[{index}]")
    if isinstance(value, dict) and "properties" in schema:
        for name in schema.get("required", []):
            if name not in value:
                errors.append(
                    _error(
                        "Request",
                        _join(where, name),
                        "missing_field",
                        f"{_join(where, name)} is required",
                    )
                )
        for name, item in value.items():
            if name not in schema["properties"]:
                errors.append(
                    _error(
                        "Request",
                        _join(where, name),
                        "invalid",
                        f"{_join(where, name)} is not a field of the request",
                    )
                )
            else:
                errors += _value(schema["properties"][name], item, _join(where, name))
    return errors


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
