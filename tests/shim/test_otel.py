"""instrument_sessions: the same instruments for OpenTelemetry, read through the real SDK."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ctxmigrate.shim import (
    InMemorySessionStore,
    UserSessionManager,
    legacy_observer,
    observe_legacy,
)
from ctxmigrate.shim.otel import instrument_sessions
from ctxmigrate.shim.store_metrics import measured_store


@pytest.fixture(autouse=True)
def fresh_observer() -> Iterator[None]:
    legacy_observer().reset()
    yield
    legacy_observer().reset()


class Ctx:
    def __init__(self, user_id: str, thread_id: str, run_id: str | None = None) -> None:
        self.user_id, self.thread_id, self.run_id = user_id, thread_id, run_id


@observe_legacy(api="app.factory")
def factory(user_id: str, thread_id: str, run_id: str | None = None) -> Ctx:
    return Ctx(user_id, thread_id, run_id)


def read(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    data = reader.get_metrics_data()
    assert data is not None
    values: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    values[key] = point.value  # type: ignore[union-attr]
    return values


def test_instruments_report_sessions_legacy_calls_store_and_leaks() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    manager = UserSessionManager(factory=factory, store=measured_store(InMemorySessionStore()))
    instrument_sessions(manager, meter_provider=provider, leak_threshold=1)

    async def scenario() -> None:
        await manager.get_or_create_user_session("user-id-3301", "thread-id-7702")
        await manager.get_or_create_user_session("user-id-3301", "thread-id-7702")
        await manager.end_session("user-id-3301", "thread-id-7702")

    asyncio.run(scenario())
    kept = [factory("u", "t") for _ in range(3)]
    values = read(reader)
    assert values[("ctxmigrate.sessions.active", ())] == 0
    assert values[("ctxmigrate.sessions.created", ())] == 1
    assert values[("ctxmigrate.sessions.reused", ())] == 1
    assert values[("ctxmigrate.sessions.removed", (("reason", "ended"),))] == 1
    assert values[("ctxmigrate.legacy.calls", (("api", "app.factory"),))] == 3
    assert values[("ctxmigrate.legacy.rebuilt", (("api", "app.factory"),))] == 2
    assert values[("ctxmigrate.legacy.live_objects", (("api", "app.factory"),))] == 3
    assert values[("ctxmigrate.contexts.outside_sessions", ())] == 3
    assert values[("ctxmigrate.context_leak", ())] == 1
    assert values[("ctxmigrate.store.operations", (("operation", "get_or_create"),))] == 1
    assert values[("ctxmigrate.store.operations", (("operation", "delete"),))] == 1
    assert values[("ctxmigrate.store.operation.errors", (("operation", "delete"),))] == 0
    assert values[("ctxmigrate.store.operation.duration", (("operation", "delete"),))] > 0
    attributes = {name for (_metric, attrs) in values for name, _value in attrs}
    assert attributes == {"reason", "api", "operation"}
    assert not any("3301" in str(key) or "7702" in str(key) for key in values)
    del kept
    assert read(reader)[("ctxmigrate.context_leak", ())] == 0


def test_importing_the_instruments_imports_opentelemetry() -> None:
    # tests/shim/test_configuration.py checks that `import ctxmigrate.shim` does not.
    script = "import sys, ctxmigrate.shim.otel; print('opentelemetry' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "True"
