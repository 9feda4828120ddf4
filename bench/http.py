"""HTTP interactions: one worker against the gateway path, 2 workers against 1, latency.

Run with ``python -m bench.http [--quick]``. The bot is the one of the worker tests
(``tests/http/worker_bot.py``): tallies in one redis-server, each click an ``edit_message``.
Workers are ``python -m nyx_sessions serve`` processes; the load comes from this process,
with payloads built and signed before the clock starts (signing is Discord's work).

- *one worker*: clicks POSTed straight to a worker, 32 at a time over keep-alive
  connections (a bare HTTP/1.1 client, so that the load costs this process little); its
  rate, and its CPU per interaction (``/proc``, read 3.5 s after the last answer, so
  that the work a click leaves for later is counted with it). Then the same signed
  payloads as PINGs (``"type": 1``), which the worker verifies, decodes and answers
  without the bot: their CPU is the cost of verification and HTTP (aiohttp's server,
  JSON), and its share of a click's CPU is the figure with the target. Target: <= 30%.
  The bot keeps its records at one size here (``NYX_KEEP_CLICKS=0``), so that a click
  costs the same in every run.
- *the floor*: the same PINGs to :mod:`bench.http_floor`, aiohttp and PyNaCl with no code
  of ours (read, verify, answer): what the two libraries cost per request at the least,
  and its share of a click.
- *gateway path*: the same bot in this process, the same payloads through discord.py's
  gateway parser, answered by REST callback to the offline Discord (also in this
  process, so its server's cost is counted too).
- *balancer*: HAProxy in front of one worker, then two. The load generator, HAProxy and
  redis-server share the machine's cores with the workers.
- *latency*: a steady load at half the one-worker maximum, p50 and p99. Target: p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import discord
import orjson

from bench.report import Row, fmt_rate, report, section
from nyx_sessions.http.signature import SignatureVerifier
from nyx_sessions.testing import OfflineDiscord, OfflineMessage, OfflineUser
from nyx_sessions.testing.http import HttpOfflineDiscord
from nyx_sessions.testing.interactions import button_data
from tests.http import worker_bot
from tests.http.cluster import Balancer, Worker, free_port
from tests.stores.redis_server import RedisServer

TARGET = "tests.http.worker_bot:create_bot"
CONCURRENCY = 32
RUNS = 5  # of clicks and of PINGs, interleaved; medians
SETTLE = 3.5  # seconds: past the deferral watch (2.5 s) and the endpoint's timer (2.7 s)
SESSIONS = 64  # more than CONCURRENCY: concurrent clicks go to different sessions
Signed = tuple[bytes, dict[str, str]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Load:
    """Click payloads over the sessions, built and signed ahead."""

    def __init__(
        self, offline: HttpOfflineDiscord, started: list[tuple[OfflineUser, OfflineMessage]]
    ):
        self.offline = offline
        self.started = started

    def payloads(self, count: int) -> list[dict[str, Any]]:
        made = []
        for index in range(count):
            user, message = self.started[index % len(self.started)]
            data = button_data(message.find(label="inc"))
            made.append(
                self.offline.make_interaction_payload(
                    user, discord.InteractionType.component, data, message=message
                )
            )
        return made

    def signed(self, count: int, *, ping: bool = False) -> list[Signed]:
        out = []
        for payload in self.payloads(count):
            body = json.dumps({**payload, "type": 1} if ping else payload).encode()
            out.append(
                (body, {**self.offline.signer.headers(body), "Content-Type": "application/json"})
            )
        return out


class Lane:
    """One keep-alive HTTP/1.1 connection that POSTs prepared requests and reads answers.

    A bare client: aiohttp's costs about as much CPU per request as the worker's server,
    and the load generator shares the machine's cores with the workers.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "", parts.port or 80, parts.path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def request(self, body: bytes, headers: dict[str, str]) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def post(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(int(length[1]))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def post_all(url: str, requests: list[Signed], *, answer_type: int = 7) -> float:
    """POST every request, CONCURRENCY at a time; return the seconds it took."""
    lanes = [Lane(url) for _ in range(CONCURRENCY)]
    raw = iter([lanes[0].request(body, headers) for body, headers in requests])

    async def drive(lane: Lane) -> None:
        for request in raw:
            status, answer = await lane.post(request)
            if status != 200 or json.loads(answer)["type"] != answer_type:
                raise RuntimeError(f"unexpected answer {status}: {answer[:200]!r}")

    try:
        began = time.perf_counter()
        await asyncio.gather(*(drive(lane) for lane in lanes))
        return time.perf_counter() - began
    finally:
        for lane in lanes:
            await lane.close()


async def cpu_per_request(
    pid: int, url: str, requests: list[Signed], *, answer_type: int = 7, settle: float = 0.0
) -> tuple[float, float]:
    """POST ``requests``; return the worker's CPU seconds per request and the rate.

    The CPU is read ``settle`` seconds after the last answer, so that work the requests
    leave for later (the manager's deferral watch drops each interaction's entry 2.5 s
    after it came, the endpoint's cancelled 2.7 s timers come due) is counted with them,
    not with the next run.
    """
    before = cpu_seconds(pid)
    elapsed = await post_all(url, requests, answer_type=answer_type)
    await asyncio.sleep(settle)
    return (cpu_seconds(pid) - before) / len(requests), len(requests) / elapsed


async def steady(
    http: aiohttp.ClientSession, url: str, requests: list[Signed], rate: float
) -> list[float]:
    """POST at a steady ``rate`` per second (open loop); return each latency in seconds."""
    latencies: list[float] = []
    tasks = []

    async def one(body: bytes, headers: dict[str, str]) -> None:
        began = time.perf_counter()
        async with http.post(url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
        latencies.append(time.perf_counter() - began)

    start = time.perf_counter()
    for index, (body, headers) in enumerate(requests):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(body, headers)))
    await asyncio.gather(*tasks)
    return latencies


async def gateway_rate(load: Load, count: int) -> float:
    """Clicks per second through the gateway parser, answered by REST callback."""
    bot = worker_bot.create_bot()
    await bot.login("offline-token")
    offline = load.offline
    try:
        payloads = load.payloads(count)
        feed = OfflineDiscord.feed  # the gateway delivery, not the HTTP one
        began = time.perf_counter()
        for batch in range(0, count, CONCURRENCY):
            results = await asyncio.gather(
                *(feed(offline, p, client=bot) for p in payloads[batch : batch + CONCURRENCY])
            )
            assert all(r.answered for r in results)
        return count / (time.perf_counter() - began)
    finally:
        await bot.close()


def decode_cost(requests: list[Signed]) -> float:
    """Seconds per decoding of a click's body, as the endpoint decodes it (orjson)."""
    began = time.process_time()
    for body, _ in requests:
        orjson.loads(body)
    return (time.process_time() - began) / len(requests)


def verify_cost(public_key: str, requests: list[Signed]) -> float:
    """Seconds per signature verification."""
    verifier = SignatureVerifier(public_key)
    began = time.process_time()
    for body, headers in requests:
        assert verifier.verify(headers, body)
    return (time.process_time() - began) / len(requests)


async def run(quick: bool) -> list[Row]:
    section("HTTP interactions (one worker, the gateway path, a balancer)")
    count = 400 if quick else 3000
    redis = RedisServer()
    redis.start()
    workers: list[Worker] = []
    balancers: list[Balancer] = []
    floor: Worker | None = None
    rows: list[Row] = []
    try:
        async with HttpOfflineDiscord(url="http://127.0.0.1:1/") as offline:
            env = {
                "DISCORD_TOKEN": "offline-token",
                "DISCORD_PUBLIC_KEY": offline.public_key,
                "REDIS_URL": redis.url,
                "NYX_OFFLINE_API": offline.api_url,
                "NYX_CLICK_WORK": "0",
                "NYX_KEEP_CLICKS": "0",
            }
            # For the bot of the gateway path, in this process.
            os.environ.update(
                {key: env[key] for key in ("REDIS_URL", "NYX_CLICK_WORK", "NYX_KEEP_CLICKS")}
            )
            log_dir = Path(tempfile.mkdtemp(prefix="nyx-bench-http-"))
            workers = [Worker(TARGET, env, log_dir) for _ in range(2)]
            floor = Worker(offline.public_key, {}, log_dir, module="bench.http_floor")
            for worker in [*workers, floor]:
                await asyncio.to_thread(worker.wait_until_up)
            offline.url = f"{workers[0].url}/interactions"
            started = []
            for index in range(SESSIONS):
                user = offline.add_member(f"user{index}")
                result = await offline.slash_command(user, "tally", timeout=10)
                assert result.message is not None
                started.append((user, result.message))
            load = Load(offline, started)
            async with aiohttp.ClientSession() as http:
                pid, url = workers[0].pid, offline.url
                floor_url = f"{floor.url}/interactions"
                await post_all(url, load.signed(200))  # warm up
                await post_all(floor_url, load.signed(200, ping=True), answer_type=1)
                clicks, pings, floors = [], [], []
                for _ in range(RUNS):  # interleaved, so that drift touches all alike
                    clicks.append(
                        await cpu_per_request(pid, url, load.signed(count), settle=SETTLE)
                    )
                    ping_requests = load.signed(count, ping=True)
                    pings.append(await cpu_per_request(pid, url, ping_requests, answer_type=1))
                    floors.append(
                        await cpu_per_request(floor.pid, floor_url, ping_requests, answer_type=1)
                    )
                click_cpu = statistics.median(cpu for cpu, _ in clicks)
                one_rate = statistics.median(rate for _, rate in clicks)
                ping_cpu = statistics.median(cpu for cpu, _ in pings)
                floor_cpu = statistics.median(cpu for cpu, _ in floors)
                signed = load.signed(500)
                verify = verify_cost(offline.public_key, signed)
                decode = decode_cost(signed)
                gateway = await gateway_rate(load, min(count, 1000))
                share = ping_cpu / click_cpu
                shares = sorted(p / c for (p, _), (c, _) in zip(pings, clicks, strict=True))
                report("one worker, HTTP (interactions/s)", fmt_rate(one_rate))
                report("gateway path, in process (interactions/s)", fmt_rate(gateway))
                report("worker CPU per click", f"{click_cpu * 1e6:.0f} us")
                report("worker CPU per PING (verify, HTTP, JSON)", f"{ping_cpu * 1e6:.0f} us")
                report("  signature verification alone", f"{verify * 1e6:.0f} us")
                report("  JSON decoding alone (orjson)", f"{decode * 1e6:.0f} us")
                report(
                    "  verification + HTTP share of a click",
                    f"{share:.0%}",
                    f"(per run {shares[0]:.0%}..{shares[-1]:.0%})",
                )
                # For information: the gateway decodes the same JSON, so a reading of the
                # target could leave it out. The row judged keeps it in.
                report(
                    "  the same without JSON decoding (information)",
                    f"{(ping_cpu - decode) / click_cpu:.0%}",
                )
                report(
                    "the floor: aiohttp + PyNaCl alone, per PING",
                    f"{floor_cpu * 1e6:.0f} us",
                    f"{floor_cpu / click_cpu:.0%} of a click",
                )
                rows.append(
                    Row(
                        "http: one worker (interactions/s)",
                        fmt_rate(one_rate),
                        fmt_rate(gateway),
                        f"{one_rate / gateway:.2f}x",
                        "-",
                    )
                )
                rows.append(
                    Row(
                        "http: verification + HTTP share of a worker's CPU per click",
                        f"{share:.0%}",
                        target="<= 30%",
                        passed=share <= 0.30,
                    )
                )
                rows.append(
                    Row(
                        "http: the floor, aiohttp + PyNaCl alone, share of a click",
                        f"{floor_cpu / click_cpu:.0%}",
                    )
                )

                half = one_rate / 2
                latencies = sorted(
                    await steady(
                        http, offline.url, load.signed(int(half * (2 if quick else 5))), half
                    )
                )
                p50 = statistics.median(latencies) * 1e3
                p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e3
                report(f"latency at {half:.0f}/s: p50, p99", f"{p50:.1f} ms", f"{p99:.1f} ms")
                rows.append(
                    Row(
                        f"http: p99 latency at half load ({half:.0f}/s)",
                        f"{p99:.1f} ms",
                        target="< 100 ms",
                        passed=p99 < 100,
                    )
                )

                rates = []
                for members in ([workers[0]], workers):
                    balancer = Balancer([w.port for w in members], free_port())
                    balancers.append(balancer)
                    await asyncio.to_thread(balancer.wait_until_up)
                    url = f"{balancer.url}/interactions"
                    await post_all(url, load.signed(100))
                    rates.append(count / await post_all(url, load.signed(count)))
                    balancer.stop()
                report(
                    "behind HAProxy: 1 worker, 2 workers", fmt_rate(rates[0]), fmt_rate(rates[1])
                )
                report(
                    "  2 workers / 1 (this machine's cores)",
                    f"{rates[1] / rates[0]:.2f}x",
                    f"{os.cpu_count()}",
                )
                rows.append(
                    Row(
                        "http: 2 workers vs 1 behind HAProxy",
                        fmt_rate(rates[1]),
                        fmt_rate(rates[0]),
                        f"{rates[1] / rates[0]:.2f}x",
                    )
                )
    finally:
        if floor is not None:
            floor.stop()
        for balancer in balancers:
            balancer.stop()
        for worker in workers:
            worker.stop()
        redis.close()
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.quick))
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
