"""plan_updates turns frame edits into full, validated bodies and reports the rest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from sequence_nb.errors import PlanError
from sequence_nb.frames import to_frame
from sequence_nb.models import update_body_of
from sequence_nb.plan import ChangePlan, FieldChange, PlanFileError, plan_updates
from sequence_nb.sandbox.data import generate_customers
from tests.test_hostile_input import ORIGINAL, edited_frame, hostile_edits


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    customers, planted = generate_customers(60, seed=2)
    dirty = {problem.id for problem in planted}
    return [record for record in customers if record["id"] not in dirty][:40]


@pytest.fixture
def original(records: list[dict[str, Any]]) -> pl.DataFrame:
    return to_frame(records)


def edit(frame: pl.DataFrame, row: int, column: str, value: Any) -> pl.DataFrame:
    """``frame`` with one cell replaced."""
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


def test_identical_frames_give_an_empty_plan_that_says_so(original: pl.DataFrame) -> None:
    plan = plan_updates(original, original.clone())
    assert len(plan) == 0 and not plan
    assert plan.summary() == "no changes"
    assert "No changes" in plan._repr_html_()
    assert plan.preview().is_empty() and plan.errors.is_empty()


def test_one_edit_gives_the_full_record_as_body(
    original: pl.DataFrame, records: list[dict[str, Any]]
) -> None:
    plan = plan_updates(original, edit(original, 3, "email", "new.address@example.org"))
    assert len(plan) == 1
    (row,) = plan.rows
    assert row.id == records[3]["id"]
    assert row.changes == (FieldChange("email", records[3]["email"], "new.address@example.org"),)
    assert row.body == dict(update_body_of(records[3]), email="new.address@example.org")


def test_nested_address_edit_lands_in_the_address_object(original: pl.DataFrame) -> None:
    plan = plan_updates(original, edit(original, 0, "address.town", "Leeds"))
    body = plan.rows[0].body
    assert body["address"]["town"] == "Leeds"
    assert body["address"]["line1"] == original["address.line1"][0]
    assert plan.rows[0].before["address"]["town"] == original["address.town"][0]


def test_rows_are_matched_by_id_not_position(original: pl.DataFrame) -> None:
    edited = edit(original, 5, "legalName", "Renamed Ltd").reverse()
    plan = plan_updates(original, edited)
    assert [row.id for row in plan.rows] == [original["id"][5]]


def test_an_invalid_value_is_reported_and_never_sendable(original: pl.DataFrame) -> None:
    plan = plan_updates(original, edit(original, 2, "email", "not-an-email"))
    assert len(plan) == 0 and len(plan.invalid) == 1
    errors = plan.errors.to_dicts()
    assert errors[0]["id"] == original["id"][2]
    assert errors[0]["column"] == "email"
    assert "not an email address" in errors[0]["message"]
    assert plan.preview()["status"].to_list() == ["invalid"]


@pytest.mark.parametrize("column", ["sequenceAccountId", "createdAt", "billingEmails"])
def test_edits_to_read_only_columns_are_errors(original: pl.DataFrame, column: str) -> None:
    value = {"sequenceAccountId": "other", "billingEmails": ["x@example.com"]}.get(column)
    if column == "createdAt":
        value = original["createdAt"][1].replace(year=2001)
    plan = plan_updates(original, edit(original, 1, column, value))
    assert len(plan) == 0
    assert plan.errors.select("column", "message").row(0) == (
        column,
        "is read-only: the API does not take it in an update",
    )


def test_an_edit_to_an_unknown_column_is_an_error(original: pl.DataFrame) -> None:
    frame = original.with_columns(pl.lit("2024-01-01T00:00:00Z").alias("archivedAt"))
    plan = plan_updates(frame, edit(frame, 0, "archivedAt", None))
    assert plan.errors["column"].to_list() == ["archivedAt"]


def test_added_and_removed_rows_are_reported_not_sent(original: pl.DataFrame) -> None:
    extra = original.head(1).with_columns(pl.lit("brand-new-id").alias("id"))
    edited = pl.concat([original.slice(1), extra])
    plan = plan_updates(original, edited)
    assert len(plan) == 0
    assert plan.added_ids == ("brand-new-id",)
    assert plan.removed_ids == (original["id"][0],)
    assert set(plan.errors["column"].to_list()) == {"(row)"}


def test_duplicate_and_missing_ids_in_the_edited_frame_are_reported(
    original: pl.DataFrame,
) -> None:
    edited = pl.concat([original, original.head(1)])
    edited = edit(edited, 5, "id", None)
    plan = plan_updates(original, edited)
    messages = plan.errors["message"].to_list()
    assert any("more than one row" in m for m in messages)
    assert any("row 5 of the edited frame has no id" in m for m in messages)
    assert len(plan) == 0


def test_an_emptied_optional_cell_clears_the_field(original: pl.DataFrame) -> None:
    row = next(i for i, value in enumerate(original["label"]) if value)
    plan = plan_updates(original, edit(original, row, "label", ""))
    assert len(plan) == 1
    assert "label" not in plan.rows[0].body


def test_an_emptied_required_cell_is_invalid(original: pl.DataFrame) -> None:
    plan = plan_updates(original, edit(original, 0, "legalName", "  "))
    assert plan.errors.select("column", "message").row(0) == ("legalName", "must not be empty")


def test_a_value_of_the_wrong_type_is_reported(original: pl.DataFrame) -> None:
    edited = original.with_columns(pl.col("taxStatus").cast(pl.String))
    edited = edit(edited, 4, "taxStatus", "taxed")
    plan = plan_updates(original, edited)
    assert plan.errors.select("id", "column").row(0) == (original["id"][4], "taxStatus")


def test_columns_missing_from_the_edited_frame_keep_their_values(
    original: pl.DataFrame, records: list[dict[str, Any]]
) -> None:
    edited = edit(original, 0, "label", "VIP").drop("telephone", "url")
    plan = plan_updates(original, edited)
    body = plan.rows[0].body
    assert body.get("telephone") == records[0].get("telephone")
    assert body.get("url") == records[0].get("url")


def test_extra_columns_are_ignored_and_listed(original: pl.DataFrame) -> None:
    plan = plan_updates(original, original.with_columns(pl.lit(1).alias("my_flag")))
    assert plan.ignored_columns == ("my_flag",)
    assert not plan
    assert plan.summary() == "no changes (ignored, not in the original frame: my_flag)"
    assert "my_flag" in plan._repr_html_()


def test_a_frame_without_ids_cannot_be_planned(original: pl.DataFrame) -> None:
    with pytest.raises(PlanError, match="no 'id' column"):
        plan_updates(original, original.drop("id"))


def test_preview_lists_each_edited_cell(original: pl.DataFrame) -> None:
    edited = edit(edit(original, 0, "address.town", "Leeds"), 0, "label", "VIP")
    preview = plan_updates(original, edited).preview()
    assert preview.columns == ["id", "legalName", "column", "old", "new", "status", "message"]
    assert preview["column"].to_list() == ["address.town", "label"]
    assert preview["new"].to_list() == ["Leeds", "VIP"]
    assert set(preview["status"]) == {"update"}


def test_requests_show_the_exact_calls_with_credentials_redacted(original: pl.DataFrame) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    (call,) = plan.requests("https://eu.sequencehq.com/api")
    assert call["method"] == "PUT"
    assert call["url"] == f"https://eu.sequencehq.com/api/customers/{original['id'][0]}"
    assert call["headers"]["Authorization"] == "Basic [REDACTED]"
    assert call["body"] == plan.rows[0].body
    assert call["headers"]["Idempotency-Key"] == plan.idempotency_key(plan.rows[0])


def test_html_view_marks_old_new_and_invalid_and_escapes_values(original: pl.DataFrame) -> None:
    edited = edit(original, 0, "label", "<script>alert(1)</script>")
    edited = edit(edited, 1, "email", "broken")
    page = plan_updates(original, edited)._repr_html_()
    assert "<del>" in page and "<ins>" in page and "snb-invalid" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "1 to update, 1 invalid" in page


def test_a_plan_survives_a_round_trip_through_a_file(original: pl.DataFrame, tmp_path) -> None:
    plan = plan_updates(original, edit(edit(original, 0, "label", "VIP"), 1, "email", "x"))
    again = ChangePlan.load(plan.save(tmp_path / "plan.json"))
    assert again == plan


def test_a_plan_cannot_be_changed_after_preview(original: pl.DataFrame) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rows[0].id = "other"  # type: ignore[misc]
    plan.rows[0].body["label"] = "tampered"
    assert plan.rows[0].body["label"] == "VIP"


def test_planning_100_edits_of_many_rows_reports_each() -> None:
    customers, planted = generate_customers(150, seed=2)
    dirty = {problem.id for problem in planted}
    original = to_frame([record for record in customers if record["id"] not in dirty])
    assert original.height > 100  # rows past the hundredth stay unedited
    renamed = pl.concat_str(pl.col("legalName"), pl.lit(" (2)"))
    first_100 = pl.int_range(pl.len()) < 100
    edited = original.with_columns(
        pl.when(first_100).then(renamed).otherwise(pl.col("legalName")).alias("legalName")
    )
    plan = plan_updates(original, edited)
    assert len(plan) == len(plan.rows) == 100
    names = original.head(100).select("id", "legalName").iter_rows()
    for row, (customer_id, name) in zip(plan.rows, names, strict=True):
        assert row.id == customer_id
        assert row.changes == (FieldChange("legalName", name, f"{name} (2)"),)
        assert row.body["legalName"] == f"{name} (2)"


def test_a_customer_with_several_billing_emails_is_never_planned_to_lose_them(
    records: list[dict[str, Any]],
) -> None:
    record = dict(records[0], billingEmails=[records[0]["billingEmail"], "ap@second.example"])
    original = to_frame([record, *records[1:]])
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    assert len(plan) == 0
    (column, message) = plan.rows[0].problems[0]
    assert column == "billingEmails"
    assert "writing would drop 'ap@second.example'" in message


# -- the plan file is exactly what was reviewed ------------------------------------------------


def saved(plan: ChangePlan, tmp_path: Path) -> dict[str, Any]:
    """The plan's file as JSON, to edit by hand."""
    document: dict[str, Any] = orjson.loads(plan.save(tmp_path / "plan.json").read_bytes())
    return document


def load_edited(document: dict[str, Any], tmp_path: Path) -> ChangePlan:
    path = tmp_path / "edited-plan.json"
    path.write_bytes(orjson.dumps(document))
    return ChangePlan.load(path)


def test_a_plan_file_names_its_schema_version_base_url_api_version_and_digest(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(
        original,
        edit(original, 0, "label", "VIP"),
        base_url="https://sandbox.sequencehq.com/api",
        api_version="2024-07-30",
    )
    document = saved(plan, tmp_path)
    assert document["schema_version"] == 2
    assert document["base_url"] == "https://sandbox.sequencehq.com/api"
    assert document["api_version"] == "2024-07-30"
    assert document["digest"] == plan.digest
    again = ChangePlan.load(tmp_path / "plan.json")
    assert (again.base_url, again.api_version) == (plan.base_url, plan.api_version)


def test_the_digest_survives_a_file_and_changes_with_any_row(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    assert plan.digest.startswith("sha256:") and len(plan.digest) == 7 + 64
    assert ChangePlan.load(plan.save(tmp_path / "plan.json")).digest == plan.digest
    other = plan_updates(original, edit(original, 0, "label", "VIP2"))
    assert other.digest != plan.digest
    assert plan.digest in repr(plan) and plan.digest in plan._repr_html_()


def test_a_hand_edited_body_is_refused(original: pl.DataFrame, tmp_path: Path) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["rows"][0]["body"]["label"] = "never previewed"
    with pytest.raises(PlanFileError, match="body") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == original["id"][0] and caught.value.field == "body"


def test_a_hand_edited_change_is_refused_even_with_a_matching_body(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["rows"][0]["changes"][0]["new"] = "Other"
    with pytest.raises(PlanFileError, match="body"):
        load_edited(document, tmp_path)
    document["rows"][0]["body"]["label"] = "Other"
    with pytest.raises(PlanFileError, match="digest") as caught:
        load_edited(document, tmp_path)
    assert caught.value.field == "digest"


def test_a_change_to_a_column_the_planner_refuses_is_refused(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    row = document["rows"][0]
    row["changes"].append({"column": "customerAliases", "old": None, "new": ["taken"]})
    row["body"]["customerAliases"] = ["taken"]
    with pytest.raises(PlanFileError, match="customerAliases") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == original["id"][0]


def test_a_row_retargeted_at_another_customer_is_refused(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["rows"][0]["id"] = original["id"][1]
    with pytest.raises(PlanFileError, match="before") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == original["id"][1] and caught.value.field == "id"


def test_a_customer_listed_twice_is_refused(original: pl.DataFrame, tmp_path: Path) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["rows"].append(document["rows"][0])
    with pytest.raises(PlanFileError, match="more than once") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == original["id"][0]


def test_stored_problems_are_rebuilt_not_trusted(original: pl.DataFrame, tmp_path: Path) -> None:
    plan = plan_updates(original, edit(original, 1, "email", "not-an-email"))
    document = saved(plan, tmp_path)
    assert document["rows"][0]["problems"]
    document["rows"][0]["problems"] = []
    with pytest.raises(PlanFileError, match="problems") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == original["id"][1]


def test_an_old_value_the_before_image_does_not_hold_is_refused(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["rows"][0]["changes"][0]["old"] = "something else"
    with pytest.raises(PlanFileError, match="before-image holds") as caught:
        load_edited(document, tmp_path)
    assert caught.value.field == "changes.label.old"


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda d: d["rows"][0].pop("before"), "rows.0.before"),
        (lambda d: d["rows"][0]["changes"].__setitem__(0, "label"), "rows.0.changes.0"),
        (lambda d: d["rows"][0].__setitem__("id", 7), "rows.0.id"),
        (lambda d: d.__setitem__("schema_version", 99), "schema_version"),
        (lambda d: d.__setitem__("surprise", True), "surprise"),
    ],
)
def test_a_malformed_plan_file_names_the_field_never_a_bare_key_or_type_error(
    original: pl.DataFrame, tmp_path: Path, damage: Any, field: str
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    damage(document)
    with pytest.raises(PlanFileError) as caught:
        load_edited(document, tmp_path)
    assert field in str(caught.value)


def test_a_value_json_cannot_carry_back_is_a_plan_file_error(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["rows"][0]["before"]["huge"] = "HUGE"
    text = orjson.dumps(document).replace(b'"HUGE"', b"1" * 30)
    (tmp_path / "plan.json").write_bytes(text)
    with pytest.raises(PlanFileError, match="cannot be written back as JSON") as caught:
        ChangePlan.load(tmp_path / "plan.json")
    assert caught.value.row == original["id"][0]


def test_a_file_that_is_not_json_is_a_plan_file_error(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(PlanFileError, match="not JSON"):
        ChangePlan.load(tmp_path / "plan.json")


def test_a_plan_with_invalid_and_uncastable_rows_survives_a_file(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    edited = original.with_columns(pl.col("taxStatus").cast(pl.String))
    edited = edit(edit(edited, 4, "taxStatus", "taxed"), 1, "createdAt", None)
    edited = edit(edited, 2, "email", "broken")
    plan = plan_updates(original, edited)
    assert len(plan.invalid) == 3
    again = ChangePlan.load(plan.save(tmp_path / "plan.json"))
    assert again.digest == plan.digest
    assert again.preview().equals(plan.preview()) and again.errors.equals(plan.errors)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_edits())
def test_every_plan_the_planner_makes_loads_back_with_its_digest(
    edits: list[tuple[int, str, Any]],
) -> None:
    plan = plan_updates(ORIGINAL, edited_frame(edits))
    again = ChangePlan.from_json(plan.to_json())
    assert again.digest == plan.digest
    assert again.preview().equals(plan.preview()) and again.errors.equals(plan.errors)


# -- no silent casts ---------------------------------------------------------------------------


def test_a_postcode_read_back_as_a_number_is_an_error_naming_the_column(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    codes = pl.Series("address.postCode", [f"{2169 + i:05d}" for i in range(original.height)])
    boston = original.with_columns(codes)
    boston.select("id", "address.postCode", "label").write_csv(tmp_path / "edited.csv")
    edited = pl.read_csv(tmp_path / "edited.csv")
    assert edited["address.postCode"][0] == 2169  # how the file reads by default
    with pytest.raises(PlanError, match=r"'address\.postCode'") as caught:
        plan_updates(boston, edited)
    assert "as text" in str(caught.value) and "infer_schema=False" in str(caught.value)


def test_a_boolean_where_text_was_is_an_error(original: pl.DataFrame) -> None:
    edited = original.with_columns(pl.lit(True).alias("label"))
    with pytest.raises(PlanError, match=r"'label'.*Boolean"):
        plan_updates(original, edited)


def test_lossless_casts_pass_silently(original: pl.DataFrame) -> None:
    edited = original.with_columns(
        pl.col("label").cast(pl.Categorical),
        pl.col("taxStatus").cast(pl.String),
        pl.col("contactName").cast(pl.Categorical),
    )
    assert not plan_updates(original, edited)


@pytest.mark.parametrize(
    "cells",
    [
        pl.Series("label", [{"a": "x"}, {"a": "y"}]),
        pl.Series("label", [["x"], ["y"]]),
        pl.Series("label", [["x"], ["y"]], dtype=pl.Array(pl.String, 1)),
    ],
    ids=["struct", "list", "array"],
)
def test_a_nested_value_where_text_was_is_reported_by_row_never_sent_as_text(
    original: pl.DataFrame, cells: pl.Series
) -> None:
    two = original.head(2)
    plan = plan_updates(two, two.with_columns(cells))
    assert not plan.sendable  # a struct cast to text reads '{"x"}': its keys are lost
    assert plan.errors["column"].to_list() == ["label", "label"]
    assert plan.errors["id"].to_list() == two["id"].to_list()


def test_a_number_that_would_lose_its_fraction_is_reported_not_truncated(
    original: pl.DataFrame,
) -> None:
    frame = original.with_columns(pl.lit(1, dtype=pl.Int64).alias("score"))
    edited = frame.with_columns(pl.lit(1.0).alias("score"))
    edited = edit(edited, 3, "score", 1.5)
    plan = plan_updates(frame, edited)
    assert not plan.sendable
    (row,) = plan.rows
    assert row.id == original["id"][3] and row.changes[0].new == "1.5"
    assert ("score", "'1.5' is not a valid value for this column") in row.problems


# -- Unicode -----------------------------------------------------------------------------------


def test_text_differing_only_in_unicode_normal_form_is_no_edit(
    records: list[dict[str, Any]],
) -> None:
    composed = [dict(records[0], legalName="Café Crème Ltd"), *records[1:]]
    original = to_frame(composed)
    decomposed = edit(original, 0, "legalName", unicodedata.normalize("NFD", "Café Crème Ltd"))
    assert not decomposed["legalName"].equals(original["legalName"])
    assert not plan_updates(original, decomposed)
    renamed = edit(decomposed, 1, "legalName", "Renamed Ltd")
    assert [row.id for row in plan_updates(original, renamed).rows] == [original["id"][1]]


def test_a_real_edit_written_in_another_normal_form_is_still_an_edit(
    original: pl.DataFrame,
) -> None:
    new = unicodedata.normalize("NFD", "Société Générale")
    plan = plan_updates(original, edit(original, 2, "legalName", new))
    assert plan.rows[0].changes[0].new == new


# -- hostile input, round 2 --------------------------------------------------------------------


def with_values(records: list[dict[str, Any]], changes: dict[int, dict[str, Any]]) -> pl.DataFrame:
    """A frame of ``records`` with some fields replaced, as a file written by a tool reads."""
    rows = [dict(record, **changes.get(i, {})) for i, record in enumerate(records)]
    return to_frame(rows)


def test_a_number_or_boolean_in_an_edited_file_is_an_error_never_a_cleared_field(
    records: list[dict[str, Any]],
) -> None:
    original = to_frame(records[:4])
    typed = {
        0: {"telephone": 7700900123},
        1: {"label": True},
        2: {"label": "edited on purpose"},
        3: {"address": dict(records[3]["address"], town=["Leeds"])},
    }
    plan = plan_updates(original, with_values(records[:4], typed))
    assert plan.ignored_columns == ()
    problems = {row.id: dict(row.problems) for row in plan.rows}
    first, second, third, fourth = (record["id"] for record in records[:4])
    assert problems[first]["telephone"].startswith("holds 7700900123, a number, where text belongs")
    assert problems[second]["label"].startswith("holds true, a boolean, where text belongs")
    assert problems[fourth]["address.town"].startswith('holds ["Leeds"], a list, where text')
    assert [row.id for row in plan.sendable] == [third]
    telephone = next(row for row in plan.rows if row.id == first).changes
    assert telephone == (FieldChange("telephone", records[0].get("telephone"), 7700900123),)


def test_a_fixed_wrong_typed_value_keeps_its_old_value_and_its_plan_reloads(
    records: list[dict[str, Any]],
) -> None:
    bad = {0: {"legalName": 123}, 1: {"address": dict(records[1]["address"], town=5)}}
    original = with_values(records[:3], bad)
    edited = edit(edit(original, 0, "legalName", "Fixed Name Ltd"), 1, "address.town", "Leeds")
    plan = plan_updates(original, edited)
    assert len(plan) == 2
    assert plan.rows[0].changes == (FieldChange("legalName", 123, "Fixed Name Ltd"),)
    assert plan.rows[1].changes == (FieldChange("address.town", 5, "Leeds"),)
    assert plan.rows[0].legal_name == "123"
    assert plan.preview()["old"].to_list() == ["123", "5"]
    assert ChangePlan.from_json(plan.to_json()) == plan


def test_a_plan_file_saved_with_a_number_as_legal_name_still_loads(
    records: list[dict[str, Any]], tmp_path: Path
) -> None:
    original = with_values(records[:2], {0: {"legalName": 123}})
    plan = plan_updates(original, edit(original, 0, "legalName", "Fixed Name Ltd"))
    document = saved(plan, tmp_path)
    document["rows"][0]["legal_name"] = 123  # as the planner wrote it before
    assert load_edited(document, tmp_path) == plan
    document["rows"][0]["legal_name"] = "Somebody Else Ltd"
    with pytest.raises(PlanFileError, match="legal_name"):
        load_edited(document, tmp_path)


def _wrong_type_cases() -> list[Any]:
    from tests.test_frames import WRONG_TYPES

    return WRONG_TYPES


@pytest.mark.parametrize(("field", "value", "raw"), _wrong_type_cases())
def test_every_plan_over_a_wrong_typed_record_saves_and_loads_back(
    field: str, value: Any, raw: str
) -> None:
    from tests.test_frames import with_one_bad_record

    bad = to_frame(with_one_bad_record(field, value))
    clean = to_frame(with_one_bad_record("label", "Example customer"))
    fixed = field if field in bad.columns and bad.schema[field] == pl.String else "label"
    plans = [
        plan_updates(bad, bad.with_columns(pl.lit("relabelled").alias("label"))),
        plan_updates(bad, bad.with_columns(pl.lit("Fixed").alias(fixed))),
        plan_updates(clean, bad),  # the edited data typed a value the original has as text
        plan_updates(bad, clean),
    ]
    assert not plan_updates(bad, bad.clone())
    for plan in plans:
        again = ChangePlan.from_json(plan.to_json())
        assert again.digest == plan.digest
        assert again.preview().equals(plan.preview()) and again.errors.equals(plan.errors)
    misfit = plans[2]
    assert misfit.ignored_columns == () and len(misfit) == 0
    assert [row.id for row in misfit.rows] == ["1"]


def test_undo_of_a_fixed_wrong_typed_value_names_the_value_instead_of_clearing_it(
    records: list[dict[str, Any]],
) -> None:
    current = to_frame(records[:2])  # Sequence after the fix
    restored = with_values(records[:2], {0: {"legalName": 123}})  # what undo would write back
    plan = plan_updates(current, restored)
    (row,) = plan.rows
    assert not row.sendable
    assert dict(row.problems)["legalName"].startswith("holds 123, a number, where text belongs")


# -- unedited round trips plan nothing -----------------------------------------------------------


def test_an_empty_text_and_a_null_are_the_same_value(records: list[dict[str, Any]]) -> None:
    original = with_values(records[:3], {0: {"label": ""}})
    assert not plan_updates(original, edit(original, 0, "label", None))
    assert not plan_updates(edit(original, 0, "label", None), original)
    blank = to_frame(records[:3]).with_columns(pl.col("contactName", "url").fill_null(""))
    assert not plan_updates(to_frame(records[:3]), blank)


@pytest.mark.parametrize("word", ["NA", "N/A", "null", "None", "nan"])
def test_a_null_where_a_missing_value_word_was_is_an_error_naming_the_cell(
    records: list[dict[str, Any]], word: str
) -> None:
    original = with_values(records[:3], {1: {"contactName": word}})
    plan = plan_updates(original, edit(original, 1, "contactName", None))
    (row,) = plan.rows
    assert row.id == records[1]["id"] and not row.sendable
    message = dict(row.problems)["contactName"]
    assert f"{word!r}" in message and "missing value" in message
    again = ChangePlan.from_json(plan.to_json())
    assert again == plan


def test_a_wrong_typed_value_is_cleared_by_emptying_its_raw_cell_too(
    records: list[dict[str, Any]],
) -> None:
    original = with_values(records[:2], {0: {"telephone": 2010001000}})
    for cell in ("", None, " "):
        emptied = edit(edit(original, 0, "telephone", cell), 0, "telephone__raw", None)
        (row,) = plan_updates(original, emptied).sendable
        assert row.changes == (FieldChange("telephone", 2010001000, cell),)
        assert "telephone" not in row.body


def test_a_wrong_typed_value_is_cleared_by_a_space_written_on_purpose(
    records: list[dict[str, Any]],
) -> None:
    original = with_values(records[:2], {0: {"telephone": 2010001000}})
    for edited in (edit(original, 0, "telephone", " "), original.drop("telephone__raw")):
        edited = edit(edited, 0, "telephone", " ")
        (row,) = plan_updates(original, edited).sendable
        assert row.changes == (FieldChange("telephone", 2010001000, " "),)
        assert "telephone" not in row.body


def test_an_empty_text_never_clears_a_value_kept_in_a_raw_column(
    records: list[dict[str, Any]],
) -> None:
    """A reader that gives "" for every empty cell (pandas with keep_default_na=False) leaves
    the raw cell as it was: the user never touched the field, so it is no edit."""
    original = with_values(records[:3], {0: {"telephone": 2010001000}})
    texts = [c for c, t in original.schema.items() if t == pl.String and "__" not in c]
    as_read = original.with_columns(pl.col(texts).exclude("id").fill_null(""))
    assert not plan_updates(original, as_read)
    assert not plan_updates(original, as_read.drop("telephone__raw"))
    relabelled = edit(as_read, 0, "label", "relabelled")
    (row,) = plan_updates(original, relabelled).rows
    assert row.columns == ("label",)
    assert row.body["telephone"] == 2010001000 and not row.sendable  # reported, not cleared


# -- invisible text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("VIP\u200b", "VIP\\u200b"),
        ("\u202edtL emcA", "\\u202edtL emcA"),
        ("VIP\ufeff", "VIP\\ufeff"),
        ("VIP\n", "VIP\\n"),
        ("V\tIP", "V\\tIP"),
    ],
)
def test_invisible_characters_are_refused_and_shown_escaped(
    original: pl.DataFrame, text: str, shown: str
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", text))
    assert len(plan) == 0 and len(plan.invalid) == 1
    assert plan.preview()["new"].to_list() == [shown]
    assert shown.replace("\\", "\\\\") not in plan._repr_html_()  # shown once, not twice escaped
    assert shown in plan._repr_html_()


@pytest.mark.parametrize(
    ("char", "sendable"),
    [
        ("\u034f", False),
        ("\u3164", False),
        ("\uffa0", False),
        ("\u115f", False),
        ("\u1160", False),
        ("\u2800", False),
        ("\U000e0100", False),
        ("\ufe0f", True),
        ("\u180b", True),
        ("\u200d", True),
    ],
)
def test_characters_that_show_as_nothing_are_shown_escaped_whether_or_not_they_are_sent(
    original: pl.DataFrame, char: str, sendable: bool
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP" + char))
    escape = char.encode("unicode_escape").decode("ascii")
    assert len(plan) == int(sendable) and len(plan.rows) == 1
    assert plan.preview()["new"].to_list() == ["VIP" + escape]
    assert char not in plan._repr_html_() and escape in plan._repr_html_()


def test_a_backslash_is_shown_doubled_so_no_text_can_pose_as_an_escape(
    original: pl.DataFrame,
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP\\u200b"))
    assert len(plan) == 1
    assert plan.preview()["new"].to_list() == ["VIP\\\\u200b"]


#: Text that would move a terminal's cursor, erase lines or start new ones if printed raw.
FORGING = "x\x1b[2A\x1b[2K\rfine\nnext"
FORGING_SHOWN = "x\\x1b[2A\\x1b[2K\\rfine\\nnext"


def test_ids_columns_notes_and_ignored_columns_are_shown_escaped(
    original: pl.DataFrame,
) -> None:
    first = original["id"][0]
    frame = original.head(3).with_columns(
        pl.when(pl.col("id") == first).then(pl.lit(FORGING)).otherwise(pl.col("id")).alias("id"),
        pl.lit("a").alias("odd" + FORGING),
    )
    edited = pl.concat([frame, frame.tail(1).with_columns(pl.lit("new" + FORGING).alias("id"))])
    edited = edit(edit(edited, 0, "label", "VIP"), 1, "odd" + FORGING, "b")
    edited = edit(edited, 1, "label", "VIP").with_columns(pl.lit(1).alias("extra" + FORGING))
    plan = plan_updates(frame, edited)
    assert {row.id for row in plan.rows} == {FORGING, original["id"][1]}
    shown = plan.preview().select("id", "column", "message").rows()
    assert shown[0] == (FORGING_SHOWN, "label", None)
    messages = {column: message for _, column, message in shown[1:]}
    assert set(messages) == {"label", "odd" + FORGING_SHOWN}
    assert messages["label"].startswith("odd" + FORGING_SHOWN + " is not a field")
    assert "extra" + FORGING_SHOWN in plan.summary() and FORGING not in plan.summary()
    page = plan._repr_html_()
    assert "\x1b" not in page and "\n" + "next" not in page
    assert "new" + FORGING_SHOWN in page and "extra" + FORGING_SHOWN in page
    assert "\x1b" not in repr(dataclasses.replace(plan, plan_id=FORGING))


def test_a_change_only_in_unicode_normal_form_is_refused_in_a_plan_file(
    records: list[dict[str, Any]], tmp_path: Path
) -> None:
    original = with_values(records[:2], {0: {"legalName": "Café Ltd"}})
    plan = plan_updates(original, edit(original, 1, "label", "VIP"))
    document = saved(plan, tmp_path)
    row = orjson.loads(plan_updates(original, edit(original, 0, "label", "VIP")).to_json())
    row = row["rows"][0]
    row["changes"].append(
        {"column": "legalName", "old": "Café Ltd", "new": unicodedata.normalize("NFD", "Café Ltd")}
    )
    row["body"]["legalName"] = unicodedata.normalize("NFD", "Café Ltd")
    document["rows"].append(row)
    with pytest.raises(PlanFileError, match="normal form") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == records[0]["id"] and caught.value.field == "changes.legalName"


# -- the plan file holds no loose ends --------------------------------------------------------


def test_a_plan_file_with_a_repeated_json_key_is_refused(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    text = plan.to_json().decode().replace('"new": "VIP"', '"new": "VIP",\n "new": "EVIL"', 1)
    assert '"new": "EVIL"' in text
    with pytest.raises(PlanFileError, match="'new' more than once"):
        ChangePlan.from_json(text)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("plan_id", "another-plan"),
        ("created_at", "1970-01-01T00:00:00Z"),
        ("notes", [{"id": None, "column": "(row)", "message": "checked by Finance"}]),
        ("ignored_columns", ["creditLimit"]),
        ("added_ids", ["zzz"]),
        ("removed_ids", ["yyy"]),
    ],
)
def test_every_part_of_a_plan_file_is_under_its_digest(
    original: pl.DataFrame, tmp_path: Path, name: str, value: Any
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document[name] = value
    with pytest.raises(PlanFileError, match="digest") as caught:
        load_edited(document, tmp_path)
    assert caught.value.field == "digest"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("notes", [{"id": None, "column": "x", "message": "\ud800"}]),
        ("notes", [{"id": "\udfff", "column": "(row)", "message": "m"}]),
        ("plan_id", "\udfff"),
        ("created_at", "2024\ud800"),
        ("ignored_columns", ["\ud800"]),
        ("added_ids", ["\ud800"]),
        ("removed_ids", ["\ud800"]),
    ],
)
def test_a_lone_surrogate_in_a_plan_file_header_is_a_plan_file_error_naming_the_part(
    original: pl.DataFrame, name: str, value: Any
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = orjson.loads(plan.to_json())
    text = json.dumps(dict(document, **{name: value}))  # json writes a lone surrogate as \\ud800
    with pytest.raises(PlanFileError, match="surrogate") as caught:
        ChangePlan.from_json(text)
    assert caught.value.field == name and str(caught.value).count("\n") == 0


def test_an_original_frame_with_ids_that_are_not_text_is_a_plan_error(
    original: pl.DataFrame,
) -> None:
    numbered = original.with_columns(pl.int_range(pl.len()).alias("id"))
    with pytest.raises(PlanError, match="'id' column of the original frame holds Int64, not text"):
        plan_updates(numbered, original)


@pytest.mark.parametrize("version", [True, 1.0, "2", 3])
def test_the_schema_version_must_be_an_integer_this_module_reads(
    original: pl.DataFrame, tmp_path: Path, version: Any
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    document["schema_version"] = version
    with pytest.raises(PlanFileError, match="schema_version"):
        load_edited(document, tmp_path)


@pytest.mark.parametrize("bad_id", ["", ".", "..", "a/b"])
def test_an_id_no_request_can_carry_is_never_sendable(
    records: list[dict[str, Any]], tmp_path: Path, bad_id: str
) -> None:
    original = with_values(records[:2], {0: {"id": bad_id}})
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    (row,) = plan.rows
    assert not row.sendable and dict(row.problems)["id"].startswith(f"customer id {bad_id!r}")
    assert ChangePlan.from_json(plan.to_json()) == plan
    good = plan_updates(original, edit(original, 1, "label", "VIP"))
    document = saved(good, tmp_path)
    document["rows"][0]["id"] = document["rows"][0]["before"]["id"] = bad_id
    with pytest.raises(PlanFileError, match="problems") as caught:
        load_edited(document, tmp_path)
    assert caught.value.row == bad_id


def test_a_customer_listed_twice_in_other_letter_case_is_refused(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    document = saved(plan, tmp_path)
    twin = orjson.loads(orjson.dumps(document["rows"][0]))
    twin["id"] = twin["before"]["id"] = twin["id"].upper()
    document["rows"].append(twin)
    with pytest.raises(PlanFileError, match="more than once"):
        load_edited(document, tmp_path)


def test_a_saved_plan_is_readable_by_its_owner_only(original: pl.DataFrame, tmp_path: Path) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    target = tmp_path / "plan.json"
    target.write_text("older, world-readable")
    target.chmod(0o644)
    previous = os.umask(0o022)
    try:
        written = plan.save(target)
    finally:
        os.umask(previous)
    assert written.stat().st_mode & 0o777 == 0o600
    assert ChangePlan.load(written) == plan


def test_a_plan_is_never_saved_over_what_is_no_regular_file(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    device = tmp_path / "null.json"  # as --save-plan /dev/null would name one
    os.mkfifo(device, 0o666)
    with pytest.raises(OSError, match="not a regular file"):
        plan.save(device)
    assert stat.S_ISFIFO(device.lstat().st_mode)  # not replaced by a file
    assert [p.name for p in tmp_path.iterdir()] == [device.name]


def test_a_plan_file_of_schema_version_1_loads_by_the_digest_it_was_saved_with(
    original: pl.DataFrame, tmp_path: Path
) -> None:
    """Runs journaled before version 2 can still be resumed and undone."""
    plan = plan_updates(original, edit(original, 0, "label", "VIP"), base_url="http://127.0.0.1")
    document = saved(plan, tmp_path)
    legacy = hashlib.sha256(orjson.dumps([plan.base_url, plan.api_version]))
    for row in document["rows"]:
        changes = [[c["column"], c["old"], c["new"]] for c in row["changes"]]
        line = [row["id"], changes, row["before"], row["body"]]
        legacy.update(b"\n" + orjson.dumps(line, option=orjson.OPT_SORT_KEYS))
    document.update(schema_version=1, digest="sha256:" + legacy.hexdigest())
    assert load_edited(document, tmp_path) == plan
    document["rows"][0]["changes"][0]["new"] = document["rows"][0]["body"]["label"] = "Other"
    with pytest.raises(PlanFileError, match="digest"):
        load_edited(document, tmp_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: t.replace(b'"new": "VIP"', b'"new": ' + b"1" * 5000, 1), "not JSON"),
        (lambda t: t.replace(b'"new": "VIP"', b'"new": NaN', 1), "NaN"),
        (lambda t: t.replace(b'"line1":', b'"x": ' + b"[" * 900 + b"]" * 900 + b', "line1":', 1),
         "nested too deeply"),
        (lambda t: t.decode().encode("utf-16"), "not UTF-8"),
    ],
)  # fmt: skip
def test_a_plan_file_readers_could_disagree_on_is_a_plan_file_error(
    original: pl.DataFrame, damage: Any, message: str
) -> None:
    plan = plan_updates(original, edit(original, 0, "label", "VIP"))
    with pytest.raises(PlanFileError, match=message):
        ChangePlan.from_json(damage(plan.to_json()))


def test_a_column_made_object_by_one_edit_lists_no_change_for_the_values_it_kept() -> None:
    # Found by hypothesis: False written into createdAt turns the column to Object,
    # and every other row's unchanged moment was listed as a change to the same text.
    plan = plan_updates(ORIGINAL, edited_frame([(0, "createdAt", False)]))
    assert [row.id for row in plan.rows] == [ORIGINAL["id"][0]]
    assert ChangePlan.from_json(plan.to_json()).digest == plan.digest


@pytest.mark.parametrize("micros", [253_402_300_800_000_000, -62_135_596_800_000_001])
def test_a_number_cast_to_a_moment_python_cannot_hold_is_refused_not_a_crash(micros: int) -> None:
    # Found by hypothesis: years 0 and 10000 crashed the planner (OverflowError, ValueError).
    plan = plan_updates(ORIGINAL, edited_frame([(0, "createdAt", micros)]))
    assert [row.id for row in plan.rows] == [ORIGINAL["id"][0]] and not plan.sendable
    assert plan.errors["column"].to_list() == ["createdAt"]
