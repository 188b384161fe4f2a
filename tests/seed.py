"""The seed page's own examples (shared/reference/000_948264484b88fbd9.txt), verbatim."""

from __future__ import annotations

from typing import Any

#: The example body of ``PUT /customers/{id}``.
SEED_BODY: dict[str, Any] = {
    "address": {"country": "GB", "line1": "Flat 1", "postCode": "AB1 2EF", "town": "London"},
    "email": "john@example.com",
    "legalName": "John Doe",
    "taxStatus": "TAXED",
}

#: The example record the page answers with.
SEED_RECORD: dict[str, Any] = {
    "address": {
        "country": "GB",
        "line1": "Flat 1",
        "line2": "123 Fake Street",
        "postCode": "AB1 2EF",
        "town": "London",
    },
    "billingEmail": "exampleCorpInvoices@example.com",
    "billingEmails": ["exampleCorpInvoices@example.com"],
    "contactName": "John Doe",
    "createdAt": "2022-06-28T16:47:00Z",
    "email": "john@example.com",
    "id": "e309e948-088e-4d77-b654-cd85498f1555",
    "label": "Example customer",
    "legalName": "John Doe",
    "linkedServices": [
        {"externalId": "ID", "externalService": "Xero", "syncTime": "2022-06-28T16:47:00Z"}
    ],
    "paymentReference": "Example reference",
    "sequenceAccountId": "25b3c342-6fa6-4375-9ed3-616f05abb77a",
    "taxStatus": "TAXED",
    "telephone": "02010001000",
    "url": "https://example.com/",
}
