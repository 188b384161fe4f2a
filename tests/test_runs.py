"""Resuming and undoing runs from the journal, over sockets: crashes, lost answers, undone runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from sequence_nb import SequenceClient
from sequence_nb.errors import SequenceError
from sequence_nb.journal import Journal
from sequence_nb.models import update_body_of
from sequence_nb.plan import ChangePlan, plan_updates
from sequence_nb.runs import resume, undo
from tests.conftest import SandboxFactory, contract_client
from tests.test_push import (
    _faulty_client,
    _FaultyGets,
    _one_row_plan,
    _PutFaults,
    clean_frame,
    relabelled,
)

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


def test_a_resumed_run_goes_on_under_its_id_and_the_journal_says_it_was_resumed(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=20, seed=12)
    original = clean_frame(server)
    plan = plan_updates(original, relabelled(original, 2))
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal, progress=False)
        resumed = resume(pushed.run_id or "", client, journal=journal, progress=False)
    assert resumed.run_id == pushed.run_id and resumed.counts() == {"updated": 2}
    (run,) = journal.runs().iter_rows(named=True)
    assert (run["kind"], run["resumed"], run["updated"]) == ("push", 1, 2)
    assert run["resumed_at"] >= run["created_at"]
