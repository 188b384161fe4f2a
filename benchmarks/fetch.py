"""Fetch 10,000 customers from the sandbox in one stream and in two, at 50, 100 and 200 ms a page.

For each latency it prints the time of ``fetch_customers(client, streams=1)`` (one
newest-first stream, a page at a time) and of ``fetch_customers(client)`` (read from
both ends at once), the ratio one / two (target: >= 1.7x at 100 ms), and each time as a
multiple of the floor the API limit sets: 1,500 requests a minute, so 10,000 customers
in pages of 100 cannot take less than 100 / 25 = 4.0 s. The client paces itself just under
that limit and the sandbox enforces it (a 429 would show in the counts). Both frames are
checked to be equal row for row.

``--api-version`` picks the sandbox's version: the seed's (default), 2024-07-30, or
both in turn. For 2024-07-30 it then measures a fetch with contacts, at one latency
(``--contacts-latency``, 100 ms): ``fetch_customers`` of every customer, then
``fetch_contacts`` (one ``GET /customers/{id}`` per customer, ``--max-workers``
threads under the same client's rate limit). At 1,500 requests a minute the contacts
of 10,000 customers cannot take less than 400 s, so by default it reads the contacts
of a subset, the newest 1,000 customers (floor 40 s), and prints the time for all
10,000 as an extrapolation, labeled so (the contacts phase is paced by the limit, so
its time grows with the count); ``--contacts-customers 10000`` measures them all.
The contacts frame is checked against the sandbox's records (one row per contact).

Takes about a minute for the seed; 2024-07-30 adds as long again and the contacts
run (about 45 s for 1,000 customers, 7 minutes for 10,000).

Run: .venv/bin/python benchmarks/fetch.py [--customers 10000] [--latencies 0.05 0.1 0.2]
     [--limit 1500] [--repeat 1] [--api-version seed|2024-07-30|both]
     [--contacts-customers 1000] [--contacts-latency 0.1] [--max-workers 8]
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from sequence_nb import fields
from sequence_nb.contacts import CUSTOMER_ID, fetch_contacts
from sequence_nb.frames import fetch_customers
from sequence_nb.sandbox import Sandbox, start


def timed_fetch(server: Sandbox, limit: int, streams: int) -> tuple[float, pl.DataFrame, int, int]:
    """Seconds, the frame, the requests the sandbox saw and its 429 answers, for one fetch."""
    server.reset_stats()
    with server.client(rate_limit_per_minute=limit) as client:
        started = time.perf_counter()
        frame = fetch_customers(client, progress=False, streams=streams, includeArchived=True)
        elapsed = time.perf_counter() - started
    stats = server.stats
    return elapsed, frame, stats.total_requests, stats.rate_limited


def best_fetch(
    server: Sandbox, limit: int, streams: int, repeat: int
) -> tuple[float, pl.DataFrame, int, int]:
    """The quickest of ``repeat`` fetches."""
    runs = [timed_fetch(server, limit, streams) for _ in range(repeat)]
    return min(runs, key=lambda run: run[0])


def streams_table(server: Sandbox, args: argparse.Namespace, floor: float) -> None:
    """One stream against two at each latency: the table of times and ratios."""
    print(
        f"{'latency':>8} {'one stream':>11} {'x floor':>8} {'two streams':>12} {'x floor':>8}"
        f" {'one / two':>10} {'requests':>9} {'429s':>5}"
    )
    for latency in args.latencies:
        server.set_faults(latency=latency)
        one, one_frame, one_requests, one_limited = best_fetch(server, args.limit, 1, args.repeat)
        two, two_frame, two_requests, two_limited = best_fetch(server, args.limit, 2, args.repeat)
        assert one_frame.equals(two_frame), "two streams gave another frame than one"
        assert one_frame.height == args.customers
        print(
            f"{latency * 1000:>6.0f} ms {one:>9.2f} s {one / floor:>7.2f}x {two:>10.2f} s "
            f"{two / floor:>7.2f}x {one / two:>9.2f}x {one_requests:>4}/{two_requests:<4}"
            f" {one_limited + two_limited:>5}"
        )


def with_contacts(server: Sandbox, args: argparse.Namespace, floor: float) -> None:
    """``fetch_customers`` then ``fetch_contacts`` of (some of) them, against the floors."""
    count = min(args.contacts_customers, args.customers)
    per_second = args.limit / 60
    server.set_faults(latency=args.contacts_latency)
    server.reset_stats()
    with server.client(rate_limit_per_minute=args.limit) as client:
        started = time.perf_counter()
        frame = fetch_customers(client, progress=False, includeArchived=True)
        listed = time.perf_counter() - started
        ids = frame.get_column("id").to_list()[:count]
        started = time.perf_counter()
        contacts = fetch_contacts(client, ids, progress=False, max_workers=args.max_workers)
        read = time.perf_counter() - started
    stats = server.stats
    expected = sum(len(server.get_record(i).get("contacts") or []) for i in ids)
    assert contacts.height == expected, f"{contacts.height} contact rows, {expected} expected"
    assert set(contacts.get_column(CUSTOMER_ID).to_list()) <= set(ids)
    subset = count < args.customers
    which = f"a SUBSET: the newest {count:,}" if subset else f"all {count:,}"
    contacts_floor = count / per_second
    print(
        f"\nwith contacts, {args.contacts_latency * 1000:.0f} ms a request, "
        f"{args.max_workers} threads; contacts of {which} customers:"
    )
    print(
        f"  {f'fetch_customers ({args.customers:,})':30} {listed:8.2f} s  floor {floor:7.2f} s"
        f"  {listed / floor:5.2f}x"
    )
    print(
        f"  {f'fetch_contacts ({count:,})':30} {read:8.2f} s  floor {contacts_floor:7.2f} s"
        f"  {read / contacts_floor:5.2f}x  ({contacts.height:,} contacts; "
        f"{stats.total_requests:,} requests, {stats.rate_limited} answered 429)"
    )
    total_floor = floor + args.customers / per_second
    if subset:
        scaled = read * args.customers / count
        print(
            f"  EXTRAPOLATED, not measured: fetch_contacts of all {args.customers:,} "
            f"~ {scaled:.0f} s (the {count:,} measured x {args.customers / count:g}); "
            f"floor {args.customers / per_second:.0f} s"
        )
        print(
            f"  EXTRAPOLATED total with contacts ~ {listed + scaled:.0f} s "
            f"(floor {total_floor:.0f} s, {(listed + scaled) / total_floor:.2f}x)"
        )
    else:
        total = listed + read
        print(
            f"  {'total with contacts (measured)':30} {total:8.2f} s  floor {total_floor:7.2f} s"
            f"  {total / total_floor:5.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--api-version",
        choices=[*fields.API_VERSIONS, "both"],
        default=fields.SEED.name,
        help="the sandbox's API version, or both (the seed's, then 2024-07-30's)",
    )
    parser.add_argument(
        "--contacts-customers",
        type=int,
        default=1000,
        help="2024-07-30: read the contacts of this many customers (the newest)",
    )
    parser.add_argument("--contacts-latency", type=float, default=0.1)
    parser.add_argument("--max-workers", type=int, default=8, help="fetch_contacts threads")
    args = parser.parse_args()
    if min(args.customers, args.contacts_customers, args.max_workers, args.limit) < 1:
        parser.error("--customers, --contacts-customers, --max-workers and --limit must be >= 1")
    pages = -(-args.customers // 100)
    floor = pages / (args.limit / 60)
    names = list(fields.API_VERSIONS) if args.api_version == "both" else [args.api_version]
    for name in names:
        version = fields.api_version(name)
        print(
            f"\n=== API version {version.name}: {args.customers} customers, pages of 100 "
            f"({pages} requests); API limit {args.limit}/min: floor {floor:.2f} s"
        )
        with start(
            customers=args.customers,
            seed=0,
            rate_limit_per_minute=args.limit,
            api_version=version.name,
        ) as server:
            streams_table(server, args, floor)
            if version.contacts_field is not None:
                with_contacts(server, args, floor)


if __name__ == "__main__":
    main()
