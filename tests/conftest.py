"""Shared fixtures: sandboxes over real sockets and clients that check the contract."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sequence_nb import SequenceClient
from sequence_nb.journal import Journal
from sequence_nb.sandbox import Sandbox, start
from tests.contract import ContractTransport

SandboxFactory = Callable[..., Sandbox]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A sandbox of 300 customers shared by a test module (tests use distinct ids)."""
    with start(customers=300, seed=1) as server:
        yield server


@pytest.fixture
def make_sandbox() -> Iterator[SandboxFactory]:
    """Start sandboxes of a test's own (faults, rate limits); all stop at teardown."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        server = start(**options)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def contract_client(server: Sandbox, **options: Any) -> SequenceClient:
    """A client of ``server`` whose every request is checked against the API contract."""
    options.setdefault("rate_limit_per_minute", None)
    version = options.get("api_version", server.api_version)
    return server.client(transport=ContractTransport(api_version=version), **options)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[SequenceClient]:
    with contract_client(sandbox) as sequence:
        yield sequence


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """A journal of the test's own, in its temporary folder."""
    return Journal(tmp_path / "journal.sqlite3")
