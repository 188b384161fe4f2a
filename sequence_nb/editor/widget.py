"""``CustomerEditor``: edit customers in a grid, preview the plan and push it, in one widget.

The widget only wires things together: edits go to :class:`~.state.EditState`
(keyed by customer id), validation and bodies come from ``plan``, problems from
``quality.check`` and writes from ``ChangePlan.apply``.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import ipywidgets as widgets
import polars as pl

from sequence_nb import fields
from sequence_nb.contacts import fetch_contacts
from sequence_nb.editor.contacts import ContactEditError, ContactEdits
from sequence_nb.editor.grid import (
    COLOURS,
    LABEL_CODES,
    STATUS,
    EditorGrid,
    column_widths,
    display_value,
    display_values,
    grid_frame,
    local_columns,
    make_grid,
    status_text,
)
from sequence_nb.editor.state import (
    FAILED_OUTCOMES,
    EditState,
    ReadOnlyColumnError,
    outcome_phrase,
    plural,
    read_only_message,
)
from sequence_nb.errors import SequenceError
from sequence_nb.fields import ApiVersion
from sequence_nb.models import escape_unseen
from sequence_nb.plan import ChangePlan
from sequence_nb.push import PushResult
from sequence_nb.views import id_cell

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient
    from sequence_nb.journal import Journal

__all__ = ["CONTACT_KEY", "CustomerEditor"]

#: The contacts grid's row header: the contact id (``new 1``... for an added contact).
CONTACT_KEY: Final = "contact"
#: The contacts grid's columns after the status (those the frame has): the customer (id,
#: then its legal name, read-only), the editable fields, and when the contact was last updated.
_CONTACT_SHOWN: Final = (
    "customerId",
    "legalName",
    "name",
    "email",
    "billingPreference",
    "updatedAt",
)

#: Rows updated one message each; more than this and the shown rows are sent again.
SYNC_LIMIT: Final = 20
#: Why an edit made while the grid's rows were being replaced is not taken.
_STALE_EDIT: Final = (
    "The grid was changing its rows when that edit was made, so it may have been meant "
    "for another customer: it was ignored. Please make it again."
)
#: Rows of a push result shown below the grid (all are in ``editor.result``).
_RESULT_ROW_LIMIT: Final = 500

_SHOW_OPTIONS: Final = (("All rows", "all"), ("Changed", "changed"), ("Problems", "problems"))
#: The legend uses the words of the row-status column (which are the push result's).
_LEGEND: Final = (
    ("c", "changed", "Edited, not pushed yet; Preview shows what would be sent"),
    ("x", "invalid", "The edit breaks a rule, so this row is not sent: click it to read why"),
    ("p", "problem", "check() found a problem in this value"),
    (
        "f",
        "conflict / failed",
        "The last push of this row did not land (conflict, failed, unconfirmed or "
        "side-effects): click it to read why",
    ),
    ("u", "updated", "Written to Sequence by the last push"),
)
_TONES: Final = {
    "info": ("#e7f5ff", "#1864ab"),
    "ok": ("#ebfbee", "#2b8a3e"),
    "warn": ("#fff9db", "#8a6100"),
    "error": ("#fff5f5", "#c92a2a"),
}
_STYLE: Final = """<style>
.snb-editor-status { font-size: 13px; color: var(--jp-ui-font-color1, #212529); }
.snb-editor-status b { font-variant-numeric: tabular-nums; }
.snb-editor-status .snb-sep { color: #adb5bd; margin: 0 6px; }
.snb-editor-legend { font-size: 12px; color: var(--jp-ui-font-color2, #495057); }
.snb-chip { display: inline-block; padding: 1px 8px; margin-right: 6px; border-radius: 9px;
  font-size: 12px; }
.snb-editor-msg { font-size: 13px; padding: 6px 10px; border-radius: 4px; line-height: 1.45; }
.snb-editor-msg ul { margin: 2px 0 0 0; padding-left: 18px; }
.snb-editor-hint { font-size: 12.5px; color: var(--jp-ui-font-color2, #495057); }
.snb-editor .snb-result { font-size: 13px; margin-top: 4px; }
.snb-editor .snb-result table { border-collapse: collapse; font-size: 13px; }
.snb-editor .snb-result th, .snb-editor .snb-result td {
  padding: 2px 10px; text-align: left; border-bottom: 1px solid #e9ecef; vertical-align: top; }
.snb-editor .snb-result td.snb-id { white-space: nowrap; }
.snb-editor .snb-result td.snb-id code { font-size: 12px; }
.snb-editor .snb-result .snb-chip { margin: 0; white-space: nowrap; }
</style>"""


class CustomerEditor(widgets.VBox):  # type: ignore[misc]
    """An editable grid of customers with preview, dry run and push.

    ``df`` is a customer frame (``fetch_customers``/``to_frame``); ``client`` enables
    Dry run and Push. The editor speaks the client's API version (``api_version``
    names it when there is no client; None: ``$SEQUENCE_API_VERSION``, else the
    seed's): that version decides the columns a person may edit (in 2024-07-30 also
    ``address.state`` and every ``customProperties.<key>`` column) and builds the plans.
    ``columns`` picks the columns shown (default: the editable ones the frame has;
    read-only and unknown columns may be added, and refuse edits). ``contacts``
    (2024-07-30: a frame of ``fetch_contacts``) adds a Contacts tab: its names, emails
    and billing preferences are editable, contacts can be added and deleted, and the
    contact edits join the customers' edits in one plan, one preview and one push.
    ``problems`` is ``check(df)`` when you already have it (else it is run).
    ``journal``, ``on_conflict``, ``max_workers`` and ``progress`` go to
    ``ChangePlan.apply``. ``page_size`` caps the rows sent to the browser at once
    (``None``: all): a larger selection is paged, and sorting a column of the grid then
    sorts the whole selection, here, before the page is cut.

    From Python: :attr:`edited`, :attr:`plan`, :attr:`result`, :meth:`edit`,
    :meth:`apply_expression`, :meth:`revert`, :meth:`preview`, :meth:`dry_run`
    and :meth:`push`.
    """

    def __init__(
        self,
        df: pl.DataFrame,
        client: SequenceClient | None = None,
        *,
        columns: Sequence[str] | None = None,
        problems: pl.DataFrame | None = None,
        contacts: pl.DataFrame | None = None,
        api_version: str | ApiVersion | None = None,
        journal: Journal | str | Path | None = None,
        on_conflict: Literal["skip", "overwrite"] = "skip",
        max_workers: int = 8,
        progress: bool | None = None,
        page_size: int | None = 10_000,
        height: str = "440px",
    ) -> None:
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1 (or None for every row)")
        super().__init__(layout=widgets.Layout(width="100%"))
        self.add_class("snb-editor")
        self.client = client
        self.journal = journal
        self.on_conflict: Literal["skip", "overwrite"] = on_conflict
        self.max_workers = max_workers
        self.progress = progress
        version = _editor_version(client, api_version)
        self.api_version = version
        self.columns = _shown_columns(df, columns, version)
        self.contacts = None if contacts is None else ContactEdits(contacts, version)
        self.state = EditState(df, problems, api_version=version, contacts=self.contacts)
        self.result: PushResult[ChangePlan] | None = None
        self.version = 0
        self._plan_cache: tuple[int, ChangePlan] | None = None
        self._previewed: tuple[int, ChangePlan] | None = None
        self._selected: str | None = None
        self._busy = False
        self._progress_shown = False
        self.page_size = page_size
        self._page = 0
        self._sort: tuple[str, bool] | None = None
        self._selection = self.state.ids
        self._rows_shown = self._page_of(self._selection)
        self._shown_at = self._positions(self._rows_shown)
        # Columns whose originals the browser holds, so it colours an edit by itself.
        self._local = local_columns([c for c in self.columns if version.is_editable(c)])
        self.grid = make_grid(
            self._frame(self._rows_shown), self.columns, height, local=self._local
        )
        self.grid.on_cell_change(self._on_cell_change)
        self.grid.on_cell_click(self._on_cell_click)
        self.grid.observe(self._on_transforms, names="_transforms")
        self._contact_selected: str | None = None
        self.contacts_grid: EditorGrid | None = None
        self.tabs: widgets.Tab | None = None
        self.contact_columns: list[str] = []
        if self.contacts is not None:
            held = self.contacts.columns
            self.contact_columns = [c for c in _CONTACT_SHOWN if c == "legalName" or c in held]
            self.contacts_grid = make_grid(
                self._contacts_frame(), self.contact_columns, height, key=CONTACT_KEY
            )
            self.contacts_grid.on_cell_change(self._on_contact_change)
            self.contacts_grid.on_cell_click(self._on_contact_click)
        self._build_controls()
        self.children = self._layout()
        self._refresh()

    # -- public API ----------------------------------------------------------------------------

    @property
    def original(self) -> pl.DataFrame:
        """The frame the edits apply to (after a push, with the pushed values in it)."""
        return self.state.original

    @property
    def edited(self) -> pl.DataFrame:
        """The edited polars frame: the original with every hand and bulk edit."""
        return self.state.edited()

    @property
    def plan(self) -> ChangePlan:
        """The change plan of the current edits (the same object until the next edit)."""
        if self._plan_cache is None or self._plan_cache[0] != self.version:
            self._plan_cache = (self.version, self.state.plan())
        return self._plan_cache[1]

    @property
    def problems(self) -> dict[str, dict[str, str]]:
        """Data problems by customer id and column (from ``check``)."""
        return self.state.problems

    def counts(self) -> dict[str, int]:
        """Rows, changed rows, invalid rows, rows with data problems, failed rows."""
        return self.state.counts()

    def edit(self, customer_id: str, column: str, value: Any) -> bool:
        """Edit one cell by customer id, as a hand edit would; False if nothing changed."""
        if customer_id not in self.state.position:
            raise KeyError(f"no customer {customer_id!r} in the editor")
        changed = self.state.edit(customer_id, column, value)
        if changed:
            self._after_edit({customer_id}, select=customer_id)
        return changed

    def apply_expression(self, *exprs: Any, **named: Any) -> int:
        """Apply polars expressions to the edited frame (``with_columns`` arguments) and
        put the result into the grid as edits; the number of cells changed.

        Hand and bulk edits form one plan. Changing a read-only or unknown column, or
        adding a column, raises ``ReadOnlyColumnError`` and applies nothing; in 2024-07-30
        an added ``customProperties.<key>`` column is the exception (see :meth:`add_column`).
        """
        current = self.state.edited()
        updated = current.with_columns(_flattened(exprs), **named)
        added = [c for c in updated.columns if c not in current.columns]
        if added and all(self.api_version.keyed_column(c) is not None for c in added):
            current = current.with_columns(_empty_columns(added))
        changes, cells = _differences(current, updated, self.api_version)
        if added:
            self.add_column(*added)
        touched = self.state.edit_many(changes)
        touched |= self.state.refresh_problems()
        self._after_edit(touched)
        self._say(
            "info",
            f"Applied: {plural(cells, 'cell')} changed in {plural(len(changes), 'row')}.",
        )
        return cells

    def add_column(self, *names: str) -> None:
        """Add empty ``customProperties.<key>`` columns (2024-07-30) to the grid: a value
        written in one creates that custom property on the customer when pushed."""
        for name in names:
            if self.api_version.keyed_column(name) is None:
                raise ReadOnlyColumnError(
                    f"{name} cannot be added: only a custom property column "
                    f"(customProperties.<key>) can be added in API version {self.api_version.name}"
                )
            if name in self.state.original.columns:
                raise ValueError(f"the editor already has a column {name!r}")
        if not names:
            return
        self.state.add_columns(list(names))
        self.columns += list(names)
        self.grid.column_widths = column_widths(self.columns)
        self._send_page()

    def revert(self, customer_id: str | None = None) -> int:
        """Drop the edits of one customer, or of all (contact edits too) when
        ``customer_id`` is None; the number of customers reverted."""
        ids = self.state.revert(None if customer_id is None else [customer_id])
        contacts = self.contacts
        if customer_id is None and contacts is not None and contacts.changed():
            ids |= contacts.changed_customers()
            contacts.revert()
            self._send_contacts()
        if ids:
            self._after_edit(ids)
        return len(ids)

    @property
    def edited_contacts(self) -> pl.DataFrame | None:
        """The edited contacts frame (None when the editor was opened without contacts)."""
        return None if self.contacts is None else self.contacts.edited()

    def edit_contact(self, key: str, column: str, value: Any) -> bool:
        """Edit a contact's ``name``, ``email`` or ``billingPreference`` by its row key
        (the contact id; ``new 1``... for an added one); False if nothing changed."""
        contacts = self._need_contacts()
        changed = contacts.edit(key, column, value)
        if changed:
            self._after_contact_edit(key, resend=False)
        return changed

    def add_contact(self, customer_id: str, **values: Any) -> str:
        """Add a contact to a customer the editor holds (``name=``, ``email=``,
        ``billingPreference=``); the new row's key."""
        contacts = self._need_contacts()
        if customer_id not in self.state.position:
            raise KeyError(
                f"no customer {customer_id!r} in the editor: a contact is added to one of its "
                "customers (the plan builds the body on that customer's record)"
            )
        key = contacts.add(customer_id, values)
        self._after_contact_edit(key, resend=True)
        return key

    def delete_contact(self, key: str) -> None:
        """Delete a contact row: the push removes the contact from its customer."""
        contacts = self._need_contacts()
        customer = contacts.customer_of(key)
        contacts.delete(key)
        self._after_contact_edit(None, resend=True)
        self._say(
            "info", f"Deleted contact {html.escape(key)} of customer {html.escape(customer)}."
        )

    def show(self, text: str | None = None, rows: str | None = None) -> None:
        """Filter the grid: ``text`` anywhere in the id or shown columns; ``rows`` is
        ``"all"``, ``"changed"`` or ``"problems"``."""
        if text is not None:
            self.filter_box.value = text
        if rows is not None:
            self.show_toggle.value = rows
        self._show_rows()

    def preview(self) -> ChangePlan:
        """Mark the plan's rows in the grid, allow Push, and return the plan.

        Called from code, the plan is what you display (the widget says so in one line
        instead of showing the table twice); the Preview button shows it below the grid.
        """
        return self._preview(show=False)

    def dry_run(self) -> PushResult[ChangePlan]:
        """Preview, then check every planned row against the API without writing."""
        return self._apply(self._preview(show=False), dry_run=True, show=False)

    def push(self) -> PushResult[ChangePlan]:
        """Push the previewed plan and return the result (the Confirm button shows it
        below the grid; called from code, the result is what you display)."""
        plan = self._previewed_plan()
        if plan is None:
            raise RuntimeError("preview the current edits before pushing them")
        return self._apply(plan, dry_run=False, show=False)

    def _preview(self, *, show: bool) -> ChangePlan:
        plan = self.plan
        self._clear_progress()
        touched = self.state.adopt_plan(plan) | self.state.refresh_problems()
        self._previewed = (self.version, plan)
        self._sync(touched)
        summary = html.escape(plan.summary())
        if show:
            self.output.value = plan._repr_html_()  # its first line is the summary
            self.message.value = ""
        else:
            self.output.value = ""
            self._say("info", f"Previewed from code: {summary}. Press Preview to show it here.")
        self._refresh()
        return plan

    # -- grid events ---------------------------------------------------------------------------

    def _on_cell_change(self, event: dict[str, Any]) -> None:
        """A cell edited in the browser: ``row`` is its position in the frame the grid was
        given, so the customer comes from that frame's ids, never from the view."""
        customer = self.grid.id_at(event.get("row"))
        column = str(event.get("column"))
        if customer is None:
            self._say("warn", "That row is no longer in the grid; the edit was ignored.")
            return
        if self.grid.may_be_stale(event.get("row")):
            self._sync([customer])
            self._say("warn", _STALE_EDIT)
            return
        self._selected = customer
        try:
            changed = self._set_from_grid(customer, column, event.get("value"))
        except ReadOnlyColumnError as exc:
            self._sync([customer])
            self._say("error", f"{html.escape(str(exc))}. The change was reverted.")
            return
        if changed:
            self._after_edit({customer}, select=customer)
        else:  # the browser may hold text the state holds otherwise (another normal form)
            self._sync([customer])

    def _set_from_grid(self, customer: str, column: str, value: Any) -> bool:
        """Take a grid edit; a read-only cell the browser merely repeats is no edit."""
        if column == STATUS or not self.api_version.is_editable(column):
            if display_value(value) == self._shown_value(customer, column):
                return False
            if column == STATUS:
                raise ReadOnlyColumnError(f"{STATUS} is read-only: the editor writes it")
            raise ReadOnlyColumnError(read_only_message(column, self.api_version))
        return self.state.edit(customer, column, value)

    def _on_cell_click(self, event: dict[str, Any]) -> None:
        customer = self.grid.id_at(event.get("primary_key_row"))
        if customer is not None and event.get("region") in ("body", "row-header"):
            self._selected = customer
            self._show_row(customer)

    # -- the contacts view ---------------------------------------------------------------------

    def _need_contacts(self) -> ContactEdits:
        if self.contacts is None:
            raise RuntimeError(
                "the editor has no contacts: open it with contacts=fetch_contacts(...)"
            )
        return self.contacts

    def _contacts_frame(self) -> Any:
        contacts = self._need_contacts()
        keys = contacts.keys()
        edited = contacts.edited().with_columns(
            pl.Series(CONTACT_KEY, keys, dtype=pl.String),
            pl.Series(
                "legalName",
                [self._customer_name(contacts.customer_of(k)) for k in keys],
                dtype=pl.String,
            ),
        )
        marks = [contacts.marks(k) for k in keys]
        return grid_frame(edited, self.contact_columns, marks, key=CONTACT_KEY)

    def _customer_name(self, customer: str) -> str | None:
        return self.state.legal_name(customer) if customer in self.state.position else None

    def _contact_values(self, key: str) -> list[str | None]:
        contacts = self._need_contacts()
        values: list[str | None] = [contacts.marks(key)]
        for column in self.contact_columns:
            if column == "legalName":
                values.append(self._customer_name(contacts.customer_of(key)))
            else:
                values.append(display_value(contacts.value(key, column)))
        return values

    def _send_contacts(self) -> None:
        if self.contacts_grid is not None:
            self.contacts_grid.show(self._contacts_frame())

    def _sync_contacts(self, customer: str) -> None:
        """Send the rows of one customer's contacts (their problems go together)."""
        grid, contacts = self.contacts_grid, self._need_contacts()
        if grid is None:
            return
        for row, key in enumerate(grid.ids):
            if contacts.holds(key) and contacts.customer_of(key) == customer:
                grid.set_row(row, self._contact_values(key))

    def _on_contact_change(self, event: dict[str, Any]) -> None:
        grid, contacts = self.contacts_grid, self._need_contacts()
        key = None if grid is None else grid.id_at(event.get("row"))
        column = str(event.get("column"))
        if key is None or not contacts.holds(key):
            self._say("warn", "That contact is no longer in the grid; the edit was ignored.")
            return
        if grid is not None and grid.may_be_stale(event.get("row")):
            self._sync_contacts(contacts.customer_of(key))
            self._say("warn", _STALE_EDIT)
            return
        self._contact_selected = key
        value = event.get("value")
        try:
            if column not in contacts.editable:
                names = [STATUS, *self.contact_columns]
                shown = self._contact_values(key)[names.index(column)] if column in names else None
                if column in names and display_value(value) == shown:
                    return  # the browser repeating a read-only cell is no edit
                raise ReadOnlyColumnError(
                    f"{column} is read-only in the contacts view: only "
                    f"{', '.join(contacts.editable)} are sent in a contact"
                )
            changed = contacts.edit(key, column, value)
        except (ReadOnlyColumnError, ContactEditError) as exc:
            self._sync_contacts(contacts.customer_of(key))
            self._say("error", f"{html.escape(str(exc))}. The change was reverted.")
            return
        if changed:
            self._after_contact_edit(key, resend=False)

    def _on_contact_click(self, event: dict[str, Any]) -> None:
        grid = self.contacts_grid
        key = None if grid is None else grid.id_at(event.get("primary_key_row"))
        if key is not None and event.get("region") in ("body", "row-header"):
            self._contact_selected = key
            self._show_contact(key)

    def _after_contact_edit(self, key: str | None, *, resend: bool) -> None:
        """Invalidate the preview, redraw the words, then send the contact rows."""
        self._after_edit(())
        contacts = self._need_contacts()
        if key is not None:
            self._contact_selected = key
            self._show_contact(key)
        if resend:
            self._send_contacts()
        elif key is not None:
            self._sync_contacts(contacts.customer_of(key))

    def _show_contact(self, key: str) -> None:
        contacts = self._need_contacts()
        customer = contacts.customer_of(key)
        name = self._customer_name(customer)
        title = f"<b>{html.escape(name)}</b> " if name else ""
        head = f'{title}contact <code style="font-size:12px">{html.escape(key)}</code>'
        lines = contacts.messages(key)
        if not lines:
            self._say("info", f"{head}: no edits and no problems.")
            return
        self._say("info", head + _message_list(lines))

    def _on_add_contact(self, _: Any) -> None:
        customer = self.contact_customer_box.value.strip() or self._selected
        if not customer and self._contact_selected is not None and self.contacts is not None:
            customer = self.contacts.customer_of(self._contact_selected)
        if not customer:
            self._say("warn", "Type the customer id (or click a customer first), then Add contact.")
            return
        if customer not in self.state.position:
            self._say("error", f"No customer <code>{html.escape(customer)}</code> in the editor.")
            return
        key = self.add_contact(customer)
        self._say(
            "ok",
            f"Added contact <code>{html.escape(key)}</code> to customer "
            f"<code>{html.escape(customer)}</code>: fill in its name, email and billing "
            "preference in the grid (its row is last).",
        )

    def _on_delete_contact(self, _: Any) -> None:
        key = self._contact_selected
        if key is None:
            self._say("warn", "Click a cell of the contact to delete first.")
            return
        try:
            self.delete_contact(key)
        except ContactEditError as exc:
            self._say("error", html.escape(str(exc)))
            return
        self._contact_selected = None

    def _refresh_contacts(self) -> None:
        if self.contacts is None:
            return
        counts = self.contacts.counts()
        sep = '<span class="snb-sep">·</span>'
        parts = [
            f"<b>{counts['rows']:,}</b> {'contact' if counts['rows'] == 1 else 'contacts'}",
            f"<b>{counts['changed']:,}</b> changed",
            f"<b>{counts['added']:,}</b> new",
            f"<b>{counts['deleted']:,}</b> deleted",
            f"<b>{counts['problems']:,}</b> with problems",
        ]
        self.contacts_status.value = f'<div class="snb-editor-status">{sep.join(parts)}</div>'
        self.delete_contact_button.disabled = self._contact_selected is None

    def _rebase_contacts(self, plan: ChangePlan, result: PushResult[ChangePlan]) -> str:
        """After a push, read the contacts of customers whose contacts landed and make
        them the original (new contacts get their ids); a note when that read failed."""
        contacts, client = self.contacts, self.client
        field = self.api_version.contacts_field
        if contacts is None or client is None or result.dry_run or field is None:
            return ""
        moved = {row.id for row in plan.rows if field in row.columns}
        landed = sorted(
            {row.id for row in result.rows if row.status in ("updated", "skipped")} & moved
        )
        if not landed:
            return ""
        try:
            fresh = fetch_contacts(client, landed, progress=False)
        except SequenceError as exc:
            return (
                f" The contacts pushed could not be read back ({html.escape(str(exc))}): "
                "their edits stay in the Contacts tab; reopen the editor before editing them."
            )
        contacts.rebase(landed, fresh)
        self._send_contacts()
        return ""

    # -- after changes -------------------------------------------------------------------------

    def _after_edit(self, ids: Collection[str], *, select: str | None = None) -> None:
        self.version += 1
        self._clear_progress()
        if self._previewed is not None or self.output.value:  # a plan or result, now stale
            self.output.value = _note(
                "warn", "The edits changed since the last preview: press Preview again to push."
            )
        self._previewed = None
        self.confirm_box.layout.display = "none"
        # The words first: the grid's row update costs the browser a repaint, and the
        # status line and message should not wait behind it.
        if select is not None:
            self._show_row(select)
        self._refresh()
        self._sync(ids)

    def _sync(self, ids: Iterable[str]) -> None:
        """Send these rows' values and marks to the grid (or all shown rows if many)."""
        rows = [(self._shown_at[c], c) for c in ids if c in self._shown_at]
        if len(rows) > SYNC_LIMIT:
            self._send_page()
            return
        for position, customer in sorted(rows):
            self.grid.set_row(position, self._row_values(customer))

    def _row_values(self, customer: str) -> list[str | None]:
        originals = [display_value(self.state.original_value(customer, c)) for c in self._local]
        values: list[str | None] = [status_text(self.state.marks(customer), originals)]
        values += [display_value(self.state.value(customer, c)) for c in self.columns]
        return values

    def _shown_value(self, customer: str, column: str) -> str | None:
        """What the browser was last sent for a cell (a repeat of it is no edit)."""
        if column == STATUS:
            return self.grid.status_at(self._shown_at[customer])
        return display_value(self.state.value(customer, column))

    def _frame(self, ids: list[str]) -> Any:
        """The grid's frame for these ids, in this order."""
        edited = self.state.edited().select(fields.ID, *self.columns)
        if ids is not self.state.ids:
            edited = edited[[self.state.position[c] for c in ids]]
        at = self._positions(ids)
        marks = [""] * len(ids)
        for customer in self.state.marked():
            if customer in at:
                marks[at[customer]] = self.state.marks(customer)
        originals = self.state.original.select(self._local)
        if ids is not self.state.ids:
            originals = originals[[self.state.position[c] for c in ids]]
        return grid_frame(edited, self.columns, marks, originals=originals)

    def _positions(self, ids: list[str]) -> dict[str, int]:
        if ids is self.state.ids:
            return self.state.position
        return {customer: i for i, customer in enumerate(ids)}

    def _page_of(self, ids: list[str]) -> list[str]:
        """The current page of a selection (all of it when it fits)."""
        size = self.page_size
        if size is None or len(ids) <= size:
            self._page = 0
            return ids
        self._page = max(0, min(self._page, (len(ids) - 1) // size))
        return ids[self._page * size : (self._page + 1) * size]

    def _show_rows(self, *_: Any) -> None:
        """Select rows (filter box, toggle, sort when paged) and send the first page."""
        ids = self.state.matching(self.filter_box.value, self.columns, self.show_toggle.value)
        if self._sort is not None and self.page_size is not None and len(ids) > self.page_size:
            ids = self._sorted(ids, *self._sort)
        self._selection = ids
        self._page = 0
        self._send_page()

    def _send_page(self) -> None:
        """Send the current page of the selection to the grid, values and marks anew."""
        self._rows_shown = self._page_of(self._selection)
        self._shown_at = self._positions(self._rows_shown)
        self.grid.show(self._frame(self._rows_shown))
        self._refresh()

    def _sorted(self, ids: list[str], column: str, descending: bool) -> list[str]:
        """Ids ordered as the grid orders a column: by its text, empty cells last."""
        if column == STATUS:
            keys = pl.Series([self.state.marks(c) for c in ids], dtype=pl.String)
        else:
            frame = self.state.edited()[[self.state.position[c] for c in ids]]
            keys = pl.Series(display_values(frame.get_column(column)), dtype=pl.String)
        order = pl.DataFrame({"id": ids, "key": keys}).sort(
            "key", descending=descending, nulls_last=True, maintain_order=True
        )
        ordered: list[str] = order.get_column("id").to_list()
        return ordered

    def _on_transforms(self, change: dict[str, Any]) -> None:
        """The grid's sort changed: when paged, sort the whole selection here."""
        sort = _sort_of(change["new"], [fields.ID, *self.grid.body_columns()])
        if sort == self._sort:
            return
        self._sort = sort
        if self.page_size is not None and len(self._selection) > self.page_size:
            self._show_rows()

    def _turn_page(self, step: int) -> None:
        self._page += step
        self._send_page()

    # -- pushing -------------------------------------------------------------------------------

    def _previewed_plan(self) -> ChangePlan | None:
        if self._previewed is None or self._previewed[0] != self.version:
            return None
        return self._previewed[1]

    def _apply(self, plan: ChangePlan, *, dry_run: bool, show: bool) -> PushResult[ChangePlan]:
        """Dry-run or push ``plan``. From a button (``show``) the progress bar shows in
        the widget while it runs, then the result below the grid; from code both go
        where the caller's output goes."""
        if self.client is None:
            raise RuntimeError("the editor has no client: open it with client=...")
        self._set_busy(True)
        try:
            self._clear_progress()
            self._progress_shown = show
            area = self.progress_area if show else contextlib.nullcontext()
            with area:
                result = plan.apply(
                    self.client,
                    dry_run=dry_run,
                    on_conflict=self.on_conflict,
                    max_workers=self.max_workers,
                    journal=self.journal,
                    progress=self.progress,
                )
        finally:
            self._set_busy(False)
            self._clear_progress()  # the result says what the bar said
        self._after_apply(plan, result, show=show)
        return result

    def _after_apply(self, plan: ChangePlan, result: PushResult[ChangePlan], *, show: bool) -> None:
        self.result = result
        touched = self.state.record_result(result)
        contacts_note = self._rebase_contacts(plan, result)
        if not result.dry_run:
            touched |= self.state.refresh_problems()
            self.version += 1
            self._previewed = None
        self._sync(touched)
        if show:
            shown = plan._repr_html_() if result.dry_run else ""
            self.output.value = shown + _result_html(result, self.state)
        else:
            self.output.value = ""
        tone, text = _outcome_note(result, from_code=not show)
        self._say("warn" if contacts_note and tone == "ok" else tone, text + contacts_note)
        self._refresh()

    # -- buttons -------------------------------------------------------------------------------

    def _on_preview(self, _: Any) -> None:
        self._guard(lambda: self._preview(show=True))

    def _on_dry_run(self, _: Any) -> None:
        self._guard(lambda: self._apply(self._preview(show=True), dry_run=True, show=True))

    def _on_push(self, _: Any) -> None:
        plan = self._previewed_plan()
        if plan is None or self.client is None:
            self._refresh()
            return
        count = len(plan)
        noun = "update" if count == 1 else "updates"
        url = html.escape(self.client.base_url)
        self.confirm_text.value = (
            f'<span class="snb-editor-msg" style="background:#fff9db;color:#5c4400">'
            f"Push <b>{count:,}</b> {noun} to <code>{url}</code>?</span>"
        )
        self.confirm_box.layout.display = "flex"
        self.push_button.disabled = True

    def _on_confirm(self, _: Any) -> None:
        self.confirm_box.layout.display = "none"
        plan = self._previewed_plan()
        if plan is None:
            self._say("warn", "The edits changed since the preview: press Preview again.")
            self._refresh()
            return
        self._guard(lambda: self._apply(plan, dry_run=False, show=True))

    def _on_cancel(self, _: Any) -> None:
        self.confirm_box.layout.display = "none"
        self._say("info", "Push cancelled: nothing was sent.")
        self._refresh()

    def _on_revert_row(self, _: Any) -> None:
        if self._selected is None:
            self._say("warn", "Click a cell of the row to revert first.")
            return
        name = html.escape(self.state.legal_name(self._selected) or self._selected)
        if self.revert(self._selected):
            self._say("ok", f"Reverted the edits of <b>{name}</b>.")
        else:
            self._say("info", f"<b>{name}</b> has no edits to revert.")

    def _on_revert_all(self, _: Any) -> None:
        count = self.revert()
        self._say("ok" if count else "info", f"Reverted the edits of {plural(count, 'row')}.")

    def _guard(self, action: Any) -> None:
        """Run a button's action; show an error in the widget instead of losing it."""
        try:
            action()
        except Exception as exc:
            self._say("error", html.escape(f"{type(exc).__name__}: {exc}"))
            self._refresh()

    def _clear_progress(self) -> None:
        """Remove the last push's progress bar (only if one was shown: outside a kernel
        clearing prints control characters)."""
        if self._progress_shown:
            self.progress_area.clear_output()
            self._progress_shown = False

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._refresh()

    # -- drawing -------------------------------------------------------------------------------

    def _build_controls(self) -> None:
        button = widgets.Layout(width="auto", min_width="96px")
        self.status_line = widgets.HTML()
        self.filter_box = widgets.Text(
            placeholder="Filter: any text in the id or the columns, then Enter",
            continuous_update=False,
            layout=widgets.Layout(width="330px"),
        )
        self.show_toggle = widgets.ToggleButtons(
            options=_SHOW_OPTIONS,
            value="all",
            tooltips=["Every row", "Rows with edits", "Rows with data problems or invalid edits"],
            style={"button_width": "86px"},
        )
        self.revert_row_button = widgets.Button(
            description="Revert row", icon="undo", layout=button, tooltip="Drop this row's edits"
        )
        self.revert_all_button = widgets.Button(
            description="Revert all", icon="trash", layout=button, tooltip="Drop every edit"
        )
        self.legend = widgets.HTML(_legend())
        self.message = widgets.HTML()
        self.preview_button = widgets.Button(
            description="Preview", icon="eye", button_style="info", layout=button
        )
        self.dry_run_button = widgets.Button(description="Dry run", icon="search", layout=button)
        self.push_button = widgets.Button(
            description="Push", icon="upload", button_style="danger", layout=button
        )
        self.hint = widgets.HTML()
        self.confirm_text = widgets.HTML()
        self.confirm_button = widgets.Button(
            description="Confirm", icon="check", button_style="danger", layout=button
        )
        self.cancel_button = widgets.Button(description="Cancel", icon="times", layout=button)
        self.confirm_box = widgets.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_button],
            layout=widgets.Layout(display="none", align_items="center", margin="4px 0"),
        )
        self.progress_area = widgets.Output()
        self.output = widgets.HTML()
        self.previous_button = widgets.Button(
            icon="chevron-left", tooltip="Previous rows", layout=widgets.Layout(width="36px")
        )
        self.next_button = widgets.Button(
            icon="chevron-right", tooltip="Next rows", layout=widgets.Layout(width="36px")
        )
        self.page_label = widgets.HTML()
        self.pager = widgets.HBox(
            [self.previous_button, self.page_label, self.next_button],
            layout=widgets.Layout(align_items="center", display="none"),
        )
        self.contacts_status = widgets.HTML()
        self.contact_customer_box = widgets.Text(
            placeholder="customer id (default: the customer clicked last)",
            layout=widgets.Layout(width="330px"),
        )
        self.add_contact_button = widgets.Button(
            description="Add contact",
            icon="plus",
            layout=button,
            tooltip="Add a contact to the customer named on the left",
        )
        self.delete_contact_button = widgets.Button(
            description="Delete contact",
            icon="trash",
            layout=button,
            tooltip="Remove the contact clicked last (the push removes it from its customer)",
        )
        self.add_contact_button.on_click(self._on_add_contact)
        self.delete_contact_button.on_click(self._on_delete_contact)
        self.previous_button.on_click(lambda _: self._turn_page(-1))
        self.next_button.on_click(lambda _: self._turn_page(+1))
        self.filter_box.observe(self._show_rows, names="value")
        self.show_toggle.observe(self._show_rows, names="value")
        self.revert_row_button.on_click(self._on_revert_row)
        self.revert_all_button.on_click(self._on_revert_all)
        self.preview_button.on_click(self._on_preview)
        self.dry_run_button.on_click(self._on_dry_run)
        self.push_button.on_click(self._on_push)
        self.confirm_button.on_click(self._on_confirm)
        self.cancel_button.on_click(self._on_cancel)

    def _layout(self) -> tuple[Any, ...]:
        row = widgets.Layout(align_items="center", flex_flow="row wrap", width="100%")
        spacer = widgets.Box(layout=widgets.Layout(flex="1 1 auto"))
        customers: tuple[Any, ...] = (
            widgets.HBox([self.status_line, spacer, self.legend, self.pager], layout=row),
            widgets.HBox(
                [
                    self.filter_box,
                    self.show_toggle,
                    widgets.Box(layout=widgets.Layout(flex="1 1 auto")),
                    self.revert_row_button,
                    self.revert_all_button,
                ],
                layout=row,
            ),
            self.grid,
        )
        views: tuple[Any, ...] = customers
        if self.contacts_grid is not None:
            contacts = widgets.VBox(
                [
                    self.contacts_status,
                    widgets.HBox(
                        [
                            self.contact_customer_box,
                            self.add_contact_button,
                            self.delete_contact_button,
                        ],
                        layout=row,
                    ),
                    self.contacts_grid,
                ],
                layout=widgets.Layout(width="100%"),
            )
            self.tabs = widgets.Tab(
                children=[widgets.VBox(customers, layout=widgets.Layout(width="100%")), contacts],
                titles=("Customers", "Contacts"),
            )
            views = (self.tabs,)
        return (
            widgets.HTML(_STYLE),
            *views,
            self.message,
            widgets.HBox(
                [
                    self.preview_button,
                    self.dry_run_button,
                    self.push_button,
                    self.hint,
                ],
                layout=widgets.Layout(
                    align_items="center", flex_flow="row wrap", width="100%", margin="6px 0 0 0"
                ),
            ),
            self.confirm_box,
            self.progress_area,
            self.output,
        )

    def _refresh(self) -> None:
        """Redraw the status line and the buttons' states from the edit state."""
        counts = self.state.counts()
        self.status_line.value = _status_html(counts, self.state.outcomes(), len(self._selection))
        self._refresh_pager()
        has_client = self.client is not None
        plan = self._previewed_plan()
        ready = has_client and plan is not None and len(plan) > 0 and not self._busy
        self.push_button.disabled = not ready or self.confirm_box.layout.display == "flex"
        has_edits = bool(self.state.edits) or (
            self.contacts is not None and self.contacts.changed()
        )
        self.dry_run_button.disabled = not has_client or not has_edits or self._busy
        self.preview_button.disabled = self._busy
        self.hint.value = _hint(has_client, has_edits, plan)
        self._refresh_contacts()
        self.push_button.tooltip = _strip_tags(self.hint.value)

    def _refresh_pager(self) -> None:
        total, size = len(self._selection), self.page_size
        paged = size is not None and total > size
        self.pager.layout.display = "flex" if paged else "none"
        if not paged or size is None:
            return
        first = self._page * size
        last = first + len(self._rows_shown)
        self.page_label.value = (
            '<span class="snb-editor-hint" style="margin:0 6px">'
            f"rows <b>{first + 1:,}&ndash;{last:,}</b> of {total:,}</span>"
        )
        self.previous_button.disabled = self._page == 0
        self.next_button.disabled = last >= total

    def _show_row(self, customer: str) -> None:
        name = self.state.legal_name(customer)
        title = f"<b>{html.escape(name)}</b> " if name else ""
        head = f'{title}<code style="font-size:12px">{html.escape(customer)}</code>'
        lines = self.state.messages(customer)
        if not lines:
            self._say("info", f"{head}: no edits and no problems.")
            return
        tone = "error" if any(k == "f" for k, _ in lines) else "info"
        tone = "warn" if tone == "info" and any(k == "x" for k, _ in lines) else tone
        self._say(tone, head + _message_list(lines))

    def _say(self, tone: str, text: str) -> None:
        self.message.value = _note(tone, text)


# -- helpers -----------------------------------------------------------------------------------

_KIND_NAMES: Final = {
    "x": "invalid",
    "f": "conflict / failed",
    "c": "changed",
    "u": "updated",
    "p": "problem",
}


def _message_list(lines: Sequence[tuple[str, str]]) -> str:
    """Message lines as a list, each with the chip of its kind."""
    items = "".join(
        f'<li><span class="snb-chip" style="background:{COLOURS[k][0]};color:{COLOURS[k][1]}">'
        f"{_KIND_NAMES[k]}</span>{html.escape(text)}</li>"
        for k, text in lines
    )
    return f"<ul>{items}</ul>"


def _sort_of(transforms: Sequence[dict[str, Any]], names: Sequence[str]) -> tuple[str, bool] | None:
    """The grid's last sort transform as ``(column, descending)``, or None."""
    for transform in reversed(list(transforms)):
        if transform.get("type") != "sort":
            continue
        column = transform.get("column")
        if isinstance(column, str) and column in names:
            return column, bool(transform.get("desc"))
    return None


def _editor_version(
    client: SequenceClient | None, api_version: str | ApiVersion | None
) -> ApiVersion:
    """The version the editor speaks: the client's, or the one named (they must agree)."""
    if client is None:
        return fields.api_version(api_version)
    if api_version is not None and fields.api_version(api_version) is not client.api_version:
        raise ValueError(
            f"api_version={fields.api_version(api_version).name!r} but the client speaks "
            f"{client.api_version.name!r}: a plan is only pushed in the version it was made for"
        )
    return client.api_version


def _shown_columns(
    df: pl.DataFrame, columns: Sequence[str] | None, version: ApiVersion
) -> list[str]:
    if columns is None:
        known = [c for c in version.editable_columns if c in df.columns]
        keyed = [c for c in df.columns if version.keyed_column(c) is not None]
        return known + keyed
    chosen = list(dict.fromkeys(columns))
    missing = [c for c in chosen if c not in df.columns]
    if missing:
        raise ValueError(f"the frame has no column {', '.join(map(repr, missing))}")
    if fields.ID in chosen or STATUS in chosen:
        raise ValueError("the id is always shown as the row header; leave it out of columns")
    return chosen


def _empty_columns(names: Sequence[str]) -> list[pl.Expr]:
    return [pl.lit(None, dtype=pl.String).alias(name) for name in names]


def _flattened(exprs: Iterable[Any]) -> list[Any]:
    """Expressions and lists of them (what ``clean`` helpers return) as one list."""
    out: list[Any] = []
    for item in exprs:
        if isinstance(item, list | tuple):
            out.extend(item)
        else:
            out.append(item)
    return out


def _differences(
    current: pl.DataFrame, updated: pl.DataFrame, version: ApiVersion
) -> tuple[dict[str, dict[str, Any]], int]:
    """The cells ``updated`` changes, as ``{id: {column: value}}``, and their count.

    Raises ``ReadOnlyColumnError`` naming any added or read-only column it changes.
    """
    added = [c for c in updated.columns if c not in current.columns]
    if added:
        raise ReadOnlyColumnError(
            f"the expression adds {', '.join(added)}: only existing columns can be edited; "
            "nothing was applied"
        )
    changes: dict[str, dict[str, Any]] = {}
    refused: list[str] = []
    cells = 0
    ids = current.get_column(fields.ID)
    for column in current.columns:
        before, after = current.get_column(column), updated.get_column(column)
        if before.dtype != after.dtype:
            before, after = before.cast(pl.String), after.cast(pl.String, strict=False)
        differs = before.ne_missing(after)
        if not differs.any():
            continue
        if not version.is_editable(column):
            refused.append(column)
            continue
        for customer, value in zip(ids.filter(differs), after.filter(differs), strict=True):
            changes.setdefault(customer, {})[column] = value
            cells += 1
    if refused:
        raise ReadOnlyColumnError(
            f"the expression changes read-only columns ({', '.join(refused)}); nothing was applied"
        )
    return changes, cells


def _outcome_note(result: PushResult[ChangePlan], *, from_code: bool) -> tuple[str, str]:
    """The message after a push or dry run: counts in the result's words, the run id, and
    which rows to look at. Red only when a write failed or may have half-landed; amber
    when rows were not sent (invalid) or met a conflict; green otherwise."""
    counted = result.counts()
    counts = ", ".join(outcome_phrase(status, n) for status, n in counted.items())
    source = " from code" if from_code else ""
    if result.dry_run:
        text = f"Dry run{source}: {counts or 'nothing to check'}. Nothing was written."
    else:
        run = f" Run <code>{html.escape(result.run_id)}</code>." if result.run_id else ""
        text = f"Pushed{source}: {counts or 'nothing to push'}.{run}"
    unsent = counted.get("invalid", 0)
    landed_badly = sum(n for status, n in counted.items() if status in FAILED_OUTCOMES)
    notes = []
    if unsent:
        notes.append(f"{plural(unsent, 'invalid row')} {'was' if unsent == 1 else 'were'} not sent")
    if landed_badly:
        did = "would" if result.dry_run else "did"
        notes.append(f"{plural(landed_badly, 'row')} {did} not land as planned")
    marked = unsent + landed_badly
    if notes:
        text += f" {'; '.join(notes)}: click a marked row in the grid to read why."
    if counted.get("failed") or counted.get("unconfirmed") or counted.get("side-effects"):
        tone = "error"
    elif marked:
        tone = "warn"
    else:
        tone = "ok"
    return tone, text


def _result_html(result: PushResult[ChangePlan], state: EditState) -> str:
    """The push result below the grid: one line a row, ids shortened (full id on hover),
    each status a chip in the grid's colour for it; text from the server or the data is
    shown with invisible characters escaped, as the plan shows it."""
    rows = []
    for row in result.rows[:_RESULT_ROW_LIMIT]:
        code = LABEL_CODES.get(row.status, "c" if row.status == "would-update" else "f")
        fill, ink = COLOURS[code]
        name = state.legal_name(row.id) if row.id in state.position else None
        rows.append(
            f"<tr>{id_cell(row.id, escape_unseen(row.id))}"
            f"<td>{html.escape(escape_unseen(name or ''))}</td>"
            f'<td><span class="snb-chip" style="background:{fill};color:{ink}">'
            f"{html.escape(row.status)}</span></td>"
            f"<td>{html.escape(escape_unseen(row.message or ''))}</td></tr>"
        )
    more = len(result.rows) - _RESULT_ROW_LIMIT
    tail = f"<p>… and {more:,} more rows: see editor.result.to_frame().</p>" if more > 0 else ""
    return (
        '<div class="snb-result"><table><thead><tr><th>id</th><th>legal name</th>'
        f"<th>status</th><th>message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"{tail}</div>"
    )


def _note(tone: str, text: str) -> str:
    background, colour = _TONES[tone]
    return (
        f'<div class="snb-editor-msg" style="background:{background};color:{colour}">{text}</div>'
    )


def _legend() -> str:
    chips = "".join(
        f'<span class="snb-chip" title="{html.escape(meaning)}" '
        f'style="background:{COLOURS[code][0]};color:{COLOURS[code][1]}">{name}</span>'
        for code, name, meaning in _LEGEND
    )
    return f'<div class="snb-editor-legend">{chips}</div>'


def _status_html(counts: dict[str, int], outcomes: dict[str, int], shown: int) -> str:
    """The status line, in the words of the grid's status column and the push result."""
    sep = '<span class="snb-sep">·</span>'
    rows = counts["rows"]
    parts = [
        f"<b>{rows:,}</b> {'row' if rows == 1 else 'rows'}",
        f"<b>{counts['changed']:,}</b> changed",
        f"<b>{counts['invalid']:,}</b> invalid",
        f"<b>{counts['problems']:,}</b> with data problems",
    ]
    for outcome, count in sorted(outcomes.items()):
        phrase = outcome_phrase(outcome, count).split(" ", 1)[1]
        parts.append(f"<b>{count:,}</b> {html.escape(phrase)}")
    if shown != rows:
        parts.append(f"showing <b>{shown:,}</b>")
    return f'<div class="snb-editor-status">{sep.join(parts)}</div>'


def _hint(has_client: bool, has_edits: bool, plan: ChangePlan | None) -> str:
    if not has_client:
        text = "No client: open the editor with client=… to dry-run and push."
    elif not has_edits:
        text = "Edit cells (double-click) or call apply_expression(); then Preview."
    elif plan is None:
        text = "Preview the current edits to enable Push."
    elif len(plan) == 0:
        text = "Nothing to push: every changed row is invalid."
    else:
        noun = "update" if len(plan) == 1 else "updates"
        text = f"Ready to push {len(plan):,} {noun}."
    return f'<span class="snb-editor-hint">{html.escape(text)}</span>'


def _strip_tags(markup: str) -> str:
    text = markup.split(">", 1)[-1].rsplit("<", 1)[0]
    return html.unescape(text)
