"""Deterministic, realistic customer records with a known list of planted problems."""

from __future__ import annotations

import functools
import itertools
import random
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sequence_nb import fields
from sequence_nb.sandbox import vocab
from sequence_nb.sandbox.records2024 import CurrentShaper

#: Problem codes the generator plants (and ``check(df)`` must find). Only problems a
#: real record can hold: the API stores no country that is not an ISO code, so
#: ``invalid_country`` lives in edited frames only.
PROBLEM_CODES: tuple[str, ...] = (
    "whitespace",
    "email_case",
    "invalid_email",
    "missing_billing_email",
    "duplicate_legal_name",
    "invalid_telephone",
)
#: What a 2024-07-30 sandbox plants (its records keep no emails on the record itself).
PROBLEM_CODES_2024: tuple[str, ...] = ("whitespace", "duplicate_legal_name")

#: Generated ``createdAt`` values lie in the three years before this instant.
END_TIME = datetime(2025, 6, 30, 18, 0, 0, tzinfo=UTC)
_SPAN_SECONDS = 3 * 365 * 24 * 3600
_PLANTED_SHARE = 0.1
_ARCHIVED_SHARE = 0.03
_EXTERNAL_IDS_SHARE = 0.17
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class PlantedProblem:
    """One data problem the generator put in a record on purpose."""

    id: str
    column: str
    problem: str


@dataclass
class Dataset:
    """Generated records, their planted problems and their internal aliases."""

    records: list[dict[str, Any]]
    planted: list[PlantedProblem]
    aliases: dict[str, list[str]] = field(default_factory=dict)
    account_id: str = ""
    #: Ids of customers with a current billing schedule (2024-07-30's ``billingStatus``).
    billing_active: set[str] = field(default_factory=set)


def format_time(moment: datetime) -> str:
    """Format an instant the way the API does: ``2022-06-28T16:47:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_customers(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[PlantedProblem]]:
    """Make ``n`` customer records (oldest first) and the list of problems planted in them."""
    data = generate_dataset(n, seed)
    return data.records, data.planted


def generate_dataset(
    n: int, seed: int = 0, api_version: fields.ApiVersion | str = fields.SEED
) -> Dataset:
    """Make ``n`` records plus their planted problems and aliases, deterministically.

    ``api_version`` picks the records' shape: the seed page's, or 2024-07-30's
    (contacts, custom properties, states; US and Canadian customers have a state).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    version = fields.api_version(api_version)
    if version is fields.SEED:
        rng = random.Random(f"sequence-nb-sandbox:{seed}")
        maker = _Maker(rng)
    else:
        rng = random.Random(f"sequence-nb-sandbox:{version.name}:{seed}")
        maker = _Maker(rng, (*vocab.COUNTRIES, vocab.CANADA))
    offsets = sorted(rng.sample(range(_SPAN_SECONDS), n))
    start = END_TIME - timedelta(seconds=_SPAN_SECONDS)
    records = [maker.customer(start + timedelta(seconds=s)) for s in offsets]
    aliases = maker.aliases(records)
    if version is fields.SEED:
        planted = _Planter(rng, maker).plant(records)
        return Dataset(records, planted, aliases, maker.account_id)
    shaper = CurrentShaper(rng, END_TIME, format_time)
    records = [shaper.record(r, maker.country_of[r["id"]]) for r in records]
    shaper.organize(records)
    planted = _Planter(rng, maker).plant(records, PROBLEM_CODES_2024, version)
    return Dataset(records, planted, aliases, maker.account_id, shaper.billing_active(records))


def ordered(record: dict[str, Any], version: fields.ApiVersion = fields.SEED) -> dict[str, Any]:
    """The record with its keys in the version's order: known fields first, then the rest."""
    out: dict[str, Any] = {name: record[name] for name in version.record_fields if name in record}
    out.update((k, v) for k, v in record.items() if k not in out)
    if isinstance(out.get("address"), dict):
        address = out["address"]
        tidy = {k: address[k] for k in version.address_fields if k in address}
        tidy.update((k, v) for k, v in address.items() if k not in tidy)
        out["address"] = tidy
    return out


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@functools.lru_cache(maxsize=4096)
def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def fill_pattern(pattern: str, rng: random.Random, alphabet: str = "") -> str:
    """Expand ``#`` (digit), ``@`` (letter of ``alphabet``) and ``[a-b]`` (digit range)."""
    out: list[str] = []
    for kind, text, size, low, high in _compile(pattern):
        if kind == "digits":
            out.append(f"{rng.randrange(10**size):0{size}d}")
        elif kind == "letter":
            out.append(rng.choice(alphabet))
        elif kind == "range":
            out.append(str(rng.randint(low, high)))
        else:
            out.append(text)
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> tuple[tuple[str, str, int, int, int], ...]:
    """Split a pattern into (kind, literal text, digit count, range low, range high)."""
    tokens: list[tuple[str, str, int, int, int]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "#":
            j = i
            while j < len(pattern) and pattern[j] == "#":
                j += 1
            tokens.append(("digits", "", j - i, 0, 0))
            i = j
        elif ch == "@":
            tokens.append(("letter", "", 0, 0, 0))
            i += 1
        elif ch == "[":
            tokens.append(("range", "", 0, int(pattern[i + 1]), int(pattern[i + 3])))
            i += 5
        else:
            tokens.append(("text", ch, 0, 0, 0))
            i += 1
    return tuple(tokens)


def to_e164(national: str, country: vocab.Country) -> str:
    """Turn a national-format number into E.164 (``+442071234567``)."""
    if national.startswith("+"):
        return "+" + "".join(ch for ch in national if ch.isdigit())
    digits = "".join(ch for ch in national if ch.isdigit())
    if country.trunk_prefix and digits.startswith(country.trunk_prefix):
        digits = digits[len(country.trunk_prefix) :]
    return f"+{country.calling_code}{digits}"


class _Maker:
    """Builds one clean record at a time, keeping names, domains and aliases unique."""

    def __init__(
        self, rng: random.Random, countries: tuple[vocab.Country, ...] = vocab.COUNTRIES
    ) -> None:
        self.rng = rng
        self.account_id = _uuid(rng)
        self.countries = countries
        self.cum_weights = list(itertools.accumulate(c.weight for c in countries))
        self.base_names: set[str] = set()
        self.domains: set[str] = set()
        self.next_number: dict[str, int] = {}
        self.country_of: dict[str, vocab.Country] = {}

    def customer(self, created: datetime) -> dict[str, Any]:
        rng = self.rng
        country = rng.choices(self.countries, cum_weights=self.cum_weights)[0]
        town = rng.choice(country.towns)
        base = self._base_name(town)
        domain = self._domain(base, country)
        record: dict[str, Any] = {
            "id": _uuid(rng),
            "createdAt": format_time(created),
            "sequenceAccountId": self.account_id,
            "legalName": f"{base} {rng.choice(country.suffixes)}",
        }
        contact = None
        if rng.random() < 0.85:
            contact = (rng.choice(country.first_names), rng.choice(country.last_names))
            record["contactName"] = f"{contact[0]} {contact[1]}"
        record["email"] = self._email(contact, domain)
        billing = (
            record["email"]
            if rng.random() < 0.15
            else f"{rng.choice(vocab.BILLING_MAILBOXES)}@{domain}"
        )
        record["billingEmail"] = billing
        record["billingEmails"] = [billing]
        record["address"] = self._address(country, town)
        record["taxStatus"] = rng.choices(fields.TAX_STATUSES, (80, 8, 12))[0]
        if rng.random() < 0.7:
            record["telephone"] = self._telephone(country, town)
        roll = rng.random()
        if roll < 0.6:
            record["url"] = f"https://www.{domain}/"
        elif roll < 0.8:
            record["url"] = f"https://{domain}"
        elif roll < 0.85:
            record["url"] = f"http://www.{domain}"
        record["label"] = rng.choice(vocab.LABELS)
        if rng.random() < 0.5:
            record["paymentReference"] = self._payment_reference(base)
        record["linkedServices"] = self._linked_services(created)
        if rng.random() < _EXTERNAL_IDS_SHARE:
            record["externalIds"] = [
                {"key": s, "value": v, "syncTime": t}
                for s, v, t in self._links(created, rng.randint(1, 2))
            ]
        if rng.random() < _ARCHIVED_SHARE:
            record["archivedAt"] = self._later(created)
        self.country_of[record["id"]] = country
        return record

    def _base_name(self, town: vocab.Town) -> str:
        rng = self.rng
        for attempt in range(8):
            base = f"{rng.choice(vocab.BRANDS)} {rng.choice(vocab.TRADES)}"
            if attempt >= 4:
                base = f"{base} {town.name}"
            if base.casefold() not in self.base_names:
                self.base_names.add(base.casefold())
                return base
        number = self.next_number.get(base, 2)
        while f"{base} {number}".casefold() in self.base_names:
            number += 1
        self.next_number[base] = number + 1
        base = f"{base} {number}"
        self.base_names.add(base.casefold())
        return base

    def _domain(self, base: str, country: vocab.Country) -> str:
        stem = _slug(base)
        domain = f"{stem}.{country.tld}"
        number = 2
        while domain in self.domains:
            domain = f"{stem}{number}.{country.tld}"
            number += 1
        self.domains.add(domain)
        return domain

    def _email(self, contact: tuple[str, str] | None, domain: str) -> str:
        rng = self.rng
        if contact is None:
            return f"{rng.choice(vocab.GENERIC_MAILBOXES)}@{domain}"
        first, last = _slug(contact[0]), _slug(contact[1])
        local = rng.choice((f"{first}.{last}", f"{first}.{last}", first, f"{first[0]}.{last}"))
        return f"{local}@{domain}"

    def _address(self, country: vocab.Country, town: vocab.Town) -> dict[str, str]:
        rng = self.rng
        number = rng.randint(1, 240)
        street = rng.choice(country.streets)
        if country.code == "ES":
            line1 = f"{street}, {number}"
        elif country.number_first:
            line1 = f"{number} {street}"
        else:
            line1 = f"{street} {number}"
        address = {"line1": line1}
        if rng.random() < 0.35:
            address["line2"] = rng.choice(country.line2)
        address["town"] = town.name
        address["postCode"] = fill_pattern(rng.choice(town.postcodes), rng, country.alphabet)
        address["country"] = country.code
        return address

    def _telephone(self, country: vocab.Country, town: vocab.Town) -> str:
        rng = self.rng
        patterns = town.phones + country.mobiles if rng.random() < 0.3 else town.phones
        national = fill_pattern(rng.choice(patterns), rng)
        return to_e164(national, country) if rng.random() < 0.3 else national

    def _payment_reference(self, base: str) -> str:
        rng = self.rng
        initials = "".join(word[0] for word in base.split()).upper()
        return rng.choice(
            (
                f"{initials}-{rng.randint(1000, 9999)}",
                f"PO-{rng.randint(2021, 2025)}-{rng.randint(1, 9999):04d}",
                f"{_slug(base)[:6].upper()}{rng.randint(100, 999)}",
            )
        )

    def _later(self, created: datetime) -> str:
        span = max(1, int((END_TIME - created).total_seconds()))
        return format_time(created + timedelta(seconds=self.rng.randrange(span)))

    def _links(self, created: datetime, count: int) -> list[tuple[str, str, str]]:
        rng = self.rng
        services = rng.sample(fields.SEED.integration_services, count)
        return [(s, self._external_id(s), self._later(created)) for s in services]

    def _linked_services(self, created: datetime) -> list[dict[str, str]]:
        count = self.rng.choices((0, 1, 2), (45, 40, 15))[0]
        return [
            {"externalId": v, "externalService": s, "syncTime": t}
            for s, v, t in self._links(created, count)
        ]

    def _external_id(self, service: str) -> str:
        rng = self.rng
        if service == "Stripe":
            return "cus_" + "".join(rng.choices(_ALNUM, k=14))
        if service == "Salesforce":
            return "001" + "".join(rng.choices(_ALNUM, k=15))
        if service == "Xero":
            return _uuid(rng)
        return str(rng.randint(10_000_000, 999_999_999))

    def aliases(self, records: list[dict[str, Any]]) -> dict[str, list[str]]:
        """Give about half the customers one or two unique internal aliases."""
        rng = self.rng
        out: dict[str, list[str]] = {}
        for number, record in enumerate(records, start=1):
            roll = rng.random()
            if roll < 0.5:
                continue
            names = [f"cust-{number:05d}"]
            if roll > 0.8:
                names.append(f"crm-{rng.randint(0, 0xFFFF):04x}{number:06d}")
            out[record["id"]] = names
        return out


class _Planter:
    """Puts exactly one problem in about one record in ten and lists what it did."""

    def __init__(self, rng: random.Random, maker: _Maker) -> None:
        self.rng = rng
        self.maker = maker

    def plant(
        self,
        records: list[dict[str, Any]],
        codes_planted: tuple[str, ...] = PROBLEM_CODES,
        version: fields.ApiVersion = fields.SEED,
    ) -> list[PlantedProblem]:
        rng = self.rng
        candidates = [i for i, r in enumerate(records) if "archivedAt" not in r]
        rng.shuffle(candidates)
        # Duplicates touch two records each (one code in seven), so plant a bit fewer.
        count = min(len(candidates), round(len(records) * _PLANTED_SHARE * 7 / 8))
        carriers, spare = candidates[:count], candidates[count:]
        codes = [codes_planted[i % len(codes_planted)] for i in range(count)]
        rng.shuffle(codes)
        planted: list[PlantedProblem] = []
        for index, code in zip(carriers, codes, strict=True):
            record = records[index]
            if code == "duplicate_legal_name":
                if not spare:
                    code = "whitespace"
                else:
                    other = records[spare.pop()]
                    record["legalName"] = other["legalName"]
                    planted.append(PlantedProblem(other["id"], "legalName", code))
                    planted.append(PlantedProblem(record["id"], "legalName", code))
                    continue
            column = self._apply(record, code)
            planted.append(PlantedProblem(record["id"], column, code))
        records[:] = [ordered(r, version) for r in records]
        return planted

    def _apply(self, record: dict[str, Any], code: str) -> str:
        rng = self.rng
        if code == "whitespace":
            columns = [
                c for c in ("legalName", "email", "address.town") if c != "email" or c in record
            ]
            if "contactName" in record:
                columns.append("contactName")
            column = rng.choice(columns)
            padded = rng.choice(("  {}", "{} ", " {} ", "{}  "))
            if column == "address.town":
                record["address"]["town"] = padded.format(record["address"]["town"])
            else:
                record[column] = padded.format(record[column])
            return column
        if code == "email_case":
            local, domain = record["email"].split("@")
            record["email"] = f"{_title(local)}@{_shout(domain, rng)}"
            return "email"
        if code == "invalid_email":
            column = rng.choice(fields.SEED.email_columns)
            local, domain = record[column].split("@")
            # Each form keeps the whole address in it, so invalid emails stay as
            # unique as valid ones and plant no duplicate by accident.
            bad = rng.choice((f"{local}.{domain}", f"{local}@{domain.replace('.', '')}"))
            record[column] = bad
            if column == "billingEmail":
                record["billingEmails"] = [bad]
            return column
        if code == "missing_billing_email":
            record.pop("billingEmail", None)
            record["billingEmails"] = []
            return "billingEmail"
        if code == "invalid_telephone":
            country = self.maker.country_of[record["id"]]
            choices = list(vocab.BAD_TELEPHONES)
            if country.code in vocab.SHORT_BAD_TELEPHONE_COUNTRIES:
                choices.append(vocab.SHORT_BAD_TELEPHONE)
            record["telephone"] = rng.choice(choices)
            return "telephone"
        raise ValueError(f"unknown problem code {code!r}")


def _title(local: str) -> str:
    return ".".join(part[:1].upper() + part[1:] for part in local.split("."))


def _shout(domain: str, rng: random.Random) -> str:
    first, *rest = domain.split(".")
    head = first.upper() if rng.random() < 0.6 else first.title()
    return ".".join([head, *(label.title() for label in rest)])
