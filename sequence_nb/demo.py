"""What ``sequence-nb demo`` sets up: working copies of the shipped notebooks, and Jupyter on one.

The notebooks ship inside the package (``sequence_nb/notebooks``), so the demo works
the same from a clone or after ``pip install "sequence-nb[demo]"``. Jupyter autosaves
what it opens, so the demo never opens the shipped files: it copies them into a
working folder (``~/.sequence_nb/demo`` by default, outside any clone) and opens the
copy; a copy the user has changed is kept, never overwritten, unless asked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final, Literal

__all__ = [
    "APPS",
    "NOTEBOOKS",
    "DemoError",
    "Jupyter",
    "free_port",
    "notebook_url",
    "prepare_folder",
    "settings_dir",
    "shipped",
]

#: The notebooks shipped with the package, the first one the default.
NOTEBOOKS: Final = ("quickstart.ipynb", "cleaning.ipynb")
#: The Jupyter front ends the demo can open: JupyterLab and Jupyter Notebook 7.
APPS: Final = ("lab", "notebook")
App = Literal["lab", "notebook"]

#: The page of a notebook in each front end, under the server's root.
_PAGES: Final[dict[str, str]] = {"lab": "lab/tree", "notebook": "notebooks"}
_NAMES: Final[dict[str, str]] = {"lab": "JupyterLab", "notebook": "Jupyter Notebook"}
#: Setting defaults the demo's server starts with: no "get Jupyter news?" question over
#: the notebook (``--LabApp.news_url=None`` stops the feed, not the question).
DEMO_OVERRIDES: Final = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}
}


class DemoError(Exception):
    """The demo cannot start; the message says what to change."""


def shipped(name: str) -> Traversable:
    """A notebook shipped in the package, by file name (``quickstart.ipynb``)."""
    if name not in NOTEBOOKS:
        raise DemoError(f"no shipped notebook {name!r}: choose one of {', '.join(NOTEBOOKS)}")
    return files("sequence_nb").joinpath("notebooks", name)


def prepare_folder(folder: Path, *, fresh: bool = False) -> list[str]:
    """Copy the shipped notebooks into ``folder``; one line a notebook saying what was done.

    A copy already there that differs from the shipped one (the user edited or ran it)
    is kept; with ``fresh=True`` it is renamed ``<name>.<time>.bak`` and replaced.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(
            f"cannot make the demo folder {folder}: {exc.strerror}; pass --dir"
        ) from exc
    lines = []
    for name in NOTEBOOKS:
        source, target = shipped(name).read_bytes(), folder / name
        if not target.exists():
            target.write_bytes(source)
            lines.append(f"copied {name}")
        elif target.read_bytes() == source:
            lines.append(f"{name} is up to date")
        elif fresh:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            backup = target.with_name(f"{name}.{stamp}.bak")
            target.rename(backup)
            target.write_bytes(source)
            lines.append(f"replaced {name} (your copy is now {backup.name})")
        else:
            lines.append(f"kept your copy of {name} (--fresh replaces it with the shipped one)")
    return lines


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens on it on 127.0.0.1, else a free port."""
    if not 1 <= preferred <= 65535:
        raise DemoError(f"--lab-port must be a port number from 1 to 65535, not {preferred}")
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = probe.getsockname()[1]
            return chosen
    raise DemoError("no free port on 127.0.0.1")


def notebook_url(app: App, port: int, notebook: str, token: str | None = None) -> str:
    """The address that opens ``notebook`` itself (not the Launcher or the file list)."""
    query = f"?token={token}" if token else ""
    return f"http://127.0.0.1:{port}/{_PAGES[app]}/{notebook}{query}"


def settings_dir(folder: Path, jupyter: str) -> Path:
    """Jupyter's application settings for the demo's server only: a copy of the installed
    ones (``overrides.json``, ``overrides.d``, ``page_config.json``) with
    :data:`DEMO_OVERRIDES` added, in ``folder/.jupyter-settings``. The user's own settings
    and the installed files are left as they are."""
    installed = Path(os.environ.get("JUPYTERLAB_DIR") or _prefix_of(jupyter) / "share/jupyter/lab")
    target = folder / ".jupyter-settings"
    shutil.rmtree(target, ignore_errors=True)
    if (installed / "settings").is_dir():
        shutil.copytree(installed / "settings", target)
    (target / "overrides.d").mkdir(parents=True, exist_ok=True)
    ours = target / "overrides.d" / "zz-sequence-nb-demo.json"  # read last of the directory
    ours.write_text(json.dumps(DEMO_OVERRIDES, indent=1), encoding="utf-8")
    return target


def _prefix_of(jupyter: str) -> Path:
    """The installation prefix of a ``jupyter`` command (``<prefix>/bin/jupyter``)."""
    return Path(jupyter).absolute().parent.parent


@dataclass(frozen=True)
class Jupyter:
    """How to run one Jupyter front end on the demo folder, opening one notebook."""

    app: App
    folder: Path
    notebook: str
    port: int
    open_browser: bool = True
    token: str = ""
    settings: Path | None = None

    @property
    def name(self) -> str:
        """The front end's name for people (``JupyterLab``, ``Jupyter Notebook``)."""
        return _NAMES[self.app]

    @property
    def url(self) -> str:
        """The notebook's address, with the token that opens it."""
        return notebook_url(self.app, self.port, self.notebook, self.token)

    def command(self, jupyter: str) -> list[str]:
        """The command line (the token goes in the environment: :meth:`environ`)."""
        app_class = "LabApp" if self.app == "lab" else "JupyterNotebookApp"
        command = [
            jupyter,
            self.app,
            f"--ServerApp.root_dir={self.folder}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",  # the address printed must be the one served
            f"--{app_class}.default_url=/{_PAGES[self.app]}/{self.notebook}",
            "--ServerApp.open_browser=" + str(self.open_browser),
        ]
        if self.app == "lab":
            command.append("--LabApp.news_url=None")  # no news feed
        if self.settings is not None:
            command.append(f"--{app_class}.app_settings_dir={self.settings}")
        if getattr(os, "geteuid", lambda: -1)() == 0:
            command.append("--allow-root")  # containers and CI machines run as root
        return command

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with the server's token (kept off the command line, which any local
        user can read)."""
        return {**base, "JUPYTER_TOKEN": self.token}

    def wait_until_up(self, process: subprocess.Popen[bytes], timeout: float = 90) -> bool:
        """True once the server answers; False if it exited first."""
        import httpx

        deadline = time.monotonic() + timeout
        status = f"http://127.0.0.1:{self.port}/api/status"
        headers = {"Authorization": f"token {self.token}"}
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if httpx.get(status, headers=headers, timeout=1, trust_env=False).is_success:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise DemoError(f"{self.name} did not answer on port {self.port} within {timeout:.0f} s")


def new_token() -> str:
    """A fresh token for the demo's server."""
    return secrets.token_hex(24)


def find_jupyter() -> str:
    """The ``jupyter`` command beside this Python, else on ``PATH``."""
    beside = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    found = beside or shutil.which("jupyter")
    if found is None:
        raise DemoError("Jupyter is not installed: pip install 'sequence-nb[demo]'")
    return found


def has_app(jupyter: str, app: App) -> bool:
    """True when ``jupyter <app>`` is installed (``jupyter-lab``, ``jupyter-notebook``)."""
    folder = str(Path(jupyter).parent)
    return shutil.which(f"jupyter-{app}", path=folder) is not None or (
        shutil.which(f"jupyter-{app}") is not None
    )


def run(
    jupyter: Jupyter,
    command: list[str],
    env: Mapping[str, str],
    on_ready: Callable[[], None],
) -> int:
    """Run Jupyter until it ends or we are stopped (Ctrl-C, SIGTERM), then end it too;
    ``on_ready`` runs once it answers (to print the address last, after its own log)."""
    child = subprocess.Popen(command, env=dict(env))
    try:
        if jupyter.wait_until_up(child):
            on_ready()
        return child.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
