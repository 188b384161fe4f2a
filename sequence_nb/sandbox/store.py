"""The sandbox's customer records, their aliases and how writes change them.

Not thread-safe on its own: :class:`~sequence_nb.sandbox.state.SandboxState` holds
the lock around every call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sequence_nb import fields
from sequence_nb.sandbox import paging, rules2024
from sequence_nb.sandbox.data import ordered
from sequence_nb.sandbox.validation import FieldError

#: Record keys a PUT replaces (absent from the body means cleared).
_REPLACED = frozenset(fields.SEED.body_fields) - {"customerAliases", "externalIds"} | {
    "billingEmails"
}


class CustomerStore:
    """Records by id, aliases, and sorted indexes for paging.

    ``version`` is the API version the records are shaped in; ``billing_active``
    the ids of customers with a current billing schedule (2024-07-30's
    ``billingStatus`` filter).
    """

    def __init__(
        self,
        records: list[dict[str, Any]],
        aliases: dict[str, list[str]] | None = None,
        *,
        copy_records: bool = True,
        version: fields.ApiVersion = fields.SEED,
        billing_active: set[str] | None = None,
    ) -> None:
        self.version = version
        self.billing_active = set(billing_active or ())
        self.records: dict[str, dict[str, Any]] = {}
        for record in records:
            if not isinstance(record.get("id"), str):
                raise ValueError("every record needs a string id")
            self.records[record["id"]] = copy.deepcopy(record) if copy_records else record
        self.aliases: dict[str, list[str]] = {}
        self.alias_index: dict[str, str] = {}
        for customer_id, names in (aliases or {}).items():
            self.set_aliases(customer_id, names)
        self._sorted: dict[str, list[paging.SortKey]] = {}
        self._archived = {i for i, r in self.records.items() if r.get("archivedAt")}

    # -- reads ---------------------------------------------------------------

    def get(self, customer_id: str) -> dict[str, Any] | None:
        """The stored record itself (callers copy or serialise it under the lock)."""
        return self.records.get(customer_id)

    def by_alias(self, alias: str) -> dict[str, Any] | None:
        """The record an alias points to."""
        customer_id = self.alias_index.get(alias)
        return None if customer_id is None else self.records.get(customer_id)

    def ids_by_creation(self) -> list[str]:
        """Every id, oldest record first."""
        return [i for _, i in self._entries("createdAt")]

    def list_page(self, query: paging.ListQuery) -> tuple[list[dict[str, Any]], paging.Page]:
        """One page of records for a list query."""
        entries, shown, total = self._listing(query)
        result = paging.page(entries, query, shown, total)
        return [self.records[i] for i in result.ids], result

    def move_records(self, query: paging.ListQuery, served: list[str], count: int) -> list[str]:
        """Swap the sort values of ``count`` records of a page just served with as many
        from the middle of the listing (the ``move_records`` knob); the ids moved.

        The page's last record is left alone: the cursor stands on it. A listing sorted
        by ``id`` cannot move.
        """
        name = query.sort_by
        if name == "id":
            return []
        entries, shown, _ = self._listing(query)
        listing = [i for _, i in entries if shown(i)]
        if query.descending:
            listing.reverse()
        served_ids = set(served)
        here = served[:-1][:count]
        middle = listing[len(listing) // 2 :]
        there = [i for i in middle if i not in served_ids][: len(here)]
        for one, other in zip(here, there, strict=False):
            first, second = self.records[one], self.records[other]
            self.records[one] = {**first, name: second.get(name)}
            self.records[other] = {**second, name: first.get(name)}
            self._changed(one, (name,))
            self._changed(other, (name,))
        return [*here[: len(there)], *there]

    def _listing(
        self, query: paging.ListQuery
    ) -> tuple[list[paging.SortKey], Callable[[str], bool], int]:
        """The sorted keys a list query pages through, which ids it shows, and how many."""

        def shown(customer_id: str) -> bool:
            return query.include_archived or customer_id not in self._archived

        if not query.filtered:
            entries = self._entries(query.sort_by)
            total = len(entries) if query.include_archived else len(entries) - len(self._archived)
        else:
            ids = self._filtered(query)
            entries = sorted(_key(self.records[i], query.sort_by) for i in ids)
            total = sum(1 for i in ids if shown(i))
        return entries, shown, total

    def _filtered(self, query: paging.ListQuery) -> list[str]:
        if query.alias is not None:
            target = self.alias_index.get(query.alias)
            candidates = [target] if target is not None else []
        else:
            candidates = list(self.records)
        return [i for i in candidates if self._matches(self.records[i], query)]

    def _matches(self, record: dict[str, Any], query: paging.ListQuery) -> bool:
        """Whether a record passes the query's filters (the alias is looked up before)."""
        if query.legal_name is not None and record.get("legalName") != query.legal_name:
            return False
        if query.email is not None and query.email not in _emails(record):
            return False
        if query.label is not None and record.get("label") != query.label:
            return False
        if query.billing_status is not None:
            active = record["id"] in self.billing_active
            return active == (query.billing_status == "ACTIVE")
        return True

    def _entries(self, sort_by: str) -> list[paging.SortKey]:
        entries = self._sorted.get(sort_by)
        if entries is None:
            entries = sorted(_key(r, sort_by) for r in self.records.values())
            self._sorted[sort_by] = entries
        return entries

    def _changed(self, customer_id: str, sort_fields: tuple[str, ...]) -> None:
        for name in sort_fields:
            self._sorted.pop(name, None)
        if self.records.get(customer_id, {}).get("archivedAt"):
            self._archived.add(customer_id)
        else:
            self._archived.discard(customer_id)

    # -- writes --------------------------------------------------------------

    def alias_conflicts(self, body: dict[str, Any], customer_id: str | None) -> list[FieldError]:
        """Aliases in ``body`` that belong to another customer."""
        taken = [
            a
            for a in body.get("customerAliases") or []
            if self.alias_index.get(a, customer_id) != customer_id
        ]
        if not taken:
            return []
        return [FieldError("customerAliases", f"already used by another customer: {taken}")]

    def replace(
        self,
        customer_id: str,
        body: dict[str, Any],
        now: str,
        *,
        unlink: bool = False,
        new_id: Callable[[], str] | None = None,
    ) -> dict[str, Any]:
        """Apply a PUT body (full replacement of the editable fields); ``unlink`` empties
        ``linkedServices`` (``integrationIds``) when the body carries no ``externalIds``
        (``integrationIds``). ``new_id`` names new contacts (2024-07-30)."""
        old = self.records[customer_id]
        if self.version is not fields.SEED:
            record = rules2024.updated(old, body, now, _ids(new_id), unlink=unlink)
            return self._put(customer_id, body, record, old)
        record = {k: v for k, v in old.items() if k not in _REPLACED}
        if unlink and not body.get("externalIds") and record.get("linkedServices"):
            record["linkedServices"] = []
        record.update(_editable(body))
        if body.get("externalIds") is not None:
            record["externalIds"] = _external_ids(body["externalIds"], old.get("externalIds"), now)
        return self._put(customer_id, body, record, old)

    def _put(
        self, customer_id: str, body: dict[str, Any], record: dict[str, Any], old: dict[str, Any]
    ) -> dict[str, Any]:
        """Store the record a PUT made, and the aliases it gave."""
        if body.get("customerAliases") is not None:
            self.set_aliases(customer_id, body["customerAliases"])
        self.records[customer_id] = ordered(record, self.version)
        touched = ("legalName",) if old.get("legalName") != record.get("legalName") else ()
        self._changed(customer_id, touched)
        return self.records[customer_id]

    def archive(self, customer_id: str, now: str) -> dict[str, Any]:
        """Archive a customer (``archivedAt`` set once; archiving again changes nothing)."""
        record = self.records[customer_id]
        if not record.get("archivedAt"):
            record = ordered({**record, "archivedAt": now}, self.version)
            self.records[customer_id] = record
            self._changed(customer_id, ())
        return record

    def create(
        self,
        customer_id: str,
        account_id: str,
        body: dict[str, Any],
        now: str,
        new_id: Callable[[], str] | None = None,
    ) -> dict[str, Any]:
        """Apply a POST body: a new record (``new_id`` names its contacts, 2024-07-30)."""
        if self.version is not fields.SEED:
            made = rules2024.created(customer_id, body, now, _ids(new_id))
            self.records[customer_id] = ordered(made, self.version)
            if body.get("customerAliases") is not None:
                self.set_aliases(customer_id, body["customerAliases"])
            self._changed(customer_id, paging.SORT_FIELDS)
            return self.records[customer_id]
        record: dict[str, Any] = {
            "id": customer_id,
            "createdAt": now,
            "sequenceAccountId": account_id,
            "linkedServices": [],
        }
        record.update(_editable(body))
        if body.get("externalIds") is not None:
            record["externalIds"] = _external_ids(body["externalIds"], None, now)
        self.records[customer_id] = ordered(record)
        if body.get("customerAliases") is not None:
            self.set_aliases(customer_id, body["customerAliases"])
        self._changed(customer_id, paging.SORT_FIELDS)
        return self.records[customer_id]

    def edit(self, customer_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into a record as a dashboard edit would (``None`` removes)."""
        if customer_id not in self.records:
            raise KeyError(customer_id)
        if "id" in changes:
            raise ValueError("the id of a record cannot change")
        changes = copy.deepcopy(changes)
        aliases = changes.pop("customerAliases", None)
        record = copy.deepcopy(self.records[customer_id])
        _merge(record, changes)
        if "billingEmail" in changes and "billingEmails" not in changes:
            billing = record.get("billingEmail")
            record["billingEmails"] = [billing] if billing else []
        self.records[customer_id] = ordered(record, self.version)
        if aliases is not None:
            self.set_aliases(customer_id, aliases)
        self._changed(customer_id, paging.SORT_FIELDS)
        return self.records[customer_id]

    def set_aliases(self, customer_id: str, names: list[str]) -> None:
        """Replace a customer's internal aliases."""
        for name in self.aliases.pop(customer_id, []):
            self.alias_index.pop(name, None)
        unique = list(dict.fromkeys(names))
        if unique:
            self.aliases[customer_id] = unique
        for name in unique:
            self.alias_index[name] = customer_id


def _ids(new_id: Callable[[], str] | None) -> Callable[[], str]:
    if new_id is None:
        raise ValueError("a 2024-07-30 write needs new_id to name new contacts")
    return new_id


def _emails(record: dict[str, Any]) -> list[Any]:
    """The addresses the ``email`` filter matches: the record's, or its contacts'."""
    contacts = record.get("contacts")
    if isinstance(contacts, list):
        return [c.get("email") for c in contacts if isinstance(c, dict)]
    return [record.get("email")]


def _key(record: dict[str, Any], sort_by: str) -> paging.SortKey:
    value = record.get(sort_by)
    return (value if isinstance(value, str) else "", record["id"])


def _editable(body: dict[str, Any]) -> dict[str, Any]:
    """The record fields a valid body sets (absent and null optional fields stay unset)."""
    out: dict[str, Any] = {}
    for name in fields.SEED.body_fields:
        value = body.get(name)
        if value is None or name in ("customerAliases", "externalIds"):
            continue
        if name == "address":
            value = {k: v for k, v in value.items() if v is not None}
        out[name] = copy.deepcopy(value)
    billing = out.get("billingEmail")
    out["billingEmails"] = [billing] if billing else []
    return out


def _external_ids(items: list[dict[str, Any]], previous: Any, now: str) -> list[dict[str, str]]:
    """Body external ids as record entries, keeping the sync time of unchanged ones."""
    synced: dict[tuple[Any, Any], Any] = {}
    if isinstance(previous, list):
        synced = {
            (p.get("key"), p.get("value")): p.get("syncTime")
            for p in previous
            if isinstance(p, dict)
        }
    return [
        {
            "key": item["key"],
            "value": item["value"],
            "syncTime": synced.get((item["key"], item["value"])) or now,
        }
        for item in items
    ]


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
