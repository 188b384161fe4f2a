"""Field names of the customer record, in one place.

The seed page (``PUT /customers/{id}``) defines these. Every other module takes
field and column names from here, so that a later API version is a new mapping,
not a rewrite.
"""

from __future__ import annotations

from typing import Final

#: The tax statuses the seed allows.
TAX_STATUSES: Final = ("TAXED", "TAX_EXEMPT", "REVERSE_CHARGED")

#: Countries are ISO 3166-1 alpha-2 codes.
ADDRESS_FIELDS: Final = ("line1", "line2", "town", "postCode", "country")
ADDRESS_REQUIRED: Final = ("line1", "town", "postCode", "country")

#: Top-level fields of the seed's update body, in the order bodies are written.
UPDATE_FIELDS: Final = (
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
)
UPDATE_REQUIRED: Final = ("address", "email", "legalName", "taxStatus")

#: Fields every read returns that no update body may carry.
READ_ONLY_FIELDS: Final = (
    "id",
    "createdAt",
    "sequenceAccountId",
    "billingEmails",
    "linkedServices",
)

#: Fields of the record as the seed page returns it.
RECORD_FIELDS: Final = (
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
)

#: Flat column names (JSON paths joined by dots) of the record's scalar fields
#: that a person may edit, in display order.
EDITABLE_COLUMNS: Final = (
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
)

#: Flat columns that are read-only.
READ_ONLY_COLUMNS: Final = READ_ONLY_FIELDS

#: Flat columns that must hold a non-empty value in every update body.
REQUIRED_COLUMNS: Final = (
    "legalName",
    "email",
    "address.line1",
    "address.town",
    "address.postCode",
    "address.country",
    "taxStatus",
)

#: Columns holding one email address each.
EMAIL_COLUMNS: Final = ("email", "billingEmail")

#: Every column the frame knows, in its stable order: identity, editable,
#: read-only. Unknown fields follow these.
KNOWN_COLUMNS: Final = (
    "id",
    *EDITABLE_COLUMNS,
    "createdAt",
    "sequenceAccountId",
    "billingEmails",
    "linkedServices",
)

#: Services an ``externalIds`` entry may name (the 2023-11-23 spec).
INTEGRATION_SERVICES: Final = (
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

# --- Single names, for the modules that look at one field or column by name. ---

#: The record's identity field.
ID: Final = "id"
#: Single columns the checks and clean-ups look at by name.
LEGAL_NAME: Final = "legalName"
EMAIL: Final = "email"
BILLING_EMAIL: Final = "billingEmail"
COUNTRY: Final = "address.country"
TELEPHONE: Final = "telephone"
URL: Final = "url"
#: When the customer was created: ISO 8601 UTC text in JSON.
CREATED_AT: Final = "createdAt"
#: The nested address object; its parts are ``ADDRESS_FIELDS``.
ADDRESS: Final = "address"
#: The customer's tax status, one of ``TAX_STATUSES``.
TAX_STATUS: Final = "taxStatus"
#: The read-only list of billing email addresses.
BILLING_EMAILS: Final = "billingEmails"
#: The read-only list of linked integrations.
LINKED_SERVICES: Final = "linkedServices"
#: Fields of one ``linkedServices`` entry (``syncTime`` is ISO 8601 UTC text).
LINKED_SERVICE_FIELDS: Final = ("externalId", "externalService", "syncTime")
#: Key of the list of records in a ``GET /customers`` page body.
PAGE_ITEMS: Final = "items"
#: Joins a nested field's JSON path into a flat column name, as
#: ``pandas.json_normalize`` does: ``address.postCode``.
PATH_SEPARATOR: Final = "."
#: How the API writes timestamps, as a polars/chrono format: seconds, then
#: ``.`` and 3, 6 or 9 digits only when the fraction is not zero, then ``Z``.
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.fZ"
