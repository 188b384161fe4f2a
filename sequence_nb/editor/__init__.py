"""The notebook editor: ``CustomerEditor(df, client=None)``.

An editable grid of customers (ipydatagrid) with a status line, filters, Preview,
Dry run and Push, over the library's own stages: edits are kept by customer id
(:mod:`.state`), plans come from :func:`sequence_nb.plan.plan_updates`, problems
from :func:`sequence_nb.quality.check`, writes from ``ChangePlan.apply``.
"""

from sequence_nb.editor.state import EditState, ReadOnlyColumnError
from sequence_nb.editor.widget import CustomerEditor

__all__ = ["CustomerEditor", "EditState", "ReadOnlyColumnError"]
