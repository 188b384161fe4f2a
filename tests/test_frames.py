"""Records <-> polars frames: round trips, the fixed schema, lenient reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from sequence_nb import SequenceClient, arrow_reader, fields, frames
from sequence_nb.frames import (
    fetch_customers,
    frame_from_pages,
    record_of,
    schema,
    to_frame,
    to_records,
)
from sequence_nb.plan import plan_updates
from sequence_nb.sandbox import Sandbox, generate_customers
from sequence_nb.schema import WHOLE_SECONDS
from tests import v2024
from tests.seed import SEED_RECORD


def normalised(value: Any) -> Any:
    """Drop null-valued keys recursively; an object left empty counts as absent.

    This is the equivalence the API applies (an absent optional field and a null
    one are the same); list entries are kept as they are.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            item = normalised(item)
            if item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def page(items: list[dict[str, Any]], *, pretty: bool = False, after: str | None = "x") -> bytes:
    """A ``GET /customers`` body as the API would send it."""
    body = {"items": items, "pagination": {"after": after, "totalResultSize": 10_000}}
    if pretty:
        return json.dumps(body, indent=2, ensure_ascii=False).encode()
    return orjson.dumps(body)


# ---------------------------------------------------------------- strategies

_ODD_TEXT = ["", " ", "😀", "👩‍👩‍👧", "مرحبا", "שלום עולם", "\u202eRTL", "Zoë", "a\nb", '"q"', "\\"]
text = st.one_of(
    st.sampled_from(_ODD_TEXT),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


timestamps = st.builds(
    lambda moment, style: moment.strftime(style),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"]),
).map(lambda s: s.replace("000Z", "Z") if s.endswith(".000000Z") else s)
created = st.one_of(timestamps, text)
address = st.fixed_dictionaries(
    {},
    optional={
        **{part: maybe(text) for part in fields.SEED.address_fields},
        "state": maybe(text),  # a later API version's extra part
    },
)
linked_service = st.fixed_dictionaries(
    {}, optional={name: maybe(text) for name in fields.SEED.list_fields["linkedServices"]}
)
external_id = st.fixed_dictionaries(
    {"key": st.sampled_from(fields.SEED.integration_services), "value": text},
    optional={"syncTime": maybe(timestamps)},
)
meta = st.fixed_dictionaries(
    {},
    optional={
        "source": maybe(text),
        "depth": maybe(st.fixed_dictionaries({}, optional={"level": maybe(st.integers(-5, 5))})),
        "tags": maybe(st.lists(text, max_size=3)),
    },
)
known_scalars = [
    name
    for name in fields.SEED.known_columns
    if fields.PATH_SEPARATOR not in name
    and name not in {fields.CREATED_AT, "taxStatus", "billingEmails"}
    and name != "linkedServices"
]
records = st.fixed_dictionaries(
    {},
    optional={
        **{name: maybe(text) for name in known_scalars},
        fields.CREATED_AT: maybe(created),
        "address": maybe(address),
        "taxStatus": maybe(st.one_of(st.sampled_from(fields.TAX_STATUSES), text)),
        "billingEmails": maybe(st.lists(text, max_size=3)),
        "linkedServices": maybe(st.lists(maybe(linked_service), max_size=3)),
        # Fields the toolkit does not know: scalars, nested objects and lists.
        "archivedAt": maybe(timestamps),
        "externalIds": maybe(st.lists(external_id, max_size=3)),
        "score": maybe(st.integers(-(2**63), 2**63 - 1)),
        "ratio": maybe(st.floats(allow_nan=False, allow_infinity=False)),
        "active": maybe(st.booleans()),
        "meta": maybe(meta),
        "empty": st.just({}),
        "grid": maybe(st.lists(st.lists(st.integers(0, 9), max_size=2), max_size=2)),
    },
)
record_lists = st.lists(records, max_size=8)

_BOUNDED = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- round trip


@_BOUNDED
@given(record_lists)
def test_to_records_inverts_to_frame_for_api_shaped_records(rs: list[dict[str, Any]]) -> None:
    assert to_records(to_frame(rs)) == [normalised(r) for r in rs]


@_BOUNDED
@given(record_lists, st.lists(st.integers(0, 3), min_size=1, max_size=6), st.booleans())
def test_frame_from_pages_equals_to_frame_of_the_same_records(
    rs: list[dict[str, Any]], sizes: list[int], pretty: bool
) -> None:
    pages, rest = [], list(rs)
    for size in sizes:
        pages.append(page(rest[:size], pretty=pretty))
        rest = rest[size:]
    pages.append(page(rest, after=None))
    assert_frame_equal(frame_from_pages(pages), to_frame(rs))


@settings(max_examples=60, deadline=None)
@given(st.lists(records, min_size=2, max_size=8))
@example(  # Arrow's struct cast broke on a null-typed part inside a list.
    [
        {"archivedAt": "2000-01-01T00:00:00Z"},
        {"externalIds": [{"key": "Xero"}, {"key": "Xero"}, {"key": "Xero", "syncTime": None}]},
    ]
)
def test_a_read_in_two_passes_gives_the_same_frame(rs: list[dict[str, Any]]) -> None:
    """A big read learns timestamp-like fields from a prefix: same frame, same order."""
    pages = [page([r]) for r in rs]
    whole = frame_from_pages(pages)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arrow_reader, "SAMPLE_BYTES", 1)
        sampled = frame_from_pages(pages)
    assert_frame_equal(sampled, whole)


def test_the_seed_pages_example_round_trips_exactly() -> None:
    df = to_frame([SEED_RECORD])
    assert to_records(df) == [SEED_RECORD]
    assert record_of(df, 0) == SEED_RECORD
    row = df.row(0, named=True)
    assert row["address.postCode"] == "AB1 2EF"
    assert row["createdAt"] == datetime(2022, 6, 28, 16, 47, tzinfo=UTC)
    assert row["linkedServices"] == SEED_RECORD["linkedServices"]
    assert to_records(frame_from_pages([page([SEED_RECORD], pretty=True)])) == [SEED_RECORD]


def test_empty_strings_and_empty_lists_stay_values() -> None:
    record = {"id": "a", "label": "", "billingEmails": [], "linkedServices": [], "tags": []}
    df = to_frame([record])
    assert df.row(0, named=True)["label"] == ""
    assert to_records(df) == [record]


def test_an_absent_address_and_an_address_of_nulls_both_come_back_absent() -> None:
    rs: list[dict[str, Any]] = [{"id": "a"}, {"id": "b", "address": None}]
    rs.append({"id": "c", "address": {"line1": None}})
    rs.append({"id": "d", "address": {}})
    rs.append({"id": "e", "address": {"town": "Leeds"}})
    assert to_records(to_frame(rs)) == [
        {"id": "a"},
        {"id": "b"},
        {"id": "c"},
        {"id": "d"},
        {"id": "e", "address": {"town": "Leeds"}},
    ]


def test_null_parts_of_list_entries_are_left_out() -> None:
    rs = [{"linkedServices": [{"externalId": "1", "externalService": None}, None, {}]}]
    assert to_records(to_frame(rs)) == [{"linkedServices": [{"externalId": "1"}, None, {}]}]


def test_record_of_returns_one_row_and_counts_from_the_end() -> None:
    df = to_frame([{"id": "a"}, SEED_RECORD])
    assert record_of(df, 1) == SEED_RECORD
    assert record_of(df, -2) == {"id": "a"}
    with pytest.raises(IndexError):
        record_of(df, 2)


def test_records_keys_follow_the_column_order() -> None:
    shuffled = dict(reversed(list(SEED_RECORD.items())))
    (back,) = to_records(to_frame([shuffled]))
    assert list(back) == [
        name for name in dict.fromkeys(c.split(".")[0] for c in fields.SEED.known_columns)
    ]
    assert list(back["address"]) == list(fields.SEED.address_fields)


# ------------------------------------------------------------- schema, order


def test_schema_gives_the_documented_dtypes() -> None:
    expected: dict[str, pl.DataType] = dict.fromkeys(fields.SEED.known_columns, pl.String())
    expected["createdAt"] = pl.Datetime("us", "UTC")
    expected["taxStatus"] = pl.Enum(fields.TAX_STATUSES)
    expected["billingEmails"] = pl.List(pl.String())
    expected["linkedServices"] = pl.List(
        pl.Struct(
            {"externalId": pl.String(), "externalService": pl.String(), "syncTime": pl.String()}
        )
    )
    assert schema() == expected
    assert list(schema()) == list(fields.SEED.known_columns)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(lambda: to_frame([]), id="no records"),
        pytest.param(lambda: frame_from_pages([]), id="no pages"),
        pytest.param(lambda: frame_from_pages([page([]), page([])]), id="empty pages"),
    ],
)
def test_empty_input_gives_the_known_columns_and_dtypes(frame: Any) -> None:
    df = frame()
    assert df.height == 0
    assert dict(df.schema) == schema()


def test_all_null_and_missing_fields_keep_the_fixed_dtypes() -> None:
    rs: list[dict[str, Any]] = [
        {"id": "a", "address": None, "billingEmails": None, "linkedServices": []},
        {"id": "b", "createdAt": None, "taxStatus": None, "linkedServices": None},
    ]
    df = to_frame(rs)
    assert dict(df.schema) == schema()
    assert df.get_column("address.town").null_count() == 2


def test_columns_are_known_ones_then_unknown_in_first_seen_order() -> None:
    rs: list[dict[str, Any]] = [
        {"zeta": 1, "id": "a"},
        {"alpha": "x", "zeta": 2, "meta": {"b": 1, "a": {"deep": True}}},
        {"archivedAt": "2024-01-01T00:00:00Z", "address": {"state": "CA", "town": "Austin"}},
    ]
    # New parts of a known object lead, as the object is seen first; then the rest.
    expected = [
        *fields.SEED.known_columns,
        "address.state",
        "zeta",
        "alpha",
        "meta.b",
        "meta.a.deep",
    ]
    expected += ["archivedAt"]
    pages = [page([r]) for r in rs]
    assert to_frame(rs).columns == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arrow_reader, "SAMPLE_BYTES", 1)
        assert frame_from_pages(pages).columns == expected


def unknown_fields_in_many_blocks() -> tuple[list[dict[str, Any]], list[str]]:
    """Records whose unknown fields are spread far apart, and their expected columns."""
    rs: list[dict[str, Any]] = [dict(SEED_RECORD, id=str(i)) for i in range(600)]
    rs[2]["also"] = None  # present, never holding a value: last, by name
    rs[5]["zeta"] = None  # present early, first holding a value at 300
    rs[300].update(beta="b", zeta="z")  # both first hold one here: in this record's order
    rs[450]["alpha"] = {"y": 1, "x": 2}
    rs[500]["tags"] = [{"z": 1, "a": 2}]
    rs[599]["never"] = None
    columns = [*fields.SEED.known_columns, "beta", "zeta", "alpha.y", "alpha.x", "tags", "also"]
    return rs, [*columns, "never"]


def test_unknown_columns_keep_one_order_however_the_reader_splits_the_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arrow's threads merge what each block found in no fixed order; the data decides."""
    rs, expected = unknown_fields_in_many_blocks()
    pages = [page(rs[i : i + 7]) for i in range(0, len(rs), 7)]
    monkeypatch.setattr(arrow_reader, "MIN_BLOCK", 4096)  # dozens of blocks for two threads
    for _ in range(10):
        assert to_frame(rs).columns == expected
        assert frame_from_pages(pages).columns == expected
    assert to_frame(rs).schema["tags"] == pl.List(pl.Struct({"z": pl.Int64, "a": pl.Int64}))


def test_the_lenient_read_orders_unknown_columns_the_same_way() -> None:
    rs, expected = unknown_fields_in_many_blocks()
    rs[0]["mixed"], rs[1]["mixed"] = 1, "one"  # a field of two types: the lenient path
    df = to_frame(rs)
    assert df.schema["mixed"] == pl.String
    assert df.columns == [*expected[: len(fields.SEED.known_columns)], "mixed", *expected[-7:]]
    assert df.schema["tags"] == pl.List(pl.Struct({"z": pl.Int64, "a": pl.Int64}))


def test_a_page_of_records_longer_than_a_block_is_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(arrow_reader, "MIN_BLOCK", 2048)
    rs = [dict(SEED_RECORD, id=str(i), label="x" * (100 * i)) for i in range(300)]
    assert to_records(to_frame(rs)) == rs


def test_a_record_that_is_not_json_is_refused_by_name() -> None:
    rs = [dict(SEED_RECORD, id=str(i)) for i in range(150)]
    rs[120]["label"] = {"a", "b"}
    with pytest.raises(TypeError, match=r"record 120, field 'label' cannot be written as JSON"):
        to_frame(rs)


def _is_real_moment(text: str) -> bool:
    """Whether ``YYYY-MM-DD...`` names a day of the proleptic Gregorian calendar."""
    year, month, day = int(text[:4]), int(text[5:7]), int(text[8:10])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return day <= days


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(WHOLE_SECONDS, fullmatch=True), min_size=1, max_size=4))
def test_whole_second_created_at_is_a_datetime_only_for_real_moments(texts: list[str]) -> None:
    rs = [{"createdAt": text} for text in texts]
    df = to_frame(rs)
    as_datetime = df.schema["createdAt"] == pl.Datetime("us", "UTC")
    assert as_datetime == all(_is_real_moment(text) for text in texts)
    assert to_records(df) == rs


def test_unknown_fields_keep_their_json_types() -> None:
    r = {
        "archivedAt": "2024-01-01T00:00:00Z",
        "externalIds": [{"key": "Stripe", "value": "cus_1", "syncTime": "2024-01-01T00:00:00Z"}],
        "score": 3,
        "ratio": 0.5,
        "active": False,
        "nothing": None,
        "grid": [[1], []],
    }
    df = to_frame([r])
    assert df.schema["archivedAt"] == pl.String
    assert df.schema["externalIds"] == pl.List(
        pl.Struct({"key": pl.String, "value": pl.String, "syncTime": pl.String})
    )
    assert df.schema["score"] == pl.Int64
    assert df.schema["ratio"] == pl.Float64
    assert df.schema["active"] == pl.Boolean
    assert df.schema["nothing"] == pl.String
    assert df.schema["grid"] == pl.List(pl.List(pl.Int64))
    assert to_records(df) == [normalised(r)]


# ------------------------------------------------------------- lenient reads


def test_an_unknown_tax_status_loads_and_the_column_stays_text() -> None:
    df = to_frame([{"taxStatus": "LEGACY"}, {"taxStatus": "TAXED"}, {"taxStatus": ""}])
    assert df.schema["taxStatus"] == pl.String
    assert df.get_column("taxStatus").to_list() == ["LEGACY", "TAXED", ""]
    assert [r["taxStatus"] for r in to_records(df)] == ["LEGACY", "TAXED", ""]
    assert to_frame([{"taxStatus": "TAXED"}]).schema["taxStatus"] == pl.Enum(fields.TAX_STATUSES)


@pytest.mark.parametrize(
    "text",
    ["not a date", "2022-06-28T16:47:00+00:00", "2022-06-28T16:47:00.1Z", "2022-13-40T00:00:00Z"],
)
def test_a_created_at_that_does_not_parse_exactly_loads_as_text(text: str) -> None:
    rs = [{"createdAt": "2022-06-28T16:47:00Z"}, {"createdAt": text}]
    df = to_frame(rs)
    assert df.schema["createdAt"] == pl.String
    assert to_records(df) == rs


def test_created_at_with_a_fraction_is_a_datetime_and_written_back_as_read() -> None:
    rs = [{"createdAt": "2022-06-28T16:47:00.120Z"}, {"createdAt": "2022-06-28T16:47:00.123456Z"}]
    df = to_frame(rs)
    assert df.schema["createdAt"] == pl.Datetime("us", "UTC")
    assert to_records(df) == rs


def test_a_number_in_a_text_field_is_kept_as_read_beside_the_text_column() -> None:
    df = to_frame([{"id": "a", "telephone": 2010001000}, {"id": "b", "telephone": "020"}])
    assert df.schema["telephone"] == pl.String
    assert df.get_column("telephone").to_list() == [None, "020"]
    assert df.get_column("telephone__raw").to_list() == ["2010001000", None]
    assert to_records(df)[0] == {"id": "a", "telephone": 2010001000}


# One bad record blocks only itself: each case is (record field, value of the wrong
# JSON type, the column that keeps it as read).
WRONG_TYPES = [
    pytest.param("billingEmails", "a@example.com", "billingEmails__raw", id="text-for-list"),
    pytest.param("billingEmails", ["a@example.com", 7], "billingEmails__raw", id="number-in-list"),
    pytest.param("billingEmails", {"a": 1}, "billingEmails__raw", id="object-for-list"),
    pytest.param("label", {"a": [1]}, "label__raw", id="object-for-text"),
    pytest.param("telephone", 2010001000, "telephone__raw", id="number-for-text"),
    pytest.param("legalName", True, "legalName__raw", id="bool-for-text"),
    pytest.param("taxStatus", 1, "taxStatus__raw", id="number-for-enum"),
    pytest.param("createdAt", 1656434820, "createdAt__raw", id="number-for-datetime"),
    pytest.param("address", "1 High St, Leeds", "address__raw", id="text-for-object"),
    pytest.param("address", ["GB"], "address__raw", id="list-for-object"),
    pytest.param(
        "address",
        {"line1": "Flat 1", "town": {"name": "Leeds"}, "postCode": "LS1", "country": "GB"},
        "address.town__raw",
        id="object-for-text-in-address",
    ),
    pytest.param(
        "linkedServices",
        {"externalId": "x"},
        "linkedServices__raw",
        id="object-for-list-of-objects",
    ),
    pytest.param("linkedServices", ["Xero"], "linkedServices__raw", id="text-for-list-entry"),
    pytest.param(
        "linkedServices",
        [{"externalId": 5, "externalService": "Xero"}],
        "linkedServices__raw",
        id="number-in-list-entry",
    ),
]


def with_one_bad_record(field: str, value: Any) -> list[dict[str, Any]]:
    """Three seed records, the middle one holding ``value`` in ``field``."""
    rs = [dict(SEED_RECORD, id=str(i)) for i in range(3)]
    rs[1][field] = value
    return rs


@pytest.mark.parametrize(("field", "value", "raw"), WRONG_TYPES)
def test_a_value_of_the_wrong_json_type_keeps_every_known_column_its_dtype(
    field: str, value: Any, raw: str
) -> None:
    rs = with_one_bad_record(field, value)
    df = to_frame(rs)
    assert dict(df.select(fields.SEED.known_columns).schema) == schema()
    _, _, part = raw.removesuffix("__raw").partition(".")
    misfit = value[part] if part else value
    assert df.get_column(raw).to_list() == [None, orjson.dumps(misfit).decode(), None]
    assert [c for c in df.columns if c not in fields.SEED.known_columns] == [raw]
    clean = to_frame([rs[0], rs[2]])
    assert_frame_equal(df.filter(pl.col("id") != "1").drop(raw), clean)


@pytest.mark.parametrize(("field", "value", "raw"), WRONG_TYPES)
def test_a_value_of_the_wrong_json_type_comes_back_exactly_as_read(
    field: str, value: Any, raw: str
) -> None:
    rs = with_one_bad_record(field, value)
    assert to_records(to_frame(rs)) == rs
    assert_frame_equal(frame_from_pages([page(rs[:2]), page(rs[2:])]), to_frame(rs))


def test_the_cell_wins_over_the_raw_value_once_it_is_filled() -> None:
    df = to_frame(with_one_bad_record("telephone", 2010001000))
    fixed = df.with_columns(telephone=pl.lit("+442010001000"))
    assert [r["telephone"] for r in to_records(fixed)] == ["+442010001000"] * 3


def test_a_raw_value_that_is_not_json_is_refused_by_row_and_column() -> None:
    df = to_frame(with_one_bad_record("telephone", 2010001000))
    broken = df.with_columns(telephone__raw=pl.lit("{not json"))
    with pytest.raises(frames.RawValueError, match=r"row 0, column 'telephone__raw'"):
        to_records(broken)


def test_an_unknown_part_of_mixed_types_in_the_address_keeps_the_known_parts() -> None:
    rs = [dict(SEED_RECORD, id=str(i)) for i in range(2)]
    rs[0]["address"] = dict(SEED_RECORD["address"], state="CA")
    rs[1]["address"] = dict(SEED_RECORD["address"], state=5)
    df = to_frame(rs)
    assert dict(df.select(fields.SEED.known_columns).schema) == schema()
    assert df.get_column("address.town").to_list() == ["London", "London"]
    assert df.get_column("address.state").to_list() == ["CA", "5"]


def test_a_plan_of_an_edit_on_a_clean_row_works_beside_a_bad_record() -> None:
    original = to_frame(with_one_bad_record("billingEmails", "a@example.com"))
    edited = original.with_columns(
        label=pl.when(pl.col("id") == "2").then(pl.lit("Renamed")).otherwise(pl.col("label"))
    )
    plan = plan_updates(original, edited)
    assert [row.id for row in plan.sendable] == ["2"]
    assert plan.errors.height == 0
    assert plan.sendable[0].body["label"] == "Renamed"


def test_fetch_customers_keeps_the_dtypes_when_the_server_sends_a_bad_record(
    make_sandbox: Any,
) -> None:
    rs = with_one_bad_record("billingEmails", "a@example.com")
    with make_sandbox(records=rs).client(rate_limit_per_minute=None) as client:
        df = fetch_customers(client, progress=False)
    assert dict(df.select(fields.SEED.known_columns).schema) == schema()
    bad = df.filter(pl.col("billingEmails__raw").is_not_null())
    assert bad.get_column("billingEmails__raw").to_list() == ['"a@example.com"']


_WRONG_VALUE = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2),
    text,
)


def _misfits(column: str) -> st.SearchStrategy[Any]:
    """Values of another JSON type than the known column ``column`` holds."""
    dtype = schema()[column]
    if isinstance(dtype, pl.List):
        return _WRONG_VALUE.filter(lambda v: not isinstance(v, list) or v)
    return _WRONG_VALUE.filter(lambda v: not isinstance(v, str))


@_BOUNDED
@given(
    record_lists,
    st.lists(
        st.tuples(
            st.integers(0, 7),
            st.sampled_from([c for c in fields.SEED.known_columns if c != "id"]).flatmap(
                lambda c: st.tuples(st.just(c), _misfits(c))
            ),
        ),
        max_size=4,
    ),
)
def test_bad_values_anywhere_keep_the_dtypes_and_come_back_as_read(
    rs: list[dict[str, Any]], bad: list[tuple[int, tuple[str, Any]]]
) -> None:
    for place, (column, value) in bad:
        if rs:
            record = rs[place % len(rs)]
            head, _, part = column.partition(".")
            if part:
                record[head] = dict(record.get(head) or {}, **{part: value})
            else:
                record[column] = value
    df = to_frame(rs)
    for column, dtype in schema().items():
        # createdAt and taxStatus stay text when a value of the right type is not a
        # timestamp or a status (the generated text is often neither).
        lenient = column in (fields.CREATED_AT, "taxStatus")
        assert df.schema[column] in ((dtype, pl.String()) if lenient else (dtype,)), column
    assert to_records(df) == [normalised(r) for r in rs]


def test_a_field_of_mixed_types_is_kept_as_text_and_the_rest_is_unchanged() -> None:
    rs = [dict(SEED_RECORD, extra=1), dict(SEED_RECORD, extra="one"), {"extra": {"a": [1]}}]
    df = to_frame(rs)
    assert df.get_column("extra").to_list() == ["1", "one", '{"a":[1]}']
    assert dict(df.select(fields.SEED.known_columns).schema) == schema()
    assert to_records(df)[0] == dict(SEED_RECORD, extra="1")


def test_pretty_printed_and_crlf_pages_are_read() -> None:
    body = json.dumps({"items": [SEED_RECORD]}, indent=4).replace("\n", "\r\n").encode()
    assert to_records(frame_from_pages([body, b"  ", page([])])) == [SEED_RECORD]


def test_a_page_that_is_not_json_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="page 1 is not valid JSON"):
        frame_from_pages([page([SEED_RECORD]), b'{"items": [{"id": '])


def test_to_frame_takes_any_mappings_and_iterables() -> None:
    rs = (MappingProxyType(dict(SEED_RECORD, address=MappingProxyType(SEED_RECORD["address"]))),)
    assert to_records(to_frame(iter(rs))) == [SEED_RECORD]


def test_many_records_are_read_in_several_pages_in_order() -> None:
    rs = [dict(SEED_RECORD, id=str(i), score=i) for i in range(2500)]
    rs[-1]["lateField"] = "2024-01-01T00:00:00Z"
    df = to_frame(rs)
    assert df.get_column("id").to_list() == [str(i) for i in range(2500)]
    assert df.columns[-1] == "lateField"
    assert df.schema["lateField"] == pl.String
    assert to_records(df) == rs


def test_fetch_customers_reads_every_page_the_sandbox_serves(client: SequenceClient) -> None:
    records = client.list_customers()
    df = fetch_customers(client)
    assert df.height == len(records) > 0
    assert df.columns[: len(fields.SEED.known_columns)] == list(fields.SEED.known_columns)
    assert_frame_equal(df, to_frame(records))
    assert to_records(df) == [normalised(r) for r in records]


def test_fetch_customers_reads_every_page_into_the_same_frame(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox.client(rate_limit_per_minute=None, page_size=25) as client:
        fetched = fetch_customers(client, progress=True, includeArchived=True)
        listed = to_frame(client.list_customers(includeArchived=True))
    assert fetched.height == len(sandbox.records())
    assert fetched.equals(listed)
    assert "Fetching customers" in capsys.readouterr().err


def test_fetch_customers_is_quiet_when_asked(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox.client(rate_limit_per_minute=None) as client:
        fetch_customers(client, progress=False)
    assert capsys.readouterr().err == ""


def test_a_fetch_from_both_ends_gives_the_frame_of_one_newest_first_read(
    make_sandbox: Any,
) -> None:
    records, _ = generate_customers(120, seed=3)
    records[0]["laterField"] = {"b": 1, "a": [1, 2]}  # the oldest: read first by the ASC stream
    records[60]["billingEmails"] = "x@example.com"  # a value of the wrong type, mid-listing
    records[119]["earlyField"] = "2024-01-01T00:00:00Z"  # the newest
    server = make_sandbox(records=records)
    with server.client(rate_limit_per_minute=None, page_size=20) as client:
        one = frame_from_pages(p.content for p in client.iter_customer_pages(includeArchived=True))
        two = fetch_customers(client, progress=False, includeArchived=True)
    assert_frame_equal(two, one)
    unknown = [c for c in two.columns if c.startswith(("earlyField", "laterField"))]
    assert unknown[0] == "earlyField" and unknown[1:]  # first seen in the newest record
    assert "billingEmails__raw" in two.columns
    assert two.get_column("id").to_list() == [r["id"] for r in reversed(records)]


# -- API version 2024-07-30 ---------------------------------------------------------------------


def test_a_2024_frame_has_the_versions_columns_and_dtypes() -> None:
    frame = to_frame([v2024.listed()], api_version="2024-07-30")
    known = fields.V2024_07_30.known_columns
    assert frame.columns[: len(known)] == list(known)
    assert frame.schema["status"] == pl.Enum(["DRAFT", "ACTIVE"])
    assert frame.schema["taxStatus"] == pl.Enum(list(fields.TAX_STATUSES))
    assert frame.schema["createdAt"] == pl.Datetime("us", "UTC")
    assert frame.row(0, named=True)["address.state"] == "NY"
    assert frame.row(0, named=True)["address.postcode"] == "87121"
    assert {"customProperties.region", "customProperties.tier"} <= set(frame.columns)
    assert frame.schema["integrationIds"].inner.to_schema()["isPending"] == pl.Boolean  # type: ignore[union-attr]
    assert "email" not in frame.columns and "address.postCode" not in frame.columns


def test_2024_records_round_trip_exactly() -> None:
    records = [*v2024.customers(250), v2024.CUSTOMER]
    assert any(r["customProperties"] == {} for r in records)
    frame = to_frame(records, api_version="2024-07-30")
    assert to_records(frame, api_version="2024-07-30") == records


def test_2024_reads_stay_on_the_fast_path_when_early_lists_are_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by the 2024 benchmark: empty integrationIds/organizations in the first
    # blocks made Arrow guess their types, fail later, and fall back (10x slower).
    records = v2024.customers(6000)
    for record in records[:5000]:
        record["integrationIds"], record["organizations"] = [], []

    def slow(*args: object, **kwargs: object) -> None:
        raise AssertionError("the slow reader was used")

    monkeypatch.setattr(frames, "read_leniently", slow)
    frame = to_frame(records, api_version="2024-07-30")
    assert frame.schema["integrationIds"].inner.to_schema()["isPending"] == pl.Boolean  # type: ignore[union-attr]
    assert to_records(frame, api_version="2024-07-30") == records


def test_a_wrong_typed_integration_list_is_kept_raw_on_its_row_only() -> None:
    records = v2024.customers(3)
    records[1]["integrationIds"] = "Xero:123"
    frame = to_frame(records, api_version="2024-07-30")
    assert frame["integrationIds__raw"].to_list() == [None, '"Xero:123"', None]
    assert frame["integrationIds"][0].to_list() == records[0]["integrationIds"]
    assert to_records(frame, api_version="2024-07-30") == records


def test_a_custom_property_key_holding_dots_round_trips() -> None:
    record = v2024.listed(customProperties={"sales.region": "EMEA", "tier": "gold"})
    frame = to_frame([record], api_version="2024-07-30")
    assert frame["customProperties.sales.region"].to_list() == ["EMEA"]
    assert to_records(frame) == [record]


def test_2024_pages_read_like_2024_records() -> None:
    records = v2024.customers(120)
    pages = [
        orjson.dumps({"items": records[i : i + 50], "pagination": {"totalResultSize": 120}})
        for i in range(0, 120, 50)
    ]
    assert_frame_equal(
        frame_from_pages(pages, api_version="2024-07-30"),
        to_frame(records, api_version="2024-07-30"),
    )


def test_the_environment_names_the_version_when_no_code_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEQUENCE_API_VERSION", "2024-07-30")
    assert "address.state" in to_frame([v2024.listed()]).columns
    monkeypatch.setenv("SEQUENCE_API_VERSION", "")
    assert "address.postCode" in to_frame([v2024.listed()]).columns


def test_an_unknown_version_is_refused_naming_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(fields.UnknownApiVersionError, match=r"'2031-01-01'.*seed, 2024-07-30"):
        to_frame([], api_version="2031-01-01")
    monkeypatch.setenv("SEQUENCE_API_VERSION", "2024-01-01")
    with pytest.raises(fields.UnknownApiVersionError, match=r"SEQUENCE_API_VERSION"):
        to_frame([])
