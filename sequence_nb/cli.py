"""The ``sequence-nb`` command: a thin shell over the library.

Every mistake a user can make (a wrong or missing file, missing or refused
credentials, a bad flag) ends the command with one line on standard error naming
what to change, the flag, the file or the environment variable, and exit status 1
(2 for a command line that cannot be parsed); never a traceback. What it prints
for people is one table (:mod:`sequence_nb.terminal`), every text escaped; ``--json``
prints the same for scripts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sequence_nb import fields
from sequence_nb.demo import NOTEBOOKS as DEMO_NOTEBOOKS
from sequence_nb.errors import AuthenticationError, PermissionDeniedError, SequenceError
from sequence_nb.fields import ApiVersion

if TYPE_CHECKING:
    import polars as pl

    from sequence_nb.client import SequenceClient
    from sequence_nb.journal import RunRecord
    from sequence_nb.plan import ChangePlan
    from sequence_nb.push import PushResult

CLIENT_ID = "SEQUENCE_CLIENT_ID"
CLIENT_SECRET = "SEQUENCE_CLIENT_SECRET"
BASE_URL = "SEQUENCE_BASE_URL"
#: Set to show the traceback of an unexpected error (a bug) instead of its one line.
DEBUG = "SEQUENCE_NB_DEBUG"
#: The formats a push reads: those export writes (typed ones carry their dtypes).
_TYPED_FORMATS = ("parquet", "json")


class InputError(SequenceError, ValueError):
    """A file or option given to the command cannot be used; the message says what to change."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a command line it cannot parse
        return stop.code if isinstance(stop.code, int) else 2
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        print("sequence-nb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get(DEBUG):
            raise
        print(f"sequence-nb: {_shown(_message(exc))}", file=sys.stderr)
        return 1
    return status


def _message(exc: Exception) -> str:
    """One line saying what went wrong and what to change."""
    if isinstance(exc, AuthenticationError):
        return (
            f"{_base_url()} refused the credentials (401): check {CLIENT_ID} and "
            f"{CLIENT_SECRET} (a Client ID and Secret made in the Sequence dashboard for "
            f"this {BASE_URL})"
        )
    if isinstance(exc, PermissionDeniedError):
        return (
            f"{_base_url()} does not let these credentials do this (403: {exc.message}): "
            f"use a {CLIENT_ID} with access to customers"
        )
    if isinstance(exc, FileNotFoundError):
        return f"no such file or folder: {exc.filename}"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a folder: give a file"
    if isinstance(exc, PermissionError):
        return f"not allowed to open {exc.filename}: check the file's owner and permissions"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    if isinstance(exc, (SequenceError, OSError, LookupError, ValueError)):
        return str(exc) or type(exc).__name__
    return (
        f"unexpected {type(exc).__name__}: {exc}. This is a bug: please report it with the "
        f"command you ran ({DEBUG}=1 shows the traceback)"
    )


def _base_url() -> str:
    from sequence_nb.client import SequenceClient

    return os.environ.get(BASE_URL) or SequenceClient.production_url


def _shown(value: object) -> str:
    """``value`` as one line of text a terminal shows as it is: every character that
    would move the cursor, erase or break a line, or not show at all (ESC, CR, LF,
    zero-width and bidi characters) as its escape. Whatever the command prints from a
    plan, a journal, a server or an exception goes through here."""
    from sequence_nb.models import escape_unseen

    return escape_unseen(str(value))


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line naming the command's help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {_shown(message)} (see {self.prog} --help)\n")


class _Help(argparse.HelpFormatter):
    """Help that shows each option's default (when it has one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: %(default)s)"


def _positive(text: str) -> int:
    number = _whole(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _not_negative(text: str) -> int:
    number = _whole(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {number}")
    return number


def _port(text: str) -> int:
    number = _whole(text)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {number}")
    return number


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def _api_version(text: str) -> str:
    """A version name this package speaks (an unknown one names the known ones)."""
    try:
        return fields.api_version(text.strip()).name
    except fields.UnknownApiVersionError:
        known = ", ".join(fields.API_VERSIONS)
        raise argparse.ArgumentTypeError(
            f"unknown API version {text!r}; sequence-nb speaks {known}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    from sequence_nb import __version__

    parser = _Parser(
        prog="sequence-nb",
        description="Clean the customer records of a Sequence billing account. Credentials "
        f"come from {CLIENT_ID}, {CLIENT_SECRET} and {BASE_URL} (default: production).",
        formatter_class=_Help,
    )
    parser.add_argument(
        "--version", action="version", version=f"sequence-nb {__version__}", help="say the version"
    )
    commands = parser.add_subparsers(title="commands", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, formatter_class=_Help)

    sandbox = command("sandbox", "run a local Sequence-compatible server until Ctrl-C")
    _add_sandbox_options(sandbox, default_port=8765)
    _add_version_option(sandbox, "the API version the sandbox serves")
    sandbox.set_defaults(run=_run_sandbox)

    demo = commands.add_parser(
        "demo",
        help="start the sandbox and Jupyter on a working copy of the quickstart",
        description="Copy the shipped notebooks into a working folder (the package's own "
        "copies are never opened, so Jupyter's autosave changes nothing you did not), start "
        "the local sandbox and open the notebook in JupyterLab or Jupyter Notebook 7.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_sandbox_options(demo, default_port=0)
    demo.add_argument(
        "--notebook",
        default="quickstart",
        choices=[name.removesuffix(".ipynb") for name in DEMO_NOTEBOOKS],
        help="the shipped notebook to open",
    )
    demo.add_argument(
        "--app", choices=["lab", "notebook"], default="lab", help="JupyterLab or Notebook 7"
    )
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("~/.sequence_nb/demo"),
        help="the working folder for the notebooks (copies; yours to edit)",
    )
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="replace copies you changed with the shipped notebooks (yours are kept as .bak)",
    )
    demo.add_argument(
        "--lab-port", type=int, default=8888, help="Jupyter's port (a free one if it is taken)"
    )
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    _add_version_option(demo, "the API version the sandbox serves (and the notebooks speak)")
    demo.set_defaults(run=_run_demo)

    export = command("export", "fetch every customer and write a file")
    export.add_argument(
        "path", type=Path, metavar="FILE", help="the file to write: .parquet, .csv, .json or .xlsx"
    )
    export.add_argument(
        "--format",
        choices=["parquet", "csv", "json", "xlsx"],
        help="the format to write (default: the one the file's extension names)",
    )
    export.add_argument(
        "--include-archived", action="store_true", help="export archived customers too"
    )
    export.add_argument(
        "--contacts",
        action="store_true",
        help="write the customers' contacts instead, one row per contact (2024-07-30)",
    )
    _add_version_option(export)
    export.set_defaults(run=_run_export)

    push = command("push", "push the edits in a file, or a saved plan, after showing the plan")
    push.add_argument(
        "path",
        type=Path,
        nargs="?",
        metavar="EDITED",
        help="the edited customers: a .parquet, .csv, .json or .xlsx file export wrote",
    )
    push.add_argument(
        "--base",
        type=Path,
        metavar="EXPORT",
        help="the export the edits started from, unedited: changes made in Sequence since "
        "then are kept, or reported as conflicts, instead of being written over",
    )
    push.add_argument(
        "--against-current",
        action="store_true",
        help="plan against Sequence's current records instead of --base: any value in the "
        "file that Sequence has changed since is written back",
    )
    push.add_argument(
        "--plan",
        type=Path,
        metavar="FILE",
        help="apply a saved, reviewed plan file (see --save-plan) as it is",
    )
    push.add_argument(
        "--save-plan", type=Path, metavar="FILE", help="write the plan to this file for review"
    )
    push.add_argument(
        "--contacts",
        action="store_true",
        help="the files hold contacts (export --contacts): plan the contact edits (2024-07-30)",
    )
    _add_version_option(
        push, "the API version to speak", default="a --plan's own, else $SEQUENCE_API_VERSION"
    )
    _add_push_options(push)
    push.add_argument(
        "--on-conflict",
        choices=["skip", "overwrite"],
        default="skip",
        help="what to do with a field someone changed in Sequence since the export",
    )
    push.set_defaults(run=_run_push)

    archive = command(
        "archive",
        "archive customers (2024-07-30); Sequence has no way back and undo cannot restore them",
    )
    archive.add_argument("ids", nargs="+", metavar="ID", help="the ids of the customers to archive")
    _add_version_option(archive)
    _add_push_options(archive, digest=False)
    archive.set_defaults(run=_run_archive)

    undo = command("undo", "restore what a run changed (reads Sequence first)")
    undo.add_argument(
        "run_id", metavar="RUN_ID", help="the run to undo, as `sequence-nb runs` lists it"
    )
    _add_version_option(undo, "the API version to speak", default="the run's")
    _add_push_options(undo)
    undo.set_defaults(run=_run_undo)

    resume = command("resume", "finish a run a crash or Ctrl-C cut short")
    resume.add_argument(
        "run_id", metavar="RUN_ID", help="the run to finish, as `sequence-nb runs` lists it"
    )
    _add_version_option(resume, "the API version to speak", default="the run's")
    _add_push_options(resume, dry_run=False)
    resume.add_argument(
        "--on-conflict",
        choices=["skip", "overwrite"],
        default="skip",
        help="what to do with a field someone changed in Sequence meanwhile",
    )
    resume.set_defaults(run=_run_resume)

    runs = command("runs", "list the runs in the journal, newest first")
    _add_journal_option(runs)
    runs.add_argument("--json", action="store_true", help="print JSON for scripts")
    runs.set_defaults(run=_run_runs)

    history = command("history", "every field each run changed, for audits")
    history.add_argument("--customer", metavar="ID", help="only this customer (its id)")
    history.add_argument(
        "--since",
        metavar="DATE",
        help="only changes from this date or time on (2026-12-01, 2026-12-01T09:30Z)",
    )
    history.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the history to this .parquet, .csv, .json or .xlsx file",
    )
    history.add_argument(
        "--format",
        choices=["parquet", "csv", "json", "xlsx"],
        help="the format of --out (default: the one its extension names)",
    )
    _add_journal_option(history)
    history.add_argument("--json", action="store_true", help="print JSON for scripts")
    history.set_defaults(run=_run_history)
    return parser


def _add_journal_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help="the journal file (default: $SEQUENCE_NB_JOURNAL, else "
        "~/.sequence_nb/journal.sqlite3)",
    )


def _add_version_option(
    parser: argparse.ArgumentParser,
    help: str = "the API version to speak",
    *,
    default: str = "$SEQUENCE_API_VERSION",
) -> None:
    known = " or ".join(fields.API_VERSIONS)
    parser.add_argument(
        "--api-version",
        type=_api_version,
        metavar="NAME",
        help=f"{help}: {known} (default: {default}, else {fields.SEED.name}; "
        f"here: {_shown(_environment_version()).replace('%', '%%')})",
    )


def _environment_version() -> str:
    """The version $SEQUENCE_API_VERSION names, for the help (never an error there)."""
    try:
        return fields.api_version(None).name
    except fields.UnknownApiVersionError as exc:
        return f"unknown {exc.name!r}"


def _version(args: argparse.Namespace) -> ApiVersion:
    """The API version the command speaks: ``--api-version``, else $SEQUENCE_API_VERSION,
    else the seed's (an unknown name in the environment is one line naming the known)."""
    return fields.api_version(getattr(args, "api_version", None))


def _add_push_options(
    parser: argparse.ArgumentParser, *, dry_run: bool = True, digest: bool = True
) -> None:
    if dry_run:
        parser.add_argument(
            "--dry-run", action="store_true", help="check every row against Sequence, write nothing"
        )
    if dry_run and digest:
        parser.add_argument(
            "--digest",
            metavar="SHA256",
            help="the saved plan's digest as reviewed (sha256:...): any other plan is refused",
        )
    parser.add_argument("--yes", action="store_true", help="do not ask before writing")
    _add_journal_option(parser)
    parser.add_argument(
        "--max-workers", type=_positive, default=8, metavar="N", help="how many writes run at once"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON for scripts (needs --yes or --dry-run)"
    )


def _add_sandbox_options(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument("--customers", type=_not_negative, default=200, help="how many to seed")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--port", type=_port, default=default_port, help="0 picks a free port")


def _run_sandbox(args: argparse.Namespace) -> int:
    """Serve a sandbox until Ctrl-C (or SIGTERM), after printing how to point the shell
    at it: its URL, its demo credentials and the ``export`` lines to paste."""
    from sequence_nb import sandbox

    version = _version(args)
    signal.signal(signal.SIGTERM, _interrupt)
    with sandbox.start(
        customers=args.customers, seed=args.seed, port=args.port, api_version=version.name
    ) as server:
        print(
            f"Sequence sandbox with {len(server.records())} customers at {server.url} "
            f"(API version {server.api_version.name})"
        )
        print(f"  client id:     {server.client_id}")
        print(f"  client secret: {server.client_secret}  (a local demo credential)")
        print("To point sequence-nb (or a notebook) at it, paste this in another shell:")
        for name, value in server.environ().items():
            print(f"  export {name}={shlex.quote(value)}")
        print("Press Ctrl-C to stop.", flush=True)
        stopped = threading.Event()
        try:
            while server.running and not stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("Sandbox stopped.")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from sequence_nb import demo, sandbox

    app = args.app
    try:
        jupyter_bin = demo.find_jupyter()
        if not demo.has_app(jupyter_bin, app):
            package = "jupyterlab" if app == "lab" else "notebook"
            raise demo.DemoError(f"jupyter {app} is not installed: pip install 'sequence-nb[demo]'"
                                 f" (or pip install {package})")  # fmt: skip
        folder = args.dir.expanduser().resolve()
        for line in demo.prepare_folder(folder, fresh=args.fresh):
            print(f"Notebooks in {folder}: {line}")
        port = demo.free_port(args.lab_port)
    except demo.DemoError as exc:
        print(f"sequence-nb demo: {_shown(exc)}", file=sys.stderr)
        return 2
    jupyter = demo.Jupyter(
        app=app,
        folder=folder,
        notebook=f"{args.notebook}.ipynb",
        port=port,
        open_browser=not args.no_browser,
        token=demo.new_token(),
        settings=demo.settings_dir(folder, jupyter_bin),
    )
    version = _version(args)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with sandbox.start(
        customers=args.customers, seed=args.seed, port=args.port, api_version=version.name
    ) as server:
        print(
            f"Sandbox: {server.url} (client id {server.client_id}, demo credentials, "
            f"API version {server.api_version.name})"
        )
        env = jupyter.environ(dict(os.environ, **server.environ()))

        def ready() -> None:
            print(f"\n{jupyter.name} is ready. Open the notebook at:\n\n    {jupyter.url}\n")
            print("Ctrl-C stops Jupyter and the sandbox.", flush=True)

        return demo.run(jupyter, jupyter.command(jupyter_bin), env, ready)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _client(version: ApiVersion) -> SequenceClient:
    """The client the environment names, speaking ``version``; a missing credential is
    one line naming the variable to set."""
    from sequence_nb.client import SequenceClient

    for name, what in ((CLIENT_ID, "Client ID"), (CLIENT_SECRET, "Client Secret")):
        if not os.environ.get(name, "").strip():
            raise InputError(
                f"{name} is not set: export {name}=... with the {what} made in the Sequence "
                "dashboard (or run `sequence-nb sandbox` and paste the lines it prints)"
            )
    return SequenceClient(api_version=version)


def _needs_contacts(version: ApiVersion, what: str) -> None:
    """Refuse, before anything is read or sent, contacts in a version without them."""
    if version.contacts_field is None:
        raise InputError(_without_call(version, what, "contacts"))


def _without_call(version: ApiVersion, what: str, having: str) -> str:
    having_ones = [
        v.name
        for v in fields.API_VERSIONS.values()
        if (v.can_archive if having == "archives" else v.contacts_field is not None)
    ]
    newest = having_ones[-1]
    return (
        f"{what} needs API version {newest}: API version {version.name} has no {having}. "
        f"Pass --api-version {newest} (or export SEQUENCE_API_VERSION={newest})"
    )


def _run_export(args: argparse.Namespace) -> int:
    from sequence_nb.export import export, export_format
    from sequence_nb.frames import fetch_customers

    export_format(args.path, args.format)  # a name it cannot write is refused before fetching
    folder = args.path.expanduser().parent
    if not folder.is_dir():
        raise InputError(f"cannot write {args.path}: there is no folder {folder}")
    version = _version(args)
    if args.contacts:
        _needs_contacts(version, "export --contacts")
    with _client(version) as client:
        if args.contacts:
            frame, customers = _all_contacts(client, args.include_archived)
        else:
            frame = fetch_customers(client, includeArchived=args.include_archived)
    written = _shown(export(frame, args.path, format=args.format))
    flags = f" --api-version {version.name}" if args.api_version else ""
    if args.contacts:
        print(f"Wrote {frame.height} contacts of {customers} customers to {written}")
        flags = f" --contacts{flags}"
    else:
        print(f"Wrote {frame.height} customers to {written}")
    print(
        "To push edits, edit a copy and keep this file as it is: "
        f"sequence-nb push COPY{flags} --base {written}"
    )
    return 0


def _all_contacts(client: SequenceClient, include_archived: bool) -> tuple[pl.DataFrame, int]:
    """The contacts of every listed customer (archived ones too when asked), and how
    many customers were read; one line naming the customers that could not be read."""
    if include_archived:
        listed = client.list_customers(includeArchived=True)
    else:
        listed = client.list_customers()
    ids = [record["id"] for record in listed]
    return _contacts_of(client, ids), len(ids)


def _contacts_of(client: SequenceClient, ids: list[str]) -> pl.DataFrame:
    from sequence_nb.contacts import ContactFetchError, fetch_contacts

    try:
        return fetch_contacts(client, ids)
    except ContactFetchError as exc:
        failed = list(exc.failed.items())
        shown = "; ".join(f"{customer}: {why}" for customer, why in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise SequenceError(
            f"the contacts of {len(failed)} customer(s) could not be read ({shown}{more}); "
            "nothing was written: try again"
        ) from None


# -- push ---------------------------------------------------------------------------------


def _run_push(args: argparse.Namespace) -> int:
    refusal = _push_refusal(args)
    if refusal:
        print(f"sequence-nb push: {_shown(refusal)}", file=sys.stderr)
        return 2
    if args.plan is not None:
        from sequence_nb.plan import ChangePlan

        plan = ChangePlan.load(args.plan)
        version = _pinned_version(args, plan.version, f"the plan in {args.plan.name}")
        with _client(version) as client:
            _save(plan, args)
            return _confirm_and_apply(plan, client, args, on_conflict=args.on_conflict)
    version = _version(args)
    if args.contacts:
        _needs_contacts(version, "push --contacts")
        edited_contacts, base_contacts = _read_contact_files(args.path, args.base, version)
        with _client(version) as client:
            plan = _planned_contacts(edited_contacts, base_contacts, client)
            _save(plan, args)
            return _confirm_and_apply(plan, client, args, on_conflict=args.on_conflict)
    edited, base = _read_files(args.path, args.base, version)
    with _client(version) as client:
        plan = _planned(args.path, edited, base, client)
        _save(plan, args)
        return _confirm_and_apply(plan, client, args, on_conflict=args.on_conflict)


def _pinned_version(args: argparse.Namespace, version: ApiVersion, what: str) -> ApiVersion:
    """The version of a saved plan or a journaled run, which is the one to speak: an
    ``--api-version`` naming another is refused (its bodies are in its own version)."""
    given = getattr(args, "api_version", None)
    if given is not None and given != version.name:
        raise InputError(
            f"{what} was made in API version {version.name}, not {given}: it is applied in "
            f"its own version; leave out --api-version (or give {version.name})"
        )
    return version


def _save(plan: ChangePlan, args: argparse.Namespace) -> None:
    if args.save_plan is None:
        return
    written = _shown(plan.save(args.save_plan))
    print(f"Saved the plan to {written}. To apply it as reviewed:", file=_notes(args))
    print(f"sequence-nb push --plan {written} --digest {plan.digest}", file=_notes(args))


def _notes(args: argparse.Namespace) -> Any:
    """Where lines for people go: standard error when standard output is JSON."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def _push_refusal(args: argparse.Namespace) -> str | None:
    """Why ``push`` will not run as asked (one line), or ``None``."""
    if args.json and not (args.dry_run or args.yes):
        return (
            "--json prints for a script, which cannot answer the question: add --yes or --dry-run"
        )
    if args.plan is not None:
        if args.path is not None or args.base is not None or args.against_current or args.contacts:
            return (
                "--plan applies a saved plan as it is: give no edited file, --base, "
                "--contacts or --against-current with it"
            )
        return None
    if args.path is None:
        return "give the edited file (with --base EXPORT), or --plan FILE"
    if args.digest is not None:
        return (
            "--digest pins a saved plan, and a plan made anew from a file has a digest of its "
            "own (its plan id and time are under it): write it with --save-plan FILE, review "
            "it, then push --plan FILE --digest ..."
        )
    if args.base is not None and args.against_current:
        return "give --base EXPORT or --against-current, not both"
    if args.base is None and not args.against_current:
        return (
            f"not planning {args.path.name} without --base EXPORT (the unedited export the "
            "edits started from); pass --against-current to plan against Sequence's current "
            "records, writing back any value Sequence has changed since"
        )
    return None


def _read_contact_files(
    edited_path: Path, base_path: Path | None, version: ApiVersion
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The edited contacts and the ``--base`` contacts export, refused before anything
    is fetched when either cannot be read."""
    for path, role in ((edited_path, "the edited file"), (base_path, "--base")):
        if path is not None:
            _format_of(path, role)
            if not path.expanduser().exists():
                raise InputError(f"{role}: there is no file {path}")
    edited = _read_contacts(edited_path, "the edited file", version)
    base = None if base_path is None else _read_contacts(base_path, "--base", version)
    return edited, base


def _read_contacts(path: Path, role: str, version: ApiVersion) -> pl.DataFrame:
    import polars as pl

    from sequence_nb.contacts import CUSTOMER_ID
    from sequence_nb.export import ReadBackError, read_contacts_export

    try:
        frame = read_contacts_export(path, api_version=version)
    except IsADirectoryError:
        raise InputError(f"{role}: {path} is a folder; give the file export wrote") from None
    except ReadBackError as exc:
        raise InputError(f"{role}: {exc}") from None
    for column in (CUSTOMER_ID, "id"):
        if frame[column].dtype != pl.String:
            raise InputError(
                f"{role}: {path.name} holds {frame[column].dtype} in its '{column}' column "
                "where ids are text: keep the export's column as it was written"
            )
    return frame


def _planned_contacts(
    edited: pl.DataFrame, base: pl.DataFrame | None, client: SequenceClient
) -> ChangePlan:
    """The plan of the contact edits, on the records of the customers they concern
    (a customer with no row in the edited file is left alone)."""
    import polars as pl

    from sequence_nb.contacts import CUSTOMER_ID
    from sequence_nb.frames import fetch_customers
    from sequence_nb.plan import plan_updates

    concerned = edited.get_column(CUSTOMER_ID).drop_nulls().unique().implode()
    customers = fetch_customers(client, includeArchived=True).filter(pl.col("id").is_in(concerned))
    if base is None:
        base = _contacts_of(client, customers.get_column("id").to_list())
        print(
            "Planned against Sequence's current contacts: any contact in the edited file "
            "older than Sequence's is written back as if it were an edit. Pass the "
            "unedited contacts export as --base to keep changes made since.",
            file=sys.stderr,
        )
    return plan_updates(
        customers,
        customers,
        contacts=base,
        edited_contacts=edited,
        base_url=client.base_url,
        api_version=client.api_version,
    )


def _read_files(
    edited_path: Path, base_path: Path | None, version: ApiVersion
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The edited file and the ``--base`` export, each read in the other's schema when it
    is CSV or Excel and the other carries types (parquet, JSON): refused before
    anything is fetched when either cannot be read."""
    edited_typed = _format_of(edited_path, "the edited file") in _TYPED_FORMATS
    base_typed = base_path is not None and _format_of(base_path, "--base") in _TYPED_FORMATS
    for path, role in ((edited_path, "the edited file"), (base_path, "--base")):
        if path is not None and not path.expanduser().exists():
            raise InputError(f"{role}: there is no file {path}")
    if base_path is None:
        return _read(edited_path, "the edited file", version), None
    if base_typed or not edited_typed:
        base = _read(base_path, "--base", version)
        return _read(edited_path, "the edited file", version, base.schema), base
    edited = _read(edited_path, "the edited file", version)
    return edited, _read(base_path, "--base", version, edited.schema)


def _format_of(path: Path, role: str) -> str:
    from sequence_nb.export import ExportError, export_format

    try:
        return export_format(path)
    except ExportError:
        raise InputError(
            f"{role} {_shown(path.name)}: push reads the files export writes: .parquet, "
            ".csv, .json or .xlsx"
        ) from None


def _read(path: Path, role: str, version: ApiVersion, schema: Any = None) -> pl.DataFrame:
    """The customers in ``path`` (with an ``id`` column of text), read in ``version``;
    else an :class:`InputError` naming ``role`` (the edited file or ``--base``) and
    what to change."""
    import polars as pl

    from sequence_nb.export import ReadBackError, read_export

    try:
        frame = read_export(path, schema=schema, api_version=version)
    except FileNotFoundError:
        raise InputError(f"{role}: there is no file {path}") from None
    except IsADirectoryError:
        raise InputError(f"{role}: {path} is a folder; give the file export wrote") from None
    except ReadBackError as exc:
        raise InputError(f"{role}: {exc}") from None
    if "id" not in frame.columns:
        raise InputError(
            f"{role}: {path.name} has no 'id' column: rows are matched by id, so keep the "
            "export's id column"
        )
    if frame["id"].dtype != pl.String:
        raise InputError(
            f"{role}: {path.name} holds {frame['id'].dtype} in its 'id' column where "
            "customer ids are text: rows are matched by id, so keep the export's id column "
            "as it was written"
        )
    _check_version_of(frame, path, role, version)
    return frame


def _check_version_of(frame: pl.DataFrame, path: Path, role: str, version: ApiVersion) -> None:
    """Refuse a file exported in another API version: it holds columns that version
    edits and this one does not know, and none this one edits that the other does not
    know. Planned in this version, its edits could not be written as meant."""
    for other in fields.API_VERSIONS.values():
        theirs = [c for c in frame.columns if other.is_editable(c) and not _known(version, c)]
        ours = [c for c in frame.columns if version.is_editable(c) and not _known(other, c)]
        if theirs and not ours:
            named = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
            raise InputError(
                f"{role}: {path.name} holds columns of API version {other.name} ({named}), "
                f"not of {version.name}: pass --api-version {other.name} (or export "
                f"SEQUENCE_API_VERSION={other.name})"
            )


def _known(version: ApiVersion, column: str) -> bool:
    return column in version.known_columns or version.keyed_column(column) is not None


def _planned(
    path: Path, edited: pl.DataFrame, base: pl.DataFrame | None, client: SequenceClient
) -> ChangePlan:
    """The plan of the edited file against ``--base`` or Sequence's current records."""
    import polars as pl

    from sequence_nb.frames import fetch_customers
    from sequence_nb.plan import plan_updates

    original = base
    if original is None:
        original = fetch_customers(client, includeArchived=True)
        if _format_of(path, "the edited file") not in _TYPED_FORMATS:
            edited = _read(path, "the edited file", client.api_version, original.schema)
        print(
            f"Planned against Sequence's current records: any value in {_shown(path.name)} "
            "older than Sequence's is written back as if it were an edit. Pass the "
            "unedited export as --base to keep changes made since.",
            file=sys.stderr,
        )
    ids = edited["id"].drop_nulls().implode()
    original = original.filter(pl.col("id").is_in(ids))
    return plan_updates(original, edited, base_url=client.base_url, api_version=client.api_version)


# -- showing and applying a plan ----------------------------------------------------------


def _confirm_and_apply(
    plan: ChangePlan,
    client: SequenceClient,
    args: argparse.Namespace,
    *,
    on_conflict: str,
    question: str | None = None,
    verb: str = "push",
) -> int:
    """Show the plan, ask (unless ``--yes``), apply it and show how it went: each row
    once, every reason in full. 0 when every row went through, else 1. A plan that
    archives says, before asking, that Sequence has no way back."""
    from sequence_nb import terminal

    console = terminal.make_console()
    if len(plan) == 0:
        return _nothing_to_send(plan, args, verb)
    if not args.dry_run and not args.json:
        console.print(terminal.plan_table(plan))
        _print_plan_summary(plan)
    if _archives(plan) and not args.dry_run:
        print(_no_way_back(plan), file=_notes(args))
    if not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            print("sequence-nb: not writing without confirmation; pass --yes", file=sys.stderr)
            return 2
        n = len(plan)
        ask = question or f"Push {n} update{'s' if n != 1 else ''} to {client.base_url}?"
        if input(f"{ask} [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing was sent.")
            return 1
    result = plan.apply(
        client,
        dry_run=args.dry_run,
        on_conflict="overwrite" if on_conflict == "overwrite" else "skip",
        max_workers=args.max_workers,
        journal=args.journal,
        expected_digest=args.digest,
    )
    return _report(plan, result, args)


def _report(plan: ChangePlan, result: PushResult[Any], args: argparse.Namespace) -> int:
    """How a push (or dry run, or resume) went: the table of its rows, a summary line
    and what to do next; JSON with ``--json``. 1 when a row did not go through."""
    import orjson

    from sequence_nb import terminal

    failed = [r.id for r in result.rows if r.status not in ("updated", "would-update")]
    if args.json:
        document = terminal.json_plan(plan, result)
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str).decode())
        return 1 if failed else 0
    console = terminal.make_console()
    outcomes = terminal.outcomes_of(result)
    if result.dry_run:
        console.print(terminal.plan_table(plan, outcomes))
        _print_plan_summary(plan)
        if _archives(plan):
            print(_no_way_back(plan))
        print(f"Dry run: {_shown(_counts(result, plan))}; nothing was written.")
        return 1 if failed else 0
    shown_before = {row.id for row in plan.rows if not row.sendable}
    again = [customer for customer in failed if customer not in shown_before]
    if again:
        print("Not updated:")
        console.print(terminal.plan_table(plan, outcomes, only=again))
    interrupted = " (interrupted)" if result.interrupted else ""
    print(f"Pushed: {_shown(_counts(result, plan))}{interrupted}.")
    if result.run_id:
        run = _shown(result.run_id)
        print(f"Run {run}, journal {_shown(result.journal_path)}")
        if result.interrupted:
            print(f"To finish it: sequence-nb resume {run}")
        if len(_archives(plan)) < len(plan):
            print(f"To undo it: sequence-nb undo {run}")
        if _archives(plan):
            print("Archived customers stay archived: Sequence has no way back, and undo cannot "
                  "restore them.")  # fmt: skip
    return 1 if failed else 0


def _archives(plan: ChangePlan) -> list[str]:
    """The customers ``plan`` archives."""
    return [row.id for row in plan.sendable if row.action == "archive"]


def _no_way_back(plan: ChangePlan) -> str:
    n = len(_archives(plan))
    them = "them" if n != 1 else "it"
    return (
        f"Archiving {n} customer{'s' if n != 1 else ''} cannot be undone: Sequence has no way "
        f"back (no call un-archives a customer), and sequence-nb undo cannot restore {them}."
    )


def _counts(result: PushResult[Any], plan: ChangePlan) -> str:
    """The result's counts by status, an archive's in its own words (``archived``)."""
    archives = {row.id for row in plan.rows if row.action == "archive"}
    words = {"updated": "archived", "would-update": "would-archive"}
    counts: dict[str, int] = {}
    for status, n in result.counts().items():
        moved = 0
        if status in words:
            moved = sum(1 for r in result.rows if r.status == status and r.id in archives)
        if n > moved:
            counts[status] = n - moved
        if moved:
            counts[words[status]] = moved
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to do"


def _print_plan_summary(plan: ChangePlan) -> None:
    from sequence_nb import terminal

    print(f"Plan: {plan.summary()} (digest {plan.digest})")  # summary() escapes its names
    by_column = terminal.changes_by_column(plan)
    if by_column:
        print(f"Changes by column: {by_column}")


def _nothing_to_send(plan: ChangePlan, args: argparse.Namespace, verb: str) -> int:
    """What an empty plan prints: its notes and rows not sent, and that nothing was
    sent (no run is made). 1 when a row could not be planned, else 0."""
    import orjson

    from sequence_nb import terminal

    if args.json:
        print(
            orjson.dumps(
                terminal.json_plan(plan, None), option=orjson.OPT_INDENT_2, default=str
            ).decode()
        )
    else:
        if plan.rows or plan.notes:
            terminal.make_console().print(terminal.plan_table(plan))
        _print_plan_summary(plan)
        print(f"Nothing to {verb}: nothing was sent.")
    return 1 if plan.rows else 0


# -- archive ------------------------------------------------------------------------------


def _run_archive(args: argparse.Namespace) -> int:
    """Archive customers after showing the plan and saying there is no way back."""
    import polars as pl

    from sequence_nb.frames import fetch_customers
    from sequence_nb.plan import plan_archive

    args.digest = None
    if args.json and not (args.dry_run or args.yes):
        print(
            "sequence-nb archive: --json prints for a script, which cannot answer the "
            "question: add --yes or --dry-run",
            file=sys.stderr,
        )
        return 2
    version = _version(args)
    if not version.can_archive:
        raise InputError(_without_call(version, "archive", "archives"))
    ids = list(dict.fromkeys(args.ids))
    with _client(version) as client:
        customers = fetch_customers(client, includeArchived=True)
        customers = customers.filter(pl.col("id").is_in(pl.Series(ids, dtype=pl.String).implode()))
        plan = plan_archive(customers, ids, base_url=client.base_url, api_version=version)
        n = len(plan)
        question = (
            f"Archive {n} customer{'s' if n != 1 else ''} on {client.base_url}, with no way back?"
        )
        status = _confirm_and_apply(
            plan, client, args, on_conflict="skip", question=question, verb="archive"
        )
    return max(status, 1 if plan.notes else 0)  # an id not archived is no success


# -- undo, resume, runs, history ----------------------------------------------------------


def _run_version(args: argparse.Namespace) -> ApiVersion:
    """The API version the run was pushed in (its plan names it), which undo and resume
    speak; an unknown run is refused here, before anything is read."""
    from sequence_nb.journal import opened

    with opened(args.journal) as journal:
        run: RunRecord = journal.run(args.run_id)
    name = run.api_version_name or fields.SEED.name
    return _pinned_version(args, fields.api_version(name), f"run {_shown(args.run_id)}")


def _journal(args: argparse.Namespace) -> Path | None:
    """The journal file the command reads, or ``None`` when there is none yet (reading
    never makes one)."""
    from sequence_nb.journal import default_journal_path

    path: Path = args.journal.expanduser() if args.journal else default_journal_path()
    return path if path.exists() else None


def _no_journal(args: argparse.Namespace) -> str:
    from sequence_nb.journal import default_journal_path

    path = args.journal or default_journal_path()
    return (
        f"there is no journal at {path} yet: a push makes it (--journal or "
        "SEQUENCE_NB_JOURNAL names another)"
    )


def _run_undo(args: argparse.Namespace) -> int:
    from sequence_nb.journal import opened
    from sequence_nb.runs import undo

    if args.json and not (args.dry_run or args.yes):
        print(
            "sequence-nb undo: --json prints for a script, which cannot answer the question: "
            "add --yes or --dry-run",
            file=sys.stderr,
        )
        return 2
    if _journal(args) is None:
        raise InputError(_no_journal(args))
    with _client(_run_version(args)) as client:
        with opened(args.journal) as journal:
            plan = undo(args.run_id, client, journal=journal)
            undone_by = journal.undone_by(args.run_id)
        unrestored = _unrestored(plan)
        if len(plan) == 0:
            _nothing_to_undo(plan, args, undone_by)
            if unrestored and not args.json:
                print(_not_restored_line(plan))
            return 1 if unrestored else 0
        n = len(plan)
        question = (
            f"Undo run {_shown(args.run_id)}: restore {n} customer{'s' if n != 1 else ''} "
            f"on {client.base_url}?"
        )
        status = _confirm_and_apply(plan, client, args, on_conflict="skip", question=question)
    if unrestored and not args.json:
        print(_not_restored_line(plan))
    return max(status, 1 if unrestored else 0)


def _nothing_to_undo(plan: ChangePlan, args: argparse.Namespace, undone_by: list[str]) -> None:
    """Say why an undo has nothing to send, each customer once; no run is made."""
    import orjson

    from sequence_nb import terminal

    if args.json:
        document = terminal.json_plan(plan, None)
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str).decode())
        return
    if plan.notes:
        terminal.make_console().print(terminal.plan_table(plan))
    run = _shown(args.run_id)
    unrestored = _unrestored(plan)
    earlier = [u for u in undone_by if u != args.run_id]
    if unrestored:
        s = "s" if unrestored != 1 else ""
        why = f"{unrestored} customer{s} could not be restored (above, with the reason)"
    elif earlier:
        why = f"it was undone by run {_shown(earlier[-1])}"
    else:
        why = "no customer holds what it wrote (its writes did not land, or were undone)"
    print(f"Nothing to undo for run {run}: {why}. Nothing was sent and no run was made.")


def _not_restored_line(plan: ChangePlan) -> str:
    """How many customers an undo leaves as the run made them; archives named apart,
    since Sequence has no way back from them."""
    from sequence_nb.plan import ARCHIVE_COLUMN

    count = _unrestored(plan)
    archived = len(
        {
            customer
            for customer, column, message in plan.notes
            if column == ARCHIVE_COLUMN and message.startswith("not restored")
        }
    )
    s = "s" if count != 1 else ""
    line = f"Not restored: {count} customer{s} (listed above as not restored, with the reason)."
    if archived:
        them = "them" if archived != 1 else "it"
        line += (
            f" {archived} of them {'were' if archived != 1 else 'was'} archived: Sequence has "
            f"no way back from an archive, so undo cannot restore {them}."
        )
    return line


def _unrestored(plan: ChangePlan) -> int:
    """How many customers an undo plan leaves as the run made them (unreadable, changed
    since, side effects). A customer with nothing to restore is no failure."""
    from sequence_nb.runs import NOTHING_TO_RESTORE

    return len({customer for customer, _, message in plan.notes if message != NOTHING_TO_RESTORE})


def _run_resume(args: argparse.Namespace) -> int:
    from sequence_nb.journal import opened
    from sequence_nb.runs import resume

    args.dry_run, args.digest = False, None
    if args.json and not args.yes:
        print(
            "sequence-nb resume: --json prints for a script, which cannot answer the "
            "question: add --yes",
            file=sys.stderr,
        )
        return 2
    if _journal(args) is None:
        raise InputError(_no_journal(args))
    version = _run_version(args)
    with opened(args.journal) as journal, _client(version) as client:
        journal.run(args.run_id)  # an unknown run is refused before the question
        if not args.yes:
            if not sys.stdin.isatty():
                print("sequence-nb: not writing without confirmation; pass --yes", file=sys.stderr)
                return 2
            ask = f"Resume run {_shown(args.run_id)}, writing to {client.base_url}? [y/N] "
            if input(ask).strip().lower() not in ("y", "yes"):
                print("Nothing was sent.")
                return 1
        result = resume(
            args.run_id,
            client,
            journal=journal,
            on_conflict="overwrite" if args.on_conflict == "overwrite" else "skip",
            max_workers=args.max_workers,
        )
    return _report(result.plan, result, args)


def _run_runs(args: argparse.Namespace) -> int:
    import orjson

    from sequence_nb import terminal
    from sequence_nb.journal import Journal

    if _journal(args) is None:
        print("[]" if args.json else f"No runs: {_shown(_no_journal(args))}.")
        return 0
    with Journal(args.journal, read_only=True) as journal:
        runs = journal.runs()
        path = journal.path
    if args.json:
        print(orjson.dumps(terminal.json_runs(runs), option=orjson.OPT_INDENT_2).decode())
        return 0
    if runs.is_empty():
        print(f"No runs in the journal at {_shown(path)} yet.")
        return 0
    terminal.make_console().print(terminal.runs_table(runs))
    print(f"{runs.height} run{'s' if runs.height != 1 else ''} in the journal at {_shown(path)}")
    return 0


def _run_history(args: argparse.Namespace) -> int:
    import orjson
    import polars as pl

    from sequence_nb import terminal
    from sequence_nb.export import export, export_format
    from sequence_nb.history import HISTORY_SCHEMA, history

    since = _since(args.since)
    if args.out is not None:
        export_format(args.out, args.format)  # refused before the journal is read
    frame = pl.DataFrame(schema=HISTORY_SCHEMA) if _journal(args) is None else history(args.journal)
    if args.customer is not None:
        frame = frame.filter(pl.col("customer") == args.customer)
    if since is not None:
        frame = frame.filter(pl.col("when") >= since)
    if args.out is not None:
        written = _shown(export(frame, args.out, format=args.format))
        print(f"Wrote {frame.height} change{'s' if frame.height != 1 else ''} to {written}")
        return 0
    if args.json:
        print(orjson.dumps(terminal.json_history(frame), option=orjson.OPT_INDENT_2).decode())
        return 0
    if frame.is_empty():
        print(
            "No changes in the journal match."
            if args.customer or since
            else "No changes in the journal yet."
        )
        return 0
    terminal.make_console().print(terminal.history_table(frame))
    print(f"{frame.height} change{'s' if frame.height != 1 else ''}")
    return 0


def _since(text: str | None) -> dt.datetime | None:
    """``--since`` as a moment in UTC: a date is its midnight, a time without a zone UTC."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--since takes a date or time such as 2026-12-01 or 2026-12-01T09:30Z, not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


if __name__ == "__main__":
    raise SystemExit(main())
