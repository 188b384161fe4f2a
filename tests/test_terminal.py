"""What the shell prints for people: every text whole, escaped and shown as it is."""

from __future__ import annotations

import io

import polars as pl
import pytest

from sequence_nb.plan import plan_updates
from sequence_nb.terminal import Grid, make_console, plan_table

REASONLESS = "REF Acme Holdings International Limited - IBAN GB00 0000 0000 0000 0000"


def rendered(renderable: object, width: int) -> str:
    out = io.StringIO()
    console = make_console(out)
    console.width = width
    console.print(renderable)
    return out.getvalue()


def hostile_plan() -> object:
    original = pl.DataFrame(
        {
            "id": ["391c9b59-9900-483b-8ff1-60158bb74261", "ebb14777-3482-41f1-89de-0829816afdd4"],
            "legalName": ["[bold]Acme[/bold] :smile:", "Obsidian"],
            "label": ["old", "old"],
            "paymentReference": ["a", "b"],
        }
    )
    edited = original.with_columns(
        pl.Series("label", ["\x1b[2J[red]x", "fine"]),
        pl.Series("paymentReference", [REASONLESS, "b"]),
    )
    return plan_updates(original, edited)


@pytest.mark.parametrize("width", [40, 80, 120, 400])
def test_no_text_is_cut_at_any_width(width: int) -> None:
    out = rendered(plan_table(hostile_plan()), width)  # type: ignore[arg-type]
    flat = "".join(out.split())  # a wrapped cell, read back without its breaks
    for text in (REASONLESS, "391c9b59-9900-483b-8ff1-60158bb74261", "[bold]Acme[/bold]"):
        assert "".join(text.split()) in flat.replace("│", "").replace("┃", "")
    assert "…" not in out and "\x1b" not in out


def test_a_wide_output_keeps_each_row_on_one_line() -> None:
    out = rendered(plan_table(hostile_plan()), 400)  # type: ignore[arg-type]
    (line,) = [line for line in out.splitlines() if "391c9b59" in line]
    assert "[bold]Acme[/bold] :smile:" in line and "'\\x1b[2J[red]x'" in line
    assert "invalid" in line


def test_a_narrow_output_gives_each_cell_its_own_line_instead_of_cutting() -> None:
    grid = Grid("customer", "reason")
    grid.add_row(*map(_text, ["391c9b59-9900-483b-8ff1-60158bb74261", "a reason " * 8]))
    out = rendered(grid, 30)
    assert "│" not in out and "┃" not in out
    flat = "".join(out.split())
    assert "customer:391c9b59-9900-483b-8ff1-60158bb74261" in flat
    assert "reason:" + "areason" * 8 in flat


def _text(value: str) -> object:
    from rich.text import Text

    return Text(value)
