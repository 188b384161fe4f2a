"""sequence_nb.contacts: the contacts frame and the edits it carries."""

from __future__ import annotations

import copy
from typing import Any

import polars as pl
import pytest

from sequence_nb.contacts import CONTACT_COLUMNS, contact_edits, contacts_frame
from sequence_nb.errors import PlanError, SequenceError
from tests import v2024


def _record(customer_id: str, *contacts: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(v2024.CUSTOMER)
    record["id"] = customer_id
    record["contacts"] = list(contacts)
    return record


def _contact(n: int, preference: str = "STANDARD") -> dict[str, Any]:
    return {
        "id": f"contact-{n}",
        "name": f"Person {n}",
        "email": f"person{n}@example.com",
        "billingPreference": preference,
        "createdAt": "2022-06-28T16:47:00Z",
        "updatedAt": "2022-06-28T16:47:00Z",
    }


@pytest.fixture
def original() -> pl.DataFrame:
    records = [
        _record("a", _contact(1, "PRIMARY"), _contact(2)),
        _record("b", _contact(3, "PRIMARY")),
        _record("c"),
    ]
    return contacts_frame(records, api_version="2024-07-30")


def test_the_frame_has_a_row_per_contact_keyed_by_customer(original: pl.DataFrame) -> None:
    assert original.columns == list(CONTACT_COLUMNS)
    assert original.select("customerId", "id").rows() == [
        ("a", "contact-1"),
        ("a", "contact-2"),
        ("b", "contact-3"),
    ]
    assert original.schema["billingPreference"] == pl.Enum(["PRIMARY", "STANDARD", "NONE"])
    assert original["archivedAt"].to_list() == [None, None, None]


def test_the_documents_example_contact_reads_with_its_archive_time() -> None:
    frame = contacts_frame([v2024.CUSTOMER], api_version="2024-07-30")
    assert frame.row(0, named=True)["archivedAt"] == "2023-06-28T16:47:00Z"


def test_the_seed_version_has_no_contacts() -> None:
    with pytest.raises(SequenceError, match="2024-07-30"):
        contacts_frame([], api_version="seed")


def test_no_edit_is_no_change(original: pl.DataFrame) -> None:
    assert contact_edits(original, original.clone()).changes == {}


def test_an_email_edit_changes_that_customer_only(original: pl.DataFrame) -> None:
    edited = original.with_columns(
        pl.when(pl.col("id") == "contact-2")
        .then(pl.lit("new@example.com"))
        .otherwise(pl.col("email"))
        .alias("email")
    )
    changes = contact_edits(original, edited).changes
    assert list(changes) == ["a"]
    after = changes["a"].after
    assert [c["email"] for c in after] == ["person1@example.com", "new@example.com"]
    assert after[1]["id"] == "contact-2"  # the contact keeps its identity
    assert [c["email"] for c in changes["a"].before][1] == "person2@example.com"


def test_a_row_added_without_an_id_is_a_new_contact(original: pl.DataFrame) -> None:
    added = pl.DataFrame(
        {
            "customerId": ["c"],
            "name": ["Ann"],
            "email": ["ann@example.com"],
            "billingPreference": ["PRIMARY"],
        }
    )
    edited = pl.concat(
        [original.with_columns(pl.col("billingPreference").cast(pl.String)), added], how="diagonal"
    )
    changes = contact_edits(original, edited).changes
    assert list(changes) == ["c"]
    assert changes["c"].before == ()
    assert changes["c"].after == (
        {"name": "Ann", "email": "ann@example.com", "billingPreference": "PRIMARY"},
    )


def test_a_deleted_row_removes_the_contact_but_a_customer_left_out_keeps_its_own(
    original: pl.DataFrame,
) -> None:
    edited = original.filter(pl.col("id") != "contact-2")
    assert [c["id"] for c in contact_edits(original, edited).changes["a"].after] == ["contact-1"]
    only_a = original.filter(pl.col("customerId") == "a")
    left = contact_edits(original, only_a)
    assert left.changes == {}  # b is not in the edited frame: unchanged
    assert "1 customer(s) have contacts but no row" in left.notes[0][2]
    assert list(contact_edits(original, only_a, whole=["b"]).changes) == ["b"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (pl.lit("contact-9").alias("id"), "not in the original"),
        (pl.lit("contact-1").alias("id"), "listed twice"),
        (pl.lit("b").alias("customerId"), "belongs to customer 'a'"),
        (pl.lit(None, dtype=pl.String).alias("customerId"), "customerId is empty"),
    ],
)
def test_an_edit_no_body_can_carry_is_refused_naming_the_row(
    original: pl.DataFrame, change: pl.Expr, message: str
) -> None:
    edited = original.with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(change)
        .otherwise(pl.col(change.meta.output_name()))
    )
    with pytest.raises(PlanError, match=rf"row 1: .*{message}|row 1: {message}"):
        contact_edits(original, edited)
