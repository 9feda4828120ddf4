"""Command line: ``python -m nyx_sessions demo``, ``inspect`` and ``serve``."""

from __future__ import annotations

import argparse
import sys

from .cli import inspect as inspect_command
from .cli import serve as serve_command

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m nyx_sessions",
        description="nyx-sessions: play the demo, inspect a RedisStore's sessions, or serve "
        "a bot's interactions over HTTP.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="play a few sessions in the offline Discord (no token)")
    inspect_command.configure(
        commands.add_parser(
            "inspect",
            help="list, count, show and end the sessions in a RedisStore",
            description=inspect_command.DESCRIPTION,
            epilog=inspect_command.EPILOG,
        )
    )
    serve_command.configure(
        commands.add_parser(
            "serve",
            help="serve a bot's interactions over HTTP (one worker)",
            description=serve_command.DESCRIPTION,
        )
    )
    args = parser.parse_args(argv)
    if args.command == "inspect":
        return inspect_command.run(args)
    if args.command == "serve":
        return serve_command.run(args)
    from .demo import main as demo

    return demo()


if __name__ == "__main__":
    sys.exit(main())
