"""The deprecated drop-in create_user_execution_context: observe and reuse modes."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import pytest

from ctxmigrate.shim import (
    ContextObserver,
    SyncAccessError,
    UserSessionManager,
    configure,
    create_user_execution_context,
    current_observer,
    get_or_create_user_session,
)
from ctxmigrate.shim.legacy_observer import CallSite

from .support import AppContext, GatedAsyncFactory, yield_until

ignore_deprecation = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_drop_in_warns_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning, match="get_or_create_user_session") as caught:
        create_user_execution_context("u", "t")
    assert caught[0].filename == __file__


@ignore_deprecation
def test_observe_mode_builds_a_new_context_per_call_as_before() -> None:
    first = create_user_execution_context("u", "t", run_id="r1")
    second = create_user_execution_context("u", "t", run_id="r2")
    assert first is not second
    assert (first.run_id, second.run_id) == ("r1", "r2")


@ignore_deprecation
def test_observe_mode_records_rebuilds_per_call_site() -> None:
    def handle_message(thread_id: str) -> Any:
        return create_user_execution_context(user_id="user-secret", thread_id=thread_id)

    handle_message("thread-secret")
    handle_message("thread-secret")
    handle_message("thread-secret")
    handle_message("another-thread")
    report = current_observer().report()
    assert report["contexts_built"] == 4
    assert report["rebuilt"] == 2
    assert report["conversations"] == 2
    assert report["max_contexts_per_conversation"] == 3
    (site,) = report["call_sites"]
    assert site["path"] == __file__
    assert site["function"].endswith("handle_message")
    assert (site["contexts_built"], site["rebuilt"]) == (4, 2)


@ignore_deprecation
def test_observation_json_never_contains_ids() -> None:
    create_user_execution_context("user-secret", "thread-secret")
    create_user_execution_context("user-secret", "thread-secret")
    exported = current_observer().to_json()
    assert json.loads(exported)["version"] == 1
    assert "secret" not in exported


def test_observer_forgets_the_oldest_conversations_beyond_its_bound() -> None:
    observer = ContextObserver(max_conversations=2)
    site = CallSite("app.py", 1, "handler")
    for thread_id in ("t1", "t2", "t3"):
        observer.record("u", thread_id, site)
    report = observer.report()
    assert (report["conversations"], report["conversations_forgotten"]) == (2, 1)


@ignore_deprecation
def test_reuse_mode_returns_the_session_context_from_sync_code() -> None:
    configure(mode="reuse")
    first = create_user_execution_context("u", "t", run_id="r1")
    second = create_user_execution_context("u", "t", run_id="r2")
    assert first is second
    assert second.run_id == "r1"

    async def from_async_code() -> Any:
        return await get_or_create_user_session("u", "t")

    assert asyncio.run(from_async_code()) is first


@ignore_deprecation
def test_reuse_mode_keeps_a_per_request_db_session_out_of_shared_sessions() -> None:
    configure(UserSessionManager(factory=AppContext), mode="reuse")
    shared = create_user_execution_context("u", "t")
    with_db = create_user_execution_context("u", "t", db_session="db-1")
    assert with_db is not shared
    assert with_db.db_session == "db-1"
    assert current_observer().report()["call_sites"][0]["with_db_session"] == 1


@ignore_deprecation
def test_reuse_mode_with_async_factory_raises_and_leaves_nothing() -> None:
    async def create_app_context(**ids: str) -> AppContext:
        return AppContext(**ids)

    manager = UserSessionManager(factory=create_app_context)
    configure(manager, mode="reuse")
    with pytest.raises(SyncAccessError, match="factory is async"):
        create_user_execution_context("u", "t")
    assert len(manager.store) == 0  # type: ignore[arg-type]
    assert manager.stats().active == 0


@ignore_deprecation
def test_reuse_mode_refuses_while_async_code_creates_the_same_session() -> None:
    factory = GatedAsyncFactory()
    manager = UserSessionManager(factory=factory)
    configure(manager, mode="reuse")

    async def scenario() -> None:
        creating = asyncio.create_task(manager.get_or_create_user_session("u", "t"))
        await yield_until(lambda: factory.calls == 1)
        with pytest.raises(SyncAccessError, match="being created"):
            create_user_execution_context("u", "t")
        factory.open()
        await creating

    asyncio.run(scenario())


def test_configure_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="observe"):
        configure(mode="share")  # type: ignore[arg-type]


def test_drop_in_keeps_the_legacy_signature() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = create_user_execution_context(
            user_id="u", thread_id="t", run_id="r", db_session=None, websocket_connection_id="ws"
        )
    assert (context.user_id, context.thread_id, context.run_id) == ("u", "t", "r")
    assert context.websocket_connection_id == "ws"


@ignore_deprecation
@pytest.mark.parametrize("mode", ["observe", "reuse"])
def test_db_session_on_the_default_manager_gets_a_fresh_context(mode: Any) -> None:
    configure(mode=mode)  # no manager configured: the default one, without a factory
    shared = create_user_execution_context("u", "t")
    with_db = create_user_execution_context("u", "t", db_session="db-1")
    assert with_db is not shared
    assert (with_db.user_id, with_db.thread_id) == ("u", "t")
    sites = current_observer().report()["call_sites"]
    assert sum(site["with_db_session"] for site in sites) == 1
