"""Pushing plans to the sandbox over sockets: dry runs, conflicts, faults, crashes, undo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from sequence_nb import SequenceClient
from sequence_nb.errors import SequenceError
from sequence_nb.frames import to_frame
from sequence_nb.journal import Journal, JournalError
from sequence_nb.models import update_body_of
from sequence_nb.plan import ChangePlan, plan_updates
from sequence_nb.push import PushStoppedError, answer_differences, resume, undo
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


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.sqlite3")


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


def test_an_interrupted_push_stops_cleanly_and_resumes(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=40, seed=11, latency=0.1)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 12))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    with contract_client(server) as client:
        timer.start()
        result = plan.apply(client, journal=journal, max_workers=1)
        assert result.interrupted
        counts = result.counts()
        assert counts.get("skipped", 0) > 0 and counts.get("updated", 0) > 0
        finished = resume(result.run_id or "", client, journal=journal)
    assert finished.counts() == {"updated": 12}
    assert all(server.stats.writes_applied[row.id] == 1 for row in plan.rows)


CRASHING_PUSH = textwrap.dedent(
    """
    import sys
    from sequence_nb import SequenceClient
    from sequence_nb.plan import ChangePlan

    plan = ChangePlan.load(sys.argv[1])
    with SequenceClient(rate_limit_per_minute=None) as client:
        plan.apply(client, journal=sys.argv[2], max_workers=2, progress=False)
    """
)


def test_a_push_killed_midway_resumes_with_every_row_landing_once(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = make_sandbox(customers=80, seed=12, latency=0.05)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 40, prefix="crash"))
    plan_file = plan.save(tmp_path / "plan.json")
    journal_file = tmp_path / "journal.sqlite3"
    env = dict(os.environ, **server.environ())
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_PUSH, str(plan_file), str(journal_file)], env=env
    )
    deadline = time.monotonic() + 30
    while sum(server.stats.writes_applied.values()) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    landed = sum(server.stats.writes_applied.values())
    assert 10 <= landed < 40, "killed midway"
    journal = Journal(journal_file)
    (run_id,) = journal.runs()["run_id"].to_list()
    with contract_client(server) as client:
        result = resume(run_id, client, journal=journal)
    assert result.counts() == {"updated": 40}
    assert {row.id: server.stats.writes_applied[row.id] for row in plan.rows} == {
        row.id: 1 for row in plan.rows
    }
    assert all(server.get_record(r.id)["label"] == r.body["label"] for r in plan.rows)


def test_undo_restores_the_before_images(make_sandbox: SandboxFactory, journal: Journal) -> None:
    server = make_sandbox(customers=40, seed=13)
    original = clean_frame(server)
    before = {r["id"]: r for r in server.records()}
    edited = relabelled(original, 8).with_columns(pl.lit("Leeds").alias("address.town"))
    plan = plan_updates(original, edited)
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        reverse = undo(pushed.run_id or "", client, journal=journal)
        assert len(reverse) == len(plan)
        undone = reverse.apply(client, journal=journal)
    assert undone.counts() == {"updated": len(plan)}
    for row in plan.rows:
        assert update_body_of(server.get_record(row.id)) == update_body_of(before[row.id])


def test_undo_does_not_overwrite_a_later_remote_edit(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=14)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 2))
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        server.edit_remote(plan.rows[0].id, {"label": "changed after the push"})
        reverse = undo(pushed.run_id or "", client, journal=journal)
        server.edit_remote(plan.rows[1].id, {"label": "changed after the undo was planned"})
        undone = reverse.apply(client, journal=journal)
    assert [r.status for r in undone.rows] == ["conflict"]
    assert server.get_record(plan.rows[0].id)["label"] == "changed after the push"
    assert server.get_record(plan.rows[1].id)["label"] == "changed after the undo was planned"


def test_undo_refuses_a_client_of_another_server(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=10, seed=15)
    original = clean_frame(server)
    with contract_client(server) as client:
        pushed = plan_updates(original, relabelled(original, 1)).apply(client, journal=journal)
    other = SequenceClient("id", "secret", "https://eu.sequencehq.com/api")
    with pytest.raises(SequenceError, match="was pushed to"):
        undo(pushed.run_id or "", other, journal=journal)


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
    """Answers the first PUT with a 503 without sending it, after someone edits the
    customer in the dashboard: the retry must not write over that edit."""

    def __init__(self, server: Sandbox, changes: dict[str, object]) -> None:
        self.inner = httpx.HTTPTransport()
        self.server = server
        self.changes = changes
        self.failed_once = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and not self.failed_once:
            self.failed_once = True
            customer_id = request.url.path.rsplit("/", 1)[-1]
            self.server.edit_remote(customer_id, self.changes)
            return httpx.Response(503, json={"message": "busy (test fault)"}, request=request)
        return self.inner.handle_request(request)


def test_a_saved_plan_applied_again_after_its_undo_is_written_not_replayed(
    make_sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = make_sandbox(customers=30, seed=30)
    original = clean_frame(server)
    saved = plan_updates(original, relabelled(original, 3)).save(tmp_path / "plan.json")
    plan = ChangePlan.load(saved)
    with contract_client(server) as client:
        for journal_name in ("one.sqlite3", "other.sqlite3"):  # the journal knows, or not
            journal = Journal(tmp_path / journal_name)
            first = plan.apply(client, journal=journal)
            assert first.counts() == {"updated": 3}
            undo(first.run_id or "", client, journal=journal).apply(client, journal=journal)
            assert all(server.get_record(r.id)["label"] != r.body["label"] for r in plan.rows)
            again = ChangePlan.load(saved).apply(client, journal=Journal(tmp_path / "third.db"))
            assert again.counts() == {"updated": 3}, again.to_frame()
            assert all(server.get_record(r.id)["label"] == r.body["label"] for r in plan.rows)
            undo(again.run_id or "", client, journal=tmp_path / "third.db").apply(
                client, journal=tmp_path / "third.db"
            )


def test_undo_restores_writes_whose_answers_were_lost(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=31)
    original = clean_frame(server)
    before = {r["id"]: r["label"] for r in server.records()}
    plan = plan_updates(original, relabelled(original, 3))
    server.set_faults(lost_answer_rate=1.0)
    with contract_client(server, max_retries=0) as client:
        result = plan.apply(client, journal=journal)
        assert result.counts() == {"updated": 3}, result.to_frame()
        assert all("a re-read shows it landed" in (r.message or "") for r in result.rows)
        server.set_faults(lost_answer_rate=0.0)
        reverse = undo(result.run_id or "", client, journal=journal)
        assert len(reverse) == 3
        reverse.apply(client, journal=journal)
    assert all(server.get_record(r.id).get("label") == before[r.id] for r in plan.rows)


def test_a_write_sent_without_an_answer_is_unconfirmed_and_undo_still_restores_it(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=32)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 1))
    target = plan.rows[0].id
    label_before = server.get_record(target).get("label")
    server.set_faults(lost_answer_rate=1.0)
    with server.client(transport=_FaultyGets(), max_retries=0, rate_limit_per_minute=None) as c:
        result = plan.apply(c, journal=journal)
    assert result.counts() == {"unconfirmed": 1}
    assert "sent, no answer" in (result.rows[0].message or "")
    assert [w.status for w in journal.writes(result.run_id or "")] == ["unconfirmed"]
    assert server.get_record(target)["label"] == plan.rows[0].body["label"]  # it did land
    server.set_faults(lost_answer_rate=0.0)
    with contract_client(server) as client:
        retry = result.failed()
        assert [row.id for row in retry.rows] == [target]
        again = retry.apply(client, journal=journal)
        assert again.counts() == {"updated": 1}
        assert "had landed without being confirmed" in (again.rows[0].message or "")
        reverse = undo(result.run_id or "", client, journal=journal)
        assert len(reverse) == 1
        reverse.apply(client, journal=journal)
    assert server.get_record(target).get("label") == label_before


def test_undo_restores_a_write_a_crash_left_pending(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=33)
    original = clean_frame(server)
    before = {r["id"]: r.get("label") for r in server.records()}
    plan = plan_updates(original, relabelled(original, 4))
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        # What a crash right after the PUT leaves: the intent, no outcome.
        journal._write("UPDATE writes SET status = 'pending', after_json = NULL", ())
        reverse = undo(pushed.run_id or "", client, journal=journal)
        assert len(reverse) == 4
        reverse.apply(client, journal=journal)
    assert all(server.get_record(r.id).get("label") == before[r.id] for r in plan.rows)


def test_undo_lists_every_row_it_cannot_restore_with_the_reason(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=34)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 3))
    changed, kept = plan.rows[0].id, plan.rows[1].id
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        server.edit_remote(changed, {"label": "changed after the push"})
        reverse = undo(pushed.run_id or "", client, journal=journal)
    assert len(reverse) == 2 and changed not in {row.id for row in reverse.rows}
    errors = reverse.errors.filter(pl.col("id") == changed)
    assert errors["column"].to_list() == ["label"]
    assert "changed after the push" in errors["message"][0]
    assert kept in {row.id for row in reverse.rows}


def test_resume_settles_a_landed_write_as_updated_after_another_field_changed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=35)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 2))
    target = plan.rows[0].id
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        journal._write(
            "UPDATE writes SET status = 'pending', after_json = NULL WHERE customer_id = ?",
            (target,),
        )
        server.edit_remote(target, {"contactName": "Edited in the dashboard"})
        server.reset_stats()
        resumed = resume(pushed.run_id or "", client, journal=journal)
    by_id = {row.id: row for row in resumed.rows}
    assert by_id[target].status == "updated"
    assert "a re-read shows it landed" in (by_id[target].message or "")
    assert server.stats.requests["PUT"] == 0
    assert server.get_record(target)["contactName"] == "Edited in the dashboard"


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


def test_resume_leaves_a_write_it_cannot_re_read_unconfirmed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=43)
    plan, _ = _one_row_plan(server)
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
    journal._write("UPDATE writes SET status = 'pending', after_json = NULL", ())
    # A GET-failing client: every re-read fails.
    failing = _FaultyGets()
    failing.put_seen = True
    with server.client(transport=failing, rate_limit_per_minute=None, max_retries=0) as client:
        first = resume(pushed.run_id or "", client, journal=journal)
    assert first.counts() == {"unconfirmed": 1}
    assert [w.status for w in journal.writes(pushed.run_id or "")] == ["unconfirmed"]
    with contract_client(server) as client:
        second = resume(pushed.run_id or "", client, journal=journal)
    assert second.counts() == {"updated": 1}
    assert "a re-read shows it landed" in (second.rows[0].message or "")


def test_a_silent_replay_after_an_undo_of_an_unconfirmed_write_is_written_again(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=44)
    plan, target = _one_row_plan(server)
    label_before = server.get_record(target).get("label")
    server.set_faults(lost_answer_rate=1.0)
    with server.client(transport=_FaultyGets(), max_retries=0, rate_limit_per_minute=None) as c:
        first = plan.apply(c, journal=journal)
    assert first.counts() == {"unconfirmed": 1}
    server.set_faults(lost_answer_rate=0.0)
    with contract_client(server) as client:
        undo(first.run_id or "", client, journal=journal).apply(client, journal=journal)
    assert server.get_record(target).get("label") == label_before
    with _faulty_client(server, _PutFaults({})) as client:  # replays come without the header
        again = plan.apply(client, journal=journal)
    assert again.counts() == {"updated": 1}, again.to_frame()
    assert server.get_record(target)["label"] == plan.rows[0].body["label"]


def test_a_run_that_reports_an_earlier_landing_can_be_undone_itself(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=45)
    plan, target = _one_row_plan(server)
    label_before = server.get_record(target).get("label")
    server.set_faults(lost_answer_rate=1.0)
    with server.client(transport=_FaultyGets(), max_retries=0, rate_limit_per_minute=None) as c:
        first = plan.apply(c, journal=journal)
    server.set_faults(lost_answer_rate=0.0)
    with contract_client(server) as client:
        again = first.failed().apply(client, journal=journal)
        assert again.counts() == {"updated": 1}
        reverse = undo(again.run_id or "", client, journal=journal)
        assert len(reverse) == 1
        reverse.apply(client, journal=journal)
    assert server.get_record(target).get("label") == label_before


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


def test_a_run_that_was_undone_is_not_resumed_and_its_undo_is_named_so(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=47)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 6))
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        run_id = pushed.run_id or ""
        # What a kill leaves: one write unanswered, two rows never reached.
        journal._write(
            "UPDATE writes SET status = 'pending' WHERE customer_id = ?", (plan.rows[0].id,)
        )
        never = (plan.rows[1].id, plan.rows[2].id)
        journal._write("DELETE FROM writes WHERE customer_id IN (?, ?)", never)
        undone = undo(run_id, client, journal=journal).apply(client, journal=journal)
        assert journal.run(undone.run_id or "").kind == "undo"
        assert journal.run(undone.run_id or "").undoes == run_id
        server.reset_stats()
        with pytest.raises(SequenceError, match=f"was undone by run {undone.run_id}"):
            resume(run_id, client, journal=journal)
    assert server.stats.requests["PUT"] == 0


def test_undo_works_from_the_writes_alone_for_a_run_an_older_version_journaled(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=48)
    original = clean_frame(server)
    before = {r["id"]: r.get("label") for r in server.records()}
    plan = plan_updates(original, relabelled(original, 3))
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal)
        old_layout = b'{"plan_id": "p", "rows": [], "notes": []}'  # no format, no version
        journal._write("UPDATE runs SET plan_json = ?", (old_layout,))
        reverse = undo(pushed.run_id or "", client, journal=journal)
        assert len(reverse) == 3
        reverse.apply(client, journal=journal)
    assert all(server.get_record(r.id).get("label") == before[r.id] for r in plan.rows)
