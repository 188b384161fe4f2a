"""A durable record of every push, so a crash can be resumed and a push undone.

Before each write the row's before-image, body and idempotency key are committed;
after it, the outcome. The journal is one SQLite file (standard library, WAL mode,
``synchronous=FULL``: a committed line survives the process being killed). It
holds records and bodies, never credentials. Records are customers' personal data, so
the file is created readable by its owner only (``0600``), in a folder of the owner's
(``0700``) when the journal makes the folder.

A journal that cannot be written (a full disk, a read-only file) raises
:class:`JournalError`: a push stops before its next write rather than send what it
could not record.

Its location: ``journal=`` where a push takes one, else the ``SEQUENCE_NB_JOURNAL``
environment variable, else ``~/.sequence_nb/journal.sqlite3``.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from sequence_nb.errors import SequenceError

__all__ = [
    "LANDED",
    "ROW_STATUSES",
    "Journal",
    "JournalArg",
    "JournalError",
    "RunRecord",
    "UnknownRunError",
    "WriteRecord",
    "default_journal_path",
    "opened",
]

#: Statuses of a write that the server confirmed it applied.
LANDED = frozenset({"updated", "side-effects"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    plan_id TEXT NOT NULL,
    base_url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    plan_json BLOB NOT NULL,
    plan_digest TEXT,
    undoes TEXT
);
CREATE TABLE IF NOT EXISTS undo_plans (
    plan_id TEXT PRIMARY KEY,
    undoes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS writes (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    customer_id TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    before_json BLOB,
    body_json BLOB,
    after_json BLOB,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (run_id, customer_id)
);
CREATE INDEX IF NOT EXISTS writes_by_customer ON writes (customer_id);
CREATE TABLE IF NOT EXISTS resumes (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    resumed_at TEXT NOT NULL
);
"""

#: Every status a journaled row can end in, in the order :meth:`Journal.runs` counts
#: them (``pending``: sent, the process stopped before the answer was recorded).
ROW_STATUSES = (
    "updated",
    "side-effects",
    "unconfirmed",
    "failed",
    "conflict",
    "invalid",
    "skipped",
    "pending",
)


class JournalError(SequenceError):
    """The journal cannot be read or written; a push stops before its next write."""


class UnknownRunError(JournalError, LookupError):
    """The journal has no such run."""


def default_journal_path() -> Path:
    """Where the journal lives when no path is given."""
    configured = os.environ.get("SEQUENCE_NB_JOURNAL")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".sequence_nb" / "journal.sqlite3"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class RunRecord:
    """One push as the journal knows it."""

    run_id: str
    kind: str
    plan_id: str
    base_url: str
    created_at: str
    finished_at: str | None
    plan_json: bytes
    plan_digest: str | None = None
    #: The run this one undoes (a run of a plan :func:`~sequence_nb.push.undo` made).
    undoes: str | None = None

    @property
    def api_version_name(self) -> str | None:
        """The API version the run's plan names (``None``: the seed's, which plans of
        older versions name by naming none), or :class:`JournalError` when the plan
        cannot be read."""
        plan = _loads(self.plan_json, f"run {self.run_id}'s plan (plan_json)")
        named = plan.get("api_version") if plan is not None else None
        if named is not None and not isinstance(named, str):
            raise JournalError(
                f"the journal is damaged: run {self.run_id}'s plan (plan_json) names the API "
                f"version {named!r}, which is no version name"
            )
        return named


@dataclass(frozen=True)
class WriteRecord:
    """One row of a push.

    ``pending`` (the process stopped while it was sent) and ``unconfirmed`` (sent, no
    answer) mean the write may or may not have landed; only a re-read can tell.
    """

    run_id: str
    customer_id: str
    status: str
    message: str | None
    attempts: int
    idempotency_key: str | None
    before: dict[str, Any] | None
    body: dict[str, Any] | None
    after: dict[str, Any] | None
    #: When the row was started and when it ended (ISO text in UTC, as journaled).
    started_at: str | None = None
    finished_at: str | None = None


class Journal:
    """The journal file; safe to share between the threads of one push.

    ``read_only=True`` reads an existing journal without changing anything, also on a
    read-only mount (an archive an audit reads); writing to it is a :class:`JournalError`.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False
    ) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        self.read_only = read_only
        self._lock = threading.Lock()
        if read_only and not self.path.is_file():
            raise JournalError(f"no journal at {self.path}: there is nothing to read")
        try:
            if read_only:
                self._db = _connect_read_only(self.path)
                return
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            _add_missing_columns(self._db)
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal at {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> None:
        if self.read_only:
            raise JournalError(f"the journal at {self.path} was opened read-only: nothing written")
        try:
            with self._lock, self._db:
                self._db.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal at {self.path}: {exc}") from exc

    def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal at {self.path}: {exc}") from exc

    # -- writing -----------------------------------------------------------------

    def start_run(
        self,
        *,
        kind: str,
        plan_id: str,
        base_url: str,
        plan_json: bytes,
        plan_digest: str | None = None,
        undoes: str | None = None,
    ) -> str:
        """Record a new run and return its id."""
        run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
        self._write(
            "INSERT INTO runs (run_id, kind, plan_id, base_url, created_at, plan_json, "
            "plan_digest, undoes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, kind, plan_id, base_url, _now(), plan_json, plan_digest, undoes),
        )
        return run_id

    def note_undo_plan(self, plan_id: str, undoes: str) -> None:
        """Remember that the plan ``plan_id`` undoes run ``undoes``: a run of it is an undo."""
        self._write(
            "INSERT OR REPLACE INTO undo_plans (plan_id, undoes) VALUES (?, ?)", (plan_id, undoes)
        )

    def undo_target(self, plan_id: str) -> str | None:
        """The run a plan undoes, if :func:`~sequence_nb.push.undo` made it."""
        rows = self._read("SELECT undoes FROM undo_plans WHERE plan_id = ?", (plan_id,))
        return rows[0][0] if rows else None

    def undone_by(self, run_id: str) -> list[str]:
        """The runs that undid (or began to undo) ``run_id``, oldest first."""
        rows = self._read("SELECT run_id FROM runs WHERE undoes = ? ORDER BY created_at", (run_id,))
        return [row[0] for row in rows]

    def record_intent(
        self,
        run_id: str,
        customer_id: str,
        *,
        idempotency_key: str,
        before: dict[str, Any],
        body: dict[str, Any],
    ) -> None:
        """Commit what is about to be written, before it is sent."""
        self._write(
            "INSERT INTO writes (run_id, customer_id, status, idempotency_key, before_json, "
            "body_json, started_at) VALUES (?, ?, 'pending', ?, ?, ?, ?) "
            "ON CONFLICT (run_id, customer_id) DO UPDATE SET status = 'pending', "
            "idempotency_key = excluded.idempotency_key, before_json = excluded.before_json, "
            "body_json = excluded.body_json, message = NULL, finished_at = NULL",
            (
                run_id,
                customer_id,
                idempotency_key,
                orjson.dumps(before),
                orjson.dumps(body),
                _now(),
            ),
        )

    def record_outcome(
        self,
        run_id: str,
        customer_id: str,
        *,
        status: str,
        message: str | None = None,
        attempts: int = 0,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Commit how a row ended (a row that was never sent gets a line too)."""
        now = _now()
        self._write(
            "INSERT INTO writes (run_id, customer_id, status, message, attempts, after_json, "
            "started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, customer_id) DO UPDATE SET status = excluded.status, "
            "message = excluded.message, attempts = excluded.attempts, "
            "after_json = excluded.after_json, finished_at = excluded.finished_at",
            (
                run_id,
                customer_id,
                status,
                message,
                attempts,
                orjson.dumps(after) if after is not None else None,
                now,
                now,
            ),
        )

    def finish_run(self, run_id: str) -> None:
        """Mark a run as having reached its end."""
        self._write("UPDATE runs SET finished_at = ? WHERE run_id = ?", (_now(), run_id))

    # -- reading -----------------------------------------------------------------

    def run(self, run_id: str) -> RunRecord:
        """The run with this id, or :class:`UnknownRunError`."""
        rows = self._read(
            "SELECT run_id, kind, plan_id, base_url, created_at, finished_at, plan_json, "
            "plan_digest, undoes FROM runs WHERE run_id = ?",
            (run_id,),
        )
        if not rows:
            raise UnknownRunError(
                f"no run {run_id!r} in the journal at {self.path}: `sequence-nb runs` lists "
                "its runs (--journal or SEQUENCE_NB_JOURNAL names another journal)"
            )
        return RunRecord(*rows[0])

    def run_records(self) -> list[RunRecord]:
        """Every run, oldest first."""
        rows = self._read(
            "SELECT run_id, kind, plan_id, base_url, created_at, finished_at, plan_json, "
            "plan_digest, undoes FROM runs ORDER BY created_at, rowid"
        )
        return [RunRecord(*row) for row in rows]

    def note_resumed(self, run_id: str) -> None:
        """Record that run ``run_id`` was resumed now (it goes on under its own id)."""
        self._write("INSERT INTO resumes (run_id, resumed_at) VALUES (?, ?)", (run_id, _now()))

    def writes(self, run_id: str) -> list[WriteRecord]:
        """Every row the run recorded, in the order they were started."""
        return self._write_records("w.run_id = ?", (run_id,))

    def landed_keys(self, plan_id: str, customer_id: str) -> set[str]:
        """Idempotency keys of this plan's writes of a customer that the server confirmed.

        Such a key is spent: the server keeps its answer, so the same key sent again
        would be answered with a replay instead of being applied.
        """
        rows = self._read(
            "SELECT w.idempotency_key FROM writes w JOIN runs r ON r.run_id = w.run_id "
            "WHERE r.plan_id = ? AND w.customer_id = ? AND w.idempotency_key IS NOT NULL "
            f"AND w.status IN ({', '.join('?' * len(LANDED))})",
            (plan_id, customer_id, *sorted(LANDED)),
        )
        return {row[0] for row in rows}

    def earlier_writes(self, plan_id: str, customer_id: str) -> list[WriteRecord]:
        """Every write of a customer this plan's runs journaled with a body, oldest first."""
        return self._write_records(
            "r.plan_id = ? AND w.customer_id = ? AND w.body_json IS NOT NULL",
            (plan_id, customer_id),
        )

    def confirm_landed(self, run_id: str, customer_id: str, record: dict[str, Any]) -> None:
        """Record that a write journaled as unconfirmed was found landed (``record`` holds
        it), so its key counts as spent and its row as written."""
        self._write(
            "UPDATE writes SET status = 'updated', after_json = ?, message = "
            "'found landed by a later re-read' WHERE run_id = ? AND customer_id = ? "
            f"AND status NOT IN ({', '.join('?' * len(LANDED))})",
            (orjson.dumps(record), run_id, customer_id, *sorted(LANDED)),
        )

    def _write_records(self, where: str, parameters: tuple[Any, ...]) -> list[WriteRecord]:
        rows = self._read(
            "SELECT w.run_id, w.customer_id, w.status, w.message, w.attempts, "
            "w.idempotency_key, w.before_json, w.body_json, w.after_json, w.started_at, "
            "w.finished_at "
            "FROM writes w JOIN runs r ON r.run_id = w.run_id "
            f"WHERE {where} ORDER BY w.started_at, w.rowid",
            parameters,
        )
        return [
            WriteRecord(
                run_id=row[0],
                customer_id=row[1],
                status=row[2],
                message=row[3],
                attempts=row[4],
                idempotency_key=row[5],
                before=_loads(row[6], _where(row, "before_json")),
                body=_loads(row[7], _where(row, "body_json")),
                after=_loads(row[8], _where(row, "after_json")),
                started_at=row[9],
                finished_at=row[10],
            )
            for row in rows
        ]

    def runs(self) -> pl.DataFrame:
        """Every run, newest first: its id, kind (``push`` or ``undo``), when it started
        and finished, the server, the run it undoes, the runs that undid it, when it was
        last resumed and how often, and its rows: all of them and a count per status
        (:data:`ROW_STATUSES`)."""
        counts = ", ".join(f"SUM(w.status = '{status}')" for status in ROW_STATUSES)
        rows = self._read(
            "SELECT r.run_id, r.kind, r.created_at, r.finished_at, r.base_url, r.undoes, "
            "(SELECT group_concat(u.run_id, ' ') FROM runs u WHERE u.undoes = r.run_id), "
            "(SELECT max(resumed_at) FROM resumes s WHERE s.run_id = r.run_id), "
            "(SELECT count(*) FROM resumes s WHERE s.run_id = r.run_id), "
            f"COUNT(w.customer_id), {counts} "
            "FROM runs r LEFT JOIN writes w ON w.run_id = r.run_id "
            "GROUP BY r.run_id ORDER BY r.created_at DESC, r.rowid DESC"
        )
        schema: dict[str, pl.DataType] = {
            "run_id": pl.String(),
            "kind": pl.String(),
            "created_at": pl.String(),
            "finished_at": pl.String(),
            "base_url": pl.String(),
            "undoes": pl.String(),
            "undone_by": pl.String(),
            "resumed_at": pl.String(),
            "resumed": pl.Int64(),
            "rows": pl.Int64(),
        }
        schema.update({status: pl.Int64() for status in ROW_STATUSES})
        frame = pl.DataFrame(rows, schema=schema, orient="row")
        return frame.with_columns(pl.col(ROW_STATUSES).fill_null(0))


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes to ``path``. A journal in WAL mode needs its
    shared-memory file beside it; in a folder where none can be made (a read-only
    mount) nobody can be writing either, so there the file is read as immutable. Where
    the folder is writable a push may be writing, so it is never read that way."""
    uri = path.resolve().as_uri() + "?mode=ro"
    if not os.access(path.parent, os.W_OK):
        uri += "&immutable=1"
    db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return db


def _create_private(path: Path) -> None:
    """Make the journal file owner-only (``0600``); a folder it makes is ``0700``.

    A path that is not a regular file (``/dev/null``, a pipe, or a link to one) is
    refused before anything is changed: its mode is not the journal's to change.
    """
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
    if path.exists() and not path.is_file():
        raise OSError(f"{path} is not a regular file, so it cannot hold a journal")
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    for file in (path, *path.parent.glob(f"{glob.escape(path.name)}-*")):
        if file.is_file() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a journal written by an older version up to this schema."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)").fetchall()}
    for name in ("plan_digest", "undoes"):
        if name not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {name} TEXT")


def _loads(data: bytes | None, where: str) -> dict[str, Any] | None:
    """A journaled record (a JSON object), or :class:`JournalError` saying ``where``
    the journal is damaged: no push writes anything else there."""
    if data is None:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JournalError(f"the journal is damaged: {where} is not JSON ({exc})") from None
    if value is not None and not isinstance(value, dict):
        raise JournalError(
            f"the journal is damaged: {where} holds a {type(value).__name__}, not a record "
            "(a JSON object)"
        )
    return value


def _where(row: tuple[Any, ...], column: str) -> str:
    return f"run {row[0]}, customer {row[1]!r}, {column}"


#: Where a journal comes from: one already open, a path, or ``None`` for the default.
JournalArg = Journal | str | os.PathLike[str] | None


@contextmanager
def opened(journal: JournalArg, *, read_only: bool = False) -> Iterator[Journal]:
    """The journal given, or the one at a path (the default location for ``None``),
    closed again afterwards; ``read_only`` opens a path without changing anything."""
    if isinstance(journal, Journal):
        yield journal
        return
    store = Journal(journal, read_only=read_only)
    try:
        yield store
    finally:
        store.close()
