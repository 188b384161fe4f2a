"""The ``sequence-nb`` command: a thin shell over the library."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sequence_nb.demo import NOTEBOOKS as DEMO_NOTEBOOKS
from sequence_nb.errors import SequenceError

if TYPE_CHECKING:
    import polars as pl

    from sequence_nb.client import SequenceClient
    from sequence_nb.plan import ChangePlan


class InputError(SequenceError, ValueError):
    """A file or option given to the command cannot be used; the message says what to change."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    workers = getattr(args, "max_workers", 1)
    if workers < 1:
        print(f"sequence-nb: --max-workers must be at least 1, not {workers}", file=sys.stderr)
        return 2
    try:
        status: int = args.run(args)
    except (SequenceError, OSError, LookupError) as exc:
        print(f"sequence-nb: {_shown(exc)}", file=sys.stderr)
        return 1
    return status


def _shown(value: object) -> str:
    """``value`` as one line of text a terminal shows as it is: every character that
    would move the cursor, erase or break a line, or not show at all (ESC, CR, LF,
    zero-width and bidi characters) as its escape. Whatever the command prints from a
    plan, a journal, a server or an exception goes through here."""
    from sequence_nb.models import escape_unseen

    return escape_unseen(str(value))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sequence-nb",
        description="Clean the customer records of a Sequence billing account.",
    )
    commands = parser.add_subparsers(title="commands")

    sandbox = commands.add_parser("sandbox", help="run a local Sequence-compatible server")
    _add_sandbox_options(sandbox, default_port=8765)
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
    demo.set_defaults(run=_run_demo)

    export = commands.add_parser("export", help="fetch every customer and write a file")
    export.add_argument("path", type=Path, help="a .parquet, .csv, .json or .xlsx file")
    export.add_argument("--format", choices=["parquet", "csv", "json", "xlsx"])
    export.add_argument("--include-archived", action="store_true")
    export.set_defaults(run=_run_export)

    push = commands.add_parser(
        "push", help="push the edits in a file, or a saved plan, after showing the plan"
    )
    push.add_argument("path", type=Path, nargs="?", help="the edited customers: .parquet or .json")
    push.add_argument(
        "--base",
        type=Path,
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
        "--plan", type=Path, help="apply a saved, reviewed plan file (see --save-plan) as it is"
    )
    push.add_argument("--save-plan", type=Path, help="write the plan to this file for review")
    _add_push_options(push)
    push.add_argument("--on-conflict", choices=["skip", "overwrite"], default="skip")
    push.set_defaults(run=_run_push)

    undo = commands.add_parser("undo", help="restore what a push changed")
    undo.add_argument("run_id")
    _add_push_options(undo)
    undo.set_defaults(run=_run_undo)

    runs = commands.add_parser("runs", help="list the pushes in the journal")
    runs.add_argument("--journal", type=Path, help="the journal file (default: see README)")
    runs.set_defaults(run=_run_runs)
    return parser


def _add_push_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="check, write nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask before writing")
    parser.add_argument("--journal", type=Path, help="the journal file (default: see README)")
    parser.add_argument("--max-workers", type=int, default=8)
    parser.add_argument(
        "--digest",
        help="the saved plan's digest as reviewed (sha256:...): any other plan is refused",
    )


def _add_sandbox_options(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument("--customers", type=int, default=200, help="how many to seed")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--port", type=int, default=default_port, help="0 picks a free port")


def _run_sandbox(args: argparse.Namespace) -> int:
    from sequence_nb import sandbox

    sandbox.serve(customers=args.customers, seed=args.seed, port=args.port)
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
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with sandbox.start(customers=args.customers, seed=args.seed, port=args.port) as server:
        print(f"Sandbox: {server.url} (client id {server.client_id}, demo credentials)")
        env = jupyter.environ(dict(os.environ, **server.environ()))

        def ready() -> None:
            print(f"\n{jupyter.name} is ready. Open the notebook at:\n\n    {jupyter.url}\n")
            print("Ctrl-C stops Jupyter and the sandbox.", flush=True)

        return demo.run(jupyter, jupyter.command(jupyter_bin), env, ready)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _client() -> SequenceClient:
    from sequence_nb.client import SequenceClient

    return SequenceClient()


def _run_export(args: argparse.Namespace) -> int:
    from sequence_nb.export import export, export_format
    from sequence_nb.frames import fetch_customers

    export_format(args.path, args.format)  # a name it cannot write is refused before fetching
    with _client() as client:
        frame = fetch_customers(client, includeArchived=args.include_archived)
    written = export(frame, args.path, format=args.format)
    print(f"Wrote {frame.height} customers to {written}")
    print(f"To push edits, edit a copy and keep this file as it is: push COPY --base {written}")
    return 0


def _read_edited(path: Path) -> pl.DataFrame:
    """The customers in ``path``, a .parquet or .json file (they keep types), with an
    ``id`` column; else an :class:`InputError` naming the file and what to change."""
    import orjson
    import polars as pl

    if path.suffix not in (".parquet", ".json"):
        raise InputError(
            f"push reads .parquet or .json files (they keep types), not {path.name}: "
            "export the customers to one (sequence-nb export customers.parquet)"
        )
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else _json_customers(path)
    except InputError:
        raise
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path.name} is not JSON ({exc}): give a file export wrote") from None
    except (ValueError, pl.exceptions.PolarsError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "parquet" if path.suffix == ".parquet" else "customer records"
        raise InputError(f"cannot read {path.name} as {kind}: {reason}") from None
    if "id" not in frame.columns:
        raise InputError(
            f"{path.name} has no 'id' column: rows are matched by id, so keep the export's "
            "id column"
        )
    if frame["id"].dtype != pl.String:
        raise InputError(
            f"{path.name} holds {frame['id'].dtype} in its 'id' column where customer ids are "
            "text: rows are matched by id, so keep the export's id column as it was written"
        )
    return frame


def _json_customers(path: Path) -> pl.DataFrame:
    """The records of a JSON file as a frame; the file must hold an array of objects."""
    import orjson

    from sequence_nb.frames import to_frame

    records = orjson.loads(path.read_bytes())
    if not isinstance(records, list):
        raise InputError(
            f"{path.name} must hold a JSON array of customer records (as sequence-nb export "
            f"FILE.json writes), not {type(records).__name__}"
        )
    try:
        return to_frame(records)
    except ValueError as exc:
        raise InputError(f"{path.name} must hold a JSON array of customer records: {exc}") from None


def _run_push(args: argparse.Namespace) -> int:
    refusal = _push_refusal(args)
    if refusal:
        print(f"sequence-nb push: {_shown(refusal)}", file=sys.stderr)
        return 2
    with _client() as client:
        plan = _saved_plan(args.plan) if args.plan is not None else _planned(args, client)
        if args.save_plan is not None:
            written = _shown(plan.save(args.save_plan))
            print(f"Saved the plan to {written}. To apply it as reviewed:")
            print(f"sequence-nb push --plan {written} --digest {plan.digest}")
        return _confirm_and_apply(plan, client, args, on_conflict=args.on_conflict)


def _push_refusal(args: argparse.Namespace) -> str | None:
    """Why ``push`` will not run as asked (one line), or ``None``."""
    if args.plan is not None:
        if args.path is not None or args.base is not None or args.against_current:
            return (
                "--plan applies a saved plan as it is: give no edited file, --base or "
                "--against-current with it"
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


def _saved_plan(path: Path) -> ChangePlan:
    from sequence_nb.plan import ChangePlan

    return ChangePlan.load(path)


def _planned(args: argparse.Namespace, client: SequenceClient) -> ChangePlan:
    """The plan of the edited file against ``--base`` or Sequence's current records."""
    import polars as pl

    from sequence_nb.frames import fetch_customers
    from sequence_nb.plan import plan_updates

    edited = _read_edited(args.path)
    ids = edited["id"].drop_nulls().implode()
    if args.base is not None:
        original = _read_edited(args.base)
    else:
        original = fetch_customers(client, includeArchived=True)
        print(
            f"Planned against Sequence's current records: any value in {args.path.name} "
            "older than Sequence's is written back as if it were an edit. Pass the "
            "unedited export as --base to keep changes made since.",
            file=sys.stderr,
        )
    original = original.filter(pl.col("id").is_in(ids))
    return plan_updates(original, edited, base_url=client.base_url)


def _run_undo(args: argparse.Namespace) -> int:
    from sequence_nb.runs import undo

    with _client() as client:
        plan = undo(args.run_id, client, journal=args.journal)
        status = _confirm_and_apply(plan, client, args, on_conflict="skip")
    return max(status, _report_unrestored(plan))


def _report_unrestored(plan: ChangePlan) -> int:
    """List, last and in full, every customer an undo plan leaves as the run made it
    (unreadable, changed since, invalid, side effects); 1 when there is any, else 0.
    A customer with nothing to restore is no failure."""
    from sequence_nb.runs import NOTHING_TO_RESTORE

    unrestored = [
        (customer, column, message)
        for customer, column, message in plan.errors.iter_rows()
        if message != NOTHING_TO_RESTORE
    ]
    if not unrestored:
        return 0
    customers = len({customer for customer, _, _ in unrestored})
    print(f"Not restored ({customers} customer{'s' if customers != 1 else ''}):")
    for customer, column, message in unrestored:
        print(f"  {_shown(customer or '(no id)')} {_shown(column)}: {_shown(message)}")
    return 1


def _confirm_and_apply(
    plan: ChangePlan, client: SequenceClient, args: argparse.Namespace, *, on_conflict: str
) -> int:
    import polars as pl

    _print_plan(plan)
    if len(plan) == 0:
        print("Nothing to push.")
        return 0
    if not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            print("sequence-nb: not pushing without confirmation; pass --yes", file=sys.stderr)
            return 2
        answer = input(f"Push {len(plan)} updates to {client.base_url}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
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
    print(_shown(result.summary()))
    if result.run_id:
        print(f"Run {_shown(result.run_id)}, journal {_shown(result.journal_path)}")
        print(f"To undo it: sequence-nb undo {_shown(result.run_id)}")
    problems = result.to_frame().filter(~pl.col("status").is_in(["updated", "would-update"]))
    if not problems.is_empty():
        print("Not updated:")
        for customer, status, message in problems.select("id", "status", "message").iter_rows():
            print(f"  {_shown(customer)} {_shown(status)}: {_shown(message)}")
        return 1
    return 0


def _print_plan(plan: ChangePlan) -> None:
    """Every change in full, one line each under its customer, a count per column and
    everything not sent: nothing elided or cut, as the digest printed with it is what
    a person pins. Every text comes escaped (:meth:`ChangePlan.preview`, :func:`_shown`),
    so no value of the plan can move the cursor, erase a line or start one."""
    print(f"Plan: {plan.summary()} (digest {plan.digest})")
    preview = plan.preview()
    if not preview.is_empty():
        counts = preview.group_by("column", maintain_order=True).len().iter_rows()
        print("Changes by column: " + ", ".join(f"{column} {n}" for column, n in counts))
        customer = None
        for change in preview.iter_rows(named=True):
            if change["id"] != customer:
                customer = change["id"]
                print(f"  {customer}  {_quoted(change['legalName'])}")
            line = f"    {change['column']}: {_quoted(change['old'])} -> {_quoted(change['new'])}"
            if change["status"] != "update":
                line += f"  [{change['status']}: {change['message']}]"
            print(line)
    if not plan.errors.is_empty():
        print("Not sent:")
        for customer, column, message in plan.errors.iter_rows():
            print(f"  {_shown(customer or '(no id)')} {_shown(column)}: {_shown(message)}")


def _quoted(text: str | None) -> str:
    """A value the preview shows (already escaped) in quotes; a quote in it as ``\\'``."""
    return "(empty)" if text is None else "'" + text.replace("'", "\\'") + "'"


def _run_runs(args: argparse.Namespace) -> int:
    import polars as pl

    from sequence_nb.journal import Journal

    with Journal(args.journal) as journal, pl.Config(tbl_rows=100, tbl_width_chars=160):
        runs = journal.runs()
        print(runs.with_columns(pl.col(pl.String).map_elements(_shown, return_dtype=pl.String)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
