"""Pydantic models of the seed page's update body and returned record.

Writes are strict: :class:`CustomerUpdate` rejects a body with an empty required
field, an address that is not an email address, a country that is not an ISO
3166-1 alpha-2 code or a field the seed does not list. Reads are lenient:
:class:`Customer` keeps unknown fields and checks only what every record has.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Final

import pycountry
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sequence_nb import fields
from sequence_nb.errors import InvalidBodyError


class TaxStatus(StrEnum):
    """How a customer is taxed."""

    TAXED = "TAXED"
    TAX_EXEMPT = "TAX_EXEMPT"
    REVERSE_CHARGED = "REVERSE_CHARGED"


#: What ends a line (as :meth:`str.splitlines` reads text).
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


#: Characters that show as nothing or as a blank but are no control or format character:
#: Unicode's default-ignorable code points of other categories (DerivedCoreProperties.txt:
#: the combining grapheme joiner, Hangul fillers, Khmer inherent vowels, the variation
#: selectors, the unassigned U+2065, U+FFF0..U+FFF8 and U+E0000..U+E0FFF) and the blank
#: Braille pattern. A text holding one looks like the text without it.
_BLANK_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2065, 0x2065),
    (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)  # fmt: skip
_BLANK = re.compile("[" + "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in _BLANK_RANGES) + "]")
#: What :func:`escape_unseen` escapes although :meth:`str.isprintable` passes it.
_ESCAPED_PRINTABLE = re.compile("[\\\\" + _BLANK.pattern[1:])
#: Invisible characters real text needs: the joiners (Persian, Indic scripts, joined
#: emoji), the variation selectors of emoji and standardized variants (U+FE00..U+FE0F)
#: and Mongolian's selectors and vowel separator (U+180B..U+180F).
_NEEDED = frozenset(
    {"\u200c", "\u200d", *map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0x180B, 0x1810))}
)
#: An emoji flag of a subdivision (Scotland, Wales): a black flag, tag characters, a
#: cancel tag. Tag characters anywhere else would carry text no reader sees.
_TAG_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")


def is_unseen(char: str) -> bool:
    """Whether ``char`` shows as nothing, as a blank or as something else than itself:
    control characters (ESC, tabs, line breaks), format and bidi characters, spaces other
    than U+0020, surrogates, unassigned and private-use code points (all that
    :meth:`str.isprintable` refuses) and the blank characters of ``_BLANK_RANGES``."""
    return not char.isprintable() or _BLANK.match(char) is not None


def escape_unseen(text: str) -> str:
    """``text`` for a person to read: each character :func:`is_unseen` finds, and the
    backslash, as its Python escape (``\\x1b``, ``\\u200b``, ``\\\\``), so that no text
    moves a terminal's cursor or breaks a line, and no two texts look alike.

    The one escaping every value shown from a plan, a journal or a server goes through
    (the preview, the HTML view, the command line)."""
    if text.isprintable() and _ESCAPED_PRINTABLE.search(text) is None:
        return text  # the common case, decided without a loop
    return "".join(
        char.encode("unicode_escape").decode("ascii") if char == "\\" or is_unseen(char) else char
        for char in text
    )


def _printable(value: str) -> str:
    """Refuse what a reader cannot see or what breaks the one line every customer text
    field is: control characters (tabs and line breaks included), Unicode format
    characters (category Cf: bidi controls such as U+202E, zero-width characters,
    U+FEFF) and characters that show as nothing or a blank (U+034F, Hangul fillers,
    U+2800, ideographic variation selectors), which make two texts that look the same
    differ. No-break and other spaces, accents in either normal form, emoji (with their
    selectors, joiners and flag tags) and right-to-left text pass."""
    if value.isprintable() and _BLANK.search(value) is None:  # the common case, no loop
        return value
    text = _TAG_FLAG.sub(_flag_placeholder, value)  # same length: positions hold
    for position, char in enumerate(text):
        problem = _unseen_character(char, position)
        if problem:
            raise ValueError(f"holds {problem}")
    return value


def _flag_placeholder(flag: re.Match[str]) -> str:
    """A flag emoji's black flag followed by as many plain letters as it has tags."""
    return flag.group()[0] + "x" * (len(flag.group()) - 1)


def _unseen_character(char: str, position: int) -> str | None:
    """What is wrong with ``char`` in a one-line text field, or ``None``."""
    if char == "\t":
        return f"a tab (at position {position}): the field is one line"
    if char in _LINE_BREAKS:
        return f"a line break ({char!r} at position {position}): the field is one line"
    category = unicodedata.category(char)
    if category == "Cc":
        return f"a control character ({char!r} at position {position})"
    if category == "Cs":
        return f"a lone surrogate (U+{ord(char):04X} at position {position}), which is no text"
    if char in _NEEDED:
        return None
    name = f"U+{ord(char):04X} {unicodedata.name(char, 'without a name')}"
    if category == "Cf":
        return (
            f"an invisible format character ({name} at position {position}): "
            "it changes how the text shows without being seen"
        )
    if _BLANK.match(char):
        return (
            f"an invisible character ({name} at position {position}): it shows as nothing "
            "or as a blank, so the text looks like one without it"
        )
    return None


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return _printable(value)


def _no_surrounding_space(value: str) -> str:
    if value != value.strip():
        raise ValueError(f"{value!r} has spaces at its start or end")
    return value


@lru_cache(maxsize=65536)
def email_problem(value: str) -> str | None:
    """What ``email_validator`` finds wrong with an address (syntax only, no DNS), or
    None when it is valid: the one verdict write validation and ``check`` share."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _email_address(value: str) -> str:
    _no_surrounding_space(value)
    problem = email_problem(value)
    if problem is not None:
        raise ValueError(f"{value!r} is not an email address: {problem}")
    return value


@lru_cache(maxsize=1024)
def _is_alpha2(value: str) -> bool:
    return (
        len(value) == 2 and value.isupper() and pycountry.countries.get(alpha_2=value) is not None
    )


def _integration_service(value: str) -> str:
    if value not in fields.SEED.integration_services:
        services = ", ".join(fields.SEED.integration_services)
        raise ValueError(f"{value!r} is not a service Sequence links to ({services})")
    return value


def _country_code(value: str) -> str:
    if not _is_alpha2(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. GB)")
    return value


RequiredText = Annotated[str, AfterValidator(_not_blank)]
Text = Annotated[str, AfterValidator(_printable)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
CountryCode = Annotated[str, AfterValidator(_country_code)]
IntegrationService = Annotated[str, AfterValidator(_integration_service)]


class Address(BaseModel):
    """A postal address; ``country`` is an ISO 3166-1 alpha-2 code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line1: RequiredText
    line2: Text | None = None
    town: RequiredText
    postCode: RequiredText
    country: CountryCode


class ExternalId(BaseModel):
    """A link to the customer in another service, as an update body sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: IntegrationService
    value: Text


class CustomerUpdate(BaseModel):
    """The body of ``PUT /customers/{id}`` (and ``POST /customers``), validated strictly.

    A PUT replaces the editable fields: build it from the full current record
    plus the edits, never from the edits alone.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    legalName: RequiredText
    contactName: Text | None = None
    email: EmailAddress
    billingEmail: EmailAddress | None = None
    address: Address
    taxStatus: TaxStatus
    telephone: Text | None = None
    url: Text | None = None
    label: Text | None = None
    paymentReference: Text | None = None
    customerAliases: list[Text] | None = None
    externalIds: list[ExternalId] | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send: only the seed's update fields, unset ones left out."""
        body = self.model_dump(mode="json", exclude_none=True)
        return {name: body[name] for name in fields.SEED.body_fields if name in body}


#: Fields of the ``POST /customers`` body in Sequence's published 2023-11-23 document, in
#: its order. Unlike an update it takes ``billingEmails`` (a list, required) and has no
#: ``billingEmail`` or ``paymentReference``.
CREATE_FIELDS = (
    "legalName",
    "contactName",
    "address",
    "email",
    "billingEmails",
    "telephone",
    "url",
    "label",
    "taxStatus",
    "customerAliases",
    "externalIds",
)


class CustomerCreate(BaseModel):
    """The body of ``POST /customers``, as Sequence's published document defines it.

    The seed page covers updates only; for a create the document wins, and it
    requires ``billingEmails``. ``taxStatus`` is required here as in an update
    (every record has one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    legalName: RequiredText
    contactName: Text | None = None
    address: Address
    email: EmailAddress
    billingEmails: list[EmailAddress] = Field(default_factory=list)
    telephone: Text | None = None
    url: Text | None = None
    label: Text | None = None
    taxStatus: TaxStatus
    customerAliases: list[Text] | None = None
    externalIds: list[ExternalId] | None = None

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send; ``billingEmails`` is always there, maybe empty."""
        body = self.model_dump(mode="json", exclude_none=True)
        return {name: body[name] for name in CREATE_FIELDS if name in body}


class LinkedService(BaseModel):
    """A service the customer is linked to, as a record reports it."""

    model_config = ConfigDict(extra="allow")

    externalId: str
    externalService: str
    syncTime: str


class Customer(BaseModel):
    """A customer record as the API returns it. Unknown fields are kept."""

    model_config = ConfigDict(extra="allow")

    id: str
    createdAt: str
    sequenceAccountId: str
    legalName: str
    email: str
    address: dict[str, Any]
    taxStatus: str
    billingEmails: list[str] = Field(default_factory=list)
    linkedServices: list[LinkedService] = Field(default_factory=list)
    billingEmail: str | None = None
    contactName: str | None = None
    label: str | None = None
    paymentReference: str | None = None
    telephone: str | None = None
    url: str | None = None

    def to_update(self) -> CustomerUpdate:
        """The update body that writes this record back unchanged (validated strictly)."""
        return CustomerUpdate.model_validate(update_body_of(self.model_dump()))


def _copied(value: Any) -> Any:
    """A deep copy of a JSON value (nested objects and lists only are copied)."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def update_body_of(
    record: Mapping[str, Any], version: fields.ApiVersion | str = fields.SEED
) -> dict[str, Any]:
    """The update fields of a record in ``version``, as an unvalidated dict of its own.

    The result shares nothing with ``record`` (nested objects are copied), so
    edits written into a body never reach the record it was made from. A
    record's ``externalIds`` (newer API answers carry them with a ``syncTime``)
    go back as ``{"key", "value"}`` pairs: a PUT that left them out could unlink
    the customer from its other services. For 2024-07-30 see :func:`update_body_2024_of`.
    """
    version = fields.api_version(version)
    if version is not fields.SEED:
        return update_body_2024_of(record, version)
    body = {
        name: _copied(record[name])
        for name in fields.SEED.body_fields
        if record.get(name) is not None
    }
    links = body.get("externalIds")
    if isinstance(links, list):
        body["externalIds"] = [
            {"key": link.get("key"), "value": link.get("value")} if isinstance(link, dict) else link
            for link in links
        ]
    return body


def field_errors(exc: ValidationError, *, kind: str = "update") -> list[tuple[str, str]]:
    """``(column, message)`` pairs of a pydantic error, columns named like frame columns.

    ``("address", "country")`` becomes ``"address.country"``, so a message can name
    the column a person sees in the grid. ``kind`` names the body ("update", "create").
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        cause = error.get("ctx", {}).get("error")
        where = (*error["loc"], *cause.path) if isinstance(cause, RuleError) else error["loc"]
        key = where[-1:] == ("[key]",)  # a dict's key (a custom property's name) is wrong
        column = ".".join(str(part) for part in where[: -1 if key else None]) or "(body)"
        message = error["msg"].removeprefix("Value error, ")
        message = f"(the name) {message}" if key else message
        if error["type"] == "extra_forbidden":
            message = f"is not a field of the {kind} body"
        problems.append((column, message))
    return problems


def update_losses(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What a PUT built from ``record`` would lose, as ``(column, message)`` pairs.

    The update body carries one ``billingEmail``, and the API answers a write with
    ``billingEmails == [billingEmail]``: a customer with other billing addresses
    would lose them. Such a row is reported, never written.
    """
    listed = record.get("billingEmails") or []
    if not isinstance(listed, list) or not all(isinstance(a, str) for a in listed):
        return [
            (
                "billingEmails",
                f"holds {listed!r}, not a list of addresses: an update could not keep it; "
                "correct it in Sequence",
            )
        ]
    kept = record.get("billingEmail")
    dropped = [address for address in listed if address != kept]
    if not dropped:
        return []
    return [
        (
            "billingEmails",
            f"holds {len(listed)} addresses but an update carries only billingEmail; "
            f"writing would drop {', '.join(map(repr, dropped))}",
        )
    ]


def validate_update_body(
    body: Mapping[str, Any] | Any,
    *,
    customer_id: str | None = None,
    version: fields.ApiVersion | str = fields.SEED,
) -> dict[str, Any]:
    """The JSON body to send for ``body`` (a model or dict), or :class:`InvalidBodyError`.

    The error names every field that breaks a rule, so nothing invalid is sent.
    ``version`` (a value or a name) picks the body's shape: the seed's
    :class:`CustomerUpdate`, or 2024-07-30's :class:`CreateOrUpdateCustomerRequest`.
    """
    version = fields.api_version(version)
    if version is not fields.SEED:
        return validate_body_2024(body, customer_id=customer_id, version=version)
    if isinstance(body, CreateOrUpdateCustomerRequest):
        problem = (
            f"is a {fields.V2024_07_30.name} body (CreateOrUpdateCustomerRequest), "
            "not one of the seed's (CustomerUpdate)"
        )
        raise InvalidBodyError([("(body)", problem)], customer_id=customer_id)
    if isinstance(body, CustomerUpdate):
        return body.to_body()
    if not isinstance(body, Mapping):
        raise InvalidBodyError(
            [("(body)", f"must be a CustomerUpdate or a dict, not {type(body).__name__}")],
            customer_id=customer_id,
        )
    try:
        return CustomerUpdate.model_validate(dict(body)).to_body()
    except ValidationError as exc:
        raise InvalidBodyError(field_errors(exc), customer_id=customer_id) from None


_NOT_IN_CREATE = {
    "paymentReference": (
        "is not a field of the create body (Sequence's published POST /customers has none): "
        "create the customer, then set it with an update"
    ),
}


def validate_create_body(body: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The ``POST /customers`` body to send for ``body``, or :class:`InvalidBodyError`.

    ``body`` is a :class:`CustomerCreate`, a :class:`CustomerUpdate` or a dict of
    either shape: an update's one ``billingEmail`` becomes the ``billingEmails``
    list the published document requires (empty when there is none).
    """
    if isinstance(body, CustomerCreate):
        return body.to_body()
    if isinstance(body, CustomerUpdate):
        body = body.to_body()
    if not isinstance(body, Mapping):
        raise InvalidBodyError(
            [("(body)", f"must be a CustomerCreate or a dict, not {type(body).__name__}")],
            kind="create",
        )
    fields_ = dict(body)
    if "billingEmail" in fields_:
        one = fields_.pop("billingEmail")
        if fields_.get("billingEmails") is not None:
            problem = "give billingEmails (the list a create takes) or billingEmail, not both"
            raise InvalidBodyError([("billingEmail", problem)], kind="create")
        fields_["billingEmails"] = [] if one is None else [one]
    try:
        return CustomerCreate.model_validate(fields_).to_body()
    except ValidationError as exc:
        problems = [
            (column, _NOT_IN_CREATE.get(column, message) if "not a field" in message else message)
            for column, message in field_errors(exc, kind="create")
        ]
        raise InvalidBodyError(problems, kind="create") from None


# -- 2024-07-30 bodies ------------------------------------------------------------------------

#: The version whose names the models below take.
_V2024: Final = fields.V2024_07_30
#: The codes of Canada's provinces and territories among the version's states.
_PROVINCES: Final = frozenset(
    {"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}
)
#: The integrations ``pushToIntegrations`` may name (the 2024-07-30 document lists Xero only).
PUSH_INTEGRATIONS: Final = ("Xero",)


class RuleError(ValueError):
    """A rule that spans fields, broken at ``path`` below the model that checks it.

    :func:`field_errors` adds ``path`` to the error's location, so the message names
    the column a person sees (``address.state``, ``contacts.1.email``).
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def _one_of(allowed: tuple[str, ...], what: str) -> Any:
    """An after-validator refusing a text not in ``allowed``."""

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not {what} ({', '.join(allowed)})")
        return value

    return AfterValidator(check)


StateCode = Annotated[str, _one_of(_V2024.states, "a state or province code")]
BillingPreference = Annotated[str, _one_of(_V2024.billing_preferences, "a billing preference")]
CustomerStatus = Annotated[str, _one_of(_V2024.enums["status"], "a customer status")]
IntegrationService2024 = Annotated[
    str, _one_of(_V2024.integration_services, "a service Sequence links to")
]
PushIntegration = Annotated[str, _one_of(PUSH_INTEGRATIONS, "an integration Sequence pushes to")]


def _property_key(value: str) -> str:
    if not value.strip():
        raise ValueError("a custom property needs a name")
    _no_surrounding_space(value)
    return _printable(value)


PropertyKey = Annotated[str, AfterValidator(_property_key)]


class Address20240730(BaseModel):
    """A 2024-07-30 postal address: ``postcode``, and a ``state`` for US and CA addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line1: RequiredText
    line2: Text | None = None
    town: RequiredText
    state: StateCode | None = None
    postcode: RequiredText
    country: CountryCode

    @model_validator(mode="after")
    def _state_of_country(self) -> Address20240730:
        if self.country not in _V2024.state_countries:
            return self
        if self.state is None:
            raise RuleError(
                ("state",),
                f"is required for an address in {self.country} (a code such as "
                f"{'NY' if self.country == 'US' else 'ON'})",
            )
        if (self.state in _PROVINCES) != (self.country == "CA"):
            kind, wanted = (
                ("a Canadian province", "a US state")
                if self.state in _PROVINCES
                else ("a US state", "a Canadian province")
            )
            raise RuleError(
                ("state",), f"{self.state!r} is {kind}; an address in {self.country} needs {wanted}"
            )
        return self


class ContactRequest(BaseModel):
    """One contact of a 2024-07-30 update body (its id and times are the server's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RequiredText
    email: EmailAddress
    billingPreference: BillingPreference


class IntegrationIdRequest(BaseModel):
    """A link to the customer in another service, as a 2024-07-30 body sends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: IntegrationService2024
    id: Text


class CreateOrUpdateCustomerRequest(BaseModel):
    """The body of ``PUT /customers/{id}`` and ``POST /customers`` in 2024-07-30.

    ``contacts`` replaces all the customer's contacts (an empty list removes them
    all); when any contact gets billing mail (``STANDARD`` or ``PRIMARY``) one must
    be ``PRIMARY``. ``customProperties`` replaces all properties when given and
    leaves them alone when left out (``None``). Build it from the fresh
    ``GET /customers/{id}`` record (:func:`update_body_of`): list pages carry no contacts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    legalName: RequiredText
    address: Address20240730
    url: Text | None = None
    label: Text | None = None
    taxStatus: TaxStatus
    customerAliases: list[Text] | None = None
    integrationIds: list[IntegrationIdRequest] | None = None
    parentId: RequiredText | None = None
    contacts: list[ContactRequest]
    pushToIntegrations: list[PushIntegration] | None = None
    status: CustomerStatus | None = None
    customProperties: dict[PropertyKey, Text] | None = None

    @model_validator(mode="after")
    def _contact_rules(self) -> CreateOrUpdateCustomerRequest:
        seen: dict[str, int] = {}
        for number, contact in enumerate(self.contacts):
            first = seen.setdefault(contact.email.casefold(), number)
            if first != number:
                raise RuleError(
                    ("contacts", number, "email"),
                    f"{contact.email!r} is the address of contact {first} too: each contact "
                    "needs an address of its own",
                )
        preferences = {contact.billingPreference for contact in self.contacts}
        if preferences & {"STANDARD", "PRIMARY"} and "PRIMARY" not in preferences:
            raise RuleError(
                ("contacts",),
                "has contacts that receive billing mail (STANDARD) but none is PRIMARY: "
                "make one of them PRIMARY",
            )
        return self

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send, fields in the version's order, unset ones left out
        (an empty ``contacts`` or ``customProperties`` is sent: it clears them)."""
        body = self.model_dump(mode="json", exclude_none=True)
        return {name: body[name] for name in _V2024.body_fields if name in body}


def validate_body_2024(
    body: Mapping[str, Any] | Any,
    *,
    customer_id: str | None = None,
    version: fields.ApiVersion = _V2024,
    kind: str = "update",
) -> dict[str, Any]:
    """The 2024-07-30 body to send for ``body`` (a model or dict), or :class:`InvalidBodyError`."""
    if isinstance(body, CreateOrUpdateCustomerRequest):
        return body.to_body()
    if not isinstance(body, Mapping):
        shown = type(body).__name__
        problem = f"must be a CreateOrUpdateCustomerRequest or a dict ({version.name}), not {shown}"
        raise InvalidBodyError([("(body)", problem)], customer_id=customer_id, kind=kind)
    try:
        return CreateOrUpdateCustomerRequest.model_validate(dict(body)).to_body()
    except ValidationError as exc:
        raise InvalidBodyError(
            field_errors(exc, kind=kind), customer_id=customer_id, kind=kind
        ) from None


def update_body_2024_of(
    record: Mapping[str, Any], version: fields.ApiVersion = _V2024
) -> dict[str, Any]:
    """A 2024-07-30 record's update body, as an unvalidated dict of its own.

    Contacts go back as ``{name, email, billingPreference}`` (archived contacts are
    left out: sent back they would come back to life), integration links as
    ``{service, id}``, custom properties whole; read-only fields (``id``, ``domain``,
    ``organizations``, ``archivedAt``...) are dropped. A record without ``contacts``
    (a list page's) gives a body without them, which validation refuses: an update
    must carry every contact, and only ``GET /customers/{id}`` has them.
    """
    body = {
        name: _copied(record[name]) for name in version.body_fields if record.get(name) is not None
    }
    contacts = body.get("contacts")
    if isinstance(contacts, list):
        body["contacts"] = contacts_body(contacts)
    links = body.get("integrationIds")
    if isinstance(links, list):
        body["integrationIds"] = [
            {"service": link.get("service"), "id": link.get("id")}
            if isinstance(link, dict)
            else link
            for link in links
        ]
    return body


def without_unedited_keyed(
    body: dict[str, Any], columns: Sequence[str], version: fields.ApiVersion
) -> dict[str, Any]:
    """``body`` without the keyed objects (``customProperties``) no column edits.

    Omitted, the API leaves them as they are; sent, they replace all of them. So a
    body carries every property exactly when some property is edited.
    """
    edited = {version.keyed_column(column) for column in columns}
    return {k: v for k, v in body.items() if k not in version.keyed_fields or k in edited}


# -- record paths ---------------------------------------------------------------------------


def set_path(record: dict[str, Any], column: str, value: Any) -> None:
    """Set a dotted column (``address.town``) in a nested record; ``None`` removes it."""
    *parents, leaf = fields.column_path(column)
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
    """The value at a dotted column of a nested record, ``None`` when absent.

    A 2024-07-30 ``contacts`` list reads as an update body carries it (each contact's
    name, email and billing preference; archived contacts left out), so a record
    and a body compare: they hold the same contacts when this gives the same list.
    """
    value: Any = record
    for part in fields.column_path(column):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if column == fields.V2024_07_30.contacts_field and isinstance(value, list):
        return contacts_body(value)
    return value


def contacts_body(contacts: list[Any]) -> list[Any]:
    """Contacts as an update body sends them: ``{name, email, billingPreference}`` each,
    archived ones left out (sent back, they would come back to life)."""
    names = fields.V2024_07_30.contact_body_fields
    return [
        {name: contact[name] for name in names if name in contact}
        if isinstance(contact, dict)
        else contact
        for contact in contacts
        if not (isinstance(contact, dict) and contact.get("archivedAt"))
    ]
