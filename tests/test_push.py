"""Pushing plans to the sandbox over sockets: dry runs, conflicts, faults, crashes, undo."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from sequence_nb import SequenceClient
from sequence_nb.contacts import fetch_contacts
from sequence_nb.errors import PlanError
from sequence_nb.frames import to_frame
from sequence_nb.journal import Journal, JournalError
from sequence_nb.models import update_body_of
from sequence_nb.plan import ChangePlan, plan_archive, plan_updates
from sequence_nb.push import PushStoppedError, answer_differences, same_value
from sequence_nb.runs import undo
from sequence_nb.sandbox import Sandbox
from tests.conftest import SandboxFactory, contract_client


def clean_frame(server: Sandbox) -> pl.DataFrame:
    """The sandbox's customers without planted problems, as a frame."""
    dirty = {problem.id for problem in server.planted}
    return to_frame([r for r in server.records() if r["id"] not in dirty])


def relabelled(frame: pl.DataFrame, count: int, prefix: str = "new") -> pl.DataFrame:
    """``frame`` with the label of its first ``count`` rows changed."""
    labels = [f"{prefix} {i}" if i < count else value for i, value in enumerate(frame["label"])]
    return frame.with_columns(pl.Series("label", labels, dtype=pl.String))


def test_a_dry_run_writes_nothing(make_sandbox: SandboxFactory, journal: Journal) -> None:
    server = make_sandbox(customers=60, seed=5)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 10))
    server.reset_stats()
    with contract_client(server) as client:
        result = plan.apply(client, dry_run=True, journal=journal)
    assert result.counts() == {"would-update": 10}
    assert server.stats.requests["PUT"] == 0
    assert result.run_id is None and journal.runs().is_empty()


def test_invalid_rows_are_never_sent(make_sandbox: SandboxFactory, journal: Journal) -> None:
    server = make_sandbox(customers=60, seed=5)
    original = clean_frame(server)
    edited = relabelled(original, 6)
    edited = edited.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("broken")).otherwise("email").alias("email")
    )
    plan = plan_updates(original, edited)
    server.reset_stats()
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"updated": 3, "invalid": 3}
    assert server.stats.rejected_bodies == 0
    assert server.stats.requests["PUT"] == 3


def test_a_push_updates_the_customers_and_journals_each_write(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=60, seed=5)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 20))
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal, max_workers=4)
    assert result.counts() == {"updated": 20}
    frame = result.to_frame()
    assert frame.columns == ["id", "status", "message", "attempts", "idempotency_key", "seconds"]
    assert frame["seconds"].min() > 0
    for row in plan.rows:
        assert server.get_record(row.id)["label"] == row.body["label"]
    writes = journal.writes(result.run_id or "")
    assert {w.customer_id for w in writes} == {row.id for row in plan.rows}
    assert all(w.status == "updated" and w.before and w.after for w in writes)
    assert "20 updated" in repr(result) and "20 updated" in result._repr_html_()


def test_a_remote_edit_to_the_same_field_is_never_overwritten(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=6)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 2))
    target = plan.rows[0].id
    server.edit_remote(target, {"label": "set in the dashboard"})
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
    by_id = {row.id: row for row in result.rows}
    assert by_id[target].status == "conflict"
    assert "set in the dashboard" in (by_id[target].message or "")
    assert server.get_record(target)["label"] == "set in the dashboard"
    assert by_id[plan.rows[1].id].status == "updated"


def test_overwrite_writes_through_a_conflict(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=6)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    server.edit_remote(plan.rows[0].id, {"label": "set in the dashboard"})
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal, on_conflict="overwrite")
    assert result.rows[0].status == "updated"
    assert "overwrote a remote change" in (result.rows[0].message or "")
    assert server.get_record(plan.rows[0].id)["label"] == plan.rows[0].body["label"]


def test_remote_edits_to_other_fields_survive_a_push(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=6)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    target = plan.rows[0].id
    server.edit_remote(target, {"contactName": "Someone Else", "address": {"town": "Bristol"}})
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
    assert result.rows[0].status == "updated"
    record = server.get_record(target)
    assert record["label"] == plan.rows[0].body["label"]
    assert record["contactName"] == "Someone Else"
    assert record["address"]["town"] == "Bristol"


def test_fields_nobody_edited_are_never_cleared(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=40, seed=7)
    original = clean_frame(server)
    before = {r["id"]: r for r in server.records()}
    plan = plan_updates(original, relabelled(original, 15))
    with contract_client(server) as client:
        plan.apply(client, journal=journal)
    for row in plan.rows:
        expected = dict(update_body_of(before[row.id]), label=row.body["label"])
        assert update_body_of(server.get_record(row.id)) == expected
        for kept in ("linkedServices", "createdAt", "externalIds", "archivedAt"):
            assert server.get_record(row.id).get(kept) == before[row.id].get(kept)


def test_every_valid_row_lands_exactly_once_despite_faults(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=80, seed=8)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 50))
    server.set_faults(error_rate=0.25, rate_limit_rate=0.15, lost_answer_rate=0.15)
    server.reset_stats()
    options = {"max_retries": 15, "retry_initial_delay": 0.02, "retry_max_delay": 0.3}
    with contract_client(server, **options) as client:
        result = plan.apply(client, journal=journal, max_workers=8)
    assert result.counts() == {"updated": 50}
    assert server.stats.faults["lost_answer"] > 0 and server.stats.faults["error"] > 0
    # A write whose answer was lost is found landed by the re-read before any retry.
    assert any("a re-read shows it landed" in (row.message or "") for row in result.rows)
    applied = server.stats.writes_applied
    assert {row.id: applied[row.id] for row in plan.rows} == {row.id: 1 for row in plan.rows}


def test_failed_rows_make_a_plan_to_try_again(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=60, seed=9)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 30))
    server.set_faults(error_rate=0.4)
    with contract_client(server, max_retries=0) as client:
        first = plan.apply(client, journal=journal)
        failed = first.failed()
        assert 0 < len(failed) < 30
        retried = {r.id for r in first.rows if r.status in ("failed", "unconfirmed")}
        assert {row.id for row in failed.rows} == retried
        server.set_faults(error_rate=0.0)
        second = failed.apply(client, journal=journal)
    assert second.counts() == {"updated": len(failed)}
    assert all(server.get_record(r.id)["label"] == r.body["label"] for r in plan.rows)


def test_applying_one_plan_twice_writes_once(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=10)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 5))
    with contract_client(server) as client:
        plan.apply(client, journal=journal)
        again = plan.apply(client, journal=journal)
    assert again.counts() == {"skipped": 5}
    assert all(server.stats.writes_applied[row.id] == 1 for row in plan.rows)


def test_journal_holds_no_credentials(make_sandbox: SandboxFactory, journal: Journal) -> None:
    server = make_sandbox(customers=10, seed=16)
    original = clean_frame(server)
    with contract_client(server) as client:
        plan_updates(original, relabelled(original, 3)).apply(client, journal=journal)
    journal.close()
    content = journal.path.read_bytes() + b"".join(
        p.read_bytes() for p in journal.path.parent.glob("*.sqlite3-*")
    )
    assert server.client_secret.encode() not in content


def test_a_remote_second_billing_email_stops_the_write(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=18)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    target = plan.rows[0].id
    first = server.get_record(target)["billingEmail"]
    server.edit_remote(target, {"billingEmails": [first, "ap@second.example"]})
    assert server.get_record(target)["billingEmails"] == [first, "ap@second.example"]
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
    assert result.rows[0].status == "invalid"
    assert "ap@second.example" in (result.rows[0].message or "")
    assert server.get_record(target)["billingEmails"] == [first, "ap@second.example"]


# -- write safety, round 2 (issue 11) ---------------------------------------------------------


class _FaultyGets(httpx.BaseTransport):
    """Sends every request over a real socket, but after the first PUT answers each GET
    with a dropped connection (a network that fails right after a write)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.put_seen = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and self.put_seen:
            raise httpx.ConnectError("connection dropped (test fault)", request=request)
        if request.method == "PUT":
            self.put_seen = True
        return self.inner.handle_request(request)


class _EditBeforeFailing(httpx.BaseTransport):
    """Answers the first PUT with ``status`` after someone edits the customer in the
    dashboard. With 429 the PUT was not applied; with 504 it is held back and sent later
    (``land_late()``), as a gateway timing out on a server still working would."""

    def __init__(self, server: Sandbox, changes: dict[str, object], status: int = 429) -> None:
        self.inner = httpx.HTTPTransport()
        self.server = server
        self.changes = changes
        self.status = status
        self.held: httpx.Request | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and self.held is None:
            request.read()
            self.held = request
            customer_id = request.url.path.rsplit("/", 1)[-1]
            self.server.edit_remote(customer_id, self.changes)
            headers = {"Retry-After": "0"} if self.status == 429 else {}
            return httpx.Response(self.status, json={"message": "busy"}, headers=headers)
        return self.inner.handle_request(request)

    def land_late(self) -> None:
        assert self.held is not None
        self.inner.handle_request(self.held).read()


def test_a_retried_write_is_rebuilt_on_a_fresh_read(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=37)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    target = plan.rows[0].id
    faults = _EditBeforeFailing(server, {"contactName": "Edited during the push"})
    options = {"retry_initial_delay": 0.01, "rate_limit_per_minute": None}
    with server.client(transport=faults, **options) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"updated": 1}
    assert result.rows[0].attempts == 2
    record = server.get_record(target)
    assert record["contactName"] == "Edited during the push"
    assert record["label"] == plan.rows[0].body["label"]


def test_an_attempt_that_may_still_land_is_not_sent_again_on_a_changed_record(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=37)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    target = plan.rows[0].id
    faults = _EditBeforeFailing(server, {"contactName": "Edited during the push"}, status=504)
    options = {"retry_initial_delay": 0.01, "rate_limit_per_minute": None}
    with server.client(transport=faults, **options) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"unconfirmed": 1}, result.to_frame()
    assert "contactName" in (result.rows[0].message or "")
    faults.land_late()
    # One write in all: a second one with a new key would have landed first and been
    # overwritten by the late one, and the result would have said "updated".
    assert server.stats.writes_applied[target] == 1
    with contract_client(server) as client:
        assert len(undo(result.run_id or "", client, journal=journal)) == 1


def test_the_write_follows_its_re_read_without_a_rate_limit_wait(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=40, seed=38)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 12))
    server.reset_stats()
    with contract_client(server, rate_limit_per_minute=240) as client:  # a slot every 0.25 s
        result = plan.apply(client, journal=journal, max_workers=4)
    assert result.counts() == {"updated": 12}
    windows = sorted(server.stats.write_windows)
    assert len(windows) == 12
    # Waiting for the limiter between the two would put 0.25-1 s (4 workers) in between.
    assert windows[len(windows) // 2] < 0.15, windows


def test_a_write_that_changes_an_unedited_field_is_reported_field_by_field(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=60, seed=39)
    server.set_faults(unlink_on_put=True)
    frame = clean_frame(server)
    linked = [
        r["id"]
        for r in server.records()
        if r["id"] in set(frame["id"]) and r.get("linkedServices") and not r.get("externalIds")
    ][:2]
    original = frame.filter(pl.col("id").is_in(linked))
    plan = plan_updates(original, relabelled(original, 2))
    with contract_client(server) as client:
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"side-effects": 2}
        assert all("linkedServices changed from" in (r.message or "") for r in result.rows)
        assert {w.status for w in journal.writes(result.run_id or "")} == {"side-effects"}
        reverse = undo(result.run_id or "", client, journal=journal)
    assert len(reverse) == 2
    side = reverse.errors.filter(pl.col("column") == "(side effect)")
    assert side.height == 2 and side["message"].str.contains("linkedServices").all()


def test_parts_of_an_edited_field_are_no_side_effect() -> None:
    before = {"id": "c", "contactName": {"first": "Ann"}, "label": "x"}
    after = {"id": "c", "contactName": "Ann Smith", "label": "x"}
    body = {"contactName": "Ann Smith", "label": "x"}
    assert answer_differences(before, after, ["contactName"], body) == []
    after["label"] = "y"
    (found,) = answer_differences(before, after, ["contactName"], body)
    assert found.startswith("label changed from 'x' to 'y'")


# -- the attack on round 2: a write that landed is never reported failed ---------------------


class _PutFaults(httpx.BaseTransport):
    """Real sockets, with scripted faults on PUTs: ``script`` maps the PUT's number (1, 2,
    ...) to what happens: "null" (sent, answered 200 with a JSON null), "timeout-late"
    (held back and answered with a timeout; sent with the next PUT), "409" (answered 409
    after sending what was held back), "504-late" (answered 504 at once, sent 0.3 s later)
    or "strip-replay" (sent, the replay header taken off the answer)."""

    def __init__(self, script: dict[int, str]) -> None:
        self.inner = httpx.HTTPTransport()
        self.script = script
        self.puts = 0
        self.held: httpx.Request | None = None
        self.late: list[threading.Thread] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "PUT":
            return self.inner.handle_request(request)
        self.puts += 1
        action = self.script.get(self.puts, "")
        request.read()
        if self.held is not None:
            self.inner.handle_request(self.held).read()
            self.held = None
        if action == "timeout-late":
            self.held = request
            raise httpx.ReadTimeout("no answer (test fault)", request=request)
        if action == "409":
            return httpx.Response(409, json={"message": "key in use"}, request=request)
        if action == "504-late":
            late = threading.Timer(0.3, lambda: self.inner.handle_request(request).read())
            late.start()
            self.late.append(late)
            return httpx.Response(504, json={"message": "gateway timeout"}, request=request)
        answer = self.inner.handle_request(request)
        answer.read()
        if action == "null":
            return httpx.Response(200, content=b"null", request=request)
        headers = [(k, v) for k, v in answer.headers.items() if k.lower() != "idempotent-replayed"]
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)


def _one_row_plan(server: Sandbox) -> tuple[ChangePlan, str]:
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    return plan, plan.rows[0].id


def _faulty_client(server: Sandbox, faults: httpx.BaseTransport) -> SequenceClient:
    options = {"retry_initial_delay": 0.01, "rate_limit_per_minute": None, "max_retries": 1}
    return server.client(transport=faults, **options)


def test_a_write_answered_with_something_other_than_its_record_is_settled_by_a_re_read(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=40)
    plan, target = _one_row_plan(server)
    with _faulty_client(server, _PutFaults({1: "null"})) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"updated": 1}, result.to_frame()
    assert server.stats.writes_applied[target] == 1


def test_a_write_that_lands_late_after_a_refused_retry_is_not_failed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=41)
    plan, target = _one_row_plan(server)
    with _faulty_client(server, _PutFaults({1: "timeout-late", 2: "409"})) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"updated": 1}, result.to_frame()
    assert server.get_record(target)["label"] == plan.rows[0].body["label"]


def test_a_gateway_timeout_while_the_write_still_lands_is_unconfirmed_not_failed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=42)
    plan, target = _one_row_plan(server)
    faults = _PutFaults({1: "504-late", 2: "504-late"})
    with _faulty_client(server, faults) as client:
        result = plan.apply(client, journal=journal)
        for late in faults.late:
            late.join()
    assert result.counts() == {"unconfirmed": 1}, result.to_frame()
    assert server.get_record(target)["label"] == plan.rows[0].body["label"]
    with contract_client(server) as client:
        assert len(undo(result.run_id or "", client, journal=journal)) == 1


def test_a_write_seen_landed_only_by_a_re_read_is_still_checked_for_side_effects(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=60, seed=39)
    frame = clean_frame(server)
    linked = [
        r["id"]
        for r in server.records()
        if r["id"] in set(frame["id"]) and r.get("linkedServices") and not r.get("externalIds")
    ][:1]
    original = frame.filter(pl.col("id").is_in(linked))
    plan = plan_updates(original, relabelled(original, 1))
    server.set_faults(unlink_on_put=True, lost_answer_rate=1.0)
    with contract_client(server, max_retries=0) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"side-effects": 1}, result.to_frame()
    assert "linkedServices changed from" in (result.rows[0].message or "")


class _FinishFails(Journal):
    def finish_run(self, run_id: str) -> None:
        raise JournalError("cannot write the journal: database or disk is full (test fault)")


def test_a_journal_that_fails_to_mark_the_run_finished_still_gives_the_result(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = make_sandbox(customers=20, seed=46)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 3))
    with (
        contract_client(server) as client,
        pytest.raises(PushStoppedError, match="could not be marked finished") as caught,
    ):
        plan.apply(client, journal=_FinishFails(tmp_path / "journal.sqlite3"))
    assert caught.value.result.counts() == {"updated": 3}
    assert caught.value.result.run_id


def test_a_journal_that_cannot_be_written_stops_the_push_and_what_landed_stays_undoable(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = make_sandbox(customers=60, seed=36)
    original = clean_frame(server)
    before = {r["id"]: r.get("label") for r in server.records()}
    plan = plan_updates(original, relabelled(original, 30))
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages + 12}")  # a disk that fills up
    with contract_client(server) as client:
        with pytest.raises(JournalError, match="stopped before its next write") as caught:
            plan.apply(client, journal=journal, max_workers=1)
        stopped = caught.value
        assert isinstance(stopped, PushStoppedError)
        landed = {r.id for r in plan.rows if server.get_record(r.id)["label"] == r.body["label"]}
        assert 0 < len(landed) < 30
        counts = stopped.result.counts()
        assert counts.get("updated", 0) == len(landed)
        journal.close()
        reverse = undo(stopped.result.run_id or "", client, journal=path)
        assert {row.id for row in reverse.rows} == landed
        reverse.apply(client, journal=tmp_path / "undo.sqlite3")
    assert all(server.get_record(r.id).get("label") == before[r.id] for r in plan.rows)


def test_a_write_that_may_still_land_is_unconfirmed_not_a_conflict_and_tried_again(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=49)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    faults = _EditBeforeFailing(server, {"label": "their edit"}, status=504)
    options = {"retry_initial_delay": 0.01, "rate_limit_per_minute": None}
    with server.client(transport=faults, **options) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"unconfirmed": 1}, result.to_frame()
    assert [row.id for row in result.failed().rows] == [plan.rows[0].id]


class _StaleAnswer(httpx.BaseTransport):
    """Answers every PUT 200 with the customer as it was, without sending the PUT."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            auth = {"Authorization": request.headers["Authorization"]}
            current = httpx.Request("GET", request.url, headers=auth)
            return self.inner.handle_request(current)
        return self.inner.handle_request(request)


def test_an_answer_that_does_not_hold_what_was_sent_is_never_taken_as_landed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=50)
    plan, target = _one_row_plan(server)
    with _faulty_client(server, _StaleAnswer()) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"unconfirmed": 1}, result.to_frame()
    assert "does not hold what was sent" in (result.rows[0].message or "")
    assert server.stats.writes_applied[target] == 0


class _SecondIntentFails(Journal):
    intents = 0

    def record_intent(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self.intents += 1
        if self.intents > 1:
            raise JournalError("cannot write the journal: disk full (test fault)")
        super().record_intent(*args, **kwargs)  # type: ignore[arg-type]


def test_a_journal_that_fails_before_a_retry_leaves_the_row_unconfirmed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = make_sandbox(customers=30, seed=51)
    plan, _ = _one_row_plan(server)
    journal = _SecondIntentFails(tmp_path / "journal.sqlite3")
    faults = _EditBeforeFailing(server, {}, status=504)
    with (
        _faulty_client(server, faults) as client,
        pytest.raises(PushStoppedError) as caught,
    ):
        plan.apply(client, journal=journal)
    assert caught.value.result.counts() == {"unconfirmed": 1}


def test_an_empty_text_and_an_absent_field_are_the_same_value() -> None:
    assert same_value("", None) and same_value(None, "") and same_value("a", "a")
    assert not same_value("a", None) and not same_value(0, None) and not same_value(False, "")


class _RefusedThenUnreadable(httpx.BaseTransport):
    """Answers the first PUT 429 without sending it; every GET after that fails."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.refused = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and not self.refused:
            self.refused = True
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "slow"})
        if request.method == "GET" and self.refused:
            raise httpx.ConnectError("connection refused (test fault)", request=request)
        return self.inner.handle_request(request)


def test_a_refused_write_whose_re_read_fails_is_failed_not_unconfirmed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=52)
    plan, target = _one_row_plan(server)
    with _faulty_client(server, _RefusedThenUnreadable()) as client:
        result = plan.apply(client, journal=journal)
    assert result.counts() == {"failed": 1}, result.to_frame()
    assert server.stats.writes_applied[target] == 0


# -- API version 2024-07-30, over sockets ---------------------------------------------------------


def _sandbox_2024(make_sandbox: SandboxFactory) -> Sandbox:
    return make_sandbox(customers=40, seed=11, api_version="2024-07-30")


def _live_2024(server: Sandbox, where: Any = None) -> dict[str, Any]:
    """A customer that is not archived and has no planted problem (and passes ``where``)."""
    planted = {p.id for p in server.planted}
    for record in server.records():
        usable = "archivedAt" not in record and record["id"] not in planted
        if usable and (where is None or where(record)):
            return record
    raise AssertionError("no such customer")


def _frame_2024(server: Sandbox, *records: dict[str, Any]) -> pl.DataFrame:
    listed = [{k: v for k, v in r.items() if k != "contacts"} for r in records]
    return to_frame(listed, api_version="2024-07-30")


def _set(frame: pl.DataFrame, column: str, value: Any) -> pl.DataFrame:
    return frame.with_columns(pl.lit(value, dtype=pl.String).alias(column))


def test_a_custom_property_edit_leaves_the_other_properties_and_the_contacts(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server, lambda r: len(r.get("customProperties", {})) >= 2 and r["contacts"])
    key = sorted(record["customProperties"])[0]
    original = _frame_2024(server, record)
    plan = plan_updates(
        original, _set(original, f"customProperties.{key}", "edited"), api_version="2024-07-30"
    )
    assert sorted(plan.rows[0].body["customProperties"]) == sorted(record["customProperties"])
    with contract_client(server) as client:
        assert plan.apply(client, journal=journal).counts() == {"updated": 1}
        after = client.get_customer(record["id"])
    assert after["customProperties"] == {**record["customProperties"], key: "edited"}
    assert after["contacts"] == record["contacts"]  # ids and all: untouched


def test_an_edit_of_another_field_sends_no_properties_and_keeps_every_contact(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server, lambda r: r.get("customProperties") and len(r["contacts"]) >= 2)
    original = _frame_2024(server, record)
    plan = plan_updates(original, _set(original, "label", "relabelled"), api_version="2024-07-30")
    assert "customProperties" not in plan.rows[0].body  # omitted: the API leaves them
    assert "contacts" not in plan.rows[0].body  # a list page has none: taken fresh at push
    with contract_client(server) as client:
        assert plan.apply(client, journal=journal).counts() == {"updated": 1}
        after = client.get_customer(record["id"])
    assert after["label"] == "relabelled"
    assert after["contacts"] == record["contacts"]
    assert after["customProperties"] == record["customProperties"]


def test_a_property_column_the_user_adds_creates_the_property(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server)
    original = _frame_2024(server, record)
    plan = plan_updates(
        original, _set(original, "customProperties.costCentre", "CC-7"), api_version="2024-07-30"
    )
    assert not plan.ignored_columns
    with contract_client(server) as client:
        assert plan.apply(client, journal=journal).counts() == {"updated": 1}
        after = client.get_customer(record["id"])
    assert after["customProperties"] == {**record.get("customProperties", {}), "costCentre": "CC-7"}


def test_a_contact_email_edit_lands_and_the_other_contacts_stay(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server, lambda r: len(r["contacts"]) >= 2)
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
        first = contacts["id"][0]
        edited = contacts.with_columns(
            pl.when(pl.col("id") == first)
            .then(pl.lit("changed@example.org"))
            .otherwise(pl.col("email"))
            .alias("email")
        )
        original = _frame_2024(server, record)
        plan = plan_updates(
            original, original, contacts=contacts, edited_contacts=edited, api_version="2024-07-30"
        )
        assert [c.column for c in plan.rows[0].changes] == ["contacts"]
        assert plan.apply(client, journal=journal).counts() == {"updated": 1}
        after = client.get_customer(record["id"])
    emails = [c["email"] for c in after["contacts"]]
    assert emails == ["changed@example.org", *[c["email"] for c in record["contacts"][1:]]]
    assert [c["id"] for c in after["contacts"][1:]] == [c["id"] for c in record["contacts"][1:]]


def test_a_us_customer_without_a_state_is_refused_before_sending(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server, lambda r: r["address"]["country"] == "US")
    original = _frame_2024(server, record)
    plan = plan_updates(original, _set(original, "address.state", None), api_version="2024-07-30")
    assert not plan.sendable and plan.errors["column"].to_list() == ["address.state"]
    server.reset_stats()
    with contract_client(server) as client:
        assert plan.apply(client, journal=journal).counts() == {"invalid": 1}
    assert server.stats.requests["PUT"] == 0


def test_a_plan_for_one_version_is_not_applied_by_a_client_of_another(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server)
    original = _frame_2024(server, record)
    plan = plan_updates(original, _set(original, "label", "x"), api_version="2024-07-30")
    with (
        server.client(api_version="seed", rate_limit_per_minute=None) as client,
        pytest.raises(PlanError, match=r"made for API version 2024-07-30.*speaks seed"),
    ):
        plan.apply(client, journal=journal)


def test_undo_restores_a_property_and_a_contact_edit(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server, lambda r: r.get("customProperties") and r["contacts"])
    key = sorted(record["customProperties"])[0]
    with contract_client(server) as client:
        contacts = fetch_contacts(client, [record["id"]], progress=False)
        edited_contacts = contacts.with_columns(pl.lit("Renamed Person").alias("name"))
        original = _frame_2024(server, record)
        plan = plan_updates(
            original,
            _set(original, f"customProperties.{key}", "edited"),
            contacts=contacts,
            edited_contacts=edited_contacts,
            api_version="2024-07-30",
        )
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"updated": 1}
        back = undo(result.run_id or "", client, journal=journal)
        assert back.apply(client, journal=journal).counts() == {"updated": 1}
        after = client.get_customer(record["id"])
    assert after["customProperties"] == record["customProperties"]
    assert [(c["name"], c["email"]) for c in after["contacts"]] == [
        (c["name"], c["email"]) for c in record["contacts"]
    ]


def test_an_archive_previews_saves_lands_and_undo_says_it_cannot_restore_it(
    make_sandbox: SandboxFactory, journal: Journal, tmp_path: Path
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server)
    plan = plan_archive(_frame_2024(server, record), [record["id"]], api_version="2024-07-30")
    preview = plan.preview().row(0, named=True)
    assert (preview["column"], preview["status"]) == ("archivedAt", "archive")
    assert "no way back" in preview["new"] and "no way back" in plan.summary()
    loaded = ChangePlan.load(plan.save(tmp_path / "archive.json"))
    assert loaded.digest == plan.digest and loaded.rows[0].action == "archive"
    with contract_client(server) as client:
        assert loaded.apply(client, dry_run=True).counts() == {"would-update": 1}
        result = loaded.apply(client, journal=journal)
        assert result.counts() == {"updated": 1}
        assert "no way back" in (result.rows[0].message or "")
        kinds = journal.runs().filter(pl.col("run_id") == result.run_id)["kind"].to_list()
        assert kinds == ["archive"]
        assert client.get_customer(record["id"])["archivedAt"]
        listed = {r["id"] for r in client.list_customers()}
        assert record["id"] not in listed
        server.reset_stats()
        back = undo(result.run_id or "", client, journal=journal)
    assert not back.sendable
    assert "no way back" in back.errors.filter(pl.col("id") == record["id"])["message"][0]
    assert server.stats.requests["POST"] == 0


def test_an_archive_whose_answer_is_lost_is_settled_by_a_reread(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server)
    plan = plan_archive(_frame_2024(server, record), [record["id"]], api_version="2024-07-30")
    server.set_faults(lost_answer_rate=1.0)
    with server.client(rate_limit_per_minute=None, max_retries=0) as client:
        result = plan.apply(client, journal=journal)
    server.set_faults(lost_answer_rate=0.0)
    assert result.counts() == {"updated": 1}
    assert "re-read shows it archived" in (result.rows[0].message or "")
    assert journal.writes(result.run_id or "")[0].status == "updated"


def test_archiving_an_archived_customer_is_invalid_and_the_seed_cannot_archive(
    make_sandbox: SandboxFactory,
) -> None:
    server = _sandbox_2024(make_sandbox)
    record = _live_2024(server)
    archived = {**record, "archivedAt": "2025-01-01T00:00:00Z"}
    frame = _frame_2024(server, archived)
    plan = plan_archive(frame, [record["id"], "nobody"], api_version="2024-07-30")
    assert not plan.sendable
    assert plan.errors["message"].to_list()[0].endswith("already archived")
    assert "not in the frame" in plan.errors["message"].to_list()[1]
    with pytest.raises(PlanError, match="archiving needs 2024-07-30"):
        plan_archive(frame, [record["id"]], api_version="seed")
