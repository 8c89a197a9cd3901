"""The OpenAPI schema's common answers (a drf-spectacular post-processing hook): every
operation documents 401 (no login) and 403 (a role that does not allow it); one that takes
a body or query parameters, 400; one with path parameters or a cursor, 404. Each has the
``Error`` body: ``detail`` names the problem, or one key per bad field."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "description": "`detail` says what was wrong; a field's own errors are listed under its name",
    "properties": {"detail": {"type": "string"}},
    # a field's messages, or (a list's item, a mapping's key) nested under its index or key
    "additionalProperties": {"oneOf": [{"type": "array"}, {"type": "object"}]},
}

REASONS = {
    "400": "invalid: the body names the field or parameter",
    "401": "no login: a session or `Authorization: Token <key>`",
    "403": "your role does not allow this",
    "404": "unknown chain, token, pool, or cursor",
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    # replaces the component ``serializers.ErrorSerializer`` made: field errors have no detail
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            params = operation.get("parameters", [])
            codes = ["401", "403"]
            if "requestBody" in operation or any(p.get("in") == "query" for p in params):
                codes.append("400")
            if any(p.get("in") == "path" or p.get("name") == "cursor" for p in params):
                codes.append("404")
            for code in codes:
                operation["responses"].setdefault(code, {"content": ref, "description": REASONS[code]})
    return result
