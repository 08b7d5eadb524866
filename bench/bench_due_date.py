"""Benchmark due-date computations per second: shared.workcalendar against a naive baseline.

Run from the repository root:

    uv run python bench/bench_due_date.py            # 200,000 instants, all engines
    uv run python bench/bench_due_date.py -n 50000 --baseline-n 20000 --seed 7

The instants are uniform over 2025-2026 in random UTC offsets (-12:00..+14:00), seeded.
The baseline is the naive oracle of tests/unit/test_workcalendar_properties.py: local date
by a fixed +08:00 offset, then a day-by-day walk asking ``holidays`` (built once, for
2024-2028) whether each day is a working day. Both engines get the same instants, in
interleaved rounds (the machine is shared, so both see the same load); their results are
compared on the baseline's share, and any mismatch aborts the run.
"""

from __future__ import annotations

import argparse
import random
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone

import holidays

from shared.workcalendar import WorkingDayCalendar

OFFSET = timezone(timedelta(hours=8))
START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2027, 1, 1, tzinfo=UTC) - START).total_seconds())


def make_instants(count: int, seed: int) -> list[datetime]:
    """Return ``count`` aware instants in 2025-2026 (UTC) expressed in random offsets."""
    rng = random.Random(seed)
    zones = [timezone(timedelta(minutes=m)) for m in range(-12 * 60, 14 * 60 + 1, 15)]
    return [
        (START + timedelta(seconds=rng.randrange(SPAN_SECONDS))).astimezone(rng.choice(zones))
        for _ in range(count)
    ]


def make_baseline() -> Callable[[datetime], tuple[date, datetime]]:
    """Build the naive oracle and return its due-date function (5 working days)."""
    package = holidays.country_holidays("CN", years=range(2024, 2029))

    def naive_due(instant: datetime, n: int = 5) -> tuple[date, datetime]:
        day = instant.astimezone(OFFSET).date()
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if package.is_working_day(day):
                counted += 1
        return day, datetime.combine(day + timedelta(days=1), time(0), tzinfo=OFFSET)

    return naive_due


def rate(count: int, seconds: float) -> float:
    """Return operations per second."""
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="instants for the library")
    parser.add_argument(
        "--baseline-n", type=int, default=None, help="instants for the baseline (default: -n)"
    )
    parser.add_argument("--seed", type=int, default=20260930)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    args = parser.parse_args()
    baseline_n = args.n if args.baseline_n is None else min(args.baseline_n, args.n)

    instants = make_instants(args.n, args.seed)

    setup_started = clock.perf_counter()
    calendar = WorkingDayCalendar()
    calendar.deadline(instants[0])  # loads the working days of the years around 2025-2026
    setup_library = clock.perf_counter() - setup_started
    setup_started = clock.perf_counter()
    naive_due = make_baseline()
    setup_baseline = clock.perf_counter() - setup_started

    # Interleave the engines in rounds so that both see the same machine load (the team's
    # machines are shared); times are summed over the rounds.
    deadline = calendar.deadline
    add = calendar.add_working_days
    dates = [instant.date() for instant in instants]
    baseline_instants = instants[:baseline_n]
    library_results = []
    baseline_results = []
    library_seconds = add_seconds = baseline_seconds = 0.0
    for round_index in range(args.rounds):
        lib_chunk = slice(
            round_index * args.n // args.rounds, (round_index + 1) * args.n // args.rounds
        )
        base_chunk = slice(
            round_index * baseline_n // args.rounds,
            (round_index + 1) * baseline_n // args.rounds,
        )
        chunk = instants[lib_chunk]
        started = clock.perf_counter()
        library_results.extend([deadline(instant) for instant in chunk])
        library_seconds += clock.perf_counter() - started

        day_chunk = dates[lib_chunk]
        started = clock.perf_counter()
        for day in day_chunk:
            add(day, 5)
        add_seconds += clock.perf_counter() - started

        chunk = baseline_instants[base_chunk]
        started = clock.perf_counter()
        baseline_results.extend([naive_due(instant) for instant in chunk])
        baseline_seconds += clock.perf_counter() - started

    for instant, ours, theirs in zip(
        baseline_instants, library_results, baseline_results, strict=True
    ):
        if (ours.due_date, ours.due_at) != theirs:
            raise SystemExit(f"mismatch for {instant.isoformat()}: {ours} vs {theirs}")

    library_rate = rate(args.n, library_seconds)
    baseline_rate = rate(baseline_n, baseline_seconds)
    print(
        f"instants: {args.n:,} over 2025-2026 (seed {args.seed}); baseline on {baseline_n:,}; "
        f"{args.rounds} interleaved rounds"
    )
    print(f"setup: library {setup_library * 1e3:.1f} ms, baseline {setup_baseline * 1e3:.1f} ms")
    print(
        f"library  deadline():         {library_rate:>12,.0f} /s  "
        f"({1e6 / library_rate:.2f} us each)"
    )
    print(
        f"library  add_working_days(): {rate(args.n, add_seconds):>12,.0f} /s  "
        f"({add_seconds / args.n * 1e6:.2f} us each)"
    )
    print(
        f"baseline naive day walk:     {baseline_rate:>12,.0f} /s  "
        f"({1e6 / baseline_rate:.2f} us each)"
    )
    print(f"ratio deadline()/baseline:   {library_rate / baseline_rate:>12.1f} x")
    print(f"results identical on {baseline_n:,} instants")


if __name__ == "__main__":
    main()
