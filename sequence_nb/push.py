"""Pushing a plan: conflict-checked, concurrent, journaled writes, each answer checked.

For each row the customer is read again and compared with the snapshot the plan was
made from (three-way): a field this plan edits that changed remotely is a conflict
(skipped unless ``on_conflict="overwrite"``); a change to any other field survives,
because the edits are applied on top of the fresh record. The rate limiter's budget
for the write is taken before that read, so no queue wait sits between reading a
record and writing it.

Before a write is sent its before-image, body and idempotency key are committed to
the journal; after it, the outcome. The key covers the plan, the row, the body and
the record the body was built on, so a retry (or a second process reading the same
record) shares one key while a new state of the record gets a new one. A failed
write is retried only after reading the record again: it may have landed, or the
record may have changed, and the body is rebuilt three-way on what is there now.

Each answer is checked: the edited fields must hold what was sent and every other
field what it held before; a write that changed more is reported as
``side-effects``, field by field. A write sent without an answer is ``unconfirmed``
(it may have landed) unless a re-read shows it did. Undo decides row by row from
what Sequence holds now, whatever the journal says of a row.
"""

from __future__ import annotations

import hashlib
import html
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    get_args,
)

import orjson
import polars as pl

from sequence_nb.errors import (
    APIError,
    InvalidBodyError,
    NotFoundError,
    PlanError,
    UnexpectedResponseError,
)
from sequence_nb.fields import SEED, ApiVersion
from sequence_nb.frames import prune_nulls
from sequence_nb.journal import LANDED, Journal, JournalArg, JournalError, WriteRecord, opened
from sequence_nb.models import (
    get_path,
    set_path,
    update_body_of,
    update_losses,
    validate_update_body,
    without_unedited_keyed,
)
from sequence_nb.progress import progress_bar
from sequence_nb.views import HTML_STYLE

if TYPE_CHECKING:
    from sequence_nb.client import Response, SequenceClient

__all__ = [
    "PushResult",
    "PushStoppedError",
    "PushedPlan",
    "PushedRow",
    "RowResult",
    "answer_differences",
    "apply_plan",
    "continue_run",
    "holds_write",
    "record_digest",
    "same_value",
    "write_key",
]


class PushedRow(Protocol):
    """What a push needs of a planned row (a :class:`~sequence_nb.plan.RowChange`)."""

    @property
    def id(self) -> str: ...
    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def before(self) -> dict[str, Any]: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def problems(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def action(self) -> str: ...


class PushedPlan(Protocol):
    """What a push needs of a plan (a :class:`~sequence_nb.plan.ChangePlan`).

    The push module sits below the plan module (``ChangePlan.apply`` calls it), so it
    names what it uses instead of importing the class.
    """

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def plan_id(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def base_url(self) -> str | None: ...
    @property
    def version(self) -> ApiVersion: ...
    @property
    def rows(self) -> Sequence[PushedRow]: ...
    @property
    def sendable(self) -> Sequence[PushedRow]: ...
    @property
    def invalid(self) -> Sequence[PushedRow]: ...
    def to_json(self) -> bytes: ...


PlanT = TypeVar("PlanT", bound=PushedPlan)

Status = Literal[
    "updated",
    "side-effects",
    "would-update",
    "unconfirmed",
    "conflict",
    "invalid",
    "failed",
    "skipped",
]
OnConflict = Literal["skip", "overwrite"]

#: Every status, in the order results count them.
STATUSES: tuple[Status, ...] = get_args(Status)
#: Statuses of rows that :meth:`PushResult.failed` offers to try again.
RETRYABLE: frozenset[str] = frozenset({"failed", "unconfirmed"})
#: Record fields the API derives from an edited one (``billingEmails`` from ``billingEmail``).
_DERIVED = {"billingEmails": "billingEmail"}
#: How often one row is sent again after a replayed answer its customer does not hold.
_MAX_STALE_REPLAYS = 5
_KEY_NAMESPACE = uuid.UUID("5b0e4c8e-4f7e-4d55-9f61-6a0f0d1c2b3a")


def write_key(
    plan_id: str,
    row_id: str,
    body_json: bytes,
    record: Mapping[str, Any],
    generation: int = 0,
) -> str:
    """The idempotency key of a write: it covers the plan, the row, the body and the record
    the body was built on, so a retry (or a second process reading the same record) shares
    one key while a new state of the record gets a new one. ``generation`` counts earlier
    writes of the same key known to have landed (sent again, they would be answered with a
    replay instead of being applied)."""
    body = hashlib.sha256(body_json).hexdigest()
    name = f"{plan_id}:{row_id}:{body}:{record_digest(record)}"
    if generation:
        name += f":{generation}"
    return str(uuid.uuid5(_KEY_NAMESPACE, name))


def record_digest(record: Mapping[str, Any]) -> str:
    """sha256 of a record in a canonical form (keys sorted, null fields dropped), so the
    same state of a customer gives the same digest however it was read."""
    canonical = orjson.dumps(prune_nulls(dict(record)), option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


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
class PushResult(Generic[PlanT]):
    """The outcome of a push, one :class:`RowResult` per planned row."""

    plan: PlanT
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

    def failed(self) -> PlanT:
        """A plan of the rows to try again: failed, unconfirmed (sent without an answer:
        it may have landed) or never sent because the push was interrupted.

        It keeps the original plan's id: a row whose write did land after all is found
        holding its values on the re-read, and reported as landed, not written twice.
        """
        retry = {
            row.id
            for row in self.rows
            if row.status in RETRYABLE or (row.status == "skipped" and _interrupted(row))
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
            "side-effects": "#8a5a00",
            "unconfirmed": "#8a5a00",
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


class PushStoppedError(JournalError):
    """The journal could not be written, so the push stopped before its next write.

    ``result`` holds every row's outcome up to then; writes that landed are undoable
    (their intent was journaled before they were sent).
    """

    def __init__(self, message: str, result: PushResult[Any]) -> None:
        super().__init__(message)
        self.result = result


_INTERRUPTED = "interrupted before it was sent"
#: What the journal holds as the body of an archive (``POST /customers/{id}/archive``
#: has none): undo and history tell an archive by it.
ARCHIVE_BODY: Final[dict[str, Any]] = {"(archive)": True}
_ARCHIVED = "archived: Sequence has no way back"
_HTML_ROW_LIMIT = 500


def _interrupted(row: RowResult) -> bool:
    return row.message == _INTERRUPTED


def _result(
    plan: PlanT,
    results: Mapping[str, RowResult],
    pusher: _RowPusher,
    interrupted: bool,
) -> PushResult[PlanT]:
    """The push's result, in the plan's row order; a run that reached its end is marked
    so, and one the journal failed under raises :class:`PushStoppedError`."""
    store, run_id = pusher.journal, pusher.run_id
    result = PushResult(
        plan=plan,
        rows=tuple(results[row.id] for row in plan.rows if row.id in results),
        run_id=run_id,
        dry_run=store is None,
        interrupted=interrupted or pusher.journal_error is not None,
        journal_path=store.path if store is not None else None,
    )
    if pusher.journal_error is not None:
        raise PushStoppedError(
            f"the push stopped before its next write: {pusher.journal_error}. "
            f"{result.summary()}; what landed can be undone with undo({run_id!r}) once the "
            "journal can be written again.",
            result,
        )
    if store is not None and run_id is not None and not interrupted:
        try:
            store.finish_run(run_id)
        except JournalError as exc:
            raise PushStoppedError(
                f"every row is recorded, but the run could not be marked finished: {exc}. "
                f"{result.summary()}",
                result,
            ) from exc
    return result


# -- applying ---------------------------------------------------------------------------------


def apply_plan(
    plan: PlanT,
    client: SequenceClient,
    *,
    dry_run: bool = False,
    on_conflict: OnConflict = "skip",
    max_workers: int = 8,
    journal: JournalArg = None,
    progress: bool | None = None,
    expected_digest: str | None = None,
) -> PushResult[PlanT]:
    """Send every sendable row of ``plan`` through ``client``.

    ``dry_run=True`` re-reads each customer and checks for conflicts but writes
    nothing (and journals nothing). ``journal`` is a :class:`Journal` or a path
    (default: :func:`~sequence_nb.journal.default_journal_path`). ``expected_digest``
    pins the plan that was reviewed: a plan with another digest is refused before
    anything is read. A KeyboardInterrupt stops cleanly: rows in flight finish and
    are recorded, the rest are reported as skipped, and the run can be resumed.
    """
    if on_conflict not in ("skip", "overwrite"):
        raise ValueError(f"on_conflict must be 'skip' or 'overwrite', not {on_conflict!r}")
    if max_workers < 1:
        raise ValueError("max_workers must be at least 1")
    _check_plan(plan, client, expected_digest)
    if dry_run:
        return _push_rows(plan, client, None, on_conflict, max_workers, progress)
    with opened(journal) as store:
        return _push_rows(plan, client, store, on_conflict, max_workers, progress)


def _check_plan(plan: PushedPlan, client: SequenceClient, expected_digest: str | None) -> None:
    """Refuse a plan that is not the one reviewed, or was made for another server."""
    if expected_digest is not None and plan.digest != expected_digest.strip():
        raise PlanError(
            f"this plan's digest is {plan.digest}, not the {expected_digest.strip()} that was "
            "reviewed; nothing was sent"
        )
    if plan.base_url is not None and plan.base_url != client.base_url:
        raise PlanError(
            f"this plan was made for {plan.base_url}, but the client talks to "
            f"{client.base_url}; nothing was sent"
        )
    if plan.version is not client.api_version:
        raise PlanError(
            f"this plan was made for API version {plan.version.name}, but the client speaks "
            f"{client.api_version.name}; nothing was sent (SequenceClient(api_version=...))"
        )


def _run_kind(plan: PushedPlan, undoes: str | None) -> str:
    """``undo`` for a plan that undoes a run, ``archive`` for one that only archives,
    else ``push``: what ``runs`` and ``history`` call the run."""
    if undoes is not None:
        return "undo"
    if plan.rows and all(row.action == "archive" for row in plan.rows):
        return "archive"
    return "push"


def _push_rows(
    plan: PlanT,
    client: SequenceClient,
    store: Journal | None,
    on_conflict: OnConflict,
    max_workers: int,
    progress: bool | None,
) -> PushResult[PlanT]:
    """Push (or, without a journal, dry-run) every row of the plan."""
    run_id = None
    if store is not None:
        undoes = store.undo_target(plan.plan_id)
        run_id = store.start_run(
            kind=_run_kind(plan, undoes),
            plan_id=plan.plan_id,
            base_url=client.base_url,
            plan_json=plan.to_json(),
            plan_digest=plan.digest,
            undoes=undoes,
        )
    pusher = _RowPusher(plan, client, on_conflict, store, run_id)
    results = {row.id: pusher.invalid(row) for row in plan.invalid}
    jobs = [(row.id, _bind(pusher.push, row)) for row in plan.sendable]
    description = "Pushing" if store is not None else "Checking"
    done, interrupted = _run_concurrently(jobs, pusher.stop, max_workers, progress, description)
    results.update(done)
    return _result(plan, results, pusher, interrupted)


Job = Callable[[], RowResult]


def _bind(method: Callable[[Any], RowResult], item: Any) -> Job:
    return lambda: method(item)


def _run_concurrently(
    jobs: list[tuple[str, Job]],
    stop: threading.Event,
    max_workers: int,
    progress: bool | None,
    description: str,
) -> tuple[dict[str, RowResult], bool]:
    """Run the jobs on a thread pool; on KeyboardInterrupt let running ones finish."""
    results: dict[str, RowResult] = {}
    bar = progress_bar(len(jobs), description, progress)
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sequence-nb-push")
    futures: dict[Future[RowResult], str] = {pool.submit(job): key for key, job in jobs}
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


Prepared = tuple[dict[str, Any], str | None]


@dataclass
class _RowPusher:
    """Pushes one row at a time; shared by the threads of one push.

    Without a journal it is a dry run: every check runs, nothing is written.
    """

    plan: PushedPlan
    client: SequenceClient
    on_conflict: OnConflict
    journal: Journal | None
    run_id: str | None
    stop: threading.Event = field(default_factory=threading.Event)
    journal_error: JournalError | None = None

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
        """Journal how a row ended; a journal that fails stops the push, not the answer."""
        if self.journal is not None and self.run_id is not None:
            try:
                self.journal.record_outcome(
                    self.run_id,
                    row_id,
                    status=status,
                    message=message,
                    attempts=attempts,
                    after=after,
                )
            except JournalError as exc:
                self._journal_failed(exc)
                message = f"{message + '; ' if message else ''}not journaled: {exc}"
        return RowResult(row_id, status, message, attempts, key)

    def _journal_failed(self, exc: JournalError) -> None:
        if self.journal_error is None:
            self.journal_error = exc
        self.stop.set()

    def invalid(self, row: PushedRow) -> RowResult:
        message = "; ".join(f"{column} {text}" for column, text in row.problems)
        return self._finish(row.id, "invalid", message)

    def push(self, row: PushedRow) -> RowResult:
        """Re-read, check and write one row; a row never takes the whole push down."""
        return self._timed(row.id, lambda: self._push(row))

    def settle(self, write: WriteRecord) -> RowResult:
        """Settle a write journaled as sent but never answered, then finish the row."""
        return self._timed(write.customer_id, lambda: self._settle(write))

    def _timed(self, row_id: str, work: Callable[[], RowResult]) -> RowResult:
        started = time.perf_counter()
        try:
            result = work()
        except Exception as exc:
            result = self._finish(
                row_id, "failed", f"unexpected error: {type(exc).__name__}: {exc}"
            )
        return replace(result, seconds=time.perf_counter() - started)

    def _read(self, row_id: str, calls: int) -> dict[str, Any] | str:
        """The customer as it is now, or why it could not be read, reserving the rate
        budget of ``calls`` calls first (a re-read and the write after it go out back to
        back, with no limiter wait between them)."""
        self.client.reserve_calls(calls)
        try:
            return self.client.get_customer(row_id)
        except NotFoundError:
            return "the customer no longer exists"
        except APIError as exc:
            return f"could not re-read it: {exc}"

    def _push(self, row: PushedRow) -> RowResult:
        if self.stop.is_set():
            return RowResult(row.id, "skipped", _INTERRUPTED)
        spent = self._spent_keys(row)
        fresh = self._read(row.id, calls=1 if self.journal is None else 2)
        if isinstance(fresh, str):
            return self._finish(row.id, "failed", fresh)
        return self._push_on(row, fresh, spent)

    def _push_on(self, row: PushedRow, fresh: dict[str, Any], spent: set[str]) -> RowResult:
        if row.action == "archive":
            return self._archive(row, fresh, spent)
        prepared = self._prepare(row, fresh)
        if isinstance(prepared, RowResult):
            return prepared
        body, note = prepared
        if self.journal is None:
            key = self._key(row, body, fresh, spent)
            return RowResult(row.id, "would-update", note, 0, key)
        if self.stop.is_set():
            return RowResult(row.id, "skipped", _INTERRUPTED)
        return self._write(_Sending(row, body, fresh, note, spent))

    def _prepare(self, row: PushedRow, fresh: dict[str, Any]) -> RowResult | Prepared:
        """The body to send on top of ``fresh``, or how the row ends without a write."""
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
            body = rebased_body(row, fresh, self.client.api_version)
        except InvalidBodyError as exc:
            return self._finish(row.id, "invalid", f"on the current remote record: {exc}")
        if holds_write(fresh, row.columns, body):
            return self._already_there(row, fresh)
        return body, note

    def _already_there(self, row: PushedRow, fresh: dict[str, Any]) -> RowResult:
        """A customer that already holds the edits: an earlier write of this plan that
        was never confirmed landed (reported so, and journaled for undo), or the values
        were there anyway (skipped)."""
        earlier = self._unconfirmed_write(row, fresh)
        if earlier is None:
            return self._finish(row.id, "skipped", "already has these values")
        assert earlier.body is not None and earlier.before is not None
        key = earlier.idempotency_key or ""
        problem = self._journal_intent(row.id, key, earlier.before, earlier.body)
        if problem is not None:
            message = f"landed in run {earlier.run_id}; not journaled in this run: {problem}"
            return RowResult(row.id, "updated", message, 0, key)
        message = (
            f"the write of run {earlier.run_id} had landed without being confirmed; "
            "a re-read shows it"
        )
        return self._finish(row.id, "updated", message, key=key, after=fresh)

    def _unconfirmed_write(self, row: PushedRow, fresh: dict[str, Any]) -> WriteRecord | None:
        """This plan's latest earlier write of the row, never confirmed, that ``fresh``
        holds."""
        if self.journal is None:
            return None
        for write in reversed(self.journal.earlier_writes(self.plan.plan_id, row.id)):
            if write.status in LANDED or write.run_id == self.run_id:
                continue
            if write.body is not None and holds_write(fresh, row.columns, write.body):
                return write
        return None

    def _spent_keys(self, row: PushedRow) -> set[str]:
        """Keys of this plan's row whose writes are known to have landed (read before the
        record, so two processes reading one record still agree on one key)."""
        if self.journal is None:
            return set()
        return self.journal.landed_keys(self.plan.plan_id, row.id)

    def _key(
        self, row: PushedRow, body: dict[str, Any], fresh: dict[str, Any], spent: set[str]
    ) -> str:
        body_json = orjson.dumps(body)
        generation = 0
        while True:
            key = write_key(self.plan.plan_id, row.id, body_json, fresh, generation)
            if key not in spent:
                return key
            generation += 1

    def _journal_intent(
        self, row_id: str, key: str, before: dict[str, Any], body: dict[str, Any]
    ) -> str | None:
        """Commit a write's intent before it is sent; why it could not be, else ``None``.
        A journal that cannot be written stops the push; a record that cannot be written
        as JSON (nested deeper than the encoder goes) stops only its row."""
        assert self.journal is not None and self.run_id is not None
        try:
            self.journal.record_intent(
                self.run_id, row_id, idempotency_key=key, before=before, body=body
            )
        except JournalError as exc:
            self._journal_failed(exc)
            return str(exc)
        except (TypeError, orjson.JSONEncodeError) as exc:
            return f"the record cannot be journaled: {exc}"
        return None

    def _write(self, sending: _Sending) -> RowResult:
        """Send the body until its outcome is known; anything unforeseen after a request
        went out leaves the row ``unconfirmed``, never ``failed``."""
        try:
            return self._send_until_settled(sending)
        except Exception as exc:
            if not sending.attempts:
                raise
            message = (
                f"sent, then an unexpected error: {type(exc).__name__}: {exc}; it may have "
                "landed. Check it, or try again: result.failed()"
            )
            row, key, attempts = sending.row, sending.key, sending.attempts
            return self._finish(row.id, "unconfirmed", message, attempts=attempts, key=key)

    def _send_until_settled(self, sending: _Sending) -> RowResult:
        """Send the body; retry only after a re-read; check the answer."""
        while True:
            row = sending.row
            sending.key = self._key(row, sending.body, sending.fresh, sending.spent)
            problem = self._journal_intent(row.id, sending.key, sending.fresh, sending.body)
            if problem is not None:
                return self._not_journaled(sending, problem)
            sending.attempts += 1
            try:
                response = self.client.send_update(row.id, sending.body, sending.key, retry=False)
            except APIError as exc:
                # A 2xx whose body is not the record is an answer too: it may have landed.
                unreadable = isinstance(exc, UnexpectedResponseError)
                sending.maybe_landed |= exc.maybe_applied or unreadable
                outcome = self._after_error(sending, exc)
            else:
                if not response.replayed:
                    return self._checked(sending, response.data)
                outcome = self._after_replay(sending, response)
            if isinstance(outcome, RowResult):
                return replace(outcome, attempts=sending.attempts)

    def _not_journaled(self, sending: _Sending, problem: str) -> RowResult:
        """A write whose intent the journal could not take is not sent; an earlier
        attempt of it may still have landed."""
        row, key, attempts = sending.row, sending.key, sending.attempts
        if attempts:
            message = f"an earlier attempt may have landed; not sent again: {problem}"
            return RowResult(row.id, "unconfirmed", message, attempts, key)
        return self._finish(row.id, "failed", f"not sent: {problem}", key=key)

    def _after_error(self, sending: _Sending, error: APIError) -> RowResult | None:
        """After a write that failed: give up, or re-read and rebuild it for one more try
        (``None``)."""
        delay = self.client.retry_policy.delay(error, sending.attempts)
        if delay is None or self.stop.is_set() or self.stop.wait(delay):
            return self._unanswered(sending, str(error), refused=not sending.maybe_landed)
        now = self._read(sending.row.id, calls=2)
        if isinstance(now, str):
            refused = not sending.maybe_landed
            return self._unanswered(sending, str(error), refused=refused, reread=now)
        return self._rebuilt(sending, now)

    def _rebuilt(self, sending: _Sending, now: dict[str, Any]) -> RowResult | None:
        """``sending`` made ready to go again on the record as it is ``now``, or how the
        row ends: it landed, conflicts or is invalid on the new record.

        While an earlier attempt may still land, the write goes again only as it was
        (same body, same key: the server takes both as one write) and only on the same
        record; a rebuilt body with a new key could land first and then be overwritten
        by the earlier attempt landing late, with someone's edit in between lost.
        """
        row = sending.row
        if holds_write(now, row.columns, sending.body):
            return self._landed_by_reread(sending, now, "its answer was lost")
        if sending.maybe_landed:
            if record_digest(now) == record_digest(sending.fresh):
                return None
            return self._unsettled(sending, now)
        prepared = self._prepare(row, now)
        if isinstance(prepared, RowResult):
            return prepared
        sending.body, sending.fresh = prepared[0], now
        sending.note = prepared[1] or sending.note
        return None

    def _unsettled(self, sending: _Sending, now: dict[str, Any]) -> RowResult:
        """An attempt that may still land, on a record that changed since: not sent again."""
        changed = sorted(
            path
            for path in leaf_paths(sending.fresh) | leaf_paths(now)
            if not same_value(get_path(sending.fresh, path), get_path(now, path))
        )
        message = (
            f"sent, no answer, and the record changed since ({', '.join(changed)}): an earlier "
            "attempt may still land, so it was not sent again with a new body. Check it, or "
            "try again: result.failed()"
        )
        row, key, attempts = sending.row, sending.key, sending.attempts
        return self._finish(row.id, "unconfirmed", message, attempts=attempts, key=key)

    def _unanswered(
        self, sending: _Sending, error: str, *, refused: bool = False, reread: str | None = None
    ) -> RowResult:
        """How a write that was given up ends: ``failed`` when the server refused every
        attempt (4xx); ``updated`` when a re-read shows it landed; else ``unconfirmed``:
        sent without a definitive answer, it may have landed or may still land."""
        row, key, attempts = sending.row, sending.key, sending.attempts
        if refused:
            return self._finish(row.id, "failed", error, attempts=attempts, key=key)
        if reread is None:
            now = self._read(row.id, calls=1)
            if isinstance(now, str):
                reread = now
            elif holds_write(now, row.columns, sending.body):
                return self._landed_by_reread(sending, now, f"its answer was lost ({error})")
        found = (
            f"a re-read failed too ({reread})"
            if reread is not None
            else "a re-read shows it has not landed, but it still may"
        )
        message = f"sent, no answer: {error}; {found}. Check it, or try again: result.failed()"
        return self._finish(row.id, "unconfirmed", message, attempts=attempts, key=key)

    def _after_replay(self, sending: _Sending, response: Response) -> RowResult | None:
        """A replayed answer is of an earlier write with this key: it counts only if the
        customer holds the body now; else the key is spent and the row is sent again."""
        now = self._read(sending.row.id, calls=2)
        if isinstance(now, str):
            message = f"the server replayed an earlier answer that could not be verified: {now}"
            return self._finish(
                sending.row.id, "unconfirmed", message, attempts=sending.attempts, key=sending.key
            )
        if holds_write(now, sending.row.columns, sending.body):
            return self._checked(sending, response.data)
        sending.spent = sending.spent | {sending.key}
        sending.stale_replays += 1
        if sending.stale_replays > _MAX_STALE_REPLAYS:
            message = (
                "the server keeps answering with replays of earlier writes that the customer "
                "no longer holds; nothing new was written"
            )
            return self._finish(
                sending.row.id, "failed", message, attempts=sending.attempts, key=sending.key
            )
        return self._rebuilt(sending, now)

    def _checked(self, sending: _Sending, after: Any) -> RowResult:
        """``updated`` when the answer holds the body and nothing else changed, else
        ``side-effects`` naming every field that differs. An answer that does not hold
        what was sent is not believed either way: a re-read decides."""
        row = sending.row
        if isinstance(after, Mapping) and holds_write(after, row.columns, sending.body):
            return self._judged(sending, after, sending.note)
        now = self._read(row.id, calls=1)
        if isinstance(now, dict) and holds_write(now, row.columns, sending.body):
            return self._landed_by_reread(sending, now, "its answer did not hold what was sent")
        found = now if isinstance(now, str) else "a re-read shows it has not landed"
        message = (
            f"answered, but the answer does not hold what was sent; {found}. "
            "Check it, or try again: result.failed()"
        )
        key, attempts = sending.key, sending.attempts
        return self._finish(row.id, "unconfirmed", message, attempts=attempts, key=key)

    def _landed_by_reread(
        self, sending: _Sending, now: dict[str, Any], how: str, *, compare: bool = True
    ) -> RowResult:
        """A write seen landed by a re-read rather than by its answer. A re-read right
        after the write is compared field by field like an answer (a difference may be
        someone else's); one long after (a resume) is not."""
        note = f"{how}; a re-read shows it landed"
        if sending.note:
            note += f" ({sending.note})"
        if compare:
            return self._judged(sending, now, note)
        note += "; other fields were not compared, as they may have changed since"
        row = sending.row
        return self._finish(
            row.id, "updated", note, attempts=sending.attempts, key=sending.key, after=now
        )

    def _judged(self, sending: _Sending, after: Any, note: str | None) -> RowResult:
        row, key, attempts = sending.row, sending.key, sending.attempts
        differences = answer_differences(sending.fresh, after, row.columns, sending.body)
        if differences:
            message = "written with side effects: " + "; ".join(differences)
            if note:
                message += f" ({note})"
            return self._finish(
                row.id, "side-effects", message, attempts=attempts, key=key, after=after
            )
        return self._finish(row.id, "updated", note, attempts=attempts, key=key, after=after)

    # -- archives ---------------------------------------------------------------------

    def _archive(self, row: PushedRow, fresh: dict[str, Any], spent: set[str]) -> RowResult:
        """Archive one customer (no body, no way back): journaled first, settled by a
        re-read when the answer is lost."""
        if fresh.get("archivedAt"):
            return self._finish(row.id, "skipped", f"already archived ({fresh['archivedAt']})")
        key = self._key(row, ARCHIVE_BODY, fresh, spent)
        if self.journal is None:
            return RowResult(row.id, "would-update", "would archive: no way back", 0, key)
        if self.stop.is_set():
            return RowResult(row.id, "skipped", _INTERRUPTED)
        problem = self._journal_intent(row.id, key, fresh, ARCHIVE_BODY)
        if problem is not None:
            return self._finish(row.id, "failed", f"not sent: {problem}", key=key)
        try:
            after = self.client.archive_customer(row.id, idempotency_key=key)
        except Exception as exc:  # sent: whatever went wrong, a re-read decides
            return self._archive_unanswered(row, key, exc)
        return self._finish(row.id, "updated", _ARCHIVED, attempts=1, key=key, after=after)

    def _archive_unanswered(self, row: PushedRow, key: str, error: Exception) -> RowResult:
        """An archive whose answer was an error: a re-read tells whether it landed. An
        error that is no refusal from the server (a lost answer, a bug after sending)
        leaves it ``unconfirmed`` unless the re-read shows it archived."""
        now = self._read(row.id, calls=1)
        if isinstance(now, str):
            message = f"sent, no definitive answer ({error}); may have landed: {now}"
            return self._finish(row.id, "unconfirmed", message, attempts=1, key=key)
        if now.get("archivedAt"):
            message = f"{_ARCHIVED} (the answer was {error}; a re-read shows it archived)"
            return self._finish(row.id, "updated", message, attempts=1, key=key, after=now)
        refused = isinstance(error, APIError) and not error.maybe_applied
        status: Status = "failed" if refused else "unconfirmed"
        message = f"not archived: {error}" if refused else f"sent, then {error}; not archived yet"
        return self._finish(row.id, status, message, attempts=1, key=key)

    def _settle(self, write: WriteRecord) -> RowResult:
        """A write the journal shows sent but unanswered: landed (a re-read shows it),
        else pushed again on the record as it is now."""
        row = self.plan_row(write.customer_id)
        if row is None:
            return self._finish(write.customer_id, "failed", "not in the run's plan")
        if self.stop.is_set():
            return RowResult(row.id, "skipped", _INTERRUPTED)
        spent = self._spent_keys(row)
        now = self._read(row.id, calls=2)
        if isinstance(now, str):
            message = f"sent before the interruption, still unsettled: {now}"
            key = write.idempotency_key
            return self._finish(row.id, "unconfirmed", message, attempts=write.attempts, key=key)
        if row.action == "archive" and now.get("archivedAt"):
            message = f"{_ARCHIVED} (sent before the interruption; a re-read shows it archived)"
            key = write.idempotency_key
            return self._finish(
                row.id, "updated", message, attempts=write.attempts, key=key, after=now
            )
        landed = write.body is not None and holds_write(now, row.columns, write.body)
        if landed and write.body is not None and write.before is not None:
            sending = _Sending(row, write.body, write.before, None, spent)
            sending.key, sending.attempts = write.idempotency_key or "", write.attempts
            how = "sent before the interruption"
            return self._landed_by_reread(sending, now, how, compare=False)
        return self._push_on(row, now, spent)

    def plan_row(self, customer_id: str) -> PushedRow | None:
        """The plan's row of a customer."""
        return next((row for row in self.plan.rows if row.id == customer_id), None)


@dataclass
class _Sending:
    """One row's write while it is being sent: what goes, on which record, how it went."""

    row: PushedRow
    body: dict[str, Any]
    fresh: dict[str, Any]
    note: str | None
    spent: set[str]
    key: str = ""
    attempts: int = 0
    #: Whether any attempt may have been applied (sticky across attempts).
    maybe_landed: bool = False
    stale_replays: int = 0


def holds_write(record: Mapping[str, Any], columns: Iterable[str], body: Mapping[str, Any]) -> bool:
    """Whether ``record`` holds the body's value in every edited column."""
    return all(same_value(get_path(record, c), get_path(body, c)) for c in columns)


def same_value(old: Any, new: Any) -> bool:
    """Equal as a field's value: an empty text is no value, as an absent field is (an
    emptied cell clears its field, and a server may store either)."""
    return (None if old == "" else old) == (None if new == "" else new)


def answer_differences(
    before: Mapping[str, Any], after: Any, columns: Iterable[str], body: Mapping[str, Any]
) -> list[str]:
    """What a write's answer holds that it should not: an edited field without the value
    sent, or any other field changed from what it held before the write."""
    if not isinstance(after, Mapping):
        return [f"the answer is not a record: {after!r}"]
    edited = set(columns)
    found = [
        f"{column}: sent {get_path(body, column)!r}, the answer holds {get_path(after, column)!r}"
        for column in sorted(edited)
        if get_path(after, column) != get_path(body, column)
    ]
    for path in sorted(leaf_paths(before) | leaf_paths(after)):
        if _under(path, edited) or path.rsplit(".", 1)[-1] in _VOLATILE:
            continue
        old, new = get_path(before, path), get_path(after, path)
        source = _DERIVED.get(path)
        if source in edited:
            sent = get_path(body, source)
            old = [sent] if sent else []
        if not _same(old, new):
            found.append(
                f"{path} changed from {old!r} to {new!r}, unasked (by this write, or by "
                "someone else between the re-read and the write)"
            )
    return found


#: Record fields a server may change on any write (timestamps of the write itself).
_VOLATILE = frozenset({"updatedAt"})


def _under(path: str, columns: set[str]) -> bool:
    """Whether ``path`` is an edited column or lies inside one (``contactName.first`` when
    ``contactName``, an object before, was edited)."""
    return any(path == column or path.startswith(column + ".") for column in columns)


def _same(old: Any, new: Any) -> bool:
    """Equal, counting an empty list or object as absent."""
    return (old or None) == (new or None) if not isinstance(old, bool) else old == new


def leaf_paths(record: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of a record's values; lists are one value each."""
    paths: set[str] = set()
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            paths |= leaf_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def remote_conflicts(row: PushedRow, fresh: Mapping[str, Any]) -> str | None:
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
        if not same_value(remote, base) and not same_value(remote, wanted):
            clashes.append(
                f"{column} changed remotely from {base!r} to {remote!r} "
                f"(this plan writes {wanted!r})"
            )
    return "; ".join(clashes) or None


def rebased_body(
    row: PushedRow, fresh: Mapping[str, Any], version: ApiVersion = SEED
) -> dict[str, Any]:
    """The row's edits applied on top of the fresh record (``GET /customers/{id}``, which
    carries 2024-07-30's contacts), validated in ``version``."""
    body = update_body_of(fresh, version)
    planned = row.body
    for column in row.columns:
        set_path(body, column, get_path(planned, column))
    body = without_unedited_keyed(body, row.columns, version)
    return validate_update_body(body, customer_id=row.id, version=version)


# -- continuing a run -------------------------------------------------------------------------


def continue_run(
    plan: PlanT,
    client: SequenceClient,
    store: Journal,
    run_id: str,
    *,
    on_conflict: OnConflict = "skip",
    max_workers: int = 8,
    progress: bool | None = None,
) -> PushResult[PlanT]:
    """Finish run ``run_id`` of ``plan``: settle the writes it sent without an answer,
    push the rows it never reached, and report the rest as the journal has them."""
    if plan.version is not client.api_version:
        raise PlanError(
            f"run {run_id} was made for API version {plan.version.name}, but the client "
            f"speaks {client.api_version.name}; nothing was sent"
        )
    recorded = {write.customer_id: write for write in store.writes(run_id)}
    pusher = _RowPusher(plan, client, on_conflict, store, run_id)
    unsettled = {"pending", "unconfirmed"}
    results = {
        write.customer_id: RowResult(
            write.customer_id,
            _status(write.status),
            write.message,
            write.attempts,
            write.idempotency_key,
        )
        for write in recorded.values()
        if write.status not in unsettled
    }
    jobs = [
        (write.customer_id, _bind(pusher.settle, write))
        for write in recorded.values()
        if write.status in unsettled
    ]
    jobs += [(row.id, _bind(pusher.push, row)) for row in plan.sendable if row.id not in recorded]
    done, interrupted = _run_concurrently(jobs, pusher.stop, max_workers, progress, "Resuming")
    results.update(done)
    for row in plan.invalid:
        results.setdefault(row.id, pusher.invalid(row))
    return _result(plan, results, pusher, interrupted)


def _status(value: str) -> Status:
    for status in STATUSES:
        if status == value:
            return status
    return "failed"
