"""A throwaway redis-server on a free 127.0.0.1 port, for the store tests."""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import ClassVar

__all__ = ["RedisServer", "free_port"]


def free_port() -> int:
    # Not port 0: the kernel hands out ephemeral ports, so a port freed by stop() could
    # go to another test run's server before start() takes it back.
    for _ in range(100):
        port = random.randint(20_000, 32_000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for redis-server")


class RedisServer:
    """Runs ``redis-server`` in a temporary directory; can be stopped and started again.

    The port stays the same across restarts, so clients reconnect to the same address.
    Nothing is saved on its own (``--save "" --appendonly no``), but an explicit SAVE
    writes ``dump.rdb``, which the next :meth:`start` loads.
    """

    host = "127.0.0.1"
    persistence: ClassVar[dict[str, str]] = {"save": "", "appendonly": "no"}

    def __init__(self, binary: str = "redis-server") -> None:
        self.binary = binary
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="nyx-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers."""
        if self.running:
            return
        options = {
            "port": str(self.port),
            "bind": self.host,
            "dir": str(self._dir),
            "logfile": str(self._dir / "redis.log"),
            **self.persistence,
        }
        arguments = [part for name, value in options.items() for part in (f"--{name}", value)]
        self._process = subprocess.Popen(
            [self.binary, *arguments],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        give_up = time.monotonic() + timeout
        while not self._answers_ping():
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            if time.monotonic() > give_up:
                self.kill()
                raise RuntimeError(f"redis-server did not answer in {timeout}s")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down gracefully (SIGTERM) and wait for it."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout)
            self._process = None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), like a crash."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it neither answers nor reads, like a stalled host."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _answers_ping(self) -> bool:
        """True when OUR server answers (not another one that took the port meanwhile)."""
        assert self._process is not None
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"INFO server\r\n")
                reply = b""
                while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        return False
                    reply += chunk
        except OSError:
            return False
        if f"process_id:{self._process.pid}\r\n".encode() not in reply:
            raise RuntimeError(f"port {self.port} is served by another redis-server")
        return True

    def _log_tail(self) -> str:
        try:
            return (self._dir / "redis.log").read_text()[-2000:]
        except OSError:
            return "(no log)"

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} running={self.running}>"
