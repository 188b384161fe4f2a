"""The sandbox's customer records, their aliases and how writes change them.

Not thread-safe on its own: :class:`~sequence_nb.sandbox.state.SandboxState` holds
the lock around every call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sequence_nb import fields
from sequence_nb.sandbox import paging
from sequence_nb.sandbox.data import ordered
from sequence_nb.sandbox.validation import FieldError

#: Record keys a PUT replaces (absent from the body means cleared).
_REPLACED = frozenset(fields.UPDATE_FIELDS) - {"customerAliases", "externalIds"} | {"billingEmails"}


class CustomerStore:
    """Records by id, aliases, and sorted indexes for paging."""

    def __init__(
        self,
        records: list[dict[str, Any]],
        aliases: dict[str, list[str]] | None = None,
        *,
        copy_records: bool = True,
    ) -> None:
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

        if query.legal_name is None and query.email is None and query.alias is None:
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
        return [
            i
            for i in candidates
            if (query.legal_name is None or self.records[i].get("legalName") == query.legal_name)
            and (query.email is None or self.records[i].get("email") == query.email)
        ]

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
        self, customer_id: str, body: dict[str, Any], now: str, *, unlink: bool = False
    ) -> dict[str, Any]:
        """Apply a PUT body (full replacement of the editable fields); ``unlink`` empties
        ``linkedServices`` when the body carries no ``externalIds``."""
        old = self.records[customer_id]
        record = {k: v for k, v in old.items() if k not in _REPLACED}
        if unlink and not body.get("externalIds") and record.get("linkedServices"):
            record["linkedServices"] = []
        record.update(_editable(body))
        if body.get("externalIds") is not None:
            record["externalIds"] = _external_ids(body["externalIds"], old.get("externalIds"), now)
        if body.get("customerAliases") is not None:
            self.set_aliases(customer_id, body["customerAliases"])
        self.records[customer_id] = ordered(record)
        touched = ("legalName",) if old.get("legalName") != record.get("legalName") else ()
        self._changed(customer_id, touched)
        return self.records[customer_id]

    def create(
        self, customer_id: str, account_id: str, body: dict[str, Any], now: str
    ) -> dict[str, Any]:
        """Apply a POST body: a new record."""
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
        self.records[customer_id] = ordered(record)
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


def _key(record: dict[str, Any], sort_by: str) -> paging.SortKey:
    value = record.get(sort_by)
    return (value if isinstance(value, str) else "", record["id"])


def _editable(body: dict[str, Any]) -> dict[str, Any]:
    """The record fields a valid body sets (absent and null optional fields stay unset)."""
    out: dict[str, Any] = {}
    for name in fields.UPDATE_FIELDS:
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
