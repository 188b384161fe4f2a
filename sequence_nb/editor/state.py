"""The editor's edit state, kept apart from any widget: edits keyed by customer id.

:class:`EditState` holds the original frame, the hand and bulk edits as
``{customer id: {column: new value}}``, and per-row status (changed columns, the
problems :func:`~sequence_nb.plan.plan_updates` finds, the outcome of the last
push) with counts kept in sets, so one edit re-plans one row instead of the frame.
Problems in the data come from :func:`~sequence_nb.quality.check`. Validation and
bodies stay in ``plan``; this module only keeps book.

Each row's status is summed up in a *marks* string the grid's renderers read to
colour cells: ``"<label>|<code>:<column>|..."`` with the codes of :data:`CODES`,
e.g. ``"invalid|x:email|c:email|p:telephone|"``; a row with nothing to show has ``""``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import polars as pl

from sequence_nb import fields
from sequence_nb.fields import ApiVersion
from sequence_nb.plan import ChangePlan, RowChange, plan_updates
from sequence_nb.push import PushResult
from sequence_nb.quality import check

__all__ = [
    "CODES",
    "FAILED_OUTCOMES",
    "LANDED_OUTCOMES",
    "EditState",
    "ReadOnlyColumnError",
    "RowStatus",
    "outcome_phrase",
    "overlay",
    "plural",
    "read_only_message",
]

ID: Final = fields.ID

#: Mark codes, strongest first: the grid colours a cell by the first that applies.
CODES: Final = {
    "x": "invalid: the edit breaks a rule, so it is not sent",
    "f": "the last push of this edit did not land as planned (failed, conflict, ...)",
    "c": "changed",
    "u": "updated: written by the last push",
    "p": "a problem check() found in the data",
}

#: Push outcomes of rows that were sent (or meant to be) and did not land as planned:
#: the row keeps its edits and is marked with the outcome's own word. ``invalid`` is
#: not one: an invalid row is never sent, and is marked ``invalid`` like before the push.
FAILED_OUTCOMES: Final = frozenset({"failed", "unconfirmed", "side-effects", "conflict"})
#: Outcomes of rows whose values are in Sequence after the push.
LANDED_OUTCOMES: Final = frozenset({"updated", "skipped"})


class ContactSource(Protocol):
    """What the plan needs of contact edits (:class:`~.contacts.ContactEdits` is one)."""

    @property
    def original(self) -> pl.DataFrame:
        """The contacts frame as read."""

    def changed(self) -> bool:
        """Whether anything was edited, added or deleted."""

    def edited(self) -> pl.DataFrame:
        """The edited contacts frame."""


class ReadOnlyColumnError(ValueError):
    """An edit to a column the update body does not take (id, createdAt, unknown fields)."""


@dataclass(frozen=True)
class RowStatus:
    """What the editor knows about one customer beyond its values."""

    changed: tuple[str, ...] = ()
    invalid: tuple[tuple[str, str], ...] = ()
    outcome: str | None = None
    outcome_message: str | None = None
    pushed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when there is nothing to show for the row."""
        return not (self.changed or self.invalid or self.outcome or self.pushed)


class EditState:
    """Edits of one customer frame, keyed by id, with incremental per-row status.

    ``api_version`` (a name or :class:`~sequence_nb.fields.ApiVersion`; None:
    ``$SEQUENCE_API_VERSION``, else the seed's) decides which columns may be edited,
    and the version plans and checks follow. ``contacts`` (2024-07-30) adds a
    :class:`~sequence_nb.editor.contacts.ContactEdits` whose edits join the same plan.
    """

    def __init__(
        self,
        original: pl.DataFrame,
        problems: pl.DataFrame | None = None,
        *,
        api_version: str | ApiVersion | None = None,
        contacts: ContactSource | None = None,
    ) -> None:
        _check_ids(original)
        self.version = fields.api_version(api_version)
        self.contacts = contacts
        self.original = original
        self.edits: dict[str, dict[str, Any]] = {}
        self.status: dict[str, RowStatus] = {}
        self.problems: dict[str, dict[str, str]] = {}
        self.invalid_ids: set[str] = set()
        self.failed_ids: set[str] = set()
        self.ids: list[str] = original.get_column(ID).to_list()
        self.position: dict[str, int] = {customer: i for i, customer in enumerate(self.ids)}
        self._columns = {name: original.get_column(name) for name in original.columns}
        self.set_problems(
            check(original, api_version=self.version) if problems is None else problems
        )

    # -- reading -------------------------------------------------------------------------------

    def original_value(self, customer_id: str, column: str) -> Any:
        """The value the customer had when the editor opened (or was last pushed)."""
        return self._columns[column][self.position[customer_id]]

    def value(self, customer_id: str, column: str) -> Any:
        """The customer's current value: the edit if there is one, else the original."""
        row = self.edits.get(customer_id)
        if row is not None and column in row:
            return row[column]
        return self.original_value(customer_id, column)

    def legal_name(self, customer_id: str) -> str | None:
        """The customer's current legal name, to name it in messages."""
        column = self.version.legal_name_column
        if column not in self._columns:
            return None
        name = self.value(customer_id, column)
        return None if name is None else str(name)

    def edited(self) -> pl.DataFrame:
        """The original frame with every edit applied (same rows, order and columns)."""
        return overlay(self.original, self.edits)

    def plan(self) -> ChangePlan:
        """The change plan of every edit (contact edits too), made by :func:`plan_updates`
        on the whole frames, in the editor's API version."""
        contacts = self.contacts
        if contacts is None or not contacts.changed():
            return plan_updates(self.original, self.edited(), api_version=self.version)
        return plan_updates(
            self.original,
            self.edited(),
            contacts=contacts.original,
            edited_contacts=contacts.edited(),
            api_version=self.version,
        )

    def counts(self) -> dict[str, int]:
        """Rows, changed rows, invalid rows, rows with data problems, and ``failed``: rows
        whose last push did not land as planned (:meth:`outcomes` says how)."""
        return {
            "rows": len(self.ids),
            "changed": len(self.edits),
            "invalid": len(self.invalid_ids),
            "problems": len(self.problems),
            "failed": len(self.failed_ids),
        }

    def outcomes(self) -> dict[str, int]:
        """Rows whose last push did not land, by outcome (``conflict``, ``failed``, ...)."""
        counted: dict[str, int] = {}
        for customer in self.failed_ids:
            outcome = str(self.status[customer].outcome)
            counted[outcome] = counted.get(outcome, 0) + 1
        return counted

    def marked(self) -> set[str]:
        """The ids whose marks are not empty (rows with a status or data problems)."""
        return set(self.status) | set(self.problems)

    def marks(self, customer_id: str) -> str:
        """The row's marks string (module docstring); ``""`` when there is nothing to show."""
        status = self.status.get(customer_id)
        problems = self.problems.get(customer_id)
        if status is None and not problems:
            return ""
        codes: list[str] = []
        label = _label(status) if status is not None else ""
        if status is not None:
            codes += [f"x:{column}" for column, _ in status.invalid]
            if status.outcome == "invalid" and not status.invalid:  # refused at push time
                codes += [f"x:{column}" for column in status.changed]
            if status.outcome in FAILED_OUTCOMES:
                codes += [f"f:{column}" for column in status.changed]
            codes += [f"c:{column}" for column in status.changed]
            codes += [f"u:{column}" for column in status.pushed]
        if problems:
            codes += [f"p:{column}" for column in problems]
            label = label or "problem"
        return label + "|" + "".join(f"{code}|" for code in codes)

    def messages(self, customer_id: str) -> list[tuple[str, str]]:
        """``(kind, text)`` lines about one row: its edits, why it is invalid, the last
        push, and the problems in its data. ``kind`` is a mark code of :data:`CODES`."""
        lines: list[tuple[str, str]] = []
        status = self.status.get(customer_id, RowStatus())
        for column, message in status.invalid:
            lines.append(("x", f"{column}: {message} (not sent)"))
        if status.outcome is not None:
            lines.append(_outcome_line(status))
        for column in status.changed:
            if column not in self._columns:  # contacts: edited in their own view
                lines.append(("c", f"{column}: edited (see the Contacts view)"))
                continue
            old, new = self.original_value(customer_id, column), self.value(customer_id, column)
            lines.append(("c", f"{column}: {_quoted(old)} → {_quoted(new)}"))
        for column, message in self.problems.get(customer_id, {}).items():
            if column not in status.changed:
                lines.append(("p", message))
        return lines

    # -- editing -------------------------------------------------------------------------------

    def edit(self, customer_id: str, column: str, value: Any) -> bool:
        """Edit one cell; re-plan that row only. False when the value was already there.

        An empty string where the original is null counts as null (the grid shows
        nulls as empty cells). Read-only and unknown columns raise
        :class:`ReadOnlyColumnError`.
        """
        self.check_editable(column)
        original = self.original_value(customer_id, column)
        value = _normalized(value, original)
        if value == self.value(customer_id, column):
            return False
        self._store({customer_id: {column: value}})
        self._replan([customer_id])
        return True

    def edit_many(self, changes: Mapping[str, Mapping[str, Any]]) -> set[str]:
        """Apply many edits ``{id: {column: value}}`` at once; the ids whose edits changed."""
        for row in changes.values():
            for column in row:
                self.check_editable(column)
        touched = self._store(changes)
        self._replan(touched)
        return touched

    def add_columns(self, names: Sequence[str]) -> None:
        """Add empty text columns (new custom properties) to the original frame."""
        added = [pl.lit(None, dtype=pl.String).alias(name) for name in names]
        self.original = self.original.with_columns(added)
        self._columns = {name: self.original.get_column(name) for name in self.original.columns}

    def check_editable(self, column: str) -> None:
        """Raise :class:`ReadOnlyColumnError` unless the version lets a person edit
        ``column`` and the frame has it."""
        if not self.version.is_editable(column) or column not in self._columns:
            raise ReadOnlyColumnError(read_only_message(column, self.version))

    def revert(self, customer_ids: Iterable[str] | None = None) -> set[str]:
        """Drop the edits of these customers (all when ``None``); the ids reverted.

        Reverting all also clears what the last preview said of customers with no edits
        here (those whose contacts were edited: their contacts are reverted with them).
        """
        if customer_ids is None:
            previewed = {c for c, status in self.status.items() if status.changed}
            ids = set(self.edits) | previewed
        else:
            ids = set(customer_ids) & set(self.edits)
        for customer in ids:
            self.edits.pop(customer, None)
        self._replan(ids)
        return ids

    def _store(self, changes: Mapping[str, Mapping[str, Any]]) -> set[str]:
        """Write edits into ``self.edits`` (an edit back to the original drops it)."""
        touched: set[str] = set()
        for customer, row in changes.items():
            edits = self.edits.get(customer, {})
            for column, given in row.items():
                original = self.original_value(customer, column)
                value = _normalized(given, original)
                if value == edits.get(column, original):
                    continue
                touched.add(customer)
                if value == original:
                    edits.pop(column, None)
                else:
                    edits[column] = value
            if edits:
                self.edits[customer] = edits
            else:
                self.edits.pop(customer, None)
        return touched

    def _replan(self, customer_ids: Collection[str]) -> None:
        """Re-plan these rows (only these) and update their status and the counts."""
        if not customer_ids:
            return
        planned = self._plan_rows([c for c in customer_ids if c in self.edits])
        for customer in customer_ids:
            row = planned.get(customer)
            status = RowStatus(
                changed=row.columns if row is not None else (),
                invalid=row.problems if row is not None else (),
            )
            self._put_status(customer, status)

    def _plan_rows(self, customer_ids: Sequence[str]) -> dict[str, RowChange]:
        if not customer_ids:
            return {}
        positions = [self.position[c] for c in customer_ids]
        before = self.original[positions]
        after = overlay(before, {c: self.edits[c] for c in customer_ids})
        planned = plan_updates(before, after, api_version=self.version)
        return {row.id: row for row in planned.rows}

    def _put_status(self, customer_id: str, status: RowStatus) -> None:
        if status.empty:
            self.status.pop(customer_id, None)
        else:
            self.status[customer_id] = status
        invalid = bool(status.invalid) or (status.outcome == "invalid" and bool(status.changed))
        _toggle(self.invalid_ids, customer_id, invalid)
        _toggle(self.failed_ids, customer_id, status.outcome in FAILED_OUTCOMES)

    def adopt_plan(self, plan: ChangePlan) -> set[str]:
        """Take the row status of a whole-frame plan (it agrees with the per-row plans,
        but is the one previewed and pushed); the ids whose status changed."""
        rows = {row.id: row for row in plan.rows}
        touched = set()
        for customer in set(rows) | set(self.edits):
            row = rows.get(customer)
            old = self.status.get(customer, RowStatus())
            new = RowStatus(
                changed=row.columns if row is not None else (),
                invalid=row.problems if row is not None else (),
                outcome=old.outcome,
                outcome_message=old.outcome_message,
                pushed=old.pushed,
            )
            if new != old:
                touched.add(customer)
                self._put_status(customer, new)
        return touched

    # -- problems and push outcomes ------------------------------------------------------------

    def set_problems(self, problems: pl.DataFrame) -> set[str]:
        """Replace the data problems by a :func:`check` table; the ids whose problems changed."""
        grouped: dict[str, dict[str, str]] = {}
        rows = problems.select(ID, "column", "message").iter_rows()
        for customer, column, message in rows:
            if customer is None:
                continue
            cells = grouped.setdefault(customer, {})
            cells[column] = f"{cells[column]} {message}" if column in cells else message
        changed = {
            c for c in set(grouped) | set(self.problems) if grouped.get(c) != self.problems.get(c)
        }
        self.problems = grouped
        return changed

    def refresh_problems(self) -> set[str]:
        """Run :func:`check` on the edited frame; the ids whose problems changed."""
        return self.set_problems(check(self.edited(), api_version=self.version))

    def record_result(self, result: PushResult[ChangePlan]) -> set[str]:
        """Mark each row with how its push (or dry run) ended; the ids touched.

        Rows that were written (or already held the values) become the new original:
        their edits are dropped and the cells are marked as pushed. Failed, conflicting
        and invalid rows keep their edits and are marked failed.
        """
        retry = {row.id for row in result.failed().rows}
        planned = {row.id: row for row in result.plan.rows}
        landed: dict[str, dict[str, Any]] = {}
        touched: set[str] = set()
        for outcome in result.rows:
            customer = outcome.id
            if customer not in self.position:
                continue
            touched.add(customer)
            row = planned.get(customer)
            wrote = not result.dry_run and (
                outcome.status in ("updated", "side-effects")
                or (outcome.status == "skipped" and customer not in retry)
            )
            if wrote and row is not None:
                landed[customer] = {
                    change.column: change.new
                    for change in row.changes
                    if change.column in self._columns  # contacts are rebased by their own state
                }
            old = self.status.get(customer, RowStatus())
            self._put_status(
                customer,
                RowStatus(
                    changed=old.changed,
                    invalid=old.invalid,
                    outcome=outcome.status,
                    outcome_message=outcome.message,
                    pushed=row.columns if wrote and row is not None else (),
                ),
            )
        self._rebase(landed)
        return touched

    def _rebase(self, landed: Mapping[str, Mapping[str, Any]]) -> None:
        """Make pushed values the original and drop the edits that wrote them."""
        if not landed:
            return
        self.original = overlay(self.original, landed)
        self._columns = {name: self.original.get_column(name) for name in self.original.columns}
        for customer, values in landed.items():
            edits = self.edits.get(customer, {})
            for column, value in values.items():
                if column in edits and _normalized(edits[column], value) == value:
                    del edits[column]
            if not edits:
                self.edits.pop(customer, None)
            old = self.status[customer]
            self._put_status(
                customer,
                RowStatus(
                    changed=tuple(c for c in old.changed if c in edits),
                    invalid=old.invalid if edits else (),
                    outcome=old.outcome,
                    outcome_message=old.outcome_message,
                    pushed=old.pushed,
                ),
            )

    # -- selecting rows ------------------------------------------------------------------------

    def matching(self, text: str, columns: Sequence[str], show: str) -> list[str]:
        """Ids of the rows to show, in frame order: ``show`` is ``all``, ``changed`` or
        ``problems``; ``text`` is matched, ignoring case, in the id and ``columns``."""
        wanted: set[str] | None = None
        if show == "changed":
            wanted = set(self.edits) | {c for c, s in self.status.items() if s.pushed}
        elif show == "problems":
            wanted = set(self.problems) | self.invalid_ids | self.failed_ids
        needle = text.strip().lower()
        if not needle:
            return self.ids if wanted is None else [c for c in self.ids if c in wanted]
        frame = self.edited()
        if wanted is not None:
            frame = frame.filter(pl.col(ID).is_in(list(wanted)))
        hit = pl.any_horizontal(
            _as_text(frame, column).str.to_lowercase().str.contains(needle, literal=True)
            for column in (ID, *columns)
        )
        matched: list[str] = frame.filter(hit.fill_null(False)).get_column(ID).to_list()
        return matched


# -- helpers -----------------------------------------------------------------------------------


def overlay(frame: pl.DataFrame, edits: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """``frame`` with ``edits`` (``{id: {column: value}}``) written in, matched by id.

    An edited column keeps its dtype when every value fits it (an ``Enum`` stays an
    ``Enum``), else becomes ``String`` so an invalid value is kept for the plan to report.
    """
    by_column: dict[str, dict[str, Any]] = {}
    for customer, row in edits.items():
        for column, value in row.items():
            by_column.setdefault(column, {})[customer] = value
    if not by_column:
        return frame
    replaced = [
        pl.col(ID)
        .replace_strict(
            list(values),
            pl.Series([_text(v) for v in values.values()], dtype=pl.String),
            default=pl.col(column).cast(pl.String),
            return_dtype=pl.String,
        )
        .alias(column)
        for column, values in by_column.items()
    ]
    out = frame.with_columns(replaced)
    restored = [_restored(out.get_column(c), frame.schema[c]) for c in by_column]
    return out.with_columns(restored)


def _restored(series: pl.Series, dtype: pl.DataType) -> pl.Series:
    """``series`` cast back to ``dtype`` when every value fits, else left as text."""
    if series.dtype == dtype:
        return series
    try:
        return series.cast(dtype, strict=True)
    except (pl.exceptions.PolarsError, ValueError):
        return series


def _as_text(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if dtype.is_nested():
        return pl.col(column).cast(pl.List(pl.String), strict=False).list.join(" ")
    return pl.col(column).cast(pl.String)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _normalized(value: Any, original: Any) -> Any:
    """A grid value as the frame would hold it: ``""`` for a null original is null, and
    text that is the original's in another Unicode normal form is the original (the
    plan takes them for the same text, so the edit would never be sent)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        value = str(value)
    if value == "" and original is None:
        return None
    if isinstance(original, str) and _nfc(value) == _nfc(original):
        return original
    return value


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _outcome_line(status: RowStatus) -> tuple[str, str]:
    """The message line (mark code, text) of a row's last push or dry run."""
    outcome = str(status.outcome)
    if outcome in FAILED_OUTCOMES:
        kind, text = "f", f"last push: {outcome}"
    elif outcome == "invalid":
        kind, text = "x", "last push: invalid, not sent"
    elif outcome == "would-update":
        kind, text = "c", "dry run: would update"
    else:
        kind, text = ("u" if status.pushed else "c"), f"last push: {outcome}"
    if status.outcome_message:
        text += f": {status.outcome_message}"
    return kind, text


def _label(status: RowStatus) -> str:
    """The row's word in the status column: the word the push result uses for it."""
    if status.invalid or (status.outcome == "invalid" and status.changed):
        return "invalid"
    if status.outcome in FAILED_OUTCOMES:
        return str(status.outcome)
    if status.changed:
        return "changed"
    if status.pushed:
        return str(status.outcome) if status.outcome in LANDED_OUTCOMES else "updated"
    return ""


def _quoted(value: Any) -> str:
    return "empty" if value is None else repr(value)


def _toggle(members: set[str], item: str, present: bool) -> None:
    if present:
        members.add(item)
    else:
        members.discard(item)


#: How a count of rows with a push outcome reads, where the bare word would not.
_OUTCOME_PHRASES: Final = {
    "conflict": "in conflict",
    "side-effects": "with side effects",
    "would-update": "would be updated",
}


def outcome_phrase(outcome: str, count: int) -> str:
    """``count`` rows of a push outcome in words: ``6 updated``, ``1 in conflict``."""
    return f"{count:,} {_OUTCOME_PHRASES.get(outcome, outcome)}"


def plural(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``: the count and the noun, plural when it is not one."""
    return f"{count:,} {noun if count == 1 else noun + 's'}"


def read_only_message(column: str, version: ApiVersion) -> str:
    """Why a column cannot be edited in ``version``, in words."""
    if column in version.read_only_columns:
        return f"{column} is read-only: the API ({version.name}) does not take it in an update"
    return (
        f"{column} is not a field the update body of API version {version.name} has, "
        "so it is read-only here"
    )


def _check_ids(frame: pl.DataFrame) -> None:
    if ID not in frame.columns:
        raise ValueError("the frame has no 'id' column: the editor keys every edit by id")
    ids = frame.get_column(ID)
    if ids.dtype != pl.String:
        raise ValueError(f"the 'id' column must be text, not {ids.dtype}")
    if ids.null_count():
        raise ValueError("the frame has rows without an id: the editor keys every edit by id")
    if ids.n_unique() != frame.height:
        repeated = ids.filter(ids.is_duplicated()).unique().head(3).to_list()
        raise ValueError(f"the frame repeats ids ({', '.join(repeated)}): edits are keyed by id")
