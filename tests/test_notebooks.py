"""The notebooks run top to bottom against a sandbox, and no output holds a secret.

Each notebook runs with nbclient in a temporary copy (the repository's files stay
without outputs). The quickstart runs both ways: with SEQUENCE_* set (as
``sequence-nb demo`` sets them) and without (it then starts a sandbox in its kernel).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sequence_nb.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Sandbox, start

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SECRET = "nb-test-secret-0f9e8d7c6b5a"


def run_notebook(name: str, workdir: Path) -> nbformat.NotebookNode:
    """Execute a copy of ``notebooks/<name>`` in ``workdir``; raises on any cell error."""
    copy = workdir / name
    shutil.copy(NOTEBOOKS / name, copy)
    notebook = nbformat.read(copy, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    nbformat.write(notebook, copy)
    return notebook


def forms_of(client_id: str, secret: str) -> list[str]:
    """The secret as it could leak: plain, and base64 alone or as Basic credentials."""
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
    ]


def assert_no_secret(notebook: nbformat.NotebookNode, client_id: str, secret: str) -> None:
    """No output, widget state or metadata of the executed notebook holds the secret."""
    text = json.dumps(notebook)
    for form in forms_of(client_id, secret):
        assert form not in text


def outputs_text(notebook: nbformat.NotebookNode) -> str:
    return json.dumps([cell.get("outputs", []) for cell in notebook.cells])


@pytest.fixture
def sandbox_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox with its own secret, and SEQUENCE_* pointing the kernel at it (few
    customers: the client paces itself under the API's rate limit)."""
    with start(customers=60, seed=5, client_secret=SECRET) as server:
        for name, value in server.environ().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SEQUENCE_NB_JOURNAL", str(tmp_path / "journal.sqlite3"))
        yield server


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SEQUENCE_CLIENT_ID", "SEQUENCE_CLIENT_SECRET", "SEQUENCE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEQUENCE_NB_JOURNAL", str(tmp_path / "journal.sqlite3"))


@pytest.mark.parametrize("name", ["quickstart.ipynb", "cleaning.ipynb"])
def test_notebooks_are_saved_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert "widgets" not in notebook.metadata


def test_quickstart_against_a_sandbox_from_the_environment(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    notebook = run_notebook("quickstart.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "settings from the environment" in text
    assert "updated" in text
    assert "Wrote " in text
    assert_no_secret(notebook, sandbox_env.client_id, SECRET)
    assert sandbox_env.stats.requests["PUT"] > 0  # the push reached this sandbox


def test_quickstart_starts_its_own_sandbox(no_env: None, tmp_path: Path) -> None:
    notebook = run_notebook("quickstart.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "Local sandbox started in this kernel" in text
    assert "updated" in text and "Wrote " in text
    assert_no_secret(notebook, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def test_cleaning_applies_and_undoes(sandbox_env: Sandbox, tmp_path: Path) -> None:
    before = {r["id"]: r for r in sandbox_env.records()}
    notebook = run_notebook("cleaning.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "would-update" in text  # the dry run
    assert "After the undo" in text and "Wrote customers-clean.parquet" in text
    assert_no_secret(notebook, sandbox_env.client_id, SECRET)
    after = {r["id"]: r for r in sandbox_env.records()}
    changed = [i for i in before if before[i] != after[i]]
    assert len(changed) < len(before) / 10, "the undo put back nearly every customer"
