"""A real deployment for the tests: redis-server, uvicorn with worker processes, websockets.

Each test gets its own redis-server (``tests/redis/conftest.py``; with AOF where
the test restarts it) and its own chat service (``examples/chat_service``),
started with ``--port 0`` on 127.0.0.1 and stopped, with all its workers, when
the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis.conftest import RedisServer, private_server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with private_server() as server:
        yield server


@pytest.fixture
def aof_redis() -> Iterator[RedisServer]:
    """A server with appendonly (fsync always): a restart keeps every acknowledged write."""
    with private_server(appendonly=True) as server:
        yield server
