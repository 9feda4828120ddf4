"""Counting what reaches Redis: requests sent by redis-py, commands run by the server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from redis.asyncio import Connection

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["CountingConnection", "scripts_run"]


class CountingConnection(Connection):
    """Counts the requests that redis-py sends: a pipeline is one, however many commands."""

    sent: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


async def scripts_run(client: Redis) -> int:
    """Scripts the server ran so far (EVALSHA calls), by its INFO commandstats."""
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
