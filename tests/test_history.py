"""The history for audits: one row per field every run changed, from the journal."""

from __future__ import annotations

import datetime as dt

import polars as pl

import sequence_nb
from sequence_nb.history import HISTORY_SCHEMA, NOT_SENT, history
from sequence_nb.journal import Journal
from sequence_nb.plan import plan_updates
from sequence_nb.runs import undo
from tests.conftest import SandboxFactory, contract_client
from tests.test_push import clean_frame, relabelled


def test_history_is_exported_from_the_package_root() -> None:
    assert sequence_nb.history is history


def test_an_empty_journal_has_an_empty_history_of_the_right_columns(journal: Journal) -> None:
    frame = history(journal)
    assert frame.is_empty() and frame.schema == HISTORY_SCHEMA


def test_each_field_a_push_and_its_undo_changed_is_one_row_with_old_and_new(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=3)
    original = clean_frame(server)
    edited = relabelled(original, 2).with_columns(
        pl.when(pl.col("id") == original["id"][0])
        .then(pl.lit("Audit Contact"))
        .otherwise(pl.col("contactName"))
        .alias("contactName")
    )
    plan = plan_updates(original, edited)
    started = dt.datetime.now(dt.UTC)
    with contract_client(server) as client:
        pushed = plan.apply(client, journal=journal, progress=False)
        undone = undo(pushed.run_id or "", client, journal=journal).apply(
            client, journal=journal, progress=False
        )
    frame = history(journal)
    first, second = original["id"][0], original["id"][1]
    push_rows = frame.filter(pl.col("run") == pushed.run_id)
    assert sorted(push_rows.select("customer", "field").rows()) == sorted(
        [(first, "contactName"), (first, "label"), (second, "label")]
    )
    label = push_rows.filter((pl.col("customer") == first) & (pl.col("field") == "label"))
    assert label.row(0, named=True) | {"when": None} == {
        "run": pushed.run_id,
        "kind": "push",
        "when": None,
        "customer": first,
        "legalName": original["legalName"][0],
        "field": "label",
        "old": original["label"][0],
        "new": "new 0",
        "status": "updated",
    }
    undo_rows = frame.filter(pl.col("run") == undone.run_id)
    assert set(undo_rows["kind"]) == {"undo"} and undo_rows.height == 3
    back = undo_rows.filter((pl.col("customer") == first) & (pl.col("field") == "label"))
    assert (back["old"][0], back["new"][0]) == ("new 0", original["label"][0])
    assert frame["when"].min() >= started - dt.timedelta(seconds=1)  # type: ignore[operator]
    assert frame["run"].to_list()[:3] == [pushed.run_id] * 3  # oldest run first


def test_rows_never_sent_are_in_the_history_with_their_status(
    make_sandbox: SandboxFactory, journal: Journal
) -> None:
    server = make_sandbox(customers=30, seed=4)
    original = clean_frame(server)
    edited = relabelled(original, 1).with_columns(
        pl.when(pl.col("id") == original["id"][1])
        .then(pl.lit("not an email"))
        .otherwise(pl.col("email"))
        .alias("email")
    )
    plan = plan_updates(original, edited)
    with contract_client(server) as client:
        plan.apply(client, journal=journal, progress=False)
    frame = history(journal)
    invalid = frame.filter(pl.col("customer") == original["id"][1]).row(0, named=True)
    assert (invalid["field"], invalid["new"], invalid["status"]) == (
        "email",
        "not an email",
        "invalid",
    )
    assert server.get_record(original["id"][1])["email"] == original["email"][1]


def test_a_planned_row_the_journal_never_reached_is_not_sent(journal: Journal) -> None:
    original = pl.DataFrame({"id": ["a"], "legalName": ["A Ltd"], "label": ["old"]})
    plan = plan_updates(original, original.with_columns(pl.lit("new").alias("label")))
    journal.start_run(kind="push", plan_id=plan.plan_id, base_url="u", plan_json=plan.to_json())
    (row,) = history(journal).rows(named=True)
    assert (row["customer"], row["field"], row["old"], row["new"]) == ("a", "label", "old", "new")
    assert row["status"] == NOT_SENT
