"""``sequence-nb demo``: working copies of the shipped notebooks, Jupyter opened on one.

The CLI runs as a user runs it (``python -m sequence_nb.cli`` in a subprocess) from a
folder that is not the repository, with its own HOME, so it proves the demo needs no
clone: the notebooks come from the package.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sequence_nb import demo

REPO = Path(__file__).resolve().parents[1]


def test_the_notebooks_ship_inside_the_package() -> None:
    for name in demo.NOTEBOOKS:
        notebook = json.loads(demo.shipped(name).read_text(encoding="utf-8"))
        assert notebook["cells"], name
    with pytest.raises(demo.DemoError, match=r"quickstart\.ipynb"):
        demo.shipped("../pyproject.toml")


def test_the_working_folder_gets_copies_and_keeps_the_users_changes(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    assert demo.prepare_folder(folder) == [f"copied {name}" for name in demo.NOTEBOOKS]
    quickstart = folder / "quickstart.ipynb"
    assert quickstart.read_bytes() == demo.shipped("quickstart.ipynb").read_bytes()
    assert demo.prepare_folder(folder)[0] == "quickstart.ipynb is up to date"
    quickstart.write_text('{"edited": true}')
    assert demo.prepare_folder(folder)[0].startswith("kept your copy of quickstart.ipynb")
    assert quickstart.read_text() == '{"edited": true}'
    line = demo.prepare_folder(folder, fresh=True)[0]
    assert line.startswith("replaced quickstart.ipynb (your copy is now quickstart.ipynb.")
    assert quickstart.read_bytes() == demo.shipped("quickstart.ipynb").read_bytes()
    (backup,) = folder.glob("quickstart.ipynb.*.bak")
    assert backup.read_text() == '{"edited": true}'


def test_a_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(demo.DemoError, match="pass --dir"):
        demo.prepare_folder(blocker / "work")


def test_a_port_out_of_range_is_one_clear_error() -> None:
    with pytest.raises(demo.DemoError, match="--lab-port must be a port number"):
        demo.free_port(70000)


def test_the_address_opens_the_notebook_itself() -> None:
    jupyter = demo.Jupyter("lab", Path("/w"), "quickstart.ipynb", 8899, token="abc")
    assert jupyter.url == "http://127.0.0.1:8899/lab/tree/quickstart.ipynb?token=abc"
    command = jupyter.command("jupyter")
    assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in command
    assert "--LabApp.news_url=None" in command  # no news pop-up
    assert not any("abc" in part for part in command)  # the token is not on the command line
    notebook = demo.Jupyter("notebook", Path("/w"), "cleaning.ipynb", 8899, token="abc")
    assert notebook.url == "http://127.0.0.1:8899/notebooks/cleaning.ipynb?token=abc"
    assert "--JupyterNotebookApp.default_url=/notebooks/cleaning.ipynb" in notebook.command("j")


@contextmanager
def running_demo(tmp_path: Path, *options: str) -> Iterator[tuple[str, Path]]:
    """``sequence-nb demo --no-browser`` from an empty folder; yields the address it prints
    and the log file. Stops it with SIGTERM, as Ctrl-C would."""
    home, cwd = tmp_path / "home", tmp_path / "elsewhere"
    cwd.mkdir()
    env = dict(
        os.environ,
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PYTHONPATH=str(REPO),
    )
    log_path = tmp_path / "demo.log"
    command = [sys.executable, "-m", "sequence_nb.cli", "demo", "--no-browser", "--customers"]
    with log_path.open("w") as log:
        child = subprocess.Popen(
            [*command, "20", *options], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while not (found := re.search(r"^    (http://\S+)$", log_path.read_text(), re.M)):
            assert child.poll() is None, f"the demo exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, "the demo printed no address"
            time.sleep(0.2)
        yield found.group(1), log_path
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            assert child.wait(timeout=20) == 130
        except subprocess.TimeoutExpired:
            child.kill()
            raise


@pytest.mark.parametrize(("app", "page"), [("lab", "lab/tree"), ("notebook", "notebooks")])
def test_the_demo_opens_a_working_copy_from_any_folder(tmp_path: Path, app: str, page: str) -> None:
    shipped = demo.shipped("quickstart.ipynb").read_bytes()
    with running_demo(tmp_path, "--app", app) as (url, log):
        assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/{page}/quickstart\.ipynb\?token=\w+", url)
        answer = httpx.get(url, timeout=10, trust_env=False)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
        base, token = url.split(f"/{page}/")[0], url.rsplit("=", 1)[1]
        headers = {"Authorization": f"token {token}"}
        contents = httpx.get(f"{base}/api/contents", headers=headers, timeout=10).json()
        assert {c["name"] for c in contents["content"]} >= set(demo.NOTEBOOKS)
        # What Jupyter's autosave does: write the open notebook back.
        saved = httpx.get(f"{base}/api/contents/quickstart.ipynb", headers=headers).json()
        saved["content"]["metadata"]["autosaved"] = True
        body = {"type": "notebook", "format": "json", "content": saved["content"]}
        httpx.put(f"{base}/api/contents/quickstart.ipynb", headers=headers, json=body)
        text = log.read_text()
    working = tmp_path / "home" / ".sequence_nb" / "demo" / "quickstart.ipynb"
    assert json.loads(working.read_text())["metadata"]["autosaved"] is True
    assert demo.shipped("quickstart.ipynb").read_bytes() == shipped  # the package's copy
    assert "Sandbox: http://127.0.0.1:" in text and "copied quickstart.ipynb" in text


def test_without_jupyter_the_demo_says_what_to_install(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    env = dict(os.environ, PATH=str(bare), HOME=str(tmp_path), PYTHONPATH=str(REPO))
    code = (
        "import shutil, sys; from sequence_nb import cli; "
        "shutil.which = lambda *a, **k: None; sys.exit(cli.main(['demo', '--no-browser']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sequence-nb demo: Jupyter is not installed: pip install 'sequence-nb[demo]'"
    )
