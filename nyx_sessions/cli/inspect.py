"""``python -m nyx_sessions inspect``: list, count, show and end the sessions in Redis.

The command reads a :class:`~nyx_sessions.stores.redis.RedisStore` from outside every
bot process. A :class:`~nyx_sessions.MemoryStore` lives inside its bot process and
cannot be reached from outside; in the bot, ``await manager.active()`` counts the live
sessions per type and ``manager.get(session_id)`` returns one.

``end`` does what a bot process does when a session ends, but one thing: it takes the
session's lease, removes the record and publishes an end notice, so every bot process
resolves the session's end promise. The session's ``end()`` hook does NOT run (and no
``END`` event fires): there is no bot process here to run it. To run the hook, end the
session from inside a bot with ``await manager.end(session_id)``.

Exit codes are :class:`ExitCode`: 0 done, 1 no such session, 2 usage error, 3 Redis
unreachable, 4 the store refused (a busy session, an unreadable record, another error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import os
import pprint
import secrets
import sys
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, TextIO

from ..end import EndCode, SessionEndData
from ..errors import LeaseTimeoutError, StoreError, StoreUnavailableError
from ..stores.base import SessionRecord
from .output import (
    describe_time,
    format_duration,
    print_fields,
    print_json,
    print_table,
    time_left,
)

if TYPE_CHECKING:
    from ..stores.base import InspectableStore, SessionStore
    from ..stores.redis import RedisStore

__all__ = ["DESCRIPTION", "EPILOG", "NO_STORE_MESSAGE", "ExitCode", "configure", "run"]


class ExitCode(enum.IntEnum):
    """The exit codes of ``python -m nyx_sessions inspect``."""

    OK = 0
    """The command did what it was asked."""
    NOT_FOUND = 1
    """No session has the given id (it ended, expired or never existed)."""
    USAGE = 2
    """The command line is wrong (argparse's own code), or names no Redis."""
    UNREACHABLE = 3
    """Redis cannot be reached."""
    STORE_ERROR = 4
    """The store refused: a session busy in a bot process, an unreadable record, ..."""


NO_STORE_MESSAGE = (
    "no --redis URL given. inspect reads the sessions of a RedisStore; a MemoryStore "
    "lives inside its bot process and cannot be reached from outside (in the bot, use "
    "`await manager.active()` for live sessions per type, or `manager.get(session_id)`)."
)
"""What ``inspect`` says (on stderr, exit code 2) when it is given no ``--redis``."""

DESCRIPTION = (
    "List, count, show and end the sessions that bots keep in a RedisStore. A "
    "MemoryStore lives inside its bot process and cannot be inspected from outside."
)
"""The description in ``inspect --help``."""

EPILOG = (
    "`end` removes the session and tells the bot processes, so that they resolve its "
    "end promise; the session's end() hook does NOT run. Exit codes: 0 done, 1 no such "
    "session, 2 usage error, 3 Redis unreachable, 4 the store refused."
)
"""The closing lines of ``inspect --help``."""

_END_CODES = (EndCode.CANCELLED, EndCode.EXPIRED, EndCode.ENDED)
_LEASE = 15.0  # seconds the command holds a session's lease while it ends it
_TIMEOUT = 5.0  # seconds to connect to Redis and to wait for one reply
_LIST_HEADERS = ("id", "type", "owner", "age", "time left", "revision")
_PROG = "python -m nyx_sessions inspect"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options and actions of ``inspect`` to its (sub)parser.

    ``--redis``, ``--prefix`` and ``--json`` are accepted before and after the action.
    """
    _add_common_options(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    listing = actions.add_parser("list", help="live sessions, soonest to expire first (default)")
    _add_common_options(listing)
    listing.add_argument("--type", dest="session_type", metavar="TYPE", help="only this type")
    listing.add_argument(
        "--limit", type=_positive_int, metavar="N", help="read at most N sessions (default: all)"
    )
    counts = actions.add_parser("counts", help="live sessions per type, and the total")
    _add_common_options(counts)
    show = actions.add_parser("show", help="one session's full record")
    _add_common_options(show)
    show.add_argument("session_id", metavar="ID")
    end = actions.add_parser("end", help="end one session (its end() hook does NOT run)")
    _add_common_options(end)
    end.add_argument("session_id", metavar="ID")
    end.add_argument(
        "--code",
        choices=[code.value for code in _END_CODES],
        default=EndCode.CANCELLED.value,
        help="the end code bot processes see (default: cancelled)",
    )
    end.add_argument("--reason", metavar="TEXT", help="the end reason bot processes see")
    end.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait while a bot process is serving the session (default: 5)",
    )


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``inspect`` command line; return its exit code (an :class:`ExitCode`)."""
    url: str | None = getattr(args, "redis", None)
    if url is None:
        return _fail(NO_STORE_MESSAGE, ExitCode.USAGE)
    try:
        return asyncio.run(_run(args, url))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, url: str) -> int:
    try:
        from ..stores.redis import RedisStore
    except ImportError as error:
        message = f"inspect needs the redis extra: pip install 'nyx-sessions[redis]' ({error})"
        return _fail(message, ExitCode.USAGE)
    prefix: str = getattr(args, "prefix", "nyx")
    try:
        store = RedisStore.from_url(
            url, prefix=prefix, socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT
        )
    except ValueError as error:
        return _fail(f"invalid --redis or --prefix: {error}", ExitCode.USAGE)
    try:
        return await _dispatch(store, args)
    except StoreUnavailableError as error:
        cause = error.__cause__ if error.__cause__ is not None else error
        return _fail(f"cannot reach Redis at {_redact(url)}: {cause}", ExitCode.UNREACHABLE)
    except StoreError as error:
        return _fail(str(error), ExitCode.STORE_ERROR)
    finally:
        await store.aclose()


async def _dispatch(store: RedisStore, args: argparse.Namespace) -> int:
    out = sys.stdout
    as_json: bool = getattr(args, "json", False)
    action: str | None = args.action
    prefix: str = getattr(args, "prefix", "nyx")
    if action is None or action == "list":
        session_type: str | None = getattr(args, "session_type", None)
        limit: int | None = getattr(args, "limit", None)
        listed = await _list(store, out, session_type=session_type, limit=limit, as_json=as_json)
        if listed == 0 and not await store.count_by_type():
            _note_nothing_under(prefix)
        return ExitCode.OK
    if action == "counts":
        if await _counts(store, out, as_json=as_json) == 0:
            _note_nothing_under(prefix)
        return ExitCode.OK
    if action == "show":
        return await _show(store, out, args.session_id, as_json=as_json)
    return await _end(
        store,
        out,
        args.session_id,
        EndCode(args.code),
        args.reason,
        wait=args.wait,
        as_json=as_json,
    )


# -- actions -----------------------------------------------------------------------------


async def _list(
    store: InspectableStore,
    out: TextIO,
    *,
    session_type: str | None,
    limit: int | None,
    as_json: bool,
) -> int:
    """Print the live sessions; return how many there are."""
    now = time.time()
    records = [record async for record in store.scan(session_type=session_type, limit=limit)]
    records.sort(key=_soonest_first)
    if as_json:
        print_json(out, [_summary(record, now) for record in records])
        return len(records)
    if not records:
        kind = "" if session_type is None else f" of type {session_type!r}"
        out.write(f"No live sessions{kind}.\n")
        return 0
    rows = [
        [
            record.session_id,
            record.session_type,
            str(record.owner_id),
            format_duration(now - record.created_at),
            time_left(record.deadline, now),
            str(record.revision),
        ]
        for record in records
    ]
    caption = f"{len(rows)} live session{'' if len(rows) == 1 else 's'}, soonest to expire first"
    print_table(out, _LIST_HEADERS, rows, caption=caption, right=(3, 4, 5))
    return len(records)


async def _counts(store: SessionStore, out: TextIO, *, as_json: bool) -> int:
    """Print the live sessions per type; return the total."""
    counts = dict(sorted((await store.count_by_type()).items()))
    total = sum(counts.values())
    if as_json:
        print_json(out, {"by_type": counts, "total": total})
        return total
    rows = [[name, str(count)] for name, count in counts.items()]
    print_table(out, ("type", "sessions"), rows, footer=("total", str(total)), right=(1,))
    return total


async def _show(store: SessionStore, out: TextIO, session_id: str, *, as_json: bool) -> int:
    now = time.time()
    record = await store.get(session_id)
    if record is None:
        return _not_found(session_id)
    if as_json:
        # recent is a tuple of ids, which the JSON writer would show as its repr.
        fields = {**_fields(record), "recent": list(record.recent)}
        print_json(out, {**fields, **_times(record, now)})
        return ExitCode.OK
    rows = [(name, _show_value(name, value, now)) for name, value in _fields(record).items()]
    print_fields(out, rows, title=f"Session {record.session_id}")
    return ExitCode.OK


async def _end(
    store: SessionStore,
    out: TextIO,
    session_id: str,
    code: EndCode,
    reason: str | None,
    *,
    wait: float,
    as_json: bool,
) -> int:
    owner = f"cli-{os.getpid()}-{secrets.token_hex(6)}"
    try:
        record = await store.acquire(session_id, lease_owner=owner, lease=_LEASE, wait=wait)
    except LeaseTimeoutError:
        message = (
            f"session {session_id} is busy: a bot process holds its lease; "
            "try again, or wait longer with --wait SECONDS"
        )
        return _fail(message, ExitCode.STORE_ERROR)
    if record is None:
        return _not_found(session_id)
    try:
        removed = await store.remove(session_id)
    except StoreError:
        with contextlib.suppress(StoreError):
            await store.release(session_id, lease_owner=owner)
        raise
    if not removed:
        return _not_found(session_id)
    end = SessionEndData(session_id, code, reason, record.result)
    try:
        await store.publish_end(end)
    except StoreError as error:
        message = (
            f"session {session_id} was removed, but its end notice was not published "
            f"({error}); bot processes resolve its end promise when they next touch it"
        )
        unreachable = isinstance(error, StoreUnavailableError)
        return _fail(message, ExitCode.UNREACHABLE if unreachable else ExitCode.STORE_ERROR)
    if as_json:
        ended: dict[str, Any] = {"session_id": session_id, "session_type": record.session_type}
        ended |= {"code": code.value, "reason": reason, "result": record.result}
        print_json(out, {**ended, "end_hook_ran": False, "notice_published": True})
        return ExitCode.OK
    out.write(
        f"Ended session {session_id} ({record.session_type}, owner {record.owner_id}) "
        f"with code {code.value}.\n"
        "Note: its end() hook did NOT run, and no END event fired: this command is not a "
        "bot process.\nBot processes waiting on its end promise were notified; clicks on "
        "its message now get the reply for an expired session.\n"
    )
    return ExitCode.OK


# -- helpers -----------------------------------------------------------------------------


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: an option given before the action is not reset by the action's parser.
    parser.add_argument(
        "--redis",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the Redis of the bot's RedisStore, e.g. redis://localhost:6379/0 (required)",
    )
    parser.add_argument(
        "--prefix",
        default=argparse.SUPPRESS,
        help="the key prefix of the bot's RedisStore (default: nyx)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON instead of a table",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _soonest_first(record: SessionRecord) -> tuple[bool, float, str]:
    deadline = record.deadline
    return deadline is None, 0.0 if deadline is None else deadline, record.session_id


def _fields(record: SessionRecord) -> dict[str, Any]:
    return {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}


def _times(record: SessionRecord, now: float) -> dict[str, float | None]:
    left = None if record.deadline is None else record.deadline - now
    return {"age_seconds": now - record.created_at, "time_left_seconds": left}


def _summary(record: SessionRecord, now: float) -> dict[str, Any]:
    keys = ["session_id", "session_type", "owner_id", "guild_id", "channel_id", "message_id"]
    keys += ["created_at", "deadline", "revision"]
    return {key: getattr(record, key) for key in keys} | _times(record, now)


def _show_value(name: str, value: Any, now: float) -> str:
    if name in ("created_at", "deadline", "hard_deadline") and value is not None:
        return describe_time(value, now)
    if name in ("data", "result"):
        return pprint.pformat(value, width=80, sort_dicts=False)
    return value if type(value) is str else repr(value)


def _not_found(session_id: str) -> int:
    message = f"no session {session_id!r}: it ended, expired or never existed"
    return _fail(message, ExitCode.NOT_FOUND)


def _note_nothing_under(prefix: str) -> None:
    # An empty store is also what a mistyped --prefix reads: say which prefix was read.
    print(
        f"{_PROG}: no sessions found under the prefix {prefix!r} "
        "(is it the prefix of the bot's RedisStore? see --prefix)",
        file=sys.stderr,
    )


def _fail(message: str, code: ExitCode) -> int:
    print(f"{_PROG}: {message}", file=sys.stderr)
    return code


def _redact(url: str) -> str:
    """Return ``url`` without its password, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "the given URL"
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
