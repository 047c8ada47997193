"""The published OpenAPI document, made to say exactly what the API answers.

Ninja builds `responses` with integer keys and merges an operation's `openapi_extra` with
string keys, so one status could appear twice in the JSON ("200" and 200: Swagger UI's
"duplicated mapping key"). And ninja's `codes_4xx` leaves out 413 and 422, which every
operation that takes input can answer (errors.py). `tidy` fixes both for every operation,
so a router cannot forget them.
"""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
INPUT_ERRORS = {"422": "Invalid input: each item names the field at fault."}
BODY_ERRORS = {"413": "The request body is too large."}


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _string_keys(responses: dict[Any, Any]) -> dict[str, Any]:
    """{200: a, "200": b} -> {"200": a merged with b}, in ascending status order."""
    merged: dict[str, Any] = {}
    for status in sorted(responses, key=lambda s: (isinstance(s, str), str(s))):
        merged.setdefault(str(status), {})
        _merge(merged[str(status)], responses[status])
    return dict(sorted(merged.items()))


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def tidy(schema: dict[str, Any]) -> dict[str, Any]:
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = _string_keys(operation.get("responses", {}))
            wanted: dict[str, str] = {}
            if operation.get("parameters") or operation.get("requestBody"):
                wanted.update(INPUT_ERRORS)
            if operation.get("requestBody") or method in ("post", "put", "patch"):
                wanted.update(BODY_ERRORS)
            for status, description in wanted.items():
                responses.setdefault(status, _error(description))
            operation["responses"] = dict(sorted(responses.items()))
    return schema
