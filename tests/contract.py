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

In API version 2024-07-30 (``ContractTransport(api_version="2024-07-30")``) the
document is ``sequence-customers-openapi-2024-07-30.json``, with
``additionalProperties: false`` on the request body and the objects in it
(``CreateOrUpdateCustomerRequest``, ``Address``, ``ContactRequestModel``,
``GenerateIntegrationIdRequest1``), and every successful answer is validated too:
its records are the published document's own shapes.
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
from openapi_core.testing import MockResponse
from werkzeug.datastructures import Headers, ImmutableMultiDict

from sequence_nb import fields
from sequence_nb.transport import SequenceTransport

SPEC_PATH = (
    Path(__file__).resolve().parent / "openapi" / "sequence-customers-openapi-2023-11-23.json"
)
SPEC_2024_PATH = SPEC_PATH.with_name("sequence-customers-openapi-2024-07-30.json")
#: The 2024-07-30 objects a request may carry, closed to fields they do not list.
_CLOSED_2024 = (
    "CreateOrUpdateCustomerRequest",
    "Address",
    "ContactRequestModel",
    "GenerateIntegrationIdRequest1",
)
SPEC_HOST = "https://sandbox.sequencehq.com"

#: Every body the contract transports validated in this test session.
VALIDATED_BODIES: list[dict[str, Any]] = []
#: Every answer (method, path, status) the 2024-07-30 contract transports validated.
VALIDATED_ANSWERS: list[tuple[str, str, int]] = []
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


def strict_spec_2024() -> dict[str, Any]:
    """The published 2024-07-30 document, its request objects closed (see the docstring)."""
    spec: dict[str, Any] = json.loads(SPEC_2024_PATH.read_text())
    schemas = spec["components"]["schemas"]
    for name in _CLOSED_2024:
        schemas[name]["additionalProperties"] = False
    return spec


@cache
def openapi_2024() -> OpenAPI:
    return OpenAPI.from_dict(strict_spec_2024())


def _openapi_of(version: fields.ApiVersion) -> OpenAPI:
    return openapi() if version is fields.SEED else openapi_2024()


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


def check_request(request: httpx.Request, version: fields.ApiVersion = fields.SEED) -> None:
    """Raise :class:`ContractViolation` if ``request`` breaks the contract of ``version``."""
    try:
        _openapi_of(version).validate_request(_OpenAPIRequest(request))
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


def check_answer(request: httpx.Request, answer: httpx.Response) -> None:
    """Raise :class:`ContractViolation` if a successful 2024-07-30 ``answer`` breaks the
    document (error answers have no documented body, so they are not checked)."""
    if not answer.is_success:
        return
    response = MockResponse(
        answer.content,
        status_code=answer.status_code,
        content_type=answer.headers.get("Content-Type", "").split(";")[0],
    )
    try:
        openapi_2024().validate_response(_OpenAPIRequest(request), response)
    except Exception as exc:
        details = "; ".join(_messages(exc))
        raise ContractViolation(
            f"the answer to {request.method} {request.url.path} ({answer.status_code}) breaks "
            f"the 2024-07-30 document: {details}"
        ) from exc
    with _lock:
        VALIDATED_ANSWERS.append((request.method, request.url.path, answer.status_code))


class ContractTransport(httpx.BaseTransport):
    """The client's own transport (``SequenceTransport``), validating each request before
    sending it: tests run the same deadline, size cap and decoding as users get.

    ``api_version`` picks the document (None: the seed's); in 2024-07-30 each
    successful answer is validated as well.
    """

    def __init__(
        self, answer_deadline: float = 120.0, api_version: fields.ApiVersion | str | None = None
    ) -> None:
        self.inner = SequenceTransport(answer_deadline=answer_deadline)
        self.version = fields.api_version(api_version or fields.SEED)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        check_request(request, self.version)
        answer = self.inner.handle_request(request)
        if self.version is fields.SEED:
            return answer
        content = answer.read()
        answer.close()
        check_answer(request, answer)
        # A fresh answer over the bytes read: the stream of the first is spent.
        return httpx.Response(
            answer.status_code,
            headers=answer.headers,
            content=content,
            request=request,
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self.inner.close()
