"""Command line: ``python -m nyx_sessions demo``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m nyx_sessions", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="play a few sessions in the offline Discord (no token)")
    parser.parse_args(argv)
    from .demo import main as demo

    return demo()


if __name__ == "__main__":
    sys.exit(main())
