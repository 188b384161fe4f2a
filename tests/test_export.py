"""Exports: each format written and read back."""

from __future__ import annotations

import importlib
import json
import os
import stat
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sequence_nb.contacts import contacts_frame, contacts_schema
from sequence_nb.errors import SequenceError
from sequence_nb.export import (
    ExportError,
    ReadBackError,
    export,
    read_contacts_export,
    read_export,
)
from sequence_nb.fields import V2024_07_30
from sequence_nb.frames import to_frame, to_records
from tests import v2024
from tests.test_frames import SEED_RECORD

#: The module itself (``sequence_nb.export`` the attribute is the function).
export_module = importlib.import_module("sequence_nb.export")

ODD: dict[str, Any] = {
    "id": "b",
    "createdAt": "2023-01-02T03:04:05.120Z",
    "legalName": '=HYPERLINK("https://evil.example")',
    "email": "zoë@example.com",
    "address": {"line1": "١٢ شارع", "town": "😀 Town", "country": "GB"},
    "taxStatus": "TAX_EXEMPT",
    "label": "",
    "billingEmails": [],
    "linkedServices": [{"externalId": "9", "externalService": "Stripe"}],
    "archivedAt": "2024-01-01T00:00:00Z",
    "externalIds": [{"key": "Stripe", "value": "cus_1"}],
    "meta": {"tags": ["a", "b"], "score": 3},
}


@pytest.fixture
def frame() -> pl.DataFrame:
    return to_frame([SEED_RECORD, ODD])


def test_parquet_reads_back_as_an_equal_frame(frame: pl.DataFrame, tmp_path: Path) -> None:
    written = export(frame, tmp_path / "customers.parquet")
    assert written == tmp_path / "customers.parquet"
    assert_frame_equal(pl.read_parquet(written), frame)


def test_json_is_the_records_nested_as_the_api_nests_them(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    written = export(frame, tmp_path / "customers.json")
    back = json.loads(written.read_text(encoding="utf-8"))
    assert back == to_records(frame) == [SEED_RECORD, ODD]
    assert back[0]["createdAt"] == "2022-06-28T16:47:00Z"
    assert back[1]["createdAt"] == "2023-01-02T03:04:05.120Z"


def test_csv_holds_lists_and_structs_as_json_text(frame: pl.DataFrame, tmp_path: Path) -> None:
    written = export(frame, tmp_path / "customers.csv")
    back = pl.read_csv(written, infer_schema=False)
    assert back.columns == frame.columns
    first, second = back.rows(named=True)
    assert first["createdAt"] == "2022-06-28T16:47:00Z"
    assert first["address.postCode"] == "AB1 2EF"
    assert json.loads(first["billingEmails"]) == SEED_RECORD["billingEmails"]
    assert json.loads(first["linkedServices"]) == SEED_RECORD["linkedServices"]
    assert first["externalIds"] is None
    assert second["billingEmails"] == "[]"
    assert json.loads(second["linkedServices"]) == ODD["linkedServices"]
    assert json.loads(second["meta.tags"]) == ["a", "b"]
    assert second["meta.score"] == "3"
    assert second["legalName"] == ODD["legalName"]
    assert second["address.line1"] == "١٢ شارع"


def test_excel_holds_lists_as_json_text_and_text_as_text(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    written = export(frame, tmp_path / "customers.xlsx")
    back = pl.read_excel(written, sheet_name="customers", engine="calamine")
    assert back.columns == frame.columns
    first, second = back.rows(named=True)
    assert first["createdAt"] == datetime(2022, 6, 28, 16, 47)
    assert second["createdAt"] == datetime(2023, 1, 2, 3, 4, 5, 120000)
    assert first["url"] == "https://example.com/"
    assert first["taxStatus"] == "TAXED"
    assert json.loads(first["linkedServices"]) == SEED_RECORD["linkedServices"]
    assert second["billingEmails"] == "[]"
    assert json.loads(second["externalIds"]) == ODD["externalIds"]
    assert second["legalName"] == ODD["legalName"]  # not turned into a formula
    assert second["address.town"] == "😀 Town"


def test_format_argument_wins_over_the_extension(frame: pl.DataFrame, tmp_path: Path) -> None:
    written = export(frame, tmp_path / "customers.data", format="json")
    assert json.loads(written.read_text(encoding="utf-8")) == to_records(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.data"]


@pytest.mark.parametrize("name", ["customers", "customers.txt", "customers.xls"])
def test_an_unknown_extension_is_a_clear_error(
    frame: pl.DataFrame, tmp_path: Path, name: str
) -> None:
    with pytest.raises(ExportError, match="cannot tell the export format"):
        export(frame, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_format_is_a_clear_error(frame: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'yaml'"):
        export(frame, tmp_path / "c.json", format="yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".xlsx"])
def test_an_empty_frame_exports(tmp_path: Path, suffix: str) -> None:
    written = export(to_frame([]), tmp_path / f"empty{suffix}")
    assert written.stat().st_size > 0


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".xlsx"])
def test_exports_add_nothing_beyond_the_frame(
    frame: pl.DataFrame, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-do-not-export-0123456789"
    monkeypatch.setenv("SEQUENCE_CLIENT_ID", "client-id-marker")
    monkeypatch.setenv("SEQUENCE_CLIENT_SECRET", secret)
    written = export(frame, tmp_path / f"customers{suffix}")
    content = written.read_bytes()
    if suffix == ".xlsx":  # a zip: look inside every part
        with zipfile.ZipFile(written) as archive:
            content = b"".join(archive.read(name) for name in archive.namelist())
    assert secret.encode() not in content
    assert b"client-id-marker" not in content


def test_excel_refuses_a_value_longer_than_a_cell_holds(tmp_path: Path) -> None:
    df = to_frame([{"id": "a", "label": "x" * 40_000}])
    with pytest.raises(ExportError, match="at most 32,767"):
        export(df, tmp_path / "c.xlsx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".xlsx"])
def test_an_export_is_readable_by_its_owner_only_while_and_after_it_is_written(
    frame: pl.DataFrame, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = "parquet" if suffix == ".parquet" else suffix.removeprefix(".")
    write = export_module._WRITERS[kind]
    modes: list[int] = []

    def watched(df: pl.DataFrame, path: Path) -> None:
        write(df, path)
        modes.append(path.stat().st_mode & 0o777)

    monkeypatch.setitem(export_module._WRITERS, kind, watched)
    target = tmp_path / f"customers{suffix}"
    target.write_text("an older export, world-readable")
    target.chmod(0o644)
    previous = os.umask(0o022)
    try:
        written = export(frame, target)
    finally:
        os.umask(previous)
    assert modes == [0o600]
    assert written.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_an_export_never_replaces_what_is_no_regular_file(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    device = tmp_path / "null.csv"  # as an export to /dev/null would name one
    os.mkfifo(device, 0o666)
    with pytest.raises(OSError, match="not a regular file"):
        export(frame, device)
    assert stat.S_ISFIFO(device.lstat().st_mode)  # not replaced by a file
    assert [p.name for p in tmp_path.iterdir()] == [device.name]


def test_an_export_format_is_known_before_anything_is_written(tmp_path: Path) -> None:
    assert export_module.export_format(tmp_path / "c.pq") == "parquet"
    assert export_module.export_format(tmp_path / "c.txt", "csv") == "csv"
    with pytest.raises(ExportError, match=r"out\.txt"):
        export_module.export_format(tmp_path / "out.txt")


# -- reading back -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".csv", ".xlsx"])
def test_every_format_reads_back_as_the_frame_it_was_exported_from(
    frame: pl.DataFrame, tmp_path: Path, suffix: str
) -> None:
    written = export(frame, tmp_path / f"customers{suffix}")
    back = read_export(written, schema=frame.schema)
    expected = frame
    if suffix == ".xlsx":  # Excel keeps no empty text: an empty cell is a null
        expected = frame.with_columns(pl.col(pl.String).replace("", None))
    assert_frame_equal(back, expected)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_text_stays_text_in_csv_and_excel(tmp_path: Path, suffix: str) -> None:
    texts = ["02169", "TRUE", "=1+1", "1e5", "NA", "null", " 7 ", "0044 20 7946 0000"]
    frame = to_frame(
        [
            {"id": f"c{n}", "label": text, "address": {"postCode": text}}
            for n, text in enumerate(texts)
        ]
    )
    back = read_export(export(frame, tmp_path / f"customers{suffix}"))
    assert back["label"].to_list() == texts
    assert back["address.postCode"].to_list() == texts
    assert back.schema["label"] == pl.String


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_lists_and_structs_come_back_from_their_json_text_without_a_schema(
    frame: pl.DataFrame, tmp_path: Path, suffix: str
) -> None:
    back = read_export(export(frame, tmp_path / f"customers{suffix}"))
    for column in ("billingEmails", "linkedServices", "externalIds", "createdAt", "taxStatus"):
        assert back.schema[column] == frame.schema[column], column
        assert back[column].to_list() == frame[column].to_list(), column
    assert back["meta.score"].to_list() == [None, "3"]  # an unknown scalar stays text


def test_an_unknown_column_takes_the_dtype_the_schema_gives(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    back = read_export(export(frame, tmp_path / "customers.csv"), schema=frame.schema)
    assert back.schema["meta.score"] == pl.Int64 and back["meta.score"].to_list() == [None, 3]
    assert back["meta.tags"].to_list() == [None, ["a", "b"]]


def edited_csv(frame: pl.DataFrame, tmp_path: Path, column: str, value: str) -> Path:
    path = export(frame, tmp_path / "customers.csv")
    text = pl.read_csv(path, infer_schema=False)
    text.with_columns(
        pl.when(pl.col("id") == "b").then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    ).write_csv(tmp_path / "edited.csv")
    return tmp_path / "edited.csv"


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("billingEmails", "not json", "not a JSON list"),
        ("billingEmails", '"a@example.com"', "not a JSON list"),
        ("billingEmails", "[1]", "not a JSON list"),
        ("linkedServices", '[{"externalId": "9", "bogus": 1}]', "not a JSON list of objects"),
        ("meta.score", "three", "not a whole number"),
        ("externalIds", '{"key": "x"}', "not a JSON list of objects"),
    ],
)
def test_a_cell_the_export_could_not_have_written_refuses_the_file_naming_its_column(
    frame: pl.DataFrame, tmp_path: Path, column: str, value: str, expected: str
) -> None:
    path = edited_csv(frame, tmp_path, column, value)
    with pytest.raises(ReadBackError) as error:
        read_export(path, schema=frame.schema)
    message = str(error.value)
    assert message.startswith(f"column '{column}' of edited.csv, row 3 (customer b): ")
    assert expected in message and "read-only" in message


def test_columns_a_file_lacks_stay_missing(frame: pl.DataFrame, tmp_path: Path) -> None:
    frame.select("id", "label").write_csv(tmp_path / "few.csv")
    back = read_export(tmp_path / "few.csv", schema=frame.schema)
    assert back.columns == ["id", "label"]  # a push leaves the others as they are


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("c.json", b'{"id": "a"}', "must hold a JSON array of customer records"),
        ("c.json", b"[1, 2]", "must hold a JSON array of customer records"),
        ("c.json", b"{nope", "c.json is not JSON"),
        ("c.parquet", b"not parquet", "cannot read c.parquet as parquet"),
        ("c.xlsx", b"not a workbook", "cannot read c.xlsx as an Excel workbook"),
        ("c.csv", b"", "c.csv is empty"),
        ("c.csv", b"id;label\na;b\n", "separates its columns with ';'"),
        ("c.csv", "id,label\na,café\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_in_one_line(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ReadBackError) as error:
        read_export(tmp_path / name)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_export(tmp_path / "nothere.csv")


def test_a_csv_saved_with_a_byte_order_mark_reads(frame: pl.DataFrame, tmp_path: Path) -> None:
    path = export(frame, tmp_path / "customers.csv")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_export(tmp_path / "bom.csv").columns[0] == "id"


# -- API version 2024-07-30 ---------------------------------------------------------------


def frame_2024() -> pl.DataFrame:
    """2024-07-30 customers with a leading-zero postcode, both statuses, a state, and
    custom property values that look like JSON lists, numbers and booleans."""
    records = v2024.customers(6)
    records[1]["address"] = {**records[1]["address"], "postcode": "02169"}
    records[2]["customProperties"] = {"region": "[1, 2]", "tier": "TRUE", "seats": "007"}
    records[3]["customProperties"] = {"region": "[]", "tier": "1e5", "seats": "[3]"}
    return to_frame(records, api_version=V2024_07_30)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".xlsx"])
def test_a_2024_export_reads_back_in_its_versions_dtypes(tmp_path: Path, suffix: str) -> None:
    frame = frame_2024()
    assert isinstance(frame.schema["status"], pl.Enum)
    written = export(frame, tmp_path / f"customers{suffix}")
    back = read_export(written, api_version="2024-07-30")
    expected = frame
    if suffix == ".xlsx":  # Excel keeps no empty text: an empty cell is a null
        expected = frame.with_columns(pl.col(pl.String).replace("", None))
    assert_frame_equal(back, expected)
    assert back["address.postcode"][1] == "02169"
    assert back["customProperties.region"].to_list()[2:4] == ["[1, 2]", "[]"]
    assert back.schema["customProperties.seats"] == pl.String


@pytest.mark.parametrize("suffix", [".csv", ".json", ".xlsx"])
def test_the_version_comes_from_the_environment_when_not_given(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = export(frame_2024(), tmp_path / f"customers{suffix}")
    monkeypatch.setenv("SEQUENCE_API_VERSION", "2024-07-30")
    assert isinstance(read_export(written).schema["status"], pl.Enum)
    monkeypatch.delenv("SEQUENCE_API_VERSION")
    assert read_export(written).schema["status"] == pl.String  # not a seed column


def test_an_unknown_version_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    written = export(frame_2024(), tmp_path / "customers.csv")
    with pytest.raises(ValueError, match="this package speaks seed, 2024-07-30"):
        read_export(written, api_version="2023-01-01")


def contacts_2024() -> pl.DataFrame:
    records = [
        {**v2024.CUSTOMER, "id": "c1"},
        {
            "id": "c2",
            "contacts": [
                {"id": "k2", "name": "0044 Team", "email": "a@example.com",
                 "billingPreference": "PRIMARY", "createdAt": "2024-01-02T03:04:05Z",
                 "updatedAt": "2024-01-02T03:04:05.120Z"},
                {"id": "k3", "name": "[bold]", "email": "b@example.com",
                 "billingPreference": "STANDARD", "createdAt": "2024-01-02T03:04:05Z"},
            ],
        },
    ]  # fmt: skip
    return contacts_frame(records, api_version=V2024_07_30)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".xlsx"])
def test_a_contacts_export_reads_back_as_the_contacts_frame(tmp_path: Path, suffix: str) -> None:
    frame = contacts_2024()
    written = export(frame, tmp_path / f"contacts{suffix}")
    back = read_contacts_export(written, api_version="2024-07-30")
    assert_frame_equal(back, frame)
    assert back.schema == contacts_schema("2024-07-30")


def test_a_contacts_file_keeps_added_rows_and_a_preference_outside_the_list_as_text(
    tmp_path: Path,
) -> None:
    edited = contacts_2024().with_columns(pl.col("billingPreference").cast(pl.String))
    added = pl.DataFrame(
        {"customerId": ["c2"], "name": ["New"], "email": ["n@example.com"],
         "billingPreference": ["primary"]}
    )  # fmt: skip
    pl.concat([edited, added], how="diagonal").write_csv(tmp_path / "edited.csv")
    back = read_contacts_export(tmp_path / "edited.csv", api_version="2024-07-30")
    assert back["id"].to_list()[-1] is None  # a new contact: no id
    assert back["billingPreference"].to_list()[-1] == "primary"
    assert back.schema["billingPreference"] == pl.String  # the planner names the bad value


def test_a_contacts_file_without_its_key_columns_is_refused_naming_them(tmp_path: Path) -> None:
    contacts_2024().drop("customerId").write_csv(tmp_path / "contacts.csv")
    with pytest.raises(ReadBackError, match=r"contacts\.csv has no customerId column"):
        read_contacts_export(tmp_path / "contacts.csv", api_version="2024-07-30")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json", ".xlsx"])
def test_a_customers_file_given_as_contacts_is_refused(tmp_path: Path, suffix: str) -> None:
    export(frame_2024(), tmp_path / f"customers{suffix}")
    with pytest.raises(ReadBackError, match="it holds customers, not contacts"):
        read_contacts_export(tmp_path / f"customers{suffix}", api_version="2024-07-30")


def test_contacts_in_the_seeds_version_are_refused(tmp_path: Path) -> None:
    export(contacts_2024(), tmp_path / "contacts.csv")
    with pytest.raises(SequenceError, match="has no contacts"):
        read_contacts_export(tmp_path / "contacts.csv", api_version="seed")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json", ".parquet"])
def test_a_contacts_file_of_new_contacts_only_reads_with_empty_ids(
    tmp_path: Path, suffix: str
) -> None:
    added = pl.DataFrame(
        {"customerId": ["c2"], "id": [None], "name": ["New"], "email": ["n@example.com"],
         "billingPreference": ["PRIMARY"]},
        schema_overrides={"id": pl.Null},
    )  # fmt: skip
    back = read_contacts_export(export(added, tmp_path / f"new{suffix}"), api_version=V2024_07_30)
    assert back.schema["customerId"] == back.schema["name"] == pl.String
    assert back["id"].to_list() == [None] and back["email"].to_list() == ["n@example.com"]
    assert back.schema.get("id", pl.String) == pl.String
