"""Benchmark records <-> frames on 100k customers (a script, not a test).

Run: ``.venv/bin/python benchmarks/frames.py [--rows 100000] [--page-size 100]``.

Prints, in one run: raw page bodies -> frame (``frame_from_pages``) against
``json.loads`` + ``pandas.json_normalize`` (target at least 5x faster), parsed
records -> frame (``to_frame``) against ``pandas.json_normalize`` (target 3x),
``to_records``, the frame's memory (``estimated_size`` and RSS growth, target at
most 100 MB) and ``quality.check`` when that module is there. Timings are the
best of ``--runs`` (10); each comparison runs ours and the peer in turn, so both
meet the same passing load, and also prints the median ratio of those pairs.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sequence_nb import fields
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


def customers(n: int) -> tuple[list[dict[str, Any]], str]:
    """The sandbox's generator when it exists, else this script's own."""
    try:
        from sequence_nb.sandbox.data import generate_customers
    except ImportError:
        return own_customers(n), "benchmarks/frames.py generator"
    records, _planted = generate_customers(n, 0)
    return records, "sequence_nb.sandbox.data.generate_customers"


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
    args = parser.parse_args()

    records, source = customers(args.rows)
    size = args.page_size
    pages = [
        orjson.dumps(
            {
                "items": records[i : i + size],
                "pagination": {"after": f"cursor-{i}", "totalResultSize": len(records)},
            }
        )
        for i in range(0, len(records), size)
    ]
    megabytes = sum(map(len, pages)) / 1e6
    print(f"polars {pl.__version__}, pandas {pd.__version__}; records from {source}")
    print(f"{len(records):,} records in {len(pages):,} pages of {size} ({megabytes:.1f} MB JSON)")

    def pandas_from_pages() -> pd.DataFrame:
        items: list[dict[str, Any]] = []
        for page in pages:
            items.extend(json.loads(page)["items"])
        return pd.json_normalize(items)

    # Memory first, in a quiet process: the frame built from the pages, after a
    # tiny warm-up read so that starting the readers' thread pools is not counted.
    frame_from_pages(pages[:1])
    gc.collect()
    rss_before, _ = rss_mb()
    frame = frame_from_pages(pages)
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
    pdf = pandas_from_pages()
    gc.collect()
    rss_after, _ = rss_mb()
    deep = pdf.memory_usage(deep=True).sum() / 2**20
    print(
        f"for scale, pandas: memory_usage(deep) {deep:.1f} MB; "
        f"RSS growth {rss_after - rss_before:.1f} MB"
    )
    del pdf

    runs = args.runs
    print(f"\ntimings, best of {runs}; each comparison runs the two in turn:")
    t_pages, t_pd_pages, median, frame = head_to_head(
        runs, lambda: frame_from_pages(pages), pandas_from_pages
    )
    print(f"  frame_from_pages(pages)                  {t_pages:7.3f} s")
    print(f"  json.loads + pandas.json_normalize       {t_pd_pages:7.3f} s")
    ratio = t_pd_pages / t_pages
    verdict = "OK" if ratio >= 5 else "MISSED"
    print(f"  -> {ratio:.1f}x faster (median pair {median:.1f}x)  [target >= 5x] {verdict}")

    t_frame, t_pd, median, frame2 = head_to_head(
        runs, lambda: to_frame(records), lambda: pd.json_normalize(records)
    )
    print(f"  to_frame(records)                        {t_frame:7.3f} s")
    print(f"  pandas.json_normalize(records)           {t_pd:7.3f} s")
    ratio = t_pd / t_frame
    verdict = "OK" if ratio >= 3 else "MISSED"
    print(f"  -> {ratio:.1f}x faster (median pair {median:.1f}x)  [target >= 3x] {verdict}")
    columns = len(pd.json_normalize(records[:1000]).columns)
    print(f"  frames agree: {frame.equals(frame2)}; pandas columns (first 1,000) {columns}")

    t_records, back = best_of(runs, lambda: to_records(frame))
    print(f"  to_records(frame)                        {t_records:7.3f} s ({len(back):,} records)")

    try:
        from sequence_nb.quality import check
    except ImportError as exc:
        print(f"  quality.check: skipped ({exc})")
    else:
        t_check, issues = best_of(runs, lambda: check(frame))
        found = f"{issues.height:,} issues"
        print(f"  quality.check(frame)                     {t_check:7.3f} s ({found})")


if __name__ == "__main__":
    main()
