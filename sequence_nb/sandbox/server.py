"""Run the sandbox: in a background thread (:func:`start`) or in the foreground (:func:`serve`)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn

from sequence_nb import fields
from sequence_nb.sandbox.app import create_app
from sequence_nb.sandbox.data import PlantedProblem
from sequence_nb.sandbox.state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Faults, SandboxState
from sequence_nb.sandbox.stats import SandboxStats

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class Sandbox:
    """A running sandbox server and the test helpers around its state."""

    def __init__(
        self, state: SandboxState, server: uvicorn.Server, thread: threading.Thread, url: str
    ) -> None:
        self.state = state
        self.url = url
        self.client_id = state.client_id
        self.client_secret = state.client_secret
        self._server = server
        self._thread = thread

    def client(self, **kwargs: Any) -> SequenceClient:
        """A :class:`sequence_nb.SequenceClient` pointed at this sandbox."""
        from sequence_nb import SequenceClient

        kwargs.setdefault("api_version", self.api_version)
        return SequenceClient(
            client_id=self.client_id,
            client_secret=self.client_secret,
            base_url=self.url,
            **kwargs,
        )

    @property
    def api_version(self) -> fields.ApiVersion:
        """The API version this sandbox serves (``server.client()`` speaks it)."""
        return self.state.version

    def environ(self) -> dict[str, str]:
        """The ``SEQUENCE_*`` variables that point a client (or a notebook) at this sandbox,
        its API version among them."""
        return {
            "SEQUENCE_BASE_URL": self.url,
            "SEQUENCE_CLIENT_ID": self.client_id,
            "SEQUENCE_CLIENT_SECRET": self.client_secret,
            fields.API_VERSION_ENV: self.api_version.name,
        }

    @property
    def running(self) -> bool:
        """Whether the server thread is still serving."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Shut the server down and wait for its thread (safe to call twice)."""
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(_STOP_TIMEOUT)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        version = (
            "" if self.api_version is fields.SEED else f"api_version={self.api_version.name!r}, "
        )
        return (
            f"Sandbox(url={self.url!r}, client_id={self.client_id!r}, {version}"
            f"customers={len(self.state)}, {state})"
        )

    # -- passthroughs to the state -------------------------------------------

    @property
    def stats(self) -> SandboxStats:
        """A snapshot of the counters."""
        return self.state.stats

    def reset_stats(self) -> None:
        """Zero every counter."""
        self.state.reset_stats()

    def set_faults(self, **knobs: Any) -> Faults:
        """Change fault knobs while running (:class:`Faults`, and ``rate_limit_per_minute``)."""
        return self.state.set_faults(**knobs)

    def get_record(self, customer_id: str) -> dict[str, Any]:
        """A deep copy of one stored record."""
        return self.state.get_record(customer_id)

    def records(self) -> list[dict[str, Any]]:
        """Deep copies of all records, oldest first, archived ones included."""
        return self.state.records()

    def edit_remote(self, customer_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Edit a record behind the client's back, as a dashboard user would."""
        return self.state.edit_remote(customer_id, changes)

    def aliases_of(self, customer_id: str) -> list[str]:
        """The internal aliases of a customer."""
        return self.state.aliases_of(customer_id)

    @property
    def planted(self) -> list[PlantedProblem]:
        """The planted data problems."""
        return self.state.planted


@dataclass(frozen=True)
class SandboxOptions:
    """What a sandbox starts with: its customers, credentials, rate limit and faults.

    :func:`start` and :func:`serve` take these fields as keywords, and the fields of
    :class:`Faults` beside them (``start(customers=5, latency=0.3)``); this class is
    the one place that lists them.
    """

    #: How many customers to generate (ignored when ``records`` is given).
    customers: int = 200
    #: Seeds the generated customers, ids and fault draws, so runs repeat.
    seed: int = 0
    client_id: str = DEMO_CLIENT_ID
    #: A local demo credential, kept out of the repr all the same.
    client_secret: str = field(default=DEMO_CLIENT_SECRET, repr=False)
    #: Requests a client may make a minute before a 429 (None: unlimited).
    rate_limit_per_minute: int | None = None
    faults: Faults = field(default_factory=Faults)
    #: Records to serve instead of generated customers (copied, never shared).
    records: list[dict[str, Any]] | None = field(default=None, hash=False)
    #: The API version served: ``"seed"`` (no ``Sequence-Version`` header) or
    #: ``"2024-07-30"`` (records, bodies and rules of that version).
    api_version: str | fields.ApiVersion = fields.SEED.name

    def __post_init__(self) -> None:
        # An unknown name fails here, naming the known ones; a value is kept by its name.
        object.__setattr__(self, "api_version", fields.api_version(self.api_version).name)

    def with_knobs(self, **knobs: Any) -> SandboxOptions:
        """These options with ``knobs`` changed: fields of this class, or of :class:`Faults`
        (those change ``faults``). An unknown name is a TypeError that lists the known ones."""
        own = {f.name for f in dataclasses.fields(self)}
        faulty = {f.name for f in dataclasses.fields(Faults)}
        unknown = sorted(set(knobs) - own - faulty)
        if unknown:
            known = ", ".join(sorted(own | faulty))
            raise TypeError(f"unknown sandbox option {', '.join(unknown)} (the options: {known})")
        changed = dataclasses.replace(self, **{k: v for k, v in knobs.items() if k in own})
        faults = {k: v for k, v in knobs.items() if k in faulty}
        if not faults:
            return changed
        return dataclasses.replace(changed, faults=dataclasses.replace(changed.faults, **faults))


def _options_of(
    options: SandboxOptions | None, knobs: dict[str, Any], caller: str
) -> SandboxOptions:
    """``options`` (default: the defaults) with ``knobs`` changed."""
    if options is not None and not isinstance(options, SandboxOptions):
        raise TypeError(
            f"{caller}() takes a SandboxOptions or keywords such as {caller}(customers=200, "
            f"seed=0), not {options!r}"
        )
    return (SandboxOptions() if options is None else options).with_knobs(**knobs)


def build_state(options: SandboxOptions) -> SandboxState:
    """The state a sandbox starts with: generated customers, or ``options.records``."""
    settings: dict[str, Any] = {
        "client_id": options.client_id,
        "client_secret": options.client_secret,
        "rate_limit_per_minute": options.rate_limit_per_minute,
        "faults": options.faults,
        "api_version": options.api_version,
    }
    if options.records is not None:
        return SandboxState(list(options.records), seed=options.seed, **settings)
    return SandboxState.generated(options.customers, options.seed, **settings)


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (with
    # proto 0 it skips that, and Nagle's algorithm adds ~40 ms to small answers).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _config(state: SandboxState, *, foreground: bool) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state),
        log_level="warning",
        lifespan="off",
        http="h11",
        ws="none",
        loop="asyncio",
        access_log=False,
        # In a thread (tests, notebooks) leave the host program's logging alone.
        log_config=uvicorn.config.LOGGING_CONFIG if foreground else None,
        timeout_graceful_shutdown=2,
    )


def start(
    options: SandboxOptions | None = None,
    /,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    **knobs: Any,
) -> Sandbox:
    """Start a sandbox in a daemon thread and return once it accepts connections.

    ``knobs`` are the fields of :class:`SandboxOptions` and :class:`Faults`
    (``start(customers=200, seed=0, latency=0.3)``), changing ``options`` when it is
    given. ``port=0`` picks a free port. ``records`` replaces the generated customers.
    """
    state = build_state(_options_of(options, knobs, "start"))
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    # uvicorn only installs signal handlers in the main thread (Server.capture_signals),
    # so running it in a thread needs no extra switch.
    server = uvicorn.Server(_config(state, foreground=False))
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"sequence-nb-sandbox:{bound_port}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.002)
    return Sandbox(state, server, thread, _url(host, bound_port))


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/api" if ":" in host else f"http://{host}:{port}/api"


def serve(
    options: SandboxOptions | None = None,
    /,
    *,
    port: int = 8765,
    host: str = "127.0.0.1",
    **knobs: Any,
) -> None:
    """Run a sandbox in the foreground until Ctrl-C, printing its URL and demo credentials.

    ``options`` and ``knobs`` are those of :func:`start` (customers, credentials, rate
    limit, faults, records).
    """
    state = build_state(_options_of(options, knobs, "serve"))
    sock = _bind(host, port)
    url = _url(host, sock.getsockname()[1])
    print(
        f"Sequence sandbox with {len(state)} customers at {url} (API version {state.version.name})"
    )
    print(f"  client id:     {state.client_id}")
    print(f"  client secret: {state.client_secret}  (a local demo credential)")
    print("Press Ctrl-C to stop.", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        uvicorn.Server(_config(state, foreground=True)).run(sockets=[sock])
    print("Sandbox stopped.")
