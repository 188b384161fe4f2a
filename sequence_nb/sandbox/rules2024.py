"""The sandbox's rules for 2024-07-30 write bodies, and how a valid one changes a record.

Written from the 2024-07-30 document (``CreateOrUpdateCustomerRequest``), apart from
the client's validation (``sequence_nb.models``): the sandbox plays the remote server,
so the two sides share field names but no rules. What the document says and this
module does:

- ``legalName``, ``address``, ``contacts`` and ``taxStatus`` are required; an unknown
  field is refused by name;
- ``address.state`` is one of the document's codes, and required for US and CA;
- ``contacts`` replaces all contacts; when any contact gets billing mail one is
  ``PRIMARY``. A contact whose email matches one the customer has keeps its id and
  ``createdAt`` (its ``updatedAt`` moves when its name or preference changes); the
  others are new;
- ``customProperties`` replaces all properties when present and leaves them alone
  when omitted;
- ``integrationIds`` replaces the links when present (a link kept keeps its sync time)
  and leaves them alone when omitted.

``parentId`` (making the customer a member of another's organization) is refused:
the sandbox does not model organizations.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sequence_nb import fields
from sequence_nb.sandbox.validation import FieldError, country_codes, is_email

VERSION = fields.V2024_07_30
_STRINGS = ("url", "label")
_CONTACT_FIELDS = frozenset(VERSION.contact_body_fields)
_LINK_FIELDS = frozenset({"service", "id"})
_PUSH_TARGETS = ("Xero",)


def validate_body(body: Any) -> list[FieldError]:
    """Every problem with a 2024-07-30 create or update body (empty: acceptable)."""
    if not isinstance(body, dict):
        return [FieldError("body", "must be a JSON object")]
    errors = [
        FieldError(name, "is not a field of the update body (unknown or read-only)")
        for name in body
        if name not in VERSION.body_fields
    ]
    errors.extend(
        FieldError(name, "is required") for name in VERSION.body_required if body.get(name) is None
    )
    legal_name = body.get("legalName")
    if legal_name is not None and not _text(legal_name):
        errors.append(FieldError("legalName", "must be a non-empty string"))
    if body.get("address") is not None:
        errors.extend(_address_errors(body["address"]))
    status = body.get("taxStatus")
    if status is not None and status not in fields.TAX_STATUSES:
        errors.append(FieldError("taxStatus", f"must be one of {', '.join(fields.TAX_STATUSES)}"))
    status = body.get("status")
    if status is not None and status not in VERSION.enums["status"]:
        errors.append(FieldError("status", f"must be one of {', '.join(VERSION.enums['status'])}"))
    for name in _STRINGS:
        if body.get(name) is not None and not isinstance(body[name], str):
            errors.append(FieldError(name, "must be a string"))
    if body.get("contacts") is not None:
        errors.extend(_contact_errors(body["contacts"]))
    if body.get("customProperties") is not None:
        errors.extend(_property_errors(body["customProperties"]))
    if body.get("integrationIds") is not None:
        errors.extend(_link_errors(body["integrationIds"]))
    aliases = body.get("customerAliases")
    if aliases is not None and not (
        isinstance(aliases, list) and all(_text(alias) for alias in aliases)
    ):
        errors.append(FieldError("customerAliases", "must be a list of non-empty strings"))
    push = body.get("pushToIntegrations")
    if push is not None and not (isinstance(push, list) and all(p in _PUSH_TARGETS for p in push)):
        errors.append(
            FieldError("pushToIntegrations", f"must list only {', '.join(_PUSH_TARGETS)}")
        )
    if body.get("parentId") is not None:
        errors.append(
            FieldError("parentId", "is not served by this sandbox (it models no organizations)")
        )
    return errors


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _address_errors(address: Any) -> list[FieldError]:
    if not isinstance(address, dict):
        return [FieldError("address", "must be an object")]
    errors = [
        FieldError(f"address.{name}", "is not a field of the address")
        for name in address
        if name not in VERSION.address_fields
    ]
    for name in VERSION.address_required:
        value = address.get(name)
        if value is None:
            errors.append(FieldError(f"address.{name}", "is required"))
        elif not _text(value):
            errors.append(FieldError(f"address.{name}", "must be a non-empty string"))
    line2 = address.get("line2")
    if line2 is not None and not isinstance(line2, str):
        errors.append(FieldError("address.line2", "must be a string"))
    country = address.get("country")
    if _text(country) and country not in country_codes():
        errors.append(
            FieldError("address.country", "must be an ISO 3166-1 alpha-2 code such as GB")
        )
    state = address.get("state")
    if state is not None and state not in VERSION.states:
        errors.append(FieldError("address.state", "must be a state or province code such as NY"))
    elif state is None and country in VERSION.state_countries:
        errors.append(FieldError("address.state", f"is required for an address in {country}"))
    return errors


def _contact_errors(contacts: Any) -> list[FieldError]:
    if not isinstance(contacts, list):
        return [FieldError("contacts", "must be a list of contacts")]
    errors: list[FieldError] = []
    for number, contact in enumerate(contacts):
        where = f"contacts.{number}"
        if not isinstance(contact, dict):
            errors.append(
                FieldError(where, "must be an object with name, email, billingPreference")
            )
            continue
        errors.extend(
            FieldError(f"{where}.{name}", "is not a field of a contact (unknown or read-only)")
            for name in contact
            if name not in _CONTACT_FIELDS
        )
        if not _text(contact.get("name")):
            errors.append(FieldError(f"{where}.name", "must be a non-empty string"))
        email = contact.get("email")
        if not (isinstance(email, str) and is_email(email)):
            errors.append(FieldError(f"{where}.email", "must be an email address"))
        if contact.get("billingPreference") not in VERSION.billing_preferences:
            allowed = ", ".join(VERSION.billing_preferences)
            errors.append(FieldError(f"{where}.billingPreference", f"must be one of {allowed}"))
    preferences = {c.get("billingPreference") for c in contacts if isinstance(c, dict)}
    if "STANDARD" in preferences and "PRIMARY" not in preferences:
        errors.append(
            FieldError(
                "contacts",
                "needs a contact with billing preference PRIMARY when any contact "
                "receives billing communications",
            )
        )
    return errors


def _property_errors(properties: Any) -> list[FieldError]:
    if not isinstance(properties, dict):
        return [FieldError("customProperties", "must be an object of texts")]
    return [
        FieldError(f"customProperties.{key}", "must be a string")
        for key, value in properties.items()
        if not isinstance(value, str)
    ]


def _link_errors(links: Any) -> list[FieldError]:
    if not isinstance(links, list):
        return [FieldError("integrationIds", "must be a list of {service, id} objects")]
    errors: list[FieldError] = []
    for number, link in enumerate(links):
        where = f"integrationIds.{number}"
        if not isinstance(link, dict):
            errors.append(FieldError(where, "must be an object with service and id"))
            continue
        errors.extend(
            FieldError(f"{where}.{name}", "is not a field of an integration id")
            for name in link
            if name not in _LINK_FIELDS
        )
        if link.get("service") not in VERSION.integration_services:
            errors.append(FieldError(f"{where}.service", "must name an integration service"))
        if not _text(link.get("id")):
            errors.append(FieldError(f"{where}.id", "must be a non-empty string"))
    return errors


# -- applying a valid body ---------------------------------------------------------------


def updated(
    old: dict[str, Any],
    body: dict[str, Any],
    now: str,
    new_id: Callable[[], str],
    *,
    unlink: bool = False,
) -> dict[str, Any]:
    """The record after a valid PUT ``body`` (``unlink``: the body without
    ``integrationIds`` empties the links, the ``unlink_on_put`` fault)."""
    record = {k: v for k, v in old.items() if k not in ("url", "label")}
    record.update(_plain(body))
    record["contacts"] = _contacts(body["contacts"], old.get("contacts") or [], now, new_id)
    if body.get("customProperties") is not None:
        record["customProperties"] = dict(body["customProperties"])
    if body.get("integrationIds") is not None:
        record["integrationIds"] = _links(body["integrationIds"], old.get("integrationIds"), now)
    elif unlink:
        record["integrationIds"] = []
    return record


def created(
    customer_id: str, body: dict[str, Any], now: str, new_id: Callable[[], str]
) -> dict[str, Any]:
    """A new record from a valid POST ``body``."""
    record: dict[str, Any] = {"id": customer_id, "createdAt": now, "organizations": []}
    record.update(_plain(body))
    host = urlsplit(body.get("url") or "").hostname
    if host:
        record["domain"] = host.removeprefix("www.")
    record["integrationIds"] = _links(body.get("integrationIds") or [], None, now)
    record["contacts"] = _contacts(body["contacts"], [], now, new_id)
    record.setdefault("status", "ACTIVE")
    record["customProperties"] = dict(body.get("customProperties") or {})
    return record


def _plain(body: dict[str, Any]) -> dict[str, Any]:
    """The record fields a body sets as they are (nulls and absent ones left out)."""
    out: dict[str, Any] = {}
    for name in ("legalName", "address", "url", "label", "taxStatus", "status"):
        value = body.get(name)
        if value is None:
            continue
        if name == "address":
            value = {k: v for k, v in value.items() if v is not None}
        out[name] = copy.deepcopy(value)
    return out


def _contacts(
    given: list[dict[str, Any]], existing: list[dict[str, Any]], now: str, new_id: Callable[[], str]
) -> list[dict[str, Any]]:
    """The contacts after a body's list replaced ``existing`` (matched by email)."""
    by_email = {c["email"].casefold(): c for c in existing if isinstance(c.get("email"), str)}
    out = []
    for contact in given:
        before = by_email.pop(contact["email"].casefold(), None)
        entry = {
            "id": new_id() if before is None else before["id"],
            "name": contact["name"],
            "email": contact["email"],
            "billingPreference": contact["billingPreference"],
            "createdAt": now if before is None else before["createdAt"],
            "updatedAt": now,
        }
        if before is not None and all(before.get(k) == entry[k] for k in _CONTACT_FIELDS):
            entry["updatedAt"] = before["updatedAt"]
        out.append(entry)
    return out


def _links(items: list[dict[str, Any]], previous: Any, now: str) -> list[dict[str, Any]]:
    """Body integration ids as record entries; a link kept keeps its sync time."""
    synced: dict[tuple[Any, Any], dict[str, Any]] = {}
    if isinstance(previous, list):
        synced = {(p.get("service"), p.get("id")): p for p in previous if isinstance(p, dict)}
    out = []
    for item in items:
        kept = synced.get((item["service"], item["id"]))
        out.append(
            copy.deepcopy(kept)
            if kept is not None
            else {
                "service": item["service"],
                "id": item["id"],
                "lastSynced": now,
                "isPending": False,
            }
        )
    return out


def listed(record: dict[str, Any]) -> dict[str, Any]:
    """The record as ``GET /customers`` pages show it (without what they omit)."""
    return {k: v for k, v in record.items() if k not in VERSION.listing_omits}


def by_alias(record: dict[str, Any]) -> dict[str, Any]:
    """The record as 2024-07-30's ``GET /customers/by-alias/{alias}`` answers it.

    The published document keeps that call on the 2024-05-09 record
    (``Customer20240509``): emails on the record, no contacts, custom properties or
    status. ``email`` and ``contactName`` come from the PRIMARY contact (else the
    first), ``billingEmails`` from the contacts that receive billing mail.
    """
    contacts = [c for c in record.get("contacts") or [] if not c.get("archivedAt")]
    main = next((c for c in contacts if c["billingPreference"] == "PRIMARY"), None)
    main = main or (contacts[0] if contacts else None)
    out: dict[str, Any] = {
        "id": record["id"],
        "createdAt": record["createdAt"],
        "legalName": record["legalName"],
    }
    if main is not None:
        out["contactName"] = main["name"]
    out["address"] = copy.deepcopy(record["address"])
    out["email"] = main["email"] if main is not None else ""
    for name in ("url", "label"):
        if name in record:
            out[name] = record[name]
    out["integrationIds"] = copy.deepcopy(record.get("integrationIds") or [])
    if record.get("archivedAt"):
        out["archivedAt"] = record["archivedAt"]
    out["billingEmails"] = [c["email"] for c in contacts if c["billingPreference"] != "NONE"]
    out["taxStatus"] = record["taxStatus"]
    return out
