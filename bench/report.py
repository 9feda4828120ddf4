"""Reporting helpers: number formats, the summary table, the machine description."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import discord

import nyx_sessions


def fmt_ns(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def fmt_rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


def fmt_bytes(size: float) -> str:
    if abs(size) >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size:,.0f} B"


@dataclass(slots=True)
class Row:
    """One line of the summary; ``passed`` is None for figures without a target."""

    name: str
    nyx: str
    discord: str = "-"
    ratio: str = "-"
    target: str = "-"
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "info"}[self.passed]


def table(rows: list[Row]) -> list[str]:
    """The summary as markdown table lines."""
    header = ("benchmark", "nyx-sessions", "discord.py", "ratio", "target", "result")
    cells = [header] + [(r.name, r.nyx, r.discord, r.ratio, r.target, r.verdict) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return lines


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": f"{os.cpu_count()} x {model}",
        "python": platform.python_version(),
        "discord.py": discord.__version__,
        "nyx-sessions": nyx_sessions.__version__,
    }


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (``/proc/stat``'s ``cpu`` line), or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    return [int(value) for value in fields[1:9]] if fields[:1] == ["cpu"] else None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of the CPU time between two readings that the host gave to others.

    A virtual machine's vCPUs wait while the host runs other guests ("steal"): every
    figure measured meanwhile is slower, and Python's more than a C program's.
    """
    if before is None or after is None:
        return None
    spent = [end - start for start, end in zip(before, after, strict=True)]
    total = sum(spent)
    return spent[7] / total if total > 0 else None


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def report(label: str, *values: str, width: int = 12) -> None:
    """Print one line of a benchmark's details: a label, then right-aligned values."""
    print(f"  {label:<44} " + "  ".join(f"{value:>{width}}" for value in values), flush=True)
