"""quality.check: every problem code, the result's shape and order, the fast paths."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from sequence_nb import fields
from sequence_nb.errors import InvalidBodyError
from sequence_nb.frames import to_frame
from sequence_nb.models import update_body_of, validate_update_body
from sequence_nb.quality import PROBLEMS, RESULT_SCHEMA, check, check_contacts
from sequence_nb.sandbox.data import generate_customers
from tests import v2024
from tests.seed import SEED_RECORD

TAX_ENUM = pl.Enum(list(fields.TAX_STATUSES))


def customers(n: int = 3, /, **columns: Any) -> pl.DataFrame:
    """A frame of ``n`` clean customers in the frame's schema; ``columns`` override."""
    data: dict[str, Any] = {
        "id": [f"c{i}" for i in range(n)],
        "legalName": [f"Company {i} Ltd" for i in range(n)],
        "contactName": [f"Person {i}" for i in range(n)],
        "email": [f"person{i}@company{i}.co.uk" for i in range(n)],
        "billingEmail": [f"invoices@company{i}.co.uk" for i in range(n)],
        "address.line1": [f"{i + 1} High Street" for i in range(n)],
        "address.line2": [None] * n,
        "address.town": ["London"] * n,
        "address.postCode": ["EC1A 1BB"] * n,
        "address.country": ["GB"] * n,
        "taxStatus": pl.Series(["TAXED"] * n, dtype=TAX_ENUM),
        "telephone": [f"+44 20 7946 {i:04d}" for i in range(n)],
        "url": [f"https://company{i}.co.uk/" for i in range(n)],
        "label": ["Enterprise"] * n,
        "paymentReference": [f"PO-{i}" for i in range(n)],
        "createdAt": pl.Series(
            [datetime(2024, 1, 1, tzinfo=UTC)] * n, dtype=pl.Datetime("us", "UTC")
        ),
        "sequenceAccountId": ["acct"] * n,
        "billingEmails": [[f"invoices@company{i}.co.uk"] for i in range(n)],
        "linkedServices": pl.Series(
            [[{"externalId": "x", "externalService": "Xero", "syncTime": "2024-01-01T00:00:00Z"}]]
            * n
        ),
        "archivedAt": [None] * n,
    }
    for name, values in columns.items():
        data[name] = values
    return pl.DataFrame(data)


def problems(result: pl.DataFrame) -> set[tuple[str, str, str]]:
    return set(result.select("id", "column", "problem").iter_rows())


def only(result: pl.DataFrame, problem: str) -> pl.DataFrame:
    return result.filter(pl.col("problem") == problem)


# --------------------------------------------------------------------------- shape


def test_clean_frame_gives_empty_result_with_the_right_schema() -> None:
    result = check(customers())
    assert result.height == 0
    assert result.schema == RESULT_SCHEMA


def test_empty_frame_gives_empty_result() -> None:
    assert check(customers(0)).schema == RESULT_SCHEMA


def test_result_has_string_columns_and_is_sorted_by_row_then_column() -> None:
    df = customers(
        3,
        legalName=["Company 0 Ltd", "Company 1 Ltd ", "Company 2 Ltd"],
        email=["bad", "person1@company1.co.uk", "x@Y.com"],
        url=["nope", None, None],
        telephone=[None, "nope", None],
    )
    result = check(df)
    assert result.schema == RESULT_SCHEMA
    order = {c: i for i, c in enumerate(df.columns)}
    keys = [(int(r["id"][1:]), order[r["column"]]) for r in result.iter_rows(named=True)]
    assert keys == sorted(keys)
    assert [r[:3] for r in result.iter_rows()] == [
        ("c0", "email", "invalid_email"),
        ("c0", "url", "invalid_url"),
        ("c1", "legalName", "whitespace"),
        ("c1", "telephone", "invalid_telephone"),
        ("c2", "email", "email_case"),
    ]


def test_problems_lists_every_code_with_a_description() -> None:
    assert list(PROBLEMS) == [
        "missing",
        "wrong_type",
        "whitespace",
        "invalid_email",
        "email_case",
        "invalid_country",
        "invalid_tax_status",
        "invalid_status",
        "missing_state",
        "invalid_state",
        "empty_property",
        "invalid_telephone",
        "invalid_url",
        "missing_billing_email",
        "duplicate_legal_name",
        "duplicate_email",
    ]
    assert all(isinstance(text, str) and text for text in PROBLEMS.values())


# --------------------------------------------------------------------------- each code

CASES = [
    ("legalName", None, "missing", None),
    ("legalName", "   ", "missing", "only spaces"),
    ("address.town", "", "missing", "empty"),
    ("email", None, "missing", None),
    ("contactName", " Jane Doe", "whitespace", "' Jane Doe'"),
    ("address.postCode", "EC1A 1BB  ", "whitespace", "'EC1A 1BB  '"),
    ("label", "   ", "whitespace", "only spaces"),
    ("email", "jane.example.com", "invalid_email", "'jane.example.com'"),
    ("email", "jane@", "invalid_email", "'jane@'"),
    ("email", "jane@example", "invalid_email", "'jane@example'"),
    ("billingEmail", "a@@b.com", "invalid_email", "'a@@b.com'"),
    ("billingEmail", "jo hn@x.com", "invalid_email", "'jo hn@x.com'"),
    ("email", "Jane@Example.COM", "email_case", "'Jane@Example.COM'"),
    ("billingEmail", "invoices@ACME.io", "email_case", "'invoices@ACME.io'"),
    ("address.country", "United Kingdom", "invalid_country", "GB"),
    ("address.country", "Narnia", "invalid_country", "'Narnia'"),
    ("telephone", "call me", "invalid_telephone", "'call me'"),
    ("telephone", "12345", "invalid_telephone", "'12345'"),
    ("telephone", "020 7946 001", "invalid_telephone", "for GB"),
    ("url", "company.co.uk", "invalid_url", "https://company.co.uk"),
    ("url", "ftp://company.co.uk", "invalid_url", "'ftp://company.co.uk'"),
    ("url", "https://", "invalid_url", "'https://'"),
    ("billingEmail", None, "missing_billing_email", None),
    ("billingEmail", "  ", "missing_billing_email", None),
]


@pytest.mark.parametrize(("column", "bad", "code", "named"), CASES)
def test_each_code_is_found_with_id_column_value_and_message(
    column: str, bad: str | None, code: str, named: str | None
) -> None:
    values = customers().get_column(column).to_list()
    values[1] = bad
    result = check(customers(**{column: values}))
    assert problems(result) == {("c1", column, code)}
    row = result.row(0, named=True)
    assert row["value"] == bad
    assert row["message"]
    if named is not None:
        assert named in row["message"]


def test_invalid_tax_status_names_value_and_probable_status() -> None:
    df = customers(3, taxStatus=["TAXED", "taxed", "VAT"])
    result = check(df)
    assert problems(result) == {
        ("c1", "taxStatus", "invalid_tax_status"),
        ("c2", "taxStatus", "invalid_tax_status"),
    }
    first, second = result.get_column("message").to_list()
    assert "'taxed'" in first and "probably means TAXED" in first
    assert "'VAT'" in second and "TAX_EXEMPT" in second


def test_tax_status_as_enum_and_as_string_both_work() -> None:
    as_enum = customers(3, taxStatus=pl.Series(["TAXED", None, "TAX_EXEMPT"], dtype=TAX_ENUM))
    as_text = customers(3, taxStatus=["TAXED", None, "TAX_EXEMPT"])
    expected = {("c1", "taxStatus", "missing")}
    assert problems(check(as_enum)) == expected
    assert problems(check(as_text)) == expected
    assert check(as_enum).get_column("value").to_list() == [None]


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("United Kingdom", "GB"),
        ("germany", "DE"),
        ("DEU", "DE"),
        ("UK", "GB"),
        ("USA", "US"),
        ("gb", "GB"),
        ("the Netherlands", "NL"),
    ],
)
def test_invalid_country_message_names_the_code_it_probably_means(written: str, code: str) -> None:
    telephone = [None, None, None]  # the country's telephone rules are not the point here
    result = check(customers(**{"address.country": ["GB", written, "GB"], "telephone": telephone}))
    assert problems(result) == {("c1", "address.country", "invalid_country")}
    message = result.item(0, "message")
    assert f"'{written}'" in message
    assert f"probably means {code}" in message


def test_unresolvable_country_says_so() -> None:
    result = check(customers(**{"address.country": ["GB", "XK", "GB"], "telephone": [None] * 3}))
    assert "No country matches" in result.item(0, "message")


# --------------------------------------------------------------------------- conventions


def test_value_with_surrounding_whitespace_is_only_a_whitespace_problem() -> None:
    df = customers(
        3,
        email=[" person0@company0.co.uk", "person1@company1.co.uk", "person2@company2.co.uk"],
        taxStatus=["TAXED ", "TAXED", "TAXED"],
        url=["https://company0.co.uk/ ", None, None],
        telephone=[" 020 7946 0000", "020 7946 0001", "+44 20 7946 0002"],
    )
    df = df.with_columns(pl.col("address.country").replace("GB", " GB").alias("address.country"))
    result = check(df)
    assert set(result.get_column("problem")) == {"whitespace"}
    assert result.height == 5 + 1 + 1  # row 0: 5 columns; rows 1 and 2: the country


def test_whitespace_does_not_hide_a_problem_of_the_stripped_value() -> None:
    df = customers(**{"address.country": ["GB", "  United Kingdom", "GB"], "telephone": [None] * 3})
    assert problems(check(df)) == {
        ("c1", "address.country", "whitespace"),
        ("c1", "address.country", "invalid_country"),
    }


def test_missing_optional_columns_are_tolerated() -> None:
    df = customers().select(
        "id",
        "legalName",
        "email",
        "billingEmail",
        "address.line1",
        "address.town",
        "address.postCode",
        "address.country",
        "taxStatus",
    )
    assert check(df).height == 0


def test_missing_required_column_is_a_problem_on_every_row() -> None:
    df = customers().drop("address.town")
    result = check(df)
    assert problems(result) == {(f"c{i}", "address.town", "missing") for i in range(3)}
    assert result.get_column("value").to_list() == [None] * 3
    assert "no address.town column" in result.item(0, "message")


def test_missing_billing_email_column_is_a_problem_on_every_row() -> None:
    result = check(customers().drop("billingEmail"))
    assert problems(result) == {
        (f"c{i}", "billingEmail", "missing_billing_email") for i in range(3)
    }


def test_frame_without_id_column_still_checks() -> None:
    result = check(customers().drop("id").with_columns(pl.lit("bad").alias("url")))
    assert result.height == 3
    assert result.get_column("id").to_list() == [None] * 3


def test_unknown_and_read_only_columns_are_not_checked() -> None:
    df = customers().with_columns(
        pl.lit(" x ").alias("archivedAt"), pl.lit(" acct ").alias("sequenceAccountId")
    )
    assert check(df).height == 0


# --------------------------------------------------------------------------- duplicates


def test_duplicates_compare_case_insensitively_and_name_the_other_ids() -> None:
    df = customers(
        4,
        legalName=["Acme Ltd", "ACME LTD", "Other plc", " acme ltd"],
        email=["a@x.com", "b@x.com", "A@X.COM", "d@x.com"],
    )
    result = check(df)
    legal = only(result, "duplicate_legal_name")
    assert set(legal.get_column("id")) == {"c0", "c1", "c3"}
    message = legal.filter(pl.col("id") == "c1").item(0, "message")
    assert "c0" in message and "c3" in message and "2 other customers" in message
    assert "'ACME LTD'" in message
    emails = only(result, "duplicate_email")
    assert set(emails.get_column("id")) == {"c0", "c2"}
    assert "c2" in emails.filter(pl.col("id") == "c0").item(0, "message")


def test_duplicate_message_counts_when_too_many_to_name() -> None:
    df = customers(9, legalName=["Same"] * 9)
    message = only(check(df), "duplicate_legal_name").item(0, "message")
    assert "8 other customers" in message and "and 3 more" in message


def test_blank_values_are_not_duplicates() -> None:
    df = customers(3, contactName=[None] * 3, legalName=["A", "", ""])
    assert only(check(df), "duplicate_legal_name").height == 0


def test_duplicates_compare_texts_in_unicode_nfc() -> None:
    nfc = "Zoë Café Ltd"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    df = customers(
        3,
        legalName=[nfc, nfd, "Other Ltd"],
        email=["zoë@cafe.example", unicodedata.normalize("NFD", "zoë@cafe.example"), "o@x.com"],
    )
    result = check(df)
    assert set(only(result, "duplicate_legal_name").get_column("id")) == {"c0", "c1"}
    assert set(only(result, "duplicate_email").get_column("id")) == {"c0", "c1"}


# --------------------------------------------------------------------------- wrong JSON types


def read(bad: dict[str, Any]) -> pl.DataFrame:
    """Three seed customers read from JSON, the middle one updated with ``bad``."""
    rs = [
        dict(SEED_RECORD, id=str(i), legalName=f"Company {i}", email=f"p{i}@example.com")
        for i in range(3)
    ]
    rs[1].update(bad)
    return to_frame(rs)


WRONG_TYPES = [
    ({"billingEmails": "a@example.com"}, "billingEmails", '"a@example.com"', "a list of text"),
    ({"telephone": 2010001000}, "telephone", "2010001000", "text"),
    ({"legalName": ["A", "B"]}, "legalName", '["A","B"]', "text"),
    ({"taxStatus": 1}, "taxStatus", "1", "text"),
    ({"billingEmail": {"to": "a@b.com"}}, "billingEmail", '{"to":"a@b.com"}', "text"),
    ({"address": "1 High St, Leeds"}, "address", '"1 High St, Leeds"', "an object"),
    (
        {"address": {"line1": "1 High St", "town": 5, "postCode": "LS1", "country": "GB"}},
        "address.town",
        "5",
        "text",
    ),
    ({"linkedServices": {"externalId": "x"}}, "linkedServices", '{"externalId":"x"}', "a list"),
]


@pytest.mark.parametrize(("bad", "column", "value", "rule"), WRONG_TYPES)
def test_a_value_of_the_wrong_json_type_is_one_problem_on_its_own_row(
    bad: dict[str, Any], column: str, value: str, rule: str
) -> None:
    assert check(read({})).height == 0
    result = check(read(bad))
    assert problems(result) == {("1", column, "wrong_type")}
    row = result.row(0, named=True)
    assert row["value"] == value
    assert f"{column} holds {value}" in row["message"]
    assert f"Sequence sends {rule}" in row["message"]
    assert f"{column}__raw" in row["message"]


def test_a_wrong_type_in_an_editable_column_says_how_to_fix_it() -> None:
    editable = check(read({"telephone": 2010001000})).item(0, "message")
    assert "write the right value into telephone" in editable
    read_only = check(read({"billingEmails": "a@example.com"})).item(0, "message")
    assert "read-only" in read_only and "correct it in Sequence" in read_only


# --------------------------------------------------------------------------- telephones


@pytest.mark.parametrize(
    ("telephone", "country", "valid"),
    [
        ("020 7946 0018", "GB", True),
        ("020 7946 0018", "United Kingdom", True),  # read in the country it names
        ("020 7946 0018", "US", False),
        ("020 7946 0018", None, False),
        ("+44 20 7946 0018", None, True),
        ("+442079460018", "US", True),
        ("(212) 555-0100", "US", True),
        ("212 555 0100", "GB", False),
        ("0044 20 7946 0018", "GB", True),  # via phonenumbers itself
        ("+44 20 7946 001", "GB", False),
    ],
)
def test_telephone_is_read_in_the_rows_country(
    telephone: str, country: str | None, valid: bool
) -> None:
    df = customers(1, telephone=[telephone], **{"address.country": [country]})
    codes = set(check(df).get_column("problem"))
    assert ("invalid_telephone" not in codes) is valid


# --------------------------------------------------------------------------- email fast path

_LOCAL = st.from_regex(r"[A-Za-z0-9_%+\-]{1,8}(\.[A-Za-z0-9_%+\-]{1,8}){0,2}", fullmatch=True)
_LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9\-]{0,6}[A-Za-z0-9])?", fullmatch=True)
_TLD = st.from_regex(r"[A-Za-z]{1,6}", fullmatch=True)


def _validator_says(value: str) -> str | None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


_EMAIL = st.tuples(
    _LOCAL,
    st.lists(_LABEL, min_size=0, max_size=3),
    _TLD,
    st.sampled_from(["full", "no_domain", "one_label", "no_at"]),
).map(
    lambda t: {
        "full": f"{t[0]}@{'.'.join([*t[1], t[2]])}",
        "no_domain": f"{t[0]}@",
        "one_label": f"{t[0]}@{t[1][0] if t[1] else t[2]}",
        "no_at": f"{t[0]}.{t[2]}",
    }[t[3]]
)


@pytest.mark.parametrize(
    "value",
    [
        "person@company.co.uk",
        "not-an-email",
        "person@",
        "person@localhost",
        "a..b@company.com",
        "zoë@exämple.com",
        "user@[127.0.0.1]",
        "x" * 65 + "@company.com",
        "person@company.test",
    ],
)
def test_check_flags_exactly_the_emails_a_write_refuses(value: str) -> None:
    """check and write validation take one verdict, so a clean check means a sendable email."""
    flagged = "invalid_email" in set(check(customers(1, email=[value])).get_column("problem"))
    try:
        validate_update_body(dict(update_body_of(SEED_RECORD), email=value))
    except InvalidBodyError as error:
        refused = [message for column, message in error.problems if column == "email"]
    else:
        refused = []
    assert flagged == bool(refused), refused


@settings(max_examples=25, deadline=None)
@given(values=st.lists(_EMAIL, min_size=1, max_size=60))
def test_email_verdicts_without_email_validator_match_it(values: list[str]) -> None:
    """The values check decides with regexes get email_validator's own verdict."""
    df = customers(len(values), email=values, legalName=[f"N{i}" for i in range(len(values))])
    found = only(check(df), "invalid_email")
    messages = dict(zip(found.get_column("value"), found.get_column("message"), strict=True))
    for value in values:
        expected = _validator_says(value)
        if expected is None:
            assert value not in messages, value
        else:
            assert expected in messages[value], value


# --------------------------------------------------------------------------- sandbox data


def test_check_finds_exactly_the_planted_problems_of_the_sandbox_data() -> None:
    records, planted = generate_customers(3000, seed=7)
    df = to_frame(records)
    result = check(df)
    assert problems(result) == {(p.id, p.column, p.problem) for p in planted}
    assert result.height == len(planted)


def test_check_finds_one_problem_in_each_spoiled_row_of_100k() -> None:
    """At scale the vectorized paths agree with the per-value ones (its speed is
    measured by benchmarks/frames.py, not here)."""
    n = 100_000
    result = check(_big_frame(n))
    found = set(result.select("id", "column", "problem", "value").iter_rows())
    assert found == {(f"id-{i}", *_SPOILED[(i // 10) % 6](i)) for i in range(0, n, 10)}
    assert result.height == n // 10


# What _big_frame writes into row i of each kind of spoiled row: column, problem, value.
_SPOILED: tuple[Callable[[int], tuple[str, str, str | None]], ...] = (
    lambda i: ("legalName", "whitespace", f"Company {i} Ltd "),
    lambda i: ("email", "invalid_email", f"person{i}.company{i}.co.uk"),
    lambda i: ("address.country", "invalid_country", "United Kingdom"),
    lambda i: ("telephone", "invalid_telephone", "tbc"),
    lambda i: ("billingEmail", "missing_billing_email", None),
    lambda i: ("url", "invalid_url", "company.co.uk"),
)


def _big_frame(n: int) -> pl.DataFrame:
    """n customers, about one row in ten with a problem."""
    i = pl.int_range(n, eager=True)
    s = i.cast(pl.String)
    bad = (i % 10) == 0
    kind = (i // 10) % 6
    frame = pl.DataFrame(
        {
            "id": "id-" + s,
            "legalName": "Company " + s + " Ltd",
            "email": "person" + s + "@company" + s + ".co.uk",
            "billingEmail": "invoices@company" + s + ".co.uk",
            "address.line1": s + " High Street",
            "address.town": pl.Series(["London"] * n),
            "address.postCode": pl.Series(["EC1A 1BB"] * n),
            "address.country": pl.Series(["GB", "US", "DE", "FR"] * (n // 4)),
            "taxStatus": pl.Series(["TAXED"] * n, dtype=TAX_ENUM),
            "telephone": ("+4420" + (i + 70_000_000).cast(pl.String)),
            "url": "https://company" + s + ".co.uk/",
        }
    )

    def spoil(column: str, which: int, value: pl.Expr) -> pl.Expr:
        return pl.when(bad & (kind == which)).then(value).otherwise(pl.col(column)).alias(column)

    return frame.with_columns(
        spoil("legalName", 0, pl.col("legalName") + " "),
        spoil("email", 1, pl.col("email").str.replace("@", ".")),
        spoil("address.country", 2, pl.lit("United Kingdom")),
        spoil("telephone", 3, pl.lit("tbc")),
        spoil("billingEmail", 4, pl.lit(None, dtype=pl.String)),
        spoil("url", 5, pl.lit("company.co.uk")),
    )


# -- API version 2024-07-30 ---------------------------------------------------------------------


def _frame_2024(records: list[dict[str, Any]]) -> pl.DataFrame:
    return to_frame(records, api_version="2024-07-30")


def test_valid_2024_records_have_no_problems() -> None:
    frame = _frame_2024(v2024.customers(60))
    assert check(frame, api_version="2024-07-30").is_empty()
    # The seed's checks would report every row (no email): the bug the version fixes.
    assert not check(frame, api_version="seed").filter(pl.col("column") == "email").is_empty()


def test_a_us_or_canadian_address_without_a_state_is_missing_state() -> None:
    us = v2024.listed(
        address={"line1": "1 Main St", "town": "Austin", "postcode": "73301", "country": "US"}
    )
    gb = v2024.listed(
        id="gb",
        legalName="GB Ltd",
        address={"line1": "1 High St", "town": "London", "postcode": "N1 9GU", "country": "GB"},
    )
    found = check(_frame_2024([us, gb]), api_version="2024-07-30")
    assert found.select("id", "column", "problem").rows() == [
        (us["id"], "address.state", "missing_state")
    ]
    assert "US" in found["message"][0] and "address.state" in found["message"][0]


def test_an_unknown_state_code_is_invalid_state_with_the_code_it_probably_means() -> None:
    records = [
        v2024.listed(id="a", legalName="A", address={**v2024.CUSTOMER["address"], "state": "ny"}),
        v2024.listed(
            id="b", legalName="B", address={**v2024.CUSTOMER["address"], "state": "Texas"}
        ),
    ]
    found = check(_frame_2024(records), api_version="2024-07-30")
    assert found.select("id", "problem").rows() == [("a", "invalid_state"), ("b", "invalid_state")]
    assert "probably means NY" in found["message"][0]
    assert "by hand" in found["message"][1]


def test_a_status_outside_draft_and_active_is_invalid_status() -> None:
    found = check(_frame_2024([v2024.listed(status="PAUSED")]), api_version="2024-07-30")
    assert found.select("column", "problem", "value").rows() == [
        ("status", "invalid_status", "PAUSED")
    ]


def test_an_empty_custom_property_is_reported_and_only_spaces_is_whitespace() -> None:
    record = v2024.listed(customProperties={"region": "", "tier": "  ", "owner": "Ann"})
    found = check(_frame_2024([record]), api_version="2024-07-30")
    assert found.select("column", "problem").rows() == [
        ("customProperties.region", "empty_property"),
        ("customProperties.tier", "whitespace"),
    ]


# -- contacts (2024-07-30) -------------------------------------------------------------------------


def _contacts(*rows: tuple[str, str | None, str | None, str | None, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"customerId": c, "id": i, "name": n, "email": e, "billingPreference": p}
            for c, i, n, e, p in [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        ],
        schema={
            name: pl.String for name in ("customerId", "id", "name", "email", "billingPreference")
        },
    )


def test_valid_contacts_have_no_problems() -> None:
    frame = _contacts(
        ("a", "1", "Ann", "ann@example.com", "PRIMARY"),
        ("a", "2", "Bob", "bob@example.com", "STANDARD"),
        ("b", "3", "Cy", "cy@example.com", "NONE"),
    )
    assert check_contacts(frame).is_empty()


def test_contact_problems_are_named_by_customer_contact_and_rule() -> None:
    frame = _contacts(
        ("a", "1", "Ann", "ann@example.com", "STANDARD"),
        ("a", "2", " Bob", "ANN@example.com", "NONE"),
        ("b", None, "", "not-an-email", "PRIMARY"),
        ("c", "4", "Di", "di@Example.COM", "SOMETIMES"),
    )
    found = check_contacts(frame)
    assert found.select("id", "column", "problem").rows() == [
        ("a", "billingPreference", "no_primary"),
        ("a", "name", "whitespace"),
        ("a", "email", "duplicate_contact_email"),
        ("b", "name", "missing"),
        ("b", "email", "invalid_email"),
        ("c", "email", "email_case"),
        ("c", "billingPreference", "invalid_billing_preference"),
    ]
    messages = found["message"].to_list()
    assert "none is PRIMARY" in messages[0] and "contact 2" in messages[2]
    assert "a new contact" in messages[3]


def test_archived_contacts_are_not_checked() -> None:
    frame = _contacts(("a", "1", "Ann", "bad", "PRIMARY")).with_columns(
        archivedAt=pl.lit("2023-06-28T16:47:00Z")
    )
    assert check_contacts(frame).is_empty()
