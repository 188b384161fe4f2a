"""What the HTML views of plans and push results share: their style."""

from __future__ import annotations

__all__ = ["HTML_STYLE"]

#: The style of the HTML views of plans and push results.
HTML_STYLE = """<style>
.snb-plan table { border-collapse: collapse; font-size: 13px; }
.snb-plan th, .snb-plan td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
.snb-plan del { color: #8a1c1c; background: #fbe9e9; }
.snb-plan ins { color: #0f5a1f; background: #e6f6e9; text-decoration: none; font-weight: 600; }
.snb-plan tr.snb-invalid td { color: #b00020; background: #fff0f0; }
.snb-plan .snb-null { color: #999; font-style: italic; }
.snb-plan .snb-digest { color: #666; font-family: monospace; font-size: 11px; }
</style>"""
