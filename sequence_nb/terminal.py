"""What the shell prints for people: one rich table of a plan and how it went, of the
runs in the journal, of the history, and the same as JSON for scripts.

Every text shown comes from a plan, a journal, a server or a file, so every one goes
through :func:`~sequence_nb.models.escape_unseen` (no value can move the cursor,
erase a line or pose as another) and is given to rich as plain text (a ``[bold]`` in a
value is shown, not obeyed). Nothing is cut: a long reason wraps inside its cell,
and ids never wrap. No credentials are among what is shown.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Final

import orjson
import polars as pl
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from sequence_nb.journal import ROW_STATUSES
from sequence_nb.models import escape_unseen

if TYPE_CHECKING:
    from sequence_nb.plan import ChangePlan, RowChange
    from sequence_nb.push import PushResult

__all__ = [
    "Grid",
    "history_table",
    "json_history",
    "json_plan",
    "json_runs",
    "make_console",
    "plan_table",
    "runs_table",
    "shown",
]

#: How wide lines may be when the output is not a terminal (a file, a pipe, a log):
#: no table needs more, so each row keeps to one line and can be searched for.
PIPE_WIDTH: Final = 100_000
#: The status a planned row shows before anything is sent.
TO_UPDATE: Final = "to update"
#: The status of a planned archive (``POST /customers/{id}/archive``, no way back).
TO_ARCHIVE: Final = "to archive"
#: Styles of the statuses (on a terminal only: a file gets plain text).
_STYLES: Final[dict[str, str]] = {
    "updated": "green",
    "would-update": "green",
    TO_UPDATE: "green",
    TO_ARCHIVE: "yellow",
    "side-effects": "yellow",
    "unconfirmed": "yellow",
    "conflict": "yellow",
    "skipped": "dim",
    "unchanged": "dim",
    "not sent": "red",
}

#: An outcome of a row: its status and why (``None``: nothing to say).
Outcome = tuple[str, str | None]


def make_console(file: IO[str] | None = None) -> Console:
    """A console writing to ``file`` (standard output): the terminal's width; when the
    output is not a terminal, ``$COLUMNS`` or else as wide as the table needs
    (:data:`PIPE_WIDTH`). No markup, emoji codes or highlighting is read into texts."""
    stream = file if file is not None else sys.stdout
    columns = os.environ.get("COLUMNS", "")
    width = None if stream.isatty() else int(columns) if columns.isdigit() else PIPE_WIDTH
    return Console(
        file=stream, width=width, markup=False, emoji=False, highlight=False, soft_wrap=False
    )


def shown(value: object) -> str:
    """``value`` as one line of text a terminal shows as it is (see the module)."""
    return escape_unseen(str(value))


def _text(value: str | None, style: str = "") -> Text:
    return Text(shown(value) if value is not None else "", style=style)


def _quoted(value: Any) -> Text:
    """An old or new value: text in quotes (so spaces show), empty as ``(empty)``."""
    if value is None or value == "":
        return Text("(empty)", style="dim")
    return Text(_in_quotes(value))


def _in_quotes(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return "'" + shown(text).replace("'", "\\'") + "'"


#: The least width of the columns that wrap, so a narrow terminal squeezes each
#: of them to something readable; the others (ids, fields, statuses) never wrap.
_MIN_WIDTHS: Final[dict[str, int]] = {
    "reason": 12,
    "old": 8,
    "new": 8,
    "legal name": 8,
    "server": 8,
    "outcome": 8,
    "notes": 8,
}


class Grid:
    """A table of texts that never loses one: as a rich table where it fits the width
    with every word whole, else (a narrow terminal) each row as ``column: value`` lines,
    so no cell is ever cropped."""

    def __init__(self, *columns: str) -> None:
        self.columns = columns
        self.rows: list[tuple[Text, ...]] = []

    def add_row(self, *cells: Text) -> None:
        self.rows.append(cells)

    def table(self) -> Table:
        table = Table(header_style="bold", expand=False)
        for name in self.columns:
            wraps = name in _MIN_WIDTHS
            table.add_column(
                name, no_wrap=not wraps, overflow="fold", min_width=_MIN_WIDTHS.get(name)
            )
        for cells in self.rows:
            table.add_row(*cells)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table()
        # rich's least width keeps every word whole: where it fits, no cell is cut.
        unbounded = options.update(width=PIPE_WIDTH)  # Measurement.get clamps to the width
        if Measurement.get(console, unbounded, table).minimum <= options.max_width:
            yield table
            return
        for cells in self.rows:
            for name, cell in zip(self.columns, cells, strict=True):
                if cell.plain:
                    yield Text.assemble((f"{name}: ", "bold"), cell)
            yield Text("")


def _table(*columns: str) -> Grid:
    return Grid(*columns)


def plan_table(
    plan: ChangePlan, outcomes: Mapping[str, Outcome] | None = None, *, only: Iterable[str] = ()
) -> Grid:
    """Every edited field of ``plan``, each customer once: its id and name on its first
    field, the row's status (``outcomes``, else ``to update`` or ``invalid``) and every
    reason in full; then each note (rows added or removed, what an undo leaves). With
    ``only``, the rows of those customers alone."""
    wanted = set(only)
    table = _table("customer", "legal name", "field", "old", "new", "status", "reason")
    for row in plan.rows:
        if wanted and row.id not in wanted:
            continue
        status, message = (outcomes or {}).get(row.id) or _planned(row)
        for number, line in enumerate(_lines(row, status, message)):
            first = number == 0
            field, old, new, reason = line
            old_cell, new_cell = _values(old, new)
            table.add_row(
                _text(row.id if first else None),
                _text(row.legal_name if first else None),
                _text(field),
                old_cell,
                new_cell,
                _text(status if first else None, _STYLES.get(status, "red")),
                _text(reason),
            )
    for customer, column, message in plan.notes:
        if wanted and customer not in wanted:
            continue
        table.add_row(
            _text(customer or "(no id)"),
            Text(""),
            _text(column),
            Text(""),
            Text(""),
            _text(status := _note_status(message), _STYLES.get(status, "red")),
            _text(message),
        )
    return table


def _planned(row: RowChange) -> Outcome:
    if not row.sendable:
        return ("invalid", None)
    return (TO_ARCHIVE if row.action == "archive" else TO_UPDATE, None)


def _values(old: Any, new: Any) -> tuple[Text, Text]:
    """The old and new cells of a change; two lists of contacts show only the
    contacts that differ (each as ``name <email> PREFERENCE``) and how many stay."""
    if not (_is_contacts(old) and _is_contacts(new)):
        return _quoted(old), _quoted(new)
    before = [_contact(c) for c in old]
    after = [_contact(c) for c in new]
    gone, came = list(before), []
    for contact in after:
        if contact in gone:
            gone.remove(contact)
        else:
            came.append(contact)
    kept = len(after) - len(came)
    note = f"(and {kept} unchanged)" if kept else ""
    if not gone and not came:
        note = "(the same contacts, in another order)"
    return _contacts_cell(gone, note), _contacts_cell(came, note)


def _is_contacts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(c, dict) for c in value)


def _contact(contact: Mapping[str, Any]) -> str:
    """``'Name' <'email'> PRIMARY``: a contact as one escaped line (texts quoted, so
    no name can pose as a second contact)."""
    name, email = contact.get("name"), contact.get("email")
    parts = [
        _in_quotes(name) if name else "(no name)",
        f"<{_in_quotes(email)}>" if email else "(no email)",
        _in_quotes(contact.get("billingPreference") or "(no preference)"),
    ]
    others = {k: v for k, v in contact.items() if k not in ("name", "email", "billingPreference")}
    if others:
        parts.append(shown(orjson.dumps(others).decode()))
    return " ".join(parts)


def _contacts_cell(contacts: list[str], note: str) -> Text:
    if not contacts:
        return Text(f"(none) {note}".strip(), style="dim")
    return Text("; ".join(contacts) + (f" {note}" if note else ""))


def _lines(row: RowChange, status: str, message: str | None) -> list[tuple[str, Any, Any, str]]:
    """``(field, old, new, reason)`` per change; the reasons not about one edited field
    (the row's outcome, a problem in a field not edited) go on the first."""
    problems = dict(row.problems)
    edited = set(row.columns)
    general = [f"{column} {text}" for column, text in row.problems if column not in edited]
    if message and status != "invalid":
        general.insert(0, message)
    lines = []
    for number, change in enumerate(row.changes):
        reasons = general if number == 0 else []
        own = problems.get(change.column)
        text = "; ".join([*reasons, own] if own else reasons)
        lines.append((change.column, change.old, change.new, text))
    if not lines:  # a row without changes (an undo's note row): its reasons alone
        lines.append(("(row)", None, None, "; ".join(general)))
    return lines


def _note_status(message: str) -> str:
    if message.startswith("nothing to restore"):
        return "unchanged"
    if message.startswith(("not restored", "cannot be undone")):
        return "not restored"
    return "not sent"


def outcomes_of(result: PushResult[Any]) -> dict[str, Outcome]:
    """Each row's status and message in a push's result."""
    return {row.id: (row.status, row.message) for row in result.rows}


def changes_by_column(plan: ChangePlan) -> str:
    """``label 60, paymentReference 1``: how many rows edit each column."""
    counted: dict[str, int] = {}
    for row in plan.rows:
        for column in row.columns:
            counted[column] = counted.get(column, 0) + 1
    return ", ".join(f"{shown(column)} {n}" for column, n in counted.items())


# -- runs and history ---------------------------------------------------------------------


def _moment(text: str | None) -> str:
    """A journal time (``2026-12-01T08:18:32.123456Z``) to the second, in UTC."""
    if not text:
        return ""
    return shown(text.replace("T", " ")[:19] + " UTC") if len(text) >= 19 else shown(text)


def run_outcome(run: Mapping[str, Any]) -> str:
    """``3 updated, 1 invalid``: every status a run's rows ended in, counted."""
    counts = [f"{run[status]} {status}" for status in ROW_STATUSES if run[status]]
    return ", ".join(counts) or "no rows"


def run_notes(run: Mapping[str, Any]) -> str:
    """What else there is to know of a run: what it undoes, what undid it, resumes."""
    notes = []
    if run["undoes"]:
        notes.append(f"undoes {run['undoes']}")
    if run["undone_by"]:
        notes.append(f"undone by {run['undone_by']}")
    if run["resumed"]:
        times = "once" if run["resumed"] == 1 else f"{run['resumed']} times"
        notes.append(f"resumed {times}, last {_moment(run['resumed_at'])}")
    if not run["finished_at"]:
        notes.append("unfinished: sequence-nb resume or undo it")
    return "; ".join(shown(note) for note in notes)


def runs_table(runs: pl.DataFrame) -> Grid:
    """The runs, newest first: id, kind, when, server, rows and every status counted."""
    table = _table("run", "kind", "started", "server", "rows", "outcome", "notes")
    for run in runs.iter_rows(named=True):
        table.add_row(
            _text(run["run_id"]),
            _text(run["kind"]),
            Text(_moment(run["created_at"])),
            _text(run["base_url"]),
            Text(str(run["rows"])),
            Text(run_outcome(run)),
            Text(run_notes(run)),
        )
    return table


def history_table(history: pl.DataFrame) -> Grid:
    """The history's rows as they are, each value escaped and quoted."""
    table = _table("when", "run", "kind", "customer", "legal name", "field", "old", "new", "status")
    for row in history.iter_rows(named=True):
        when: dt.datetime | None = row["when"]
        table.add_row(
            Text(when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""),
            _text(row["run"]),
            _text(row["kind"]),
            _text(row["customer"]),
            _text(row["legalName"]),
            _text(row["field"]),
            _quoted(row["old"]),
            _quoted(row["new"]),
            _text(row["status"], _STYLES.get(row["status"], "red")),
        )
    return table


# -- JSON for scripts ---------------------------------------------------------------------


def json_plan(plan: ChangePlan, result: PushResult[Any] | None) -> dict[str, Any]:
    """A plan (and how it went) as one JSON document: the values as they are (JSON
    escapes control characters itself); no credentials and no request bodies."""
    return {
        "plan": {
            "plan_id": plan.plan_id,
            "digest": plan.digest,
            "summary": plan.summary(),
            "rows": [
                {
                    "id": row.id,
                    "legalName": row.legal_name,
                    "sendable": row.sendable,
                    "changes": [
                        {"field": c.column, "old": c.old, "new": c.new} for c in row.changes
                    ],
                    "problems": [{"field": f, "message": m} for f, m in row.problems],
                }
                for row in plan.rows
            ],
            "notes": [{"id": i, "field": f, "message": m} for i, f, m in plan.notes],
            "ignored_columns": list(plan.ignored_columns),
        },
        "result": None if result is None else _json_result(result),
    }


def _json_result(result: PushResult[Any]) -> dict[str, Any]:
    return {
        "dry_run": result.dry_run,
        "run_id": result.run_id,
        "journal": str(result.journal_path) if result.journal_path else None,
        "interrupted": result.interrupted,
        "summary": result.summary(),
        "counts": result.counts(),
        "rows": [
            {"id": r.id, "status": r.status, "message": r.message, "attempts": r.attempts}
            for r in result.rows
        ],
    }


def json_runs(runs: pl.DataFrame) -> list[dict[str, Any]]:
    """The runs as JSON objects, every column and count."""
    return runs.to_dicts()


def json_history(history: pl.DataFrame) -> list[dict[str, Any]]:
    """The history as JSON objects, ``when`` as ISO text in UTC."""
    return history.with_columns(pl.col("when").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")).to_dicts()
