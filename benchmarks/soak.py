"""Soak: push 5,000 updates to a faulty sandbox and check that nothing is lost or doubled.

The sandbox runs in this process (so its write counters can be read); the push runs
in a child process, so the memory printed is the pushing process's own. Prints the
throughput, the p50 and p99 time per row, the child's memory at start and end, and
the count of lost and duplicated writes (both must be 0).

Run: .venv/bin/python benchmarks/soak.py [--rows 5000] [--error-rate 0.1] ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import polars as pl

from sequence_nb.frames import to_frame
from sequence_nb.plan import plan_updates
from sequence_nb.sandbox import start

PUSHER = textwrap.dedent(
    """
    import json, resource, sys, time
    from sequence_nb import SequenceClient
    from sequence_nb.plan import ChangePlan

    def rss_mb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

    plan = ChangePlan.load(sys.argv[1])
    start_rss = rss_mb()
    options = dict(max_retries=12, retry_initial_delay=0.05, retry_max_delay=1.0)
    with SequenceClient(rate_limit_per_minute=None, **options) as client:
        started = time.perf_counter()
        result = plan.apply(client, journal=sys.argv[2], max_workers=8, progress=False)
        elapsed = time.perf_counter() - started
    seconds = sorted(row.seconds for row in result.rows)
    print(json.dumps({
        "elapsed": elapsed,
        "counts": result.counts(),
        "p50": seconds[len(seconds) // 2],
        "p99": seconds[int(len(seconds) * 0.99)],
        "rss_start": start_rss,
        "rss_end": rss_mb(),
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--error-rate", type=float, default=0.10)
    parser.add_argument("--rate-limit-rate", type=float, default=0.01)
    parser.add_argument("--lost-answer-rate", type=float, default=0.05)
    parser.add_argument("--drop-rate", type=float, default=0.02)
    args = parser.parse_args()
    customers = int(args.rows * 1.2) + 50
    with start(customers=customers, seed=3) as server, tempfile.TemporaryDirectory() as folder:
        dirty = {problem.id for problem in server.planted}
        clean = [r for r in server.records() if r["id"] not in dirty][: args.rows]
        original = to_frame(clean)
        plan = plan_updates(original, original.with_columns(pl.lit("soaked").alias("label")))
        assert len(plan) == args.rows, plan.summary()
        plan_file = plan.save(Path(folder) / "plan.json")
        server.set_faults(
            error_rate=args.error_rate,
            rate_limit_rate=args.rate_limit_rate,
            lost_answer_rate=args.lost_answer_rate,
            drop_rate=args.drop_rate,
        )
        server.reset_stats()
        env = dict(os.environ, **server.environ())
        child = subprocess.run(
            [sys.executable, "-c", PUSHER, str(plan_file), str(Path(folder) / "journal.sqlite3")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(child.stdout)
        stats = server.stats
        applied = stats.writes_applied
        lost = sum(
            1
            for row in plan.rows
            if applied[row.id] == 0 or server.get_record(row.id).get("label") != "soaked"
        )
        duplicated = sum(1 for row in plan.rows if applied[row.id] > 1)
    rows = args.rows
    print(
        f"soak: {rows} updates, faults {dict(stats.faults)} ({sum(stats.faults.values())} in all)"
    )
    print(f"  result: {report['counts']} in {report['elapsed']:.1f} s")
    print(f"  throughput: {rows / report['elapsed']:.0f} rows/s; replays {stats.replays}")
    print(f"  time per row: p50 {report['p50'] * 1000:.0f} ms, p99 {report['p99'] * 1000:.0f} ms")
    print(
        f"  pusher memory: start {report['rss_start']:.0f} MB, end {report['rss_end']:.0f} MB, "
        f"peak {report['rss_peak']:.0f} MB"
    )
    print(f"  lost: {lost}, duplicated: {duplicated}")


if __name__ == "__main__":
    main()
