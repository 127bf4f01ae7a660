"""A real redis-server for the Redis store tests (no fake Redis).

One server per test session, on a unix socket with TCP disabled, persistence
off and no daemon: it dies with the test run and never touches the system
service. Tests isolate themselves by key prefix, not by flushing, so they can
share it. Tests that kill the server get their own (``restartable_redis``).

When the server cannot start, the fixture fails under ``CI=true`` (a CI run
must not turn green by skipping every Redis test) and skips elsewhere, with
the reason. ``scripts/ensure-redis`` installs the server on a fresh machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# The server must answer PING within this long after exec; a cold start takes
# a few milliseconds, so this only bounds a broken install.
SERVER_START_TIMEOUT_SECONDS = 10.0


class RedisServerUnavailable(RuntimeError):
    """redis-server is missing or did not come up."""


class RedisServer:
    """One redis-server process on a unix socket, startable and killable."""

    def __init__(self, socket_dir: Path, *, appendonly: bool = False) -> None:
        # sun_path is limited to ~107 bytes: keep the path short.
        self.socket_path = socket_dir / "redis.sock"
        self.log_path = socket_dir / "redis.log"
        # With appendonly, every write is in the AOF (in socket_dir) before its
        # reply is sent, so a restart on the same directory keeps it.
        self.appendonly = appendonly
        self.data_dir = socket_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._client: redis.Redis | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerUnavailable("redis-server is not on PATH (run scripts/ensure-redis)")
        command = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--dir", str(self.data_dir),
        ]  # fmt: skip
        if self.appendonly:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RedisServerUnavailable(
                    f"redis-server exited with {self._process.returncode}: {self._log_tail()}"
                )
            if self._answers_ping():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RedisServerUnavailable(
                    f"redis-server did not answer within {SERVER_START_TIMEOUT_SECONDS}s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown hooks, no goodbye to clients."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        self.socket_path.unlink(missing_ok=True)

    def client(self) -> redis.Redis:
        """A synchronous client for test assertions (inspecting keys and TTLs), closed on kill."""
        if self._client is None:
            self._client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=5)
        return self._client

    def _answers_ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        probe = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
        try:
            return bool(probe.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            probe.close()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def _start_or_give_up(server: RedisServer) -> None:
    try:
        server.start()
    except (RedisServerUnavailable, OSError) as exc:
        reason = f"cannot start a real redis-server for the Redis store tests: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def _short_socket_dir() -> tempfile.TemporaryDirectory[str]:
    # /tmp, not pytest's tmp_path: the latter can exceed the unix socket path limit.
    return tempfile.TemporaryDirectory(prefix="ctxr-", dir="/tmp")


@contextlib.contextmanager
def private_server(*, appendonly: bool = False) -> Iterator[RedisServer]:
    """A redis-server of our own on a short socket path, killed on exit."""
    with _short_socket_dir() as socket_dir:
        server = RedisServer(Path(socket_dir), appendonly=appendonly)
        _start_or_give_up(server)
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with private_server() as server:
        yield server


@pytest.fixture
def restartable_redis() -> Iterator[RedisServer]:
    """A private server that a test may kill and start again on the same socket."""
    with private_server() as server:
        yield server


@pytest.fixture
def key_prefix() -> str:
    """A fresh key prefix per test, so tests sharing the server never see each other."""
    return f"t{uuid.uuid4().hex[:12]}"
