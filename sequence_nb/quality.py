"""Find what is wrong in a customers frame: ``check(df, api_version=None)``.

``check`` returns one row per problem found, with the customer ``id``, the ``column``,
a short ``problem`` code (see ``PROBLEMS``), a ``message`` in plain words and the
offending ``value``. It is vectorized polars; the checks that need a Python library
(email syntax, country names, telephone numbers) run once per distinct value, and only
on the values a vectorized test cannot already decide.

Conventions:

* A value is judged with its surrounding whitespace removed: ``" a@b.com"`` is a
  ``whitespace`` problem, not also an ``invalid_email`` one.
* A value that is empty or only whitespace counts as missing: ``missing`` in a required
  column, ``missing_billing_email`` for ``billingEmail``, ``whitespace`` (it should be
  cleared) in the other optional columns.
* An absent optional column is all-null; an absent required column is ``missing`` on
  every row.
* A telephone written without ``+<country code>`` is read in the row's country (the
  ``address.country`` value, resolved to an alpha-2 code when it names one country).
* A value read with the wrong JSON type (kept in a ``<field>__raw`` column by
  :mod:`sequence_nb.frames`) is one ``wrong_type`` problem on its row, named by its
  field; the empty cell it leaves is not also ``missing``.
* Texts are compared in Unicode NFC: the same name written composed or decomposed
  is a duplicate.
* The columns checked are those of the frame's API version
  (:class:`~sequence_nb.fields.ApiVersion`): the seed's emails and telephone, or
  2024-07-30's state, status and custom properties (``customProperties.<key>``);
  a check whose column the version lacks is not run.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any, Final

import polars as pl

from sequence_nb import clean, fields, frames
from sequence_nb.fields import ApiVersion
from sequence_nb.models import email_problem

__all__ = ["CONTACT_PROBLEMS", "PROBLEMS", "RESULT_SCHEMA", "check", "check_contacts"]

#: Problem code → what it means, in the order problems of one cell are listed.
PROBLEMS: Final[dict[str, str]] = {
    "missing": "A field Sequence requires is empty.",
    "wrong_type": (
        "A field holds a value of another JSON type than Sequence sends there (text where "
        "a list belongs, a number where text belongs...); the frame keeps it as read in "
        "the field's __raw column."
    ),
    "whitespace": "A value starts or ends with spaces (or is only spaces).",
    "invalid_email": "An email address is not valid.",
    "email_case": "An email address has capital letters after the @.",
    "invalid_country": "The country is not a two-letter ISO 3166-1 code such as GB.",
    "invalid_tax_status": "The tax status is not TAXED, TAX_EXEMPT or REVERSE_CHARGED.",
    "invalid_status": "The status is not DRAFT or ACTIVE (2024-07-30).",
    "missing_state": "A US or Canadian address has no state or province (2024-07-30).",
    "invalid_state": "The state is not one of the codes Sequence allows, such as NY or ON.",
    "empty_property": "A custom property holds an empty text (2024-07-30).",
    "invalid_telephone": "The telephone number is not a valid number.",
    "invalid_url": "The website is not a full http(s) address.",
    "missing_billing_email": "There is no billing email to send invoices to.",
    "duplicate_legal_name": "Another customer has the same legal name.",
    "duplicate_email": "Another customer has the same email address.",
}

#: Columns and dtypes of ``check``'s result.
RESULT_SCHEMA: Final = pl.Schema(
    {
        "id": pl.String,
        "column": pl.String,
        "problem": pl.String,
        "message": pl.String,
        "value": pl.String,
    }
)


_ROW: Final = "__row"
_STATUSES: Final = ", ".join(fields.TAX_STATUSES)
_MAX_IDS_NAMED: Final = 5

# An address this matches is valid for email_validator (check_deliverability=False):
# dot-atom local part, LDH labels, a letter TLD, short enough for every length limit,
# no "--" (IDNA R-LDH labels) and no special-use domain; the other values are asked.
_EMAIL_LOCAL: Final = r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
_EMAIL_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_EMAIL_SURE: Final = rf"^{_EMAIL_LOCAL}@(?:{_EMAIL_LABEL}\.)+[A-Za-z]{{2,}}$"
_EMAIL_SPECIAL_USE: Final = r"(?i)\.(?:arpa|invalid|local|localhost|onion|test)$"
_EMAIL_SURE_MAX_LENGTH: Final = 64
# email_validator's verdict on any value without "@", "<" or a look-alike of "@".
_EMAIL_NO_AT: Final = "An email address must have an @-sign."
_EMAIL_AT_LOOKALIKES: Final = "[@<\uff20\ufe6b]"
# Its verdict on short values (at most _EMAIL_SURE_MAX_LENGTH, no "--") of these shapes.
_EMAIL_INVALID_SHAPES: Final = (
    (rf"^{_EMAIL_LOCAL}@$", "There must be something after the @-sign."),
    (
        rf"^{_EMAIL_LOCAL}@{_EMAIL_LABEL}$",
        "The part after the @-sign is not valid. It should have a period.",
    ),
)

_HOST_LABEL: Final = r"[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?"
_HOST: Final = (
    rf"(?:(?:{_HOST_LABEL}\.)*{_HOST_LABEL}\.?|\d{{1,3}}(?:\.\d{{1,3}}){{3}}|\[[0-9A-Fa-f:.]+\])"
)
_URL_OK: Final = rf"(?i)^https?://(?:[^\s/?#@]+@)?{_HOST}(?::\d{{1,5}})?(?:[/?#]\S*)?$"
_URL_NO_SCHEME: Final = rf"^(?:www\.)?{_HOST_LABEL}(?:\.{_HOST_LABEL})+(?:[/?#]\S*)?$"


def check(df: pl.DataFrame, *, api_version: str | ApiVersion | None = None) -> pl.DataFrame:
    """One row per problem in ``df``: ``id``, ``column``, ``problem``, ``message``,
    ``value`` (all String; ``value`` is null when the value is missing).

    ``api_version`` names the version the frame follows (None:
    ``$SEQUENCE_API_VERSION``, else the seed's). Rows come in the frame's row order,
    then column order. An empty frame with ``RESULT_SCHEMA`` means nothing is
    wrong. ``PROBLEMS`` lists the codes.
    """
    version = fields.api_version(api_version)
    raws = frames.raw_columns(df)
    editable = _editable_columns(df, version)
    work = _working_frame(df, raws, editable)
    absent = {c for c in editable if c not in df.columns}
    lazy = work.lazy()
    parts: list[pl.LazyFrame] = []
    parts += _missing(lazy, absent, raws, version.required_columns)
    parts += _wrong_types(lazy, raws, version)
    parts += _whitespace(lazy, editable, {*version.required_columns, *_billing(version)})
    parts += _emails(work, version.email_columns)
    parts += _countries_and_telephones(work, raws, version)
    parts += _states(lazy, version)
    parts += _tax_status(lazy, version.tax_status_column)
    parts += _other_enums(lazy, version)
    parts += _urls(lazy, version.url_columns)
    parts += _empty_properties(lazy, editable, version)
    for billing in _billing(version):
        parts += _billing_email(lazy, absent, raws, billing, version.email_columns[0])
    parts += _duplicates(lazy, version.legal_name_column, "duplicate_legal_name", "legal name")
    for email in version.email_columns[:1]:
        parts += _duplicates(lazy, email, "duplicate_email", "email address")

    columns = list(df.columns)
    order = {c: i for i, c in enumerate(columns)}
    for c in (fields.ID, *editable, *raws.values()):
        order.setdefault(c, len(order))
    found = pl.concat(parts, how="vertical").collect()
    if not found.height:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    return (
        found.with_columns(
            __col=pl.col("column").replace_strict(order, return_dtype=pl.UInt32),
            __problem=pl.col("problem").replace_strict(
                {p: i for i, p in enumerate(PROBLEMS)}, return_dtype=pl.UInt32
            ),
        )
        .sort(_ROW, "__col", "__problem", maintain_order=True)
        .select(list(RESULT_SCHEMA))
        .cast(RESULT_SCHEMA)
    )


# --------------------------------------------------------------------------- helpers


def _s(column: str) -> str:
    """Name of the stripped copy of a column in the working frame."""
    return f"__s:{column}"


def _editable_columns(df: pl.DataFrame, version: ApiVersion) -> tuple[str, ...]:
    """The version's editable columns, then the frame's keyed ones (``customProperties.*``)."""
    keyed = (c for c in df.columns if version.keyed_column(c) is not None)
    return (*version.editable_columns, *keyed)


def _billing(version: ApiVersion) -> tuple[str, ...]:
    """The billing email column, when the version keeps one on the record (the seed)."""
    return tuple(c for c in version.email_columns if c == "billingEmail")


def _working_frame(
    df: pl.DataFrame, raws: dict[str, str], editable: tuple[str, ...]
) -> pl.DataFrame:
    """Row number, id and every editable column as String (null when absent), plus a
    whitespace-stripped copy of each, and the frame's raw columns."""
    schema = df.schema

    def as_text(column: str) -> pl.Expr:
        dtype = schema.get(column)
        if dtype is None or dtype.is_nested():
            return pl.lit(None, dtype=pl.String).alias(column)
        return pl.col(column).cast(pl.String)

    base = df.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW),
        as_text(fields.ID).alias(fields.ID),
        *(as_text(c) for c in editable),
        *(pl.col(name) for name in raws),
    )
    return base.with_columns(pl.col(c).str.strip_chars().alias(_s(c)) for c in editable)


def _q(value: pl.Expr) -> pl.Expr:
    """A value in quotes, so that spaces at its ends show."""
    return pl.concat_str([pl.lit("'"), value, pl.lit("'")])


def _problems(
    frame: pl.LazyFrame,
    column: str,
    problem: str,
    message: pl.Expr,
    value: pl.Expr | None = None,
) -> pl.LazyFrame:
    assert problem in PROBLEMS, problem
    return frame.select(
        pl.col(_ROW),
        pl.col(fields.ID).alias("id"),
        pl.lit(column, dtype=pl.String).alias("column"),
        pl.lit(problem, dtype=pl.String).alias("problem"),
        message.cast(pl.String).alias("message"),
        (pl.col(column) if value is None else value).cast(pl.String).alias("value"),
    )


def _blank(column: str) -> pl.Expr:
    stripped = pl.col(_s(column))
    return stripped.is_null() | (stripped == "")


def _held_raw(column: str, raws: dict[str, str]) -> pl.Expr:
    """Whether the row's value of ``column`` (or of its whole object) was kept raw."""
    held = [
        pl.col(name).is_not_null()
        for name, field in raws.items()
        if column == field or column.startswith(field + fields.PATH_SEPARATOR)
    ]
    return pl.any_horizontal(held) if held else pl.lit(False)


# --------------------------------------------------------------------------- checks


def _missing(
    frame: pl.LazyFrame, absent: set[str], raws: dict[str, str], required: tuple[str, ...]
) -> list[pl.LazyFrame]:
    parts = []
    for c in required:
        if c in absent:
            message: pl.Expr = pl.lit(
                f"The frame has no {c} column, and Sequence requires {c} on every "
                f"customer: add the column and fill it in."
            )
        else:
            raw = pl.col(c)
            message = (
                pl.when(raw.is_null())
                .then(pl.lit(f"{c} is empty. Sequence requires it: fill it in."))
                .otherwise(
                    pl.format(
                        "{} is {}, which counts as empty. Sequence requires it: fill it in.",
                        pl.lit(c),
                        pl.when(raw == "")
                        .then(pl.lit("an empty string"))
                        .otherwise(pl.format("only spaces ({})", _q(raw))),
                    )
                )
            )
        empty = _blank(c) & ~_held_raw(c, raws)
        parts.append(_problems(frame.filter(empty), c, "missing", message))
    return parts


def _whitespace(
    frame: pl.LazyFrame, editable: tuple[str, ...], no_blank_check: set[str]
) -> list[pl.LazyFrame]:
    """Spaces at either end; only spaces, except where a blank is ``missing`` already."""
    parts = []
    for c in editable:
        raw, stripped = pl.col(c), pl.col(_s(c))
        found = raw != stripped
        if c in no_blank_check:
            found = found & (stripped != "")
        lead = raw.str.contains(r"^\s")
        trail = raw.str.contains(r"\s$")
        where = (
            pl.when(lead & trail)
            .then(pl.lit("spaces at the start and at the end"))
            .when(lead)
            .then(pl.lit("spaces at the start"))
            .otherwise(pl.lit("spaces at the end"))
        )
        message = (
            pl.when(stripped == "")
            .then(pl.format("{} {} holds only spaces: clear it.", pl.lit(c), _q(raw)))
            .otherwise(
                pl.format(
                    "{} {} has {}: it should be {} (clean.strip_whitespace() does it).",
                    pl.lit(c),
                    _q(raw),
                    where,
                    _q(stripped),
                )
            )
        )
        parts.append(_problems(frame.filter(found), c, "whitespace", message))
    return parts


def _emails(work: pl.DataFrame, columns: tuple[str, ...]) -> list[pl.LazyFrame]:
    if not columns:
        return []
    values = pl.concat([work.get_column(_s(c)) for c in columns]).rename("v")
    v = pl.col("v")
    short = (v.str.len_bytes() <= _EMAIL_SURE_MAX_LENGTH) & ~v.str.contains("--", literal=True)
    known = pl.coalesce(
        pl.when(~v.str.contains(_EMAIL_AT_LOOKALIKES)).then(pl.lit(_EMAIL_NO_AT)),
        *(
            pl.when(short & v.str.contains(shape)).then(pl.lit(reason))
            for shape, reason in _EMAIL_INVALID_SHAPES
        ),
    )
    candidates = (
        values.to_frame()
        .lazy()
        .filter(v.is_not_null() & (v != ""))
        .filter(~(short & v.str.contains(_EMAIL_SURE) & ~v.str.contains(_EMAIL_SPECIAL_USE)))
        .unique()
        .with_columns(reason=known.cast(pl.String))
        .collect()
    )
    ask = candidates.filter(pl.col("reason").is_null()).get_column("v").to_list()
    answers = [email_problem(value) for value in ask]
    invalid = pl.concat(
        [
            candidates.filter(pl.col("reason").is_not_null()),
            pl.DataFrame(
                {"v": ask, "reason": answers}, schema={"v": pl.String, "reason": pl.String}
            ).drop_nulls(),
        ],
        how="vertical",
    )
    invalid_values = invalid.get_column("v")

    parts = []
    for c in columns:
        stripped = pl.col(_s(c))
        bad = (
            work.lazy()
            .filter(stripped.is_in(invalid_values.implode()))
            .join(invalid.lazy(), left_on=_s(c), right_on="v", how="inner")
        )
        parts.append(
            _problems(
                bad,
                c,
                "invalid_email",
                pl.format(
                    "{} {} is not a valid email address: {} Correct it by hand.",
                    pl.lit(c),
                    _q(stripped),
                    pl.col("reason"),
                ),
            )
        )
        upper = work.lazy().filter(
            stripped.str.contains(r"@[^@]*\p{Lu}[^@]*$") & ~stripped.is_in(invalid_values.implode())
        )
        domain = stripped.str.extract(r"@([^@]*)$", 1)
        lowered = pl.concat_str(
            [stripped.str.extract(r"^(.*@)[^@]*$", 1), domain.str.to_lowercase()]
        )
        parts.append(
            _problems(
                upper,
                c,
                "email_case",
                pl.format(
                    "{} {} has capital letters after the @ ({}). Domains are not "
                    "case-sensitive: write it {} (clean.lowercase_email_domain() does it).",
                    pl.lit(c),
                    _q(stripped),
                    domain,
                    _q(lowered),
                ),
            )
        )
    return parts


def _countries_and_telephones(
    work: pl.DataFrame, raws: dict[str, str], version: ApiVersion
) -> list[pl.LazyFrame]:
    country_column = version.country_column
    regions = clean.countries_to_alpha2(work.get_column(_s(country_column))).rename("__region")
    frame = work.lazy().with_columns(regions)
    country, region = pl.col(_s(country_column)), pl.col("__region")
    bad_country = (country != "") & ~country.is_in(list(clean.ALPHA2_CODES))
    country_message = pl.format(
        "{} {} is not a two-letter ISO 3166-1 country code. {}",
        pl.lit(country_column),
        _q(country),
        pl.when(region.is_not_null())
        .then(
            pl.format(
                "It probably means {} ({}): write {} (clean.country_to_alpha2() does it).",
                region,
                region.replace_strict(clean.COUNTRY_NAMES, default=region),
                region,
            )
        )
        .otherwise(pl.lit("No country matches it: enter the code by hand (e.g. GB, US, DE).")),
    )
    parts = [
        _problems(frame.filter(bad_country), country_column, "invalid_country", country_message)
    ]
    for column in version.telephone_columns:
        numbers = clean.telephones_to_e164(work.get_column(_s(column)), regions)
        with_numbers = frame.with_columns(numbers.rename("__e164"))
        parts.append(_telephones(with_numbers, raws, column, country_column))
    return parts


def _telephones(
    frame: pl.LazyFrame, raws: dict[str, str], column: str, country: str
) -> pl.LazyFrame:
    """Numbers that are no valid number (``__e164`` null), read in the row's country
    (``__region``) unless they give their own country code."""
    region = pl.col("__region")
    telephone = pl.col(_s(column))
    bad_telephone = (telephone != "") & pl.col("__e164").is_null()
    # A number whose country was read with the wrong type cannot be judged yet.
    bad_telephone = bad_telephone & ~(
        region.is_null() & ~telephone.str.starts_with("+") & _held_raw(country, raws)
    )
    telephone_message = pl.format(
        "{} {} is not a valid phone number{}",
        pl.lit(column),
        _q(telephone),
        pl.when(region.is_not_null())
        .then(
            pl.format(
                " for {} (the row's country). Correct it, or write it with its "
                "country code (e.g. +44 20 7946 0018).",
                region,
            )
        )
        .when(telephone.str.starts_with("+"))
        .then(pl.lit(". Correct it by hand."))
        .otherwise(
            pl.lit(
                ", and the row has no usable country to read it in: write it with its "
                f"country code (e.g. +44 20 7946 0018) or fix {country}."
            )
        ),
    )
    return _problems(frame.filter(bad_telephone), column, "invalid_telephone", telephone_message)


def _tax_status(frame: pl.LazyFrame, column: str) -> list[pl.LazyFrame]:
    status = pl.col(_s(column))
    bad = (status != "") & ~status.is_in(list(fields.TAX_STATUSES))
    meant = clean.tax_status_spelling(status)
    message = pl.format(
        "taxStatus {} is not one of {}. {}",
        _q(status),
        pl.lit(_STATUSES),
        pl.when(meant.is_not_null())
        .then(pl.format("It probably means {} (clean.normalize_tax_status() writes it so).", meant))
        .otherwise(pl.lit("Choose the right one by hand.")),
    )
    return [_problems(frame.filter(bad), column, "invalid_tax_status", message)]


def _other_enums(frame: pl.LazyFrame, version: ApiVersion) -> list[pl.LazyFrame]:
    """``invalid_status``: a 2024-07-30 ``status`` outside DRAFT and ACTIVE."""
    parts = []
    for column, allowed in version.enums.items():
        if column == version.tax_status_column:
            continue
        value = pl.col(_s(column))
        bad = (value != "") & ~value.is_in(list(allowed))
        message = pl.format(
            "{} {} is not one of {}: choose the right one by hand.",
            pl.lit(column),
            _q(value),
            pl.lit(", ".join(allowed)),
        )
        parts.append(_problems(frame.filter(bad), column, "invalid_status", message))
    return parts


def _states(frame: pl.LazyFrame, version: ApiVersion) -> list[pl.LazyFrame]:
    """``missing_state`` for US and Canadian addresses, ``invalid_state`` for unknown codes."""
    column = version.state_column
    if column is None:
        return []
    state, country = pl.col(_s(column)), pl.col(_s(version.country_column))
    needs = country.str.to_uppercase().is_in(list(version.state_countries))
    missing = needs & _blank(column)
    missing_message = pl.format(
        "{} is empty, and Sequence requires a state or province for an address in {}: "
        "fill it in (e.g. NY, CA, ON).",
        pl.lit(column),
        country,
    )
    bad = (state != "") & ~state.is_in(list(version.states))
    upper = state.str.to_uppercase()
    bad_message = pl.format(
        "{} {} is not a state or province code Sequence allows (US states and DC, "
        "Canadian provinces and territories). {}",
        pl.lit(column),
        _q(state),
        pl.when(upper.is_in(list(version.states)))
        .then(pl.format("It probably means {}.", upper))
        .otherwise(pl.lit("Enter the two-letter code by hand.")),
    )
    return [
        _problems(frame.filter(missing), column, "missing_state", missing_message),
        _problems(frame.filter(bad), column, "invalid_state", bad_message),
    ]


def _empty_properties(
    frame: pl.LazyFrame, editable: tuple[str, ...], version: ApiVersion
) -> list[pl.LazyFrame]:
    """``empty_property``: a custom property whose text is empty (spaces are ``whitespace``)."""
    parts = []
    for column in editable:
        if version.keyed_column(column) is None:
            continue
        message = pl.lit(
            f"{column} is an empty text: fill it in, or clear the cell to remove the property."
        )
        parts.append(
            _problems(frame.filter(pl.col(column) == ""), column, "empty_property", message)
        )
    return parts


def _urls(frame: pl.LazyFrame, columns: tuple[str, ...]) -> list[pl.LazyFrame]:
    parts = []
    for column in columns:
        url = pl.col(_s(column))
        bad = (url != "") & ~url.str.contains(_URL_OK)
        message = pl.format(
            "{} {} is not a full web address: it must start with http:// or https:// and "
            "name a host (e.g. https://example.com). {}",
            pl.lit(column),
            _q(url),
            pl.when(url.str.contains(_URL_NO_SCHEME))
            .then(pl.format("It probably means {}.", _q(pl.concat_str([pl.lit("https://"), url]))))
            .otherwise(pl.lit("Correct it by hand.")),
        )
        parts.append(_problems(frame.filter(bad), column, "invalid_url", message))
    return parts


def _billing_email(
    frame: pl.LazyFrame, absent: set[str], raws: dict[str, str], billing: str, email: str
) -> list[pl.LazyFrame]:
    if billing in absent:
        message: pl.Expr = pl.lit(
            f"The frame has no {billing} column, so no customer has a billing email: "
            "invoices have no address to go to. Add the column and fill it in."
        )
    else:
        message = pl.format(
            "{} is empty: invoices have no address to go to. Add one{}.",
            pl.lit(billing),
            pl.when(pl.col(_s(email)).fill_null("") != "")
            .then(pl.format(" (the customer's email is {})", _q(pl.col(_s(email)))))
            .otherwise(pl.lit("")),
        )
    return [
        _problems(
            frame.filter(_blank(billing) & ~_held_raw(billing, raws)),
            billing,
            "missing_billing_email",
            message,
        )
    ]


def _wrong_types(
    frame: pl.LazyFrame, raws: dict[str, str], version: ApiVersion
) -> list[pl.LazyFrame]:
    """One ``wrong_type`` problem per value a raw column keeps, named by its field."""
    shapes = _json_shapes(version)
    columns = frames.schema(version)
    parts = []
    for name, field in raws.items():
        raw = pl.col(name)
        cells = field if field in columns else f"its {field}.* cells"  # a whole object
        message = pl.format(
            "{} holds {} ({}), but Sequence sends {} there. The frame keeps the value as "
            "read in {} and leaves {} empty on this row; {}",
            pl.lit(field),
            _shortened(raw),
            _json_kind(raw),
            pl.lit(shapes[field]),
            pl.lit(name),
            pl.lit(cells),
            pl.lit(_wrong_type_fix(field, version)),
        )
        parts.append(_problems(frame.filter(raw.is_not_null()), field, "wrong_type", message, raw))
    return parts


@functools.cache
def _json_shapes(version: ApiVersion) -> dict[str, str]:
    """What Sequence sends in each known field and object, in words."""
    shapes = {"address": "an object"}
    for column, dtype in frames.schema(version).items():
        if isinstance(dtype, pl.List):
            inner = "objects" if isinstance(dtype.inner, pl.Struct) else "text"
            shapes[column] = f"a list of {inner}"
        else:
            shapes[column] = "text"
    return shapes


def _shortened(text: pl.Expr, limit: int = 80) -> pl.Expr:
    """A long text cut to ``limit`` characters, ending in an ellipsis."""
    cut = pl.concat_str([text.str.slice(0, limit - 1), pl.lit("…")])
    return pl.when(text.str.len_chars() > limit).then(cut).otherwise(text)


def _json_kind(raw: pl.Expr) -> pl.Expr:
    """The JSON type of a JSON text, in words (from its first character)."""
    first = raw.str.slice(0, 1)
    return (
        pl.when(first == '"')
        .then(pl.lit("text"))
        .when(first == "[")
        .then(pl.lit("a list"))
        .when(first == "{")
        .then(pl.lit("an object"))
        .when(first.is_in(["t", "f"]))
        .then(pl.lit("true/false"))
        .when(first == "n")
        .then(pl.lit("null"))
        .otherwise(pl.lit("a number"))
    )


def _wrong_type_fix(field: str, version: ApiVersion) -> str:
    """How a person fixes a value of the wrong type in ``field``."""
    if field in version.editable_columns:
        return (
            f"write the right value into {field} (a filled cell is what a write sends), "
            f"or correct it in Sequence."
        )
    parts = [c for c in version.editable_columns if c.startswith(field + fields.PATH_SEPARATOR)]
    if parts:
        return (
            f"fill in {', '.join(parts)} (filled cells are what a write sends), "
            f"or correct it in Sequence."
        )
    return f"{field} is read-only here: correct it in Sequence."


def _duplicates(frame: pl.LazyFrame, column: str, problem: str, what: str) -> list[pl.LazyFrame]:
    label = pl.coalesce(pl.col(fields.ID), pl.format("row {}", pl.col(_ROW)))
    rows = (
        _keyed(frame.filter(pl.col(_s(column)) != ""), pl.col(_s(column)))
        .filter(pl.col("__key").is_duplicated())
        .sort(_ROW)
        .with_columns(__label=label)
    )
    groups = (
        rows.group_by("__key")
        .agg(pl.col("__label").alias("__labels"), pl.len().alias("__n"))
        .filter(pl.col("__n") > 1)
    )
    others = pl.col("__labels").list.set_difference(pl.concat_list(pl.col("__label")))
    count = pl.col("__n").cast(pl.Int64) - 1
    named = others.list.head(_MAX_IDS_NAMED).list.join(", ")
    more = count - _MAX_IDS_NAMED
    message = pl.format(
        "{} {} is also the {} of {} other customer{}: {}{}. Merge the duplicates, or "
        "correct the {} if they are different customers.",
        pl.lit(column),
        _q(pl.col(_s(column))),
        pl.lit(what),
        count,
        pl.when(count == 1).then(pl.lit("")).otherwise(pl.lit("s")),
        named,
        pl.when(more > 0).then(pl.format(" and {} more", more)).otherwise(pl.lit("")),
        pl.lit(what),
    )
    dups = rows.join(groups, on="__key", how="inner")
    return [_problems(dups, column, problem, message)]


def _keyed(frame: pl.LazyFrame, text: pl.Expr) -> pl.LazyFrame:
    """``frame`` with ``__key``: ``text`` lower-cased and in Unicode NFC, as texts compare.

    Only rows holding non-ASCII text are normalized (ASCII is NFC already, and
    normalizing costs ten times the lower-casing); rows come out in no set order.
    """
    lowered = text.str.to_lowercase()
    ascii_only = text.str.len_bytes() == text.str.len_chars()
    return pl.concat(
        [
            frame.filter(ascii_only).with_columns(__key=lowered),
            frame.filter(~ascii_only).with_columns(__key=lowered.str.normalize("NFC")),
        ]
    )


# --------------------------------------------------------------------------- contacts

#: Problem codes of :func:`check_contacts`, in the order problems of one contact are listed.
CONTACT_PROBLEMS: Final[dict[str, str]] = {
    "missing": "A contact has no name or no email (Sequence requires both).",
    "whitespace": "A value starts or ends with spaces.",
    "invalid_email": "A contact's email address is not valid.",
    "email_case": "A contact's email address has capital letters after the @.",
    "invalid_billing_preference": "The billing preference is not PRIMARY, STANDARD or NONE.",
    "no_primary": "Contacts receive billing mail but none is PRIMARY (Sequence requires one).",
    "duplicate_contact_email": "Two contacts of one customer have the same email address.",
}

#: One problem found: row number, customer id, column, code, message, value.
_Found = tuple[int, str | None, str, str, str, str | None]


def check_contacts(contacts: pl.DataFrame) -> pl.DataFrame:
    """One row per problem in a contacts frame (:func:`~sequence_nb.contacts.fetch_contacts`).

    Columns as :func:`check`'s (``RESULT_SCHEMA``): ``id`` is the customer's id,
    ``column`` the contact's column (``name``, ``email``, ``billingPreference``), and
    each message names the contact (its id, or "a new contact" for an added row).
    ``CONTACT_PROBLEMS`` lists the codes. Archived contacts are not checked (an
    update leaves them out).
    """
    rows = contacts.with_row_index(_ROW)
    if "archivedAt" in rows.columns:
        rows = rows.filter(pl.col("archivedAt").is_null())
    found: list[_Found] = []
    for row in rows.iter_rows(named=True):
        found += _contact_problems(row)
    found += _customer_contact_problems(rows)
    if not found:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    order = {code: i for i, code in enumerate(CONTACT_PROBLEMS)}
    found.sort(key=lambda problem: (problem[0], order[problem[3]]))
    return pl.DataFrame([problem[1:] for problem in found], schema=RESULT_SCHEMA, orient="row")


def _who(row: dict[str, Any]) -> str:
    contact_id = row.get("id")
    return f"contact {contact_id}" if contact_id else "a new contact"


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _contact_problems(row: dict[str, Any]) -> list[_Found]:
    """Missing or spaced name and email, a bad email, a preference outside the list."""
    number, customer, who = int(row[_ROW]), _text_or_none(row.get("customerId")), _who(row)
    out: list[_Found] = []
    for column in ("name", "email"):
        text = _text_or_none(row.get(column))
        if text is None or not text.strip():
            out.append(
                (number, customer, column, "missing", f"{who} has no {column}: fill it in.", text)
            )
        elif text != text.strip():
            message = (
                f"{who}'s {column} {text!r} has spaces at an end: it should be {text.strip()!r}."
            )
            out.append((number, customer, column, "whitespace", message, text))
    email = (_text_or_none(row.get("email")) or "").strip()
    problem = email_problem(email) if email else None
    if problem is not None:
        message = f"{who}'s email {email!r} is not a valid email address: {problem}"
        out.append((number, customer, "email", "invalid_email", message, email))
    elif email and (domain := email.rpartition("@")[2]) != domain.lower():
        message = (
            f"{who}'s email {email!r} has capital letters after the @: domains are not "
            "case-sensitive (clean.lowercase_email_domain('email') writes it so)."
        )
        out.append((number, customer, "email", "email_case", message, email))
    preference = row.get("billingPreference")
    allowed = fields.V2024_07_30.billing_preferences
    if preference is not None and str(preference) not in allowed:
        message = (
            f"{who}'s billingPreference {str(preference)!r} is not one of {', '.join(allowed)}."
        )
        out.append(
            (
                number,
                customer,
                "billingPreference",
                "invalid_billing_preference",
                message,
                str(preference),
            )
        )
    return out


def _customer_contact_problems(rows: pl.DataFrame) -> list[_Found]:
    """Per customer: no PRIMARY where contacts get billing mail; an email given twice."""
    out: list[_Found] = []
    for _, group in rows.group_by("customerId", maintain_order=True):
        contacts = group.to_dicts()
        customer = _text_or_none(contacts[0].get("customerId"))
        preferences = {str(c.get("billingPreference")) for c in contacts}
        if preferences & {"PRIMARY", "STANDARD"} and "PRIMARY" not in preferences:
            message = (
                f"customer {customer}: contacts receive billing mail but none is PRIMARY; "
                "Sequence requires one: make one contact PRIMARY."
            )
            out.append(
                (int(contacts[0][_ROW]), customer, "billingPreference", "no_primary", message, None)
            )
        seen: dict[str, str] = {}
        for contact in contacts:
            email = (_text_or_none(contact.get("email")) or "").strip()
            if not email:
                continue
            key = unicodedata.normalize("NFC", email.lower())
            if key in seen:
                message = (
                    f"{_who(contact)}'s email {email!r} is also the email of {seen[key]} "
                    f"of customer {customer}: keep one contact per address."
                )
                out.append(
                    (
                        int(contact[_ROW]),
                        customer,
                        "email",
                        "duplicate_contact_email",
                        message,
                        email,
                    )
                )
            else:
                seen[key] = _who(contact)
    return out
