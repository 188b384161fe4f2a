"""Arbitrary edits to any column never crash planning and never send an invalid body.

Each edited row either yields a body that passes the write rules and is exactly the
fresh record plus the edited cells, or an error that names its id and the column at
fault.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequence_nb import fields
from sequence_nb.frames import to_frame
from sequence_nb.models import update_body_of, validate_update_body
from sequence_nb.plan import ChangePlan, plan_updates
from sequence_nb.sandbox.data import generate_customers
from tests.conftest import SandboxFactory, contract_client

RECORDS, _ = generate_customers(30, seed=31)
ORIGINAL = to_frame(RECORDS)

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "   ",
            "x" * 10_000,
            "Acme\x00Ltd",
            "bell\x07",
            "🎉🎉🎉",
            "שלום עולם",
            "مرحبا",
            "\u202eevil\u202c",
            "new\nline",
            "<script>alert(1)</script>",
            "Robert'); DROP TABLE customers;--",
        ]
    ),
)
HOSTILE_VALUE = st.one_of(
    HOSTILE_TEXT,
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
)


@st.composite
def hostile_edits(draw: st.DrawFn) -> list[tuple[int, str, Any]]:
    column = st.sampled_from(ORIGINAL.columns)
    row = st.integers(0, ORIGINAL.height - 1)
    return draw(st.lists(st.tuples(row, column, HOSTILE_VALUE), min_size=1, max_size=8))


def edited_frame(edits: list[tuple[int, str, Any]]) -> pl.DataFrame:
    """ORIGINAL with the edits applied; a value that fits no dtype turns its column to objects
    of the value's own type, as a careless pandas round trip or hand-made frame would."""
    frame = ORIGINAL
    for row, column, value in edits:
        values = frame[column].to_list()
        values[row] = value
        try:
            series = pl.Series(column, values, dtype=frame.schema[column], strict=True)
        except Exception:
            try:
                series = pl.Series(column, values, strict=False)
            except Exception:
                series = pl.Series(column, [repr(v) for v in values])
        frame = frame.with_columns(series)
    return frame


def expected_body(edited: pl.DataFrame, customer_id: str) -> dict[str, Any]:
    """The customer's fresh record with the cells of its row that ``edited`` changed, as a
    person means them: the same text in another Unicode normal form is no edit, and a
    blank or null cell clears its field (a sendable row blanks no required one)."""
    index = ORIGINAL["id"].to_list().index(customer_id)
    body = update_body_of(RECORDS[index])
    before, after = ORIGINAL.row(index, named=True), edited.row(index, named=True)
    for column, old in before.items():
        new = after[column]
        if column not in fields.SEED.editable_columns:  # a read-only column is never in a body
            continue
        if old == new or (isinstance(old, str) and isinstance(new, str) and _nfc(old) == _nfc(new)):
            continue
        _write(body, column, None if isinstance(new, str) and not new.strip() else new)
    return body


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _write(body: dict[str, Any], column: str, value: Any) -> None:
    """Set a dotted column (``address.town``) of a body; None removes it."""
    *parents, leaf = column.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    if value is None:
        body.pop(leaf, None)
    else:
        body[leaf] = value


def json_of(body: dict[str, Any]) -> bytes:
    """Canonical JSON: ``1``, ``1.0`` and ``true`` differ here, though equal in a dict."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def assert_every_row_is_valid_or_explained(plan: ChangePlan, edited: pl.DataFrame) -> None:
    for row in plan.rows:
        if row.sendable:
            validate_update_body(row.body, customer_id=row.id)
            assert json_of(row.body) == json_of(expected_body(edited, row.id)), row.changes
        else:
            assert row.problems
            for column, message in row.problems:
                assert column and message
    errors = plan.errors
    assert errors.filter(pl.col("message").is_null() | pl.col("column").is_null()).is_empty()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_edits())
def test_any_edit_plans_to_a_valid_body_or_a_named_error(
    edits: list[tuple[int, str, Any]],
) -> None:
    edited = edited_frame(edits)
    assert_every_row_is_valid_or_explained(plan_updates(ORIGINAL, edited), edited)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("legalName", "Acme\x00Ltd", "control character"),
        ("email", "🎉@", "not an email address"),
        ("address.country", "United Kingdom", "alpha-2"),
        ("taxStatus", 7, "not a valid value"),
        ("legalName", None, "Field required"),
    ],
)
def test_hostile_values_are_named_by_row_and_column(column: str, value: Any, message: str) -> None:
    plan = plan_updates(ORIGINAL, edited_frame([(3, column, value)]))
    (row,) = plan.rows
    assert row.id == ORIGINAL["id"][3]
    assert any(c == column and message in m for c, m in row.problems), row.problems


def test_a_list_column_where_text_belongs_is_reported_on_every_row() -> None:
    lists = pl.Series("label", [["a", "list"]] * ORIGINAL.height)
    plan = plan_updates(ORIGINAL, ORIGINAL.with_columns(lists))
    assert len(plan) == 0 and len(plan.rows) == ORIGINAL.height
    assert all(row.problems[0][0] == "label" for row in plan.rows)


def test_a_hostile_plan_sends_only_valid_bodies(make_sandbox: SandboxFactory, tmp_path) -> None:
    server = make_sandbox(records=RECORDS)
    edits = [(i, "label", v) for i, v in enumerate(["ok 🎉", "bad\x00", "שלום", "x" * 10_000])]
    edits += [(5, "email", "nope"), (6, "address.country", "Narnia"), (7, "id", "forged")]
    plan = plan_updates(ORIGINAL, edited_frame(edits))
    with contract_client(server) as client:
        result = plan.apply(client, journal=tmp_path / "journal.sqlite3")
    assert server.stats.rejected_bodies == 0
    assert result.counts()["updated"] == 3


def test_a_read_only_column_cast_by_another_rows_edit_is_not_in_the_body() -> None:
    edited = edited_frame([(0, "createdAt", 0), (2, "telephone", None)])
    assert_every_row_is_valid_or_explained(plan_updates(ORIGINAL, edited), edited)
