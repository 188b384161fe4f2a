"""The package root: every public name resolves, and importing it stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


def _imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules a file imports, in any way (in functions and under
    TYPE_CHECKING too): ``from sequence_nb import fields`` counts as ``sequence_nb.fields``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sequence_nb"):
            module = node.module or ""
            named = {f"{module}.{alias.name}" for alias in node.names} & modules
            found |= named or {module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sequence_nb")}
    return found


def _module_graph() -> dict[str, set[str]]:
    root = Path(sequence_nb.__file__).parent
    names = {
        p: ".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in root.rglob("*.py")
    }
    modules = set(names.values())
    return {name: _imports_of(path, modules) - {name} for path, name in names.items()}


def test_no_two_modules_import_each_other_even_indirectly() -> None:
    graph = {
        name: {d for d in deps if d != "sequence_nb"}  # the root only re-exports
        for name, deps in _module_graph().items()
        if name != "sequence_nb"
    }
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError(f"import circle: {' -> '.join([*path, name])}")
        if name in done:
            return
        for dependency in graph.get(name, ()):
            visit(dependency, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_the_library_never_imports_the_sandbox() -> None:
    users = {
        name
        for name, deps in _module_graph().items()
        if not name.startswith(("sequence_nb.sandbox", "sequence_nb.cli"))
        and any(d.startswith("sequence_nb.sandbox") for d in deps)
    }
    assert users == set()
