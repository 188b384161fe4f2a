"""The ``sequence-nb`` command: a thin shell over the library."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_NOTEBOOK = Path("notebooks") / "quickstart.ipynb"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    status: int = args.run(args)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sequence-nb",
        description="Clean the customer records of a Sequence billing account.",
    )
    commands = parser.add_subparsers(title="commands")

    sandbox = commands.add_parser("sandbox", help="run a local Sequence-compatible server")
    _add_sandbox_options(sandbox, default_port=8765)
    sandbox.set_defaults(run=_run_sandbox)

    demo = commands.add_parser("demo", help="start the sandbox and JupyterLab on the quickstart")
    _add_sandbox_options(demo, default_port=0)
    demo.add_argument("--notebook", type=Path, default=DEFAULT_NOTEBOOK)
    demo.add_argument("--lab-port", type=int, default=8888)
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.set_defaults(run=_run_demo)
    return parser


def _add_sandbox_options(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument("--customers", type=int, default=200, help="how many to seed")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port")


def _run_sandbox(args: argparse.Namespace) -> int:
    from sequence_nb import sandbox

    sandbox.serve(customers=args.customers, seed=args.seed, port=args.port)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from sequence_nb import sandbox

    notebook: Path = args.notebook
    if not notebook.is_file():
        print(f"sequence-nb demo: no notebook at {notebook}; run it from the repository root")
        return 2
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which(
        "jupyter"
    )
    if jupyter is None:
        print("sequence-nb demo: JupyterLab is not installed: pip install 'sequence-nb[demo]'")
        return 2
    with sandbox.start(customers=args.customers, seed=args.seed, port=args.port) as server:
        print(f"Sandbox: {server.url} (client id {server.client_id}, demo credentials)")
        env = dict(
            os.environ,
            SEQUENCE_BASE_URL=server.url,
            SEQUENCE_CLIENT_ID=server.client_id,
            SEQUENCE_CLIENT_SECRET=server.client_secret,
        )
        command = [jupyter, "lab", str(notebook), f"--ServerApp.port={args.lab_port}"]
        if args.no_browser:
            command.append("--no-browser")
        try:
            return subprocess.call(command, env=env)
        except KeyboardInterrupt:
            return 130


if __name__ == "__main__":
    raise SystemExit(main())
