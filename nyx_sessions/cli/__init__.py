"""The command line behind ``python -m nyx_sessions``.

``inspect`` (:mod:`nyx_sessions.cli.inspect`) lists, counts, shows and ends the sessions
in a Redis store; :mod:`nyx_sessions.cli.output` prints its tables. ``demo`` lives in
:mod:`nyx_sessions.demo`.
"""

from __future__ import annotations

__all__: list[str] = []
