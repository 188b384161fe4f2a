"""The notebooks run top to bottom against a sandbox, and no output holds a secret.

The notebooks ship inside the package (``sequence_nb/notebooks``, what ``sequence-nb
demo`` copies). Each runs with nbclient in a temporary copy (the shipped files stay
without outputs). The quickstart runs both ways: with SEQUENCE_* set (as
``sequence-nb demo`` sets them) and without (it then starts a sandbox in its kernel).
Every run is made in both API versions: ``SEQUENCE_API_VERSION`` picks it, as a person
switches it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from sequence_nb.demo import shipped
from sequence_nb.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Sandbox, start

SECRET = "nb-test-secret-0f9e8d7c6b5a"


def run_notebook(name: str, workdir: Path) -> nbformat.NotebookNode:
    """Execute a copy of the shipped notebook ``name`` in ``workdir``; raises on any cell
    error."""
    copy = workdir / name
    copy.write_bytes(shipped(name).read_bytes())
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


@pytest.fixture(params=["seed", "2024-07-30"])
def api_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The API version the notebook runs in: ``SEQUENCE_API_VERSION`` set to it (the
    seed's version also with the variable unset, as most people run it)."""
    version = str(request.param)
    if version == "seed":
        monkeypatch.delenv("SEQUENCE_API_VERSION", raising=False)
    else:
        monkeypatch.setenv("SEQUENCE_API_VERSION", version)
    return version


@pytest.fixture
def sandbox_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api_version: str
) -> Iterator[Sandbox]:
    """A sandbox of the version with its own secret, and SEQUENCE_* pointing the kernel
    at it (few customers: the client paces itself under the API's rate limit)."""
    with start(customers=60, seed=5, client_secret=SECRET, api_version=api_version) as server:
        for name, value in server.environ().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SEQUENCE_NB_JOURNAL", str(tmp_path / "journal.sqlite3"))
        yield server


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, api_version: str) -> None:
    for name in ("SEQUENCE_CLIENT_ID", "SEQUENCE_CLIENT_SECRET", "SEQUENCE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEQUENCE_NB_JOURNAL", str(tmp_path / "journal.sqlite3"))


@pytest.mark.parametrize("name", ["quickstart.ipynb", "cleaning.ipynb"])
def test_notebooks_are_saved_without_outputs(name: str) -> None:
    notebook = nbformat.reads(shipped(name).read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert "widgets" not in notebook.metadata


def widget_html(notebook: nbformat.NotebookNode) -> list[str]:
    """The values of every HTML widget the notebook's run left (its saved widget state)."""
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [
        str(model["state"].get("value", ""))
        for model in state.values()
        if model["model_name"] == "HTMLModel"
    ]


def test_quickstart_against_a_sandbox_from_the_environment(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    notebook = run_notebook("quickstart.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "settings from the environment" in text
    assert f"API version <b>{sandbox_env.api_version.name}</b>" in text
    contacts_read = re.search(r"\d+ contacts of \d+ customers", text) is not None
    assert contacts_read == (sandbox_env.api_version.name != "seed")
    assert "updated" in text
    assert "Wrote " in text
    assert_no_secret(notebook, sandbox_env.client_id, SECRET)
    assert sandbox_env.stats.requests["PUT"] > 0  # the push reached this sandbox


def test_quickstart_says_how_many_archived_customers_it_left_out(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    archived = sum(1 for r in sandbox_env.records() if r.get("archivedAt"))
    listed = len(sandbox_env.records()) - archived
    notebook = run_notebook("quickstart.ipynb", tmp_path)
    fetched = next(c for c in notebook.cells if c.source.startswith("df = fetch_customers("))
    printed = "".join(o.get("text", "") for o in fetched.outputs if o.output_type == "stream")
    if archived:
        expected = f"{listed} customers ({archived} archived left out; includeArchived=True"
    else:
        expected = f"{listed} customers (none archived)"
    assert printed.startswith(expected), printed


def test_quickstart_shows_each_preview_and_push_once(sandbox_env: Sandbox, tmp_path: Path) -> None:
    """Run all: the Preview and Push cells show the plan and the result; the editor above
    marks the rows and says what happened in one line, with no second table or bar."""
    notebook = run_notebook("quickstart.ipynb", tmp_path)
    push_cell = next(c for c in notebook.cells if c.source.startswith("if local:"))
    push_text = json.dumps(push_cell.outputs)
    assert push_text.count("<table>") == 1 and "updated" in push_text
    html_values = widget_html(notebook)
    assert not [v for v in html_values if "<table" in v], "a table inside the editor"
    assert any("Pushed from code: " in v for v in html_values)
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [m["state"] for m in state.values() if m["model_name"] == "OutputModel"]
    assert outputs and all(not o.get("outputs") for o in outputs)  # no bar left in the editor


def test_quickstart_starts_its_own_sandbox(no_env: None, api_version: str, tmp_path: Path) -> None:
    notebook = run_notebook("quickstart.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert "Local sandbox started in this kernel" in text
    assert f"API version <b>{api_version}</b>" in text
    assert "updated" in text and "Wrote " in text
    assert_no_secret(notebook, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def test_cleaning_applies_and_undoes(sandbox_env: Sandbox, tmp_path: Path) -> None:
    before = {r["id"]: r for r in sandbox_env.records()}
    notebook = run_notebook("cleaning.ipynb", tmp_path)
    text = outputs_text(notebook)
    assert f"API version <b>{sandbox_env.api_version.name}</b>" in text
    assert "would-update" in text  # the dry run
    assert "After the undo" in text and "Wrote customers-clean.parquet" in text
    assert_no_secret(notebook, sandbox_env.client_id, SECRET)
    after = {r["id"]: r for r in sandbox_env.records()}
    changed = [i for i in before if before[i] != after[i]]
    assert len(changed) < len(before) / 10, "the undo put back nearly every customer"
