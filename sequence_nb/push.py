"""Pushing a plan: conflict-checked, concurrent, journaled writes; resume and undo.

For each row, the customer is read again and compared with the snapshot the plan
was made from (three-way): a field this plan edits that changed remotely is a
conflict (skipped unless ``on_conflict="overwrite"``); a change to any other field
survives, because the edits are applied on top of the fresh record. Before a write
is sent its before-image, body and idempotency key are committed to the journal;
after it, the outcome. The key is derived from the plan and the body, so sending
the same row again (a retry, a resume, the same plan applied twice) cannot apply it
twice.
"""

from __future__ import annotations

import html
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import polars as pl

from sequence_nb.errors import APIError, InvalidBodyError, NotFoundError, SequenceError
from sequence_nb.frames import to_frame
from sequence_nb.journal import Journal, RunRecord, WriteRecord
from sequence_nb.models import update_body_of, update_losses, validate_update_body
from sequence_nb.plan import HTML_STYLE, ChangePlan, RowChange, get_path, plan_updates, set_path
from sequence_nb.progress import progress_bar

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient

__all__ = ["PushResult", "RowResult", "apply_plan", "resume", "undo"]

Status = Literal["updated", "conflict", "invalid", "failed", "skipped", "would-update"]
OnConflict = Literal["skip", "overwrite"]
JournalArg = Journal | str | Path | None

STATUSES: tuple[Status, ...] = (
    "updated",
    "would-update",
    "conflict",
    "invalid",
    "failed",
    "skipped",
)


@dataclass(frozen=True)
class RowResult:
    """How one planned row ended."""

    id: str
    status: Status
    message: str | None = None
    attempts: int = 0
    idempotency_key: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class PushResult:
    """The outcome of a push, one :class:`RowResult` per planned row."""

    plan: ChangePlan
    rows: tuple[RowResult, ...]
    run_id: str | None
    dry_run: bool
    interrupted: bool = False
    journal_path: Path | None = None

    def counts(self) -> dict[str, int]:
        """How many rows ended in each status."""
        counted = Counter(row.status for row in self.rows)
        return {status: counted[status] for status in STATUSES if counted[status]}

    def to_frame(self) -> pl.DataFrame:
        """One row per planned row: id, status, message, attempts, idempotency_key and
        seconds (the time the row took, re-read included)."""
        return pl.DataFrame(
            [
                (r.id, r.status, r.message, r.attempts, r.idempotency_key, r.seconds)
                for r in self.rows
            ],
            schema={
                "id": pl.String,
                "status": pl.String,
                "message": pl.String,
                "attempts": pl.Int64,
                "idempotency_key": pl.String,
                "seconds": pl.Float64,
            },
            orient="row",
        )

    def failed(self) -> ChangePlan:
        """A plan of the rows to try again: those that failed or were never sent.

        It keeps the original plan's id, so a row whose write did land after all
        is recognised by the server from its idempotency key and not applied twice.
        """
        retry = {
            row.id
            for row in self.rows
            if row.status == "failed" or (row.status == "skipped" and _interrupted(row))
        }
        return replace(
            self.plan,
            rows=tuple(row for row in self.plan.rows if row.id in retry),
            added_ids=(),
            removed_ids=(),
            notes=(),
        )

    def summary(self) -> str:
        """Counts in one line."""
        counts = ", ".join(f"{n} {status}" for status, n in self.counts().items())
        prefix = "dry run: " if self.dry_run else ""
        suffix = " (interrupted)" if self.interrupted else ""
        return f"{prefix}{counts or 'nothing to do'}{suffix}"

    def __repr__(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        return f"<PushResult{run}: {self.summary()}>"

    def _repr_html_(self) -> str:
        colours = {
            "updated": "#0f5a1f",
            "would-update": "#0f5a1f",
            "conflict": "#8a5a00",
            "skipped": "#666",
        }
        rows = "".join(
            f'<tr><td>{html.escape(r.id)}</td><td style="color:{colours.get(r.status, "#b00020")}">'
            f"{r.status}</td><td>{html.escape(r.message or '')}</td><td>{r.attempts}</td></tr>"
            for r in self.rows[:_HTML_ROW_LIMIT]
        )
        more = len(self.rows) - _HTML_ROW_LIMIT
        tail = f"<p>… and {more} more rows: see result.to_frame().</p>" if more > 0 else ""
        run = f" · run <code>{html.escape(self.run_id)}</code>" if self.run_id else ""
        return (
            f'{HTML_STYLE}<div class="snb-plan"><p><b>{html.escape(self.summary())}</b>{run}</p>'
            "<table><thead><tr><th>id</th><th>status</th><th>message</th><th>attempts</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>{tail}</div>"
        )


_INTERRUPTED = "interrupted before it was sent"
_HTML_ROW_LIMIT = 500


def _interrupted(row: RowResult) -> bool:
    return row.message == _INTERRUPTED


@contextmanager
def _opened(journal: JournalArg) -> Iterator[Journal]:
    """The journal given, or the one at a path (default location for ``None``),
    which is closed again afterwards."""
    if isinstance(journal, Journal):
        yield journal
        return
    store = Journal(journal)
    try:
        yield store
    finally:
        store.close()


def _result(
    plan: ChangePlan,
    results: Mapping[str, RowResult],
    *,
    run_id: str | None,
    store: Journal | None,
    interrupted: bool,
) -> PushResult:
    """The push's result, in the plan's row order; a run that reached its end is marked so."""
    if store is not None and run_id is not None and not interrupted:
        store.finish_run(run_id)
    return PushResult(
        plan=plan,
        rows=tuple(results[row.id] for row in plan.rows if row.id in results),
        run_id=run_id,
        dry_run=store is None,
        interrupted=interrupted,
        journal_path=store.path if store is not None else None,
    )


# -- applying ---------------------------------------------------------------------------------


def apply_plan(
    plan: ChangePlan,
    client: SequenceClient,
    *,
    dry_run: bool = False,
    on_conflict: OnConflict = "skip",
    max_workers: int = 8,
    journal: JournalArg = None,
    progress: bool | None = None,
) -> PushResult:
    """Send every sendable row of ``plan`` through ``client``.

    ``dry_run=True`` re-reads each customer and checks for conflicts but writes
    nothing (and journals nothing). ``journal`` is a :class:`Journal` or a path
    (default: :func:`~sequence_nb.journal.default_journal_path`). A
    KeyboardInterrupt stops cleanly: rows in flight finish and are recorded, the
    rest are reported as skipped, and the run can be resumed from the journal.
    """
    if on_conflict not in ("skip", "overwrite"):
        raise ValueError(f"on_conflict must be 'skip' or 'overwrite', not {on_conflict!r}")
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    if dry_run:
        return _push_rows(plan, client, None, on_conflict, max_workers, progress)
    with _opened(journal) as store:
        return _push_rows(plan, client, store, on_conflict, max_workers, progress)


def _push_rows(
    plan: ChangePlan,
    client: SequenceClient,
    store: Journal | None,
    on_conflict: OnConflict,
    max_workers: int,
    progress: bool | None,
) -> PushResult:
    """Push (or, without a journal, dry-run) every row of the plan."""
    run_id = None
    if store is not None:
        run_id = store.start_run(
            kind="push", plan_id=plan.plan_id, base_url=client.base_url, plan_json=plan.to_json()
        )
    pusher = _RowPusher(plan, client, store is None, on_conflict, store, run_id)
    results = {row.id: pusher.invalid(row) for row in plan.invalid}
    jobs = [(row.id, _bind(pusher.push, row)) for row in plan.sendable]
    description = "Pushing" if store is not None else "Checking"
    done, interrupted = _run_concurrently(jobs, max_workers, progress, description)
    results.update(done)
    return _result(plan, results, run_id=run_id, store=store, interrupted=interrupted)


Job = Callable[[threading.Event], RowResult]


def _bind(method: Callable[[Any, threading.Event], RowResult], item: Any) -> Job:
    return lambda stop: method(item, stop)


def _run_concurrently(
    jobs: list[tuple[str, Job]], max_workers: int, progress: bool | None, description: str
) -> tuple[dict[str, RowResult], bool]:
    """Run the jobs on a thread pool; on KeyboardInterrupt let running ones finish."""
    stop = threading.Event()
    results: dict[str, RowResult] = {}
    bar = progress_bar(len(jobs), description, progress)
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sequence-nb-push")
    futures: dict[Future[RowResult], str] = {pool.submit(job, stop): key for key, job in jobs}
    interrupted = False
    try:
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for future in futures:
            future.cancel()
        wait(futures)
        for future, key in futures.items():
            if future.cancelled():
                results[key] = RowResult(key, "skipped", _INTERRUPTED)
            else:
                results[key] = future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return results, interrupted


class _RowPusher:
    """Pushes one row at a time; shared by the threads of one push."""

    def __init__(
        self,
        plan: ChangePlan,
        client: SequenceClient,
        dry_run: bool,
        on_conflict: OnConflict,
        journal: Journal | None,
        run_id: str | None,
    ) -> None:
        self.plan = plan
        self.client = client
        self.dry_run = dry_run
        self.on_conflict = on_conflict
        self.journal = journal
        self.run_id = run_id

    def _finish(
        self,
        row_id: str,
        status: Status,
        message: str | None = None,
        *,
        attempts: int = 0,
        key: str | None = None,
        after: dict[str, Any] | None = None,
    ) -> RowResult:
        if self.journal is not None and self.run_id is not None:
            self.journal.record_outcome(
                self.run_id, row_id, status=status, message=message, attempts=attempts, after=after
            )
        return RowResult(row_id, status, message, attempts, key)

    def invalid(self, row: RowChange) -> RowResult:
        message = "; ".join(f"{column} {text}" for column, text in row.problems)
        return self._finish(row.id, "invalid", message)

    def push(self, row: RowChange, stop: threading.Event) -> RowResult:
        started = time.perf_counter()
        try:
            result = self._push(row, stop)
        except Exception as exc:  # a row never takes the whole push down
            result = self._finish(
                row.id, "failed", f"unexpected error: {type(exc).__name__}: {exc}"
            )
        return replace(result, seconds=time.perf_counter() - started)

    def _push(self, row: RowChange, stop: threading.Event) -> RowResult:
        if stop.is_set():
            return RowResult(row.id, "skipped", _INTERRUPTED)
        try:
            fresh = self.client.get_customer(row.id)
        except NotFoundError:
            return self._finish(row.id, "failed", "the customer no longer exists")
        except APIError as exc:
            return self._finish(
                row.id, "failed", f"could not re-read it: {exc}", attempts=exc.attempts
            )
        conflicts = remote_conflicts(row, fresh)
        note = None
        if conflicts:
            if self.on_conflict == "skip":
                return self._finish(row.id, "conflict", conflicts)
            note = f"overwrote a remote change: {conflicts}"
        losses = update_losses(fresh)
        if losses:
            message = "; ".join(f"{column} {text}" for column, text in losses)
            return self._finish(row.id, "invalid", f"on the current remote record: {message}")
        try:
            body = rebased_body(row, fresh)
        except InvalidBodyError as exc:
            return self._finish(row.id, "invalid", f"on the current remote record: {exc}")
        if body == update_body_of(fresh):
            return self._finish(row.id, "skipped", "already has these values")
        body_json = orjson.dumps(body)
        key = self.plan.idempotency_key(row, body_json)
        if self.dry_run:
            return RowResult(row.id, "would-update", note, 0, key)
        if stop.is_set():
            return RowResult(row.id, "skipped", _INTERRUPTED)
        return self._send(row.id, body, key, fresh, note)

    def _send(
        self, row_id: str, body: dict[str, Any], key: str, before: dict[str, Any], note: str | None
    ) -> RowResult:
        assert self.journal is not None and self.run_id is not None
        self.journal.record_intent(
            self.run_id, row_id, idempotency_key=key, before=before, body=body
        )
        try:
            response = self.client.send_update(row_id, body, key)
        except (APIError, InvalidBodyError) as exc:
            attempts = exc.attempts if isinstance(exc, APIError) else 0
            return self._finish(row_id, "failed", str(exc), attempts=attempts, key=key)
        return self._finish(
            row_id, "updated", note, attempts=response.attempts, key=key, after=response.data
        )

    def finish_pending(self, write: WriteRecord, stop: threading.Event) -> RowResult:
        """Settle a write that was sent (or about to be) when the run stopped."""
        started = time.perf_counter()
        try:
            result = self._finish_pending(write, stop)
        except Exception as exc:
            result = self._finish(
                write.customer_id, "failed", f"unexpected error: {type(exc).__name__}: {exc}"
            )
        return replace(result, seconds=time.perf_counter() - started)

    def _finish_pending(self, write: WriteRecord, stop: threading.Event) -> RowResult:
        assert write.body is not None and write.before is not None and write.idempotency_key
        row_id, key = write.customer_id, write.idempotency_key
        fresh = self.client.get_customer(row_id)
        current = update_body_of(fresh)
        if current == write.body:
            return self._finish(
                row_id, "updated", "had landed before the interruption", key=key, after=fresh
            )
        if current != update_body_of(write.before):
            return self._finish(
                row_id, "conflict", "changed remotely since the interrupted write; plan again"
            )
        if stop.is_set():
            return RowResult(row_id, "skipped", _INTERRUPTED)
        return self._send(row_id, write.body, key, write.before, "sent again on resume")


def remote_conflicts(row: RowChange, fresh: Mapping[str, Any]) -> str | None:
    """Which edited fields changed remotely since the snapshot, in words, or ``None``.

    A field the remote record already holds the new value of is no conflict.
    """
    before, body = row.before, row.body
    clashes = []
    for column in row.columns:
        base, remote, wanted = (
            get_path(before, column),
            get_path(fresh, column),
            get_path(body, column),
        )
        if remote != base and remote != wanted:
            clashes.append(
                f"{column} changed remotely from {base!r} to {remote!r} "
                f"(this plan writes {wanted!r})"
            )
    return "; ".join(clashes) or None


def rebased_body(row: RowChange, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """The row's edits applied on top of the fresh record, validated."""
    body = update_body_of(fresh)
    planned = row.body
    for column in row.columns:
        set_path(body, column, get_path(planned, column))
    return validate_update_body(body, customer_id=row.id)


# -- resume and undo --------------------------------------------------------------------------


def resume(
    run_id: str,
    client: SequenceClient,
    *,
    journal: JournalArg = None,
    on_conflict: OnConflict = "skip",
    max_workers: int = 8,
    progress: bool | None = None,
) -> PushResult:
    """Finish an interrupted run with the same idempotency keys.

    A write the journal shows as sent but unconfirmed is settled first: if the
    customer already holds its body it landed; if the customer still holds its
    before-image it is sent again with the same key; anything else is a conflict.
    Rows the run never reached are pushed like any plan.
    """
    with _opened(journal) as store:
        return _resume(store, run_id, client, on_conflict, max_workers, progress)


def _resume(
    store: Journal,
    run_id: str,
    client: SequenceClient,
    on_conflict: OnConflict,
    max_workers: int,
    progress: bool | None,
) -> PushResult:
    run = _run_of(store, run_id, client)
    plan = ChangePlan.from_json(run.plan_json)
    recorded = {write.customer_id: write for write in store.writes(run_id)}
    pusher = _RowPusher(plan, client, False, on_conflict, store, run_id)
    results = {
        write.customer_id: RowResult(
            write.customer_id,
            _status(write.status),
            write.message,
            write.attempts,
            write.idempotency_key,
        )
        for write in recorded.values()
        if write.status != "pending"
    }
    jobs = [
        (write.customer_id, _bind(pusher.finish_pending, write))
        for write in recorded.values()
        if write.status == "pending"
    ]
    jobs += [(row.id, _bind(pusher.push, row)) for row in plan.sendable if row.id not in recorded]
    done, interrupted = _run_concurrently(jobs, max_workers, progress, "Resuming")
    results.update(done)
    for row in plan.invalid:
        results.setdefault(row.id, pusher.invalid(row))
    return _result(plan, results, run_id=run_id, store=store, interrupted=interrupted)


def _run_of(store: Journal, run_id: str, client: SequenceClient | None) -> RunRecord:
    """The journal's run, refusing a client of another server than the run wrote to."""
    run = store.run(run_id)
    if client is not None and run.base_url != client.base_url:
        raise SequenceError(
            f"run {run_id} was pushed to {run.base_url}, but this client talks to {client.base_url}"
        )
    return run


def _status(value: str) -> Status:
    for status in STATUSES:
        if status == value:
            return status
    return "failed"


def undo(
    run_id: str, client: SequenceClient | None = None, *, journal: JournalArg = None
) -> ChangePlan:
    """A plan that restores the before-images of every write the run made.

    The plan is made from the records as the run left them, so applying it is
    conflict-checked like any plan: a field changed again since the run is not
    overwritten by default. Nothing is read or sent until the plan is applied;
    given a ``client``, the run must have been pushed to the same base URL.
    """
    with _opened(journal) as store:
        run = _run_of(store, run_id, client)
        writes = store.writes(run_id)
    edited = {row.id: row.columns for row in ChangePlan.from_json(run.plan_json).rows}
    landed = [w for w in writes if w.status == "updated" and w.after and w.before]
    afters = [w.after for w in landed if w.after is not None]
    restored = [_restored(w, edited.get(w.customer_id, ())) for w in landed]
    return plan_updates(to_frame(afters), to_frame(restored))


def _restored(write: WriteRecord, columns: Iterable[str]) -> dict[str, Any]:
    assert write.after is not None and write.before is not None
    record = orjson.loads(orjson.dumps(write.after))
    for column in columns:
        set_path(record, column, get_path(write.before, column))
    return dict(record)
