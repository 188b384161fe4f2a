"""The journal file: private to its owner, and loud when it cannot be written."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sequence_nb.history import history
from sequence_nb.journal import ROW_STATUSES, Journal, JournalError, UnknownRunError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_journal_and_the_folder_it_makes_are_private_to_their_owner(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "journal.sqlite3"
    with Journal(path) as journal:
        run = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        journal.record_outcome(run, "c", status="skipped")
        files = [path, *path.parent.glob("journal.sqlite3-*")]
        assert len(files) > 1  # the WAL beside it holds personal data too
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700


def test_an_existing_journal_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    path.chmod(0o644)
    Journal(path).close()
    assert mode(path) == 0o600


def test_a_journal_that_cannot_be_created_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(tmp_path / "a-file" / "journal.sqlite3")


def test_a_journal_that_is_not_a_database_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(path)


def test_a_full_journal_raises_journal_error_not_a_raw_sqlite_error(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        run = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
        big = {"blob": "x" * 100_000}
        with pytest.raises(JournalError, match="cannot write the journal"):
            journal.record_intent(run, "c", idempotency_key="k", before=big, body=big)


def test_an_unknown_run_is_a_lookup_error_naming_it(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal, pytest.raises(UnknownRunError) as e:
        journal.run("nope")
    assert isinstance(e.value, LookupError) and "'nope'" in str(e.value)


def test_runs_count_every_status_and_say_what_undid_what(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        pushed = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        for number, status in enumerate(ROW_STATUSES):
            for copy in range(number + 1):
                journal.record_outcome(pushed, f"{status}-{copy}", status=status)
        undone = journal.start_run(
            kind="undo", plan_id="q", base_url="u", plan_json=b"{}", undoes=pushed
        )
        journal.finish_run(undone)
        journal.note_resumed(pushed)
        runs = {run["run_id"]: run for run in journal.runs().iter_rows(named=True)}
    assert [runs[pushed][status] for status in ROW_STATUSES] == list(range(1, 9))
    assert runs[pushed]["rows"] == sum(range(1, 9))
    assert runs[pushed]["kind"] == "push" and runs[pushed]["undone_by"] == undone
    assert runs[pushed]["resumed"] == 1 and runs[pushed]["resumed_at"] is not None
    assert runs[undone]["kind"] == "undo" and runs[undone]["undoes"] == pushed
    assert runs[undone]["rows"] == 0 and runs[undone]["updated"] == 0


def test_run_records_are_oldest_first_and_writes_say_when(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        first = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        second = journal.start_run(kind="push", plan_id="q", base_url="u", plan_json=b"{}")
        journal.record_intent(first, "c", idempotency_key="k", before={}, body={})
        journal.record_outcome(first, "c", status="updated")
        assert [run.run_id for run in journal.run_records()] == [first, second]
        (write,) = journal.writes(first)
    assert write.started_at is not None and write.finished_at is not None
    assert write.started_at <= write.finished_at


@pytest.mark.parametrize(
    ("column", "stored"),
    [("body_json", b"[]"), ("before_json", b'"text"'), ("after_json", b"not json")],
)
def test_a_journaled_record_that_is_not_a_json_object_is_a_journal_error_naming_it(
    tmp_path: Path, column: str, stored: bytes
) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        run = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        journal.record_intent(run, "c-7", idempotency_key="k", before={"id": "c-7"}, body={})
        journal.record_outcome(run, "c-7", status="updated", after={"id": "c-7"})
        journal._write(f"UPDATE writes SET {column} = ?", (stored,))  # a damaged file
        with pytest.raises(JournalError, match=rf"run {run}.*customer 'c-7'.*{column}"):
            journal.writes(run)


@pytest.mark.parametrize("plan_json", [b"not json", b"[]", b'{"api_version": 5}'])
def test_a_run_whose_plan_cannot_be_read_is_a_journal_error_naming_it(
    tmp_path: Path, plan_json: bytes
) -> None:
    with Journal(tmp_path / "journal.sqlite3") as journal:
        run = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=plan_json)
        with pytest.raises(JournalError, match=rf"run {run}.*plan"):
            journal.run(run).api_version_name  # noqa: B018


def test_a_journal_path_that_is_no_regular_file_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    device = tmp_path / "null"  # as SEQUENCE_NB_JOURNAL=/dev/null would name one
    os.mkfifo(device, 0o644)
    link = tmp_path / "link.sqlite3"
    link.symlink_to(device)
    for path in (device, link):
        with pytest.raises(JournalError, match="not a regular file"):
            Journal(path)
    assert mode(device) == 0o644  # never made private: it is not the journal's to change


@contextmanager
def read_only_copy(journal: Path, folder: Path) -> Iterator[Path]:
    """The journal copied to a folder mounted read-only (as an archive or backup is)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a read-only folder needs root and mount(8)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)])
    if mounted.returncode != 0:
        pytest.skip("this machine does not let tests mount a folder")
    try:
        shutil.copy(journal, folder / journal.name)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder / journal.name
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_journal_on_a_read_only_mount_is_read_for_runs_and_history(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        run = journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
        journal.record_outcome(run, "c", status="skipped")
    with read_only_copy(path, tmp_path / "archive") as archived:
        with Journal(archived, read_only=True) as journal:
            assert [r.run_id for r in journal.run_records()] == [run]
            with pytest.raises(JournalError, match="read-only"):
                journal.start_run(kind="push", plan_id="q", base_url="u", plan_json=b"{}")
        assert history(journal=archived).equals(history(journal=path))
        with pytest.raises(JournalError, match="cannot open the journal"):
            Journal(archived)  # to write, it must be writable: loud, as before


def test_reading_a_journal_read_only_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        journal.start_run(kind="push", plan_id="p", base_url="u", plan_json=b"{}")
    before = path.read_bytes()
    with Journal(path, read_only=True) as journal:
        assert len(journal.runs()) == 1
    assert path.read_bytes() == before
    with pytest.raises(JournalError, match="no journal at"):
        Journal(tmp_path / "missing.sqlite3", read_only=True)
    assert not (tmp_path / "missing.sqlite3").exists()
