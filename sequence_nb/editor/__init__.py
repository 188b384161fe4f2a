"""The notebook editor: ``CustomerEditor(df, client=None, contacts=None)``.

An editable grid of customers (ipydatagrid) with a status line, filters, Preview,
Dry run and Push, over the library's own stages: edits are kept by customer id
(:mod:`.state`), plans come from :func:`sequence_nb.plan.plan_updates` in the API
version of the client, problems from :func:`sequence_nb.quality.check`, writes from
``ChangePlan.apply``. In 2024-07-30 a contacts frame adds a Contacts tab whose edits
(:mod:`.contacts`) join the same plan.
"""

from sequence_nb.editor.contacts import ContactEditError, ContactEdits
from sequence_nb.editor.state import EditState, ReadOnlyColumnError
from sequence_nb.editor.widget import CustomerEditor

__all__ = ["ContactEditError", "ContactEdits", "CustomerEditor", "EditState", "ReadOnlyColumnError"]
