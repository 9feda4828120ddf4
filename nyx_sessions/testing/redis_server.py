"""A throwaway ``redis-server`` on a free 127.0.0.1 port, for tests of Redis-backed bots.

Started from the ``redis-server`` binary on ``PATH`` (the ``redis_url`` fixture of the
pytest plugin uses it), with no persistence, in a temporary directory that is removed
when it stops.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServerMissingError", "RedisServerProcess"]


class RedisServerMissingError(RuntimeError):
    """The ``redis-server`` binary is not on ``PATH``."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServerProcess:
    """One ``redis-server`` process; :meth:`start`, then :attr:`url`, then :meth:`stop`.

    Parameters
    ----------
    binary:
        The program to run; found on ``PATH``.

    Raises
    ------
    RedisServerMissingError
        ``binary`` is not on ``PATH``.
    """

    def __init__(self, binary: str = "redis-server") -> None:
        found = shutil.which(binary)
        if found is None:
            raise RedisServerMissingError(
                f"{binary!r} is not on PATH: the redis_url fixture runs a real Redis server. "
                "Install Redis (e.g. the redis-server package of your distribution) or put "
                "its binary on PATH"
            )
        self.binary = found
        self.port = 0
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server on a free port and wait until it answers PING."""
        self._dir = Path(tempfile.mkdtemp(prefix="nyx-redis-"))
        for _ in range(5):
            self.port = _free_port()
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self._dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + timeout
            while self._process.poll() is None and time.monotonic() < deadline:
                if _answers_ping(self.port):
                    return
                time.sleep(0.02)
            self._kill()  # the port was taken in between, or the server hung: try again
        raise RuntimeError(f"redis-server did not start on 127.0.0.1 within {timeout} s")

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        """Stop the server and remove its directory; idempotent."""
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __repr__(self) -> str:
        state = "running" if self._process is not None else "stopped"
        return f"<RedisServerProcess {self.url} {state}>"
