"""A throwaway three-primary Redis Cluster on 127.0.0.1, for the store tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import ClassVar

from .redis_server import RedisServer

__all__ = ["ClusterNodeServer", "RedisClusterServers"]


class ClusterNodeServer(RedisServer):
    """One cluster-enabled redis-server; its node id and slots survive a restart."""

    persistence: ClassVar[dict[str, str]] = {
        "save": "",
        "appendonly": "no",
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        "cluster-node-timeout": "2000",
    }


class RedisClusterServers:
    """Three primaries, no replicas, joined with ``redis-cli --cluster create``.

    The ports come from :class:`RedisServer` (20,000 to 32,000): below 55,535, as a
    node's bus port is its port plus 10,000.
    """

    host = "127.0.0.1"

    def __init__(self, binary: str = "redis-server", cli: str = "redis-cli") -> None:
        self.cli = cli
        self.nodes = [ClusterNodeServer(binary) for _ in range(3)]
        self._created = False

    @property
    def port(self) -> int:
        """The port of the first node: where a client starts looking."""
        return self.nodes[0].port

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    def start(self, timeout: float = 60.0) -> None:
        """Start the nodes (creating the cluster the first time); wait until it is ok."""
        for node in self.nodes:
            node.start()
        if not self._created:
            addresses = [f"{self.host}:{node.port}" for node in self.nodes]
            created = subprocess.run(
                [
                    self.cli,
                    "--cluster",
                    "create",
                    *addresses,
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
            self._created = True
        give_up = time.monotonic() + timeout
        while not all(self._ok(node) for node in self.nodes):
            if time.monotonic() > give_up:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut every node down (SIGTERM)."""
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Stop the nodes and delete their directories."""
        for node in self.nodes:
            node.close()

    def _ok(self, node: RedisServer) -> bool:
        reply = subprocess.run(
            [self.cli, "-h", self.host, "-p", str(node.port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return "cluster_state:ok" in reply.stdout

    def __repr__(self) -> str:
        ports = ",".join(str(node.port) for node in self.nodes)
        return f"<RedisClusterServers {self.host}:{ports} running={self.running}>"


def cli_binary() -> str | None:
    """The redis-cli binary, if installed."""
    return shutil.which("redis-cli")
