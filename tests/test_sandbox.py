"""The sandbox server, over real sockets with plain httpx."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import phonenumbers
import pycountry
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from sequence_nb import fields, sandbox
from sequence_nb.sandbox import PROBLEM_CODES, Sandbox, generate_customers
from tests import contract

COUNTRY_CODES = {c.alpha_2 for c in pycountry.countries}
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

#: The request body of the seed page's example, byte for byte.
SEED_EXAMPLE_BODY = """{
"address": {
"country": "GB",
"line1": "Flat 1",
"postCode": "AB1 2EF",
"town": "London"
},
"email": "john@example.com",
"legalName": "John Doe",
"taxStatus": "TAXED"
}"""


# -- fixtures and helpers ----------------------------------------------------


@pytest.fixture(scope="module")
def big() -> Iterator[Sandbox]:
    """One 1,000-customer sandbox shared by the read-mostly tests (never POSTed to)."""
    with sandbox.start(customers=1000, seed=7) as sb:
        yield sb


@pytest.fixture
def small() -> Iterator[Sandbox]:
    """A fresh 30-customer sandbox with zeroed counters."""
    with sandbox.start(customers=30, seed=3) as sb:
        yield sb


def http(sb: Sandbox, **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=sb.url, auth=(sb.client_id, sb.client_secret), **kwargs)


def body_from(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A valid update body built from a full record, as a client would."""
    body: dict[str, Any] = {
        k: record[k] for k in fields.SEED.body_fields if k in record and k != "externalIds"
    }
    body["address"] = dict(record["address"])
    body.update(changes)
    return body


def clean_record(sb: Sandbox) -> dict[str, Any]:
    """A record with every optional field set and no planted problem."""
    planted = {p.id for p in sb.planted}
    for record in sb.records():
        optional = ("contactName", "telephone", "url", "paymentReference", "billingEmail")
        if record["id"] in planted or "archivedAt" in record:
            continue
        if all(k in record for k in optional) and "line2" in record["address"]:
            return record
    raise AssertionError("no fully populated clean record")


def walk_pages(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        answer = client.get("/customers", params=params)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        items.extend(data["items"])
        if "after" not in data["pagination"]:
            return items
        params = {**params, "after": data["pagination"]["after"]}


def problems_of(records: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """An independent mini-checker for the planted problem codes."""
    found: set[tuple[str, str, str]] = set()
    for r in records:
        rid, address = r["id"], r["address"]
        values = {
            "legalName": r.get("legalName"),
            "email": r.get("email"),
            "contactName": r.get("contactName"),
            "address.town": address.get("town"),
        }
        for column, value in values.items():
            if isinstance(value, str) and value != value.strip():
                found.add((rid, column, "whitespace"))
        for column in ("email", "billingEmail"):
            value = r.get(column)
            if value is None:
                continue
            if not EMAIL.match(value.strip()):
                found.add((rid, column, "invalid_email"))
            elif value.strip().split("@")[1] != value.strip().split("@")[1].lower():
                found.add((rid, column, "email_case"))
        country = address.get("country")
        if country not in COUNTRY_CODES:
            found.add((rid, "address.country", "invalid_country"))
        if not r.get("billingEmail") or not r.get("billingEmails"):
            found.add((rid, "billingEmail", "missing_billing_email"))
        if "telephone" in r:
            region = country if country in COUNTRY_CODES else None
            try:
                ok = phonenumbers.is_valid_number(phonenumbers.parse(r["telephone"], region))
            except phonenumbers.NumberParseException:
                ok = False
            if not ok:
                found.add((rid, "telephone", "invalid_telephone"))
    names = Counter(r["legalName"].strip().casefold() for r in records)
    found.update(
        (r["id"], "legalName", "duplicate_legal_name")
        for r in records
        if names[r["legalName"].strip().casefold()] > 1
    )
    return found


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


# -- generated data ----------------------------------------------------------


def test_generation_is_deterministic_for_a_seed() -> None:
    assert generate_customers(200, seed=5) == generate_customers(200, seed=5)
    assert generate_customers(200, seed=5)[0] != generate_customers(200, seed=6)[0]


def test_records_have_the_seed_page_shape() -> None:
    records, _ = generate_customers(1000, seed=1)
    assert len({r["id"] for r in records}) == 1000
    assert len({r["createdAt"] for r in records}) == 1000
    assert len({r["sequenceAccountId"] for r in records}) == 1
    assert [r["createdAt"] for r in records] == sorted(r["createdAt"] for r in records)
    years = {r["createdAt"][:4] for r in records}
    assert len(years) >= 3
    for r in records:
        for name in ("id", "createdAt", "sequenceAccountId", "legalName", "email", "address"):
            assert name in r
        assert r["taxStatus"] in fields.TAX_STATUSES
        assert TIMESTAMP.match(r["createdAt"])
        assert None not in r.values() and None not in r["address"].values()
        assert r["billingEmails"] == ([r["billingEmail"]] if "billingEmail" in r else [])
        assert set(r["address"]) <= set(fields.SEED.address_fields)
        for link in r["linkedServices"]:
            assert set(link) == {"externalId", "externalService", "syncTime"}
            assert link["externalService"] in fields.SEED.integration_services
        assert "customerAliases" not in r
    unknown = [r for r in records if set(r) - set(fields.SEED.record_fields)]
    assert 0.12 < len(unknown) / len(records) < 0.3
    assert any("archivedAt" in r for r in records)
    nested = [e for r in records for e in r.get("externalIds", [])]
    assert nested and all(set(e) == {"key", "value", "syncTime"} for e in nested)
    assert len({r["address"]["country"] for r in records}) >= 8
    assert Counter(r["taxStatus"] for r in records).most_common(1)[0][0] == "TAXED"


def test_about_one_in_ten_records_has_a_planted_problem_and_every_code_occurs() -> None:
    records, planted = generate_customers(1000, seed=0)
    carriers = {p.id for p in planted}
    assert 80 <= len(carriers) <= 125
    assert {p.problem for p in planted} == set(PROBLEM_CODES)
    assert all(Counter(p.problem for p in planted)[code] >= 5 for code in PROBLEM_CODES)
    archived = {r["id"] for r in records if "archivedAt" in r}
    assert not carriers & archived


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_list_is_exactly_the_problems_in_the_data(seed: int) -> None:
    records, planted = generate_customers(1000, seed=seed)
    assert problems_of(records) == {(p.id, p.column, p.problem) for p in planted}
    assert len(Counter(p.id for p in planted if p.problem != "duplicate_legal_name")) == len(
        [p for p in planted if p.problem != "duplicate_legal_name"]
    )
    carriers = {p.id for p in planted}
    clean = [r for r in records if r["id"] not in carriers]
    emails = [r["email"].casefold() for r in records]
    assert len(set(emails)) == len(emails)
    for r in clean:
        assert all(s == s.strip() for s in strings_in(r))
        assert r["email"] == r["email"].lower()
        assert "@" in r["billingEmail"]
        if "url" in r:
            url = urlparse(r["url"])
            assert url.scheme in ("http", "https") and "." in url.netloc


# -- listing -----------------------------------------------------------------


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_paging_through_1000_customers_returns_each_once_in_order(big: Sandbox, order: str) -> None:
    with http(big) as client:
        items = walk_pages(client, limit=100, sortOrder=order, includeArchived="true")
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 1000
    expected = sorted(big.records(), key=lambda r: (r["createdAt"], r["id"]))
    if order == "DESC":
        expected.reverse()
    assert ids == [r["id"] for r in expected]


def test_paging_by_legal_name_and_backwards_with_before(big: Sandbox) -> None:
    with http(big) as client:
        forward = walk_pages(client, limit=37, sortBy="legalName", sortOrder="ASC")
        keys = [(i["legalName"], i["id"]) for i in forward]
        assert keys == sorted(keys)
        first = client.get("/customers", params={"limit": 10, "sortBy": "legalName"}).json()
        assert "before" not in first["pagination"]
        second = client.get("/customers", params={"after": first["pagination"]["after"]}).json()
        back = client.get("/customers", params={"before": second["pagination"]["before"]}).json()
    assert len(second["items"]) == 20
    assert [i["id"] for i in back["items"]] == [i["id"] for i in first["items"]]
    assert "before" not in back["pagination"]


def test_cursors_stay_correct_when_records_change_between_pages(big: Sandbox) -> None:
    with http(big) as client:
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 50, "includeArchived": "true"}
        while True:
            data = client.get("/customers", params=params).json()
            seen.extend(i["id"] for i in data["items"])
            for item in data["items"][:3]:  # someone edits what was just read
                big.edit_remote(item["id"], {"label": "Touched"})
            if "after" not in data["pagination"]:
                break
            params["after"] = data["pagination"]["after"]
    assert len(seen) == len(set(seen)) == 1000


def test_archived_customers_are_hidden_unless_include_archived(big: Sandbox) -> None:
    archived = {r["id"] for r in big.records() if "archivedAt" in r}
    assert archived
    with http(big) as client:
        shown = client.get("/customers", params={"limit": 100}).json()
        everything = client.get("/customers", params={"limit": 5, "includeArchived": "true"})
        visible = walk_pages(client, limit=100)
    assert shown["pagination"]["totalResultSize"] == 1000 - len(archived)
    assert everything.json()["pagination"]["totalResultSize"] == 1000
    assert not {i["id"] for i in visible} & archived


def test_filters_by_legal_name_email_and_alias(big: Sandbox) -> None:
    duplicates = [p.id for p in big.planted if p.problem == "duplicate_legal_name"][:2]
    name = big.get_record(duplicates[0])["legalName"]
    target = next(r for r in big.records() if big.aliases_of(r["id"]) and "archivedAt" not in r)
    alias = big.aliases_of(target["id"])[0]
    archived = next(r for r in big.records() if "archivedAt" in r)
    with http(big) as client:
        by_name = client.get("/customers", params={"legalName": name}).json()
        by_email = client.get("/customers", params={"email": target["email"]}).json()
        by_alias = client.get("/customers", params={"alias": alias}).json()
        nothing = client.get("/customers", params={"alias": "no-such-alias"}).json()
        hidden = client.get("/customers", params={"email": archived["email"]}).json()
        found = client.get(
            "/customers", params={"email": archived["email"], "includeArchived": "true"}
        ).json()
    assert {i["id"] for i in by_name["items"]} == set(duplicates)
    assert by_name["pagination"]["totalResultSize"] == 2
    assert [i["id"] for i in by_email["items"]] == [target["id"]]
    assert [i["id"] for i in by_alias["items"]] == [target["id"]]
    assert nothing == {"items": [], "pagination": {"totalResultSize": 0}}
    assert hidden["items"] == []
    assert [i["id"] for i in found["items"]] == [archived["id"]]


# -- listings that change under the reader or never end (knobs) ------------------


def page_envelope_problems(answer: httpx.Response) -> list[str]:
    """What in a ``GET /customers`` answer breaks the published document's envelope.

    The page and its ``pagination`` are checked as the document has them; the records
    inside follow the seed page (whose record has no ``externalIds``, which the
    document's ``Customer`` requires), so they are checked as objects only.
    """
    spec = contract.seed_aligned_spec()
    listed = spec["components"]["schemas"]["ListCustomersResponse"]["properties"]["items"]
    listed["items"] = {"type": "object"}
    request = MockRequest(
        contract.SPEC_HOST,
        "get",
        "/api/customers",
        args=dict(answer.request.url.params),
        headers={"Authorization": "Basic x"},
    )
    response = MockResponse(answer.content, status_code=200, content_type="application/json")
    try:
        OpenAPI.from_dict(spec).validate_response(request, response)
    except Exception as exc:
        errors = getattr(exc.__cause__, "schema_errors", None) or [exc]
        return [str(error) for error in errors]
    return []


def read_pages(client: httpx.Client, count: int, **params: Any) -> list[httpx.Response]:
    """``count`` answers, each following the ``after`` cursor of the one before."""
    answers: list[httpx.Response] = []
    for _ in range(count):
        answer = client.get("/customers", params=params)
        assert answer.status_code == 200, answer.text
        answers.append(answer)
        params = {**params, "after": answer.json()["pagination"]["after"]}
    return answers


@pytest.mark.parametrize(
    ("sort", "by"),
    [({"sortBy": "legalName", "sortOrder": "ASC"}, "legalName"), ({}, "createdAt")],
)
def test_moved_records_are_skipped_and_read_twice_by_the_listing_they_disturb(
    sort: dict[str, str], by: str
) -> None:
    with sandbox.start(customers=450, seed=5) as sb:
        before = {r["id"]: r[by] for r in sb.records()}
        sb.set_faults(move_records=3, move_times=1)
        with http(sb) as client:
            disturbed = walk_pages(client, limit=100, includeArchived="true", **sort)
            whole = walk_pages(client, limit=100, includeArchived="true", **sort)
        after = {r["id"]: r[by] for r in sb.records()}
    ids = [item["id"] for item in disturbed]
    assert len(ids) == 450 and len(set(ids)) == 447  # 3 read twice, 3 never
    moved = {i for i in before if before[i] != after[i]}
    assert len(moved) == 6 and sorted(before[i] for i in moved) == sorted(after[i] for i in moved)
    assert {i for i in ids if ids.count(i) == 2} | set(before) - set(ids) == moved
    assert len({item["id"] for item in whole}) == len(whole) == 450  # move_times=1: done


def test_endless_empty_pages_carry_a_new_cursor_each_time() -> None:
    with sandbox.start(customers=50, seed=5) as sb:
        sb.set_faults(endless_pages="empty")
        with http(sb) as client:
            answers = read_pages(client, 8, limit=20, includeArchived="true")
    sizes = [len(a.json()["items"]) for a in answers]
    cursors = [a.json()["pagination"]["after"] for a in answers]
    assert sizes == [20, 20, 10, 0, 0, 0, 0, 0]
    assert len(set(cursors)) == 8
    assert {a.json()["pagination"]["totalResultSize"] for a in answers} == {50}
    assert [problem for a in answers for problem in page_envelope_problems(a)] == []


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_endless_pages_again_start_the_listing_over_with_a_new_cursor(order: str) -> None:
    with sandbox.start(customers=50, seed=5) as sb:
        sb.set_faults(endless_pages="again")
        with http(sb) as client:
            answers = read_pages(client, 7, limit=20, sortOrder=order, includeArchived="true")
    pages = [[item["id"] for item in a.json()["items"]] for a in answers]
    assert [len(page) for page in pages] == [20, 20, 10, 20, 20, 10, 20]
    assert pages[3:6] == pages[:3] and pages[6] == pages[0]
    assert len({a.json()["pagination"]["after"] for a in answers}) == 7
    assert [problem for a in answers for problem in page_envelope_problems(a)] == []


def test_list_answers_in_both_orders_match_the_published_envelope(big: Sandbox) -> None:
    with http(big) as client:
        answers = [
            *read_pages(client, 3, limit=100, sortOrder="ASC"),
            *read_pages(client, 3, limit=100, sortOrder="DESC", sortBy="legalName"),
        ]
    assert [problem for a in answers for problem in page_envelope_problems(a)] == []
    assert all(a.json()["items"] for a in answers)


@pytest.mark.parametrize(
    "knobs",
    [{"move_records": -1}, {"move_times": -1}, {"endless_pages": "sometimes"}],
)
def test_bad_listing_knobs_are_refused(small: Sandbox, knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        small.set_faults(**knobs)
    assert small.state.faults == sandbox.Faults()


def test_get_by_id_and_by_alias_and_404_for_unknown(big: Sandbox) -> None:
    target = next(r for r in big.records() if big.aliases_of(r["id"]))
    with http(big) as client:
        assert client.get(f"/customers/{target['id']}").json() == big.get_record(target["id"])
        alias = big.aliases_of(target["id"])[-1]
        assert client.get(f"/customers/by-alias/{alias}").json()["id"] == target["id"]
        for path in ("/customers/nope", "/customers/by-alias/nope", "/elsewhere"):
            answer = client.get(path)
            assert answer.status_code == 404
            assert set(answer.json()) == {"message", "errors"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"before": "eyJzIjoxfQ"}, "before"),
        ({"sortBy": "email"}, "sortBy"),
        ({"sortOrder": "UP"}, "sortOrder"),
        ({"includeArchived": "maybe"}, "includeArchived"),
    ],
)
def test_bad_query_parameters_are_400(big: Sandbox, params: dict[str, Any], field: str) -> None:
    with http(big) as client:
        answer = client.get("/customers", params=params)
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == [field]


# -- auth --------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [None, ("demo-client", "wrong-secret-value"), ("someone-else", sandbox.DEMO_CLIENT_SECRET)],
)
def test_missing_or_wrong_credentials_get_401_without_echoing_them(
    big: Sandbox, auth: tuple[str, str] | None
) -> None:
    applied = big.stats.total_writes_applied
    for method, path in (("GET", "/customers"), ("PUT", "/customers/x"), ("POST", "/customers")):
        answer = httpx.request(method, big.url + path, auth=auth, json={})
        assert answer.status_code == 401
        assert answer.json()["message"]
        assert big.client_secret not in answer.text
        assert "wrong-secret-value" not in answer.text and "someone-else" not in answer.text
    garbled = httpx.get(big.url + "/customers", headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401
    assert big.stats.total_writes_applied == applied


def test_repr_shows_url_and_client_id_but_not_the_secret(big: Sandbox) -> None:
    text = repr(big)
    assert big.url in text and big.client_id in text
    assert big.client_secret not in text
    assert len(big.client_secret) >= 32
    assert big.url.startswith("http://127.0.0.1:") and big.url.endswith("/api")


def test_client_helper_builds_a_sequence_client_for_this_sandbox(big: Sandbox) -> None:
    client = big.client()
    assert type(client).__name__ == "SequenceClient"
    assert big.client_secret not in repr(client)


# -- writes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"address": None}, "address"),
        ({"address": "London"}, "address"),
        ({"address": {"line1": "1 A St", "town": "X", "postCode": "1"}}, "address.country"),
        (
            {"address": {"line1": "1 A", "town": "X", "postCode": "1", "country": "UK"}},
            "address.country",
        ),
        (
            {"address": {"line1": "1 A", "town": "X", "postCode": "1", "country": "gb"}},
            "address.country",
        ),
        (
            {"address": {"line1": "1 A", "town": "", "postCode": "1", "country": "GB"}},
            "address.town",
        ),
        ({"address": {"line1": "1 A", "town": "X", "country": "GB"}}, "address.postCode"),
        ({"email": None}, "email"),
        ({"email": "jane.doe.acme.com"}, "email"),
        ({"email": "jane doe@acme.com"}, "email"),
        ({"email": "jane@acme"}, "email"),
        ({"billingEmail": "jane@"}, "billingEmail"),
        ({"legalName": ""}, "legalName"),
        ({"taxStatus": "EXEMPT"}, "taxStatus"),
        ({"telephone": 2071234567}, "telephone"),
        ({"url": ["https://example.com"]}, "url"),
        ({"customerAliases": "cust-1"}, "customerAliases"),
        ({"externalIds": [{"key": "Nope", "value": "1"}]}, "externalIds[0].key"),
        ({"billingEmails": ["a@example.com"]}, "billingEmails"),
        ({"id": "e309e948-088e-4d77-b654-cd85498f1555"}, "id"),
        ({"linkedServices": []}, "linkedServices"),
        ({"createdAt": "2022-06-28T16:47:00Z"}, "createdAt"),
        ({"archivedAt": "2024-01-01T00:00:00Z"}, "archivedAt"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field_and_counted(
    big: Sandbox, change: dict[str, Any], field: str
) -> None:
    record = clean_record(big)
    before = big.stats.rejected_bodies
    body = body_from(record)
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    with http(big) as client:
        answer = client.put(f"/customers/{record['id']}", json=body)
    assert answer.status_code == 400, answer.text
    data = answer.json()
    assert data["message"]
    assert field in [e["field"] for e in data["errors"]]
    assert all(set(e) == {"field", "message"} for e in data["errors"])
    assert big.stats.rejected_bodies == before + 1
    assert big.get_record(record["id"]) == record


def test_every_bad_field_is_named_at_once(big: Sandbox) -> None:
    bad = {
        "address": {"line1": "", "country": "Germany"},
        "email": "x",
        "taxStatus": "NO",
        "id": "1",
    }
    with http(big) as client:
        answer = client.post("/customers", json=bad)
    assert answer.status_code == 400
    named = {e["field"] for e in answer.json()["errors"]}
    expected = {"address.line1", "address.town", "address.postCode", "address.country"}
    assert named >= expected | {"email", "taxStatus", "legalName", "id"}


def test_invalid_json_and_wrong_content_type_are_rejected_and_counted(small: Sandbox) -> None:
    record_id = small.records()[0]["id"]
    with http(small) as client:
        broken = client.put(
            f"/customers/{record_id}",
            content=b'{"legalName": ',
            headers={"Content-Type": "application/json"},
        )
        as_text = client.put(f"/customers/{record_id}", content=b"{}")
        not_object = client.put(f"/customers/{record_id}", json=[1, 2])
    assert broken.status_code == 400 and broken.json()["message"]
    assert as_text.status_code == 415
    assert not_object.status_code == 400
    assert not_object.json()["errors"][0]["field"] == "body"
    assert small.stats.rejected_bodies == 3
    assert small.stats.total_writes_applied == 0


def test_seed_example_put_is_accepted_and_clears_the_optional_fields_it_leaves_out(
    big: Sandbox,
) -> None:
    record = clean_record(big)
    big.edit_remote(record["id"], {"futureField": {"kept": True}})
    with http(big) as client:
        answer = client.put(
            f"/customers/{record['id']}",
            content=SEED_EXAMPLE_BODY.encode(),
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    updated = answer.json()
    assert updated == big.get_record(record["id"])
    assert updated["address"] == {
        "line1": "Flat 1",
        "town": "London",
        "postCode": "AB1 2EF",
        "country": "GB",
    }
    assert (updated["email"], updated["legalName"]) == ("john@example.com", "John Doe")
    for cleared in ("billingEmail", "contactName", "label", "paymentReference", "telephone", "url"):
        assert cleared not in updated
    assert updated["billingEmails"] == []
    for kept in ("id", "createdAt", "sequenceAccountId", "linkedServices"):
        assert updated[kept] == record[kept]
    assert updated["futureField"] == {"kept": True}
    assert big.stats.writes_applied[record["id"]] == 1


def test_put_sets_billing_emails_aliases_and_external_ids(big: Sandbox) -> None:
    record = clean_record(big)
    body = body_from(
        record,
        billingEmail="ap@newco.example",
        customerAliases=["fresh-alias-1"],
        externalIds=[{"key": "Stripe", "value": "cus_123"}],
    )
    with http(big) as client:
        updated = client.put(f"/customers/{record['id']}", json=body).json()
        again = client.put(f"/customers/{record['id']}", json=body_from(updated)).json()
        by_alias = client.get("/customers/by-alias/fresh-alias-1")
        taken = client.put(
            f"/customers/{big.records()[0]['id']}",
            json=body_from(big.records()[0], customerAliases=["fresh-alias-1"]),
        )
    assert updated["billingEmail"] == "ap@newco.example"
    assert updated["billingEmails"] == ["ap@newco.example"]
    assert updated["externalIds"][0]["key"] == "Stripe"
    assert TIMESTAMP.match(updated["externalIds"][0]["syncTime"])
    assert "customerAliases" not in updated
    assert again["externalIds"] == updated["externalIds"]  # absent: kept
    assert big.aliases_of(record["id"]) == ["fresh-alias-1"]  # absent: kept
    assert by_alias.json()["id"] == record["id"]
    assert taken.status_code == 400
    assert taken.json()["errors"][0]["field"] == "customerAliases"


def test_post_creates_a_customer_with_201_wrapped_as_the_spec_says(small: Sandbox) -> None:
    body = {
        "legalName": "Newco Ltd",
        "email": "jo@newco.example",
        "billingEmail": "ap@newco.example",
        "address": {
            "line1": "1 High Street",
            "town": "Leeds",
            "postCode": "LS1 4DY",
            "country": "GB",
        },
        "taxStatus": "TAXED",
        "customerAliases": ["newco"],
    }
    with http(small) as client:
        answer = client.post("/customers", json=body)
        fetched = client.get("/customers/by-alias/newco").json()
        newest = client.get("/customers", params={"limit": 1}).json()["items"][0]
    assert answer.status_code == 201
    created = answer.json()["customer"]
    assert created == fetched == newest
    assert created["billingEmails"] == ["ap@newco.example"] and created["linkedServices"] == []
    assert created["sequenceAccountId"] == small.records()[0]["sequenceAccountId"]
    assert len(small.records()) == 31
    assert small.stats.writes_applied == Counter({created["id"]: 1})


# -- idempotency -------------------------------------------------------------


def test_idempotent_replay_applies_once(small: Sandbox) -> None:
    record = small.records()[1]
    body = body_from(record, label="Renamed")
    headers = {"Idempotency-Key": "key-1"}
    with http(small) as client:
        first = client.put(f"/customers/{record['id']}", json=body, headers=headers)
        small.edit_remote(record["id"], {"label": "Changed elsewhere"})
        second = client.put(f"/customers/{record['id']}", json=body, headers=headers)
        created = client.post("/customers", json=body, headers={"Idempotency-Key": "key-2"})
        again = client.post("/customers", json=body, headers={"Idempotency-Key": "key-2"})
    assert first.status_code == second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.json() == first.json()
    assert small.get_record(record["id"])["label"] == "Changed elsewhere"  # not applied again
    assert created.status_code == again.status_code == 201
    assert again.json()["customer"]["id"] == created.json()["customer"]["id"]
    assert len(small.records()) == 31
    stats = small.stats
    assert stats.writes_applied == Counter({record["id"]: 1, created.json()["customer"]["id"]: 1})
    assert stats.replays == 2


def test_two_concurrent_requests_with_one_key_apply_once() -> None:
    with sandbox.start(customers=5, latency=0.3) as sb:
        record = sb.records()[0]
        body = body_from(record, label="Concurrent")
        barrier = threading.Barrier(4)
        answers: list[httpx.Response] = []

        def send() -> None:
            with http(sb) as client:
                barrier.wait()
                answers.append(
                    client.put(
                        f"/customers/{record['id']}", json=body, headers={"Idempotency-Key": "k"}
                    )
                )

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = sb.stats
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    assert stats.writes_applied == Counter({record["id"]: 1})
    assert stats.replays == 3
    assert stats.max_in_flight == 4  # the four really were handled at the same time


def test_idempotency_key_reused_with_another_body_or_path_is_409(small: Sandbox) -> None:
    one, two = small.records()[:2]
    headers = {"Idempotency-Key": "reused"}
    with http(small) as client:
        ok = client.put(f"/customers/{one['id']}", json=body_from(one), headers=headers)
        other_body = client.put(
            f"/customers/{one['id']}", json=body_from(one, label="Different"), headers=headers
        )
        other_path = client.put(f"/customers/{two['id']}", json=body_from(one), headers=headers)
    assert ok.status_code == 200
    assert other_body.status_code == other_path.status_code == 409
    assert other_body.json()["message"]
    assert small.stats.writes_applied == Counter({one["id"]: 1})
    assert small.stats.idempotency_conflicts == 2


# -- rate limit and faults ---------------------------------------------------


def test_over_the_rate_limit_answers_429_with_retry_after() -> None:
    with sandbox.start(customers=5, rate_limit_per_minute=5) as sb, http(sb) as client:
        codes = [client.get("/customers").status_code for _ in range(5)]
        limited = client.get("/customers")
        sb.set_faults(rate_limit_per_minute=None)
        after_lifting = client.get("/customers")
        stats = sb.stats
    assert codes == [200] * 5
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["message"]
    assert after_lifting.status_code == 200
    assert stats.rate_limited == 1


def test_error_rate_answers_5xx_before_doing_anything(small: Sandbox) -> None:
    record = small.records()[0]
    small.set_faults(error_rate=1.0)
    with http(small) as client:
        answers = [client.put(f"/customers/{record['id']}", json={}) for _ in range(10)]
    assert {a.status_code for a in answers} <= {500, 502, 503}
    assert all(a.json()["message"] for a in answers)
    stats = small.stats
    assert stats.faults_injected == 10 and stats.rejected_bodies == 0


def test_partial_fault_rates_are_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        with sandbox.start(customers=3, seed=11, error_rate=0.5) as sb, http(sb) as client:
            runs.append([client.get("/customers").status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert 200 in runs[0] and set(runs[0]) - {200}


def test_rate_limit_rate_answers_429_with_retry_after_1(small: Sandbox) -> None:
    small.set_faults(rate_limit_rate=1.0)
    with http(small) as client:
        answer = client.get("/customers")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert small.stats.rate_limited == 1 and small.stats.faults["rate_limit"] == 1


def test_drop_rate_cuts_the_connection_before_applying_and_stays_quiet(
    small: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    record = small.records()[0]
    small.set_faults(drop_rate=1.0)
    with caplog.at_level(logging.DEBUG), http(small) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/customers")
        with pytest.raises(httpx.RemoteProtocolError):
            client.put(f"/customers/{record['id']}", json=body_from(record, label="Dropped"))
        small.set_faults(drop_rate=0.0)
        assert client.get("/customers").status_code == 200  # the client recovers
    assert small.get_record(record["id"]) == record
    assert small.stats.faults["drop"] == 2 and small.stats.total_writes_applied == 0
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "ASGI" not in out + err


def test_lost_answer_applies_the_write_but_the_client_never_hears(small: Sandbox) -> None:
    record = small.records()[0]
    body = body_from(record, label="Lost answer")
    small.set_faults(lost_answer_rate=1.0)
    with http(small) as client:
        reads = client.get("/customers")  # reads are never lost
        with pytest.raises(httpx.RemoteProtocolError):
            client.put(f"/customers/{record['id']}", json=body, headers={"Idempotency-Key": "L"})
        assert small.get_record(record["id"])["label"] == "Lost answer"
        small.set_faults(lost_answer_rate=0.0)
        retry = client.put(
            f"/customers/{record['id']}", json=body, headers={"Idempotency-Key": "L"}
        )
    assert reads.status_code == 200
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert small.stats.writes_applied == Counter({record["id"]: 1})
    assert small.stats.faults["lost_answer"] == 1


def test_latency_delays_each_request_without_blocking_others() -> None:
    with sandbox.start(customers=3, latency=0.3) as sb:
        started = time.perf_counter()
        with http(sb) as client:
            client.get("/customers")
        single = time.perf_counter() - started

        clients = [http(sb) for _ in range(5)]
        threads = [threading.Thread(target=c.get, args=("/customers",)) for c in clients]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        parallel = time.perf_counter() - started
        for c in clients:
            c.close()
        stats = sb.stats
    assert single >= 0.3
    assert parallel < 1.2  # a blocked loop would need 5 x 0.3 s
    assert stats.max_in_flight == 5


def test_set_faults_rejects_bad_knobs(big: Sandbox) -> None:
    with pytest.raises(ValueError):
        big.set_faults(error_rate=1.5)
    with pytest.raises(TypeError):
        big.set_faults(explode=True)
    assert big.state.faults == sandbox.Faults()


# -- helpers and lifecycle ---------------------------------------------------


def test_edit_remote_merges_nested_changes_and_is_visible_over_http(small: Sandbox) -> None:
    record = next(r for r in small.records() if "billingEmail" in r)
    small.edit_remote(record["id"], {"address": {"town": "Elsewhere"}, "billingEmail": None})
    with http(small) as client:
        fetched = client.get(f"/customers/{record['id']}").json()
    assert fetched["address"] == {**record["address"], "town": "Elsewhere"}
    assert "billingEmail" not in fetched and fetched["billingEmails"] == []
    assert small.stats.total_writes_applied == 0
    copy = small.get_record(record["id"])
    copy["legalName"] = "Mutating a copy changes nothing"
    assert small.get_record(record["id"])["legalName"] == record["legalName"]
    with pytest.raises(KeyError):
        small.edit_remote("no-such-id", {"label": "x"})


def test_given_records_replace_the_generated_ones() -> None:
    records, _ = generate_customers(4, seed=9)
    with sandbox.start(records=records[:2]) as sb, http(sb) as client:
        listed = client.get("/customers", params={"includeArchived": "true"}).json()
        assert sb.planted == []
    assert listed["pagination"]["totalResultSize"] == 2


def test_start_takes_an_options_object_and_keywords_beside_it() -> None:
    options = sandbox.SandboxOptions(customers=3, seed=4, client_id="team-a")
    knobs = {"seed": 5, "unlink_on_put": True, "rate_limit_per_minute": 100}
    with sandbox.start(options, **knobs) as sb, http(sb) as client:
        listed = client.get("/customers", params={"includeArchived": "true"}).json()
        assert (sb.client_id, sb.state.limiter.per_minute) == ("team-a", 100)
        assert sb.state.faults == sandbox.Faults(unlink_on_put=True)
    expected, _ = generate_customers(3, seed=5)
    assert {r["id"] for r in listed["items"]} == {r["id"] for r in expected}
    assert options.seed == 4  # the object given is left as it was


def test_every_field_of_faults_is_a_sandbox_option() -> None:
    """The fault knobs are read from Faults: one added there needs no second list."""
    defaults = dataclasses.asdict(sandbox.Faults())
    assert sandbox.SandboxOptions().with_knobs(**defaults).faults == sandbox.Faults()
    slow = sandbox.SandboxOptions(faults=sandbox.Faults(error_rate=0.5)).with_knobs(latency=0.25)
    assert slow.faults == sandbox.Faults(latency=0.25, error_rate=0.5)


def test_an_unknown_sandbox_option_is_named_beside_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown sandbox option latncy \(the options: .*latency"):
        sandbox.start(customers=3, latncy=0.3)
    with pytest.raises(TypeError, match=r"keywords such as start\(customers=200"):
        sandbox.start(200)  # type: ignore[arg-type]


def test_sandbox_options_keep_the_secret_out_of_their_repr() -> None:
    options = sandbox.SandboxOptions(client_secret="local-demo-s3cret")
    assert "local-demo-s3cret" not in repr(options)
    assert sandbox.build_state(options).client_secret == "local-demo-s3cret"


def test_start_and_stop_many_sandboxes_without_leaking_threads() -> None:
    baseline = threading.active_count()
    urls = set()
    started = time.perf_counter()
    for seed in range(6):
        with sandbox.start(customers=10, seed=seed) as sb:
            urls.add(sb.url)
            assert httpx.get(
                sb.url + "/customers", auth=(sb.client_id, sb.client_secret)
            ).is_success
        assert not sb.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(sb.url + "/customers")
    sb.stop()  # stopping twice is harmless
    assert len(urls) == 6
    assert threading.active_count() == baseline
    assert time.perf_counter() - started < 5


def test_a_1000_customer_sandbox_starts_well_under_a_second() -> None:
    started = time.perf_counter()
    sb = sandbox.start(customers=1000, seed=42)
    elapsed = time.perf_counter() - started
    sb.stop()
    assert elapsed < 0.6
