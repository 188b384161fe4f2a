"""Checks every request a test client sends against Sequence's published OpenAPI document.

``ContractTransport`` sits under a ``SequenceClient`` in the tests: each request is
validated with openapi-core before it goes out, and a request that breaks the
contract fails the test that sent it.

The document is ``tests/openapi/sequence-customers-openapi-2023-11-23.json`` (Sequence's
published document, customers endpoints only; see ``tests/openapi/README.md``), made
stricter and aligned with the seed page, which wins for updates:
- ``UpdateCustomerRequest`` takes ``billingEmail`` (one string) and ``paymentReference``
  as the seed lists them, and not the spec's ``billingEmails`` array, which the seed's
  body does not have;
- ``CreateCustomerRequest`` stays as published (the seed page covers updates only), so a
  create body must carry the ``billingEmails`` list the document requires;
- ``additionalProperties: false`` on both bodies and on ``Address``, so that a
  read-only or misspelt field sent by mistake is caught (the published document
  leaves that open);
- requests are matched against the spec's server by path, since tests talk to
  a sandbox on 127.0.0.1.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from sequence_nb.transport import SequenceTransport

SPEC_PATH = (
    Path(__file__).resolve().parent / "openapi" / "sequence-customers-openapi-2023-11-23.json"
)
SPEC_HOST = "https://sandbox.sequencehq.com"

#: Every body the contract transports validated in this test session.
VALIDATED_BODIES: list[dict[str, Any]] = []
_lock = threading.Lock()


def seed_aligned_spec() -> dict[str, Any]:
    """The published document with the changes listed in this module's docstring."""
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    update = schemas["UpdateCustomerRequest"]
    update["properties"].pop("billingEmails", None)
    update["required"] = [name for name in update.get("required", []) if name != "billingEmails"]
    update["properties"]["billingEmail"] = {"type": "string"}
    update["properties"]["paymentReference"] = {"type": "string"}
    for name in ("UpdateCustomerRequest", "CreateCustomerRequest", "Address"):
        schemas[name]["additionalProperties"] = False
    return spec


@cache
def openapi() -> OpenAPI:
    return OpenAPI.from_dict(seed_aligned_spec())


class _OpenAPIRequest:
    """An httpx request in the shape openapi-core reads."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(request.url.query.decode())),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )

    host_url = SPEC_HOST

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return self._request.headers.get("Content-Type", "").lower()


class ContractViolation(AssertionError):
    """A request the client built does not match the API's published contract."""


def check_request(request: httpx.Request) -> None:
    """Raise :class:`ContractViolation` if ``request`` breaks the contract."""
    try:
        openapi().validate_request(_OpenAPIRequest(request))
    except Exception as exc:
        details = "; ".join(_messages(exc))
        raise ContractViolation(
            f"{request.method} {request.url.path} breaks the contract: {details}"
        ) from exc
    if request.content:
        with _lock:
            VALIDATED_BODIES.append(json.loads(request.content))


def _messages(exc: BaseException) -> list[str]:
    """The schema errors behind an openapi-core exception, in short words."""
    cause: BaseException | None = exc
    while cause is not None:
        errors = getattr(cause, "schema_errors", None)
        if errors:
            return [getattr(error, "message", str(error)) for error in errors]
        cause = cause.__cause__
    return [str(exc)]


class ContractTransport(httpx.BaseTransport):
    """The client's own transport (``SequenceTransport``), validating each request before
    sending it: tests run the same deadline, size cap and decoding as users get."""

    def __init__(self, answer_deadline: float = 120.0) -> None:
        self.inner = SequenceTransport(answer_deadline=answer_deadline)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        check_request(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
