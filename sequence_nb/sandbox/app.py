"""The Starlette app: the customers routes of a Sequence-compatible API under ``/api``."""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sequence_nb import fields
from sequence_nb.sandbox import paging, rules2024
from sequence_nb.sandbox.gate import Gate, silence_intentional_drops
from sequence_nb.sandbox.idempotency import StoredAnswer
from sequence_nb.sandbox.responses import JSONBytesResponse, error_response
from sequence_nb.sandbox.state import SandboxState
from sequence_nb.sandbox.stats import SandboxStats
from sequence_nb.sandbox.validation import FieldError, validate_body, validate_create_body

__all__ = ["SandboxState", "create_app"]


def create_app(state: SandboxState) -> Starlette:
    """The ASGI app serving ``state`` in its API version (2024-07-30 adds the archive call)."""
    silence_intentional_drops()
    api = _CustomersApi(state)
    routes = [
        Route("/api/customers", api.list_customers, methods=["GET"]),
        Route("/api/customers", api.create_customer, methods=["POST"]),
        Route("/api/customers/by-alias/{alias}", api.get_by_alias, methods=["GET"]),
        Route("/api/customers/{id}", api.get_customer, methods=["GET"]),
        Route("/api/customers/{id}", api.update_customer, methods=["PUT"]),
    ]
    if state.version.can_archive:
        routes.append(Route("/api/customers/{id}/archive", api.archive_customer, methods=["POST"]))
    return Starlette(
        routes=routes,
        middleware=[Middleware(Gate, state=state)],
        exception_handlers={HTTPException: _http_error},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, in the sandbox's error shape."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


def _not_found(what: str) -> Response:
    return error_response(404, f"No customer found with {what}")


class _CustomersApi:
    """Route handlers; every read and write of the store happens under the state lock."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._serials = itertools.count(1)

    async def list_customers(self, request: Request) -> Response:
        """``GET /customers``."""
        try:
            query = paging.parse_query(request.query_params, self.state.version.listing_filters)
        except paging.QueryError as exc:
            return error_response(
                400, "Invalid query parameter", [FieldError(exc.field, exc.message)]
            )

        def render() -> bytes:
            items, page = self.state.store.list_page(query)
            if self.state.version.listing_omits:
                items = [rules2024.listed(item) for item in items]
            pagination: dict[str, Any] = {"totalResultSize": page.total}
            after = page.after or self._endless_cursor(query)
            if after is not None:
                pagination["after"] = after
            if page.before is not None:
                pagination["before"] = page.before
            body = orjson.dumps({"items": items, "pagination": pagination})
            if query.after is None and query.before is None:
                moves = self.state.take_move()
                if moves:
                    self.state.store.move_records(query, page.ids, moves)
            return body

        return JSONBytesResponse(self.state.locked(render))

    def _endless_cursor(self, query: paging.ListQuery) -> str | None:
        """The cursor that keeps a finished listing going (``endless_pages``), else None."""
        endless = self.state.faults.endless_pages
        if endless is None:
            return None
        return paging.edge_cursor(query, past_end=endless == "empty", serial=next(self._serials))

    async def get_customer(self, request: Request) -> Response:
        """``GET /customers/{id}``."""
        customer_id: str = request.path_params["id"]
        body = self.state.locked(lambda: _dump(self.state.store.get(customer_id)))
        if not body:
            return _not_found(f"id {customer_id}")
        self.state.note_read(customer_id)
        return JSONBytesResponse(body)

    async def get_by_alias(self, request: Request) -> Response:
        """``GET /customers/by-alias/{alias}``."""
        alias: str = request.path_params["alias"]
        shape = rules2024.by_alias if self.state.version is not fields.SEED else None

        def render() -> bytes | None:
            record = self.state.store.by_alias(alias)
            return _dump(record if record is None or shape is None else shape(record))

        body = self.state.locked(render)
        return JSONBytesResponse(body) if body else _not_found(f"alias {alias}")

    async def create_customer(self, request: Request) -> Response:
        """``POST /customers``: 201 with ``{"customer": record}`` as the seed's published
        document has it (2024-07-30: the bare record)."""
        return await self._write(request, None)

    async def update_customer(self, request: Request) -> Response:
        """``PUT /customers/{id}``: full replacement of the editable fields."""
        return await self._write(request, request.path_params["id"])

    async def _write(self, request: Request, customer_id: str | None) -> Response:
        state = self.state
        raw = await request.body()
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            state.count(_count_rejected)
            return error_response(415, "Content-Type must be application/json")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            state.count(_count_rejected)
            return error_response(
                400, "Request body is not valid JSON", [FieldError("body", "is not valid JSON")]
            )
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        key = request.headers.get("idempotency-key")
        client_id: str = request.state.client_id
        method, path = request.method, request.url.path
        # Everything below runs without awaiting, under the lock: two concurrent
        # requests with one key cannot both apply.
        with state.lock:
            if key:
                stored = state.idempotency.get(client_id, key, time.monotonic())
                if stored is not None:
                    return self._replay(stored, method, path, digest)
            if customer_id is not None and state.store.get(customer_id) is None:
                return _not_found(f"id {customer_id}")
            errors = _body_errors(state.version, body, create=customer_id is None)
            if not errors:
                errors = state.store.alias_conflicts(body, customer_id)
            if errors:
                state.count(_count_rejected)
                return error_response(400, "Invalid request body", errors)
            now = state.now()
            if customer_id is None:
                status = 201
                record = _create(state, body, now)
            else:
                status = 200
                state.note_write(customer_id)
                record = state.store.replace(
                    customer_id, body, now, unlink=state.faults.unlink_on_put, new_id=state.new_id
                )
            applied: str = record["id"]
            state.count(lambda s: s.writes_applied.update([applied]))
            wrapped = customer_id is None and state.version is fields.SEED
            payload = orjson.dumps({"customer": record} if wrapped else record)
            if key:
                answer = StoredAnswer(method, path, digest, status, payload, time.monotonic())
                state.idempotency.put(client_id, key, answer)
        return JSONBytesResponse(payload, status_code=status)

    async def archive_customer(self, request: Request) -> Response:
        """``POST /customers/{id}/archive`` (2024-07-30): ``archivedAt`` is set, for good.

        Archiving an archived customer answers its record unchanged. Sent with an
        ``Idempotency-Key``, a retry is answered from the store like any write.
        """
        state = self.state
        customer_id: str = request.path_params["id"]
        await request.body()  # no body is defined; whatever came is drained
        key = request.headers.get("idempotency-key")
        client_id: str = request.state.client_id
        method, path = request.method, request.url.path
        with state.lock:
            if key:
                stored = state.idempotency.get(client_id, key, time.monotonic())
                if stored is not None:
                    return self._replay(stored, method, path, _NO_BODY)
            if state.store.get(customer_id) is None:
                return _not_found(f"id {customer_id}")
            state.note_write(customer_id)
            record = state.store.archive(customer_id, state.now())
            state.count(lambda s: s.writes_applied.update([customer_id]))
            payload = orjson.dumps(record)
            if key:
                answer = StoredAnswer(method, path, _NO_BODY, 200, payload, time.monotonic())
                state.idempotency.put(client_id, key, answer)
        return JSONBytesResponse(payload)

    def _replay(self, stored: StoredAnswer, method: str, path: str, digest: str) -> Response:
        if (stored.method, stored.path, stored.body_hash) != (method, path, digest):
            self.state.count(_count_conflict)
            return error_response(
                409,
                "Idempotency-Key was already used for a different request",
                [FieldError("Idempotency-Key", "reuse it only to retry the very same request")],
            )
        self.state.count(_count_replay)
        return JSONBytesResponse(
            stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
        )


#: The digest an archive request is stored under (it has no body).
_NO_BODY = hashlib.sha256(b"").hexdigest()


def _body_errors(version: fields.ApiVersion, body: Any, *, create: bool) -> list[FieldError]:
    """The problems of a write body in the sandbox's version."""
    if version is not fields.SEED:
        return rules2024.validate_body(body)
    return validate_create_body(body) if create else validate_body(body)


def _create(state: SandboxState, body: dict[str, Any], now: str) -> dict[str, Any]:
    """Store a new customer from a valid create body (under the state lock).

    A ``billingEmails`` list becomes the record's list, and its first address the
    record's ``billingEmail`` unless the body names one (the seed's version).
    """
    if state.version is not fields.SEED:
        return state.store.create(state.new_id(), state.account_id, body, now, state.new_id)
    listed = body.get("billingEmails")
    given = {name: value for name, value in body.items() if name != "billingEmails"}
    if listed and given.get("billingEmail") is None:
        given["billingEmail"] = listed[0]
    record = state.store.create(state.new_id(), state.account_id, given, now)
    if listed is not None:
        record["billingEmails"] = list(listed)
    return record


def _dump(record: dict[str, Any] | None) -> bytes | None:
    return None if record is None else orjson.dumps(record)


def _count_rejected(stats: SandboxStats) -> None:
    stats.rejected_bodies += 1


def _count_replay(stats: SandboxStats) -> None:
    stats.replays += 1


def _count_conflict(stats: SandboxStats) -> None:
    stats.idempotency_conflicts += 1
