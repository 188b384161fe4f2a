"""Progress bars that show in notebooks and terminals, and stay quiet elsewhere."""

from __future__ import annotations

import sys
from typing import Any


def interactive() -> bool:
    """True inside a Jupyter kernel or when stderr is a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        shell = None
    else:
        shell = get_ipython()
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        return True
    return sys.stderr.isatty()


def progress_bar(total: int | None, description: str, enabled: bool | None = None) -> Any:
    """A tqdm bar (the notebook widget in Jupyter); ``enabled=None`` means when interactive."""
    from tqdm.auto import tqdm

    show = interactive() if enabled is None else enabled
    return tqdm(total=total, desc=description, disable=not show, leave=True)
