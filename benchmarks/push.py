"""Push 300 updates to the sandbox at 50 ms latency under a 600/min limit.

Prints the achieved request rate as a share of the limit (target: at least 95%, and
zero 429 answers); the window between re-reading a record and writing it, as the
sandbox saw it (p50/p90; target p90 <= 150 ms: a remote edit landing in that window
is overwritten, as the API has no If-Match); then the time a one-at-a-time loop takes
on the same set-up, and the ratio. Each pushed row costs two requests: a re-read for
the conflict check and the PUT. Takes about two minutes.

Run: .venv/bin/python benchmarks/push.py [--rows 300] [--limit 600] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from sequence_nb.frames import to_frame
from sequence_nb.models import update_body_of
from sequence_nb.plan import plan_updates
from sequence_nb.sandbox import Sandbox, start


def clean_frame(server: Sandbox, rows: int) -> pl.DataFrame:
    """The first ``rows`` customers without planted problems."""
    dirty = {problem.id for problem in server.planted}
    return to_frame([r for r in server.records() if r["id"] not in dirty][:rows])


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    options = {"rate_limit_per_minute": args.limit, "latency": args.latency}
    with start(customers=args.rows * 2, seed=0, **options) as server:
        original = clean_frame(server, args.rows)
        assert original.height == args.rows, "not enough clean customers"
        plan = plan_updates(original, original.with_columns(pl.lit("pushed").alias("label")))
        server.reset_stats()
        with (
            tempfile.TemporaryDirectory() as folder,
            server.client(rate_limit_per_minute=args.limit) as client,
        ):
            started = time.perf_counter()
            result = plan.apply(
                client,
                journal=Path(folder) / "j.sqlite3",
                progress=False,
                max_workers=args.workers,
            )
            elapsed = time.perf_counter() - started
        stats = server.stats
        requests = stats.total_requests
        rate = requests / elapsed * 60
        print(f"push: {result.summary()} in {elapsed:.1f} s")
        print(
            f"  {requests} requests = {rate:.0f}/min = {rate / args.limit:.1%} of the "
            f"{args.limit}/min limit (target >= 95%); 429 answers: {stats.rate_limited}"
        )
        windows = sorted(stats.write_windows)
        print(
            f"  re-read -> write window over {len(windows)} writes: "
            f"p50 {_quantile(windows, 0.5) * 1000:.0f} ms, p90 {_quantile(windows, 0.9) * 1000:.0f}"
            f" ms, max {windows[-1] * 1000:.0f} ms (target p90 <= 150 ms)"
        )

        server.reset_stats()
        with server.client(rate_limit_per_minute=args.limit) as client:
            started = time.perf_counter()
            for row in plan.rows:
                fresh = client.get_customer(row.id)
                client.update_customer(row.id, dict(update_body_of(fresh), label="looped"))
            loop = time.perf_counter() - started
        print(
            f"one-at-a-time loop (get + put per row): {loop:.1f} s, "
            f"{server.stats.total_requests / loop * 60:.0f}/min; "
            f"429 answers: {server.stats.rate_limited}"
        )
        print(f"ratio loop / push: {loop / elapsed:.2f}x")


if __name__ == "__main__":
    main()
