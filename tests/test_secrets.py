"""The client secret never shows: not in logs, reprs or error texts."""

from __future__ import annotations

import base64
import logging

import pytest

from sequence_nb import APIError, InvalidBodyError, SequenceClient
from sequence_nb.sandbox import Sandbox
from tests.conftest import SandboxFactory
from tests.test_models import SEED_BODY


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
            lambda: client.request("PUT", f"/customers/{customer['id']}", json={"x": 1}),
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
