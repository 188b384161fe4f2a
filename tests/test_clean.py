"""sequence_nb.clean: each fix, suggest's guarantees, and the telephone fast path."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from sequence_nb import clean, fields
from sequence_nb.clean import suggest
from sequence_nb.frames import to_frame
from sequence_nb.quality import check
from sequence_nb.sandbox.data import generate_customers
from tests import v2024
from tests.test_quality import TAX_ENUM, customers

READ_ONLY = list(fields.SEED.read_only_columns)


def column(df: pl.DataFrame, expr: pl.Expr | list[pl.Expr], name: str) -> list[object]:
    return df.with_columns(expr).get_column(name).to_list()


# --------------------------------------------------------------------------- whitespace


def test_strip_whitespace_default_strips_every_editable_string_column() -> None:
    df = customers(
        2,
        legalName=[" A ", "B"],
        contactName=["C  ", None],
        taxStatus=pl.Series(["TAXED", None], dtype=TAX_ENUM),
        archivedAt=[" keep ", None],
        sequenceAccountId=[" acct ", "acct"],
    )
    out = df.with_columns(clean.strip_whitespace())
    assert out.get_column("legalName").to_list() == ["A", "B"]
    assert out.get_column("contactName").to_list() == ["C", None]
    assert out.get_column("archivedAt").to_list() == [" keep ", None]  # unknown column
    assert out.get_column("sequenceAccountId").to_list() == [" acct ", "acct"]  # read-only
    assert out.schema == df.schema


def test_strip_whitespace_named_columns_only() -> None:
    df = customers(1, legalName=[" A "], contactName=[" C "])
    out = df.with_columns(clean.strip_whitespace("legalName"))
    assert out.row(0, named=True)["legalName"] == "A"
    assert out.row(0, named=True)["contactName"] == " C "


def test_strip_whitespace_works_on_a_frame_missing_columns() -> None:
    df = pl.DataFrame({"id": ["x"], "legalName": [" A"]})
    assert df.with_columns(clean.strip_whitespace()).item(0, "legalName") == "A"


@pytest.mark.parametrize("name", READ_ONLY)
def test_fixes_refuse_read_only_columns(name: str) -> None:
    with pytest.raises(ValueError, match="read-only"):
        clean.strip_whitespace(name)
    with pytest.raises(ValueError, match="read-only"):
        clean.lowercase_email_domain(name)
    with pytest.raises(ValueError, match="read-only"):
        clean.normalize_unicode(name)


def test_blank_to_null() -> None:
    df = customers(3, contactName=["  ", "", "Jo"])
    assert column(df, clean.blank_to_null(), "contactName") == [None, None, "Jo"]
    assert column(df, clean.blank_to_null("contactName"), "contactName") == [None, None, "Jo"]


# --------------------------------------------------------------------------- unicode


def nfd(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def test_normalize_unicode_writes_every_editable_string_column_in_nfc() -> None:
    df = customers(
        2,
        legalName=[nfd("Zoë Café Ltd"), "Plain Ltd"],
        contactName=[nfd("Zoë"), None],
        archivedAt=[nfd("Zoë"), None],
        sequenceAccountId=[nfd("Zoë"), "acct"],
    )
    out = df.with_columns(clean.normalize_unicode())
    assert out.get_column("legalName").to_list() == ["Zoë Café Ltd", "Plain Ltd"]
    assert out.get_column("contactName").to_list() == [nfc("Zoë"), None]
    assert out.get_column("archivedAt").to_list() == [nfd("Zoë"), None]  # unknown column
    assert out.get_column("sequenceAccountId").to_list() == [nfd("Zoë"), "acct"]  # read-only
    assert out.schema == df.schema


def test_normalize_unicode_named_columns_only() -> None:
    df = customers(1, legalName=[nfd("Zoë")], contactName=[nfd("Zoë")])
    out = df.with_columns(clean.normalize_unicode("legalName")).row(0, named=True)
    assert (out["legalName"], out["contactName"]) == (nfc("Zoë"), nfd("Zoë"))


def test_text_clean_ups_write_nfc() -> None:
    df = customers(1, legalName=[f" {nfd('Zoë Café Ltd')} "], email=[nfd("Zoë@CAFÉ.example")])
    assert column(df, clean.strip_whitespace(), "legalName") == [nfc("Zoë Café Ltd")]
    assert column(df, clean.strip_whitespace("legalName"), "legalName") == [nfc("Zoë Café Ltd")]
    assert column(df, clean.lowercase_email_domain(), "email") == [nfc("Zoë@café.example")]


def test_suggest_writes_every_editable_text_in_nfc() -> None:
    df = customers(
        1,
        legalName=[nfd("Zoë Café Ltd")],
        contactName=[nfd(" Zoë ")],
        label=[nfd("Café")],
        email=[nfd("zoë@café.example")],
        **{"address.town": [nfd("Zürich")]},
    )
    out = clean.suggest(df).row(0, named=True)
    assert out["legalName"] == nfc("Zoë Café Ltd")
    assert out["contactName"] == nfc("Zoë")
    assert out["label"] == nfc("Café")
    assert out["email"] == nfc("zoë@café.example")
    assert out["address.town"] == nfc("Zürich")


# --------------------------------------------------------------------------- emails


def test_lowercase_email_domain_lowers_only_the_domain() -> None:
    df = customers(5, email=["Jane.Doe@Example.CO.UK", "a@b.com", "no-at-sign", None, "x@@Odd.COM"])
    assert column(df, clean.lowercase_email_domain(), "email") == [
        "Jane.Doe@example.co.uk",
        "a@b.com",
        "no-at-sign",
        None,
        "x@@odd.com",
    ]


def test_lowercase_email_domain_other_column() -> None:
    df = customers(1, billingEmail=["Invoices@ACME.io"])
    assert column(df, clean.lowercase_email_domain("billingEmail"), "billingEmail") == [
        "Invoices@acme.io"
    ]


# --------------------------------------------------------------------------- countries


def test_country_to_alpha2_resolves_names_codes_and_aliases() -> None:
    written = ["GB", "United Kingdom", "germany", "DEU", "UK", "USA", " fr ", "Narnia", None, ""]
    df = customers(len(written), **{"address.country": written})
    assert column(df, clean.country_to_alpha2(), "address.country") == [
        "GB",
        "GB",
        "DE",
        "DE",
        "GB",
        "US",
        "FR",
        "Narnia",  # unresolvable: unchanged
        None,  # null stays null
        "",
    ]


def test_country_to_alpha2_works_lazily_and_on_a_filtered_frame() -> None:
    df = customers(3, **{"address.country": ["Germany", "GB", "France"]})
    out = (
        df.lazy()
        .filter(pl.col("id") != "c1")
        .with_columns(clean.country_to_alpha2())
        .collect()
        .get_column("address.country")
    )
    assert out.to_list() == ["DE", "FR"]


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("Great Britain", "GB"),
        ("U.S.A.", "US"),
        ("St. Lucia", "LC"),
        ("Cote d'Ivoire", "CI"),
        ("the Netherlands", "NL"),
        ("826", "GB"),
        ("Deutschland", "DE"),
        ("XK", None),
        ("Korea", None),  # ambiguous: not guessed
    ],
)
def test_resolve_country(written: str, code: str | None) -> None:
    assert clean.resolve_country(written) == code


# --------------------------------------------------------------------------- tax status


def test_normalize_tax_status_spelling() -> None:
    df = customers(5, taxStatus=["taxed", "Tax exempt", "reverse-charged", "VAT", None])
    assert column(df, clean.normalize_tax_status(), "taxStatus") == [
        "TAXED",
        "TAX_EXEMPT",
        "REVERSE_CHARGED",
        "VAT",
        None,
    ]


# --------------------------------------------------------------------------- telephones


def test_telephone_to_e164_reads_numbers_in_the_rows_country() -> None:
    df = customers(
        6,
        telephone=["020 7946 0018", "(201) 555-0123", "+49 30 123456", "tbc", None, "12345"],
        **{"address.country": ["GB", "US", None, "GB", "GB", "United Kingdom"]},
    )
    assert column(df, clean.telephone_to_e164(), "telephone") == [
        "+442079460018",
        "+12015550123",
        "+4930123456",
        "tbc",  # does not parse: unchanged
        None,
        "12345",
    ]


def test_telephone_to_e164_uses_a_country_name_and_can_go_without_country() -> None:
    df = customers(2, telephone=["020 7946 0018", "+44 20 7946 0018"])
    df = df.with_columns(pl.Series("address.country", ["United Kingdom", None]))
    assert column(df, clean.telephone_to_e164(), "telephone") == ["+442079460018"] * 2
    assert column(df, clean.telephone_to_e164(country=None), "telephone") == [
        "020 7946 0018",
        "+442079460018",
    ]


def _numbers(seed: int) -> tuple[list[str], list[str | None]]:
    """Example numbers of every region and type, in every format, with typos, read in
    the right, a wrong or no region."""
    rng = random.Random(seed)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    formats = list(phonenumbers.PhoneNumberFormat.__dict__.values())
    formats = [f for f in formats if isinstance(f, int)]
    types = [v for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper()]
    tels: list[str] = []
    where: list[str | None] = []

    def typo(text: str) -> str:
        chars = list(text)
        digits = [i for i, c in enumerate(chars) if c.isdigit()]
        if digits and rng.random() < 0.6:
            i = rng.choice(digits)
            action = rng.random()
            if action < 0.4:
                chars[i] = str(rng.randrange(10))
            elif action < 0.7:
                del chars[i]
            else:
                chars.insert(i, str(rng.randrange(10)))
        return "".join(chars)

    for region in regions:
        for kind in types:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            for fmt in formats:
                text = typo(phonenumbers.format_number(example, fmt))
                tels.append(rng.choice((text, text.replace(" ", "-"), "0" + text.lstrip("+"))))
                where.append(rng.choice([region, region, rng.choice(regions), None]))
    for _ in range(3000):
        digits = "".join(str(rng.randrange(10)) for _ in range(rng.randint(3, 15)))
        tels.append(rng.choice(["", "+", "0", "00", "+1 ", "(0)"]) + digits)
        where.append(rng.choice([*regions[:40], None]))
    return tels, where


def _phonenumbers_says(number: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def test_telephones_to_e164_gives_phonenumbers_verdict_on_many_numbers() -> None:
    """The vectorized reading of phonenumbers' metadata agrees with phonenumbers."""
    tels, where = _numbers(seed=11)
    got = clean.telephones_to_e164(
        pl.Series(tels, dtype=pl.String), pl.Series(where, dtype=pl.String)
    ).to_list()
    expected = [
        _phonenumbers_says(t.strip(), r) if t.strip() else None
        for t, r in zip(tels, where, strict=True)
    ]
    wrong = [(t, r, g, e) for t, r, g, e in zip(tels, where, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:10]
    assert sum(e is not None for e in expected) > 1500  # many valid numbers were compared


def test_every_region_with_fast_rules_compiles() -> None:
    usable = [r for r in phonenumbers.SUPPORTED_REGIONS if clean._phone_rules(r) is not None]
    assert len(usable) > 200


def test_no_module_of_the_package_reads_a_private_regex_parser() -> None:
    """The fast path reads phonenumbers' exported metadata, never ``re._parser``."""
    package = Path(clean.__file__).parent
    private = ("re._parser", "re._compiler", "sre_parse", "sre_compile")
    readers = [
        (str(path.relative_to(package)), name)
        for path in sorted(package.rglob("*.py"))
        for name in private
        if name in path.read_text(encoding="utf-8")
    ]
    assert not readers


# --------------------------------------------------------------------------- suggest


def messy() -> pl.DataFrame:
    return customers(
        6,
        legalName=[" Acme Ltd", "Beta plc  ", "Gamma", None, "Delta", "Acme Ltd"],
        email=["a@Acme.COM", " b@beta.com", "not-an-email", "d@d.com", "e@E.com", "f@f.com"],
        billingEmail=["x@ACME.com", None, "", "y@d.com", "bad@", "z@f.com"],
        **{
            "address.country": ["United Kingdom", " gb", "Narnia", "DEU", "us", None],
            "address.town": ["London", "Leeds ", "", "Berlin", "NYC", "Paris"],
        },
        telephone=["020 7946 0018", " 0113 496 0000", "tbc", "030 123456", "2015550123", "1"],
        taxStatus=["taxed", "TAXED", "VAT", None, "tax exempt", "REVERSE_CHARGED"],
        url=["https://acme.com", " https://beta.com ", "beta.com", None, "x", None],
    ).with_columns(pl.Series("extra", [" keep ", None, "1", "2", "3", "4"]))


def test_suggest_keeps_rows_columns_dtypes_and_untouched_columns() -> None:
    df = messy()
    for frame in (df, customers()):
        out = clean.suggest(frame)
        assert out.shape == frame.shape
        assert out.schema == frame.schema
        untouched = [*READ_ONLY, "extra", "archivedAt"]
        names = [c for c in untouched if c in frame.columns]
        assert_frame_equal(out.select(names), frame.select(names))


def test_suggest_applies_the_safe_fixes() -> None:
    out = clean.suggest(messy())
    assert out.get_column("legalName").to_list() == [
        "Acme Ltd",
        "Beta plc",
        "Gamma",
        None,
        "Delta",
        "Acme Ltd",
    ]
    assert out.get_column("email").to_list() == [
        "a@acme.com",
        "b@beta.com",
        "not-an-email",
        "d@d.com",
        "e@e.com",
        "f@f.com",
    ]
    assert out.get_column("address.country").to_list() == ["GB", "GB", "Narnia", "DE", "US", None]
    assert out.get_column("telephone").to_list() == [
        "+442079460018",
        "+441134960000",
        "tbc",
        "+4930123456",
        "+12015550123",
        "1",
    ]
    assert out.get_column("taxStatus").to_list() == [
        "TAXED",
        "TAXED",
        "VAT",
        None,
        "TAX_EXEMPT",
        "REVERSE_CHARGED",
    ]


def test_suggest_never_turns_a_null_into_a_value() -> None:
    df = messy()
    out = clean.suggest(df)
    for name in df.columns:
        before = df.get_column(name).is_null()
        after = out.get_column(name).is_null()
        assert_series_equal(before, after, check_names=False)


def test_suggest_leaves_an_enum_tax_status_alone() -> None:
    df = customers(2, taxStatus=pl.Series(["TAXED", None], dtype=TAX_ENUM))
    out = clean.suggest(df)
    assert out.schema["taxStatus"] == TAX_ENUM
    assert_series_equal(out.get_column("taxStatus"), df.get_column("taxStatus"))


def test_check_after_suggest_leaves_only_what_cannot_be_fixed_automatically() -> None:
    df = messy()
    before = set(check(df).select("id", "column", "problem").iter_rows())
    after = set(check(clean.suggest(df)).select("id", "column", "problem").iter_rows())
    fixable = {"whitespace", "email_case"}
    assert {p for p in before if p[2] in fixable}
    assert not {p for p in after if p[2] in fixable}
    assert after == {
        ("c1", "billingEmail", "missing_billing_email"),
        ("c2", "email", "invalid_email"),
        ("c2", "billingEmail", "missing_billing_email"),
        ("c2", "address.town", "missing"),
        ("c2", "address.country", "invalid_country"),  # Narnia: no country matches
        ("c2", "taxStatus", "invalid_tax_status"),  # VAT: no status matches
        ("c2", "telephone", "invalid_telephone"),
        ("c2", "url", "invalid_url"),
        ("c3", "legalName", "missing"),
        ("c3", "taxStatus", "missing"),
        ("c4", "billingEmail", "invalid_email"),
        ("c4", "url", "invalid_url"),
        ("c5", "address.country", "missing"),
        ("c5", "telephone", "invalid_telephone"),
        ("c0", "legalName", "duplicate_legal_name"),
        ("c5", "legalName", "duplicate_legal_name"),
    }


def test_suggest_then_check_on_sandbox_data_leaves_only_unfixable_codes() -> None:
    records, planted = generate_customers(2000, seed=5)
    df = to_frame(records)
    out = clean.suggest(df)
    assert out.schema == df.schema and out.height == df.height
    left = set(check(out).get_column("problem"))
    assert left <= {
        "invalid_email",
        "missing_billing_email",
        "duplicate_legal_name",
        "invalid_telephone",
    }
    planted_fixable = {p for p in planted if p.problem in {"whitespace", "email_case"}}
    assert planted_fixable  # the data did plant fixable problems


# -- API version 2024-07-30 ---------------------------------------------------------------------


def test_suggest_on_a_2024_frame_fixes_states_countries_and_property_spaces() -> None:
    record = v2024.listed(
        address={
            "line1": " 1 Main St",
            "town": "Austin",
            "state": "tx ",
            "postcode": "73301",
            "country": "United States",
        },
        customProperties={"region": " EU ", "tier": "gold"},
    )
    frame = to_frame([record], api_version="2024-07-30")
    fixed = suggest(frame, api_version="2024-07-30")
    assert fixed.schema == frame.schema
    row = fixed.row(0, named=True)
    assert (row["address.line1"], row["address.state"], row["address.country"]) == (
        "1 Main St",
        "TX",
        "US",
    )
    assert (row["customProperties.region"], row["customProperties.tier"]) == ("EU", "gold")
    assert check(fixed, api_version="2024-07-30").is_empty()


def test_blank_to_null_clears_an_empty_custom_property_of_a_2024_frame() -> None:
    frame = to_frame(
        [v2024.listed(customProperties={"region": "", "tier": "gold"})], api_version="2024-07-30"
    )
    cleared = frame.with_columns(clean.blank_to_null(api_version="2024-07-30"))
    assert cleared["customProperties.region"].to_list() == [None]
    assert cleared["customProperties.tier"].to_list() == ["gold"]


def test_normalize_state_capitalizes_only_codes_sequence_allows() -> None:
    frame = pl.DataFrame({"address.state": ["ny", " on", "Texas", None, "zz"]})
    assert frame.select(clean.normalize_state())["address.state"].to_list() == [
        "NY",
        "ON",
        "Texas",
        None,
        "zz",
    ]
