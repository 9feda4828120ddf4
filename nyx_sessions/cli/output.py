"""How the command line prints: rich tables on a terminal, aligned plain text when piped.

Plain text is also the fallback when ``rich`` (the ``demo`` extra) is not installed, so
the commands work everywhere and their piped output stays free of colour codes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

__all__ = [
    "describe_time",
    "format_duration",
    "print_fields",
    "print_json",
    "print_table",
    "time_left",
    "to_jsonable",
]

_MINUTE, _HOUR, _DAY = 60, 3600, 86400


def format_duration(seconds: float) -> str:
    """Return ``seconds`` as a short duration: ``"42s"``, ``"3m 5s"``, ``"2h 7m"``, ``"3d 4h"``."""
    whole = max(int(seconds), 0)
    if whole < _MINUTE:
        return f"{whole}s"
    if whole < _HOUR:
        return f"{whole // _MINUTE}m {whole % _MINUTE}s"
    if whole < _DAY:
        return f"{whole // _HOUR}h {whole % _HOUR // _MINUTE}m"
    return f"{whole // _DAY}d {whole % _DAY // _HOUR}h"


def time_left(deadline: float | None, now: float) -> str:
    """Return the time until ``deadline``: a duration, ``"none"`` or ``"overdue"``."""
    if deadline is None:
        return "none"
    if deadline <= now:
        return "overdue"
    return format_duration(deadline - now)


def describe_time(when: float, now: float) -> str:
    """Return ``repr(when)`` with its UTC date and its distance from ``now``."""
    try:
        date = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return repr(when)
    if when <= now:
        return f"{when!r} ({date}, {format_duration(now - when)} ago)"
    return f"{when!r} ({date}, in {format_duration(when - now)})"


def to_jsonable(value: Any) -> Any:
    """Turn ``value`` into what :func:`json.dumps` writes faithfully.

    JSON's own types stay as they are; anything else (tuples, sets, datetimes, bytes,
    UUIDs, enum members, non-finite floats, dict keys that are not strings) becomes
    its ``repr``, so nothing is silently changed into a look-alike.
    """
    # Exact types: an IntEnum member or a str subclass is shown as its repr.
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else repr(value)
    if type(value) is list:
        return [to_jsonable(item) for item in value]
    if type(value) is dict:
        return {
            key if type(key) is str else repr(key): to_jsonable(item) for key, item in value.items()
        }
    return repr(value)


def print_json(out: TextIO, value: Any) -> None:
    """Write ``value`` as indented JSON (see :func:`to_jsonable`)."""
    out.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def print_table(
    out: TextIO,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    caption: str | None = None,
    footer: Sequence[str] | None = None,
    right: Sequence[int] = (),
) -> None:
    """Write a table: a rich one on a terminal, aligned columns otherwise.

    Parameters
    ----------
    out:
        Where to write.
    headers, rows:
        The column names and the cells, as text.
    caption:
        A line under the table, shown on a terminal only (piped output stays rows).
    footer:
        A last row set apart on a terminal (a total, say); a plain row when piped.
    right:
        The indexes of the columns to align right.
    """
    lines = [[header.upper() for header in headers], *[list(row) for row in rows]]
    if footer is not None:
        lines.append(list(footer))
    widths = [max(len(line[index]) for line in lines) for index in range(len(headers))]
    console = _rich_console(out)
    if console is not None:
        from rich.measure import Measurement
        from rich.table import Table

        table = Table(caption=caption, caption_justify="left", show_footer=footer is not None)
        for index, header in enumerate(headers):
            table.add_column(
                header,
                footer="" if footer is None else footer[index],
                justify="right" if index in right else "left",
                no_wrap=True,
            )
        for row in rows:
            table.add_row(*row)
        # Rich cuts cells to fit the terminal, but ids are copied from here into `show`
        # and `end`: a table that does not fit whole is printed as plain text instead.
        unbounded = console.options.update_width(sys.maxsize)
        if Measurement.get(console, unbounded, table).maximum <= console.width:
            console.print(table)
            return
    for line in lines:
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")


def print_fields(out: TextIO, fields: Sequence[tuple[str, str]], *, title: str) -> None:
    """Write name/value pairs; a value of several lines is indented under its first."""
    console = _rich_console(out)
    if console is not None:
        from rich.table import Table

        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, value in fields:
            table.add_row(name, value)
        console.print(table)
        return
    width = max((len(name) for name, _ in fields), default=0)
    out.write(f"{title}\n")
    for name, value in fields:
        first, *more = value.split("\n")
        out.write(f"{name.ljust(width)}  {first}".rstrip() + "\n")
        for line in more:
            out.write(f"{' ' * width}  {line}".rstrip() + "\n")


def _rich_console(out: TextIO) -> Console | None:
    """Return a rich console on ``out`` if it is a terminal and rich is installed."""
    isatty = getattr(out, "isatty", None)
    if isatty is None or not isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    # markup off: session ids, types and data are shown as they are, brackets included.
    return Console(file=out, highlight=False, markup=False)
