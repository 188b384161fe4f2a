"""Records of Sequence's API version 2024-07-30, from its published document's examples.

``CUSTOMER`` is the example of ``GET /customers/{id}`` (with ``contacts``); the list
example is the same customer without them. Tests build variations from these.
"""

from __future__ import annotations

import copy
from typing import Any

#: The document's example ``Customer`` (tests/openapi/sequence-customers-openapi-2024-07-30.json).
CUSTOMER: dict[str, Any] = {
    "id": "e309e948-088e-4d77-b654-cd85498f1555",
    "createdAt": "2021-01-02T10:55:00Z",
    "organizations": [
        {
            "id": "c0dc4e79-ec52-4811-8cf5-addb2527915c",
            "owner": {
                "id": "50af5191-05a3-42a5-802a-6b59091157af",
                "name": "FinTech Solutions Inc.",
            },
            "members": [
                {
                    "id": "e309e948-088e-4d77-b654-cd85498f1555",
                    "name": "Fintech Payment Processing",
                },
                {"id": "50af5191-05a3-42a5-802a-6b59091157af", "name": "Fintech Lending Services"},
            ],
        }
    ],
    "legalName": "Fintech Payment Processing",
    "address": {
        "line1": "7500 Bluewater Rd NW",
        "town": "Albuquerque",
        "state": "NY",
        "postcode": "87121",
        "country": "US",
    },
    "url": "https://example.com/",
    "domain": "example.com",
    "label": "Example customer",
    "integrationIds": [
        {
            "service": "Xero",
            "id": "2aaff66f-ef30-4599-b192-c168fd4cd226",
            "lastSynced": "2024-03-28T16:47:00Z",
            "isPending": False,
        },
        {
            "service": "Stripe",
            "id": "cus_OCtCxqQDgu1uX9",
            "lastSynced": "2024-03-28T16:47:00Z",
            "isPending": False,
        },
    ],
    "archivedAt": "2025-08-28T12:00:00Z",
    "taxStatus": "TAXED",
    "contacts": [
        {
            "id": "9a1e38a9-4dc9-776f-f974-4e7ee9f4d6cc",
            "name": "John Smith",
            "email": "john.smith@example.com",
            "billingPreference": "NONE",
            "createdAt": "2022-06-28T16:47:00Z",
            "updatedAt": "2022-06-28T16:47:00Z",
            "archivedAt": "2023-06-28T16:47:00Z",
        }
    ],
    "status": "ACTIVE",
    "customProperties": {"region": "EU", "tier": "gold"},
}


def listed(**changes: Any) -> dict[str, Any]:
    """The example as a ``GET /customers`` item (no contacts), with ``changes`` applied.

    A change to ``address`` or ``customProperties`` replaces that object whole.
    """
    record = copy.deepcopy(CUSTOMER)
    del record["contacts"]
    record.update(copy.deepcopy(changes))
    return record


def customers(count: int) -> list[dict[str, Any]]:
    """``count`` listed customers with distinct ids and names, in GB, US and CA."""
    places = [
        {"line1": "1 High St", "town": "London", "postcode": "N1 9GU", "country": "GB"},
        {
            "line1": "7500 Bluewater Rd NW",
            "town": "Albuquerque",
            "state": "NM",
            "postcode": "87121",
            "country": "US",
        },
        {
            "line1": "100 King St W",
            "town": "Toronto",
            "state": "ON",
            "postcode": "M5X 1A9",
            "country": "CA",
        },
    ]
    return [
        listed(
            id=f"00000000-0000-4000-8000-{n:012d}",
            legalName=f"Customer {n} Ltd",
            address=places[n % 3],
            customProperties={"region": "EU" if n % 2 else "NA", "tier": "gold"} if n % 4 else {},
            status="ACTIVE" if n % 5 else "DRAFT",
        )
        for n in range(count)
    ]
