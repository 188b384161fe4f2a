"""ASGI middleware in front of every route: latency, faults, auth and the rate limit."""

from __future__ import annotations

import asyncio
import logging

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sequence_nb.sandbox.responses import error_response
from sequence_nb.sandbox.state import SandboxState

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SandboxDrop(Exception):
    """Raised after a partial answer to make the server cut the connection on purpose."""


class _IgnoreDrops(logging.Filter):
    """Keeps uvicorn quiet about connections the sandbox dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SandboxDrop)


_IGNORE_DROPS = _IgnoreDrops()


def silence_intentional_drops() -> None:
    """Install the filter on uvicorn's error logger (idempotent)."""
    logging.getLogger("uvicorn.error").addFilter(_IGNORE_DROPS)


class Gate:
    """Runs before the routes; see the module docstring."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.state.enter(scope["method"])
        try:
            await self._handle(scope, receive, send)
        finally:
            self.state.leave()

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        raw_send, send = send, _counting(send, state)
        latency = state.faults.latency
        if latency > 0:
            await asyncio.sleep(latency)
        fault = state.draw_fault(scope["method"] in WRITE_METHODS)
        kind = fault.kind
        if kind is not None and kind != "lost_answer":
            state.count(lambda s: s.add_fault(kind))
        if kind == "error":
            answer = error_response(fault.status, "Injected server error (sandbox fault)")
            await _answer_early(answer, scope, receive, send)
            return
        if kind == "rate_limit":
            message = "Too many requests (injected by the sandbox)"
            answer = error_response(429, message, headers={"Retry-After": "1"})
            await _answer_early(answer, scope, receive, send)
            return
        if kind == "drop":
            await _drain(receive)
            await _drop(raw_send)
        client_id = state.authenticate(Headers(scope=scope).get("authorization"))
        if client_id is None:
            message = (
                "Invalid or missing credentials: use HTTP Basic auth with a client id and secret"
            )
            headers = {"WWW-Authenticate": 'Basic realm="sequence-sandbox"'}
            await _answer_early(error_response(401, message, headers=headers), scope, receive, send)
            return
        wait = state.take_rate_slot(client_id)
        if wait is not None:
            message = f"Rate limit of {state.limiter.per_minute} requests per minute exceeded"
            answer = error_response(429, message, headers={"Retry-After": str(wait)})
            await _answer_early(answer, scope, receive, send)
            return
        problem = _version_problem(Headers(scope=scope).get("sequence-version"), state)
        if problem is not None:
            answer = error_response(400, problem)
            await _answer_early(answer, scope, receive, send)
            return
        scope.setdefault("state", {})["client_id"] = client_id
        if kind == "lost_answer":
            send = _AnswerLoser(send, state)
        await self.app(scope, receive, send)


def _version_problem(asked: str | None, state: SandboxState) -> str | None:
    """Why a request's ``Sequence-Version`` cannot be served, or None (no header: the
    sandbox's own version)."""
    served = state.version
    if asked is None or asked == served.header:
        return None
    speaks = (
        f"API version {served.header} (Sequence-Version: {served.header})"
        if served.header
        else "the seed page's API version, asked for with no Sequence-Version header"
    )
    return f"Sequence-Version {asked!r} is not a version this sandbox serves: it serves {speaks}"


async def _drain(receive: Receive) -> None:
    """Read the whole request body, so closing the socket sends FIN and not RST."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _answer_early(answer: Response, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer without running the routes (the unread body is drained first)."""
    await _drain(receive)
    await answer(scope, receive, send)


def _counting(send: Send, state: SandboxState) -> Send:
    """Count each completed answer by status (dropped ones never complete)."""
    status = 0

    async def wrapped(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            code = status
            state.count(lambda s: s.statuses.update([code]))

    return wrapped


async def _drop(send: Send) -> None:
    """Start an answer, send part of it, then cut the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1024")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"items": [', "more_body": True})
    raise SandboxDrop("connection dropped on purpose (drop_rate)")


class _AnswerLoser:
    """Lets a successful write through, then loses its answer half-way."""

    def __init__(self, send: Send, state: SandboxState) -> None:
        self.send = send
        self.state = state
        self.held: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
            self.held = message
            return
        if message["type"] == "http.response.body" and self.held is not None:
            body: bytes = message.get("body", b"")
            await self.send(self.held)
            await self.send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            self.state.count(lambda s: s.add_fault("lost_answer"))
            raise SandboxDrop("answer lost on purpose (lost_answer_rate)")
        await self.send(message)
