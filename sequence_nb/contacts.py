"""Customers' billing contacts (API version 2024-07-30) as a frame of their own.

In 2024-07-30 a customer's email addresses live in ``contacts``: a list of
``{id, name, email, billingPreference, createdAt, updatedAt, archivedAt}``. List
pages leave it out; ``GET /customers/{id}`` carries it. :func:`fetch_contacts`
reads it for each customer, and gives one row per contact keyed by ``customerId``.

People edit that frame: change a name, an email or a billing preference; add a row
(``customerId`` filled, ``id`` empty) for a new contact; delete a row to remove a
contact. :func:`contact_edits` turns the original and the edited frame into each
customer's contacts before and after, which :func:`~sequence_nb.plan.plan_updates`
folds into the customer's update body (the body's ``contacts`` replaces all of a
customer's contacts, so it always carries every one that stays).

Rules: a customer none of whose contacts is in the edited frame is left as it is
(a filtered frame removes nothing; one note says how many), unless it is named in
``whole`` (then no row means no contacts); a contact keeps its customer (moving one is
a removal and an addition); an ``id`` the original does not hold, or twice, is
refused; an archived contact is never sent (an update leaves archived contacts out),
so an edit of one is noted, not planned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from sequence_nb import fields
from sequence_nb.errors import PlanError, SequenceError
from sequence_nb.fields import ApiVersion
from sequence_nb.models import contacts_body
from sequence_nb.progress import progress_bar

if TYPE_CHECKING:
    from sequence_nb.client import SequenceClient

__all__ = [
    "CONTACT_COLUMNS",
    "CUSTOMER_ID",
    "ContactChange",
    "ContactEdits",
    "ContactFetchError",
    "contact_edits",
    "contacts_frame",
    "contacts_schema",
    "fetch_contacts",
]

#: The column naming the customer a contact belongs to.
CUSTOMER_ID: Final = "customerId"
#: The contacts frame's columns, in order.
CONTACT_COLUMNS: Final = (CUSTOMER_ID, *fields.V2024_07_30.contact_fields)
#: Columns a person may edit.
_EDITABLE: Final = fields.V2024_07_30.contact_body_fields


class ContactFetchError(SequenceError):
    """Some customers' contacts could not be read; ``frame`` holds those that were."""

    def __init__(self, failed: Mapping[str, str], frame: pl.DataFrame) -> None:
        self.failed = dict(failed)
        self.frame = frame
        shown = "; ".join(f"{cid}: {why}" for cid, why in list(self.failed.items())[:5])
        more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
        super().__init__(
            f"the contacts of {len(self.failed)} customer(s) could not be read ({shown}{more}); "
            f"the frame of the {frame.get_column(CUSTOMER_ID).n_unique()} customer(s) read "
            "is the error's .frame"
        )


def _version_with_contacts(api_version: str | ApiVersion | None) -> ApiVersion:
    version = fields.api_version(api_version)
    if version.contacts_field is None:
        raise SequenceError(
            f"API version {version.name} keeps emails on the customer record and has no "
            "contacts; contacts come with version 2024-07-30 (api_version='2024-07-30')"
        )
    return version


def contacts_schema(api_version: str | ApiVersion | None = None) -> dict[str, pl.DataType]:
    """The contacts frame's dtypes: text, ``billingPreference`` an Enum of the preferences.

    Timestamps stay the API's text (they are read-only and round-trip exactly).
    """
    version = _version_with_contacts(api_version)
    out: dict[str, pl.DataType] = {name: pl.String() for name in CONTACT_COLUMNS}
    out["billingPreference"] = pl.Enum(version.billing_preferences)
    return out


def contacts_frame(
    records: Iterable[Mapping[str, Any]], *, api_version: str | ApiVersion | None = None
) -> pl.DataFrame:
    """One row per contact of each record (records as ``GET /customers/{id}`` gives them).

    Rows follow the records' order, and each record's contacts in their order. A
    ``billingPreference`` outside the version's list keeps the column as text.
    """
    version = _version_with_contacts(api_version)
    field = version.contacts_field
    rows: list[dict[str, Any]] = []
    for record in records:
        for contact in record.get(field or "") or []:
            row = {name: contact.get(name) for name in version.contact_fields}
            rows.append({CUSTOMER_ID: record.get(fields.ID), **row})
    schema = contacts_schema(version)
    text = {name: pl.String() for name in CONTACT_COLUMNS}
    frame = pl.DataFrame(rows, schema=text, orient="row")
    preferences = frame.get_column("billingPreference")
    if (preferences.is_null() | preferences.is_in(version.billing_preferences)).all():
        frame = frame.with_columns(preferences.cast(schema["billingPreference"]))
    return frame


def fetch_contacts(
    client: SequenceClient,
    ids: Sequence[str] | None = None,
    *,
    progress: bool | None = None,
    max_workers: int = 8,
) -> pl.DataFrame:
    """The contacts of each customer (every listed customer when ``ids`` is None).

    Reads ``GET /customers/{id}`` for each customer concurrently, paced by the
    client's rate limiter, with a progress bar. Complete or loud: when any read
    fails, :class:`ContactFetchError` names each customer and why, and carries the
    frame of those read.
    """
    version = _version_with_contacts(client.api_version)
    wanted = list(ids) if ids is not None else [r[fields.ID] for r in client.list_customers()]
    records: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    with (
        progress_bar(len(wanted), "Fetching contacts", progress) as bar,
        ThreadPoolExecutor(max_workers, thread_name_prefix="sequence-nb-contacts") as pool,
    ):
        futures = {
            customer_id: pool.submit(client.get_customer, customer_id) for customer_id in wanted
        }
        for customer_id, future in futures.items():
            try:
                record = future.result()
            except SequenceError as exc:
                failed[customer_id] = f"{type(exc).__name__}: {exc}"
            else:
                if isinstance(record.get(version.contacts_field or ""), list):
                    records[customer_id] = record
                else:
                    failed[customer_id] = "the answer holds no contacts list"
            bar.update(1)
    frame = contacts_frame([records[i] for i in wanted if i in records], api_version=version)
    if failed:
        raise ContactFetchError(failed, frame)
    return frame


# -- edits --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactChange:
    """One customer's contacts before and after the edits, each as the API holds them."""

    customer_id: str
    before: tuple[dict[str, Any], ...]
    after: tuple[dict[str, Any], ...]

    @property
    def removed(self) -> int:
        """How many contacts an update with :attr:`after` removes (archived ones aside)."""
        kept = {_email_key(c) for c in contacts_body(list(self.after))}
        return sum(1 for c in contacts_body(list(self.before)) if _email_key(c) not in kept)


@dataclass(frozen=True)
class ContactEdits:
    """The customers whose contacts change, by id, and notes on edits that are not sent."""

    changes: dict[str, ContactChange] = field(default_factory=dict)
    #: ``(customer id or None, "contacts", message)``, as a plan's notes.
    notes: list[tuple[str | None, str, str]] = field(default_factory=list)


def contact_edits(
    original: pl.DataFrame, edited: pl.DataFrame, *, whole: Collection[str] = ()
) -> ContactEdits:
    """Each customer whose contacts the edits change, by customer id, and notes.

    ``before`` holds the original contacts (every column but ``customerId``, nulls
    left out); ``after`` the contacts that stay, edited, then the added ones (no
    ``id``), in the edited frame's order. A customer of ``whole`` with no row in
    ``edited`` is to have no contacts. Raises :class:`~sequence_nb.errors.PlanError`
    naming the row and the rule for an edit no body can carry.
    """
    for name, frame in (("original", original), ("edited", edited)):
        missing = [c for c in (CUSTOMER_ID, "id", *_EDITABLE) if c not in frame.columns]
        if missing:
            raise PlanError(f"the {name} contacts frame has no {', '.join(missing)} column")
    before = _by_customer(_rows(original))
    known = {row["id"]: row for rows in before.values() for row in rows}
    after: dict[str, list[dict[str, Any]]] = {}
    seen: set[str] = set()
    for number, row in enumerate(_rows(edited)):
        customer_id = row.get(CUSTOMER_ID)
        if not isinstance(customer_id, str) or not customer_id:
            raise PlanError(f"edited contacts row {number}: customerId is empty")
        contact_id = row.get("id")
        if contact_id is not None:
            _check_kept(number, row, known, seen)
            contact = {**known[contact_id], **{k: row.get(k) for k in _EDITABLE}}
        else:
            contact = {k: row.get(k) for k in _EDITABLE}
        after.setdefault(customer_id, []).append(_pruned(contact))
    for customer_id in whole:
        after.setdefault(customer_id, [])
    edits = ContactEdits(notes=_archived_edits(before, after))
    for customer_id, contacts in after.items():
        old = [_pruned(c) for c in before.get(customer_id, [])]
        if contacts_body(old) != contacts_body(contacts):
            edits.changes[customer_id] = ContactChange(customer_id, tuple(old), tuple(contacts))
    left_out = [c for c in before if c not in after]
    if left_out:
        edits.notes.append((None, "contacts", _left_out(len(left_out))))
    return edits


def _left_out(count: int) -> str:
    return (
        f"{count} customer(s) have contacts but no row in the edited contacts frame: their "
        "contacts are left as they are (a filtered frame removes nothing). To remove all of "
        "a customer's contacts, name it in replace_contacts_of"
    )


def _archived_edits(
    before: Mapping[str, list[dict[str, Any]]], after: Mapping[str, list[dict[str, Any]]]
) -> list[tuple[str | None, str, str]]:
    """Notes on archived contacts whose editable fields were changed (never sent)."""
    notes: list[tuple[str | None, str, str]] = []
    for customer_id, contacts in after.items():
        originals = {c["id"]: c for c in before.get(customer_id, []) if c.get("archivedAt")}
        for contact in contacts:
            was = originals.get(contact.get("id"))
            if was is not None and _body_shape([was]) != _body_shape([contact]):
                message = (
                    f"contact {contact['id']} is archived: an update leaves archived contacts "
                    "out (sent back, they would come back to life), so its edit is not sent"
                )
                notes.append((customer_id, "contacts", message))
    return notes


def _email_key(contact: Any) -> Any:
    email = contact.get("email") if isinstance(contact, dict) else None
    return email.strip().casefold() if isinstance(email, str) else repr(contact)


def _check_kept(
    number: int, row: Mapping[str, Any], known: Mapping[str, Mapping[str, Any]], seen: set[str]
) -> None:
    contact_id = row["id"]
    if contact_id not in known:
        raise PlanError(
            f"edited contacts row {number}: contact {contact_id!r} is not in the original "
            "frame; a new contact has an empty id"
        )
    if contact_id in seen:
        raise PlanError(f"edited contacts row {number}: contact {contact_id!r} is listed twice")
    seen.add(contact_id)
    owner = known[contact_id][CUSTOMER_ID]
    if row[CUSTOMER_ID] != owner:
        raise PlanError(
            f"edited contacts row {number}: contact {contact_id!r} belongs to customer "
            f"{owner!r}, not {row[CUSTOMER_ID]!r}; to move it, delete the row and add a new one"
        )


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    text = frame.select(pl.all().cast(pl.String) if frame.width else pl.all())
    return text.to_dicts()


def _by_customer(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row[CUSTOMER_ID], []).append(row)
    return out


def _pruned(contact: Mapping[str, Any]) -> dict[str, Any]:
    """The contact as the API holds it: no ``customerId``, no null values."""
    return {k: v for k, v in contact.items() if k != CUSTOMER_ID and v is not None}


def _body_shape(contacts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: c.get(k) for k in _EDITABLE} for c in contacts]
