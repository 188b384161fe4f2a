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
import errno
import functools
import hashlib
import html
import json
import os
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from sequence_nb import fields
from sequence_nb.client import path_segment
from sequence_nb.contacts import ContactChange, ContactEdits, contact_edits
from sequence_nb.errors import InvalidBodyError, InvalidIdError, PlanError
from sequence_nb.fields import ApiVersion
from sequence_nb.frames import gc_paused, raw_column, raw_columns, to_records
from sequence_nb.journal import JournalArg
from sequence_nb.models import (
    contacts_body,
    escape_unseen,
    get_path,
    set_path,
    update_body_of,
    update_losses,
    validate_update_body,
    without_unedited_keyed,
)
from sequence_nb.push import ARCHIVE_BODY, PushResult, apply_plan, write_key
from sequence_nb.views import HTML_STYLE, id_cell

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient

__all__ = [
    "ChangePlan",
    "FieldChange",
    "PlanFileError",
    "RowChange",
    "plan_updates",
]

_EDITED = "__edited"
_BAD = "__uncastable"
_CHANGED = "__changed"
_BAD_FLAG = "__bad"
_MISFIT = "__misfit"
_HTML_ROW_LIMIT = 500
#: What a plan file says it is, and the version of its layout this module reads and writes.
PLAN_FILE_FORMAT = "sequence_nb plan"
PLAN_FILE_SCHEMA_VERSION = 2
#: Layouts :meth:`ChangePlan.from_json` reads: version 1 (whose digest covered the rows,
#: base URL and API version only) is read so that runs journaled with it can be resumed
#: and undone; version 2's digest covers every part of the file.
_READABLE_VERSIONS = (1, 2)
#: What each field that is not text holds (a wrong-typed value names it).
_EXPECTED: dict[str, str] = {
    "address": "an object",
    "billingEmails": "a list of addresses",
    "linkedServices": "a list of objects",
    "integrationIds": "a list of objects",
    "organizations": "a list of objects",
    "customProperties": "an object",
}
#: Texts file readers take for a missing value (pandas' defaults, without ``""``): a null
#: where the original holds one of them was most likely made by the reader, not a person.
_MISSING_VALUE_WORDS = frozenset(
    {
        "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip


class PlanFileError(PlanError):
    """A plan file is not exactly a plan this toolkit made: ``row`` and ``field`` say where.

    ``row`` is the customer id (or ``#3``, its position, when it has no usable id) and
    ``field`` the part of the file at fault; either is ``None`` for the whole file.
    """

    def __init__(self, message: str, *, row: str | None = None, field: str | None = None):
        self.row = row
        self.field = field
        where = ", ".join(part for part in (row and f"row {row}", field) if part)
        super().__init__(f"plan file: {where}: {message}" if where else f"plan file: {message}")


#: What a planned row does to its customer.
Action = Literal["update", "archive"]
#: The column and the new value an archive row shows in previews.
ARCHIVE_COLUMN = "archivedAt"
ARCHIVE_NOTE = "archived now: Sequence has no way back (undo cannot restore it)"


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
    ``legal_name`` is the before-image's legal name as text (a value of another JSON
    type there, such as a number, as its JSON text), for display.
    """

    id: str
    legal_name: str | None
    changes: tuple[FieldChange, ...]
    before_json: bytes
    body_json: bytes
    problems: tuple[tuple[str, str], ...] = ()
    #: ``update`` (``PUT /customers/{id}`` with :attr:`body`) or ``archive``
    #: (``POST /customers/{id}/archive``, no body; see :func:`plan_archive`).
    action: Action = "update"

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
    base_url: str | None = None
    api_version: str | None = None

    @property
    def version(self) -> ApiVersion:
        """The :class:`~sequence_nb.fields.ApiVersion` the plan's bodies follow.

        A plan that names none was made for the seed's version (plans saved before
        versions were told apart name none).
        """
        return fields.api_version(self.api_version or fields.SEED.name)

    @functools.cached_property
    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical rows (ids, changes, before-images, bodies) and
        of the server and API version the plan was made for: pin it when applying, so
        what is sent is exactly what was reviewed."""
        return _digest_of(self)

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
        ``status`` (``update``, ``archive`` or ``invalid``) and ``message`` (why a row
        is invalid).

        Every text is for display: characters a reader cannot see or that move a
        terminal's cursor (ESC, zero-width and bidi controls, tabs, line breaks, blank
        fillers: see :func:`~sequence_nb.models.escape_unseen`) are shown as escapes
        (``\\u200b``), so two values that would look alike never do."""
        records = []
        for row in self.rows:
            status = row.action if row.sendable else "invalid"
            reasons = dict(row.problems)
            for change in row.changes:
                message = reasons.get(change.column)
                if message is None and not row.sendable:
                    message = "; ".join(f"{c} {m}" for c, m in row.problems)
                records.append(
                    (
                        _shown(row.id),
                        _shown(row.legal_name),
                        _shown(change.column),
                        _shown(change.old),
                        _shown(change.new),
                        status,
                        _shown(message),
                    )
                )
        return pl.DataFrame(records, schema=_PREVIEW_SCHEMA, orient="row")

    def idempotency_key(
        self,
        row: RowChange,
        body_json: bytes | None = None,
        record: Mapping[str, Any] | None = None,
        generation: int = 0,
    ) -> str:
        """The key a write of ``row`` carries.

        It covers the plan, the row, the body and the record the body was built on
        (``record``, by default the plan's before-image): a retry, or a second process
        reading the same record, shares one key, but a new state of the record gets a
        new one. ``generation`` counts earlier writes of the same key that the journal
        saw land (an undone write sent again must not be answered with a replay).
        """
        return write_key(
            self.plan_id,
            row.id,
            body_json if body_json is not None else row.body_json,
            record if record is not None else row.before,
            generation,
        )

    def requests(self, base_url: str = "") -> list[dict[str, Any]]:
        """The calls that would be sent (credentials redacted), in order, as the plan's
        before-images make them: the push builds each body on the customer's fresh record,
        so a 2024-07-30 body here lacks the contacts the push takes from it (unless they
        were edited). An archive row is a ``POST /customers/{id}/archive`` with no body."""
        return [self._request(row, base_url) for row in self.sendable]

    def _request(self, row: RowChange, base_url: str) -> dict[str, Any]:
        url = f"{base_url.rstrip('/')}/customers/{row.id}"
        headers = {"Authorization": "Basic [REDACTED]"}
        if self.version.header is not None:
            headers["Sequence-Version"] = self.version.header
        if row.action == "archive":
            headers["Idempotency-Key"] = self.idempotency_key(row, orjson.dumps(ARCHIVE_BODY))
            return {"method": "POST", "url": f"{url}/archive", "headers": headers, "body": None}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = self.idempotency_key(row)
        return {"method": "PUT", "url": url, "headers": headers, "body": row.body}

    def apply(
        self,
        client: SequenceClient,
        *,
        dry_run: bool = False,
        on_conflict: Literal["skip", "overwrite"] = "skip",
        max_workers: int = 8,
        journal: JournalArg = None,
        progress: bool | None = None,
        expected_digest: str | None = None,
    ) -> PushResult[ChangePlan]:
        """Send the plan; see :func:`sequence_nb.push.apply_plan`.

        ``expected_digest`` is the :attr:`digest` that was reviewed: a plan with
        another one is refused before anything is read or sent.
        """
        return apply_plan(
            self,
            client,
            dry_run=dry_run,
            on_conflict=on_conflict,
            max_workers=max_workers,
            journal=journal,
            progress=progress,
            expected_digest=expected_digest,
        )

    def summary(self) -> str:
        """Counts in one line, and any columns that were ignored (names shown escaped)."""
        ignored = ""
        if self.ignored_columns:
            names = ", ".join(map(escape_unseen, self.ignored_columns))
            ignored = f" (ignored, not in the original frame: {names})"
        if not self:
            return f"no changes{ignored}"
        archives = sum(1 for row in self.sendable if row.action == "archive")
        parts = [f"{len(self) - archives} to update", f"{len(self.invalid)} invalid"]
        if archives:
            parts.insert(1, f"{archives} to archive (no way back)")
        removed = sum(_contacts_removed(row, self.version) for row in self.sendable)
        if removed:
            parts.insert(1, f"{removed} contact(s) to remove")
        if self.added_ids:
            parts.append(f"{len(self.added_ids)} added rows not sent")
        if self.removed_ids:
            parts.append(f"{len(self.removed_ids)} removed rows not sent")
        return ", ".join(parts) + ignored

    def __repr__(self) -> str:
        plan_id = escape_unseen(self.plan_id[:8])  # a plan file's id may hold anything
        return f"<ChangePlan {plan_id}: {self.summary()}; digest {self.digest}>"

    def _repr_html_(self) -> str:
        return render_plan_html(self)

    # -- files -------------------------------------------------------------------

    def to_json(self) -> bytes:
        """The plan as JSON, for a second person to review and apply.

        The file names its layout (``schema_version``), the server and API version
        the plan was made for, and its :attr:`digest`, which covers every other part.
        """
        document = {
            "format": PLAN_FILE_FORMAT,
            "schema_version": PLAN_FILE_SCHEMA_VERSION,
            "digest": self.digest,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "base_url": self.base_url,
            "api_version": self.api_version,
            "added_ids": self.added_ids,
            "removed_ids": self.removed_ids,
            "ignored_columns": self.ignored_columns,
            "notes": [{"id": i, "column": c, "message": m} for i, c, m in self.notes],
            "rows": [_row_document(row) for row in self.rows],
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2, default=_json_default)

    @classmethod
    def from_json(cls, data: bytes | str) -> ChangePlan:
        """A plan saved by :meth:`to_json`, rebuilt and checked row by row.

        Every body and every problem is rebuilt from the row's before-image and
        changes by the code :func:`plan_updates` uses; a file whose stored body,
        problems, old values or digest differ from the rebuilt ones, that edits a
        column a plan never sends, lists a change a reader could not see (the same
        value, or the same text in another Unicode normal form), repeats a customer
        (also in other letter case) or a JSON key, or points a row at another
        customer's before-image is refused with :class:`PlanFileError`. A row whose
        id no request can carry (``""``, ``..``, ``a/b``) loads as invalid, as
        :func:`plan_updates` makes it.
        """
        try:
            with gc_paused():  # a file of many rows is many small objects, none in a cycle
                document = _parsed_plan_file(data)
                rows = _checked_rows(document.rows, _file_version(document.api_version))
        except RecursionError:
            raise PlanFileError("holds values nested too deeply to be a plan") from None
        plan = cls(
            rows=rows,
            added_ids=tuple(document.added_ids),
            removed_ids=tuple(document.removed_ids),
            ignored_columns=tuple(document.ignored_columns),
            notes=tuple((n.id, n.column, n.message) for n in document.notes),
            plan_id=document.plan_id,
            created_at=document.created_at,
            base_url=document.base_url,
            api_version=document.api_version,
        )
        held = _file_digest(plan, document.schema_version)
        if held != document.digest:
            raise PlanFileError(
                f"the file says {document.digest} but its contents give {held}: "
                "it was changed after it was saved",
                field="digest",
            )
        return plan

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``, readable by its owner only (``0600``): a
        plan holds customers' records. It is written whole or not at all."""
        target = Path(path)
        _write_private(target, self.to_json())
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


def plan_updates(
    original: pl.DataFrame,
    edited: pl.DataFrame,
    *,
    contacts: pl.DataFrame | None = None,
    edited_contacts: pl.DataFrame | None = None,
    replace_contacts_of: Iterable[str] = (),
    base_url: str | None = None,
    api_version: str | ApiVersion | None = None,
) -> ChangePlan:
    """The plan that turns ``original`` into ``edited`` (rows matched by ``id``).

    Only rows present in both are updated; rows added to or removed from
    ``edited`` are reported in ``errors`` and never sent, and so are edits to
    read-only columns and bodies that fail validation. Columns of ``edited``
    that ``original`` lacks are ignored (and listed in ``ignored_columns``);
    columns ``edited`` lacks keep their original values. Texts that differ only
    in Unicode normal form (NFC and NFD) are the same text, not an edit, and so
    are an empty text and a null. A column of numbers, booleans or dates where the
    original holds text is a :class:`PlanError`: reading a file that way may already
    have changed values. Cell by cell, the same holds for a value the edited frame
    keeps in a raw column (``telephone__raw``, see :mod:`sequence_nb.frames`) that the
    original does not hold: a number in an edited JSON file is an error on its row,
    never a cleared field. A null where the original holds a word readers take for a
    missing value (``"NA"``, ``"null"``) is an error too.
    ``base_url`` and ``api_version`` name what the plan is for (saved with it and
    covered by its digest; a plan with a ``base_url`` is only applied there, and
    only by a client speaking its version). The version (None:
    ``$SEQUENCE_API_VERSION``, else the seed's) decides which columns may be edited
    and how bodies are built; in 2024-07-30, a ``customProperties.<key>`` column the
    edited frame adds creates that property, and a cleared one removes it.

    ``contacts`` and ``edited_contacts`` (2024-07-30: frames of
    :func:`~sequence_nb.contacts.fetch_contacts`) add contact edits to the same plan:
    a customer whose contacts change gets a ``contacts`` change (the whole list
    before and after, as a body sends it) next to its other edits, in one row. A
    customer the customers frames do not hold cannot be written, and is noted. A
    customer with no row left in ``edited_contacts`` keeps its contacts (one note says
    how many), unless named in ``replace_contacts_of``: then it is to have none.
    """
    version = fields.api_version(api_version)
    _check_frame(original, "original")
    _check_frame(edited, "edited")
    _check_original_ids(original)
    edited, notes = _usable_edited_rows(edited)
    unusable = {i for i, _, _ in notes}
    added, removed = _unmatched_ids(original, edited)
    notes += [(i, "(row)", "added in the edited frame; a plan only updates") for i in added]
    notes += [(i, "(row)", "removed from the edited frame; nothing is deleted") for i in removed]
    raws = raw_columns(edited)
    held = raw_columns(original)
    original = _with_new_keyed_columns(original, edited, version)
    columns = [
        c
        for c in original.columns
        if c in edited.columns and c != "id" and c not in held and c not in raws
    ]
    ignored = tuple(c for c in edited.columns if c not in original.columns and c not in raws)
    aligned = _align_dtypes(edited, original.schema, columns)
    rows = _changed_rows(original, aligned, columns, raws, version)
    if contacts is not None or edited_contacts is not None:
        found = _contact_changes(contacts, edited_contacts, replace_contacts_of, version)
        notes += found.notes
        notes += [(i, "contacts", _ROW_NOT_SENT) for i in found.changes if i in unusable]
        changes = {i: c for i, c in found.changes.items() if i not in unusable}
        rows, unknown = _with_contact_changes(rows, original, changes, version)
        notes += [(i, "contacts", _NOT_IN_CUSTOMERS) for i in unknown]
    return ChangePlan(
        rows=rows,
        added_ids=added,
        removed_ids=removed,
        ignored_columns=ignored,
        notes=tuple(notes),
        base_url=base_url,
        api_version=version.name,
    )


_ROW_NOT_SENT = (
    "contacts edited, but the customer's row of the edited customers frame is not sent "
    "(see its note), so its contacts are not sent either"
)
_NOT_IN_CUSTOMERS = (
    "contacts edited for a customer the customers frame does not hold: a body is built "
    "on the customer's record, so fetch it with the others; nothing is sent"
)


def _contact_changes(
    contacts: pl.DataFrame | None,
    edited: pl.DataFrame | None,
    whole: Iterable[str],
    version: ApiVersion,
) -> ContactEdits:
    if version.contacts_field is None:
        raise PlanError(f"API version {version.name} has no contacts; they come with 2024-07-30")
    if contacts is None or edited is None:
        raise PlanError("give both contacts frames: the original and the edited one")
    return contact_edits(contacts, edited, whole=set(whole))


def _with_contact_changes(
    rows: tuple[RowChange, ...],
    original: pl.DataFrame,
    found: Mapping[str, ContactChange],
    version: ApiVersion,
) -> tuple[tuple[RowChange, ...], list[str]]:
    """``rows`` with each customer's contact change added (in the original's row order),
    and the customers with contact changes that ``original`` does not hold."""
    by_id = {row.id: row for row in rows}
    ids = original.get_column("id").to_list()
    held = set(ids)
    wanted = [i for i in found if i not in by_id and i in held]
    snapshots = (
        {
            r["id"]: r
            for r in to_records(original.filter(pl.col("id").is_in(wanted)), api_version=version)
        }
        if wanted
        else {}
    )
    out = []
    for customer_id in ids:
        row, change = by_id.get(customer_id), found.get(customer_id)
        if change is None:
            if row is not None:
                out.append(row)
            continue
        before = dict(row.before if row is not None else snapshots[customer_id])
        before[version.contacts_field or ""] = [dict(c) for c in change.before]
        edit = FieldChange(
            version.contacts_field or "",
            contacts_body(list(change.before)),
            contacts_body(list(change.after)),
        )
        earlier = row.changes if row is not None else ()
        problems = row.problems if row is not None else ()
        uncastable, misfits = _flagged_columns(earlier, problems)
        out.append(_built_row(customer_id, before, [*earlier, edit], version, uncastable, misfits))
    return tuple(out), [i for i in found if i not in held]


def _flagged_columns(
    changes: Sequence[FieldChange], problems: Collection[tuple[str, str]]
) -> tuple[set[str], set[str]]:
    """The columns whose new value the planner found uncastable, and those it found of
    another JSON type (misfits), as a built row's problems name them."""
    uncastable = {c.column for c in changes if (c.column, _uncastable(c.new)) in problems}
    misfits = {c.column for c in changes if (c.column, _misfit(c.column, c.new)) in problems}
    return uncastable, misfits


def plan_archive(
    original: pl.DataFrame,
    ids: Iterable[str],
    *,
    base_url: str | None = None,
    api_version: str | ApiVersion | None = None,
) -> ChangePlan:
    """The plan that archives each customer of ``ids`` (``POST /customers/{id}/archive``).

    A version with the call is needed (2024-07-30). Each row shows ``archivedAt``
    going from empty to archived, and says plainly that Sequence has no way back:
    ``undo`` reports an archive it cannot restore. A customer ``original`` does
    not hold is noted and not sent; one already archived is invalid. The plan is
    previewed, saved, applied and journaled like an update plan.
    """
    version = fields.api_version(api_version)
    if not version.can_archive:
        raise PlanError(
            f"API version {version.name} has no archive call; archiving needs 2024-07-30"
        )
    _check_frame(original, "original")
    _check_original_ids(original)
    wanted = list(dict.fromkeys(ids))
    held = set(original.get_column("id").to_list())
    snapshots = {
        r["id"]: r
        for r in to_records(original.filter(pl.col("id").is_in(wanted)), api_version=version)
    }
    rows = tuple(_archive_row(i, snapshots[i], version) for i in wanted if i in held)
    notes = tuple(
        (i, "(row)", "not in the frame: a customer is archived from its record; not sent")
        for i in wanted
        if i not in held
    )
    return ChangePlan(rows=rows, notes=notes, base_url=base_url, api_version=version.name)


def _archive_row(customer_id: str, before: dict[str, Any], version: ApiVersion) -> RowChange:
    """The row archiving ``customer_id``: no body, and every reason it cannot be sent."""
    problems = _id_problems(customer_id)
    if before.get(ARCHIVE_COLUMN):
        problems.append((ARCHIVE_COLUMN, f"is {before[ARCHIVE_COLUMN]!r}: already archived"))
    return RowChange(
        id=customer_id,
        legal_name=_legal_name(before, version),
        changes=(FieldChange(ARCHIVE_COLUMN, before.get(ARCHIVE_COLUMN), ARCHIVE_NOTE),),
        before_json=orjson.dumps(before),
        body_json=b"{}",
        problems=tuple(problems),
        action="archive",
    )


def _checked_archive(entry: _RowEntry, version: ApiVersion) -> RowChange:
    """An archive row of a file, if it is the one :func:`plan_archive` makes."""
    _check_identity(entry)
    if not version.can_archive:
        raise PlanFileError(
            f"archives, which API version {version.name} cannot do", row=entry.id, field="action"
        )
    row = _archive_row(entry.id, dict(entry.before), version)
    stored = [FieldChange(c.column, c.old, c.new) for c in entry.changes]
    if (
        stored != list(row.changes)
        or entry.body
        or list(row.problems) != [(p.column, p.message) for p in entry.problems]
    ):
        raise PlanFileError(
            "is not the archive row its before-image makes (changes, body or problems differ)",
            row=entry.id,
        )
    return row


def _contacts_removed(row: RowChange, version: ApiVersion) -> int:
    """How many contacts the row's ``contacts`` change removes (by email address)."""
    removed = 0
    for change in row.changes:
        if change.column == version.contacts_field:
            whole = ContactChange(row.id, tuple(change.old or ()), tuple(change.new or ()))
            removed += whole.removed
    return removed


def _with_new_keyed_columns(
    original: pl.DataFrame, edited: pl.DataFrame, version: ApiVersion
) -> pl.DataFrame:
    """``original`` with an empty text column for each keyed column only ``edited`` has
    (a ``customProperties.<key>`` added by hand: the property each row would create)."""
    added = [c for c in edited.columns if c not in original.columns and version.keyed_column(c)]
    return original.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in added)


def _file_version(name: str | None) -> ApiVersion:
    """The version a plan file names (none: the seed's), or :class:`PlanFileError`."""
    try:
        return fields.api_version(name or fields.SEED.name)
    except fields.UnknownApiVersionError as exc:
        raise PlanFileError(str(exc)) from None


def _check_frame(frame: object, name: str) -> None:
    if not isinstance(frame, pl.DataFrame):
        raise PlanError(f"{name} must be a polars DataFrame, not {type(frame).__name__}")
    if "id" not in frame.columns:
        raise PlanError(f"the {name} frame has no 'id' column: rows are matched by id")


def _check_original_ids(original: pl.DataFrame) -> None:
    ids = original["id"]
    if ids.dtype != pl.String:
        raise PlanError(
            f"the 'id' column of the original frame holds {ids.dtype}, not text: customer "
            "ids are text, so rows could not be matched; read the export as it was written"
        )
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

    A value that cannot be cast, or that a cast between number types would change
    (``1.5`` to an integer column), is kept as text in a ``<column>__uncastable``
    column, so the row is reported instead of sending a wrong value. A column
    whose type may already have lost information is refused (:func:`_refuse_lossy`).
    """
    casts = []
    for column in columns:
        target = schema[column]
        if edited.schema[column] == target:
            continue
        _refuse_lossy(column, edited.schema[column], target)
        source = edited[column]
        cast = _cast(source, target)
        failed = cast.is_null() & source.is_not_null()
        if source.dtype.is_numeric() and target.is_numeric():
            failed = failed | cast.cast(source.dtype, strict=False).ne_missing(source)
        text = _as_text(source)
        casts += [cast, pl.when(failed).then(text).otherwise(None).alias(column + _BAD)]
    return edited.with_columns(casts) if casts else edited


def _cast(source: pl.Series, target: pl.DataType) -> pl.Series:
    """``source`` cast to ``target``, null where a value does not fit. No list or struct
    is text: polars would write a struct ``{"a": "x"}`` as ``{"x"}``, keys lost."""
    if not (_is_text(target) and source.dtype.is_nested()):
        try:
            return source.cast(target, strict=False)
        except Exception:
            pass
    return pl.Series(source.name, [None] * len(source), dtype=target)


def _is_text(dtype: pl.DataType) -> bool:
    return dtype.base_type() in (pl.String, pl.Categorical, pl.Enum)


def _refuse_lossy(column: str, source: pl.DataType, target: pl.DataType) -> None:
    """A :class:`PlanError` when ``column`` holds numbers, booleans or dates where the
    original holds text: the cast back to text would succeed, but a reader that typed
    the column may already have changed the values (``02169`` read as 2169)."""
    if not _is_text(target) or _is_text(source):
        return
    if not (source.is_numeric() or source.is_temporal() or source == pl.Boolean):
        return  # lists, structs, nulls: cast cell by cell, failures reported per row
    raise PlanError(
        f"column {column!r} of the edited frame holds {source} where the original holds "
        f"text: reading it that way can change values (a postcode 02169 becomes 2169), "
        f"and writing them back would change the customers. Read the file as text, e.g. "
        f"pl.read_csv(path, infer_schema=False) or "
        f"pl.read_csv(path, schema_overrides={{{column!r}: pl.String}})"
    )


def _as_text(series: pl.Series) -> pl.Series:
    if not series.dtype.is_nested():  # a struct cast to text loses its keys
        try:
            return series.cast(pl.String)
        except Exception:
            pass
    return pl.Series(series.name, [_text(v) for v in series.to_list()], dtype=pl.String)


def _changed_rows(
    original: pl.DataFrame,
    edited: pl.DataFrame,
    columns: Sequence[str],
    raws: Mapping[str, str],
    version: ApiVersion,
) -> tuple[RowChange, ...]:
    left, right = _aligned_rows(original, edited)
    bad = [c for c in columns if c + _BAD in right.columns]
    misfits = _misfits(left, right, raws)
    emptied = _emptied_raws(left, right, columns)
    differing = [c for c in columns if c in bad or c in emptied or _differs(left[c], right[c])]
    if not differing and not misfits:
        return ()
    texts = [c for c in differing if left.schema[c] == pl.String]
    held = {c: raw_column(c) for c in texts if raw_column(c) in left.columns}
    edited_raws = [raw for raw in held.values() if raw in right.columns]
    pairs = pl.DataFrame(
        [
            left["id"],
            *[left[c] for c in differing],
            *[right[c].alias(c + _EDITED) for c in differing],
            *[right[c + _BAD] for c in bad],
            *misfits,
            *[left[raw] for raw in held.values()],
            *[_as_text(right[raw]).alias(raw + _EDITED) for raw in edited_raws],
        ]
    )
    masks = [
        _changed(c, left.schema[c], held.get(c), held.get(c) in edited_raws).alias(c + _CHANGED)
        for c in differing
    ]
    masks += [pl.col(c + _BAD).is_not_null().alias(c + _BAD_FLAG) for c in bad]
    masks += [pl.col(s.name).is_not_null().alias(s.name + _BAD_FLAG) for s in misfits]
    names = [m.meta.output_name() for m in masks]
    flagged = pairs.with_columns(masks).filter(pl.any_horizontal(names))
    flagged = _without_normal_form_edits(flagged, texts, names)
    if flagged.is_empty():
        return ()
    flagged = _python_moments(flagged)
    wanted = flagged["id"].implode()
    snapshots = {
        r["id"]: r
        for r in to_records(original.filter(pl.col("id").is_in(wanted)), api_version=version)
    }
    misfitting = [s.name.removesuffix(_MISFIT) for s in misfits]
    visited = [c for c in columns if c in differing or c in misfitting]
    visited += [f for f in misfitting if f not in columns]
    built = (
        _row_change(row, snapshots[row["id"]], visited, version)
        for row in flagged.iter_rows(named=True)
    )
    return tuple(row for row in built if row.changes)


def _python_moments(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each Datetime column holding a moment Python cannot (before year 1
    or after 9999, as an edited number cast to a timestamp can be) as its ISO text."""
    texts = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            years = frame.get_column(name).dt.year()
            low, high = years.min(), years.max()
            if low is not None and (low < 1 or high > 9999):  # type: ignore[operator]
                texts.append(frame.get_column(name).dt.to_string("%Y-%m-%dT%H:%M:%S%.f"))
    return frame.with_columns(texts) if texts else frame


def _emptied_raws(left: pl.DataFrame, right: pl.DataFrame, columns: Sequence[str]) -> set[str]:
    """The text columns whose original value is kept raw (``telephone__raw``) and whose
    raw cell the edited frame empties somewhere: a cell null on both sides is then an
    edit (the field is cleared), which comparing the cells alone would miss."""
    found = set()
    for column in columns:
        raw = raw_column(column)
        if raw not in left.columns or raw not in right.columns:
            continue
        new = _as_text(right[raw])
        if (left[raw].is_not_null() & (new.is_null() | (new == ""))).any():
            found.add(column)
    return found


def _misfits(left: pl.DataFrame, right: pl.DataFrame, raws: Mapping[str, str]) -> list[pl.Series]:
    """Per field, the JSON text of each edited value that is kept in a raw column and
    that the original does not hold there (``<field>__misfit``; fields with none are left out).

    A reader such as :func:`~sequence_nb.frames.to_frame` keeps a value of another JSON
    type than the field's (a number where text belongs) in ``<field>__raw`` and leaves
    the cell null: compared alone, the cell would say "clear the field".
    """
    found = []
    for name, field_name in raws.items():
        nothing = pl.repeat(None, left.height, dtype=pl.String, eager=True)
        new = _as_text(right[name])
        old = _as_text(left[name]) if name in left.columns else nothing
        misfit = new.zip_with(new.is_not_null() & new.ne_missing(old), nothing)
        if misfit.null_count() < misfit.len():
            found.append(misfit.alias(field_name + _MISFIT))
    return found


def _without_normal_form_edits(
    flagged: pl.DataFrame, texts: Sequence[str], masks: Sequence[str]
) -> pl.DataFrame:
    """The flagged rows, with text cells compared again in NFC.

    The same text in another Unicode normal form (``é`` as one code point, or
    ``e`` and a combining accent) looks the same in every preview, so it is no
    edit. Only rows already flagged are normalized: planning stays as quick.
    """
    if not texts or flagged.is_empty():
        return flagged
    again = [
        (
            pl.col(c + _CHANGED)
            & ~pl.col(c)
            .str.normalize("NFC")
            .eq(pl.col(c + _EDITED).str.normalize("NFC"))
            .fill_null(False)  # a null on either side was judged by _changed
        ).alias(c + _CHANGED)
        for c in texts
    ]
    return flagged.with_columns(again).filter(pl.any_horizontal(masks))


def _differs(old: pl.Series, new: pl.Series) -> bool:
    """Whether two aligned columns differ anywhere (see :func:`_changed` on nested ones)."""
    if old.dtype.is_nested():
        return bool((old.hash() != new.hash()).any())
    return not old.equals(new)


def _changed(
    column: str, dtype: pl.DataType, held_raw: str | None = None, raw_edited: bool = False
) -> pl.Expr:
    """Per row, whether ``column`` was edited.

    Nested columns (lists, structs) are compared by hash: exact comparison of
    them is ten times slower, and they are all read-only, so a hash collision
    (about 2**-64 a row) could only hide an error report, never send a value.
    In a text column an empty text and a null are one value (a body leaves both
    out; files write both as an empty cell). Where the original's cell is null
    because its value is kept in the raw column ``held_raw``, an empty cell (null
    or ``""``, as a reader may give back for a cell nobody touched) is no edit
    either: the field is cleared only when the edited frame empties the raw cell
    too (``raw_edited`` says it has that column), or by a space written in the cell.
    """
    old, new = pl.col(column), pl.col(column + _EDITED)
    if dtype.is_nested():
        return old.hash() != new.hash()
    if dtype != pl.String:
        return old.ne_missing(new)
    new_empty = new.is_null() | (new == "")
    edit = old.ne_missing(new) & ~((old.is_null() | (old == "")) & new_empty)
    if held_raw is None:
        return edit
    raw_emptied = pl.lit(False)
    if raw_edited:
        raw_emptied = pl.col(held_raw + _EDITED).is_null() | (pl.col(held_raw + _EDITED) == "")
    return pl.when(pl.col(held_raw).is_not_null() & new_empty).then(raw_emptied).otherwise(edit)


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
    row: Mapping[str, Any], before: dict[str, Any], columns: Sequence[str], version: ApiVersion
) -> RowChange:
    """The row's changes, in column order. A cell whose edited value misfits its field
    (:func:`_misfits`) is one change to the parsed value, standing for its object's
    parts too; the old value of a cell the original kept raw is the before-image's."""
    changes: list[FieldChange] = []
    uncastable: set[str] = set()
    misfits = {c for c in columns if row.get(c + _MISFIT) is not None}
    for column in columns:
        head = column.partition(".")[0]
        if head in misfits and head != column:
            continue  # part of an object whose edited value is no object
        old = row.get(column)
        if old is None:
            old = get_path(before, column)
        text = row.get(column + _BAD)
        if column in misfits:
            changes.append(FieldChange(column, old, _parsed(row[column + _MISFIT])))
        elif text is not None:
            if _same_saved(old, text):
                continue  # the same moment, only no longer of the column's type
            changes.append(FieldChange(column, old, text))
            uncastable.add(column)
        elif row.get(column + _CHANGED) and not _same_saved(old, row[column + _EDITED]):
            changes.append(FieldChange(column, old, row[column + _EDITED]))
    return _built_row(row["id"], before, changes, version, uncastable, misfits)


def _same_saved(old: Any, new: Any) -> bool:
    """Whether two cell values are saved as the same JSON (a datetime and the same
    moment in an Object column): no change a preview or a plan file could show."""
    try:
        return _saved(old) == _saved(new)
    except orjson.JSONEncodeError:
        return False


def _saved(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default)


def _parsed(text: str) -> Any:
    """The JSON value a raw cell holds, or the text itself when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _built_row(
    customer_id: str,
    before: dict[str, Any],
    changes: Sequence[FieldChange],
    version: ApiVersion,
    uncastable: Collection[str] = (),
    misfits: Collection[str] = (),
) -> RowChange:
    """The row that writes ``changes`` over ``before``: its full body and every problem.

    :func:`plan_updates` and a loaded plan file both build rows here, so a file can
    hold no body and no verdict the planner would not have made. ``uncastable``
    names the columns whose new value did not fit the original's type, ``misfits``
    those whose new value has another JSON type than the field's (never written).
    """
    problems = _id_problems(customer_id)
    problems += [(c.column, _uncastable(c.new)) for c in changes if c.column in uncastable]
    problems += [(c.column, _misfit(c.column, c.new)) for c in changes if c.column in misfits]
    body = update_body_of(before, version)
    for change in changes:
        if change.column in misfits:
            continue
        problem = _apply_edit(body, change, version) or _missing_value_read(change)
        if problem:
            problems.append((change.column, problem))
    problems.extend(update_losses(before))
    body = without_unedited_keyed(body, [c.column for c in changes], version)
    if not problems:
        try:
            body = _validated(body, before, customer_id, version)
        except InvalidBodyError as exc:
            problems.extend(exc.problems)
    return RowChange(
        id=customer_id,
        legal_name=_legal_name(before, version),
        changes=tuple(changes),
        before_json=orjson.dumps(before),
        body_json=orjson.dumps(body),
        problems=tuple(problems),
    )


def _validated(
    body: dict[str, Any], before: Mapping[str, Any], customer_id: str, version: ApiVersion
) -> dict[str, Any]:
    """The validated body. Fields a list page leaves out (2024-07-30's ``contacts``) and
    the before-image lacks are checked as empty and left out: the push takes them
    from the customer's fresh record (``GET /customers/{id}``), never from here."""
    omitted = [name for name in version.listing_omits if name not in before and name not in body]
    checked = validate_update_body(
        {**body, **{name: [] for name in omitted}}, customer_id=customer_id, version=version
    )
    return {k: v for k, v in checked.items() if k not in omitted}


def _id_problems(customer_id: str) -> list[tuple[str, str]]:
    """``[("id", why)]`` when no request can name the customer (``""``, ``..``, ``a/b``):
    the client's own rule, so such a row is reported here instead of failing at push."""
    try:
        path_segment(customer_id, "customer id")
    except InvalidIdError as exc:
        return [("id", str(exc))]
    return []


def _legal_name(before: Mapping[str, Any], version: ApiVersion) -> str | None:
    """The before-image's legal name as text, for display."""
    name = before.get(version.legal_name_column)
    return name if name is None or isinstance(name, str) else _text(name)


def _misfit(column: str, value: Any) -> str:
    """The problem of an edited value of another JSON type than ``column``'s."""
    expected = _EXPECTED.get(column, "text")
    if isinstance(value, str) and expected == "text":
        return (
            f"the raw column {raw_column(column)!r} holds {_json_text(value)}, which is not "
            f"JSON: write the value in {column!r} instead"
        )
    return (
        f"holds {_json_text(value)}, {_json_kind(value)}, where {expected} belongs: the "
        f"edited data gave this cell another JSON type; write it as {expected} to send it"
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _json_text(value: Any, limit: int = 120) -> str:
    """``value`` as JSON, shortened to ``limit`` characters."""
    try:
        text = orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _missing_value_read(change: FieldChange) -> str | None:
    """Why an empty cell where the original holds ``"NA"`` (and the like) is not sent."""
    if not isinstance(change.old, str) or change.old not in _MISSING_VALUE_WORDS:
        return None
    if change.new not in (None, ""):
        return None
    return (
        f"was {change.old!r} and is empty now: a file reader that takes {change.old!r} for "
        "a missing value (pandas does, unless keep_default_na=False) turned the text into "
        "a null; read the file keeping text as it is, or write a space in the cell to "
        "clear it on purpose"
    )


def _uncastable(value: Any) -> str:
    """The problem of a value that does not fit its column's type."""
    return f"{value!r} is not a valid value for this column"


def _apply_edit(body: dict[str, Any], change: FieldChange, version: ApiVersion) -> str | None:
    """Write one edit into ``body``; a message when the column cannot be written."""
    column = change.column
    refusal = _refusal(column, version)
    if refusal:
        return refusal
    value = change.new
    if isinstance(value, str) and not value.strip() and column not in version.required_columns:
        value = None  # an emptied optional cell clears the field (removes the property)
    set_path(body, column, value)
    return None


def _refusal(column: str, version: ApiVersion) -> str | None:
    """Why no plan writes ``column`` (read-only or unknown), or ``None`` when it may."""
    if column == version.contacts_field:
        return None  # from the contacts frame (sequence_nb.contacts)
    if column in version.read_only_columns:
        return "is read-only: the API does not take it in an update"
    if not version.is_editable(column):
        return "is not a field the update body has (read-only here)"
    return None


def _write_private(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` readable by its owner only (``0600``, whatever the
    umask or an older file's mode), through a temporary file renamed into place. What
    is no regular file (``/dev/null``, a pipe) is refused, never replaced by the file."""
    if target.exists() and not target.is_file():
        raise OSError(
            errno.EEXIST, "not a regular file, so a plan is not written over it", str(target)
        )
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None  # name the file asked for
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return str(value)


def _shown(value: Any) -> str | None:
    """``value`` as text for a person: :func:`~sequence_nb.models.escape_unseen` of its
    text (ESC, zero-width, bidi controls, tabs, line breaks, no-break spaces, blank
    fillers and backslashes as escapes)."""
    text = _text(value)
    return None if text is None else escape_unseen(text)


# -- the plan file and its digest --------------------------------------------------------------


def _json_default(value: Any) -> str:
    """Values JSON lacks (decimals, durations) as text, the same way every time."""
    return str(value)


def _digest_of(plan: ChangePlan, version: int = PLAN_FILE_SCHEMA_VERSION) -> str:
    """sha256 over the plan's canonical form: a header, then one line a row of
    ``[id, changes, before, body]`` with keys sorted and values as a plan file holds
    them, so a plan and the same plan loaded from its file agree.

    The header of schema version 2 holds every other part of the file (the layout,
    server, API version, plan id, creation time, ids added and removed, ignored
    columns, notes); version 1's held the server and API version only.
    """
    header: list[Any] = [plan.base_url, plan.api_version]
    if version != 1:
        header = [
            PLAN_FILE_FORMAT,
            version,
            *header,
            plan.plan_id,
            plan.created_at,
            plan.added_ids,
            plan.removed_ids,
            plan.ignored_columns,
            plan.notes,
        ]
    digest = hashlib.sha256(orjson.dumps(header))
    for row in plan.rows:
        digest.update(b"\n")
        digest.update(_canonical_line(row))
    return "sha256:" + digest.hexdigest()


def _file_digest(plan: ChangePlan, version: int) -> str:
    """The digest of a plan read from a file, or a :class:`PlanFileError` naming the part
    of its header that no JSON writer can write (a lone surrogate such as ``\\ud800``)."""
    try:
        return _digest_of(plan, version)
    except orjson.JSONEncodeError:
        header = ("plan_id", "created_at", "base_url", "api_version", "added_ids")
        for part in (*header, "removed_ids", "ignored_columns", "notes"):
            try:
                orjson.dumps(getattr(plan, part))
            except orjson.JSONEncodeError:
                raise PlanFileError(
                    "holds a lone surrogate (an escape such as \\ud800 alone), which is no "
                    "Unicode text: no plan holds one",
                    field=part,
                ) from None
        raise


def _canonical_line(row: RowChange) -> bytes:
    line = [
        row.id,
        [[c.column, c.old, c.new] for c in row.changes],
        orjson.loads(row.before_json),
        orjson.loads(row.body_json),
    ]
    if row.action != "update":  # an update's line is as it always was (older digests hold)
        line.append(row.action)
    return orjson.dumps(line, option=orjson.OPT_SORT_KEYS, default=_json_default)


def _row_document(row: RowChange) -> dict[str, Any]:
    document = {
        "id": row.id,
        "legal_name": row.legal_name,
        "changes": [{"column": c.column, "old": c.old, "new": c.new} for c in row.changes],
        "before": orjson.Fragment(row.before_json),
        "body": orjson.Fragment(row.body_json),
        "problems": [{"column": c, "message": m} for c, m in row.problems],
    }
    if row.action != "update":
        document["action"] = row.action
    return document


class _FilePart(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _ChangeEntry(_FilePart):
    column: str
    old: Any
    new: Any


class _ProblemEntry(_FilePart):
    column: str
    message: str


class _NoteEntry(_FilePart):
    id: str | None
    column: str
    message: str


class _RowEntry(_FilePart):
    id: str
    legal_name: Any  # shown only; files of version 1 may hold a number here
    changes: list[_ChangeEntry]
    before: dict[str, Any]
    body: dict[str, Any]
    problems: list[_ProblemEntry]
    action: Action = "update"


class _PlanFile(_FilePart):
    """The layout of a plan file, schema versions 1 and 2 (they differ in the digest)."""

    format: Literal["sequence_nb plan"]
    schema_version: int
    digest: str
    plan_id: str
    created_at: str
    base_url: str | None
    api_version: str | None
    added_ids: list[str | None]
    removed_ids: list[str]
    ignored_columns: list[str]
    notes: list[_NoteEntry]
    rows: list[_RowEntry]

    @field_validator("schema_version")
    @classmethod
    def _readable(cls, version: int) -> int:
        if version not in _READABLE_VERSIONS:
            readable = " and ".join(map(str, _READABLE_VERSIONS))
            raise ValueError(f"is {version}; this sequence_nb reads versions {readable}")
        return version


def _parsed_plan_file(data: bytes | str) -> _PlanFile:
    """The file's document, or a :class:`PlanFileError` naming the first part at fault.

    Strict: ``schema_version`` is the integer itself (not ``true`` or ``1.0``), and
    no part of the file is left unchecked or unknown.
    """
    document = _json_document(data)
    try:
        return _PlanFile.model_validate(document, strict=True)
    except ValidationError as exc:
        raise _file_error(exc, document) from None


def _json_document(data: bytes | str) -> Any:
    """The JSON value of ``data``, refusing what two readers could read differently: a
    key repeated in one object (most readers keep the last, a viewer may show the
    first), NaN and Infinity, and bytes that are not UTF-8."""
    text = data
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanFileError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except PlanFileError:
        raise
    except json.JSONDecodeError as exc:
        raise PlanFileError(
            f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # such as an integer of more digits than Python reads
        raise PlanFileError(f"not JSON a plan file holds ({exc})") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise PlanFileError(
                f"holds the key {key!r} more than once in one object: a reader may see "
                "one of its values and the loader another"
            )
        seen.add(key)
    return document


def _no_constant(name: str) -> Any:
    raise PlanFileError(f"holds {name}, which is not JSON")


def _file_error(exc: ValidationError, document: Any) -> PlanFileError:
    errors = exc.errors(include_url=False, include_input=False)
    loc = errors[0]["loc"]
    field = ".".join(str(part) for part in loc)
    row = None
    if len(loc) >= 2 and loc[0] == "rows" and isinstance(loc[1], int):
        row = _row_name(document, loc[1])
    details = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: "
        + error["msg"].split(" or instance of ")[0]  # not the name of a class of this module
        for error in errors[:5]
    )
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return PlanFileError(
        f"not a plan file this sequence_nb reads: {details}{more}", row=row, field=field
    )


def _row_name(document: Any, index: int) -> str:
    """The customer id of row ``index`` when the file says one, else its position."""
    try:
        customer_id = document["rows"][index]["id"]
    except (LookupError, TypeError):
        customer_id = None
    return customer_id if isinstance(customer_id, str) else f"#{index}"


def _checked_rows(entries: Sequence[_RowEntry], version: ApiVersion) -> tuple[RowChange, ...]:
    """Each row rebuilt from its before-image and changes, refused where the file differs.

    A customer listed twice is refused also when the ids differ only in letter case or
    surrounding spaces (a server may take them for one customer).
    """
    seen: dict[str, int] = {}
    rows = []
    for index, entry in enumerate(entries):
        key = entry.id.strip().casefold()
        if key in seen:
            raise PlanFileError(
                f"lists this customer more than once (rows {seen[key]} and {index})",
                row=entry.id,
                field="id",
            )
        seen[key] = index
        rows.append(_checked_row(entry, version))
    return tuple(rows)


def _checked_row(entry: _RowEntry, version: ApiVersion) -> RowChange:
    """The row a planner makes of ``entry``'s before-image and changes, if the file agrees."""
    if entry.action == "archive":
        return _checked_archive(entry, version)
    problems = tuple((p.column, p.message) for p in entry.problems)
    _check_identity(entry)
    changes = [FieldChange(c.column, c.old, c.new) for c in entry.changes]
    try:
        uncastable, misfits = _flagged_columns(changes, problems)
        _check_changes(entry, version)
        _check_refused_columns(entry, problems, misfits, version)
        row = _built_row(entry.id, dict(entry.before), changes, version, uncastable, misfits)
        _canonical_line(row)  # every value must serialize as it would be saved
    except orjson.JSONEncodeError as exc:
        raise PlanFileError(
            f"holds a value that cannot be written back as JSON ({exc})", row=entry.id
        ) from None
    _check_rebuilt(entry, row, problems, version)
    return row


def _check_rebuilt(
    entry: _RowEntry, row: RowChange, problems: tuple[tuple[str, str], ...], version: ApiVersion
) -> None:
    """The stored body, problems and legal name are the ones the rebuilt ``row`` has."""
    body = row.body
    if body != entry.body:
        differing = sorted(k for k in {*body, *entry.body} if body.get(k) != entry.body.get(k))
        raise PlanFileError(
            f"the stored body differs at {', '.join(differing)} from the body its before-image "
            "and changes make: it is not what the preview showed",
            row=entry.id,
            field="body",
        )
    if row.problems != problems:
        raise PlanFileError(
            f"the stored problems {list(problems)} are not the ones its before-image and "
            f"changes give: {list(row.problems)}",
            row=entry.id,
            field="problems",
        )
    if not _same_json(entry.legal_name, row.legal_name) and not _same_json(
        entry.legal_name, entry.before.get(version.legal_name_column)
    ):
        raise PlanFileError(
            f"says {entry.legal_name!r} but its before-image says {row.legal_name!r}",
            row=entry.id,
            field="legal_name",
        )


def _check_identity(entry: _RowEntry) -> None:
    """A row writes to the customer its before-image is of, and changes something."""
    held = entry.before.get("id")
    if held != entry.id:
        raise PlanFileError(
            f"the row is for customer {entry.id} but its before-image is of {held!r}",
            row=entry.id,
            field="id",
        )
    if not entry.changes:
        raise PlanFileError("lists no changes", row=entry.id, field="changes")


def _check_changes(entry: _RowEntry, version: ApiVersion) -> None:
    """Each column changes once, visibly, from the value the before-image holds."""
    columns: set[str] = set()
    for change in entry.changes:
        if change.column in columns:
            raise PlanFileError("is changed twice", row=entry.id, field=f"changes.{change.column}")
        columns.add(change.column)
        unseen = _unseen_change(change)
        if unseen:
            raise PlanFileError(unseen, row=entry.id, field=f"changes.{change.column}")
        if _refusal(change.column, version) is not None:
            continue  # read-only and unknown columns: see _check_refused_columns
        held = get_path(entry.before, change.column)
        if not _same_json(change.old, held):
            raise PlanFileError(
                f"says the old value is {change.old!r} but the before-image holds {held!r}",
                row=entry.id,
                field=f"changes.{change.column}.old",
            )


def _unseen_change(change: _ChangeEntry) -> str | None:
    """Why a change no reader could see is not one :func:`plan_updates` makes, or ``None``."""
    old, new = change.old, change.new
    if old in (None, "") and new in (None, ""):
        return "changes nothing: an empty text and a null are the same value"
    if _same_json(old, new):
        return "changes nothing: the old and new values are the same"
    if isinstance(old, str) and isinstance(new, str) and _nfc(old) == _nfc(new):
        return (
            f"changes {old!r} into the same text in another Unicode normal form "
            "(NFC/NFD), which looks the same in every preview: no plan makes that change"
        )
    return None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _same_json(left: Any, right: Any) -> bool:
    """Whether two JSON values are the same, type for type (``1``, ``1.0`` and ``true``
    differ, though Python finds them equal)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same_json(v, right[k]) for k, v in left.items())
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same_json, left, right))
    return bool(left == right)


def _check_refused_columns(
    entry: _RowEntry,
    problems: tuple[tuple[str, str], ...],
    misfits: Collection[str],
    version: ApiVersion,
) -> None:
    """A change to a column no plan sends (read-only or unknown) is refused, unless the
    file reports it as the planner does, on a row that is never sent."""
    for change in entry.changes:
        if change.column in misfits:
            continue  # reported as a value of another type, on a row never sent
        refusal = _refusal(change.column, version)
        if refusal and (change.column, refusal) not in problems:
            raise PlanFileError(
                f"changes {change.column!r}, which {refusal}: no plan sends it",
                row=entry.id,
                field=f"changes.{change.column}",
            )


# -- the HTML view ----------------------------------------------------------------------------


def render_plan_html(plan: ChangePlan) -> str:
    """The plan for a notebook: counts, old struck through, new highlighted, an invalid
    row in red with its new value marked refused; ids on one line, shortened (the whole
    id on hover)."""
    if not plan:
        return f'<div class="snb-plan"><b>{html.escape(plan.summary().capitalize())}.</b></div>'
    parts = [HTML_STYLE, '<div class="snb-plan">', f"<p><b>{html.escape(plan.summary())}</b>"]
    parts.append(f' <span class="snb-digest">digest {html.escape(plan.digest)}</span></p>')
    parts.append(
        '<table class="snb-changes"><thead><tr><th>id</th><th>legal name</th><th>column</th>'
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
                row.action
                if row.sendable
                else _cell(
                    reasons.get(change.column) or "; ".join(f"{c} {m}" for c, m in row.problems)
                )
            )
            parts.append(
                f"<tr{css}>{id_cell(row.id, _shown(row.id))}<td>{_cell(row.legal_name)}</td>"
                f"<td>{_cell(change.column)}</td><td><del>{_cell(change.old)}</del></td>"
                f"<td><ins>{_cell(change.new)}</ins></td><td>{status}</td></tr>"
            )
    parts.append("</tbody></table>")
    total = sum(len(row.changes) for row in plan.rows)
    if total > shown:
        parts.append(f"<p>… and {total - shown} more changes: see plan.preview().</p>")
    notes = [*plan.notes]
    if notes:
        items = "".join(f"<li>{_cell(i)} {_cell(c)}: {_cell(m)}</li>" for i, c, m in notes[:50])
        parts.append(f"<p>Not sent:</p><ul>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)


def _cell(value: Any) -> str:
    """A value for an HTML cell: shown escaped (:func:`_shown`), then HTML-escaped."""
    text = _shown(value)
    return '<span class="snb-null">empty</span>' if text is None else html.escape(text)
