"""The client secret never shows: not in logs, reprs or error texts."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import polars as pl
import pytest

from sequence_nb import (
    APIError,
    InvalidBodyError,
    Journal,
    SequenceClient,
    check,
    clean,
    export,
    fetch_customers,
    plan_updates,
    undo,
)
from sequence_nb.sandbox import Sandbox
from tests.conftest import SandboxFactory
from tests.seed import SEED_BODY


def secret_forms(client_id: str, secret: str) -> list[str]:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return [secret, token, token[:16]]


def test_secret_is_in_no_log_line_repr_or_error(
    make_sandbox: SandboxFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    server: Sandbox = make_sandbox(customers=20, error_rate=0.3, seed=4)
    texts: list[str] = [repr(server)]
    with server.client(max_retries=5, retry_initial_delay=0.01) as client:
        texts += [repr(client), str(vars(client))]
        customer = client.list_customers()[0]
        client.update_customer(customer["id"], SEED_BODY)
        failures: list[Exception] = []
        for action in (
            lambda: client.get_customer("missing"),
            lambda: client.update_customer(customer["id"], dict(SEED_BODY, email="bad")),
            lambda: client._request("PUT", f"/customers/{customer['id']}", json={"x": 1}),
        ):
            with pytest.raises((APIError, InvalidBodyError)) as caught:
                action()
            failures.append(caught.value)
    with SequenceClient(server.client_id, "a-wrong-secret-123456", server.url) as wrong:
        with pytest.raises(APIError) as denied:
            wrong.list_customers()
        failures.append(denied.value)
        texts.append(repr(wrong))
    texts += [f"{error!s} {error!r} {error.args}" for error in failures]
    texts += [caplog.text, *capsys.readouterr()]
    assert len(caplog.records) > 10, "DEBUG logging really captured the traffic"
    everything = "\n".join(texts)
    for form in [
        *secret_forms(server.client_id, server.client_secret),
        *secret_forms(server.client_id, "a-wrong-secret-123456"),
    ]:
        assert form not in everything


def test_secret_appears_nowhere_from_fetch_to_journal(
    make_sandbox: SandboxFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """fetch -> check -> plan -> push (with failures) -> export -> journal, DEBUG on."""
    caplog.set_level(logging.DEBUG)
    server = make_sandbox(customers=60, seed=17)
    texts: list[str] = []
    journal = Journal(tmp_path / "journal.sqlite3")
    with server.client(max_retries=1, retry_initial_delay=0.01) as client:
        customers = fetch_customers(client, progress=True)
        problems = check(customers)
        edited = clean.suggest(customers).with_columns(pl.lit("reviewed").alias("label"))
        plan = plan_updates(customers, edited)
        texts += [repr(plan), plan._repr_html_(), str(plan.requests(client.base_url))]
        texts += [str(plan.preview().to_dicts()), str(plan.errors.to_dicts()), str(problems)]
        server.set_faults(error_rate=0.6)  # some rows fail for good
        result = plan.apply(client, journal=journal, progress=True)
        assert result.counts().get("failed", 0) > 0
        texts += [repr(result), result._repr_html_(), str(result.to_frame().to_dicts())]
        server.set_faults(error_rate=0.0)
        undone = undo(result.run_id or "", client, journal=journal)
        texts += [repr(undone), undone._repr_html_()]
    for suffix in ("parquet", "csv", "json", "xlsx"):
        export(customers, tmp_path / f"customers.{suffix}")
    plan.save(tmp_path / "plan.json")
    journal.close()
    texts += [caplog.text, *capsys.readouterr()]
    files = [path.read_bytes() for path in tmp_path.iterdir() if path.is_file()]
    assert len(files) >= 6
    everything = "\n".join(texts).encode() + b"\n".join(files)
    for form in secret_forms(server.client_id, server.client_secret):
        assert form.encode() not in everything
