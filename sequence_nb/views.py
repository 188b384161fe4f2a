"""What the HTML views of plans and push results share: their style, and how an id shows."""

from __future__ import annotations

import html
from typing import Final

__all__ = ["HTML_STYLE", "ID_SHOWN", "id_cell", "short_id"]

#: Characters of an id shown in a table; the whole id is in the cell's tooltip.
ID_SHOWN: Final = 13

#: The style of the HTML views of plans and push results. Ids keep to one line in a
#: monospace font (the first column of both tables); an invalid row's new value is
#: shown refused (red, wavy underline), never like a value that will be written.
HTML_STYLE = """<style>
.snb-plan table { border-collapse: collapse; font-size: 13px; }
.snb-plan th, .snb-plan td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left;
  vertical-align: top; }
.snb-plan td:first-child, .snb-id { white-space: nowrap; }
.snb-plan table.snb-changes td:not(:last-child) { white-space: nowrap; }
.snb-plan td:first-child, .snb-id code { font-family: ui-monospace, Menlo, Consolas, monospace;
  font-size: 12px; }
.snb-plan del { color: #8a1c1c; background: #fbe9e9; }
.snb-plan ins { color: #0f5a1f; background: #e6f6e9; text-decoration: none; font-weight: 600; }
.snb-plan tr.snb-invalid td { color: #a51111; background: #fff5f5; }
.snb-plan tr.snb-invalid ins { color: #a51111; background: none; font-weight: normal;
  text-decoration: underline wavy #e03131; }
.snb-plan .snb-null { color: #999; font-style: italic; }
.snb-plan .snb-digest { color: #666; font-family: monospace; font-size: 11px; }
</style>"""


def short_id(customer_id: str) -> str:
    """The id cut to :data:`ID_SHOWN` characters with an ellipsis (whole when short)."""
    if len(customer_id) <= ID_SHOWN + 1:
        return customer_id
    return customer_id[:ID_SHOWN] + "…"


def id_cell(customer_id: str, shown: str | None = None) -> str:
    """A ``<td>`` with the id on one line, shortened, the whole id on hover.

    ``shown`` is the id as it may be printed (escaped for people); it defaults to the id.
    """
    text = customer_id if shown is None else shown
    return (
        f'<td class="snb-id" title="{html.escape(text)}">'
        f"<code>{html.escape(short_id(text))}</code></td>"
    )
