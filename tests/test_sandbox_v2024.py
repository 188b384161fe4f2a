"""The sandbox in API version 2024-07-30, over real sockets.

Plain httpx for what the server itself must do; the contract client (every request
and every successful answer checked against the published 2024-07-30 document) for
what the client and the server do together.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sequence_nb import APIError, fields, sandbox
from sequence_nb.models import update_body_of
from sequence_nb.sandbox import Sandbox, generate_dataset
from tests import contract
from tests.conftest import contract_client

V2024 = fields.V2024_07_30
HEADER = {"Sequence-Version": "2024-07-30"}


@pytest.fixture(scope="module")
def shared() -> Iterator[Sandbox]:
    """A 2024-07-30 sandbox shared by the read-mostly tests."""
    with sandbox.start(customers=200, seed=4, api_version="2024-07-30") as sb:
        yield sb


@pytest.fixture
def fresh() -> Iterator[Sandbox]:
    """A 2024-07-30 sandbox of the test's own."""
    with sandbox.start(customers=40, seed=2, api_version="2024-07-30") as sb:
        yield sb


def http(sb: Sandbox, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=sb.url, auth=(sb.client_id, sb.client_secret), headers={**HEADER, **headers}
    )


def live(sb: Sandbox, where: Any = None) -> dict[str, Any]:
    """A customer that is not archived (and passes ``where``), with one planted problem at most."""
    planted = {p.id for p in sb.planted}
    for record in sb.records():
        if "archivedAt" in record or record["id"] in planted:
            continue
        if where is None or where(record):
            return record
    raise AssertionError("no such customer")


def body_of(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = update_body_of(record, V2024)
    body.update(changes)
    return body


def errors_of(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 400, answer.text
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


# -- generated records ------------------------------------------------------------


def test_generated_records_have_states_contacts_properties_and_a_status() -> None:
    data = generate_dataset(1000, seed=1, api_version="2024-07-30")
    records = data.records
    assert data == generate_dataset(1000, seed=1, api_version="2024-07-30")
    for record in records:
        assert set(record) <= set(V2024.record_fields)
        assert set(record["address"]) <= set(V2024.address_fields)
        country = record["address"]["country"]
        assert ("state" in record["address"]) == (country in ("US", "CA"))
        assert record["status"] in ("DRAFT", "ACTIVE")
        contacts = record["contacts"]
        assert 0 <= len(contacts) <= 4
        preferences = {c["billingPreference"] for c in contacts}
        assert "STANDARD" not in preferences or "PRIMARY" in preferences
        emails = [c["email"].casefold() for c in contacts]
        assert len(emails) == len(set(emails))
        for contact in contacts:
            assert set(contact) == {"id", "name", "email", "billingPreference"} | {
                "createdAt",
                "updatedAt",
            }
            assert contact["createdAt"] <= contact["updatedAt"]
        assert all(isinstance(v, str) for v in record["customProperties"].values())
        for link in record["integrationIds"]:
            assert link["service"] in V2024.integration_services
    countries = Counter(r["address"]["country"] for r in records)
    assert countries["US"] > 50 and countries["CA"] > 20
    assert {r["address"]["state"] for r in records if "state" in r["address"]} >= {"NY", "ON"}
    counts = Counter(len(r["contacts"]) for r in records)
    assert set(counts) == {0, 1, 2, 3, 4}
    only_none = [r for r in records if r["contacts"] and {"NONE"} == _preferences(r)]
    assert len(only_none) > 30
    keys = Counter(key for r in records for key in r["customProperties"])
    assert {"region", "tier", "accountManager"} <= set(keys)
    assert 50 < sum(1 for r in records if not r["customProperties"]) < 300
    assert Counter(r["status"] for r in records)["DRAFT"] > 10
    assert any(r.get("archivedAt") for r in records)
    assert {p.problem for p in data.planted} == {"whitespace", "duplicate_legal_name"}
    organized = [r for r in records if r["organizations"]]
    assert 20 < len(organized) < len(records) / 10
    for record in organized:
        (organization,) = record["organizations"]
        ids = {organization["owner"]["id"], *(m["id"] for m in organization["members"])}
        assert record["id"] in ids and len(ids) >= 2


def _preferences(record: dict[str, Any]) -> set[str]:
    return {c["billingPreference"] for c in record["contacts"]}


def test_seed_records_hold_only_country_codes_a_real_record_can_hold() -> None:
    records, planted = sandbox.generate_customers(2000, seed=0)
    assert all(len(r["address"]["country"]) == 2 for r in records)
    assert "invalid_country" not in {p.problem for p in planted}


# -- reads ------------------------------------------------------------------------


def test_list_pages_carry_no_contacts_and_one_customer_does(shared: Sandbox) -> None:
    with contract_client(shared) as client:
        listed = client.list_customers()
        one = client.get_customer(listed[0]["id"])
    assert listed and all("contacts" not in record for record in listed)
    assert all("customProperties" in record for record in listed)
    assert one["contacts"] == shared.get_record(listed[0]["id"])["contacts"]
    assert {k: v for k, v in one.items() if k != "contacts"} == listed[0]


def test_every_answer_validates_against_the_2024_document(fresh: Sandbox) -> None:
    before = len(contract.VALIDATED_ANSWERS)
    target = live(fresh, lambda r: r["address"]["country"] == "US" and r["contacts"])
    alias_owner = next(r for r in fresh.records() if fresh.aliases_of(r["id"]))
    with contract_client(fresh) as client:
        listed = client.list_customers(includeArchived=True)
        for record in listed[:10]:
            client.get_customer(record["id"])
        client.get_customer_by_alias(fresh.aliases_of(alias_owner["id"])[0])
        client.update_customer(target["id"], body_of(client.get_customer(target["id"])))
        made = client.create_customer(
            {
                "legalName": "Maple Leaf Analytics Ltd.",
                "address": {
                    "line1": "100 King Street West",
                    "town": "Toronto",
                    "state": "ON",
                    "postcode": "M5X 1A9",
                    "country": "CA",
                },
                "taxStatus": "TAXED",
                "contacts": [
                    {
                        "name": "Chloé Roy",
                        "email": "chloe.roy@mapleleaf.ca",
                        "billingPreference": "PRIMARY",
                    }
                ],
                "customProperties": {"region": "NA"},
            }
        )
        client.archive_customer(made["id"])
    answered = contract.VALIDATED_ANSWERS[before:]
    methods = Counter(method for method, _, _ in answered)
    assert methods["GET"] >= 13 and methods["PUT"] == 1 and methods["POST"] == 2
    assert any(path.endswith("/archive") for _, path, _ in answered)
    assert any("/by-alias/" in path for _, path, _ in answered)
    assert (("POST", "/api/customers", 201)) in answered


# -- writes: replace semantics -------------------------------------------------------


def test_a_custom_property_edit_leaves_the_others_as_they_were(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: len(r["customProperties"]) >= 3)
    properties = record["customProperties"]
    edited = dict(properties, tier="platinum")
    with contract_client(fresh) as client:
        answer = client.update_customer(record["id"], body_of(record, customProperties=edited))
    assert answer["customProperties"] == edited
    assert fresh.get_record(record["id"])["customProperties"] == edited
    assert {k: v for k, v in edited.items() if k != "tier"} == {
        k: v for k, v in properties.items() if k != "tier"
    }


def test_leaving_custom_properties_out_keeps_them_and_an_empty_object_clears_them(
    fresh: Sandbox,
) -> None:
    record = live(fresh, lambda r: r["customProperties"])
    body = body_of(record, label="Renamed label")
    del body["customProperties"]
    with contract_client(fresh) as client:
        kept = client.update_customer(record["id"], body)
        cleared = client.update_customer(record["id"], dict(body, customProperties={}))
    assert kept["label"] == "Renamed label"
    assert kept["customProperties"] == record["customProperties"]
    assert cleared["customProperties"] == {}


def test_contacts_are_replaced_and_a_kept_email_keeps_its_id(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: len(r["contacts"]) >= 2)
    first, second = record["contacts"][:2]
    contacts = [
        {"name": first["name"], "email": first["email"], "billingPreference": "PRIMARY"},
        {
            "name": "Dana Whitfield",
            "email": "dana.whitfield@example.org",
            "billingPreference": "NONE",
        },
    ]
    with contract_client(fresh) as client:
        answer = client.update_customer(record["id"], body_of(record, contacts=contacts))
    after = answer["contacts"]
    assert [c["email"] for c in after] == [first["email"], "dana.whitfield@example.org"]
    assert after[0]["id"] == first["id"] and after[0]["createdAt"] == first["createdAt"]
    changed = first["billingPreference"] != "PRIMARY"
    assert (after[0]["updatedAt"] != first["updatedAt"]) == changed
    assert after[1]["id"] not in {c["id"] for c in record["contacts"]}
    assert after[1]["createdAt"] == after[1]["updatedAt"]
    assert second["email"] not in {c["email"] for c in after}
    assert fresh.get_record(record["id"])["contacts"] == after


def test_an_edit_that_carries_the_contacts_leaves_them_as_they_were(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: len(r["contacts"]) >= 2)
    with contract_client(fresh) as client:
        answer = client.update_customer(record["id"], body_of(record, legalName="Renamed Ltd"))
    assert answer["contacts"] == record["contacts"]
    assert answer["legalName"] == "Renamed Ltd"


def test_an_empty_contacts_list_removes_every_contact(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: r["contacts"])
    with http(fresh) as client:
        answer = client.put(f"/customers/{record['id']}", json=body_of(record, contacts=[]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["contacts"] == []


# -- writes: the document's rules --------------------------------------------------------


def test_a_us_customer_without_a_state_is_refused_with_400(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: r["address"]["country"] == "US")
    body = body_of(record)
    del body["address"]["state"]
    with http(fresh) as client:
        answer = client.put(f"/customers/{record['id']}", json=body)
        wrong = client.put(
            f"/customers/{record['id']}",
            json=body_of(record, address=dict(body["address"], state="ZZ")),
        )
    assert errors_of(answer) == {"address.state": "is required for an address in US"}
    assert "address.state" in errors_of(wrong)
    assert fresh.get_record(record["id"]) == record


def test_billing_contacts_without_a_primary_one_are_refused(fresh: Sandbox) -> None:
    record = live(fresh)
    contacts = [
        {"name": "Ann Lee", "email": "ann@example.org", "billingPreference": "STANDARD"},
        {"name": "Bo Kim", "email": "bo@example.org", "billingPreference": "NONE"},
    ]
    only_none = [dict(c, billingPreference="NONE") for c in contacts]
    with http(fresh) as client:
        refused = client.put(f"/customers/{record['id']}", json=body_of(record, contacts=contacts))
        accepted = client.put(
            f"/customers/{record['id']}", json=body_of(record, contacts=only_none)
        )
    assert set(errors_of(refused)) == {"contacts"}
    assert "PRIMARY" in errors_of(refused)["contacts"]
    assert accepted.status_code == 200, accepted.text


def test_unknown_and_read_only_fields_are_refused_by_name(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: r["contacts"])
    body = body_of(record, email="old@example.org", domain="example.org")
    body["contacts"] = [dict(c) for c in record["contacts"]]  # ids and times included
    body["integrationIds"] = [{"service": "Xero", "id": "1", "lastSynced": "2024-01-01T00:00:00Z"}]
    with http(fresh) as client:
        answer = client.put(f"/customers/{record['id']}", json=body)
    errors = errors_of(answer)
    assert {"email", "domain", "contacts.0.id", "contacts.0.createdAt"} <= set(errors)
    assert "integrationIds.0.lastSynced" in errors
    assert "parentId" in errors_of(
        httpx.put(
            f"{fresh.url}/customers/{record['id']}",
            json=body_of(record, parentId=record["id"]),
            auth=(fresh.client_id, fresh.client_secret),
        )
    )


def test_unlink_on_put_empties_the_integration_ids_of_a_body_without_them(
    fresh: Sandbox,
) -> None:
    record = live(fresh, lambda r: r["integrationIds"])
    fresh.set_faults(unlink_on_put=True)
    body = body_of(record)
    with http(fresh) as client:
        kept = client.put(f"/customers/{record['id']}", json=body).json()
        del body["integrationIds"]
        dropped = client.put(f"/customers/{record['id']}", json=body).json()
    assert kept["integrationIds"] == record["integrationIds"]
    assert dropped["integrationIds"] == []


def test_an_idempotency_key_applies_a_write_once(fresh: Sandbox) -> None:
    record = live(fresh)
    body = body_of(record, label="Once")
    with http(fresh, **{"Idempotency-Key": "k-2024-1"}) as client:
        first = client.put(f"/customers/{record['id']}", json=body)
        again = client.put(f"/customers/{record['id']}", json=body)
        archived = client.post(f"/customers/{record['id']}/archive")
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert archived.status_code == 409  # the key was used for the PUT
    assert fresh.stats.writes_applied[record["id"]] == 1


# -- archive -------------------------------------------------------------------------


def test_archive_lands_for_good_and_the_customer_leaves_the_default_listing(
    fresh: Sandbox,
) -> None:
    record = live(fresh)
    with contract_client(fresh) as client:
        shown = len(client.list_customers())
        archived = client.archive_customer(record["id"])
        again = client.archive_customer(record["id"])
        after = client.list_customers()
        everyone = client.list_customers(includeArchived=True)
    assert archived["archivedAt"] and again["archivedAt"] == archived["archivedAt"]
    assert {k: v for k, v in archived.items() if k != "archivedAt"} == record
    assert len(after) == shown - 1 and record["id"] not in {r["id"] for r in after}
    assert record["id"] in {r["id"] for r in everyone}
    with http(fresh) as raw:
        missing = raw.post("/customers/no-such-customer/archive")
    assert missing.status_code == 404


def test_a_seed_sandbox_has_no_archive_call(make_sandbox: Any) -> None:
    seed = make_sandbox(customers=5)
    record = seed.records()[0]
    answer = httpx.post(
        f"{seed.url}/customers/{record['id']}/archive", auth=(seed.client_id, seed.client_secret)
    )
    assert answer.status_code in (404, 405)
    assert "archivedAt" not in seed.get_record(record["id"])


# -- listing filters ----------------------------------------------------------------------


def test_listing_filters_by_label_and_billing_status(shared: Sandbox) -> None:
    records = [r for r in shared.records() if "archivedAt" not in r]
    label = records[0]["label"]
    with contract_client(shared) as client:
        labelled = client.list_customers(label=label)
        active = client.list_customers(billingStatus="ACTIVE")
        inactive = client.list_customers(billing_status="INACTIVE")
    assert {r["id"] for r in labelled} == {r["id"] for r in records if r["label"] == label}
    assert active and inactive
    assert {r["id"] for r in active} | {r["id"] for r in inactive} == {r["id"] for r in records}
    assert not {r["id"] for r in active} & {r["id"] for r in inactive}
    assert all(r["status"] == "ACTIVE" for r in active)
    with http(shared) as raw:
        wrong = raw.get("/customers", params={"billingStatus": "SOMETIMES"})
    assert "billingStatus" in errors_of(wrong)


def test_the_email_filter_finds_a_customer_by_a_contact_address(shared: Sandbox) -> None:
    record = live(shared, lambda r: len(r["contacts"]) >= 2)
    with contract_client(shared) as client:
        found = client.list_customers(email=record["contacts"][1]["email"])
    assert [r["id"] for r in found] == [record["id"]]


# -- the version header ----------------------------------------------------------------


def test_a_version_the_sandbox_does_not_serve_is_refused_naming_it(
    shared: Sandbox, make_sandbox: Any
) -> None:
    seed = make_sandbox(customers=3)
    auth = (shared.client_id, shared.client_secret)
    with httpx.Client(auth=auth) as client:
        older = client.get(f"{shared.url}/customers", headers={"Sequence-Version": "2024-01-01"})
        none = client.get(f"{shared.url}/customers")
        same = client.get(f"{shared.url}/customers", headers=HEADER)
        to_seed = client.get(f"{seed.url}/customers", headers=HEADER)
        seed_plain = client.get(f"{seed.url}/customers")
    assert older.status_code == 400 and "'2024-01-01'" in older.json()["message"]
    assert "2024-07-30" in older.json()["message"]
    assert none.status_code == same.status_code == 200
    assert none.json() == same.json() and "customProperties" in none.json()["items"][0]
    assert to_seed.status_code == 400 and "'2024-07-30'" in to_seed.json()["message"]
    assert seed_plain.status_code == 200 and "email" in seed_plain.json()["items"][0]


def test_the_sandbox_client_speaks_the_sandbox_version(shared: Sandbox) -> None:
    with shared.client() as client, shared.client(api_version="seed") as seed_client:
        assert client.api_version is V2024
        assert seed_client.api_version is fields.SEED
        assert client.get_customer(shared.records()[0]["id"])["contacts"] is not None
    assert shared.api_version is V2024
    assert shared.environ()[fields.API_VERSION_ENV] == "2024-07-30"
    assert "api_version='2024-07-30'" in repr(shared)


def test_an_unknown_sandbox_version_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'2023-01-01'.*seed, 2024-07-30"):
        sandbox.SandboxOptions(api_version="2023-01-01")


def test_given_records_are_served_in_the_version_asked(make_sandbox: Any) -> None:
    records = copy.deepcopy(generate_dataset(3, seed=9, api_version="2024-07-30").records)
    server = make_sandbox(records=records, api_version="2024-07-30")
    with contract_client(server) as client:
        assert [r["id"] for r in client.list_customers(sortOrder="ASC")] == [
            r["id"] for r in records if "archivedAt" not in r
        ]


def test_the_2024_contract_catches_an_answer_that_breaks_the_document() -> None:
    record = generate_dataset(3, seed=1, api_version="2024-07-30").records[0]
    request = httpx.Request(
        "GET",
        f"http://127.0.0.1:1/api/customers/{record['id']}",
        headers={"Authorization": "Basic x", **HEADER},
    )
    contract.check_answer(request, httpx.Response(200, json=record))
    named = dict(record, address=dict(record["address"], country="French Republic"))
    without_status = {k: v for k, v in record.items() if k != "status"}
    for broken in (named, without_status):
        with pytest.raises(contract.ContractViolation):
            contract.check_answer(request, httpx.Response(200, json=broken))


def test_a_lost_answer_is_replayed_from_its_idempotency_key(fresh: Sandbox) -> None:
    record = live(fresh, lambda r: r["contacts"])
    body = body_of(record, label="Written once")
    with contract_client(fresh) as client:
        fresh.set_faults(lost_answer_rate=1.0)
        with pytest.raises(APIError) as caught:
            client.send_update(record["id"], body, idempotency_key="k-lost", retry=False)
        fresh.set_faults(lost_answer_rate=0.0)
        again = client.send_update(record["id"], body, idempotency_key="k-lost")
    assert caught.value.maybe_applied
    assert again.replayed and again.data["label"] == "Written once"
    assert fresh.stats.writes_applied[record["id"]] == 1
    assert fresh.stats.faults["lost_answer"] == 1


def test_the_rate_limit_holds_in_2024(make_sandbox: Any) -> None:
    server = make_sandbox(customers=5, api_version="2024-07-30", rate_limit_per_minute=2)
    with http(server) as client:
        answers = [client.get("/customers").status_code for _ in range(3)]
    assert answers == [200, 200, 429]
