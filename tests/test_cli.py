"""The sequence-nb command against a sandbox: export, push, runs, undo, sandbox."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest

import sequence_nb
from sequence_nb.cli import _parser, main
from sequence_nb.contacts import CONTACT_COLUMNS
from sequence_nb.export import export, read_contacts_export, read_export
from sequence_nb.frames import to_frame
from sequence_nb.journal import Journal
from sequence_nb.plan import ChangePlan
from sequence_nb.sandbox import Sandbox
from tests.conftest import SandboxFactory
from tests.test_journal import read_only_copy


@pytest.fixture
def server(make_sandbox: SandboxFactory, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A sandbox whose credentials are in the environment, as a shell user would set them."""
    sandbox = make_sandbox(customers=40, seed=21)
    for name, value in sandbox.environ().items():
        monkeypatch.setenv(name, value)
    return sandbox


def exported(server: Sandbox, tmp_path: Path) -> pl.DataFrame:
    path = tmp_path / "customers.parquet"
    assert main(["export", str(path), "--include-archived"]) == 0
    return pl.read_parquet(path)


def relabel(frame: pl.DataFrame, server: Sandbox, count: int) -> pl.DataFrame:
    clean = [row for row in frame["id"] if row not in {p.id for p in server.planted}][:count]
    return frame.with_columns(
        pl.when(pl.col("id").is_in(clean))
        .then(pl.lit("from the shell"))
        .otherwise(pl.col("label"))
        .alias("label")
    )


def test_export_writes_every_customer(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = exported(server, tmp_path)
    assert frame.height == len(server.records())
    assert "Wrote 40 customers" in capsys.readouterr().out


def test_push_dry_run_shows_the_plan_and_writes_nothing(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = relabel(exported(server, tmp_path), server, 3)
    edited.write_parquet(tmp_path / "edited.parquet")
    server.reset_stats()
    edited_file = str(tmp_path / "edited.parquet")
    base = str(tmp_path / "customers.parquet")
    status = main(
        ["push", edited_file, "--base", base, "--dry-run", "--journal", str(tmp_path / "j")]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "Plan: 3 to update" in out and "from the shell" in out
    assert "Dry run: 3 would-update; nothing was written." in out
    assert server.stats.requests["PUT"] == 0


def test_push_with_a_base_keeps_changes_made_in_sequence_since_the_export(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = exported(server, tmp_path)
    edited = relabel(base, server, 2)
    edited.write_parquet(tmp_path / "edited.parquet")
    kept, clashing = edited.filter(pl.col("label") == "from the shell")["id"].to_list()
    server.edit_remote(kept, {"contactName": "Changed In Sequence"})
    server.edit_remote(clashing, {"label": "set in the dashboard"})
    base_file = str(tmp_path / "customers.parquet")
    journal = str(tmp_path / "journal.sqlite3")
    status = main(
        [
            "push",
            str(tmp_path / "edited.parquet"),
            "--base",
            base_file,
            "--yes",
            "--journal",
            journal,
        ]
    )
    out, err = capsys.readouterr()
    assert status == 1  # a conflict is reported
    assert "1 updated, 1 conflict" in out and "--base" not in err
    assert server.get_record(kept)["contactName"] == "Changed In Sequence"
    assert server.get_record(kept)["label"] == "from the shell"
    assert server.get_record(clashing)["label"] == "set in the dashboard"


def test_push_without_a_base_is_refused_naming_both_ways_on(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relabel(exported(server, tmp_path), server, 1).write_parquet(tmp_path / "edited.parquet")
    capsys.readouterr()
    server.reset_stats()
    status = main(
        ["push", str(tmp_path / "edited.parquet"), "--yes", "--journal", str(tmp_path / "j")]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "--base" in err and "--against-current" in err
    assert sum(server.stats.requests.values()) == 0


def test_push_against_current_records_says_older_values_are_written_back(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relabel(exported(server, tmp_path), server, 1).write_parquet(tmp_path / "edited.parquet")
    edited_file = str(tmp_path / "edited.parquet")
    status = main(
        ["push", edited_file, "--against-current", "--dry-run", "--journal", str(tmp_path / "j")]
    )
    assert status == 0
    assert "Pass the unedited export as --base" in capsys.readouterr().err


def test_push_prints_the_digest_and_a_pinned_digest_must_match(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = relabel(exported(server, tmp_path), server, 2)
    edited.write_parquet(tmp_path / "edited.parquet")
    push = ["push", str(tmp_path / "edited.parquet"), "--base", str(tmp_path / "customers.parquet")]
    journal = ["--journal", str(tmp_path / "journal.sqlite3")]
    plan_file = str(tmp_path / "plan.json")
    capsys.readouterr()
    assert main([*push, "--dry-run", "--save-plan", plan_file, *journal]) == 0
    digest = re.search(r"Plan: .* \(digest (sha256:[0-9a-f]{64})\)", capsys.readouterr().out)
    assert digest is not None
    server.reset_stats()
    wrong = "sha256:" + "0" * 64
    assert main(["push", "--plan", plan_file, "--yes", "--digest", wrong, *journal]) == 1
    assert wrong in capsys.readouterr().err
    assert server.stats.requests["PUT"] == 0
    assert main(["push", "--plan", plan_file, "--yes", "--digest", digest.group(1), *journal]) == 0
    assert "2 updated" in capsys.readouterr().out


def test_a_digest_pins_only_a_saved_plan(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan made anew has its own plan id and time under its digest: none can match."""
    relabel(exported(server, tmp_path), server, 1).write_parquet(tmp_path / "edited.parquet")
    push = ["push", str(tmp_path / "edited.parquet"), "--base", str(tmp_path / "customers.parquet")]
    capsys.readouterr()
    server.reset_stats()
    assert main([*push, "--yes", "--digest", "sha256:" + "0" * 64]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--save-plan" in err and "--plan FILE --digest" in err
    assert sum(server.stats.requests.values()) == 0


def test_a_saved_plan_file_is_applied_as_reviewed(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = relabel(exported(server, tmp_path), server, 2)
    edited.write_parquet(tmp_path / "edited.parquet")
    plan_file = tmp_path / "plan.json"
    base = str(tmp_path / "customers.parquet")
    journal = ["--journal", str(tmp_path / "journal.sqlite3")]
    save = ["push", str(tmp_path / "edited.parquet"), "--base", base, "--save-plan", str(plan_file)]
    capsys.readouterr()
    assert main([*save, "--dry-run", *journal]) == 0
    out = capsys.readouterr().out
    digest = ChangePlan.load(plan_file).digest
    assert f"sequence-nb push --plan {plan_file} --digest {digest}" in out
    assert server.stats.requests["PUT"] == 0
    assert main(["push", "--plan", str(plan_file), "--digest", digest, "--yes", *journal]) == 0
    assert "2 updated" in capsys.readouterr().out
    assert sum(r.get("label") == "from the shell" for r in server.records()) == 2


def test_a_hand_edited_plan_file_is_refused_in_one_line(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = relabel(exported(server, tmp_path), server, 1)
    edited.write_parquet(tmp_path / "edited.parquet")
    plan_file = tmp_path / "plan.json"
    base = str(tmp_path / "customers.parquet")
    main(["push", str(tmp_path / "edited.parquet"), "--base", base, "--save-plan", str(plan_file)])
    plan_file.write_text(plan_file.read_text().replace('"from the shell"', '"not reviewed"', 1))
    capsys.readouterr()
    server.reset_stats()
    assert main(["push", "--plan", str(plan_file), "--yes", "--journal", str(tmp_path / "j")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sequence-nb: plan file: row ") and err.count("\n") == 1
    assert sum(server.stats.requests.values()) == 0


@pytest.mark.parametrize(
    "extra",
    [["edited.parquet"], ["--base", "customers.parquet"], ["--against-current"]],
)
def test_a_plan_file_is_applied_alone(
    extra: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", "--plan", str(tmp_path / "plan.json"), *extra]) == 2
    err = capsys.readouterr().err
    assert "--plan" in err and err.count("\n") == 1


def test_push_without_a_terminal_needs_yes(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = relabel(exported(server, tmp_path), server, 2)
    edited.write_parquet(tmp_path / "edited.parquet")
    server.reset_stats()
    status = main(
        [
            "push",
            str(tmp_path / "edited.parquet"),
            "--against-current",
            "--journal",
            str(tmp_path / "j"),
        ]
    )
    assert status == 2
    assert "pass --yes" in capsys.readouterr().err
    assert server.stats.requests["PUT"] == 0


def test_push_then_undo_from_the_shell(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {r["id"]: r.get("label") for r in server.records()}
    edited = relabel(exported(server, tmp_path), server, 4)
    edited.write_parquet(tmp_path / "edited.parquet")
    journal = str(tmp_path / "journal.sqlite3")
    push = ["push", str(tmp_path / "edited.parquet"), "--against-current", "--yes"]
    assert main([*push, "--journal", journal]) == 0
    out = capsys.readouterr().out
    assert "4 updated" in out
    run_id = out.split("To undo it: sequence-nb undo ")[1].split()[0]
    assert sum(r.get("label") == "from the shell" for r in server.records()) == 4
    assert main(["runs", "--journal", journal]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["undo", run_id, "--yes", "--journal", journal]) == 0
    assert {r["id"]: r.get("label") for r in server.records()} == before


def test_errors_are_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("SEQUENCE_CLIENT_ID", raising=False)
    assert main(["export", str(tmp_path / "x.parquet")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sequence-nb: SEQUENCE_CLIENT_ID is not set") and err.count("\n") == 1


def test_push_prints_every_change_in_full_with_a_count_per_column(
    make_sandbox: SandboxFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_sandbox(customers=80, seed=4)
    for name, value in server.environ().items():
        monkeypatch.setenv(name, value)
    base = exported(server, tmp_path)
    edited = relabel(base, server, 60)
    long = "REF Acme Holdings International Limited - IBAN GB00 EVIL 0000 0000"
    first = edited.filter(pl.col("label") == "from the shell")["id"][0]
    edited = edited.with_columns(
        pl.when(pl.col("id") == first)
        .then(pl.lit(long))
        .otherwise(pl.col("paymentReference"))
        .alias("paymentReference")
    )
    edited.write_parquet(tmp_path / "edited.parquet")
    push = ["push", str(tmp_path / "edited.parquet"), "--base", str(tmp_path / "customers.parquet")]
    capsys.readouterr()
    assert main([*push, "--dry-run", "--journal", str(tmp_path / "j")]) == 0
    out = capsys.readouterr().out
    relabelled = edited.filter(pl.col("label") == "from the shell")["id"].to_list()
    assert len(relabelled) == 60 and all(customer in out for customer in relabelled)
    assert long in out and "…" not in out
    assert "Changes by column: label 60, paymentReference 1" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["push", "{d}/edited.parquet", "--base", "{d}/base.txt"], "--base base.txt"),
        (["push", "{d}/notes.txt", "--against-current"], ".parquet, .csv, .json or .xlsx"),
        (["push", "{d}/edited.parquet", "--base", "{d}/gone.csv"], "--base: there is no file"),
        (["push", "{d}/broken.json", "--against-current"], "broken.json is not JSON"),
        (["push", "{d}/broken.parquet", "--against-current"], "broken.parquet"),
        (["push", "{d}/object.json", "--against-current"], "a JSON array of customer records"),
        (["push", "{d}/noid.parquet", "--against-current"], "noid.parquet has no 'id' column"),
        (["push", "{d}/edited.parquet", "--base", "{d}/noid.parquet"], "no 'id' column"),
        (
            ["push", "{d}/edited.parquet", "--base", "{d}/numbered.parquet"],
            "numbered.parquet holds Int64 in its 'id' column",
        ),
        (
            ["push", "{d}/numbered.parquet", "--base", "{d}/base.parquet"],
            "numbered.parquet holds Int64 in its 'id' column",
        ),
        (
            ["push", "{d}/edited.parquet", "--base", "{d}/base.parquet", "--max-workers", "0"],
            "at least 1",
        ),
        (["undo", "some-run", "--max-workers", "-2"], "--max-workers: must be at least 1"),
        (["export", "{d}/out.txt"], "out.txt"),
    ],
)
def test_bad_input_is_one_line_naming_what_to_change(
    server: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    frame = exported(server, tmp_path)
    frame.write_parquet(tmp_path / "base.parquet")
    frame.select("id", "label").write_csv(tmp_path / "base.csv")
    relabel(frame, server, 1).write_parquet(tmp_path / "edited.parquet")
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "noid.parquet")
    frame.with_columns(pl.int_range(pl.len()).alias("id")).write_parquet(
        tmp_path / "numbered.parquet"
    )
    (tmp_path / "broken.json").write_text("{nope")
    (tmp_path / "broken.parquet").write_text("not parquet")
    (tmp_path / "object.json").write_text('{"id": "a"}')
    capsys.readouterr()
    server.reset_stats()
    extra = [] if args[0] == "export" else ["--journal", str(tmp_path / "j"), "--yes"]
    status = main([arg.format(d=tmp_path) for arg in args] + extra)
    err = capsys.readouterr().err
    assert status in (1, 2)
    assert err.startswith("sequence-nb") and err.count("\n") == 1, err
    assert expected in err
    assert server.stats.requests.get("PUT", 0) == 0


def test_a_json_file_with_numbers_where_text_was_erases_nothing(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = [r for r in server.records() if r["id"] not in {p.id for p in server.planted}][:3]
    export_frame = to_frame(clean)
    export(export_frame, tmp_path / "base.json")
    typed = orjson.loads((tmp_path / "base.json").read_bytes())
    typed[0]["telephone"], typed[1]["label"] = 7700900123, True
    typed[2]["label"] = "edited on purpose"
    (tmp_path / "edited.json").write_bytes(orjson.dumps(typed))
    push = ["push", str(tmp_path / "edited.json"), "--base", str(tmp_path / "base.json")]
    capsys.readouterr()
    assert main([*push, "--yes", "--journal", str(tmp_path / "j")]) == 1
    out = capsys.readouterr().out
    assert "ignored" not in out and "1 to update, 2 invalid" in out
    assert "holds 7700900123, a number, where text belongs" in out
    assert server.get_record(clean[0]["id"]).get("telephone") == clean[0].get("telephone")
    assert server.get_record(clean[1]["id"]).get("label") == clean[1].get("label")
    assert server.get_record(clean[2]["id"])["label"] == "edited on purpose"


def test_sandbox_command_serves_until_stopped(tmp_path: Path) -> None:
    port = 18765 + os.getpid() % 1000
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sequence_nb.cli",
            "sandbox",
            "--customers",
            "25",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        banner = "".join(child.stdout.readline() for _ in range(3))
        assert f"http://127.0.0.1:{port}/api" in banner
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/customers", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert answer.status_code == 401  # it enforces auth
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_demo_starts_the_sandbox_and_jupyterlab(tmp_path: Path) -> None:
    port = 19888 + os.getpid() % 1000
    home = tmp_path / "home"
    env = dict(
        os.environ,
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    command = [sys.executable, "-m", "sequence_nb.cli", "demo", "--no-browser"]
    log = (tmp_path / "demo.log").open("w")
    child = subprocess.Popen(
        [*command, "--lab-port", str(port), "--customers", "20"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=1)
                break
            except httpx.TransportError:
                assert child.poll() is None, "the demo exited early"
                assert time.monotonic() < deadline, "JupyterLab did not start"
                time.sleep(0.2)
        assert answer.status_code in (200, 403)  # up; a token guards it
        assert "Sandbox: http://127.0.0.1:" in (tmp_path / "demo.log").read_text()
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            assert child.wait(timeout=20) == 130
        except subprocess.TimeoutExpired:
            child.kill()
            raise
        finally:
            log.close()


def saved_plan(server: Sandbox, tmp_path: Path, count: int) -> ChangePlan:
    """The plan of ``count`` relabelled customers, as ``push --save-plan`` writes it."""
    relabel(exported(server, tmp_path), server, count).write_parquet(tmp_path / "edited.parquet")
    push = ["push", str(tmp_path / "edited.parquet"), "--base", str(tmp_path / "customers.parquet")]
    assert main([*push, "--dry-run", "--save-plan", str(tmp_path / "plan.json")]) == 0
    return ChangePlan.load(tmp_path / "plan.json")


#: Up two lines, erase them, and write a line of one's own (c1 of the second attack).
FORGING = "\x1b[2A\x1b[2K\r\x1b[JChanges by column: label 1\nFORGED"


def test_text_in_a_plan_file_cannot_move_the_cursor_or_add_lines_to_the_preview(
    server: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # no line wraps: each cell is on its row's line
    plan = saved_plan(server, tmp_path, 2)
    forged = dataclasses.replace(
        plan, notes=((FORGING, FORGING, FORGING),), ignored_columns=(FORGING,)
    )
    forged.save(tmp_path / "forged.json")
    capsys.readouterr()
    journal = ["--journal", str(tmp_path / "j")]
    assert main(["push", "--plan", str(tmp_path / "forged.json"), "--dry-run", *journal]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\r" not in out + err
    shown = FORGING.encode("unicode_escape").decode("ascii")
    (note,) = [line for line in out.splitlines() if line.startswith(f"│ {shown} ")]
    assert note.count(shown) == 3 and "not sent" in note
    assert f"(ignored, not in the original frame: {shown}) (digest {forged.digest})" in out
    assert not [
        line
        for line in out.splitlines()
        if line.startswith(("FORGED", "Changes by column: label 1"))
    ]


def test_an_error_naming_a_hostile_id_stays_one_line(
    server: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_plan(server, tmp_path, 1)
    document = orjson.loads((tmp_path / "plan.json").read_bytes())
    document["rows"][0]["id"] = "abc\nFORGED LINE: all good\x1b[1A"
    (tmp_path / "plan.json").write_bytes(orjson.dumps(document))
    capsys.readouterr()
    assert main(["push", "--plan", str(tmp_path / "plan.json"), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert "row abc\\nFORGED LINE: all good\\x1b[1A" in err


class _Refusing(httpx.BaseTransport):
    """The sandbox, except that every PUT is answered 400 with ``message``."""

    def __init__(self, message: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.message = message

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            return httpx.Response(400, json={"message": self.message})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_server_message_is_printed_escaped_on_its_row(
    server: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    plan = saved_plan(server, tmp_path, 1)
    transport = _Refusing("bad\x1b[1A\x1b[2K\nupdated")
    monkeypatch.setattr(
        "sequence_nb.cli._client", lambda version: server.client(transport=transport)
    )
    capsys.readouterr()
    push = ["push", "--plan", str(tmp_path / "plan.json"), "--yes"]
    assert main([*push, "--journal", str(tmp_path / "j")]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    reported = out.split("Not updated:\n")[1]
    (row,) = [line for line in reported.splitlines() if plan.rows[0].id in line]
    assert "failed" in row
    assert f"PUT /customers/{plan.rows[0].id} -> 400: bad\\x1b[1A\\x1b[2K\\nupdated" in row
    assert "Pushed: 1 failed." in out


def test_undo_exits_1_and_lists_every_customer_it_could_not_restore(
    server: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    edited = relabel(exported(server, tmp_path), server, 3)
    edited.write_parquet(tmp_path / "edited.parquet")
    journal = ["--journal", str(tmp_path / "journal.sqlite3")]
    push = ["push", str(tmp_path / "edited.parquet"), "--against-current", "--yes"]
    assert main([*push, *journal]) == 0
    out = capsys.readouterr().out
    run_id = out.split("To undo it: sequence-nb undo ")[1].split()[0]
    ids = edited.filter(pl.col("label") == "from the shell")["id"].to_list()
    server.set_faults(error_rate=1.0)
    assert main(["undo", run_id, "--yes", *journal]) == 1
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if "not restored: could not read it" in line]
    assert sorted(line.split()[1] for line in listed) == sorted(ids)
    assert "Not restored: 3 customers" in out
    server.set_faults(error_rate=0.0)
    assert main(["undo", run_id, "--yes", *journal]) == 0
    assert main(["undo", run_id, "--yes", *journal]) == 0  # nothing left to restore
    out = capsys.readouterr().out
    assert "Nothing to undo for run" in out and "Not restored" not in out


# -- as a user runs it: the command in a process of its own ---------------------------------

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def shell(server: Sandbox, tmp_path: Path) -> Shell:
    """Run ``sequence-nb`` in a process of its own, with the sandbox's credentials in
    the environment and a journal of the test's own, in ``tmp_path``."""
    return Shell(server, tmp_path)


class Shell:
    """``sequence-nb ARGS`` as a user types it."""

    def __init__(self, server: Sandbox, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SEQUENCE_")}
        self.env |= server.environ() | {
            "SEQUENCE_NB_JOURNAL": str(folder / "journal.sqlite3"),
            "PYTHONPATH": str(REPOSITORY),
        }
        self.env.pop("COLUMNS", None)

    def __call__(
        self, *args: str, stdin: str | None = None, env: dict[str, str | None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = dict(self.env)
        for name, value in (env or {}).items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        return subprocess.run(
            [sys.executable, "-m", "sequence_nb.cli", *args],
            cwd=self.folder,
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command says, checked to be one line and no traceback."""
    assert done.returncode in (1, 2), done
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("sequence-nb"), done.stderr
    return done.stderr


def test_version_says_the_version(shell: Shell) -> None:
    done = shell("--version")
    assert done.returncode == 0 and done.stdout == f"sequence-nb {sequence_nb.__version__}\n"


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


@pytest.mark.parametrize(
    "command", ["sandbox", "export", "push", "archive", "undo", "resume", "runs", "history"]
)
def test_every_option_has_help_and_its_default_shown(shell: Shell, command: str) -> None:
    parser = _options(_parser())[command]
    done = shell(command, "--help")
    assert done.returncode == 0
    help_text = " ".join(done.stdout.split())
    for action in parser._actions:
        assert action.help, f"{command} {action.dest} has no help"
        for flag in action.option_strings:
            assert flag in help_text
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in help_text, action.dest
    if command == "push":
        assert "how many writes run at once (default: 8)" in help_text
    if command == "sandbox":
        assert "(default: 8765)" in help_text and "(default: 200)" in help_text


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["export", "out.csv"], {"SEQUENCE_CLIENT_ID": None}, "SEQUENCE_CLIENT_ID is not set"),
        (["runs", "--bogus"], {}, "unrecognized arguments: --bogus (see sequence-nb --help)"),
        (
            ["export", "out.csv"],
            {"SEQUENCE_CLIENT_SECRET": " "},
            "SEQUENCE_CLIENT_SECRET is not set",
        ),
        (
            ["export", "out.csv"],
            {"SEQUENCE_CLIENT_SECRET": "wrong"},
            "refused the credentials (401): check SEQUENCE_CLIENT_ID and SEQUENCE_CLIENT_SECRET",
        ),
        (
            ["export", "out.csv"],
            {"SEQUENCE_BASE_URL": "http://127.0.0.1:9/api"},
            "check SEQUENCE_BASE_URL",
        ),
        (["export", "out.csv"], {"SEQUENCE_BASE_URL": "ftp://x"}, "SEQUENCE_BASE_URL must be"),
        (["export", "no/folder/out.csv"], {}, "there is no folder no/folder"),
        (["export", "out.txt"], {}, "out.txt"),
        (
            ["push", "edited.csv", "--base", "customers.csv"],
            {},
            "the edited file: there is no file",
        ),
        (["push", "notes.txt", "--base", "customers.csv"], {}, ".parquet, .csv, .json or .xlsx"),
        (["push", "x.csv", "--max-workers", "x"], {}, "argument --max-workers: must be a whole"),
        (["push", "x.csv", "--on-conflict", "win"], {}, "argument --on-conflict: invalid choice"),
        (["push", "x.csv", "--base", "y.csv", "--json"], {}, "--json prints for a script"),
        (["sandbox", "--port", "70000"], {}, "must be a port from 0 to 65535"),
        (["undo", "no-such-run", "--yes"], {}, "there is no journal at"),
        (["resume", "no-such-run", "--yes"], {}, "a push makes it (--journal or SEQUENCE_NB"),
        (["history", "--since", "last week"], {}, "--since takes a date or time"),
        (["history", "--out", "history.txt"], {}, "history.txt"),
        (["frobnicate"], {}, "invalid choice: 'frobnicate'"),
    ],
)
def test_a_mistake_is_one_line_naming_what_to_change(
    shell: Shell, args: list[str], env: dict[str, str | None], expected: str
) -> None:
    shell.server.reset_stats()
    assert expected in one_line(shell(*args, env=env))
    assert shell.server.stats.requests.get("PUT", 0) == 0


def _edit_csv(source: Path, target: Path, edits: dict[str, dict[str, str]]) -> None:
    """What a user does with polars: read the export as text, change cells, write it."""
    frame = pl.read_csv(source, infer_schema=False)
    for customer, changes in edits.items():
        frame = frame.with_columns(
            pl.when(pl.col("id") == customer)
            .then(pl.lit(value))
            .otherwise(pl.col(column))
            .alias(column)
            for column, value in changes.items()
        )
    frame.write_csv(target)


def clean_ids(server: Sandbox, count: int) -> list[str]:
    planted = {p.id for p in server.planted}
    return [r["id"] for r in server.records() if r["id"] not in planted][:count]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_push_reads_back_a_csv_or_excel_export_keeping_text_as_text(
    shell: Shell, suffix: str
) -> None:
    first, second = clean_ids(shell.server, 2)
    shell.server.edit_remote(
        first, {"address": {**shell.server.get_record(first)["address"], "postCode": "02169"}}
    )
    export_file = f"customers{suffix}"
    assert shell("export", export_file).returncode == 0
    if suffix == ".csv":
        _edit_csv(
            shell.folder / export_file,
            shell.folder / "edited.csv",
            {first: {"label": "TRUE"}, second: {"label": "007"}},
        )
    else:  # as a spreadsheet program keeps text cells
        frame = read_export(shell.folder / export_file)
        edited = frame.with_columns(
            pl.when(pl.col("id") == first)
            .then(pl.lit("TRUE"))
            .when(pl.col("id") == second)
            .then(pl.lit("007"))
            .otherwise(pl.col("label"))
            .alias("label")
        )
        export(edited, shell.folder / "edited.xlsx")
    shell.server.reset_stats()
    done = shell("push", f"edited{suffix}", "--base", export_file, "--yes")
    assert done.returncode == 0, done.stderr
    assert "Plan: 2 to update" in done.stdout and "Pushed: 2 updated." in done.stdout
    assert shell.server.stats.requests["PUT"] == 2
    record = shell.server.get_record(first)
    assert record["label"] == "TRUE" and record["address"]["postCode"] == "02169"
    assert shell.server.get_record(second)["label"] == "007"


def test_a_csv_planned_against_current_records_is_read_in_their_schema(shell: Shell) -> None:
    (customer,) = clean_ids(shell.server, 1)
    assert shell("export", "customers.csv", "--include-archived").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv", shell.folder / "edited.csv", {customer: {"label": "x"}}
    )
    done = shell("push", "edited.csv", "--against-current", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Dry run: 1 would-update; nothing was written." in done.stdout
    assert "Planned against Sequence's current records" in done.stderr


def test_a_column_that_cannot_be_read_as_exported_is_refused_naming_it(shell: Shell) -> None:
    (customer,) = clean_ids(shell.server, 1)
    assert shell("export", "customers.csv").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv",
        shell.folder / "edited.csv",
        {customer: {"billingEmails": "ap@example.com"}},
    )
    shell.server.reset_stats()
    message = one_line(shell("push", "edited.csv", "--base", "customers.csv", "--yes"))
    assert "column 'billingEmails' of edited.csv" in message and customer in message
    assert "not a JSON list" in message
    assert sum(shell.server.stats.requests.values()) == 0


LONG_REASON = "An email address must have an @-sign."


def test_a_dry_run_prints_one_table_each_row_once_every_reason_in_full(shell: Shell) -> None:
    first, second, third = clean_ids(shell.server, 3)
    assert shell("export", "customers.csv").returncode == 0
    edits = {
        first: {"label": "reviewed"},
        second: {"label": "reviewed", "contactName": "Ada Lovelace"},
        third: {"email": "not an email"},
    }
    _edit_csv(shell.folder / "customers.csv", shell.folder / "edited.csv", edits)
    shell.server.reset_stats()
    done = shell("push", "edited.csv", "--base", "customers.csv", "--dry-run")
    out = done.stdout
    assert done.returncode == 1  # a row is invalid
    assert "shape:" not in out and "null" not in out and "…" not in out
    for customer in (first, second, third):
        assert out.count(customer) == 1  # each row once, its id on one line
    (invalid,) = [line for line in out.splitlines() if third in line]
    assert "invalid" in invalid and "'not an email'" in invalid
    assert LONG_REASON in " ".join(
        line.split("│")[-2].strip() for line in out.splitlines() if "│" in line
    )
    assert "Dry run: 2 would-update, 1 invalid; nothing was written." in out
    (by_column,) = [line for line in out.splitlines() if line.startswith("Changes by column: ")]
    counts = by_column.removeprefix("Changes by column: ").split(", ")
    assert sorted(counts) == ["contactName 1", "email 1", "label 2"]
    assert shell.server.stats.requests["PUT"] == 0


def test_json_output_is_for_scripts(shell: Shell) -> None:
    first, second = clean_ids(shell.server, 2)
    assert shell("export", "customers.csv").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv",
        shell.folder / "edited.csv",
        {first: {"label": "x"}, second: {"email": "nope"}},
    )
    done = shell("push", "edited.csv", "--base", "customers.csv", "--dry-run", "--json")
    document = json.loads(done.stdout)
    assert document["plan"]["digest"].startswith("sha256:")
    rows = {row["id"]: row for row in document["plan"]["rows"]}
    assert rows[first]["changes"][0]["new"] == "x" and rows[second]["sendable"] is False
    assert {r["id"]: r["status"] for r in document["result"]["rows"]} == {
        first: "would-update",
        second: "invalid",
    }
    assert document["result"]["dry_run"] is True and document["result"]["run_id"] is None
    runs = shell("runs", "--json")
    assert json.loads(runs.stdout) == []


def test_no_output_holds_the_secret(shell: Shell) -> None:
    secret = shell.server.client_secret
    (customer,) = clean_ids(shell.server, 1)
    outputs = [shell("export", "customers.csv")]
    _edit_csv(
        shell.folder / "customers.csv", shell.folder / "edited.csv", {customer: {"label": "x"}}
    )
    outputs.append(shell("push", "edited.csv", "--base", "customers.csv", "--yes"))
    outputs.append(shell("push", "edited.csv", "--base", "customers.csv", "--dry-run", "--json"))
    outputs += [
        shell("runs"),
        shell("runs", "--json"),
        shell("history"),
        shell("history", "--json"),
    ]
    outputs.append(shell("export", "x.csv", env={"SEQUENCE_CLIENT_SECRET": secret + "x"}))
    for done in outputs:
        assert secret not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr


def test_runs_name_each_run_by_kind_and_count_every_status(shell: Shell) -> None:
    first, second = clean_ids(shell.server, 2)
    assert shell("export", "customers.csv").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv",
        shell.folder / "edited.csv",
        {first: {"label": "x"}, second: {"email": "nope"}},
    )
    pushed = shell("push", "edited.csv", "--base", "customers.csv", "--yes")
    run_id = pushed.stdout.split("To undo it: sequence-nb undo ")[1].split()[0]
    undone = shell("undo", run_id, "--yes")
    assert undone.returncode == 0, undone.stderr
    runs = json.loads(shell("runs", "--json").stdout)
    assert [(r["kind"], r["updated"], r["invalid"], r["rows"]) for r in runs] == [
        ("undo", 1, 0, 1),
        ("push", 1, 1, 2),
    ]
    assert runs[0]["undoes"] == run_id and runs[1]["undone_by"] == runs[0]["run_id"]
    table = shell("runs").stdout
    (push_line,) = [line for line in table.splitlines() if f"│ {run_id} " in line]
    assert "│ push " in push_line and "1 updated, 1 invalid" in push_line
    assert f"undone by {runs[0]['run_id']}" in push_line
    assert "2 runs in the journal" in table


def test_undoing_an_undone_run_says_nothing_to_undo_and_makes_no_run(shell: Shell) -> None:
    (customer,) = clean_ids(shell.server, 1)
    assert shell("export", "customers.csv").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv", shell.folder / "edited.csv", {customer: {"label": "x"}}
    )
    pushed = shell("push", "edited.csv", "--base", "customers.csv", "--yes")
    run_id = pushed.stdout.split("To undo it: sequence-nb undo ")[1].split()[0]
    first = shell("undo", run_id, "--yes")
    assert first.returncode == 0 and "Pushed: 1 updated." in first.stdout
    undo_run = json.loads(shell("runs", "--json").stdout)[0]["run_id"]
    shell.server.reset_stats()
    again = shell("undo", run_id, "--yes")
    assert again.returncode == 0, again.stderr
    assert f"Nothing to undo for run {run_id}: it was undone by run {undo_run}." in again.stdout
    assert "To undo it" not in again.stdout
    assert len(json.loads(shell("runs", "--json").stdout)) == 2  # no new run
    assert shell.server.stats.requests.get("PUT", 0) == 0
    unknown = one_line(shell("undo", "no-such-run", "--yes"))
    assert "no run 'no-such-run' in the journal" in unknown
    assert "`sequence-nb runs` lists its runs" in unknown


def test_resume_finishes_a_run_under_its_id_and_runs_say_so(shell: Shell) -> None:
    (customer,) = clean_ids(shell.server, 1)
    assert shell("export", "customers.csv").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv", shell.folder / "edited.csv", {customer: {"label": "x"}}
    )
    pushed = shell("push", "edited.csv", "--base", "customers.csv", "--yes")
    run_id = pushed.stdout.split("To undo it: sequence-nb undo ")[1].split()[0]
    assert "not writing without confirmation; pass --yes" in one_line(shell("resume", run_id))
    resumed = shell("resume", run_id, "--yes")
    assert resumed.returncode == 0 and f"Run {run_id}," in resumed.stdout
    (run,) = json.loads(shell("runs", "--json").stdout)
    assert (run["kind"], run["resumed"], run["updated"]) == ("push", 1, 1)
    assert "resumed once" in shell("runs").stdout


def test_runs_and_history_say_there_is_no_journal_and_make_none(shell: Shell) -> None:
    for command in ("runs", "history"):
        done = shell(command)
        assert done.returncode == 0 and "Traceback" not in done.stderr
    assert "there is no journal at" in shell("runs").stdout
    assert "No changes in the journal yet." in shell("history").stdout
    assert not (shell.folder / "journal.sqlite3").exists()


def test_runs_and_history_read_a_journal_on_a_read_only_mount(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        run = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        journal.record_outcome(run, "c", status="skipped")
    with read_only_copy(path, tmp_path / "archive") as archived:
        assert main(["runs", "--journal", str(archived)]) == 0
        assert run in capsys.readouterr().out
        out = tmp_path / "history.csv"
        assert main(["history", "--journal", str(archived), "--out", str(out)]) == 0
        assert out.exists()


def test_undo_asks_to_restore_customers_not_to_push_updates(
    server: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relabel(exported(server, tmp_path), server, 3).write_parquet(tmp_path / "edited.parquet")
    journal = ["--journal", str(tmp_path / "journal.sqlite3")]
    push = ["push", str(tmp_path / "edited.parquet"), "--against-current", "--yes"]
    assert main([*push, *journal]) == 0
    run_id = capsys.readouterr().out.split("To undo it: sequence-nb undo ")[1].split()[0]
    asked: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    assert main(["undo", run_id, *journal]) == 1
    assert asked == [f"Undo run {run_id}: restore 3 customers on {server.url}? [y/N] "]
    assert "Nothing was sent." in capsys.readouterr().out


def test_history_lists_every_field_each_run_changed(shell: Shell) -> None:
    first, second = clean_ids(shell.server, 2)
    old = shell.server.get_record(first)["label"]
    assert shell("export", "customers.csv").returncode == 0
    _edit_csv(
        shell.folder / "customers.csv",
        shell.folder / "edited.csv",
        {first: {"label": "x", "contactName": "Ada"}, second: {"label": "y"}},
    )
    pushed = shell("push", "edited.csv", "--base", "customers.csv", "--yes")
    run_id = pushed.stdout.split("To undo it: sequence-nb undo ")[1].split()[0]
    assert shell("undo", run_id, "--yes").returncode == 0
    done = shell("history", "--customer", first)
    assert done.returncode == 0
    lines = [line for line in done.stdout.splitlines() if first in line]
    assert len(lines) == 4  # two fields, pushed and undone
    assert any("│ push " in line and f"'{old}'" in line and "'x'" in line for line in lines)
    assert "4 changes" in done.stdout
    assert "No changes in the journal match." in shell("history", "--since", "2999-01-01").stdout
    for name in ("history.csv", "history.xlsx", "history.json", "history.parquet"):
        written = shell("history", "--out", name)
        assert written.returncode == 0 and f"Wrote 6 changes to {name}" in written.stdout
        frame = read_export(shell.folder / name)
        assert frame.height == 6 and set(frame["kind"]) == {"push", "undo"}
        assert set(frame.columns) >= {
            "run",
            "kind",
            "when",
            "customer",
            "field",
            "old",
            "new",
            "status",
        }
    rows = json.loads(shell("history", "--json").stdout)
    assert len(rows) == 6 and rows[0]["when"].endswith("Z")


def test_sandbox_prints_the_export_lines_to_paste(tmp_path: Path) -> None:
    port = 17765 + os.getpid() % 1000
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sequence_nb.cli",
            "sandbox",
            "--customers",
            "12",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        banner = []
        while not banner or banner[-1] != "Press Ctrl-C to stop.\n":
            banner.append(child.stdout.readline())
            assert banner[-1], "the sandbox ended before it said how to stop it"
        pasted = [line.strip() for line in banner if line.strip().startswith("export ")]
        assert sorted(line.split("=")[0] for line in pasted) == [
            "export SEQUENCE_API_VERSION",
            "export SEQUENCE_BASE_URL",
            "export SEQUENCE_CLIENT_ID",
            "export SEQUENCE_CLIENT_SECRET",
        ]
        assert "export SEQUENCE_API_VERSION=seed" in pasted
        script = "; ".join(
            [*pasted, f"{sys.executable} -m sequence_nb.cli export {tmp_path}/c.csv"]
        )
        clean_env = {k: v for k, v in env.items() if not k.startswith("SEQUENCE_")}
        done = subprocess.run(
            ["bash", "-c", script], env=clean_env, capture_output=True, text=True, timeout=60
        )
        assert "Wrote 12 customers" in done.stdout, done.stderr
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert child.returncode == 0


# -- API version 2024-07-30: --api-version, contacts, archive -------------------------------

V2024 = "2024-07-30"


@pytest.fixture
def shell2024(make_sandbox: SandboxFactory, tmp_path: Path) -> Shell:
    """``sequence-nb`` in a process of its own against a 2024-07-30 sandbox, whose
    ``export`` lines (SEQUENCE_API_VERSION among them) are in the environment."""
    return Shell(make_sandbox(customers=24, seed=7, api_version=V2024), tmp_path)


def us_customer(server: Sandbox) -> str:
    """A customer of the sandbox with a US address and custom properties."""
    planted = {p.id for p in server.planted}
    return next(
        r["id"]
        for r in server.records()
        if r["address"].get("country") == "US"
        and len(r.get("customProperties") or {}) >= 2
        and r["id"] not in planted
    )


def test_api_version_picks_the_version_and_the_environment_gives_the_default(
    shell2024: Shell,
) -> None:
    unset = {"SEQUENCE_API_VERSION": None}
    done = shell2024("export", "flag.csv", "--api-version", V2024, env=unset)
    assert done.returncode == 0, done.stderr
    assert f"push COPY --api-version {V2024} --base flag.csv" in done.stdout
    assert shell2024("export", "environment.csv").returncode == 0
    for name in ("flag.csv", "environment.csv"):
        columns = pl.read_csv(shell2024.folder / name, infer_schema=False).columns
        assert {"address.postcode", "address.state", "status"} <= set(columns), name
        assert "address.postCode" not in columns and "email" not in columns
    for command in ("sandbox", "demo", "export", "push", "archive"):
        text = " ".join(shell2024(command, "--help").stdout.split())
        assert "--api-version NAME" in text and "seed or 2024-07-30" in text, command
        assert f"(default: $SEQUENCE_API_VERSION, else seed; here: {V2024})" in text or (
            command == "push" and "(default: a --plan's own, else $SEQUENCE_API_VERSION" in text
        ), command
    seed_help = " ".join(shell2024("export", "--help", env=unset).stdout.split())
    assert "else seed; here: seed)" in seed_help


@pytest.mark.parametrize(
    ("args", "env", "status"),
    [
        (["export", "out.csv", "--api-version", "2023-01-01"], {}, 2),
        (["archive", "x", "--api-version", "latest"], {}, 2),
        (["export", "out.csv"], {"SEQUENCE_API_VERSION": "2023-01-01"}, 1),
        (["sandbox", "--api-version", "v2"], {}, 2),
    ],
)
def test_an_unknown_api_version_is_one_line_naming_the_known_ones(
    shell2024: Shell, args: list[str], env: dict[str, str | None], status: int
) -> None:
    shell2024.server.reset_stats()
    done = shell2024(*args, env=env)
    assert done.returncode == status
    assert "unknown API version" in one_line(done) and "seed, 2024-07-30" in done.stderr
    assert sum(shell2024.server.stats.requests.values()) == 0


def test_sandbox_serves_the_version_asked_and_prints_its_export_line(tmp_path: Path) -> None:
    port = 16765 + os.getpid() % 1000
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQUENCE_")}
    env["PYTHONPATH"] = str(REPOSITORY)
    command = [sys.executable, "-m", "sequence_nb.cli", "sandbox", "--customers", "9"]
    child = subprocess.Popen(
        [*command, "--port", str(port), "--api-version", V2024],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        banner = []
        while not banner or banner[-1] != "Press Ctrl-C to stop.\n":
            banner.append(child.stdout.readline())
            assert banner[-1], "the sandbox ended before it said how to stop it"
        assert f"(API version {V2024})" in banner[0]
        pasted = [line.strip() for line in banner if line.strip().startswith("export ")]
        assert f"export SEQUENCE_API_VERSION={V2024}" in pasted
        script = "; ".join([*pasted, f"{sys.executable} -m sequence_nb.cli export c.csv"])
        done = subprocess.run(
            ["bash", "-c", script],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Wrote 9 customers" in done.stdout, done.stderr
        assert "customProperties." in (tmp_path / "c.csv").read_text().splitlines()[0]
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert child.returncode == 0


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_2024_csv_or_excel_export_pushes_back_in_its_versions_dtypes(
    shell2024: Shell, suffix: str
) -> None:
    server = shell2024.server
    customer = us_customer(server)
    record = server.get_record(customer)
    server.edit_remote(customer, {"address": {**record["address"], "postcode": "02169"}})
    properties = dict(server.get_record(customer)["customProperties"])
    key = next(iter(properties))
    export_file = f"customers{suffix}"
    assert shell2024("export", export_file).returncode == 0
    frame = read_export(shell2024.folder / export_file, api_version=V2024)
    assert isinstance(frame.schema["status"], pl.Enum)
    assert frame.filter(pl.col("id") == customer)["address.postcode"].item() == "02169"
    edited = frame.with_columns(
        pl.when(pl.col("id") == customer)
        .then(pl.lit("[edited] 007"))
        .otherwise(pl.col(f"customProperties.{key}"))
        .alias(f"customProperties.{key}")
    )
    if suffix == ".csv":  # as a user writes it with polars: every cell as text
        text = pl.read_csv(shell2024.folder / export_file, infer_schema=False)
        text.with_columns(edited[f"customProperties.{key}"]).write_csv(
            shell2024.folder / "edited.csv"
        )
    else:
        export(edited, shell2024.folder / "edited.xlsx")
    server.reset_stats()
    done = shell2024("push", f"edited{suffix}", "--base", export_file, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Plan: 1 to update" in done.stdout and "Pushed: 1 updated." in done.stdout
    assert server.stats.requests["PUT"] == 1
    after = server.get_record(customer)
    assert after["customProperties"] == {**properties, key: "[edited] 007"}
    assert after["address"]["postcode"] == "02169" and after["status"] == record["status"]
    assert after["contacts"] == record["contacts"]


def test_a_file_of_another_version_is_refused_naming_the_version_to_pass(
    shell2024: Shell,
) -> None:
    assert shell2024("export", "customers.csv").returncode == 0
    shell2024.server.reset_stats()
    args = ("push", "customers.csv", "--base", "customers.csv", "--dry-run")
    done = shell2024(*args, "--api-version", "seed")
    message = one_line(done)
    assert "holds columns of API version 2024-07-30" in message
    assert "pass --api-version 2024-07-30" in message
    assert sum(shell2024.server.stats.requests.values()) == 0


def edit_contacts(folder: Path, customer: str) -> tuple[str, str]:
    """Change the email of ``customer``'s first contact and add a contact to it, in a
    copy of contacts.csv as a user does with polars; the old and new email."""
    frame = pl.read_csv(folder / "contacts.csv", infer_schema=False)
    first = frame.filter(pl.col("customerId") == customer)["id"][0]
    old = frame.filter(pl.col("id") == first)["email"].item()
    edited = frame.with_columns(
        pl.when(pl.col("id") == first)
        .then(pl.lit("changed@example.com"))
        .otherwise(pl.col("email"))
        .alias("email")
    )
    added = pl.DataFrame(
        {
            "customerId": [customer],
            "name": ["Added From The Shell"],
            "email": ["added@example.com"],
            "billingPreference": ["STANDARD"],
        }
    )
    pl.concat([edited, added], how="diagonal").write_csv(folder / "edited-contacts.csv")
    return old, "changed@example.com"


def test_contacts_export_and_push_with_dry_run_confirmation_journal_and_undo(
    shell2024: Shell,
) -> None:
    server = shell2024.server
    done = shell2024("export", "contacts.csv", "--contacts")
    assert done.returncode == 0, done.stderr
    listed = server.client().list_customers()
    count = sum(len(server.get_record(r["id"]).get("contacts") or []) for r in listed)
    assert f"Wrote {count} contacts of {len(listed)} customers" in done.stdout
    assert "push COPY --contacts --base contacts.csv" in done.stdout
    frame = read_contacts_export(shell2024.folder / "contacts.csv", api_version=V2024)
    assert frame.columns == list(CONTACT_COLUMNS) and frame.height == count
    customer = us_customer(server)
    untouched = [r["id"] for r in listed if r["id"] != customer]
    before = {i: server.get_record(i)["contacts"] for i in [customer, *untouched]}
    old, new = edit_contacts(shell2024.folder, customer)
    push = ("push", "edited-contacts.csv", "--contacts", "--base", "contacts.csv")
    server.reset_stats()

    dry = shell2024(*push, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Plan: 1 to update" in dry.stdout and "Dry run: 1 would-update" in dry.stdout
    assert f"'{old}'" in dry.stdout and f"'{new}'" in dry.stdout
    assert "'Added From The Shell' <'added@example.com'> 'STANDARD'" in dry.stdout
    asked = shell2024(*push)  # no terminal to answer the question
    assert asked.returncode == 2 and "pass --yes" in asked.stderr
    assert server.stats.requests.get("PUT", 0) == 0

    pushed = shell2024(*push, "--yes")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "Pushed: 1 updated." in pushed.stdout
    run = re.search(r"sequence-nb undo (\S+)", pushed.stdout)
    assert run is not None
    emails = [c["email"] for c in server.get_record(customer)["contacts"]]
    assert new in emails and "added@example.com" in emails and old not in emails
    assert all(server.get_record(i)["contacts"] == before[i] for i in untouched)
    assert run.group(1) in shell2024("runs").stdout

    undone = shell2024("undo", run.group(1), "--yes")
    assert "Pushed: 1 updated." in undone.stdout, undone.stdout + undone.stderr
    restored = server.get_record(customer)["contacts"]
    assert [c["email"] for c in restored] == [c["email"] for c in before[customer]]


def test_undoing_a_contacts_push_reports_no_side_effects(shell2024: Shell) -> None:
    assert shell2024("export", "contacts.csv", "--contacts").returncode == 0
    edit_contacts(shell2024.folder, us_customer(shell2024.server))
    push = ("push", "edited-contacts.csv", "--contacts", "--base", "contacts.csv", "--yes")
    pushed = shell2024(*push)
    run = re.search(r"sequence-nb undo (\S+)", pushed.stdout)
    assert run is not None, pushed.stdout + pushed.stderr
    undone = shell2024("undo", run.group(1), "--yes")
    assert "side effect" not in undone.stdout
    assert undone.returncode == 0, undone.stdout


def test_contacts_against_current_records_say_older_values_are_written_back(
    shell2024: Shell,
) -> None:
    assert shell2024("export", "contacts.json", "--contacts").returncode == 0
    customer = us_customer(shell2024.server)
    frame = read_contacts_export(shell2024.folder / "contacts.json", api_version=V2024)
    frame.filter(pl.col("customerId") == customer).with_columns(
        pl.lit("Renamed").alias("name")
    ).write_parquet(shell2024.folder / "edited.parquet")
    done = shell2024("push", "edited.parquet", "--contacts", "--against-current", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Plan: 1 to update" in done.stdout
    assert "Planned against Sequence's current contacts" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["export", "contacts.csv", "--contacts", "--api-version", "seed"],
        ["push", "edited.csv", "--contacts", "--base", "contacts.csv", "--api-version", "seed"],
        ["archive", "some-id", "--yes", "--api-version", "seed"],
    ],
)
def test_contacts_and_archive_are_refused_plainly_in_the_seeds_version(
    shell2024: Shell, args: list[str]
) -> None:
    shell2024.server.reset_stats()
    message = one_line(shell2024(*args))
    assert "needs API version 2024-07-30: API version seed has no" in message
    assert "--api-version 2024-07-30" in message
    assert sum(shell2024.server.stats.requests.values()) == 0


def test_archive_says_there_is_no_way_back_asks_journals_and_undo_says_so(
    shell2024: Shell,
) -> None:
    server = shell2024.server
    planted = {p.id for p in server.planted}
    first, second = [r["id"] for r in server.records() if r["id"] not in planted][:2]
    server.reset_stats()

    dry = shell2024("archive", first, second, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "2 to archive (no way back)" in dry.stdout
    assert "Sequence has no way back" in dry.stdout and "undo cannot restore them" in dry.stdout
    assert "Dry run: 2 would-archive; nothing was written." in dry.stdout
    asked = shell2024("archive", first, second)
    assert asked.returncode == 2 and "pass --yes" in asked.stderr
    assert "to archive" in asked.stdout and "no way back" in asked.stdout
    assert server.stats.requests.get("POST", 0) == 0
    assert not server.get_record(first).get("archivedAt")

    done = shell2024("archive", first, second, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Pushed: 2 archived." in done.stdout
    assert "To undo it" not in done.stdout and "undo cannot restore them" in done.stdout
    run = re.search(r"Run (\S+), journal", done.stdout)
    assert run is not None
    assert server.get_record(first)["archivedAt"] and server.get_record(second)["archivedAt"]
    runs = shell2024("runs", "--json")
    assert json.loads(runs.stdout)[0]["run_id"] == run.group(1)

    undone = shell2024("undo", run.group(1), "--yes")
    assert undone.returncode == 1
    assert "Nothing was sent and no run was made." in undone.stdout
    assert "2 of them were archived: Sequence has no way back" in undone.stdout
    assert server.get_record(first)["archivedAt"]
    wrong = shell2024("undo", run.group(1), "--yes", "--api-version", "seed")
    assert "made in API version 2024-07-30, not seed" in one_line(wrong)


def test_archiving_an_unknown_or_archived_customer_sends_nothing_and_exits_1(
    shell2024: Shell,
) -> None:
    server = shell2024.server
    first = server.records()[0]["id"]
    assert shell2024("archive", first, "--yes").returncode == 0
    server.reset_stats()
    done = shell2024("archive", first, "no-such-customer", "--yes")
    assert done.returncode == 1
    assert "already archived" in done.stdout and "not in the frame" in done.stdout
    assert "Nothing to archive: nothing was sent." in done.stdout
    json_done = shell2024("archive", "no-such-customer", "--json")
    assert json_done.returncode == 2 and "--json prints for a script" in json_done.stderr


def test_history_of_an_archive_run_is_one_archivedAt_row_per_customer(
    shell2024: Shell,
) -> None:
    first = shell2024.server.records()[0]["id"]
    assert shell2024("archive", first, "--yes").returncode == 0
    rows = json.loads(shell2024("history", "--json").stdout)
    assert [(r["customer"], r["field"]) for r in rows] == [(first, "archivedAt")]


def test_a_seed_file_with_columns_2024_reads_only_is_not_taken_for_a_2024_export(
    shell: Shell,
) -> None:
    assert shell("export", "customers.csv").returncode == 0
    frame = pl.read_csv(shell.folder / "customers.csv", infer_schema=False)
    customer = clean_ids(shell.server, 1)[0]
    frame.select(
        "id",
        pl.when(pl.col("id") == customer)
        .then(pl.lit("seed label"))
        .otherwise("label")
        .alias("label"),
        pl.lit(None, dtype=pl.String).alias("archivedAt"),
        pl.lit(None, dtype=pl.String).alias("domain"),
    ).write_csv(shell.folder / "edited.csv")
    done = shell("push", "edited.csv", "--base", "customers.csv", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Dry run: 1 would-update" in done.stdout


def test_a_saved_2024_plan_is_applied_in_its_own_version(shell2024: Shell) -> None:
    server = shell2024.server
    assert shell2024("export", "customers.parquet").returncode == 0
    customer = us_customer(server)
    frame = pl.read_parquet(shell2024.folder / "customers.parquet")
    frame.with_columns(
        pl.when(pl.col("id") == customer).then(pl.lit("planned")).otherwise("label").alias("label")
    ).write_parquet(shell2024.folder / "edited.parquet")
    saved = shell2024(
        "push",
        "edited.parquet",
        "--base",
        "customers.parquet",
        "--dry-run",
        "--save-plan",
        "p.json",
    )
    assert saved.returncode == 0, saved.stdout + saved.stderr
    unset = {"SEQUENCE_API_VERSION": None}
    wrong = shell2024("push", "--plan", "p.json", "--yes", "--api-version", "seed", env=unset)
    assert "was made in API version 2024-07-30, not seed" in one_line(wrong)
    done = shell2024("push", "--plan", "p.json", "--yes", env=unset)
    assert done.returncode == 0, done.stdout + done.stderr
    assert server.get_record(customer)["label"] == "planned"


def test_a_customers_file_pushed_as_contacts_is_one_line_before_anything_is_read(
    shell2024: Shell,
) -> None:
    assert shell2024("export", "customers.csv").returncode == 0
    assert shell2024("export", "contacts.csv", "--contacts").returncode == 0
    shell2024.server.reset_stats()
    done = shell2024("push", "customers.csv", "--contacts", "--base", "contacts.csv", "--yes")
    message = one_line(done)
    assert message.startswith("sequence-nb: the edited file: customers.csv has")
    assert "it holds customers, not contacts" in message
    assert sum(shell2024.server.stats.requests.values()) == 0
