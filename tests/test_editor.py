"""CustomerEditor in Python: edits arrive as the browser sends them, keyed by customer id.

Edits are driven through the grid's own message handler with the custom message the
browser sends (``event_type: "cell-changed"``, ``row``, ``column_index`` not counting
the index, ``value``), so the code path is the one a person's edit takes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from jupyter_client.session import json_packer, orjson_packer

from sequence_nb import SequenceClient, fields
from sequence_nb.contacts import contacts_frame, fetch_contacts
from sequence_nb.editor import CustomerEditor, EditState, ReadOnlyColumnError
from sequence_nb.editor.contacts import ContactEditError
from sequence_nb.editor.grid import STATUS, shown, status_text
from sequence_nb.frames import fetch_customers, to_frame
from sequence_nb.quality import check
from sequence_nb.sandbox import Sandbox
from sequence_nb.sandbox import start as start_sandbox
from tests import v2024
from tests.conftest import contract_client

# -- helpers -----------------------------------------------------------------------------------


def browser_message(editor: CustomerEditor, content: dict[str, Any]) -> None:
    """Deliver a custom message to the grid exactly as it comes from the browser."""
    message = {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    editor.grid._handle_msg(message)


def edit_cell(editor: CustomerEditor, row: int, column: str, value: Any) -> None:
    """What the browser sends when a person edits a cell: ``row`` is the position in the
    frame the grid was given, ``column_index`` counts the body columns only."""
    index = editor.grid.body_columns().index(column)
    browser_message(
        editor,
        {"event_type": "cell-changed", "row": row, "column_index": index, "value": value},
    )


def click_cell(editor: CustomerEditor, row: int, column: str) -> None:
    index = editor.grid.body_columns().index(column)
    browser_message(
        editor,
        {
            "event_type": "cell-click",
            "region": "body",
            "column": column,
            "column_index": index,
            "row": row,
            "primary_key_row": row,
            "cell_value": None,
        },
    )


def grid_value(editor: CustomerEditor, customer_id: str, column: str) -> Any:
    """The value the kernel-side grid holds for a customer's cell."""
    row = editor.grid.ids.index(customer_id)
    return editor.grid._data["data"].at[row, column]


def shown_row(editor: CustomerEditor, customer_id: str) -> tuple[str, dict[str, str]]:
    """What the browser shows for a customer's row: the status label and the mark code
    of each marked cell, from the values it holds (the renderers' rules, in Python)."""
    grid = editor.grid
    row = {c: grid_value(editor, customer_id, c) for c in grid.body_columns()[1:]}
    label, codes = shown(grid.status_at(grid.ids.index(customer_id)), row, grid.local)
    return label, {column: code for column, code in codes if code}


def with_legal_name(frame: pl.DataFrame, row: int, name: str) -> pl.DataFrame:
    """``frame`` with one row's legal name replaced."""
    at_row = pl.int_range(pl.len()) == row
    return frame.with_columns(
        pl.when(at_row).then(pl.lit(name)).otherwise(pl.col("legalName")).alias("legalName")
    )


def value_of(frame: pl.DataFrame, customer_id: str, column: str) -> Any:
    return frame.filter(pl.col("id") == customer_id).get_column(column).item()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Messages the kernel sends to grids (patched per editor by ``record_sends``)."""
    return []


def record_sends(editor: CustomerEditor, sent: list[dict[str, Any]]) -> None:
    editor.grid.send = lambda content, buffers=None: sent.append(content)


@pytest.fixture(scope="module")
def frame(sandbox: Sandbox) -> pl.DataFrame:
    """The sandbox's customers as first read (tests edit distinct rows)."""
    with contract_client(sandbox) as client:
        return to_frame(client.list_customers())


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[SequenceClient]:
    with contract_client(sandbox) as sequence:
        yield sequence


def fresh_frame(sandbox: Sandbox) -> pl.DataFrame:
    with contract_client(sandbox) as client:
        return to_frame(client.list_customers())


# -- the grid ----------------------------------------------------------------------------------


def test_grid_shows_status_and_editable_columns_with_ids_as_row_headers(
    frame: pl.DataFrame,
) -> None:
    editor = CustomerEditor(frame.head(20))
    assert editor.grid.body_columns()[0] == STATUS
    assert editor.grid.body_columns()[1:] == editor.columns
    assert "createdAt" not in editor.columns and "id" not in editor.columns
    assert editor.grid.ids == frame.head(20)["id"].to_list()
    assert editor.grid.editable
    assert editor.counts()["rows"] == 20


def test_data_goes_to_the_browser_as_plain_lists_with_nulls(frame: pl.DataFrame) -> None:
    editor = CustomerEditor(frame.head(10))
    state, _, buffers = _remove_buffers(editor.grid.get_state("_data"))  # as ipywidgets does
    assert len(buffers) == 1  # the row numbers, as bytes
    for packer in (orjson_packer, json_packer):  # as the kernel packs the message
        packed = orjson.loads(packer(state))["_data"]["data"]
        assert packed["email"] == frame.head(10)["email"].to_list()
        lines = packed["address.line2"]
        assert None in lines and all(v is None or isinstance(v, str) for v in lines)


def test_a_browser_edit_changes_that_customer(frame: pl.DataFrame) -> None:
    editor = CustomerEditor(frame.head(30))
    target = frame["id"][4]
    edit_cell(editor, 4, "email", "new.address@example.com")
    assert value_of(editor.edited, target, "email") == "new.address@example.com"
    assert editor.counts()["changed"] == 1
    changed = editor.edited.filter(pl.col("email") != frame.head(30)["email"])
    assert changed["id"].to_list() == [target]
    assert "c:email" in editor.state.marks(target)
    assert "new.address@example.com" in editor.message.value


def test_sorting_then_editing_changes_the_right_customer(frame: pl.DataFrame) -> None:
    """ipydatagrid #340: after a sort the browser still sends the row's position in the
    frame it was given. Mapping through the on-screen order would edit someone else."""
    editor = CustomerEditor(frame.head(30))
    names = frame.head(30)["legalName"].to_list()
    on_screen = sorted(range(30), key=lambda i: names[i])  # the browser sorted by name
    editor.grid._visible_rows = on_screen  # what the browser syncs back after sorting
    first_on_screen = on_screen[0]
    assert first_on_screen != 0
    target = frame["id"][first_on_screen]
    edit_cell(editor, first_on_screen, "telephone", "+44 20 7946 0018")
    assert list(editor.state.edits) == [target]
    assert value_of(editor.edited, target, "telephone") == "+44 20 7946 0018"


def test_editing_a_filtered_grid_changes_the_right_customer(frame: pl.DataFrame) -> None:
    editor = CustomerEditor(frame.head(50))
    wanted = frame["legalName"][37]
    editor.show(text=wanted.upper())  # the filter ignores case
    assert frame["id"][37] in editor.grid.ids
    row = editor.grid.ids.index(frame["id"][37])
    edit_cell(editor, row, "label", "Key account")
    assert list(editor.state.edits) == [frame["id"][37]]
    editor.show(text="")
    assert len(editor.grid.ids) == 50


def test_read_only_edit_is_refused_and_reverted(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    editor = CustomerEditor(frame.head(10), columns=["legalName", "email", "createdAt"])
    record_sends(editor, sent)
    before = grid_value(editor, frame["id"][2], "createdAt")
    edit_cell(editor, 2, "createdAt", "2030-01-01T00:00:00Z")
    assert "createdAt is read-only" in editor.message.value
    assert "reverted" in editor.message.value
    assert editor.state.edits == {}
    assert grid_value(editor, frame["id"][2], "createdAt") == before
    assert sent[-1]["event_type"] == "row-changed" and sent[-1]["row"] == 2
    assert before in sent[-1]["value"]


def test_the_status_column_is_read_only_and_echoes_are_ignored(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    editor = CustomerEditor(frame.head(10))
    record_sends(editor, sent)
    edit_cell(editor, 1, "email", "someone@example.com")
    marks = editor.state.marks(frame["id"][1])
    edit_cell(editor, 1, STATUS, editor.grid.status_at(1))  # the browser repeating its value
    assert "read-only" not in editor.message.value
    assert sent == []
    edit_cell(editor, 1, STATUS, "pushed|")
    assert "row status is read-only" in editor.message.value
    assert editor.state.marks(frame["id"][1]) == marks
    # The browser holds what was typed: the row goes back, whatever it would look like.
    assert [m["event_type"] for m in sent] == ["row-changed"]
    assert sent[-1]["value"][0].startswith(marks) and editor.grid.status_at(1) != "pushed|"
    with pytest.raises(ReadOnlyColumnError, match="read-only"):
        editor.edit(frame["id"][1], "id", "other")


def test_a_status_typed_in_the_browser_is_put_back(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    """The browser shows what was typed in the status column (here a false "invalid"
    and a red email) until the kernel sends the row's true status back."""
    editor = CustomerEditor(frame.head(10))
    record_sends(editor, sent)
    truth = editor.grid.status_at(1)
    edit_cell(editor, 1, STATUS, "invalid|x:email|")
    assert "row status is read-only" in editor.message.value
    assert [(m["event_type"], m["row"], m["value"][0]) for m in sent] == [("row-changed", 1, truth)]
    assert grid_value(editor, frame["id"][1], STATUS) == truth


def test_an_invalid_value_is_marked_and_explained(frame: pl.DataFrame) -> None:
    editor = CustomerEditor(frame.head(10))
    target = frame["id"][3]
    edit_cell(editor, 3, "email", "not an email")
    assert editor.counts()["invalid"] == 1
    marks = editor.state.marks(target)
    assert marks.startswith("invalid|") and "|x:email|" in marks
    assert "not an email address" in editor.message.value
    click_cell(editor, 0, "email")
    click_cell(editor, 3, "legalName")
    assert "not sent" in editor.message.value
    assert "1</b> invalid" in editor.status_line.value
    edit_cell(editor, 3, "email", "valid@example.com")
    assert editor.counts() | {"problems": 0} == {
        "rows": 10,
        "changed": 1,
        "invalid": 0,
        "problems": 0,
        "failed": 0,
    }


def test_an_edit_back_to_the_original_is_no_edit(frame: pl.DataFrame) -> None:
    editor = CustomerEditor(frame.head(5))
    original = frame["email"][0]
    edit_cell(editor, 0, "email", "x@example.com")
    edit_cell(editor, 0, "email", original)
    assert editor.state.edits == {} and editor.counts()["changed"] == 0
    empty_line2 = next(i for i, v in enumerate(frame.head(5)["address.line2"]) if v is None)
    edit_cell(editor, empty_line2, "address.line2", "")  # an empty cell stays null
    assert editor.state.edits == {}


def test_revert_row_and_revert_all(frame: pl.DataFrame) -> None:
    editor = CustomerEditor(frame.head(10))
    edit_cell(editor, 1, "label", "A")
    edit_cell(editor, 2, "label", "B")
    edit_cell(editor, 3, "label", "C")
    click_cell(editor, 2, "legalName")
    editor.revert_row_button.click()
    assert set(editor.state.edits) == {frame["id"][1], frame["id"][3]}
    assert grid_value(editor, frame["id"][2], "label") == frame["label"][2]
    editor.revert_all_button.click()
    assert editor.state.edits == {}
    assert editor.edited.equals(frame.head(10))


def test_only_changed_and_only_problem_rows(frame: pl.DataFrame) -> None:
    head = frame.head(60)
    editor = CustomerEditor(head)
    edit_cell(editor, 5, "label", "Changed")
    editor.show(rows="changed")
    assert editor.grid.ids == [head["id"][5]]
    assert "showing <b>1</b>" in editor.status_line.value
    editor.show(rows="problems")
    with_problems = set(check(head)["id"].to_list())
    assert with_problems and set(editor.grid.ids) == with_problems
    editor.show(rows="all")
    assert editor.grid.ids == head["id"].to_list()


def test_large_selections_are_paged_and_edits_still_land_by_id(frame: pl.DataFrame) -> None:
    head = frame.head(25)
    editor = CustomerEditor(head, page_size=10)
    assert editor.grid.ids == head["id"].to_list()[:10]
    assert editor.pager.layout.display == "flex" and "of 25" in editor.page_label.value
    editor.next_button.click()
    editor.next_button.click()
    assert editor.grid.ids == head["id"].to_list()[20:]
    assert editor.next_button.disabled and "21&ndash;25" in editor.page_label.value
    editor.grid.in_flight_seconds = 0.0  # the page reached the browser before the edit
    edit_cell(editor, 2, "label", "Page three")
    assert list(editor.state.edits) == [head["id"][22]]


def test_an_edit_made_on_the_rows_shown_before_a_new_page_edits_no_one(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    """The browser names a row by its place in the rows it showed: an edit made on the
    old page before the new one arrived (a page turn, a filter, a sort of every row)
    must not land on whoever holds that place in the new page."""
    head = frame.head(25)
    editor = CustomerEditor(head, page_size=10)
    record_sends(editor, sent)
    editor.next_button.click()
    edit_cell(editor, 2, "label", "Meant for row 3 of page one")  # made before page two came
    assert editor.state.edits == {}
    assert "make it again" in editor.message.value
    assert sent[-1]["event_type"] == "row-changed" and sent[-1]["row"] == 2
    assert grid_value(editor, head["id"][12], "label") == head["label"][12]
    editor.grid.in_flight_seconds = 0.0  # page two reached the browser
    edit_cell(editor, 2, "label", "Page two")
    assert list(editor.state.edits) == [head["id"][12]]


def test_sorting_a_paged_grid_sorts_every_row_first(frame: pl.DataFrame) -> None:
    """With pages, the grid alone could only sort the page it holds: the kernel sorts the
    whole selection when the grid reports a sort, and the page follows."""
    head = frame.head(40)
    editor = CustomerEditor(head, page_size=15)
    editor.grid._transforms = [{"type": "sort", "column": "email", "desc": True}]  # as synced
    by_email = head.sort("email", descending=True)["id"].to_list()
    assert editor.grid.ids == by_email[:15]
    editor.grid.in_flight_seconds = 0.0  # the sorted page reached the browser
    edit_cell(editor, 0, "label", "Last email")
    assert list(editor.state.edits) == [by_email[0]]
    editor.grid._transforms = []
    assert editor.grid.ids == head["id"].to_list()[:15]


# -- preview and push --------------------------------------------------------------------------


def test_push_needs_a_client_and_a_current_preview(
    frame: pl.DataFrame, client: SequenceClient
) -> None:
    without = CustomerEditor(frame.head(10))
    edit_cell(without, 0, "label", "x")
    without.preview_button.click()
    assert without.push_button.disabled and without.dry_run_button.disabled
    assert "No client" in without.hint.value

    editor = CustomerEditor(frame.head(10), client)
    assert editor.push_button.disabled  # no edits, no preview
    edit_cell(editor, 0, "label", "x")
    assert editor.push_button.disabled  # not previewed yet
    assert "Preview the current edits" in editor.hint.value
    editor.preview_button.click()
    assert not editor.push_button.disabled
    assert "<ins>x</ins>" in editor.output.value
    edit_cell(editor, 1, "label", "y")
    assert editor.push_button.disabled  # the preview is out of date
    assert "Preview again" in editor.output.value and "<ins>" not in editor.output.value
    with pytest.raises(RuntimeError, match="preview"):
        editor.push()


def test_only_invalid_edits_leave_push_disabled(
    frame: pl.DataFrame, client: SequenceClient
) -> None:
    editor = CustomerEditor(frame.head(10), client)
    edit_cell(editor, 0, "email", "broken")
    editor.preview_button.click()
    assert editor.push_button.disabled
    assert "every changed row is invalid" in editor.hint.value


def test_push_through_the_sandbox_changes_the_record(
    sandbox: Sandbox, client: SequenceClient, tmp_path: Path
) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, journal=tmp_path / "journal.sqlite3", progress=False)
    target = df["id"][100]
    row = editor.grid.ids.index(target)
    edit_cell(editor, row, "email", "pushed.from.grid@example.com")
    editor.preview_button.click()
    editor.push_button.click()
    assert editor.confirm_box.layout.display == "flex"
    assert f"Push <b>1</b> update to <code>{sandbox.url}</code>?" in editor.confirm_text.value
    assert editor.push_button.disabled
    assert sandbox.get_record(target)["email"] != "pushed.from.grid@example.com"
    editor.confirm_button.click()
    assert sandbox.get_record(target)["email"] == "pushed.from.grid@example.com"
    assert editor.result is not None and editor.result.counts() == {"updated": 1}
    assert "Pushed: 1 updated." in editor.message.value
    assert ">updated</span>" in editor.output.value  # the result, below the grid
    assert editor.state.edits == {}  # the pushed value is the new original
    assert editor.state.marks(target).startswith("updated|")
    assert grid_value(editor, target, STATUS).startswith("updated|")
    assert shown_row(editor, target) == ("updated", {"email": "u"})
    assert value_of(editor.original, target, "email") == "pushed.from.grid@example.com"
    assert editor.push_button.disabled
    assert editor.plan.summary() == "no changes"
    # The browser now compares with the pushed value: the old one is an edit again.
    edit_cell(editor, row, "email", df["email"][100])
    assert shown_row(editor, target) == ("changed", {"email": "c"})


def test_cancel_sends_nothing(sandbox: Sandbox, client: SequenceClient) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client)
    target = df["id"][110]
    before = sandbox.get_record(target)
    editor.edit(target, "label", "Cancelled")
    editor.preview_button.click()
    editor.push_button.click()
    editor.cancel_button.click()
    assert editor.confirm_box.layout.display == "none"
    assert "nothing was sent" in editor.message.value
    assert sandbox.get_record(target) == before
    assert not editor.push_button.disabled  # the preview still holds


def test_an_edit_while_confirming_stops_the_push(sandbox: Sandbox, client: SequenceClient) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client)
    target, other = df["id"][115], df["id"][116]
    editor.edit(target, "label", "First")
    editor.preview_button.click()
    editor.push_button.click()
    editor.edit(other, "label", "Second")
    assert editor.confirm_box.layout.display == "none"
    editor.confirm_button.click()
    assert sandbox.get_record(target).get("label") != "First"


def test_dry_run_checks_conflicts_and_writes_nothing(
    sandbox: Sandbox, client: SequenceClient
) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, progress=False)
    calm, clash = df["id"][120], df["id"][121]
    editor.edit(calm, "label", "Dry")
    editor.edit(clash, "label", "Dry too")
    sandbox.edit_remote(clash, {"label": "Changed elsewhere"})
    before = {calm: sandbox.get_record(calm), clash: sandbox.get_record(clash)}
    puts_before = sandbox.stats.requests["PUT"]
    editor.dry_run_button.click()
    assert sandbox.stats.requests["PUT"] == puts_before
    assert {c: sandbox.get_record(c) for c in before} == before
    result = editor.result
    assert result is not None and result.dry_run
    assert {r.id: r.status for r in result.rows} == {calm: "would-update", clash: "conflict"}
    assert editor.state.marks(clash).startswith("conflict|")
    assert set(editor.state.edits) == {calm, clash}  # a dry run keeps every edit
    assert not editor.push_button.disabled  # a dry run is a preview too


def test_failed_rows_stay_marked_in_the_grid(
    sandbox: Sandbox, client: SequenceClient, tmp_path: Path
) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, journal=tmp_path / "j.sqlite3", progress=False)
    ok, clash = df["id"][130], df["id"][131]
    editor.edit(ok, "paymentReference", "PO-1")
    editor.edit(clash, "paymentReference", "PO-2")
    sandbox.edit_remote(clash, {"paymentReference": "PO-remote"})
    editor.preview()
    result = editor.push()
    assert {r.id: r.status for r in result.rows} == {ok: "updated", clash: "conflict"}
    assert sandbox.get_record(clash)["paymentReference"] == "PO-remote"
    assert editor.state.marks(clash).startswith("conflict|")
    assert "|f:paymentReference|" in editor.state.marks(clash)
    assert grid_value(editor, clash, STATUS).startswith("conflict|")
    assert set(editor.state.edits) == {clash}
    assert editor.counts()["failed"] == 1
    assert "<b>1</b> in conflict" in editor.status_line.value
    assert "Pushed from code: 1 updated, 1 in conflict." in editor.message.value
    assert "1 row did not land as planned: click a marked row" in editor.message.value
    assert "#c92a2a" not in editor.message.value  # amber, not red: nothing failed


def test_apply_expression_and_hand_edits_form_one_plan(frame: pl.DataFrame) -> None:
    head = frame.head(80)
    editor = CustomerEditor(head)
    hand = head["id"][0]
    edit_cell(editor, 0, "label", "By hand")
    bulk = pl.col("address.town").str.to_uppercase()
    changed = editor.apply_expression(bulk)
    expected = head.with_columns(bulk)
    assert changed == int((expected["address.town"] != head["address.town"]).sum()) > 1
    plan = editor.preview()
    assert editor.plan is plan
    by_id = {row.id: row for row in plan.rows}
    assert set(by_id[hand].columns) == {"label", "address.town"}
    assert len(by_id) == changed
    assert editor.edited.drop("label").equals(expected.drop("label"))
    assert value_of(editor.edited, hand, "label") == "By hand"
    other = head["id"][1]  # the bulk edit shows in the grid too
    assert grid_value(editor, other, "address.town") == value_of(expected, other, "address.town")
    assert "|c:address.town|" in grid_value(editor, other, STATUS)


def test_apply_expression_refuses_read_only_columns_and_applies_nothing(
    frame: pl.DataFrame,
) -> None:
    editor = CustomerEditor(frame.head(10))
    with pytest.raises(ReadOnlyColumnError, match="sequenceAccountId"):
        editor.apply_expression(
            pl.col("email").str.to_uppercase(), pl.lit("other").alias("sequenceAccountId")
        )
    with pytest.raises(ReadOnlyColumnError, match="adds"):
        editor.apply_expression(pl.lit(1).alias("brandNew"))
    assert editor.state.edits == {}


def test_an_edit_re_plans_only_its_row(
    frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sequence_nb.editor import state as state_module

    editor = CustomerEditor(frame)
    heights: list[int] = []
    real = state_module.plan_updates

    def spy(original: pl.DataFrame, edited: pl.DataFrame, **options: Any) -> Any:
        heights.append(original.height)
        return real(original, edited, **options)

    monkeypatch.setattr(state_module, "plan_updates", spy)
    edit_cell(editor, 7, "contactName", "Someone Else")
    assert heights == [1]


def test_the_editor_needs_unique_ids(frame: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="repeats ids"):
        CustomerEditor(pl.concat([frame.head(3), frame.head(1)]))
    with pytest.raises(ValueError, match="no 'id' column"):
        EditState(frame.drop("id"))


def test_marks_name_the_row_and_each_cell(frame: pl.DataFrame) -> None:
    """The status column's value: a label, then a code per marked cell (what colours it)."""
    head = frame.head(40)
    problems = check(head)
    state = EditState(head, problems)
    clean_row = next(i for i in head["id"] if i not in set(problems["id"]))
    assert state.marks(clean_row) == ""
    state.edit(clean_row, "email", "a@example.com")
    assert state.marks(clean_row) == "changed|c:email|"
    state.edit(clean_row, "address.country", "Narnia")
    marks = state.marks(clean_row)
    assert marks.startswith("invalid|") and "|x:address.country|" in marks
    state.revert([clean_row])
    assert state.marks(clean_row) == ""
    flagged, column = problems.row(0)[:2]
    assert state.marks(flagged).startswith("problem|") and f"|p:{column}|" in state.marks(flagged)


# -- showing each thing once, in one vocabulary ---------------------------------------------------


def test_preview_and_push_from_code_leave_the_tables_to_the_caller(
    sandbox: Sandbox, client: SequenceClient, tmp_path: Path
) -> None:
    """A notebook cell that calls preview() or push() displays what it returns; the widget
    (cells above) marks the rows and says what happened in one line, without a second
    copy of the table or a progress bar."""
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, journal=tmp_path / "j.sqlite3", progress=True)
    target = df["id"][140]
    editor.edit(target, "label", "From code")
    plan = editor.preview()
    assert editor.output.value == ""
    assert "Previewed from code: 1 to update, 0 invalid" in editor.message.value
    assert not editor.push_button.disabled
    result = editor.push()
    assert result.counts() == {"updated": 1}
    assert editor.output.value == ""
    assert editor.progress_area.outputs == ()
    assert "Pushed from code: 1 updated." in editor.message.value
    assert editor.state.marks(target).startswith("updated|")
    assert plan.rows[0].id == target


def test_the_push_button_shows_the_result_once_and_no_stale_bar(
    sandbox: Sandbox, client: SequenceClient, tmp_path: Path
) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, journal=tmp_path / "j.sqlite3", progress=True)
    target = df["id"][141]
    editor.edit(target, "label", "By button")
    editor.preview_button.click()
    editor.push_button.click()
    editor.confirm_button.click()
    assert editor.output.value.count("<table") == 1  # the result only: no plan, no summary
    assert editor.output.value.count(">updated</span>") == 1
    assert editor.progress_area.outputs == ()  # the bar went when the result came
    assert "Pushed: 1 updated." in editor.message.value


def test_an_edit_clears_the_result_of_the_last_push(
    sandbox: Sandbox, client: SequenceClient, tmp_path: Path
) -> None:
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, journal=tmp_path / "j.sqlite3", progress=False)
    first, second = df["id"][142], df["id"][143]
    editor.edit(first, "label", "Pushed first")
    editor.preview_button.click()
    editor.push_button.click()
    editor.confirm_button.click()
    assert "<table" in editor.output.value
    editor.edit(second, "label", "Edited after")
    assert "<table" not in editor.output.value
    assert "Preview again" in editor.output.value
    editor.revert()
    assert "<table" not in editor.output.value


def test_an_invalid_row_is_invalid_everywhere_and_not_red(
    sandbox: Sandbox, client: SequenceClient, tmp_path: Path
) -> None:
    """The status line, the grid, the message and the result all call a row that breaks
    a rule "invalid" (it is never sent), and a push whose valid update landed is not red."""
    df = fresh_frame(sandbox)
    editor = CustomerEditor(df, client, journal=tmp_path / "j.sqlite3", progress=False)
    good, bad = df["id"][144], df["id"][145]
    editor.edit(good, "label", "Fine")
    editor.edit(bad, "email", "not an email")
    editor.preview_button.click()
    editor.push_button.click()
    editor.confirm_button.click()
    assert editor.result is not None
    assert editor.result.counts() == {"updated": 1, "invalid": 1}
    status = editor.status_line.value
    assert "<b>1</b> invalid" in status and "fail" not in status
    assert editor.counts()["failed"] == 0
    assert grid_value(editor, bad, STATUS).startswith("invalid|")
    assert grid_value(editor, good, STATUS).startswith("updated|")
    message = editor.message.value
    assert "Pushed: 1 updated, 1 invalid." in message
    assert "1 invalid row was not sent" in message
    assert "#c92a2a" not in message  # red is for what failed
    assert ">invalid</span>" in editor.output.value
    assert "not sent" in " ".join(text for _, text in editor.state.messages(bad))


def test_a_failed_write_is_red(make_sandbox: Any, tmp_path: Path) -> None:
    server = make_sandbox(customers=20, seed=4)
    with contract_client(server, max_retries=0) as sequence:
        df = to_frame(sequence.list_customers())
        editor = CustomerEditor(df, sequence, journal=tmp_path / "j.sqlite3", progress=False)
        editor.edit(df["id"][0], "label", "Never lands")
        editor.preview()
        server.set_faults(error_rate=1.0)
        result = editor.push()
    assert set(result.counts()) <= {"failed", "unconfirmed"}
    assert "#c92a2a" in editor.message.value
    assert editor.state.marks(df["id"][0]).split("|")[0] in {"failed", "unconfirmed"}
    assert editor.counts()["failed"] == 1


def test_counts_are_worded_in_the_singular_and_plural(frame: pl.DataFrame) -> None:
    one = CustomerEditor(frame.head(1))
    assert "<b>1</b> row<" in one.status_line.value
    many = CustomerEditor(frame.head(3))
    assert "<b>3</b> rows<" in many.status_line.value
    cells = many.apply_expression(pl.col("label").fill_null("x").str.to_uppercase() + "!")
    assert f"Applied: {cells} cells changed in 3 rows." in many.message.value
    many.revert_all_button.click()
    assert "Reverted the edits of 3 rows." in many.message.value


def test_the_preview_keeps_ids_on_one_line_and_marks_invalid_values(
    frame: pl.DataFrame,
) -> None:
    editor = CustomerEditor(frame.head(10))
    good, bad = frame["id"][1], frame["id"][2]
    edit_cell(editor, 1, "label", "Fine")
    edit_cell(editor, 2, "email", "not an email")
    editor.preview_button.click()
    shown = editor.output.value
    for customer in (good, bad):
        assert f'<td class="snb-id" title="{customer}"><code>{customer[:13]}…</code></td>' in shown
    assert "white-space: nowrap" in shown
    invalid_row = shown[shown.index('<tr class="snb-invalid">') :].split("</tr>")[0]
    assert "not an email" in invalid_row
    assert "tr.snb-invalid ins" in shown  # styled refused, not like a value to be written
    assert shown.count("snb-editor-legend") == 0  # the one legend is the widget's own
    assert editor.children.count(editor.legend) == 0  # it sits in the top row
    top_row = editor.children[1]
    assert editor.legend in top_row.children


def test_the_id_column_fits_a_whole_sequence_id() -> None:
    from sequence_nb.editor.grid import ROW_HEADER_SIZE

    uuid_chars, monospace_12px = 36, 7.23  # DejaVu Sans Mono's advance at 12 px
    assert uuid_chars * monospace_12px + 16 <= ROW_HEADER_SIZE


# -- what an edit sends --------------------------------------------------------------------------


def test_an_edit_sends_the_status_line_before_the_grid_row(frame: pl.DataFrame) -> None:
    """Each row update costs the browser a repaint of the grid: the words go first."""
    editor = CustomerEditor(frame.head(10))
    order: list[str] = []
    editor.grid.send = lambda content, buffers=None: order.append(content["event_type"])
    editor.status_line.observe(lambda _: order.append("status line"), names="value")
    edit_cell(editor, 2, "email", "not an email")  # invalid: only the kernel can say so
    assert order == ["status line", "row-changed"]


def test_a_valid_edit_is_coloured_by_the_browser_and_sends_no_row(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    """The browser holds each cell's original, so it shows a valid edit as changed by
    itself: the kernel sends no row (a row costs the browser a second full repaint)."""
    editor = CustomerEditor(frame.head(10))
    record_sends(editor, sent)
    customer = frame["id"][2]
    assert shown_row(editor, customer)[1].get("label") is None
    edit_cell(editor, 2, "label", "First")
    assert sent == []
    assert editor.state.marks(customer) == "changed|c:label|"
    assert shown_row(editor, customer) == ("changed", {"label": "c"})
    edit_cell(editor, 2, "label", frame["label"][2] or "")  # back to the original
    assert [m["event_type"] for m in sent] == []
    assert shown_row(editor, customer) == ("", {})


def test_what_the_browser_shows_follows_its_rules() -> None:
    """``shown`` is the renderers' rule: the kernel's verdicts (x, f) first, then a local
    column whose text differs from its original is changed, then the other marks."""
    marks = "problem|p:email|p:label|"
    status = status_text(marks, ["a@example.com", "Gold"])
    local = ("email", "label")
    assert shown(status, {"email": "a@example.com", "label": "Gold"}, local) == (
        "problem",
        (("email", "p"), ("label", "p")),
    )
    edited = {"email": "b@example.com", "label": "Gold"}
    assert shown(status, edited, local) == ("changed", (("email", "c"), ("label", "p")))
    verdict = status_text("invalid|x:email|c:email|", ["a@example.com", "Gold"])
    assert shown(verdict, edited, local) == ("invalid", (("email", "x"), ("label", "")))
    # An empty cell is the same as a null original (the grid shows nulls as empty).
    assert shown(status_text("", [None]), {"email": ""}, ("email",)) == ("", (("email", ""),))
    # Without originals (the contacts grid) only the marks count.
    assert shown("changed|c:name|", {"name": "x"}, ()) == ("changed", (("name", "c"),))
    # An original holding a separator is never compared: the kernel's marks decide.
    odd = status_text("", ["a\x1eb"])
    assert odd.endswith("\x1f")
    assert shown(odd, {"email": "other"}, ("email",)) == ("", (("email", ""),))


def test_an_original_the_browser_cannot_compare_is_coloured_by_the_kernel(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    odd = with_legal_name(frame.head(5), 1, "Odd\x1eName Ltd")
    editor = CustomerEditor(odd)
    record_sends(editor, sent)
    edit_cell(editor, 1, "legalName", "Plain Name Ltd")
    assert [m["event_type"] for m in sent] == ["row-changed"]
    assert shown_row(editor, odd["id"][1]) == ("changed", {"legalName": "c"})


def test_an_edit_only_in_unicode_normal_form_is_no_edit_and_shows_none(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    """The plan takes NFC and NFD for the same text, so such an edit is none: the
    browser, which compares code points, gets the original back instead of colouring
    the cell as changed."""
    composed = with_legal_name(frame.head(5), 1, "Caf\u00e9 Ltd")
    editor = CustomerEditor(composed)
    record_sends(editor, sent)
    customer = composed["id"][1]
    edit_cell(editor, 1, "legalName", "Cafe\u0301 Ltd")
    assert editor.counts()["changed"] == 0 and editor.plan.rows == ()
    assert [m["event_type"] for m in sent] == ["row-changed"]
    assert grid_value(editor, customer, "legalName") == "Caf\u00e9 Ltd"
    assert shown_row(editor, customer) == ("", {})
    edit_cell(editor, 1, "legalName", "Other Ltd")
    edit_cell(editor, 1, "legalName", "Cafe\u0301 Ltd")  # back to the original, decomposed
    assert editor.counts()["changed"] == 0
    assert grid_value(editor, customer, "legalName") == "Caf\u00e9 Ltd"
    assert shown_row(editor, customer) == ("", {})


def test_a_cell_edited_again_with_the_same_marks_sends_no_row(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    editor = CustomerEditor(frame.head(10))
    record_sends(editor, sent)
    edit_cell(editor, 2, "email", "not an email")
    assert [m["event_type"] for m in sent] == ["row-changed"]  # invalid: the kernel says so
    editor.grid.in_flight_seconds = 0.0  # that row reached the browser before the next edit
    edit_cell(editor, 2, "email", "still not an email")  # the browser shows it; marks stay
    assert len(sent) == 1
    assert value_of(editor.edited, frame["id"][2], "email") == "still not an email"
    edit_cell(editor, 2, "email", "fixed@example.com")  # valid again: the label changes
    assert len(sent) == 2 and sent[-1]["value"][0].startswith("changed|c:email|")
    assert shown_row(editor, frame["id"][2]) == ("changed", {"email": "c"})


def test_an_edit_made_before_the_kernels_row_arrived_is_sent_again(
    frame: pl.DataFrame, sent: list[dict[str, Any]]
) -> None:
    """A busy kernel (a preview at 100k rows) takes two edits of a row at once: the row
    it sends for the first (invalid) one reaches the browser after the second edit and
    shows that cell's old value, so the second edit's row goes too, though its marks
    look the same."""
    editor = CustomerEditor(frame.head(10))
    record_sends(editor, sent)
    edit_cell(editor, 2, "email", "not an email")
    edit_cell(editor, 2, "telephone", "+44 20 7946 0018")
    assert [m["event_type"] for m in sent] == ["row-changed", "row-changed"]
    telephone = 1 + editor.columns.index("telephone")
    assert sent[-1]["value"][telephone] == "+44 20 7946 0018"


# -- API version 2024-07-30: custom properties, states and contacts -----------------------------

V2024 = fields.V2024_07_30


@pytest.fixture(scope="module")
def sandbox_2024() -> Iterator[Sandbox]:
    """A 2024-07-30 sandbox shared by the read-mostly tests of this module."""
    with start_sandbox(customers=60, seed=3, api_version="2024-07-30") as server:
        yield server


def edit_grid_cell(grid: Any, row: int, column: str, value: Any) -> None:
    """``edit_cell`` for any grid of the editor (the contacts grid too)."""
    index = grid.body_columns().index(column)
    message = {"event_type": "cell-changed", "row": row, "column_index": index, "value": value}
    grid._handle_msg({"content": {"data": {"method": "custom", "content": message}}, "buffers": []})


def click_grid_cell(grid: Any, row: int, column: str) -> None:
    index = grid.body_columns().index(column)
    message = {
        "event_type": "cell-click",
        "region": "body",
        "column": column,
        "column_index": index,
        "row": row,
        "primary_key_row": row,
        "cell_value": None,
    }
    grid._handle_msg({"content": {"data": {"method": "custom", "content": message}}, "buffers": []})


def test_a_2024_editor_edits_states_statuses_and_custom_properties(
    sandbox_2024: Sandbox,
) -> None:
    with contract_client(sandbox_2024) as client:
        df = fetch_customers(client)
        editor = CustomerEditor(df.head(10), client)
    assert editor.api_version is V2024
    properties = [c for c in df.columns if c.startswith("customProperties.")]
    assert len(properties) > 1
    assert editor.columns[: len(V2024.editable_columns)] == list(V2024.editable_columns)
    assert editor.columns[len(V2024.editable_columns) :] == properties
    assert "address.postCode" not in editor.columns and "email" not in editor.columns
    assert not {"integrationIds", "organizations", "domain"} & set(editor.columns)
    target = editor.grid.ids[2]
    edit_cell(editor, 2, properties[0], "edited in the grid")
    edit_cell(editor, 2, "status", "DRAFT" if df["status"][2] == "ACTIVE" else "ACTIVE")
    assert set(editor.state.edits[target]) == {properties[0], "status"}
    assert editor.plan.api_version == V2024.name
    assert editor.plan.rows[0].body["customProperties"][properties[0].split(".", 1)[1]] == (
        "edited in the grid"
    )


def test_a_custom_property_named_with_a_separator_is_marked_right(
    sandbox_2024: Sandbox, sent: list[dict[str, Any]]
) -> None:
    """A key may hold the character that starts a status value's originals: the marks
    naming its column must not be cut there (its red cell went blank, another blue)."""
    odd = "customProperties.tab\x1dkey"
    with contract_client(sandbox_2024) as client:
        df = fetch_customers(client).head(5).with_columns(pl.lit(None, pl.String).alias(odd))
        editor = CustomerEditor(df, client)
    record_sends(editor, sent)
    edit_cell(editor, 1, odd, "value")  # invalid: a key is one line of text
    assert [m["event_type"] for m in sent] == ["row-changed"]
    assert shown_row(editor, df["id"][1]) == ("invalid", {odd: "x"})
    edit_cell(editor, 1, "legalName", "Renamed Ltd")
    assert shown_row(editor, df["id"][1]) == ("invalid", {odd: "x", "legalName": "c"})


def test_a_2024_editor_refuses_read_only_columns_of_its_version(sandbox_2024: Sandbox) -> None:
    with contract_client(sandbox_2024) as client:
        df = fetch_customers(client).head(5)
    editor = CustomerEditor(df, api_version="2024-07-30", columns=["legalName", "domain"])
    edit_cell(editor, 0, "domain", "other.example")
    assert "domain is read-only: the API (2024-07-30)" in editor.message.value
    assert editor.state.edits == {}
    with pytest.raises(ReadOnlyColumnError, match="email"):
        editor.state.check_editable("email")  # a seed field, not the 2024 body's


def test_the_editor_refuses_a_version_its_client_does_not_speak(sandbox_2024: Sandbox) -> None:
    with contract_client(sandbox_2024) as client:
        df = fetch_customers(client).head(3)
        with pytest.raises(ValueError, match="client speaks '2024-07-30'"):
            CustomerEditor(df, client, api_version="seed")


def test_contacts_need_a_version_with_contacts(frame: pl.DataFrame, sandbox_2024: Sandbox) -> None:
    with contract_client(sandbox_2024) as client:
        contacts = fetch_contacts(client, [fetch_customers(client)["id"][0]], progress=False)
    with pytest.raises(ValueError, match="API version seed has no contacts"):
        CustomerEditor(frame.head(3), contacts=contacts, api_version="seed")


def test_a_property_a_state_and_a_contact_edit_push_as_one_plan(
    make_sandbox: Any, tmp_path: Path
) -> None:
    server = make_sandbox(customers=40, seed=5, api_version="2024-07-30")
    with contract_client(server) as client:
        df = fetch_customers(client)
        us = df.filter(pl.col("address.country") == "US")["id"]
        with_two = (
            fetch_contacts(client, df["id"].to_list(), progress=False)
            .group_by("customerId", maintain_order=True)
            .len()
            .filter(pl.col("len") >= 2)["customerId"]
        )
        prop_id, state_id = df["id"][0], next(i for i in us if i != df["id"][0])
        contact_id = next(i for i in with_two if i not in (prop_id, state_id))
        contacts = fetch_contacts(client, [prop_id, state_id, contact_id], progress=False)
        before = {i: server.get_record(i) for i in (prop_id, state_id, contact_id)}
        editor = CustomerEditor(
            df, client, contacts=contacts, journal=tmp_path / "j.sqlite3", progress=False
        )
        key = next(iter(before[prop_id]["customProperties"]))
        new_state = "TX" if before[state_id]["address"].get("state") != "TX" else "OH"
        edit_cell(editor, editor.grid.ids.index(prop_id), f"customProperties.{key}", "Edited")
        edit_cell(editor, editor.grid.ids.index(state_id), "address.state", new_state)
        grid = editor.contacts_grid
        assert grid is not None and editor.tabs.titles == ("Customers", "Contacts")
        first = before[contact_id]["contacts"][0]
        row = grid.ids.index(first["id"])
        edit_grid_cell(grid, row, "email", "edited.contact@example.com")
        assert grid._data["data"].at[row, STATUS].startswith("changed|c:email|")
        edit_grid_cell(grid, row, "legalName", "Another Name")
        assert "read-only in the contacts view" in editor.message.value
        editor.preview_button.click()
        plan = editor.plan
        assert plan.api_version == "2024-07-30" and len(plan) == 3
        assert {r.id: r.columns for r in plan.rows} == {
            prop_id: (f"customProperties.{key}",),
            state_id: ("address.state",),
            contact_id: ("contacts",),
        }
        assert "Ready to push 3 updates." in editor.hint.value
        editor.push_button.click()
        editor.confirm_button.click()
    assert editor.result is not None and editor.result.counts() == {"updated": 3}
    after = {i: server.get_record(i) for i in before}
    properties = dict(before[prop_id]["customProperties"], **{key: "Edited"})
    assert after[prop_id]["customProperties"] == properties  # the other properties stay
    assert after[prop_id]["contacts"] == before[prop_id]["contacts"]
    assert after[state_id]["address"] == dict(before[state_id]["address"], state=new_state)
    assert after[state_id]["contacts"] == before[state_id]["contacts"]
    emails = [c["email"] for c in after[contact_id]["contacts"]]
    assert emails == ["edited.contact@example.com"] + [
        c["email"] for c in before[contact_id]["contacts"][1:]
    ]
    assert after[contact_id]["customProperties"] == before[contact_id]["customProperties"]
    assert editor.contacts is not None and not editor.contacts.changed()
    assert editor.plan.summary() == "no changes"


def test_contacts_added_and_deleted_in_the_grid_land_and_get_their_ids(
    make_sandbox: Any, tmp_path: Path
) -> None:
    server = make_sandbox(customers=30, seed=6, api_version="2024-07-30")
    with contract_client(server) as client:
        df = fetch_customers(client)
        contacts = fetch_contacts(client, df["id"].to_list(), progress=False)
        counts = contacts.group_by("customerId", maintain_order=True).len()
        two = counts.filter(pl.col("len") >= 2)["customerId"][0]
        one = counts.filter(pl.col("len") == 1)["customerId"][0]
        editor = CustomerEditor(df, client, contacts=contacts, progress=False)
        grid = editor.contacts_grid
        assert grid is not None
        only = contacts.filter(pl.col("customerId") == one)["id"][0]
        click_grid_cell(grid, grid.ids.index(only), "name")
        editor.delete_contact_button.click()
        assert "last contact" in editor.message.value
        assert only in grid.ids
        removed = server.get_record(two)["contacts"][-1]
        click_grid_cell(grid, grid.ids.index(removed["id"]), "name")
        editor.delete_contact_button.click()
        assert removed["id"] not in grid.ids
        editor.contact_customer_box.value = one
        editor.add_contact_button.click()
        new_key = grid.ids[-1]
        assert new_key.startswith("new ")
        row = grid.ids.index(new_key)
        assert grid._data["data"].at[row, STATUS].startswith("new|")
        edit_grid_cell(grid, row, "name", "Added In Grid")
        edit_grid_cell(grid, row, "email", "added.in.grid@example.com")
        edit_grid_cell(grid, row, "billingPreference", "NONE")
        assert editor.contacts is not None and editor.contacts.problems.get(new_key) is None
        editor.preview()
        assert {r.id for r in editor.plan.rows} == {one, two}
        result = editor.push()
    assert result.counts() == {"updated": 2}
    assert removed["id"] not in [c["id"] for c in server.get_record(two)["contacts"]]
    added = server.get_record(one)["contacts"][-1]
    assert (added["name"], added["email"]) == ("Added In Grid", "added.in.grid@example.com")
    assert added["id"] in grid.ids and not any(k.startswith("new ") for k in grid.ids)


def test_a_contact_problem_is_marked_and_explained(sandbox_2024: Sandbox) -> None:
    with contract_client(sandbox_2024) as client:
        df = fetch_customers(client).head(5)
        contacts = fetch_contacts(client, df["id"].to_list(), progress=False)
    editor = CustomerEditor(df, api_version="2024-07-30", contacts=contacts)
    grid = editor.contacts_grid
    assert grid is not None
    edit_grid_cell(grid, 0, "email", "not an address")
    assert "|p:email|" in grid._data["data"].at[0, STATUS]
    assert "not a valid email address" in editor.message.value
    assert "1</b> changed" in editor.contacts_status.value
    editor.revert()
    assert editor.contacts is not None and not editor.contacts.changed()
    assert grid._data["data"].at[0, "email"] == contacts["email"][0]


def test_revert_all_drops_contact_edits_and_what_the_preview_said_of_them(
    sandbox_2024: Sandbox,
) -> None:
    with contract_client(sandbox_2024) as client:
        df = fetch_customers(client).head(6)
        contacts = fetch_contacts(client, df["id"].to_list(), progress=False)
    editor = CustomerEditor(df, api_version="2024-07-30", contacts=contacts)
    owner, contact = contacts["customerId"][0], contacts["id"][0]
    assert editor.edit_contact(contact, "name", "Someone Else")
    editor.preview()
    assert [r.columns for r in editor.plan.rows] == [("contacts",)]
    assert editor.state.marks(owner).startswith("changed|")
    assert "contacts: edited (see the Contacts view)" in str(editor.state.messages(owner))
    assert editor.revert() == 1
    assert editor.state.marks(owner) == "" and shown_row(editor, owner) == ("", {})
    assert editor.edited_contacts is not None
    assert editor.edited_contacts.equals(contacts)
    assert editor.plan.summary() == "no changes"


def _example_2024() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The 2024-07-30 document's example customer, and its contacts plus one more."""
    record = copy.deepcopy(v2024.CUSTOMER)
    record["contacts"].append(
        {
            "id": "b7c9d1e2-0000-4000-8000-000000000001",
            "name": "Second Contact",
            "email": "second@example.com",
            "billingPreference": "NONE",
            "createdAt": "2022-06-28T16:47:00Z",
            "updatedAt": "2022-06-28T16:47:00Z",
        }
    )
    customers = to_frame([{k: v for k, v in record.items() if k != "contacts"}], api_version=V2024)
    return customers, contacts_frame([record], api_version=V2024)


def test_an_archived_contact_is_neither_edited_nor_deleted() -> None:
    customers, contacts = _example_2024()
    archived = contacts.filter(pl.col("archivedAt").is_not_null())["id"][0]
    editor = CustomerEditor(customers, api_version=V2024, contacts=contacts)
    grid = editor.contacts_grid
    assert grid is not None
    edit_grid_cell(grid, grid.ids.index(archived), "email", "back@example.com")
    assert "is archived" in editor.message.value and "reverted" in editor.message.value
    with pytest.raises(ContactEditError, match="archived"):
        editor.delete_contact(archived)
    assert editor.contacts is not None and not editor.contacts.changed()


def test_a_contact_problem_marks_only_the_contact_it_is_about() -> None:
    customers, contacts = _example_2024()
    editor = CustomerEditor(customers, api_version=V2024, contacts=contacts)
    grid = editor.contacts_grid
    assert grid is not None
    second = "b7c9d1e2-0000-4000-8000-000000000001"
    edit_grid_cell(grid, grid.ids.index(second), "name", "")
    marks = {key: grid._data["data"].at[row, STATUS] for row, key in enumerate(grid.ids)}
    assert "p:name" in marks[second]
    assert not [key for key, mark in marks.items() if key != second and "p:name" in mark]


def test_a_contacts_frame_of_only_the_needed_columns_is_edited_too() -> None:
    customers, contacts = _example_2024()
    lean = contacts.select("customerId", "id", "name", "email", "billingPreference")
    editor = CustomerEditor(customers, api_version=V2024, contacts=lean)
    assert editor.contact_columns == [
        "customerId",
        "legalName",
        "name",
        "email",
        "billingPreference",
    ]
    assert editor.edit_contact("b7c9d1e2-0000-4000-8000-000000000001", "email", "new@example.com")
    assert [row.columns for row in editor.plan.rows] == [("contacts",)]


def test_a_custom_property_column_added_by_an_expression_creates_the_property(
    make_sandbox: Any,
) -> None:
    server = make_sandbox(customers=20, seed=7, api_version="2024-07-30")
    with contract_client(server) as client:
        df = fetch_customers(client)
        target = df["id"][3]
        before = server.get_record(target)["customProperties"]
        editor = CustomerEditor(df, client, progress=False)
        with pytest.raises(ReadOnlyColumnError, match="adds email"):
            editor.apply_expression(pl.lit("x@example.com").alias("email"))
        assert "customProperties.territory" not in editor.columns
        new = (
            pl.when(pl.col("id") == target)
            .then(pl.lit("North"))
            .alias("customProperties.territory")
        )
        assert editor.apply_expression(new) == 1
        assert editor.columns[-1] == "customProperties.territory"
        assert grid_value(editor, target, "customProperties.territory") == "North"
        editor.preview()
        assert [(r.id, r.columns) for r in editor.plan.rows] == [
            (target, ("customProperties.territory",))
        ]
        assert editor.push().counts() == {"updated": 1}
    assert server.get_record(target)["customProperties"] == {**before, "territory": "North"}
    assert editor.plan.summary() == "no changes"
