"""Benchmark records <-> frames on 100k customers (a script, not a test).

Run: ``.venv/bin/python benchmarks/frames.py [--rows 100000] [--page-size 100]
[--api-version seed|2024-07-30|both] [--organizations 0.05]``.

``--api-version`` picks the records' version (default the seed's); ``both`` runs
the seed's, then 2024-07-30's, each in a process of its own so that each memory
figure starts quiet. For the version it prints, in one run: raw page bodies ->
frame (``frame_from_pages``) against ``json.loads`` + ``pandas.json_normalize``
(target at least 5x faster), parsed records -> frame (``to_frame``) against
``pandas.json_normalize`` (target 3x), ``to_records`` and whether it gives back
exactly the records read, the frame's memory (``estimated_size`` and RSS growth,
target at most 100 MB) and ``quality.check`` when that module is there. Timings
are the best of ``--runs`` (10); each comparison runs ours and the peer in turn,
so both meet the same passing load, and also prints the median ratio of those
pairs. It also says which reader read the pages: Arrow's fast path, or the
lenient fallback (seconds, not a fraction of one, for 100k records).

2024-07-30 records are the sandbox's (``generate_dataset(..., api_version=...)``:
custom properties of up to five keys, absent or empty on some customers,
``integrationIds``, US and Canadian states) as a list page carries them, so without
``contacts``. The sandbox models no organizations; this script puts a share
(``--organizations``) of the customers into organizations of two to five, each
member's ``organizations`` holding ``{id, owner {id, name}, members [{id, name}]}``
as the published document has it. Two probes then time ``frame_from_pages`` on the
same records with organizations only in the second half of the listing, and with
``integrationIds`` empty in the first fifth: the first blocks Arrow reads hold only
empty lists for the field.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pandas as pd
import polars as pl
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sequence_nb import fields
from sequence_nb.arrow_reader import Lines, read_pages
from sequence_nb.fields import ApiVersion
from sequence_nb.frames import frame_from_pages, to_frame, to_records

T = TypeVar("T")

_FIRST = ["Ana", "Bo", "Chen", "Dara", "Élodie", "Fatima", "Gus", "Hiro", "Ivan", "محمد", "Zoë"]
_LAST = ["Smith", "Nguyen", "Müller", "O'Brien", "García", "Kowalski", "Tanaka", "Okafor"]
_TOWNS = [("London", "GB"), ("Leeds", "GB"), ("Berlin", "DE"), ("Paris", "FR"), ("Dublin", "IE")]
_SERVICES = ["Xero", "Stripe", "HubSpot", "Salesforce"]


def own_customers(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Records of the seed page's shape (used when the sandbox generator is absent)."""
    rng = random.Random(seed)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    account = str(uuid.UUID(int=rng.getrandbits(128)))
    out: list[dict[str, Any]] = []
    for _ in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = f"{last.lower().replace(chr(39), '')}.example.com"
        town, country = rng.choice(_TOWNS)
        created = start + timedelta(seconds=rng.randrange(10**8))
        record: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "createdAt": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sequenceAccountId": account,
            "legalName": f"{last} {rng.choice(['Trading', 'Labs', 'Partners'])} Ltd",
            "email": f"{first.lower()}@{domain}",
            "address": {
                "line1": f"{rng.randrange(1, 300)} High Street",
                "town": town,
                "postCode": f"AB{rng.randrange(1, 99)} {rng.randrange(1, 9)}EF",
                "country": country,
            },
            "taxStatus": rng.choice(fields.TAX_STATUSES),
            "billingEmails": [f"billing@{domain}"] * rng.randrange(0, 3),
            "linkedServices": [
                {
                    "externalId": str(rng.randrange(10**6)),
                    "externalService": rng.choice(_SERVICES),
                    "syncTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                for _ in range(rng.randrange(0, 3))
            ],
        }
        if rng.random() < 0.5:
            record["address"]["line2"] = f"Unit {rng.randrange(1, 50)}"
        for name, value, share in [
            ("billingEmail", f"invoices@{domain}", 0.7),
            ("contactName", f"{first} {last}", 0.8),
            ("label", "enterprise", 0.4),
            ("paymentReference", f"REF-{rng.randrange(10**6)}", 0.4),
            ("telephone", f"020{rng.randrange(10**7, 10**8)}", 0.6),
            ("url", f"https://{domain}/", 0.6),
        ]:
            if rng.random() < share:
                record[name] = value
        out.append(record)
    return out


def customers(
    n: int, version: ApiVersion, organizations: float
) -> tuple[list[dict[str, Any]], str]:
    """The sandbox's generator when it exists, else this script's own (seed only)."""
    try:
        from sequence_nb.sandbox.data import generate_dataset
    except ImportError:
        if version is not fields.SEED:
            raise SystemExit(f"{version.name} records need sequence_nb.sandbox") from None
        return own_customers(n), "benchmarks/frames.py generator"
    records = generate_dataset(n, 0, version).records
    source = f"sequence_nb.sandbox.data.generate_dataset(api_version={version.name!r})"
    if version is fields.SEED:
        return records, source
    listed = [{k: v for k, v in r.items() if k not in version.listing_omits} for r in records]
    placed = in_organizations(listed, organizations)
    omitted = ", ".join(version.listing_omits)
    return listed, f"{source}, as list pages (no {omitted}); {placed:,} in organizations"


def in_organizations(records: list[dict[str, Any]], share: float, seed: int = 0) -> int:
    """Put ``share`` of the records into organizations of 2 to 5; how many were put.

    Each member's ``organizations`` holds the organization as 2024-07-30's
    ``CustomerOrganization``: its id, its owner and its other members, by id and name.
    """
    rng = random.Random(seed)
    chosen = rng.sample(range(len(records)), int(len(records) * share))
    placed = 0
    while len(chosen) - placed >= 2:
        size = min(rng.randrange(2, 6), len(chosen) - placed)
        group = [records[i] for i in chosen[placed : placed + size]]
        placed += size
        owner, *members = ({"id": r["id"], "name": r["legalName"]} for r in group)
        organization = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "owner": owner,
            "members": members,
        }
        for record in group:
            record["organizations"] = [organization]
    return placed


def as_pages(records: list[dict[str, Any]], size: int) -> list[bytes]:
    """The records as ``GET /customers`` page bodies of ``size`` items."""
    return [
        orjson.dumps(
            {
                "items": records[i : i + size],
                "pagination": {"after": f"cursor-{i}", "totalResultSize": len(records)},
            }
        )
        for i in range(0, len(records), size)
    ]


def reader_of(pages: list[bytes], version: ApiVersion) -> str:
    """Which reader ``frame_from_pages`` takes for ``pages``: Arrow's, else the lenient one."""
    try:
        read_pages(Lines.of(pages), version)
    except pa.ArrowException as exc:
        return f"lenient fallback ({type(exc).__name__}: {str(exc)[:90]})"
    return "Arrow fast path"


def best_of(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Best wall time of ``runs`` calls, and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def head_to_head(
    runs: int, ours: Callable[[], T], peer: Callable[[], Any]
) -> tuple[float, float, float, T]:
    """Best times of ``ours`` and ``peer`` run turn about, the median ratio, ours' result.

    Taking turns puts both under the same passing load on a shared machine, and
    the ratio of each pair shows how steady the comparison is.
    """
    mine: list[float] = []
    theirs: list[float] = []
    result: Any = None
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = ours()
        mine.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        peer()
        theirs.append(time.perf_counter() - start)
    ratios = sorted(b / a for a, b in zip(mine, theirs, strict=True))
    return min(mine), min(theirs), ratios[len(ratios) // 2], result


def pandas_from_pages(pages: list[bytes]) -> pd.DataFrame:
    """The peer's read of the pages: ``json.loads`` each, then ``pandas.json_normalize``."""
    items: list[dict[str, Any]] = []
    for page in pages:
        items.extend(json.loads(page)["items"])
    return pd.json_normalize(items)


def reset_peak() -> None:
    """Start the peak resident memory afresh from the current (Linux; else left as is)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mb() -> tuple[float, float]:
    """Current and peak resident memory of this process, in MB (Linux)."""
    status = Path("/proc/self/status").read_text()
    values = {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each (best counts)")
    parser.add_argument(
        "--api-version",
        choices=[*fields.API_VERSIONS, "both"],
        default=fields.SEED.name,
        help="the records' API version, or both (the seed's, then 2024-07-30's)",
    )
    parser.add_argument(
        "--organizations",
        type=float,
        default=0.05,
        help="share of 2024-07-30 customers put into organizations (0 to 1)",
    )
    args = parser.parse_args()
    if not 0 <= args.organizations <= 1:
        parser.error("--organizations is a share from 0 to 1")
    if min(args.rows, args.page_size, args.runs) < 1:
        parser.error("--rows, --page-size and --runs must be at least 1")
    if args.api_version == "both":
        # A process of its own for each version, so each memory figure starts quiet.
        for name in fields.API_VERSIONS:
            options = ["--rows", str(args.rows), "--page-size", str(args.page_size)]
            options += ["--runs", str(args.runs), "--organizations", str(args.organizations)]
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, *options, "--api-version", name], check=True)
        return
    print(f"polars {pl.__version__}, pandas {pd.__version__}, pyarrow {pa.__version__}")
    bench(fields.api_version(args.api_version), args)


def bench(version: ApiVersion, args: argparse.Namespace) -> None:
    """Every figure for one API version's records."""
    records, source = customers(args.rows, version, args.organizations)
    pages = as_pages(records, args.page_size)
    megabytes = sum(map(len, pages)) / 1e6
    print(f"\n=== API version {version.name}; records from {source}")
    print(
        f"{len(records):,} records in {len(pages):,} pages of {args.page_size} "
        f"({megabytes:.1f} MB JSON); pages read by: {reader_of(pages, version)}"
    )
    measure_memory(pages, version)
    frame = compare_speed(records, pages, version, args.runs)
    t_records, back = best_of(args.runs, lambda: to_records(frame, api_version=version))
    differ = sum(a != b for a, b in zip(back, records, strict=True))
    print(
        f"  to_records(frame)                        {t_records:7.3f} s ({len(back):,} records, "
        f"{'all equal to those read' if not differ else f'{differ:,} DIFFER from those read'})"
    )
    try:
        from sequence_nb.quality import check
    except ImportError as exc:
        print(f"  quality.check: skipped ({exc})")
    else:
        t_check, issues = best_of(args.runs, lambda: check(frame, api_version=version))
        found = f"{issues.height:,} issues"
        print(f"  quality.check(frame)                     {t_check:7.3f} s ({found})")
    if "organizations" in version.list_fields:
        probe_fast_path(records, version, args.page_size)


def measure_memory(pages: list[bytes], version: ApiVersion) -> None:
    """The frame's memory, and pandas' for scale, each read in a quiet process."""

    # A tiny warm-up read first, so that starting the readers' thread pools is not counted.
    frame_from_pages(pages[:1], api_version=version)
    gc.collect()
    reset_peak()
    rss_before, _ = rss_mb()
    frame = frame_from_pages(pages, api_version=version)
    gc.collect()
    rss_after, peak = rss_mb()
    print(
        f"\nframe: {frame.height:,} rows x {frame.width} columns; "
        f"estimated_size {frame.estimated_size('mb'):.1f} MB; "
        f"RSS growth {rss_after - rss_before:.1f} MB (peak while building "
        f"{peak - rss_before:.1f} MB above the start)  [target <= 100 MB]"
    )
    del frame
    gc.collect()
    rss_before, _ = rss_mb()
    pdf = pandas_from_pages(pages)
    gc.collect()
    rss_after, _ = rss_mb()
    deep = pdf.memory_usage(deep=True).sum() / 2**20
    print(
        f"for scale, pandas: memory_usage(deep) {deep:.1f} MB; "
        f"RSS growth {rss_after - rss_before:.1f} MB"
    )


def compare_speed(
    records: list[dict[str, Any]], pages: list[bytes], version: ApiVersion, runs: int
) -> pl.DataFrame:
    """Ours against pandas, from pages and from records; the frame read from the pages."""

    print(f"\ntimings, best of {runs}; each comparison runs the two in turn:")
    t_pages, t_pd_pages, median, frame = head_to_head(
        runs,
        lambda: frame_from_pages(pages, api_version=version),
        lambda: pandas_from_pages(pages),
    )
    print(f"  frame_from_pages(pages)                  {t_pages:7.3f} s")
    print(f"  json.loads + pandas.json_normalize       {t_pd_pages:7.3f} s")
    ratio = t_pd_pages / t_pages
    verdict = "OK" if ratio >= 5 else "MISSED"
    print(f"  -> {ratio:.1f}x faster (median pair {median:.1f}x)  [target >= 5x] {verdict}")

    t_frame, t_pd, median, frame2 = head_to_head(
        runs, lambda: to_frame(records, api_version=version), lambda: pd.json_normalize(records)
    )
    print(f"  to_frame(records)                        {t_frame:7.3f} s")
    print(f"  pandas.json_normalize(records)           {t_pd:7.3f} s")
    ratio = t_pd / t_frame
    verdict = "OK" if ratio >= 3 else "MISSED"
    print(f"  -> {ratio:.1f}x faster (median pair {median:.1f}x)  [target >= 3x] {verdict}")
    columns = len(pd.json_normalize(records[:1000]).columns)
    print(
        f"  frames agree: {frame.equals(frame2)}; {frame.width} columns; "
        f"pandas columns (first 1,000) {columns}"
    )
    return frame


def probe_fast_path(records: list[dict[str, Any]], version: ApiVersion, size: int) -> None:
    """``frame_from_pages`` when the first pages hold only empty lists for a known list
    field whose entry type Arrow infers (``organizations``, ``integrationIds``)."""
    half, fifth = len(records) // 2, len(records) // 5
    variants = {
        "organizations only in the second half": [
            r if i >= half else {**r, "organizations": []} for i, r in enumerate(records)
        ],
        "integrationIds empty in the first fifth": [
            r if i >= fifth else {**r, "integrationIds": []} for i, r in enumerate(records)
        ],
    }
    pages = as_pages(records, size)
    base, _ = best_of(3, lambda: frame_from_pages(pages, api_version=version))
    print(f"\nfast-path probes, frame_from_pages best of 3 (the records above: {base:.3f} s):")
    for label, variant in variants.items():
        pages = as_pages(variant, size)
        took, _ = best_of(3, functools.partial(frame_from_pages, pages, api_version=version))
        print(f"  {label:40} {took:7.3f} s ({took / base:4.1f}x)  {reader_of(pages, version)}")


if __name__ == "__main__":
    main()
