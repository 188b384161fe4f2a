"""JSON answers, including the sandbox's one error shape.

Every error body is ``{"message": str, "errors": [{"field": str, "message": str}]}``;
``errors`` is empty when no particular field is to blame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.responses import Response

from sequence_nb.sandbox.validation import FieldError


class JSONBytesResponse(Response):
    """A JSON response serialised with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialise ``content``; bytes pass through unchanged."""
        return content if isinstance(content, bytes) else orjson.dumps(content)


def error_body(message: str, errors: Iterable[FieldError] = ()) -> dict[str, Any]:
    """The error document."""
    return {
        "message": message,
        "errors": [{"field": e.field, "message": e.message} for e in errors],
    }


def error_response(
    status: int,
    message: str,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error answer in the sandbox's shape."""
    return JSONBytesResponse(error_body(message, errors), status_code=status, headers=headers)
