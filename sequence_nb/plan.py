"""Change plans: the difference between two frames as full, validated PUT bodies.

``plan_updates(original, edited)`` matches rows by ``id``, finds every changed
cell, and builds for each changed row the full update body: the original record
with the edits applied, never the edits alone (a PUT clears what it leaves out).
Each body is validated before it counts as sendable; rows that fail, edits to
read-only columns and added or removed rows are reported, never sent. A plan is
an immutable value: what was previewed is exactly what is applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import polars as pl

from sequence_nb import fields
from sequence_nb.errors import InvalidBodyError, SequenceError
from sequence_nb.frames import to_records
from sequence_nb.models import update_body_of, update_losses, validate_update_body

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient
    from sequence_nb.push import PushResult

__all__ = ["ChangePlan", "FieldChange", "PlanError", "RowChange", "plan_updates"]

_EDITED = "__edited"
_BAD = "__uncastable"
_CHANGED = "__changed"
_BAD_FLAG = "__bad"
_KEY_NAMESPACE = uuid.UUID("5b0e4c8e-4f7e-4d55-9f61-6a0f0d1c2b3a")
_HTML_ROW_LIMIT = 500


class PlanError(SequenceError, ValueError):
    """The frames cannot be compared at all (no ``id`` column, duplicate original ids)."""


@dataclass(frozen=True)
class FieldChange:
    """One edited cell: ``column`` went from ``old`` to ``new``."""

    column: str
    old: Any
    new: Any


@dataclass(frozen=True)
class RowChange:
    """One changed customer: its edits, the record it started from and the body to send.

    ``problems`` lists ``(column, message)`` pairs; a row with any is never sent.
    """

    id: str
    legal_name: str | None
    changes: tuple[FieldChange, ...]
    before_json: bytes
    body_json: bytes
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def sendable(self) -> bool:
        """True when the body passed validation and no read-only column was edited."""
        return not self.problems

    @property
    def before(self) -> dict[str, Any]:
        """The original record this plan was made from (a fresh copy)."""
        record: dict[str, Any] = orjson.loads(self.before_json)
        return record

    @property
    def body(self) -> dict[str, Any]:
        """The full update body to send (a fresh copy)."""
        body: dict[str, Any] = orjson.loads(self.body_json)
        return body

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this row edits."""
        return tuple(change.column for change in self.changes)


@dataclass(frozen=True)
class ChangePlan:
    """What would change, row by row, and the bodies that would be sent.

    ``len(plan)`` counts the rows that would be sent; ``plan.errors`` lists what
    would not be, and why.
    """

    rows: tuple[RowChange, ...]
    added_ids: tuple[str | None, ...] = ()
    removed_ids: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[tuple[str | None, str, str], ...] = ()
    plan_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    def __len__(self) -> int:
        return sum(row.sendable for row in self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows or self.added_ids or self.removed_ids)

    @property
    def sendable(self) -> tuple[RowChange, ...]:
        """The rows that would be sent."""
        return tuple(row for row in self.rows if row.sendable)

    @property
    def invalid(self) -> tuple[RowChange, ...]:
        """The changed rows that would not be sent."""
        return tuple(row for row in self.rows if not row.sendable)

    @property
    def errors(self) -> pl.DataFrame:
        """One row per problem: ``id``, ``column``, ``message``. Nothing here is sent."""
        return pl.DataFrame(
            [*self._row_problems(), *self.notes],
            schema={"id": pl.String, "column": pl.String, "message": pl.String},
            orient="row",
        )

    def _row_problems(self) -> Iterable[tuple[str | None, str, str]]:
        for row in self.rows:
            for column, message in row.problems:
                yield row.id, column, message

    def preview(self) -> pl.DataFrame:
        """Every edited cell: ``id``, ``legalName``, ``column``, ``old``, ``new``,
        ``status`` (``update`` or ``invalid``) and ``message`` (why a row is invalid)."""
        records = []
        for row in self.rows:
            status = "update" if row.sendable else "invalid"
            reasons = dict(row.problems)
            for change in row.changes:
                message = reasons.get(change.column)
                if message is None and not row.sendable:
                    message = "; ".join(f"{c} {m}" for c, m in row.problems)
                records.append(
                    (
                        row.id,
                        row.legal_name,
                        change.column,
                        _text(change.old),
                        _text(change.new),
                        status,
                        message,
                    )
                )
        return pl.DataFrame(records, schema=_PREVIEW_SCHEMA, orient="row")

    def idempotency_key(self, row: RowChange, body_json: bytes | None = None) -> str:
        """The key a write of ``row`` carries: the same plan and body give the same key,
        so applying one plan twice cannot write twice."""
        digest = hashlib.sha256(body_json if body_json is not None else row.body_json)
        return str(uuid.uuid5(_KEY_NAMESPACE, f"{self.plan_id}:{row.id}:{digest.hexdigest()}"))

    def requests(self, base_url: str = "") -> list[dict[str, Any]]:
        """The exact calls that would be sent (credentials redacted), in order."""
        return [
            {
                "method": "PUT",
                "url": f"{base_url.rstrip('/')}/customers/{row.id}",
                "headers": {
                    "Authorization": "Basic [REDACTED]",
                    "Content-Type": "application/json",
                    "Idempotency-Key": self.idempotency_key(row),
                },
                "body": row.body,
            }
            for row in self.sendable
        ]

    def apply(
        self,
        client: SequenceClient,
        *,
        dry_run: bool = False,
        on_conflict: Literal["skip", "overwrite"] = "skip",
        max_workers: int = 8,
        **options: Any,
    ) -> PushResult:
        """Send the plan; see :func:`sequence_nb.push.apply_plan`."""
        from sequence_nb.push import apply_plan

        return apply_plan(
            self,
            client,
            dry_run=dry_run,
            on_conflict=on_conflict,
            max_workers=max_workers,
            **options,
        )

    def summary(self) -> str:
        """Counts in one line, and any columns that were ignored."""
        ignored = ""
        if self.ignored_columns:
            names = ", ".join(self.ignored_columns)
            ignored = f" (ignored, not in the original frame: {names})"
        if not self:
            return f"no changes{ignored}"
        parts = [f"{len(self)} to update", f"{len(self.invalid)} invalid"]
        if self.added_ids:
            parts.append(f"{len(self.added_ids)} added rows not sent")
        if self.removed_ids:
            parts.append(f"{len(self.removed_ids)} removed rows not sent")
        return ", ".join(parts) + ignored

    def __repr__(self) -> str:
        return f"<ChangePlan {self.plan_id[:8]}: {self.summary()}>"

    def _repr_html_(self) -> str:
        return render_plan_html(self)

    # -- files -------------------------------------------------------------------

    def to_json(self) -> bytes:
        """The plan as JSON, for a second person to review and apply."""
        return orjson.dumps(
            {
                "plan_id": self.plan_id,
                "created_at": self.created_at,
                "added_ids": self.added_ids,
                "removed_ids": self.removed_ids,
                "ignored_columns": self.ignored_columns,
                "notes": self.notes,
                "rows": [
                    {
                        "id": row.id,
                        "legal_name": row.legal_name,
                        "changes": [[c.column, c.old, c.new] for c in row.changes],
                        "before": row.before,
                        "body": row.body,
                        "problems": row.problems,
                    }
                    for row in self.rows
                ],
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> ChangePlan:
        """A plan saved by :meth:`to_json`."""
        raw = orjson.loads(data)
        rows = tuple(
            RowChange(
                id=row["id"],
                legal_name=row["legal_name"],
                changes=tuple(FieldChange(*change) for change in row["changes"]),
                before_json=orjson.dumps(row["before"]),
                body_json=orjson.dumps(row["body"]),
                problems=tuple((c, m) for c, m in row["problems"]),
            )
            for row in raw["rows"]
        )
        return cls(
            rows=rows,
            added_ids=tuple(raw["added_ids"]),
            removed_ids=tuple(raw["removed_ids"]),
            ignored_columns=tuple(raw["ignored_columns"]),
            notes=tuple((i, c, m) for i, c, m in raw["notes"]),
            plan_id=raw["plan_id"],
            created_at=raw["created_at"],
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``."""
        target = Path(path)
        target.write_bytes(self.to_json())
        return target

    @classmethod
    def load(cls, path: str | Path) -> ChangePlan:
        """Read a plan written by :meth:`save`."""
        return cls.from_json(Path(path).read_bytes())


_PREVIEW_SCHEMA = {
    "id": pl.String,
    "legalName": pl.String,
    "column": pl.String,
    "old": pl.String,
    "new": pl.String,
    "status": pl.String,
    "message": pl.String,
}


# -- building a plan ------------------------------------------------------------------------


def plan_updates(original: pl.DataFrame, edited: pl.DataFrame) -> ChangePlan:
    """The plan that turns ``original`` into ``edited`` (rows matched by ``id``).

    Only rows present in both are updated; rows added to or removed from
    ``edited`` are reported in ``errors`` and never sent, and so are edits to
    read-only columns and bodies that fail validation. Columns of ``edited``
    that ``original`` lacks are ignored (and listed in ``ignored_columns``);
    columns ``edited`` lacks keep their original values.
    """
    _check_frame(original, "original")
    _check_frame(edited, "edited")
    _check_original_ids(original)
    edited, notes = _usable_edited_rows(edited)
    added, removed = _unmatched_ids(original, edited)
    notes += [(i, "(row)", "added in the edited frame; a plan only updates") for i in added]
    notes += [(i, "(row)", "removed from the edited frame; nothing is deleted") for i in removed]
    columns = [c for c in original.columns if c in edited.columns and c != "id"]
    ignored = tuple(c for c in edited.columns if c not in original.columns)
    aligned = _align_dtypes(edited, original.schema, columns)
    rows = _changed_rows(original, aligned, columns)
    return ChangePlan(
        rows=rows,
        added_ids=added,
        removed_ids=removed,
        ignored_columns=ignored,
        notes=tuple(notes),
    )


def _check_frame(frame: object, name: str) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise PlanError(f"{name} must be a polars DataFrame, not {type(frame).__name__}")
    if "id" not in frame.columns:
        raise PlanError(f"the {name} frame has no 'id' column: rows are matched by id")


def _check_original_ids(original: pl.DataFrame) -> None:
    ids = original["id"]
    if ids.null_count():
        raise PlanError("the original frame has rows without an id")
    if ids.n_unique() != original.height:
        duplicated = ids.filter(ids.is_duplicated()).unique().head(5).to_list()
        raise PlanError(f"the original frame repeats ids: {duplicated}")


def _unmatched_ids(
    original: pl.DataFrame, edited: pl.DataFrame
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Ids only in ``edited`` (added) and ids only in ``original`` (removed)."""
    if edited.height == original.height and edited["id"].equals(original["id"]):
        return (), ()
    added = edited.filter(~pl.col("id").is_in(original["id"].implode()))["id"]
    removed = original.filter(~pl.col("id").is_in(edited["id"].implode()))["id"]
    return tuple(added.to_list()), tuple(removed.sort().to_list())


def _usable_edited_rows(
    edited: pl.DataFrame,
) -> tuple[pl.DataFrame, list[tuple[str | None, str, str]]]:
    """Edited rows with one usable id each, and a note for every row left out."""
    notes: list[tuple[str | None, str, str]] = []
    if edited["id"].dtype != pl.String:
        edited = edited.with_columns(pl.col("id").cast(pl.String, strict=False))
    if not edited["id"].null_count() and edited["id"].n_unique() == edited.height:
        return edited, notes
    position = pl.int_range(pl.len()).alias("__row")
    numbered = edited.with_columns(position)
    for row in numbered.filter(pl.col("id").is_null())["__row"].to_list():
        notes.append((None, "id", f"row {row} of the edited frame has no id; it is not sent"))
    duplicated = numbered.filter(pl.col("id").is_not_null() & pl.col("id").is_duplicated())
    for customer_id in duplicated["id"].unique(maintain_order=True).to_list():
        notes.append(
            (customer_id, "id", "appears on more than one row of the edited frame; not sent")
        )
    usable = pl.col("id").is_not_null() & ~pl.col("id").is_duplicated()
    return edited.filter(usable), notes


def _align_dtypes(
    edited: pl.DataFrame, schema: Mapping[str, pl.DataType], columns: Sequence[str]
) -> pl.DataFrame:
    """``edited`` with each column cast to the original's dtype.

    A value that cannot be cast is kept as text in a ``<column>__uncastable``
    column, so the row is reported instead of sending a wrong value.
    """
    casts = []
    for column in columns:
        target = schema[column]
        if edited.schema[column] == target:
            continue
        source = edited[column]
        try:
            cast = source.cast(target, strict=False)
        except Exception:
            cast = pl.Series(column, [None] * len(source), dtype=target)
        failed = cast.is_null() & source.is_not_null()
        text = _as_text(source)
        casts += [cast, pl.when(failed).then(text).otherwise(None).alias(column + _BAD)]
    return edited.with_columns(casts) if casts else edited


def _as_text(series: pl.Series) -> pl.Series:
    try:
        return series.cast(pl.String)
    except Exception:
        return pl.Series(series.name, [_text(v) for v in series.to_list()], dtype=pl.String)


def _changed_rows(
    original: pl.DataFrame, edited: pl.DataFrame, columns: Sequence[str]
) -> tuple[RowChange, ...]:
    left, right = _aligned_rows(original, edited)
    bad = [c for c in columns if c + _BAD in right.columns]
    differing = [c for c in columns if c in bad or _differs(left[c], right[c])]
    if not differing:
        return ()
    pairs = pl.DataFrame(
        [
            left["id"],
            *[left[c] for c in differing],
            *[right[c].alias(c + _EDITED) for c in differing],
            *[right[c + _BAD] for c in bad],
        ]
    )
    masks = [_changed(c, left.schema[c]).alias(c + _CHANGED) for c in differing]
    masks += [pl.col(c + _BAD).is_not_null().alias(c + _BAD_FLAG) for c in bad]
    flagged = pairs.with_columns(masks).filter(
        pl.any_horizontal([m.meta.output_name() for m in masks])
    )
    if flagged.is_empty():
        return ()
    wanted = flagged["id"].implode()
    snapshots = {r["id"]: r for r in to_records(original.filter(pl.col("id").is_in(wanted)))}
    return tuple(
        _row_change(row, snapshots[row["id"]], differing) for row in flagged.iter_rows(named=True)
    )


def _differs(old: pl.Series, new: pl.Series) -> bool:
    """Whether two aligned columns differ anywhere (see :func:`_changed` on nested ones)."""
    if old.dtype.is_nested():
        return bool((old.hash() != new.hash()).any())
    return not old.equals(new)


def _changed(column: str, dtype: pl.DataType) -> pl.Expr:
    """Per row, whether ``column`` was edited.

    Nested columns (lists, structs) are compared by hash: exact comparison of
    them is ten times slower, and they are all read-only, so a hash collision
    (about 2**-64 a row) could only hide an error report, never send a value.
    """
    old, new = pl.col(column), pl.col(column + _EDITED)
    if dtype.is_nested():
        return old.hash() != new.hash()
    return old.ne_missing(new)


def _aligned_rows(
    original: pl.DataFrame, edited: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows both frames share, in the original's order, position for position."""
    if edited.height == original.height and edited["id"].equals(original["id"]):
        return original, edited
    right = original.select("id").join(edited, on="id", how="inner", maintain_order="left")
    left = original.filter(pl.col("id").is_in(right["id"].implode()))
    return left, right


def _row_change(
    row: Mapping[str, Any], before: dict[str, Any], columns: Sequence[str]
) -> RowChange:
    changes: list[FieldChange] = []
    problems: list[tuple[str, str]] = []
    for column in columns:
        uncastable = row.get(column + _BAD)
        if uncastable is not None:
            changes.append(FieldChange(column, row[column], uncastable))
            problems.append((column, f"{uncastable!r} is not a valid value for this column"))
        elif row[column + _CHANGED]:
            changes.append(FieldChange(column, row[column], row[column + _EDITED]))
    body = update_body_of(before)
    for change in changes:
        problem = _apply_edit(body, change)
        if problem:
            problems.append((change.column, problem))
    problems.extend(update_losses(before))
    if not problems:
        try:
            body = validate_update_body(body, customer_id=row["id"])
        except InvalidBodyError as exc:
            problems.extend(exc.problems)
    return RowChange(
        id=row["id"],
        legal_name=before.get("legalName"),
        changes=tuple(changes),
        before_json=orjson.dumps(before),
        body_json=orjson.dumps(body),
        problems=tuple(problems),
    )


def _apply_edit(body: dict[str, Any], change: FieldChange) -> str | None:
    """Write one edit into ``body``; a message when the column cannot be written."""
    column = change.column
    if column in fields.READ_ONLY_COLUMNS:
        return "is read-only: the API does not take it in an update"
    if column not in fields.EDITABLE_COLUMNS:
        return "is not a field the update body has (read-only here)"
    value = change.new
    if isinstance(value, str) and not value.strip() and column not in fields.REQUIRED_COLUMNS:
        value = None  # an emptied optional cell clears the field
    set_path(body, column, value)
    return None


def set_path(record: dict[str, Any], column: str, value: Any) -> None:
    """Set a dotted column (``address.town``) in a nested record; ``None`` removes it."""
    *parents, leaf = column.split(".")
    target = record
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    if value is None:
        target.pop(leaf, None)
    else:
        target[leaf] = value


def get_path(record: Mapping[str, Any], column: str) -> Any:
    """The value at a dotted column of a nested record, ``None`` when absent."""
    value: Any = record
    for part in column.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return str(value)


# -- the HTML view ----------------------------------------------------------------------------


def render_plan_html(plan: ChangePlan) -> str:
    """The plan for a notebook: counts, old struck through, new highlighted, invalid in red."""
    if not plan:
        return f'<div class="snb-plan"><b>{html.escape(plan.summary().capitalize())}.</b></div>'
    parts = [HTML_STYLE, '<div class="snb-plan">', f"<p><b>{html.escape(plan.summary())}</b></p>"]
    parts.append(
        "<table><thead><tr><th>id</th><th>legal name</th><th>column</th>"
        "<th>old</th><th>new</th><th>status</th></tr></thead><tbody>"
    )
    shown = 0
    for row in plan.rows:
        reasons = dict(row.problems)
        css = "" if row.sendable else ' class="snb-invalid"'
        for change in row.changes:
            if shown == _HTML_ROW_LIMIT:
                break
            shown += 1
            status = (
                "update"
                if row.sendable
                else html.escape(
                    reasons.get(change.column) or "; ".join(f"{c} {m}" for c, m in row.problems)
                )
            )
            parts.append(
                f"<tr{css}><td>{_cell(row.id)}</td><td>{_cell(row.legal_name)}</td>"
                f"<td>{_cell(change.column)}</td><td><del>{_cell(_text(change.old))}</del></td>"
                f"<td><ins>{_cell(_text(change.new))}</ins></td><td>{status}</td></tr>"
            )
    parts.append("</tbody></table>")
    total = sum(len(row.changes) for row in plan.rows)
    if total > shown:
        parts.append(f"<p>… and {total - shown} more changes: see plan.preview().</p>")
    notes = [*plan.notes]
    if notes:
        items = "".join(
            f"<li>{_cell(i)} {_cell(c)}: {html.escape(m)}</li>" for i, c, m in notes[:50]
        )
        parts.append(f"<p>Not sent:</p><ul>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)


def _cell(value: str | None) -> str:
    return '<span class="snb-null">empty</span>' if value is None else html.escape(value)


#: The style of the HTML views of plans and push results.
HTML_STYLE = """<style>
.snb-plan table { border-collapse: collapse; font-size: 13px; }
.snb-plan th, .snb-plan td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
.snb-plan del { color: #8a1c1c; background: #fbe9e9; }
.snb-plan ins { color: #0f5a1f; background: #e6f6e9; text-decoration: none; font-weight: 600; }
.snb-plan tr.snb-invalid td { color: #b00020; background: #fff0f0; }
.snb-plan .snb-null { color: #999; font-style: italic; }
</style>"""
