"""An offline Discord for tests: a real discord.py client, interactions fed in-process.

:class:`OfflineDiscord` logs a real :class:`discord.Client` (or your bot) in against a
small REST server on 127.0.0.1, puts a guild with roles, channels and members into its
cache through discord.py's own parsing, feeds gateway ``INTERACTION_CREATE`` payloads
through discord.py's own parser, keeps every message the bot sends (with its
components) and records every REST call. :class:`ManualClock` moves time only when a
test says so.

Examples
--------
>>> async def test_counter() -> None:  # doctest: +SKIP
...     async with OfflineDiscord(bot) as offline:
...         alice = offline.add_member("alice")
...         res = await offline.slash_command(alice, "counter", options={"n": 3})
...         res = await offline.click(alice, res.message, label="+1")
...         assert res.response.type is discord.InteractionResponseType.message_update
...         assert res.message.content == "4"
"""

from __future__ import annotations

from .clock import ManualClock
from .offline import OfflineDiscord
from .records import (
    InteractionResult,
    OfflineChannel,
    OfflineMessage,
    OfflineRole,
    OfflineUser,
    RecordedFile,
    RecordedRequest,
    RecordedResponse,
)
from .rest import DiscordError

__all__ = [
    "DiscordError",
    "InteractionResult",
    "ManualClock",
    "OfflineChannel",
    "OfflineDiscord",
    "OfflineMessage",
    "OfflineRole",
    "OfflineUser",
    "RecordedFile",
    "RecordedRequest",
    "RecordedResponse",
]
