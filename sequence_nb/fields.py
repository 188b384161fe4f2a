"""Field names of the customer record, one value per API version.

Sequence versions its API by date (the ``Sequence-Version`` header), and each
version names and shapes the record and the update body its own way. One
:class:`ApiVersion` describes one version: the record's fields, the update body's
fields and which it requires, the columns a frame shows (editable and read-only),
the checks' columns by role, and how nested names flatten into columns. Every other
module takes names from such a value, so a second version is a second value, not
``if version`` through the code.

:data:`SEED` is the version of the update-customer page this project comes from
(no header is sent); :data:`V2024_07_30` is Sequence's newest. :func:`api_version`
turns a name (or ``None``: the ``SEQUENCE_API_VERSION`` environment variable, else
the seed) into the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = [
    "API_VERSIONS",
    "API_VERSION_ENV",
    "CREATED_AT",
    "ID",
    "PAGE_ITEMS",
    "PATH_SEPARATOR",
    "SEED",
    "TAX_STATUSES",
    "TIMESTAMP_FORMAT",
    "V2024_07_30",
    "ApiVersion",
    "UnknownApiVersionError",
    "api_version",
    "column_path",
]

# --- Names every version shares. ---

#: The record's identity field.
ID: Final = "id"
#: When the customer was created: ISO 8601 UTC text in JSON.
CREATED_AT: Final = "createdAt"
#: Key of the list of records in a ``GET /customers`` page body.
PAGE_ITEMS: Final = "items"
#: Joins a nested field's JSON path into a flat column name, as
#: ``pandas.json_normalize`` does: ``address.town``.
PATH_SEPARATOR: Final = "."
#: How the API writes timestamps, as a polars/chrono format: seconds, then
#: ``.`` and 3, 6 or 9 digits only when the fraction is not zero, then ``Z``.
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.fZ"
#: The environment variable naming the version when no code names one.
API_VERSION_ENV: Final = "SEQUENCE_API_VERSION"

#: The tax statuses every version allows.
TAX_STATUSES: Final = ("TAXED", "TAX_EXEMPT", "REVERSE_CHARGED")
#: Services an ``externalIds`` entry may name (the 2023-11-23 document).
_SEED_SERVICES: Final = (
    "Amazon_Redshift",
    "Google_BigQuery",
    "Google_Sheets",
    "HubSpot",
    "NetSuite",
    "QuickBooks_Online",
    "Salesforce",
    "Slack",
    "Snowflake",
    "Stripe",
    "Xero",
)


def _frozen(mapping: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)
class ApiVersion:
    """The names one version of the customers API gives the record and the update body.

    Columns are JSON paths joined by :data:`PATH_SEPARATOR` (``address.town``);
    an object named in ``keyed_fields`` flattens into a column per key
    (``customProperties.region``). The derived names (:attr:`required_columns`,
    :attr:`known_columns`) follow from the rest. Each version is one value, compared
    and hashed by identity.
    """

    #: The version's name, as a user gives it (``"seed"``, ``"2024-07-30"``).
    name: str
    #: The ``Sequence-Version`` header it sends (None: no header, the seed's way).
    header: str | None
    #: Top-level fields of the record a read returns, in the order the frame shows them.
    record_fields: tuple[str, ...]
    #: Record fields that ``GET /customers`` pages leave out (only the one-customer read has them).
    listing_omits: tuple[str, ...]
    #: Top-level fields of the update body, in the order bodies are written.
    body_fields: tuple[str, ...]
    #: Body fields every update must carry.
    body_required: tuple[str, ...]
    #: Parts of the nested ``address`` object, and which an update requires.
    address_fields: tuple[str, ...]
    address_required: tuple[str, ...]
    #: Flat columns a person may edit, in display order.
    editable_columns: tuple[str, ...]
    #: Flat columns (record fields) every read returns that no update body may carry.
    read_only_columns: tuple[str, ...]
    #: Columns whose values come from a fixed list, and that list.
    enums: Mapping[str, tuple[str, ...]]
    #: Objects whose keys become columns of their own (``customProperties.<key>``).
    keyed_fields: tuple[str, ...]
    #: Record fields holding lists, each with the names of its entries' fields
    #: (empty: a list of text).
    list_fields: Mapping[str, tuple[str, ...]]
    #: Columns by the role the checks and clean-ups give them.
    email_columns: tuple[str, ...]
    telephone_columns: tuple[str, ...]
    url_columns: tuple[str, ...]
    legal_name_column: str
    country_column: str
    tax_status_column: str
    #: The column naming a state or province (None: the version has none), the codes
    #: it allows, and the countries whose addresses need one.
    state_column: str | None = None
    states: tuple[str, ...] = ()
    state_countries: tuple[str, ...] = ()
    #: Services an integration link may name.
    integration_services: tuple[str, ...] = _SEED_SERVICES
    #: The contacts list (None: the version keeps emails on the record), its
    #: entries' fields, those an update sends, and the billing preferences.
    contacts_field: str | None = None
    contact_fields: tuple[str, ...] = ()
    contact_body_fields: tuple[str, ...] = ()
    billing_preferences: tuple[str, ...] = ()
    #: Whether ``POST /customers/{id}/archive`` exists.
    can_archive: bool = False
    #: Extra list filters ``GET /customers`` takes beyond the seed's.
    listing_filters: tuple[str, ...] = field(default=())

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Flat columns that must hold a non-empty value in every update body.

        The required body fields in display order, ``address`` spelled out as its
        required parts; lists (``contacts``) keep rules of their own.
        """
        wanted = {
            name for name in self.body_required if name not in ("address", self.contacts_field)
        }
        wanted.update(self.column("address", part) for part in self.address_required)
        return tuple(name for name in self.editable_columns if name in wanted)

    @property
    def known_columns(self) -> tuple[str, ...]:
        """Every column the frame knows, in its stable order: identity, editable, read-only.

        Unknown fields (and ``keyed_fields`` columns) follow these.
        """
        rest = tuple(name for name in self.read_only_columns if name != ID)
        return (ID, *self.editable_columns, *rest)

    def column(self, *path: str) -> str:
        """The flat column of a JSON path: ``column("address", "town") == "address.town"``."""
        return PATH_SEPARATOR.join(path)

    def keyed_column(self, name: str) -> str | None:
        """The object of ``keyed_fields`` a column belongs to (``customProperties``), else None."""
        head, sep, key = name.partition(PATH_SEPARATOR)
        return head if sep and key and head in self.keyed_fields else None

    def is_editable(self, column: str) -> bool:
        """Whether a person may edit ``column`` (a known editable or a keyed column)."""
        return column in self.editable_columns or self.keyed_column(column) is not None


#: The version of the seed page (``PUT /customers/{id}`` with no ``Sequence-Version``).
SEED: Final = ApiVersion(
    name="seed",
    header=None,
    record_fields=(
        "id",
        "createdAt",
        "sequenceAccountId",
        "legalName",
        "contactName",
        "email",
        "billingEmail",
        "billingEmails",
        "address",
        "taxStatus",
        "telephone",
        "url",
        "label",
        "paymentReference",
        "linkedServices",
    ),
    listing_omits=(),
    body_fields=(
        "legalName",
        "contactName",
        "email",
        "billingEmail",
        "address",
        "taxStatus",
        "telephone",
        "url",
        "label",
        "paymentReference",
        "customerAliases",
        "externalIds",
    ),
    body_required=("address", "email", "legalName", "taxStatus"),
    address_fields=("line1", "line2", "town", "postCode", "country"),
    address_required=("line1", "town", "postCode", "country"),
    editable_columns=(
        "legalName",
        "contactName",
        "email",
        "billingEmail",
        "address.line1",
        "address.line2",
        "address.town",
        "address.postCode",
        "address.country",
        "taxStatus",
        "telephone",
        "url",
        "label",
        "paymentReference",
    ),
    read_only_columns=("id", "createdAt", "sequenceAccountId", "billingEmails", "linkedServices"),
    enums=_frozen({"taxStatus": TAX_STATUSES}),
    keyed_fields=(),
    list_fields=_frozen(
        {
            "billingEmails": (),
            "linkedServices": ("externalId", "externalService", "syncTime"),
        }
    ),
    email_columns=("email", "billingEmail"),
    telephone_columns=("telephone",),
    url_columns=("url",),
    legal_name_column="legalName",
    country_column="address.country",
    tax_status_column="taxStatus",
)

#: States and provinces the 2024-07-30 document allows in ``address.state``.
_STATES: Final = (
    *("AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "ID", "IL"),
    *("IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE"),
    *("NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD"),
    *("TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY"),
    *("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"),
)

#: Sequence's newest version: contacts, custom properties, states, a status, archiving.
V2024_07_30: Final = ApiVersion(
    name="2024-07-30",
    header="2024-07-30",
    record_fields=(
        "id",
        "createdAt",
        "legalName",
        "address",
        "url",
        "domain",
        "label",
        "taxStatus",
        "status",
        "customProperties",
        "contacts",
        "integrationIds",
        "organizations",
        "archivedAt",
    ),
    listing_omits=("contacts",),
    body_fields=(
        "legalName",
        "address",
        "url",
        "label",
        "taxStatus",
        "customerAliases",
        "integrationIds",
        "parentId",
        "contacts",
        "pushToIntegrations",
        "status",
        "customProperties",
    ),
    body_required=("address", "contacts", "legalName", "taxStatus"),
    address_fields=("line1", "line2", "town", "state", "postcode", "country"),
    address_required=("line1", "town", "postcode", "country"),
    editable_columns=(
        "legalName",
        "address.line1",
        "address.line2",
        "address.town",
        "address.state",
        "address.postcode",
        "address.country",
        "taxStatus",
        "status",
        "url",
        "label",
    ),
    read_only_columns=(
        "id",
        "createdAt",
        "domain",
        "integrationIds",
        "organizations",
        "archivedAt",
    ),
    enums=_frozen({"taxStatus": TAX_STATUSES, "status": ("DRAFT", "ACTIVE")}),
    keyed_fields=("customProperties",),
    list_fields=_frozen(
        {
            "integrationIds": ("service", "id", "lastSynced", "isPending"),
            "organizations": ("id", "owner", "members"),
        }
    ),
    email_columns=(),
    telephone_columns=(),
    url_columns=("url",),
    legal_name_column="legalName",
    country_column="address.country",
    tax_status_column="taxStatus",
    state_column="address.state",
    states=_STATES,
    state_countries=("US", "CA"),
    integration_services=(
        *_SEED_SERVICES,
        *("GoCardless", "Avalara", "Anrok", "Attio", "Numeral", "Rillet", "Sphere"),
    ),
    contacts_field="contacts",
    contact_fields=(
        "id",
        "name",
        "email",
        "billingPreference",
        "createdAt",
        "updatedAt",
        "archivedAt",
    ),
    contact_body_fields=("name", "email", "billingPreference"),
    billing_preferences=("PRIMARY", "STANDARD", "NONE"),
    can_archive=True,
    listing_filters=("label", "billingStatus"),
)

#: Every version this package speaks, by name.
API_VERSIONS: Final[Mapping[str, ApiVersion]] = MappingProxyType(
    {version.name: version for version in (SEED, V2024_07_30)}
)


#: Objects whose keys are free text in some version (``customProperties``).
_KEYED: Final = frozenset(
    name for version in API_VERSIONS.values() for name in version.keyed_fields
)


def column_path(column: str) -> list[str]:
    """The JSON path of a flat column: ``address.town`` is ``["address", "town"]``.

    The keys of a keyed object are free text and may hold dots, so such a column
    splits at its first dot only: ``customProperties.a.b`` is ``["customProperties", "a.b"]``.
    """
    head, _, rest = column.partition(PATH_SEPARATOR)
    if rest and head in _KEYED:
        return [head, rest]
    return column.split(PATH_SEPARATOR)


class UnknownApiVersionError(ValueError):
    """A version name this package does not speak."""

    def __init__(self, name: str, where: str) -> None:
        known = ", ".join(API_VERSIONS)
        super().__init__(f"unknown API version {name!r} ({where}); this package speaks {known}")
        self.name = name


def api_version(version: str | ApiVersion | None = None) -> ApiVersion:
    """The :class:`ApiVersion` a name stands for.

    ``None`` reads :data:`API_VERSION_ENV` (``SEQUENCE_API_VERSION``), and falls back
    to :data:`SEED` when it is unset or empty. A name this package does not speak
    raises :class:`UnknownApiVersionError` naming the ones it does.
    """
    if isinstance(version, ApiVersion):
        return version
    where = "given"
    if version is None:
        version = os.environ.get(API_VERSION_ENV, "").strip() or SEED.name
        where = f"from ${API_VERSION_ENV}"
    found = API_VERSIONS.get(version)
    if found is None:
        raise UnknownApiVersionError(version, where)
    return found
