"""Run the benchmark suite: ``python -m bench [--quick] [--only NAME] [--profile]``."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import pathlib
import sys
import time

from bench import full_path, memory, overload, redis_store, scale
from bench import http as http_interactions
from bench.report import Row, cpu_times, machine, report, steal_share, table

BENCHMARKS = {
    "full_path": full_path.run,
    "memory": memory.run,
    "scale": scale.run,
    "redis": redis_store.run,
    "http": http_interactions.run,
    "overload": overload.run,
}
RESULTS = pathlib.Path(__file__).with_name("results.md")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of the full path"
    )
    parser.add_argument(
        "--results",
        type=pathlib.Path,
        default=None,
        help=f"write the summary here (default: {RESULTS.name} on full runs only)",
    )
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for name in args.only or BENCHMARKS:
        before = cpu_times()
        if name == "full_path":
            rows += await full_path.run(args.quick, profile=args.profile)
        else:
            rows += await BENCHMARKS[name](args.quick)
        stolen = steal_share(before, cpu_times())
        if stolen is not None:
            report("CPU time taken by the host (steal)", f"{stolen:.1%}")
            rows.append(Row(f"{name}: CPU steal during the benchmark", f"{stolen:.1%}"))
    return rows


def write_results(
    path: pathlib.Path, rows: list[Row], args: argparse.Namespace, seconds: float
) -> None:
    info = machine()
    mode = "python -m bench" + (" --quick" if args.quick else "")
    mode += "".join(f" --only {name}" for name in args.only or ())
    lines = [
        "# nyx-sessions benchmark results",
        "",
        f"`{mode}` on {datetime.date.today().isoformat()}, {seconds:.0f} s; "
        f"{info['cpu']}, Python {info['python']}, discord.py {info['discord.py']}, "
        f"nyx-sessions {info['nyx-sessions']}; memory store.",
        "",
        *table(rows),
        "",
    ]
    path.write_text("\n".join(lines))


def cli(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # The offline clients run without the guilds intent on purpose; discord.py says so.
    logging.getLogger("discord").setLevel(logging.ERROR)
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine().items()))
    began = time.perf_counter()
    rows = asyncio.run(main(args))
    seconds = time.perf_counter() - began
    print(f"\n== summary ({seconds:.0f} s) " + "=" * 60)
    print("\n".join(table(rows)))
    path = args.results or (None if args.quick or args.only else RESULTS)
    if path is not None:
        write_results(path, rows, args, seconds)
        print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
