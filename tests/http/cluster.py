"""Processes of the worker tests: HTTP workers (``python -m nyx_sessions serve``) and HAProxy."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["Balancer", "Worker", "free_port", "wait_until_up"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free 127.0.0.1 port outside the ephemeral range."""
    for _ in range(100):
        port = random.randint(32_000, 40_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail when ``process`` exits or time runs out."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


class Worker:
    """One ``python -m nyx_sessions serve`` process on a loopback port.

    ``module`` runs another server with the same command line instead:
    ``python -m MODULE TARGET --port PORT``, which answers ``GET /healthz``.
    """

    def __init__(
        self,
        target: str,
        env: dict[str, str],
        log_dir: Path,
        *,
        module: str = "nyx_sessions serve",
    ) -> None:
        self.port = free_port()
        self.log = log_dir / f"worker-{self.port}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *module.split(), target, "--port", str(self.port)],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_until_up(self) -> None:
        wait_until_up(f"{self.url}/healthz", self.process)

    def kill(self) -> None:
        """SIGKILL: no clean-up, leases stay held until they run out."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


_HAPROXY_CONFIG = """\
defaults
    mode http
    timeout connect 1s
    timeout client 20s
    timeout server 20s
    retries 3
    option redispatch
frontend interactions
    bind 127.0.0.1:{port}
    default_backend workers
backend workers
    balance roundrobin
    option httpchk GET /healthz
    timeout check 2s
    default-server check inter 200ms fall 2 rise 1
{servers}
"""


class Balancer:
    """HAProxy in front of ``workers``, round robin, health-checked on ``/healthz``."""

    def __init__(self, ports: list[int], port: int) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="nyx-haproxy-"))
        servers = "\n".join(f"    server w{i} 127.0.0.1:{port}" for i, port in enumerate(ports))
        config = self.dir / "haproxy.cfg"
        config.write_text(_HAPROXY_CONFIG.format(port=self.port, servers=servers))
        with (self.dir / "haproxy.log").open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_up(self) -> None:
        # Every worker must be up (rise 2 checks) before the stream starts.
        wait_until_up(f"{self.url}/healthz", self.process)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
