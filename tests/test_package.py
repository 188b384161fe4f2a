"""The package root: every public name resolves, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import sequence_nb


def test_every_public_name_resolves() -> None:
    missing = [name for name in sequence_nb.__all__ if not hasattr(sequence_nb, name)]
    assert missing == []


def test_importing_the_package_does_not_load_the_widget_stack() -> None:
    code = "import sys, sequence_nb; print('ipydatagrid' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"


def test_the_package_is_typed() -> None:
    from importlib.resources import files

    assert files("sequence_nb").joinpath("py.typed").is_file()
