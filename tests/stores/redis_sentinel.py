"""A throwaway Sentinel setup on 127.0.0.1: a primary, a replica and one redis-sentinel."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .redis_server import RedisServer, free_port

__all__ = ["SentinelSetup"]

SERVICE = "nyx"
DOWN_AFTER_MS = 400
FAILOVER_TIMEOUT_MS = 2000


class SentinelSetup:
    """A primary, its replica and a sentinel (quorum 1) that fails over quickly.

    The sentinel declares the primary down after ``DOWN_AFTER_MS`` without an answer and
    promotes the replica. ``close`` stops every process and deletes the directories.
    """

    host = "127.0.0.1"

    def __init__(self, binary: str, sentinel_binary: str, cli: str) -> None:
        self.cli = cli
        self.sentinel_binary = sentinel_binary
        self.primary = RedisServer(binary)
        self.replica = RedisServer(binary)
        self.sentinel_port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="nyx-sentinel-"))
        self._sentinel: subprocess.Popen[bytes] | None = None
        self._spares: list[RedisServer] = []

    def start(self, timeout: float = 20.0) -> None:
        """Start all three and wait until the sentinel knows the replica."""
        self.primary.start()
        self.replica.start()
        self._cli(self.replica.port, "replicaof", self.host, str(self.primary.port))
        config = self._dir / "sentinel.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.sentinel_port}",
                    f"bind {self.host}",
                    f"dir {self._dir}",
                    f"logfile {self._dir / 'sentinel.log'}",
                    f"sentinel monitor {SERVICE} {self.host} {self.primary.port} 1",
                    f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                    f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                    "",
                ]
            )
        )
        self._sentinel = subprocess.Popen(
            [self.sentinel_binary, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        give_up = time.monotonic() + timeout
        while not self._ready():
            if self._sentinel.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"the sentinel did not come up: {self.log_tail()}")
            time.sleep(0.05)

    def master_port(self) -> int | None:
        """The port the sentinel names as the primary now."""
        reply = self._cli(self.sentinel_port, "sentinel", "get-master-addr-by-name", SERVICE)
        lines = reply.split()
        return int(lines[1]) if len(lines) == 2 else None

    def add_replica(self) -> RedisServer:
        """Start a new server replicating the current primary."""
        server = RedisServer(self.primary.binary)
        self._spares.append(server)
        server.start()
        self._cli(server.port, "replicaof", self.host, str(self.master_port()))
        return server

    def cut_replica_link(self) -> None:
        """Drop the primary's connection to its replica (which reconnects when it can)."""
        self._cli(self.primary.port, "client", "kill", "type", "replica")

    async def wait_failover(self, limit: float = 30.0) -> None:
        """Wait until the sentinel names the replica as the primary."""
        give_up = time.monotonic() + limit
        while self.master_port() != self.replica.port:
            if time.monotonic() > give_up:
                raise RuntimeError(f"no failover in {limit}s: {self.log_tail()}")
            await asyncio.sleep(0.05)

    def close(self) -> None:
        """Stop the sentinel and both servers (resuming a paused one first)."""
        try:
            if self._sentinel is not None:
                self._sentinel.kill()
                self._sentinel.wait()
                self._sentinel = None
        finally:
            for server in (self.primary, self.replica, *self._spares):
                server.resume()
                server.close()
            shutil.rmtree(self._dir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return (self._dir / "sentinel.log").read_text()[-2000:]
        except OSError:
            return "(no log)"

    def _ready(self) -> bool:
        replicas = self._cli(self.sentinel_port, "sentinel", "replicas", SERVICE)
        link = self._cli(self.replica.port, "info", "replication")
        return str(self.replica.port) in replicas and "master_link_status:up" in link

    def _cli(self, port: int, *command: str) -> str:
        reply = subprocess.run(
            [self.cli, "-h", self.host, "-p", str(port), *command],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return reply.stdout
