"""The models accept the seed's bodies and refuse what the API would."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sequence_nb import CustomerUpdate, InvalidBodyError, TaxStatus, fields
from sequence_nb.fields import UnknownApiVersionError
from sequence_nb.models import (
    CreateOrUpdateCustomerRequest,
    Customer,
    update_body_of,
    update_losses,
    validate_update_body,
)
from tests import contract
from tests.seed import SEED_BODY, SEED_RECORD


def with_change(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    target[leaf] = value
    return changed


def problems_of(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidBodyError) as caught:
        validate_update_body(body, customer_id="c-1")
    return dict(caught.value.problems)


def test_seed_example_body_validates_unchanged() -> None:
    assert validate_update_body(SEED_BODY) == SEED_BODY


def test_seed_record_converts_to_a_body_of_update_fields_only() -> None:
    body = Customer.model_validate(SEED_RECORD).to_update().to_body()
    assert set(body) == {
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
    }
    assert body["address"]["line2"] == "123 Fake Street"


def test_customer_keeps_unknown_fields() -> None:
    record = dict(SEED_RECORD, archivedAt="2024-01-01T00:00:00Z", externalIds=[{"key": "Xero"}])
    customer = Customer.model_validate(record)
    assert customer.model_extra == {
        "archivedAt": "2024-01-01T00:00:00Z",
        "externalIds": [{"key": "Xero"}],
    }


@pytest.mark.parametrize("field", ["legalName", "email", "taxStatus", "address"])
def test_missing_required_field_is_named(field: str) -> None:
    body = {k: v for k, v in SEED_BODY.items() if k != field}
    assert problems_of(body)[field] == "Field required"


@pytest.mark.parametrize("part", ["line1", "town", "postCode", "country"])
def test_missing_required_address_part_is_named(part: str) -> None:
    body = copy.deepcopy(SEED_BODY)
    del body["address"][part]
    assert f"address.{part}" in problems_of(body)


@pytest.mark.parametrize("path", ["legalName", "address.line1", "address.town", "address.postCode"])
def test_blank_required_text_is_refused(path: str) -> None:
    assert problems_of(with_change(SEED_BODY, path, "   "))[path] == "must not be empty"


@pytest.mark.parametrize("value", ["john.example.com", "john@", "@example.com", "john doe@x.com"])
@pytest.mark.parametrize("field", ["email", "billingEmail"])
def test_invalid_email_is_refused(field: str, value: str) -> None:
    assert "is not an email address" in problems_of(dict(SEED_BODY, **{field: value}))[field]


def test_email_with_surrounding_space_is_refused() -> None:
    assert (
        "spaces at its start or end"
        in problems_of(dict(SEED_BODY, email=" john@example.com"))["email"]
    )


@pytest.mark.parametrize("country", ["United Kingdom", "GBR", "gb", "XX", ""])
def test_country_must_be_an_alpha2_code(country: str) -> None:
    problems = problems_of(with_change(SEED_BODY, "address.country", country))
    assert "alpha-2" in problems["address.country"]


@pytest.mark.parametrize("country", ["GB", "US", "DE", "FR", "IE"])
def test_alpha2_countries_are_accepted(country: str) -> None:
    validate_update_body(with_change(SEED_BODY, "address.country", country))


def test_tax_status_must_be_one_of_the_seed_values() -> None:
    assert "TAXED" in problems_of(dict(SEED_BODY, taxStatus="taxed"))["taxStatus"]
    assert {s.value for s in TaxStatus} == {"TAXED", "TAX_EXEMPT", "REVERSE_CHARGED"}


@pytest.mark.parametrize("field", ["billingEmails", "id", "linkedServices", "createdAt"])
def test_read_only_fields_are_never_serialized(field: str) -> None:
    assert problems_of(dict(SEED_BODY, **{field: "x"}))[field] == (
        "is not a field of the update body"
    )


def test_every_problem_is_reported_at_once() -> None:
    body = dict(SEED_BODY, email="bad", legalName="")
    body["address"] = dict(SEED_BODY["address"], country="Germany")
    problems = problems_of(body)
    assert set(problems) == {"email", "legalName", "address.country"}


def test_error_names_the_customer_field_and_rule() -> None:
    with pytest.raises(InvalidBodyError, match=r"customer c-9: .*email 'nope' is not an email"):
        validate_update_body(dict(SEED_BODY, email="nope"), customer_id="c-9")


def test_body_leaves_out_unset_optional_fields() -> None:
    body = CustomerUpdate.model_validate(dict(SEED_BODY, label=None)).to_body()
    assert "label" not in body


def test_external_ids_use_the_published_services() -> None:
    ok = dict(SEED_BODY, externalIds=[{"key": "Stripe", "value": "cus_1"}])
    assert validate_update_body(ok)["externalIds"] == [{"key": "Stripe", "value": "cus_1"}]
    assert "externalIds.0.key" in problems_of(
        dict(SEED_BODY, externalIds=[{"key": "MySpace", "value": "1"}])
    )


def test_a_non_mapping_body_is_refused() -> None:
    assert "(body)" in problems_of(["not", "a", "body"])  # type: ignore[arg-type]


def test_a_body_shares_nothing_with_its_record() -> None:
    record = copy.deepcopy(SEED_RECORD)
    body = update_body_of(record)
    body["address"]["town"] = "Leeds"
    assert record["address"]["town"] == "London"


@pytest.mark.parametrize("path", ["legalName", "label", "address.line2", "contactName"])
def test_control_characters_are_refused(path: str) -> None:
    problems = problems_of(with_change(SEED_BODY, path, "Acme\x00 Ltd"))
    assert problems[path] == "holds a control character ('\\x00' at position 4)"


def test_emoji_accents_no_break_spaces_and_right_to_left_text_are_accepted() -> None:
    body = dict(SEED_BODY, legalName="שלום 🎉 Ltd", label="Zoë\u00a0Café", contactName="مرحبا")
    assert validate_update_body(body)["legalName"] == "שלום 🎉 Ltd"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Acme\u200b", "an invisible format character (U+200B ZERO WIDTH SPACE at position 4)"),
        ("\u202edtL emcA", "an invisible format character (U+202E RIGHT-TO-LEFT OVERRIDE at"),
        ("Acme\ufeff", "an invisible format character (U+FEFF ZERO WIDTH NO-BREAK SPACE at"),
        ("Acme\u2066Ltd\u2069", "an invisible format character (U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("Acme Ltd\n", "a line break ('\\n' at position 8): the field is one line"),
        ("Acme\r\nLtd", "a line break ('\\r' at position 4)"),
        ("Acme\u2028Ltd", "a line break ('\\u2028' at position 4)"),
        ("Acme\tLtd", "a tab (at position 4): the field is one line"),
    ],
)
@pytest.mark.parametrize(
    "path", ["legalName", "label", "contactName", "address.line1", "address.line2", "telephone"]
)
def test_invisible_and_line_breaking_characters_are_refused_in_every_text_field(
    path: str, value: str, message: str
) -> None:
    problem = problems_of(with_change(SEED_BODY, path, value))[path]
    assert problem.startswith("holds " + message)


def test_invisible_characters_are_refused_in_aliases_and_external_ids() -> None:
    body = dict(SEED_BODY, customerAliases=["ok", "x\u200by"])
    body["externalIds"] = [{"key": "Stripe", "value": "cus_\u2060"}]
    problems = problems_of(body)
    assert "U+200B" in problems["customerAliases.1"]
    assert "U+2060 WORD JOINER" in problems["externalIds.0.value"]


@pytest.mark.parametrize("value", [42, ["a"], {"x": 1}, True])
def test_values_of_the_wrong_type_are_refused(value: object) -> None:
    assert "valid string" in problems_of(dict(SEED_BODY, label=value))["label"]


def test_billing_emails_that_are_not_a_list_are_one_named_problem() -> None:
    record = {"billingEmail": "ap@example.com", "billingEmails": "ap@example.com"}
    ((column, message),) = update_losses(record)
    assert column == "billingEmails"
    assert "'ap@example.com', not a list of addresses" in message


@pytest.mark.parametrize(
    "name",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 Ltd",
        "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 Co",
    ],
    ids=["persian-zwnj", "emoji-zwj"],
)
def test_joiners_that_real_names_use_are_accepted(name: str) -> None:
    body = dict(SEED_BODY, legalName=name)
    assert validate_update_body(body)["legalName"] == name


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\u034f", "U+034F COMBINING GRAPHEME JOINER"),
        ("\u3164", "U+3164 HANGUL FILLER"),
        ("\uffa0", "U+FFA0 HALFWIDTH HANGUL FILLER"),
        ("\u115f", "U+115F HANGUL CHOSEONG FILLER"),
        ("\u1160", "U+1160 HANGUL JUNGSEONG FILLER"),
        ("\u2800", "U+2800 BRAILLE PATTERN BLANK"),
        ("\U000e0100", "U+E0100 VARIATION SELECTOR-17"),
        ("\U000e01ef", "U+E01EF VARIATION SELECTOR-256"),
        ("\U000e0041", "U+E0041 TAG LATIN CAPITAL LETTER A"),
    ],
)
@pytest.mark.parametrize("path", ["legalName", "label", "address.line1", "telephone"])
def test_characters_that_show_as_nothing_or_a_blank_are_refused(
    path: str, char: str, name: str
) -> None:
    problem = problems_of(with_change(SEED_BODY, path, "Acme" + char))[path]
    assert problem.startswith("holds an invisible ") and f"({name} at position 4)" in problem


@pytest.mark.parametrize(
    "name",
    [
        "Heart \u2764\ufe0f Ltd",  # emoji presentation selector
        "\u845b\ufe00 Ltd",  # a standardized variation sequence
        "Flag \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Co",
        "\u182a\u180b\u1820 \u1828\u180e\u1820",  # Mongolian variation selector, vowel separator
        "Family \U0001f468\u200d\U0001f469\u200d\U0001f467 Co",
    ],
    ids=["fe0f", "fe00", "scotland-tags", "mongolian", "zwj"],
)
def test_selectors_and_tags_real_text_needs_are_accepted(name: str) -> None:
    assert validate_update_body(dict(SEED_BODY, legalName=name))["legalName"] == name


def test_tag_characters_outside_a_flag_are_refused() -> None:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "pay evil")
    problem = problems_of(dict(SEED_BODY, legalName="Acme" + hidden))["legalName"]
    assert "U+E0070 TAG LATIN SMALL LETTER P at position 4" in problem


# -- API version 2024-07-30 ----------------------------------------------------------------

V2024 = fields.V2024_07_30
DOCUMENT_2024 = json.loads(contract.SPEC_2024_PATH.read_text())
#: The update body and the record the published 2024-07-30 document gives as examples.
EXAMPLE_BODY_2024: dict[str, Any] = DOCUMENT_2024["components"]["schemas"][
    "CreateOrUpdateCustomerRequest"
]["example"]
EXAMPLE_RECORD_2024: dict[str, Any] = DOCUMENT_2024["components"]["schemas"]["Customer"]["example"]


def problems_2024(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidBodyError) as caught:
        validate_update_body(body, customer_id="c-1", version=V2024)
    return dict(caught.value.problems)


def test_the_2024_document_example_body_validates_unchanged() -> None:
    assert validate_update_body(EXAMPLE_BODY_2024, version=V2024) == EXAMPLE_BODY_2024
    assert validate_update_body(EXAMPLE_BODY_2024, version="2024-07-30") == EXAMPLE_BODY_2024
    model = CreateOrUpdateCustomerRequest.model_validate(EXAMPLE_BODY_2024)
    assert validate_update_body(model, version=V2024) == EXAMPLE_BODY_2024


def test_a_2024_body_names_each_broken_field_by_its_path() -> None:
    body = copy.deepcopy(EXAMPLE_BODY_2024)
    body["contacts"][1]["email"] = "anna.smith.example.com"
    body["contacts"][2]["billingPreference"] = "SOMETIMES"
    body["integrationIds"][0]["service"] = "Dropbox"
    body["customProperties"]["tier"] = "gold\n"
    body["status"] = "LIVE"
    body["email"] = "john@example.com"
    problems = problems_2024(body)
    assert set(problems) == {
        "contacts.1.email",
        "contacts.2.billingPreference",
        "integrationIds.0.service",
        "customProperties.tier",
        "status",
        "email",
    }
    assert "not an email address" in problems["contacts.1.email"]
    assert "PRIMARY, STANDARD, NONE" in problems["contacts.2.billingPreference"]
    assert problems["email"] == "is not a field of the update body"


@pytest.mark.parametrize(
    ("country", "state", "problem"),
    [
        ("US", None, "is required for an address in US"),
        ("CA", None, "is required for an address in CA"),
        ("US", "ON", "'ON' is a Canadian province; an address in US needs a US state"),
        ("CA", "NY", "'NY' is a US state; an address in CA needs a Canadian province"),
        ("US", "XX", "'XX' is not a state or province code"),
    ],
)
def test_a_us_or_canadian_address_needs_a_state_of_its_country(
    country: str, state: str | None, problem: str
) -> None:
    body = copy.deepcopy(EXAMPLE_BODY_2024)
    body["address"]["country"] = country
    body["address"].pop("state")
    if state is not None:
        body["address"]["state"] = state
    assert problems_2024(body)["address.state"].startswith(problem)


def test_an_address_outside_us_and_ca_needs_no_state() -> None:
    body = copy.deepcopy(EXAMPLE_BODY_2024)
    body["address"] = {
        "line1": "1 High St",
        "town": "Leeds",
        "postcode": "LS1 1AA",
        "country": "GB",
    }
    assert validate_update_body(body, version=V2024)["address"] == body["address"]


def test_contacts_that_receive_billing_mail_need_a_primary_one() -> None:
    body = copy.deepcopy(EXAMPLE_BODY_2024)
    body["contacts"][0]["billingPreference"] = "STANDARD"
    assert "none is PRIMARY" in problems_2024(body)["contacts"]
    for contact in body["contacts"]:
        contact["billingPreference"] = "NONE"
    assert validate_update_body(body, version=V2024)["contacts"] == body["contacts"]
    assert validate_update_body(dict(body, contacts=[]), version=V2024)["contacts"] == []


def test_two_contacts_with_one_address_are_refused() -> None:
    body = copy.deepcopy(EXAMPLE_BODY_2024)
    body["contacts"][2]["email"] = "John.Smith@example.com"
    assert "contact 0 too" in problems_2024(body)["contacts.2.email"]


def test_contacts_are_required_and_custom_properties_are_sent_only_when_given() -> None:
    body = {k: v for k, v in EXAMPLE_BODY_2024.items() if k not in ("contacts", "customProperties")}
    assert problems_2024(body) == {"contacts": "Field required"}
    sent = validate_update_body(dict(body, contacts=[]), version=V2024)
    assert "customProperties" not in sent
    cleared = validate_update_body(dict(body, contacts=[], customProperties={}), version=V2024)
    assert cleared["customProperties"] == {}
    empty_value = dict(body, contacts=[], customProperties={"region": ""})
    assert validate_update_body(empty_value, version=V2024)["customProperties"] == {"region": ""}
    named = problems_2024(dict(body, contacts=[], customProperties={" tier": "gold", "": "x"}))
    assert named["customProperties. tier"].startswith("(the name)")
    assert "needs a name" in named["customProperties."]


def test_each_version_refuses_the_other_versions_body() -> None:
    assert set(problems_2024(SEED_BODY)) == {
        "email",
        "contacts",
        "address.postCode",
        "address.postcode",
    }
    assert "(body)" in problems_2024(CustomerUpdate.model_validate(SEED_BODY))  # type: ignore[arg-type]
    with pytest.raises(InvalidBodyError, match="is a 2024-07-30 body"):
        validate_update_body(CreateOrUpdateCustomerRequest.model_validate(EXAMPLE_BODY_2024))
    assert validate_update_body(SEED_BODY, version="seed") == SEED_BODY
    with pytest.raises(UnknownApiVersionError, match="seed, 2024-07-30"):
        validate_update_body(SEED_BODY, version="2023-01-01")


def test_update_body_of_a_2024_record_keeps_what_an_update_carries() -> None:
    record = copy.deepcopy(EXAMPLE_RECORD_2024)
    record["contacts"].append(
        {
            "id": "c2",
            "name": "Anna Smith",
            "email": "anna@example.com",
            "billingPreference": "PRIMARY",
            "createdAt": "2022-06-28T16:47:00Z",
            "updatedAt": "2022-06-28T16:47:00Z",
        }
    )
    body = update_body_of(record, V2024)
    assert set(body) == {
        "legalName",
        "address",
        "url",
        "label",
        "taxStatus",
        "integrationIds",
        "contacts",
        "status",
        "customProperties",
    }
    # The document's example contact is archived: sent back it would come back to life.
    assert body["contacts"] == [
        {"name": "Anna Smith", "email": "anna@example.com", "billingPreference": "PRIMARY"}
    ]
    assert body["integrationIds"] == [
        {"service": "Xero", "id": "2aaff66f-ef30-4599-b192-c168fd4cd226"},
        {"service": "Stripe", "id": "cus_OCtCxqQDgu1uX9"},
    ]
    assert body["customProperties"] == {"region": "EU", "tier": "gold"}
    body["customProperties"]["tier"] = "silver"
    body["address"]["town"] = "Elsewhere"
    assert record == {**EXAMPLE_RECORD_2024, "contacts": record["contacts"]}  # nothing shared
    assert validate_update_body(body, version=V2024)["address"]["town"] == "Elsewhere"


def test_a_listed_record_without_contacts_gives_a_body_validation_refuses() -> None:
    listed = {k: v for k, v in EXAMPLE_RECORD_2024.items() if k != "contacts"}
    body = update_body_of(listed, V2024)
    assert "contacts" not in body
    assert problems_2024(body) == {"contacts": "Field required"}
