"""Count the commands clients send to a real Redis, as the server sees them (MONITOR).

Commands a Lua script runs inside the server are reported by MONITOR as
coming from ``lua``: they are not round trips and are not counted. INFO
commandstats and ``total_commands_processed`` cannot tell the two apart (both
count a script's inner commands too), which is why this uses MONITOR.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

# MONITOR shows commands of every client, including the ones before the start
# marker that were still on the wire: each bound is a unique ECHO.
_MARKER = "ctxmigrate-round-trips-"
# The watcher thread must see the end marker within this long (a bound on a
# broken server, not a timing assertion).
_JOIN_SECONDS = 30.0


class RoundTrips:
    """The top-level commands seen between the markers, in order, by command name."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def __len__(self) -> int:
        return len(self.commands)


@contextmanager
def count_round_trips(socket_path: str) -> Iterator[RoundTrips]:
    """Collect the top-level commands sent by every client while the block runs."""
    token = uuid.uuid4().hex
    start, end = f"{_MARKER}{token}-start", f"{_MARKER}{token}-end"
    result = RoundTrips()
    listening = threading.Event()
    errors: list[BaseException] = []
    watcher_client = redis.Redis(unix_socket_path=socket_path, socket_timeout=_JOIN_SECONDS)
    control = redis.Redis(unix_socket_path=socket_path, socket_timeout=5)

    def watch() -> None:
        try:
            with watcher_client.monitor() as monitor:
                listening.set()
                started = False
                for command in monitor.listen():
                    text = command["command"]
                    if text == f"ECHO {start}":
                        started = True
                    elif text == f"ECHO {end}":
                        return
                    elif started and command["client_type"] != "lua":
                        result.commands.append(text.split(" ", 1)[0].upper())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
            listening.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert listening.wait(_JOIN_SECONDS)
    # monitor() returns after the server acknowledged MONITOR: every command
    # sent from here on is seen.
    control.echo(start)
    try:
        yield result
    finally:
        control.echo(end)
        thread.join(_JOIN_SECONDS)
        control.close()
        watcher_client.close()
    assert not thread.is_alive(), "MONITOR never saw the end marker"
    assert not errors, errors
