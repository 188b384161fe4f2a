"""The history of every change the journal holds, one row per field: what a finance
team asks for after a clean-up.

Each run's rows come from its journaled writes: a write with a body gives one row
per field it changed, the old value being what the customer held just before it
(the record the body was built on) and the new one what was sent. A row the run
never sent (invalid, a conflict, skipped, never reached) has no body in the
journal: its fields come from the run's plan, with the plan's old and new values.
Undo runs are listed like any other, with kind ``undo``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import orjson
import polars as pl

from sequence_nb import fields
from sequence_nb.errors import SequenceError
from sequence_nb.fields import ApiVersion
from sequence_nb.journal import JournalArg, JournalError, RunRecord, WriteRecord, opened
from sequence_nb.models import get_path
from sequence_nb.plan import ARCHIVE_COLUMN, ARCHIVE_NOTE, ChangePlan, RowChange
from sequence_nb.push import ARCHIVE_BODY
from sequence_nb.runs import edited_columns

__all__ = ["HISTORY_SCHEMA", "NOT_SENT", "history"]

#: The history's columns: ``when`` is the row's end as the journal has it (its start
#: when it never ended), ``old`` and ``new`` are text (a value of another JSON type as
#: its JSON text), ``status`` the row's journaled status.
HISTORY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "run": pl.String(),
    "kind": pl.String(),
    "when": pl.Datetime("us", "UTC"),
    "customer": pl.String(),
    "legalName": pl.String(),
    "field": pl.String(),
    "old": pl.String(),
    "new": pl.String(),
    "status": pl.String(),
}
#: The status of a planned row the journal has no line for (the run stopped first).
NOT_SENT: Final = "not sent"

_Row = tuple[str, str, dt.datetime | None, str, str | None, str, str | None, str | None, str]


def history(journal: JournalArg = None) -> pl.DataFrame:
    """Every field every run in ``journal`` changed or meant to change, oldest first.

    One row per customer and field: ``run``, ``kind`` (``push`` or ``undo``), ``when``,
    ``customer``, ``legalName``, ``field``, ``old``, ``new`` and ``status`` (``updated``,
    ``failed``, ``conflict``, ``invalid`` ... or ``not sent``). ``journal`` is a
    :class:`~sequence_nb.journal.Journal` or a path (default: the usual journal).
    Filter it with polars, e.g. ``history().filter(pl.col("customer") == id)``.
    """
    rows: list[_Row] = []
    with opened(journal, read_only=True) as store:
        for run in store.run_records():
            rows += _run_rows(run, store.writes(run.run_id))
    return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row")


def _run_rows(run: RunRecord, writes: list[WriteRecord]) -> list[_Row]:
    planned, version = _planned_rows(run)
    journaled = {write.customer_id: write for write in writes}
    order = [*journaled, *(customer for customer in planned if customer not in journaled)]
    rows: list[_Row] = []
    for customer in order:
        write, row = journaled.get(customer), planned.get(customer)
        ended = _moment(write.finished_at or write.started_at) if write else None
        when = ended or _moment(run.created_at)
        status = write.status if write else NOT_SENT
        for field, old, new, name in _changes(write, row, version):
            rows.append(
                (run.run_id, run.kind, when, customer, name, field, _text(old), _text(new), status)
            )
    return rows


def _changes(
    write: WriteRecord | None, row: RowChange | None, version: ApiVersion
) -> list[tuple[str, Any, Any, str | None]]:
    """``(field, old, new, legal name)`` of each field a row changed or meant to."""
    if write is not None and write.body is not None and write.before is not None:
        name = _text(write.before.get(fields.SEED.legal_name_column))
        before, body = write.before, write.body
        if body == ARCHIVE_BODY:  # an archive: one row, archivedAt as the answer gave it
            after = (write.after or {}).get(ARCHIVE_COLUMN) or ARCHIVE_NOTE
            return [(ARCHIVE_COLUMN, before.get(ARCHIVE_COLUMN), after, name)]
        columns = edited_columns(write, version)
        return [(c, get_path(before, c), get_path(body, c), name) for c in columns]
    if row is not None:
        return [(c.column, c.old, c.new, row.legal_name) for c in row.changes]
    return [("(row)", None, None, None)]  # journaled without a body or a planned row


def _planned_rows(run: RunRecord) -> tuple[dict[str, RowChange], ApiVersion]:
    """The run's plan by customer; none when the plan cannot be read back (the
    journaled writes still give every field that was sent)."""
    try:
        plan = ChangePlan.from_json(run.plan_json)
    except (SequenceError, ValueError):
        return {}, _named_version(run)
    return {row.id: row for row in plan.rows}, plan.version


def _named_version(run: RunRecord) -> ApiVersion:
    """The version a run's plan names, read without rebuilding the plan (seed if none)."""
    try:
        return fields.api_version(run.api_version_name or fields.SEED.name)
    except (JournalError, ValueError):
        return fields.SEED


def _moment(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    """A value as the history shows it: text as it is, others as their JSON text."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
