"""Runs in the journal: finishing one a crash cut short, and undoing one.

Both start from the journal. ``resume`` loads the run's plan and finishes it with the
same idempotency keys; ``undo`` needs only the journaled writes: it reads each customer
and plans back every field that still holds what the run wrote.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from sequence_nb.contacts import contacts_frame
from sequence_nb.errors import APIError, NotFoundError, SequenceError
from sequence_nb.fields import SEED, ApiVersion
from sequence_nb.frames import to_frame
from sequence_nb.journal import LANDED, Journal, JournalArg, RunRecord, WriteRecord, opened
from sequence_nb.models import get_path, set_path, update_body_of
from sequence_nb.plan import ChangePlan, plan_updates
from sequence_nb.progress import progress_bar
from sequence_nb.push import (
    ARCHIVE_BODY,
    OnConflict,
    PushResult,
    answer_differences,
    continue_run,
    leaf_paths,
    same_value,
)

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient

__all__ = ["NOTHING_TO_RESTORE", "edited_columns", "resume", "undo"]

#: The note of an undo plan for a customer that holds nothing the run wrote: no failure.
NOTHING_TO_RESTORE = "nothing to restore: the write did not land, or was undone already"


def resume(
    run_id: str,
    client: SequenceClient,
    *,
    journal: JournalArg = None,
    on_conflict: OnConflict = "skip",
    max_workers: int = 8,
    progress: bool | None = None,
) -> PushResult[ChangePlan]:
    """Finish an interrupted run with the same idempotency keys.

    A write the journal shows as sent but unanswered (``pending`` or ``unconfirmed``)
    is settled first by a re-read: if the customer holds its values it landed;
    otherwise the row is pushed again on the record as it is now (the same key when
    the record is unchanged). Rows the run never reached are pushed like any plan. A
    run that was undone is refused: finishing it would write again what was undone.
    The run goes on under its own id; the journal notes when it was resumed
    (:meth:`Journal.runs` shows it).
    """
    with opened(journal) as store:
        run = run_of(store, run_id, client)
        undone = store.undone_by(run_id)
        if undone:
            raise SequenceError(
                f"run {run_id} was undone by run {undone[-1]}: resuming it would write again "
                "what was undone. To write these changes after all, plan them again."
            )
        plan = ChangePlan.from_json(run.plan_json)
        store.note_resumed(run_id)
        return continue_run(
            plan,
            client,
            store,
            run_id,
            on_conflict=on_conflict,
            max_workers=max_workers,
            progress=progress,
        )


def run_of(store: Journal, run_id: str, client: SequenceClient | None) -> RunRecord:
    """The journal's run, refusing a client of another server, or of another API
    version, than the run wrote with (its writes would be rebuilt in the wrong shape)."""
    run = store.run(run_id)
    if client is None:
        return run
    if run.base_url != client.base_url:
        raise SequenceError(
            f"run {run_id} was pushed to {run.base_url}, but this client talks to {client.base_url}"
        )
    named = run.api_version_name or SEED.name
    if named != client.api_version.name:
        raise SequenceError(
            f"run {run_id} was pushed in API version {named}, but this client speaks "
            f"{client.api_version.name}: use SequenceClient(api_version={named!r}); "
            "nothing was sent"
        )
    return run


def undo(
    run_id: str,
    client: SequenceClient,
    *,
    journal: JournalArg = None,
    max_workers: int = 8,
    progress: bool | None = None,
) -> ChangePlan:
    """A plan that restores what the run wrote, decided row by row from what Sequence
    holds now.

    Every customer the run sent (or may have sent) a write to is read: each field it
    edited that still holds the value the run wrote goes back to its value from before
    the write, whatever the journal says of the row (a write left ``pending`` or
    ``unconfirmed`` may have landed). A field changed again since, a customer gone,
    or a field changed as a side effect of the write is listed in the plan's
    ``errors`` with the reason, never dropped in silence. The plan is conflict-checked
    like any other when applied.
    """
    with opened(journal) as store:
        run_of(store, run_id, client)
        writes = [w for w in store.writes(run_id) if w.body is not None and w.before is not None]
        current = _read_customers(client, [w.customer_id for w in writes], max_workers, progress)
        originals: list[dict[str, Any]] = []
        restored: list[dict[str, Any]] = []
        notes: list[tuple[str | None, str, str]] = []
        for write in writes:
            record = current[write.customer_id]
            if write.body == ARCHIVE_BODY:
                notes.append((write.customer_id, "archivedAt", _archive_note(record)))
                continue
            if isinstance(record, str):
                notes.append((write.customer_id, "(row)", f"not restored: {record}"))
                continue
            back, row_notes = _restoring(write, record, run_id, client.api_version)
            notes += row_notes
            if back is None:
                continue
            originals.append(record)
            restored.append(back)
            if write.status not in LANDED:  # it landed after all: its key is spent
                store.confirm_landed(run_id, write.customer_id, record)
        plan = _restoring_plan(originals, restored, client)
        store.note_undo_plan(plan.plan_id, run_id)
    return replace(plan, notes=(*plan.notes, *notes))


_NO_UNARCHIVE = (
    "not restored: this run archived the customer, and Sequence has no way back "
    "(no call un-archives a customer)"
)


def _archive_note(record: dict[str, Any] | str) -> str:
    """What undo says of a customer the run tried to archive, by what Sequence holds now."""
    if isinstance(record, str):
        return f"not restored: the run may have archived it, and it cannot be read: {record}"
    if record.get("archivedAt"):
        return _NO_UNARCHIVE
    return "nothing to restore: the archive did not land (the customer is not archived)"


def _restoring_plan(
    originals: list[dict[str, Any]], restored: list[dict[str, Any]], client: SequenceClient
) -> ChangePlan:
    """The plan from the records as they are to the records restored. In 2024-07-30
    the contacts go through the contacts frames, as a person's contact edits do."""
    version = client.api_version
    field = version.contacts_field
    contacts: dict[str, Any] = {}
    if field is not None:
        contacts = {
            "contacts": contacts_frame(originals, api_version=version),
            "edited_contacts": contacts_frame(restored, api_version=version),
            # each restored record holds its customer's contacts whole: none means none
            "replace_contacts_of": [record["id"] for record in restored],
        }
    before = to_frame([_without(r, field) for r in originals], api_version=version)
    after = to_frame([_without(r, field) for r in restored], api_version=version)
    # a keyed column no restored record holds any more was removed by the restore
    gone = [c for c in before.columns if c not in after.columns and version.keyed_column(c)]
    after = after.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in gone)
    return plan_updates(
        before,
        after,
        base_url=client.base_url,
        api_version=version,
        **contacts,
    )


def _without(record: dict[str, Any], name: str | None) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


def edited_columns(write: WriteRecord, version: ApiVersion = SEED) -> list[str]:
    """The columns a journaled write changed: where its body differs from the update
    body of its before-image (the journal alone tells, without the run's plan)."""
    assert write.body is not None and write.before is not None
    base = update_body_of(write.before, version)
    # a keyed object (customProperties) the body leaves out was left alone, not cleared
    base = {k: v for k, v in base.items() if k not in version.keyed_fields or k in write.body}
    paths = leaf_paths(write.body) | leaf_paths(base)
    return sorted(p for p in paths if not same_value(get_path(write.body, p), get_path(base, p)))


def _restoring(
    write: WriteRecord, record: dict[str, Any], run_id: str, version: ApiVersion
) -> tuple[dict[str, Any] | None, list[tuple[str | None, str, str]]]:
    """``record`` with every column still holding what the write sent set back to its
    value before the write (``None`` when there is none), and notes on the rest."""
    assert write.body is not None and write.before is not None
    columns = edited_columns(write, version)
    back: dict[str, Any] = orjson.loads(orjson.dumps(record))
    notes: list[tuple[str | None, str, str]] = []
    restoring = False
    for column in columns:
        wrote, held, was = (
            get_path(write.body, column),
            get_path(record, column),
            get_path(write.before, column),
        )
        if same_value(held, was):
            continue
        if same_value(held, wrote):
            set_path(back, column, was)
            restoring = True
        else:
            notes.append(
                (
                    write.customer_id,
                    column,
                    f"not restored: Sequence now holds {held!r}, not the {wrote!r} "
                    f"run {run_id} wrote (changed since)",
                )
            )
    if not restoring and not notes:
        message = NOTHING_TO_RESTORE
        notes.append((write.customer_id, "(row)", message))
    if write.after is not None:
        for difference in answer_differences(write.before, write.after, columns, write.body):
            notes.append(
                (write.customer_id, "(side effect)", f"cannot be undone here: {difference}")
            )
    return (back if restoring else None), notes


def _read_customers(
    client: SequenceClient, ids: list[str], max_workers: int, progress: bool | None
) -> dict[str, dict[str, Any] | str]:
    """Each customer as it is now, or why it could not be read."""

    def read(customer_id: str) -> dict[str, Any] | str:
        try:
            return client.get_customer(customer_id)
        except NotFoundError:
            return "the customer no longer exists"
        except APIError as exc:
            return f"could not read it: {exc}"

    found: dict[str, dict[str, Any] | str] = {}
    bar = progress_bar(len(ids), "Reading", progress)
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for customer_id, record in zip(ids, pool.map(read, ids), strict=True):
            found[customer_id] = record
            bar.update()
    bar.close()
    return found
