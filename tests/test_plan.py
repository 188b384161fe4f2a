"""plan_updates turns frame edits into full, validated bodies and reports the rest."""

from __future__ import annotations

import dataclasses
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from sequence_nb.frames import to_frame
from sequence_nb.models import update_body_of
from sequence_nb.plan import ChangePlan, FieldChange, PlanError, PlanFileError, plan_updates
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


def test_planning_100_edits_of_many_rows_reports_each(original: pl.DataFrame) -> None:
    edited = original.with_columns(pl.concat_str(pl.col("legalName"), pl.lit(" (2)")))
    plan = plan_updates(original, edited)
    assert len(plan) == original.height
    assert all(row.columns == ("legalName",) for row in plan.rows)


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
    assert document["schema_version"] == 1
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
