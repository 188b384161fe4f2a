"""Plan 100k customers with 1% edited; prints the time (target: at most 0.3 s).

Run: .venv/bin/python benchmarks/plan.py [--rows 100000] [--edited 0.01]
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from sequence_nb.frames import to_frame
from sequence_nb.plan import plan_updates
from sequence_nb.sandbox.data import generate_customers


def edited_copy(frame: pl.DataFrame, share: float) -> pl.DataFrame:
    """``frame`` with ``share`` of its rows edited: a new label and a tidied town."""
    every = max(1, round(1 / share))
    chosen = pl.int_range(pl.len()) % every == 0
    return frame.with_columns(
        pl.when(chosen).then(pl.lit("reviewed")).otherwise(pl.col("label")).alias("label"),
        pl.when(chosen)
        .then(pl.col("address.town").str.to_uppercase())
        .otherwise(pl.col("address.town"))
        .alias("address.town"),
    )


def best_of(runs: int, action: object) -> float:
    assert callable(action)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--edited", type=float, default=0.01)
    args = parser.parse_args()
    records, _ = generate_customers(args.rows, seed=0)
    original = to_frame(records)
    edited = edited_copy(original, args.edited)
    shuffled = edited.sample(fraction=1.0, shuffle=True, seed=1)
    plan = plan_updates(original, edited)
    same_order = best_of(5, lambda: plan_updates(original, edited))
    any_order = best_of(5, lambda: plan_updates(original, shuffled))
    print(f"rows: {original.height:,}, edited: {plan.summary()}")
    print(f"plan_updates, rows in the same order: {same_order:.3f} s (target <= 0.3 s)")
    print(f"plan_updates, edited rows shuffled:   {any_order:.3f} s")


if __name__ == "__main__":
    main()
