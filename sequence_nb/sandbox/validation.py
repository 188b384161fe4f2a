"""The sandbox's own rules for write bodies, written from the seed page.

They are deliberately independent of the client's validation (``sequence_nb.models``):
the sandbox plays the remote server, so a client bug is caught only if the two
sides do not share code.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from sequence_nb import fields

_OPTIONAL_STRINGS = ("contactName", "label", "paymentReference", "telephone", "url")
_EXTERNAL_ID_KEYS = frozenset({"key", "value", "syncTime"})


class FieldError(NamedTuple):
    """One problem with one field of a request body."""

    field: str
    message: str


@functools.cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from pycountry (loaded on first use)."""
    import pycountry

    return frozenset(str(c.alpha_2) for c in pycountry.countries)


def is_email(value: str) -> bool:
    """One ``@``, something before it, a dotted domain after it, no spaces."""
    if not value or any(ch.isspace() for ch in value) or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels)


def validate_body(body: Any) -> list[FieldError]:
    """Every problem with a create/update body (empty when the body is acceptable)."""
    if not isinstance(body, dict):
        return [FieldError("body", "must be a JSON object")]
    errors = [
        FieldError(name, "is not a field of the update body (unknown or read-only)")
        for name in body
        if name not in fields.SEED.body_fields
    ]
    for name in fields.SEED.body_required:
        if body.get(name) is None:
            errors.append(FieldError(name, "is required"))
    if body.get("address") is not None:
        errors.extend(_address_errors(body["address"]))
    for name in ("legalName", "email"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            errors.append(FieldError(name, "must be a non-empty string"))
        elif name == "email" and isinstance(value, str) and not is_email(value):
            errors.append(FieldError(name, "must be an email address"))
    billing = body.get("billingEmail")
    if billing is not None and not (isinstance(billing, str) and is_email(billing)):
        errors.append(FieldError("billingEmail", "must be an email address"))
    status = body.get("taxStatus")
    if status is not None and status not in fields.TAX_STATUSES:
        allowed = ", ".join(fields.TAX_STATUSES)
        errors.append(FieldError("taxStatus", f"must be one of {allowed}"))
    for name in _OPTIONAL_STRINGS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(FieldError(name, "must be a string"))
    aliases = body.get("customerAliases")
    if aliases is not None and not (
        isinstance(aliases, list) and all(isinstance(a, str) and a.strip() for a in aliases)
    ):
        errors.append(FieldError("customerAliases", "must be a list of non-empty strings"))
    if body.get("externalIds") is not None:
        errors.extend(_external_id_errors(body["externalIds"]))
    return errors


def validate_create_body(body: Any) -> list[FieldError]:
    """Every problem with a ``POST /customers`` body.

    A create takes what an update takes and, as Sequence's published document has
    it, a ``billingEmails`` list; when both are given, ``billingEmail`` must be in
    the list. (The list is not required here, so update-shaped creates still work.)
    """
    if not isinstance(body, dict):
        return validate_body(body)
    errors = validate_body({name: value for name, value in body.items() if name != "billingEmails"})
    listed = body.get("billingEmails")
    if listed is None:
        return errors
    if not isinstance(listed, list) or not all(
        isinstance(address, str) and is_email(address) for address in listed
    ):
        return [*errors, FieldError("billingEmails", "must be a list of email addresses")]
    one = body.get("billingEmail")
    if one is not None and one not in listed:
        errors.append(FieldError("billingEmail", "must be one of billingEmails"))
    return errors


def _address_errors(address: Any) -> list[FieldError]:
    if not isinstance(address, dict):
        return [FieldError("address", "must be an object")]
    errors = [
        FieldError(f"address.{name}", "is not a field of the address")
        for name in address
        if name not in fields.SEED.address_fields
    ]
    for name in fields.SEED.address_required:
        value = address.get(name)
        if value is None:
            errors.append(FieldError(f"address.{name}", "is required"))
        elif not isinstance(value, str) or not value.strip():
            errors.append(FieldError(f"address.{name}", "must be a non-empty string"))
    line2 = address.get("line2")
    if line2 is not None and not isinstance(line2, str):
        errors.append(FieldError("address.line2", "must be a string"))
    country = address.get("country")
    if isinstance(country, str) and country.strip() and country not in country_codes():
        errors.append(
            FieldError("address.country", "must be an ISO 3166-1 alpha-2 code such as GB")
        )
    return errors


def _external_id_errors(items: Any) -> list[FieldError]:
    if not isinstance(items, list):
        return [FieldError("externalIds", "must be a list of {key, value} objects")]
    errors: list[FieldError] = []
    for i, item in enumerate(items):
        where = f"externalIds[{i}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, "must be an object with key and value"))
            continue
        errors.extend(
            FieldError(f"{where}.{name}", "is not a field of an external id")
            for name in item
            if name not in _EXTERNAL_ID_KEYS
        )
        if item.get("key") not in fields.SEED.integration_services:
            errors.append(FieldError(f"{where}.key", "must name an integration service, e.g. Xero"))
        if not isinstance(item.get("value"), str) or not item["value"]:
            errors.append(FieldError(f"{where}.value", "must be a non-empty string"))
        sync = item.get("syncTime")
        if sync is not None and not isinstance(sync, str):
            errors.append(FieldError(f"{where}.syncTime", "must be a string"))
    return errors
