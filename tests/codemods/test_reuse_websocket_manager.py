"""CTX003 reuse-websocket-manager: inline no-op and transformed cases, through the real resolver."""

# The source samples are compared byte for byte; their long lines are part of them.
# ruff: noqa: E501

from __future__ import annotations

import textwrap
from pathlib import Path

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rewrite.planning import fix_sources
from ctxmigrate.codemods.rules.reuse_session import ReuseSessionCodemod
from ctxmigrate.codemods.rules.reuse_websocket_manager import ReuseWebSocketManagerCodemod

from .support import LEGACY_MODULES, InlineCases

CODEMOD = ReuseWebSocketManagerCodemod()
CONFIG = Config(
    root=Path("."),
    factories=("app.dependencies.create_user_execution_context",),
    manager_factories=("app.websocket.create_websocket_manager",),
)
PATH = "app/handlers/agent.py"
CASES = InlineCases(codemods=(CODEMOD,), config=CONFIG, path=PATH, legacy_modules=LEGACY_MODULES)
fix = CASES.fix
check_noop = CASES.check_noop
check_transformed = CASES.check_transformed


# -- no-op cases -----------------------------------------------------------------


def test_noop_for_method_with_the_same_name() -> None:
    result = check_noop(
        """\
        async def handle(pool, ctx):
            return pool.create_websocket_manager(ctx)
        """
    )
    assert result.skipped == []


def test_noop_when_name_is_shadowed() -> None:
    check_noop(
        """\
        from app.websocket import create_websocket_manager

        async def handle(create_websocket_manager, ctx):
            return create_websocket_manager(ctx)
        """
    )


def test_noop_with_bare_suppression_comment() -> None:
    result = check_noop(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx):
            return create_websocket_manager(ctx)  # ctxmigrate: ignore
        """
    )
    assert [f.category for f in result.skipped] == ["keep"]


def test_noop_for_already_migrated_call() -> None:
    result = check_noop(
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context

        async def handle(ctx):
            return get_manager_for_context(ctx, factory=create_websocket_manager)
        """
    )
    assert result.skipped == []


def test_noop_with_extra_arguments() -> None:
    result = check_noop(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx, loop):
            return create_websocket_manager(ctx, loop)
        """
    )
    [finding] = result.skipped
    assert finding.category == "review"
    assert finding.message == (
        "passes 2 positional arguments; the legacy signature (user_context) takes at most 1"
    )


def test_noop_with_extra_keyword_arguments_of_a_wider_factory() -> None:
    wider = {
        **LEGACY_MODULES,
        "app/websocket.py": b"def create_websocket_manager(user_context, loop=None):\n"
        b"    return user_context\n",
    }
    source = textwrap.dedent(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx, loop):
            return create_websocket_manager(ctx, loop=loop)
        """
    ).encode()
    result = fix_sources({PATH: source, **wider}, CONFIG, [CODEMOD])[PATH]
    assert result.fixed is None
    [finding] = result.skipped
    assert "passes loop besides the context" in finding.message


def test_noop_with_double_star_kwargs() -> None:
    result = check_noop(
        """\
        from app.websocket import create_websocket_manager

        async def handle(**kwargs):
            return create_websocket_manager(**kwargs)
        """
    )
    assert "cannot map *args/**kwargs" in result.skipped[0].message


def test_noop_without_a_context() -> None:
    result = check_noop(
        """\
        from app.websocket import create_websocket_manager

        async def handle():
            return create_websocket_manager()
        """
    )
    assert "passes no context" in result.skipped[0].message


def test_noop_in_test_file() -> None:
    source = textwrap.dedent(
        """\
        from app.websocket import create_websocket_manager

        def test_manager(ctx):
            assert create_websocket_manager(ctx)
        """
    ).encode()
    path = "tests/test_manager.py"
    result = fix_sources({path: source, **LEGACY_MODULES}, CONFIG, [CODEMOD])[path]
    assert result.fixed is None
    assert [f.category for f in result.skipped] == ["keep"]


# -- transformed cases -------------------------------------------------------------


def test_call_in_async_def_passes_the_factory_as_written() -> None:
    check_transformed(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx):
            manager = create_websocket_manager(ctx)
            return manager
        """,
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context

        async def handle(ctx):
            manager = get_manager_for_context(ctx, factory=create_websocket_manager)
            return manager
        """,
    )


def test_sync_function_is_rewritten_because_nothing_is_awaited() -> None:
    check_transformed(
        """\
        from app.websocket import create_websocket_manager

        def handle(ctx):
            return create_websocket_manager(ctx)
        """,
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context

        def handle(ctx):
            return get_manager_for_context(ctx, factory=create_websocket_manager)
        """,
    )


def test_alias_and_module_attribute_spellings_are_kept_as_factory() -> None:
    check_transformed(
        """\
        from app import websocket as ws
        from app.websocket import create_websocket_manager as new_manager

        async def handle(ctx):
            return new_manager(ctx), ws.create_websocket_manager(ctx)
        """,
        """\
        from app import websocket as ws
        from app.websocket import create_websocket_manager as new_manager
        from ctxmigrate.shim import get_manager_for_context

        async def handle(ctx):
            return get_manager_for_context(ctx, factory=new_manager), get_manager_for_context(ctx, factory=ws.create_websocket_manager)
        """,
    )


def test_keyword_context_becomes_positional() -> None:
    check_transformed(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx):
            return create_websocket_manager(user_context=ctx)
        """,
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context

        async def handle(ctx):
            return get_manager_for_context(ctx, factory=create_websocket_manager)
        """,
    )


def test_multi_line_call_stays_multi_line() -> None:
    check_transformed(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx):
            return create_websocket_manager(
                ctx,  # the session's context
            )
        """,
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context

        async def handle(ctx):
            return get_manager_for_context(
                ctx,
                factory=create_websocket_manager,  # the session's context
            )
        """,
    )


def test_attribute_access_on_result_needs_no_parentheses() -> None:
    check_transformed(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx, payload):
            await create_websocket_manager(ctx).send_to_user(payload)
        """,
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context

        async def handle(ctx, payload):
            await get_manager_for_context(ctx, factory=create_websocket_manager).send_to_user(payload)
        """,
    )


def test_nested_session_call_is_rewritten_inside_the_manager_call() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context
        from app.websocket import create_websocket_manager

        async def handle(u, t):
            return create_websocket_manager(create_user_execution_context(user_id=u, thread_id=t))
        """,
        """\
        from app.websocket import create_websocket_manager
        from ctxmigrate.shim import get_manager_for_context, get_or_create_user_session

        async def handle(u, t):
            return get_manager_for_context(await get_or_create_user_session(user_id=u, thread_id=t), factory=create_websocket_manager)
        """,
        codemods=(ReuseSessionCodemod(), CODEMOD),
    )


def test_noop_when_the_manager_factory_is_awaited() -> None:
    result = check_noop(
        """\
        from app.websocket import create_websocket_manager

        async def handle(ctx):
            return await create_websocket_manager(ctx)
        """
    )
    (skipped,) = result.skipped
    assert skipped.category == "review"
    assert skipped.message == (
        "awaited: create_websocket_manager is async here, and "
        "get_manager_for_context calls its factory synchronously"
    )


ASYNC_MANAGER_MODULES = {
    **LEGACY_MODULES,
    "app/manager.py": b"async def create_websocket_manager(user_context):\n"
    b"    return user_context\n",
}
ASYNC_MANAGER_CONFIG = Config(
    root=Path("."), manager_factories=("app.manager.create_websocket_manager",)
)


def test_noop_when_an_async_def_manager_factory_is_called_without_await() -> None:
    # The call makes a coroutine; get_manager_for_context would keep that
    # coroutine as the session's manager.
    source = textwrap.dedent(
        """\
        from app.manager import create_websocket_manager

        async def main(ctx):
            manager = create_websocket_manager(ctx)
            return await manager
        """
    ).encode()
    result = fix_sources({PATH: source, **ASYNC_MANAGER_MODULES}, ASYNC_MANAGER_CONFIG, [CODEMOD])[
        PATH
    ]
    assert result.fixed is None
    [finding] = result.skipped
    assert finding.category == "review"
    assert finding.message == (
        "not awaited: create_websocket_manager is an async def, so this call makes a "
        "coroutine; get_manager_for_context would store that coroutine as the session's manager"
    )


def test_noop_for_an_unawaited_async_def_manager_factory_found_without_configuration() -> None:
    source = textwrap.dedent(
        """\
        from app.manager import create_websocket_manager

        async def main(ctx):
            return create_websocket_manager(ctx)
        """
    ).encode()
    modules = {"app/manager.py": ASYNC_MANAGER_MODULES["app/manager.py"]}
    result = fix_sources({PATH: source, **modules}, Config(root=Path(".")), [CODEMOD])[PATH]
    assert result.fixed is None
    assert [finding.category for finding in result.skipped] == ["review"]
