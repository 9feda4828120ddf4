"""Counting the requests that reach Redis: redis-py's own, and the store's batched ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from redis.asyncio import Connection

from nyx_sessions.stores._redis_batch import CommandBatcher

if TYPE_CHECKING:
    from nyx_sessions.stores.redis import RedisStore

__all__ = ["CountingConnection", "requests_sent"]


class CountingConnection(Connection):
    """Counts the requests that redis-py sends: a pipeline is one, however many commands.

    The store's batched requests do not pass through redis-py's ``send_packed_command``
    (the store writes its own connection's socket); :func:`requests_sent` adds them.
    """

    sent: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


def requests_sent(*senders: RedisStore | CommandBatcher) -> int:
    """Requests written so far: redis-py's, plus those of the given stores or batchers."""
    total = CountingConnection.sent
    for sender in senders:
        batcher = sender if isinstance(sender, CommandBatcher) else sender._batcher
        total += batcher.sent
    return total
