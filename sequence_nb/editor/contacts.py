"""The editor's contact edits (API version 2024-07-30), kept apart from any widget.

:class:`ContactEdits` holds a contacts frame (:func:`~sequence_nb.contacts.fetch_contacts`)
and what a person did to it: cells edited by row key, rows added, rows deleted.
A row's key is its contact id; an added row gets ``new 1``, ``new 2``, ...
:meth:`ContactEdits.edited` is the edited contacts frame that
:func:`~sequence_nb.plan.plan_updates` takes next to the original, so contact edits
join the customers' plan: one plan, one preview, one push.

A contacts frame cannot say "this customer has no contacts any more" (a customer
without rows is left alone), so deleting a customer's last contact is refused here
instead of being silently dropped from the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import polars as pl

from sequence_nb.contacts import CUSTOMER_ID
from sequence_nb.editor.state import ReadOnlyColumnError
from sequence_nb.fields import ApiVersion
from sequence_nb.quality import check_contacts

__all__ = ["NEW_KEY", "ContactEditError", "ContactEdits"]

#: How an added row's key starts (a contact id is a UUID, never this).
NEW_KEY: Final = "new "


class ContactEditError(ValueError):
    """A contact edit the plan could not carry (unknown row, last contact deleted, ...)."""


class ContactEdits:
    """Edits of one contacts frame: cells by row key, added rows, deleted rows."""

    def __init__(self, original: pl.DataFrame, version: ApiVersion) -> None:
        if version.contacts_field is None:
            raise ValueError(
                f"API version {version.name} has no contacts; contacts come with 2024-07-30 "
                "(open the editor with a client or api_version= of that version)"
            )
        needed = (CUSTOMER_ID, "id", *version.contact_body_fields)
        missing = [c for c in needed if c not in original.columns]
        if missing:
            raise ValueError(f"the contacts frame has no {', '.join(missing)} column")
        self.version = version
        self.editable: tuple[str, ...] = version.contact_body_fields
        self.edits: dict[str, dict[str, Any]] = {}
        self.added: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.problems: dict[str, dict[str, str]] = {}
        self._counter = 0
        self._load(original)

    def _load(self, original: pl.DataFrame) -> None:
        ids = original.get_column("id")
        if ids.null_count() or ids.n_unique() != original.height:
            raise ValueError(
                "the contacts frame has rows without an id or repeats an id: each contact the "
                "account holds has one id (add new contacts in the editor)"
            )
        if original.get_column(CUSTOMER_ID).null_count():
            raise ValueError("the contacts frame has rows without a customerId")
        self.original = original
        self.rows: dict[str, dict[str, Any]] = {
            str(row["id"]): row for row in original.iter_rows(named=True)
        }
        self.refresh_problems()

    # -- reading -------------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The contacts frame's columns, in order."""
        return list(self.original.columns)

    def keys(self) -> list[str]:
        """Row keys in the order shown: the original rows left, then the added ones."""
        kept = [key for key in self.rows if key not in self.deleted]
        return kept + list(self.added)

    def holds(self, key: str) -> bool:
        """Whether ``key`` is a row shown now (not deleted)."""
        return key in self.added or (key in self.rows and key not in self.deleted)

    def customer_of(self, key: str) -> str:
        """The customer id of a row."""
        return str(self._row(key)[CUSTOMER_ID])

    def value(self, key: str, column: str) -> Any:
        """A row's current value (the edit if any)."""
        row = self._row(key)
        edits = self.edits.get(key, {})
        return edits[column] if column in edits else row.get(column)

    def changed(self) -> bool:
        """Whether anything was edited, added or deleted."""
        return bool(self.edits or self.added or self.deleted)

    def counts(self) -> dict[str, int]:
        """Rows shown, rows edited, added, deleted, and rows with problems."""
        return {
            "rows": len(self.rows) - len(self.deleted) + len(self.added),
            "changed": len(self.edits),
            "added": len(self.added),
            "deleted": len(self.deleted),
            "problems": len(self.problems),
        }

    def changed_customers(self) -> set[str]:
        """The customers whose contacts were edited, added to or deleted from."""
        keys = set(self.edits) | set(self.added)
        found = {self.customer_of(key) for key in keys}
        return found | {str(self.rows[key][CUSTOMER_ID]) for key in self.deleted}

    def edited(self) -> pl.DataFrame:
        """The edited contacts frame: rows left (edited), then added rows with no id."""
        return self._frame(self.keys())

    def _frame(self, keys: list[str]) -> pl.DataFrame:
        """The edited rows of these keys, in the original frame's columns and dtypes."""
        rows = [{**self._row(key), **self.edits.get(key, {})} for key in keys]
        text = {name: pl.String() for name in self.columns}
        frame = pl.DataFrame(
            [{c: _text(row.get(c)) for c in self.columns} for row in rows],
            schema=text,
            orient="row",
        )
        return frame.with_columns(
            _fitted(frame.get_column(name), dtype)
            for name, dtype in self.original.schema.items()
            if dtype != pl.String()
        )

    def marks(self, key: str) -> str:
        """The row's marks string (as :mod:`~sequence_nb.editor.state` writes them)."""
        codes = [f"c:{column}" for column in self.edits.get(key, {})]
        if key in self.added:
            codes += [f"c:{column}" for column in self.editable]
        codes += [f"p:{column}" for column in self.problems.get(key, {})]
        if key in self.added:
            label = "new"
        elif key in self.edits:
            label = "changed"
        elif key in self.problems:
            label = "problem"
        else:
            label = ""
        if not codes and not label:
            return ""
        return label + "|" + "".join(f"{code}|" for code in codes)

    def messages(self, key: str) -> list[tuple[str, str]]:
        """``(kind, text)`` lines about one row, as ``EditState.messages`` gives them."""
        lines: list[tuple[str, str]] = []
        if key in self.added:
            lines.append(("c", f"new contact of customer {self.customer_of(key)}"))
        for column, new in self.edits.get(key, {}).items():
            old = self.rows[key].get(column)
            lines.append(("c", f"{column}: {_quoted(old)} → {_quoted(new)}"))
        lines += [("p", text) for text in self.problems.get(key, {}).values()]
        return lines

    # -- editing -------------------------------------------------------------------------------

    def edit(self, key: str, column: str, value: Any) -> bool:
        """Edit one cell of a row; False when the value was already there."""
        if column not in self.editable:
            raise ReadOnlyColumnError(
                f"{column} is read-only in the contacts view: only "
                f"{', '.join(self.editable)} are sent in a contact"
            )
        row = self._row(key)
        self._refuse_archived(key, "edited")
        value = _normalized(value, row.get(column))
        if value == self.value(key, column):
            return False
        if key in self.added:
            row[column] = value
        else:
            edits = self.edits.setdefault(key, {})
            if value == row.get(column):
                edits.pop(column, None)
            else:
                edits[column] = value
            if not edits:
                del self.edits[key]
        self.refresh_problems([self.customer_of(key)])
        return True

    def add(self, customer_id: str, values: Mapping[str, Any] | None = None) -> str:
        """Add a contact to a customer; its row key."""
        values = dict(values or {})
        unknown = [c for c in values if c not in self.editable]
        if unknown:
            raise ContactEditError(
                f"a new contact takes {', '.join(self.editable)}, not {', '.join(unknown)}"
            )
        self._counter += 1
        key = f"{NEW_KEY}{self._counter}"
        row: dict[str, Any] = dict.fromkeys(self.columns)
        row[CUSTOMER_ID] = customer_id
        row.update({c: _normalized(v, None) for c, v in values.items()})
        self.added[key] = row
        self.refresh_problems([customer_id])
        return key

    def delete(self, key: str) -> None:
        """Delete a row: an added row is dropped, a contact is removed by the plan.

        Deleting a customer's last contact is refused: the contacts frame cannot say
        a customer has none left, so the plan would leave it as it is.
        """
        customer = self.customer_of(key)
        self._refuse_archived(key, "deleted")
        if key in self.added:
            del self.added[key]
        else:
            left = [k for k in self.keys() if k != key and self.customer_of(k) == customer]
            if not left:
                raise ContactEditError(
                    f"contact {key} is customer {customer}'s last contact: a plan cannot remove "
                    "every contact of a customer; add the replacement first, then delete this one"
                )
            self.deleted.add(key)
            self.edits.pop(key, None)
        self.refresh_problems([customer])

    def revert(self) -> None:
        """Drop every contact edit, added row and deletion."""
        customers = self.changed_customers()
        self.edits.clear()
        self.added.clear()
        self.deleted.clear()
        self.refresh_problems(customers)

    def rebase(self, customer_ids: Iterable[str], fresh: pl.DataFrame) -> None:
        """Take ``fresh`` (the customers' contacts read after a push) as the original of
        these customers, and drop their edits, added and deleted rows."""
        wanted = set(customer_ids)
        for key in [k for k in self.added if self.added[k][CUSTOMER_ID] in wanted]:
            del self.added[key]
        keep = self.original.filter(~pl.col(CUSTOMER_ID).is_in(list(wanted)))
        fresh = fresh.select(self.columns).cast(self.original.schema, strict=False)
        merged = pl.concat([keep, fresh], how="vertical_relaxed")
        order = {c: i for i, c in enumerate(dict.fromkeys(self.original[CUSTOMER_ID]))}
        merged = merged.with_row_index("_n").sort(
            pl.col(CUSTOMER_ID).replace_strict(order, default=len(order), return_dtype=pl.Int64),
            "_n",
        )
        self.deleted = {k for k in self.deleted if self.rows[k][CUSTOMER_ID] not in wanted}
        self.edits = {
            k: v for k, v in self.edits.items() if self.rows[k][CUSTOMER_ID] not in wanted
        }
        self._load(merged.drop("_n"))

    # -- problems ------------------------------------------------------------------------------

    def refresh_problems(self, customer_ids: Iterable[str] | None = None) -> None:
        """Run ``check_contacts`` on these customers' rows (all when None)."""
        keys = self.keys()
        if customer_ids is not None:
            wanted = set(customer_ids)
            keys = [k for k in keys if self._owner(k) in wanted]
            for key in [k for k in self.problems if self._owner(k) in wanted]:
                del self.problems[key]
        else:
            self.problems = {}
        frame = self._frame(keys).with_columns(pl.Series("_key", keys, dtype=pl.String))
        problems = check_contacts(frame.drop("_key"))
        for customer, column, message, value in problems.select(
            "id", "column", "message", "value"
        ).iter_rows():
            for key in _problem_keys(frame, customer, column, value):
                cells = self.problems.setdefault(key, {})
                cells[column] = f"{cells[column]} {message}" if column in cells else message

    def _refuse_archived(self, key: str, done: str) -> None:
        if self._row(key).get("archivedAt") is not None:
            raise ContactEditError(
                f"contact {key} is archived: an update body leaves archived contacts out, so "
                f"it cannot be {done} here"
            )

    def _owner(self, key: str) -> str | None:
        row = self.added.get(key) or self.rows.get(key)
        return None if row is None else str(row[CUSTOMER_ID])

    def _row(self, key: str) -> dict[str, Any]:
        if key in self.added:
            return self.added[key]
        if key in self.rows and key not in self.deleted:
            return self.rows[key]
        raise ContactEditError(f"no contact row {key!r} in the editor")


def _problem_keys(frame: pl.DataFrame, customer: str, column: str, value: str | None) -> list[str]:
    """The keys of the rows a ``check_contacts`` problem is about: the customer's rows
    holding the value (as given, or stripped; empty for a missing one), else all of the
    customer's rows (a rule of the customer's whole list, such as no PRIMARY)."""
    rows = frame.filter(pl.col(CUSTOMER_ID) == customer)
    if column in rows.columns:
        text = pl.col(column).cast(pl.String)
        if value is None or not value.strip():
            held = text.is_null() | (text.str.strip_chars() == "")
        else:
            held = (text == value) | (text.str.strip_chars() == value)
        matched = rows.filter(held)
        if not matched.is_empty():
            rows = matched
    keys: list[str] = rows.get_column("_key").to_list()
    return keys


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _fitted(series: pl.Series, dtype: pl.DataType) -> pl.Series:
    """``series`` as ``dtype`` when every value fits it, else left as text for the plan
    to report (an unknown billing preference is refused there, by row)."""
    try:
        return series.cast(dtype, strict=True)
    except (pl.exceptions.PolarsError, ValueError):
        return series


def _normalized(value: Any, original: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    value = str(value)
    if value == "" and original is None:
        return None
    return value


def _quoted(value: Any) -> str:
    return "empty" if value is None else repr(value)
