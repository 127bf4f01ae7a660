"""Start the chat service as a real deployment and talk to it with a websocket client.

Used by ``tests/deployment/`` and ``benchmarks/bench_deployment.py``; also handy
for poking at a running service from a REPL. Everything stays on loopback, and
every wait has a deadline.

``run_service(...)`` starts ``python -m examples.chat_service --port 0`` (uvicorn
supervisor plus worker processes, in a process group of their own), waits until
a worker answers ``/healthz``, and stops the whole group on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from websockets.asyncio.client import ClientConnection, connect

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
READY_LINE_PREFIX = "chat service listening on "
# A cold worker imports Starlette, uvicorn and redis-py: about a second on an
# idle core. The bound only stops a broken start from hanging the caller.
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
REPLY_TIMEOUT_SECONDS = 30.0


class ServiceFailedToStart(RuntimeError):
    """The service exited, or did not serve, within the startup deadline (its log is attached)."""


@dataclass
class RunningService:
    """A started deployment: the supervisor process and where it listens."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        port = urlsplit(self.base_url).port
        assert port is not None
        return port

    def ws_url(self, path: str = "/ws") -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def child_pids(self) -> set[int]:
        """The supervisor's child processes: its workers (and multiprocessing's helper).

        Read from ``/proc/<pid>/task/<pid>/children`` (Linux).
        """
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return {int(child) for child in children.split()}

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def health(self, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
        """GET /healthz: the status and the JSON body (a worker pings Redis)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            body: dict[str, Any] = json.loads(response.read())
            return response.status, body
        finally:
            connection.close()

    def wait_until_serving(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceFailedToStart(
                    f"the chat service exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                status, _ = self.health()
                if status == 200:
                    return
                last_error = f"/healthz answered {status}"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
        raise ServiceFailedToStart(
            f"the chat service did not serve within {timeout}s ({last_error}):\n{self.log()}"
        )


def service_command(
    redis_url: str,
    *,
    workers: int = 2,
    key_prefix: str = "chat",
    agent_delay: float = 0.0,
    busy_timeout: float = 10.0,
    lease_ttl: float = 30.0,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "examples.chat_service",
        "--redis-url", redis_url,
        "--key-prefix", key_prefix,
        "--host", "127.0.0.1",
        "--port", "0",
        "--workers", str(workers),
        "--agent-delay", repr(agent_delay),
        "--busy-timeout", repr(busy_timeout),
        "--lease-ttl", repr(lease_ttl),
    ]  # fmt: skip


@contextlib.contextmanager
def run_service(
    redis_url: str,
    *,
    log_dir: Path,
    workers: int = 2,
    key_prefix: str = "chat",
    agent_delay: float = 0.0,
    busy_timeout: float = 10.0,
    lease_ttl: float = 30.0,
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> Iterator[RunningService]:
    """Run the service until the block exits; then stop it and every worker it started."""
    log_path = log_dir / f"chat-service-{uuid.uuid4().hex[:8]}.log"
    command = service_command(
        redis_url,
        workers=workers,
        key_prefix=key_prefix,
        agent_delay=agent_delay,
        busy_timeout=busy_timeout,
        lease_ttl=lease_ttl,
    )
    environment = dict(os.environ)
    # The workers import examples.chat_service by name.
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY_ROOT), environment.get("PYTHONPATH")])
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            # Its own process group: stopping it can never reach anything else.
            start_new_session=True,
        )
    try:
        base_url = _wait_for_address(process, log_path, startup_timeout)
        service = RunningService(process, base_url, log_path)
        service.wait_until_serving(startup_timeout)
        yield service
    finally:
        _stop(process)


def _wait_for_address(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith(READY_LINE_PREFIX):
                return line.removeprefix(READY_LINE_PREFIX).split()[0]
        if process.poll() is not None:
            raise ServiceFailedToStart(
                f"the chat service exited with {process.returncode}:\n{text}"
            )
        time.sleep(0.02)
    raise ServiceFailedToStart(
        f"the chat service printed no address within {timeout}s:\n{log_path.read_text()}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the supervisor (it stops its workers); SIGKILL to the group after that."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_SECONDS)
    # Whatever is left of the group we started (a worker orphaned by a
    # SIGKILLed supervisor, a hung shutdown) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(STOP_TIMEOUT_SECONDS)


def chat_message(user_id: str, thread_id: str, text: str = "hello") -> dict[str, str]:
    """A request frame with a fresh message_id."""
    return {
        "user_id": user_id,
        "thread_id": thread_id,
        "message_id": f"m_{uuid.uuid4().hex}",
        "text": text,
    }


async def send_on(
    connection: ClientConnection,
    message: dict[str, str],
    reply_timeout: float = REPLY_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Send one message on an open connection and return its reply."""
    await connection.send(json.dumps(message))
    frame = await asyncio.wait_for(connection.recv(), reply_timeout)
    reply: dict[str, Any] = json.loads(frame)
    return reply


async def send_once(
    url: str, message: dict[str, str], reply_timeout: float = REPLY_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """One message on a new connection (opened, used once, closed)."""
    async with connect(url, open_timeout=reply_timeout, close_timeout=reply_timeout) as connection:
        return await send_on(connection, message, reply_timeout)


class RedisCommandCounter:
    """Counts, on the server's side, the commands clients send to Redis (``MONITOR``).

    Only top-level commands count (what a client sends: one ``EVALSHA`` is one
    round trip, however many commands its script calls inside), so this is the
    number of round trips the application made. ``with counter:`` starts
    watching; ``counter.stop()`` returns the counts by command name.
    """

    _SENTINEL = "ctxmigrate-command-counter-end"

    def __init__(self, redis_url: str, timeout: float = 30.0) -> None:
        self._redis_url = redis_url
        self._timeout = timeout
        self._counts: Counter[str] = Counter()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> RedisCommandCounter:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        if not self._started.wait(self._timeout):
            raise TimeoutError("MONITOR did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.stop()

    def stop(self) -> Counter[str]:
        client = redis.Redis.from_url(self._redis_url, socket_timeout=self._timeout)
        try:
            client.echo(self._SENTINEL)
        finally:
            client.close()
        assert self._thread is not None
        self._thread.join(self._timeout)
        if self._thread.is_alive():
            raise TimeoutError("MONITOR did not see the end marker")
        if self._error is not None:
            raise self._error
        return self._counts

    def _watch(self) -> None:
        client = redis.Redis.from_url(self._redis_url, socket_timeout=self._timeout)
        try:
            with client.monitor() as monitor:  # type: ignore[no-untyped-call]  # redis-py
                self._started.set()
                while True:
                    command = monitor.next_command()
                    if command["client_type"] == "lua":
                        continue  # called inside a script: no round trip of its own
                    words = command["command"].split()
                    name = words[0].upper() if words else ""
                    if name == "ECHO" and self._SENTINEL in command["command"]:
                        return
                    self._counts[name] += 1
        except BaseException as exc:  # reported by stop()
            self._error = exc
            self._started.set()
        finally:
            client.close()
