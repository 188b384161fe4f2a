"""Customer records in the shape of API version 2024-07-30, made from the seed's.

The generator makes every customer as the seed page has it (names, addresses,
emails, links), then :func:`current_record` reshapes it: the emails become
``contacts`` (0 to 4, with billing preferences that keep the PRIMARY rule),
``postCode`` becomes ``postcode`` and US and Canadian addresses gain a ``state``,
``linkedServices`` become ``integrationIds``, and the record gains ``status``,
``customProperties``, ``organizations`` and ``domain``.
"""

from __future__ import annotations

import copy
import random
import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sequence_nb import fields
from sequence_nb.sandbox import vocab

_VERSION = fields.V2024_07_30
#: How many contacts a customer has (0 to 4), by weight.
_CONTACT_COUNTS = ((0, 1, 2, 3, 4), (8, 34, 30, 18, 10))
#: Customers whose contacts all have billing preference NONE.
_ONLY_NONE_SHARE = 0.12
_DRAFT_SHARE = 0.06
_NO_PROPERTIES_SHARE = 0.15
_PENDING_LINK_SHARE = 0.1
_BILLING_ACTIVE_SHARE = 0.7
#: Customers that own an organization (each with 1 to 3 other customers as members).
_OWNER_SHARE = 0.02


def parse_time(text: str) -> datetime:
    """Read a time as the API writes it (``2022-06-28T16:47:00Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class CurrentShaper:
    """Reshapes seed-shaped records into 2024-07-30 records, drawing from ``rng``."""

    def __init__(
        self, rng: random.Random, end: datetime, format_time: Callable[[datetime], str]
    ) -> None:
        self.rng = rng
        self.end = end
        self.format_time = format_time

    def record(self, old: dict[str, Any], country: vocab.Country) -> dict[str, Any]:
        """The 2024-07-30 record of a clean seed-shaped record."""
        rng = self.rng
        created = parse_time(old["createdAt"])
        domain = old["email"].rpartition("@")[2]
        record: dict[str, Any] = {
            "id": old["id"],
            "createdAt": old["createdAt"],
            "organizations": [],
            "legalName": old["legalName"],
            "address": self._address(old["address"]),
        }
        if "url" in old:
            record["url"] = old["url"]
        if rng.random() < 0.9:
            record["domain"] = domain
        record["label"] = old["label"]
        record["integrationIds"] = [
            self._integration(link) for link in old.get("linkedServices", [])
        ]
        if "archivedAt" in old:
            record["archivedAt"] = old["archivedAt"]
        record["taxStatus"] = old["taxStatus"]
        record["contacts"] = self._contacts(old, country, domain, created)
        record["status"] = "DRAFT" if rng.random() < _DRAFT_SHARE else "ACTIVE"
        record["customProperties"] = self._properties(country)
        return record

    def organize(self, records: list[dict[str, Any]]) -> None:
        """Group a few customers into organizations: an owner and 1 to 3 members, each
        of whom lists the organization (most customers belong to none)."""
        rng = self.rng
        free = [r for r in records if "archivedAt" not in r]
        rng.shuffle(free)
        owners = round(len(records) * _OWNER_SHARE)
        while owners > 0 and len(free) >= 2:
            owner = free.pop()
            members = [free.pop() for _ in range(min(len(free), rng.randint(1, 3)))]
            organization = {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "owner": {"id": owner["id"], "name": owner["legalName"]},
                "members": [{"id": m["id"], "name": m["legalName"]} for m in members],
            }
            for record in (owner, *members):
                record["organizations"] = [copy.deepcopy(organization)]
            owners -= 1

    def billing_active(self, records: list[dict[str, Any]]) -> set[str]:
        """Ids of customers with a current billing schedule (``billingStatus=ACTIVE``)."""
        return {
            r["id"]
            for r in records
            if r["status"] == "ACTIVE"
            and "archivedAt" not in r
            and self.rng.random() < _BILLING_ACTIVE_SHARE
        }

    def _address(self, old: dict[str, str]) -> dict[str, str]:
        address = {"line1": old["line1"]}
        if "line2" in old:
            address["line2"] = old["line2"]
        address["town"] = old["town"]
        if old["country"] in _VERSION.state_countries:
            address["state"] = vocab.STATE_OF_TOWN[old["town"]]
        address["postcode"] = old["postCode"]
        address["country"] = old["country"]
        return address

    def _integration(self, link: dict[str, str]) -> dict[str, Any]:
        if self.rng.random() < _PENDING_LINK_SHARE:
            return {"service": link["externalService"], "id": link["externalId"], "isPending": True}
        return {
            "service": link["externalService"],
            "id": link["externalId"],
            "lastSynced": link["syncTime"],
            "isPending": False,
        }

    def _contacts(
        self, old: dict[str, Any], country: vocab.Country, domain: str, created: datetime
    ) -> list[dict[str, Any]]:
        rng = self.rng
        count = rng.choices(*_CONTACT_COUNTS)[0]
        people: list[tuple[str, str]] = []
        emails: set[str] = set()

        def add(name: str, email: str) -> None:
            if email.casefold() not in emails and len(people) < count:
                emails.add(email.casefold())
                people.append((name, email))

        if "contactName" in old:
            add(old["contactName"], old["email"])
        billing = old.get("billingEmail")
        if billing:
            add(rng.choice(vocab.MAILBOX_CONTACT_NAMES), billing)
        for _ in range(12):
            if len(people) >= count:
                break
            first, last = rng.choice(country.first_names), rng.choice(country.last_names)
            local = f"{_ascii(first)}.{_ascii(last)}"
            add(f"{first} {last}", f"{local}@{domain}")
        preferences = self._preferences(len(people))
        return [
            self._contact(name, email, preference, created)
            for (name, email), preference in zip(people, preferences, strict=True)
        ]

    def _preferences(self, count: int) -> list[str]:
        rng = self.rng
        if count == 0:
            return []
        if rng.random() < _ONLY_NONE_SHARE:
            return ["NONE"] * count
        primary = rng.randrange(count) if rng.random() < 0.3 else 0
        return [
            "PRIMARY" if i == primary else rng.choice(("STANDARD", "NONE", "NONE"))
            for i in range(count)
        ]

    def _contact(self, name: str, email: str, preference: str, created: datetime) -> dict[str, Any]:
        made = self._between(created, self.end)
        updated = made if self.rng.random() < 0.6 else self._between(made, self.end)
        return {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "name": name,
            "email": email,
            "billingPreference": preference,
            "createdAt": self.format_time(made),
            "updatedAt": self.format_time(updated),
        }

    def _properties(self, country: vocab.Country) -> dict[str, str]:
        rng = self.rng
        if rng.random() < _NO_PROPERTIES_SHARE:
            return {}
        properties = {
            "region": vocab.REGION_OF_COUNTRY[country.code],
            "tier": rng.choice(vocab.TIERS),
        }
        if rng.random() < 0.8:
            properties["accountManager"] = rng.choice(vocab.ACCOUNT_MANAGERS)
        if rng.random() < 0.4:
            properties["industry"] = rng.choice(vocab.INDUSTRIES)
        if rng.random() < 0.25:
            properties["costCentre"] = rng.choice(vocab.COST_CENTRES)
        return properties

    def _between(self, start: datetime, end: datetime) -> datetime:
        span = max(1, int((end - start).total_seconds()))
        return start + timedelta(seconds=self.rng.randrange(span))


def _ascii(name: str) -> str:
    """A name as the local part of an email address (accents dropped, lower case)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())
