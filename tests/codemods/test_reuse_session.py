"""CTX001 reuse-session: inline no-op and transformed cases, through the real resolver."""

# The source samples are compared byte for byte; their long lines are part of them.
# ruff: noqa: E501

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rewrite.planning import FixResult, fix_sources
from ctxmigrate.codemods.rules.reuse_session import ReuseSessionCodemod

from .support import LEGACY_FACTORY_MODULE, InlineCases

CODEMOD = ReuseSessionCodemod()
CONFIG = Config(root=Path("."), factories=("app.dependencies.create_user_execution_context",))
PATH = "app/handlers/chat.py"
CASES = InlineCases(
    codemods=(CODEMOD,),
    config=CONFIG,
    path=PATH,
    legacy_modules=LEGACY_FACTORY_MODULE,
)
fix = CASES.fix
check_noop = CASES.check_noop
check_transformed = CASES.check_transformed


def only_reason(result: FixResult) -> str:
    assert len(result.skipped) == 1, result.skipped
    return result.skipped[0].message


# -- no-op cases: the boundary -------------------------------------------------


def test_noop_in_sync_function() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert result.skipped[0].category == "review"


def test_noop_in_lambda() -> None:
    check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            build = lambda: create_user_execution_context(user_id=user_id, thread_id=thread_id)
            return build()
        """
    )


def test_noop_at_module_level() -> None:
    check_noop(
        """\
        from app.dependencies import create_user_execution_context

        SYSTEM = create_user_execution_context(user_id="system", thread_id="boot")
        """
    )


def test_noop_in_class_body() -> None:
    check_noop(
        """\
        from app.dependencies import create_user_execution_context

        class Defaults:
            context = create_user_execution_context(user_id="system", thread_id="boot")
        """
    )


def test_noop_for_method_with_the_same_name() -> None:
    result = check_noop(
        """\
        async def handle(factory, user_id, thread_id):
            return factory.create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert result.skipped == []


def test_noop_when_name_is_shadowed_by_a_parameter() -> None:
    check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(create_user_execution_context, user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )


def test_noop_when_name_is_shadowed_by_a_local_assignment() -> None:
    check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(factory, user_id, thread_id):
            create_user_execution_context = factory.build
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )


@pytest.mark.parametrize("comment", ["# ctxmigrate: ignore[CTX001]", "# ctxmigrate: ignore"])
def test_noop_with_suppression_comment(comment: str) -> None:
    result = check_noop(
        f"""\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)  {comment}
        """
    )
    assert result.skipped[0].category == "keep"


def test_noop_in_test_file() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def test_fresh_context():
            assert create_user_execution_context(user_id="u", thread_id="t")
        """,
        path="tests/test_chat.py",
    )
    assert result.skipped[0].category == "keep"


def test_noop_when_passing_db_session() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id, db):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id, db_session=db)
        """
    )
    assert "passes a per-request db_session" in only_reason(result)


def test_noop_when_db_session_is_passed_positionally() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id, db):
            return create_user_execution_context(user_id, thread_id, None, db)
        """
    )
    assert "db_session" in only_reason(result)


def test_noop_with_double_star_kwargs() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(**kwargs):
            return create_user_execution_context(**kwargs)
        """
    )
    assert "cannot map *args/**kwargs to the session API" in only_reason(result)


def test_noop_with_star_args() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(*ids):
            return create_user_execution_context(*ids)
        """
    )
    assert "passes *args" in only_reason(result)


def test_noop_with_unknown_keyword() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id, trace=True)
        """
    )
    assert "unknown keyword argument 'trace'" in only_reason(result)


def test_noop_when_an_argument_is_passed_twice() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id, thread_id, user_id=user_id)
        """
    )
    assert "passes user_id twice" in only_reason(result)


def test_noop_when_thread_id_is_missing() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id):
            return create_user_execution_context(user_id=user_id)
        """
    )
    assert "does not pass thread_id" in only_reason(result)


def test_noop_with_too_many_positional_arguments() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(a, b, c, d, e, f):
            return create_user_execution_context(a, b, c, d, e, f)
        """
    )
    assert "positional arguments" in only_reason(result)


def test_noop_inside_generator_expression() -> None:
    result = check_noop(
        """\
        import asyncio
        from app.dependencies import create_user_execution_context

        async def broadcast(user_ids, thread_id, notify):
            await asyncio.gather(
                *(notify(create_user_execution_context(u, thread_id)) for u in user_ids)
            )
        """
    )
    assert "generator expression" in only_reason(result)


def test_noop_when_factory_is_passed_as_a_value() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(executor):
            return await executor.run(create_user_execution_context)
        """
    )
    assert result.skipped[0].category == "review"


def test_noop_for_self_target_outside_a_method() -> None:
    config = Config(
        root=Path("."),
        factories=CONFIG.factories,
        session_target="self.session_manager.get_or_create_user_session",
    )
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        config,
    )
    assert "not inside a method" in only_reason(result)


def test_noop_when_target_name_is_bound_to_something_else() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context
        from app.sessions import get_or_create_user_session

        async def handle(user_id, thread_id):
            get_or_create_user_session(user_id)
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert "get_or_create_user_session already means something else here" in only_reason(result)
    assert result.skipped[0].category == "review"


def test_noop_when_target_name_is_a_parameter_of_the_function() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id, get_or_create_user_session=None):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert "get_or_create_user_session already means something else here" in only_reason(result)


def test_target_name_local_to_another_function_or_a_class_does_not_clash() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        class Sessions:
            def get_or_create_user_session(self):
                return None

        def helper():
            get_or_create_user_session = None
            return get_or_create_user_session

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        class Sessions:
            def get_or_create_user_session(self):
                return None

        def helper():
            get_or_create_user_session = None
            return get_or_create_user_session

        async def handle(user_id, thread_id):
            return await get_or_create_user_session(user_id=user_id, thread_id=thread_id)
        """,
    )


def test_target_name_already_imported_from_the_shim_is_reused() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(user_id, thread_id):
            return await get_or_create_user_session(user_id=user_id, thread_id=thread_id)
        """,
    )


# -- transformed cases ---------------------------------------------------------


def test_keyword_call_in_async_def() -> None:
    result = check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id, run_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id, run_id=run_id)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(user_id, thread_id, run_id):
            return await get_or_create_user_session(user_id=user_id, thread_id=thread_id, run_id=run_id)
        """,
    )
    assert [(f.rule, f.line, f.category) for f in result.applied] == [("CTX001", 4, "rewrite")]


def test_keyword_order_is_kept() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return create_user_execution_context(thread_id=t, user_id=u)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return await get_or_create_user_session(thread_id=t, user_id=u)
        """,
    )


def test_positional_arguments_become_keywords() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t, r, c):
            return create_user_execution_context(u, t, r, websocket_connection_id=c)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t, r, c):
            return await get_or_create_user_session(user_id=u, thread_id=t, run_id=r, websocket_connection_id=c)
        """,
    )


def test_positional_mapping_uses_the_discovered_signature() -> None:
    # Without configured qualnames the definition is discovered in the tree,
    # and its own parameter order decides the keywords.
    sources = {
        "app/dependencies.py": textwrap.dedent(
            """\
            def create_user_execution_context(thread_id, user_id, run_id=None):
                return (thread_id, user_id, run_id)
            """
        ).encode(),
        PATH: textwrap.dedent(
            """\
            from app.dependencies import create_user_execution_context

            async def handle(u, t):
                return create_user_execution_context(t, u)
            """
        ).encode(),
    }
    results = fix_sources(sources, Config(root=Path(".")), [CODEMOD])
    fixed = results[PATH].fixed
    assert fixed is not None
    assert b"await get_or_create_user_session(thread_id=t, user_id=u)" in fixed


def test_alias_import() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context as make

        async def handle(u, t):
            return make(user_id=u, thread_id=t)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )


def test_module_attribute_call_keeps_a_still_used_module_import() -> None:
    check_transformed(
        """\
        from app import dependencies as deps

        async def handle(u, t):
            return deps.create_user_execution_context(user_id=u, thread_id=t)

        NAME = deps.__name__
        """,
        """\
        from app import dependencies as deps
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)

        NAME = deps.__name__
        """,
    )


def test_dotted_module_attribute_call_drops_the_unused_module_import() -> None:
    check_transformed(
        """\
        import app.dependencies

        async def handle(u, t):
            return app.dependencies.create_user_execution_context(user_id=u, thread_id=t)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )


def test_nested_async_def() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def outer(u):
            async def inner(t):
                return create_user_execution_context(user_id=u, thread_id=t)
            return inner
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def outer(u):
            async def inner(t):
                return await get_or_create_user_session(user_id=u, thread_id=t)
            return inner
        """,
    )


def test_argument_of_another_call() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(registry, u, t):
            registry.add(create_user_execution_context(user_id=u, thread_id=t), primary=True)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(registry, u, t):
            registry.add(await get_or_create_user_session(user_id=u, thread_id=t), primary=True)
        """,
    )


@pytest.mark.parametrize(
    ("use", "rewritten"),
    [
        (".thread_id", "(await get_or_create_user_session(user_id=u, thread_id=t)).thread_id"),
        ("['k']", "(await get_or_create_user_session(user_id=u, thread_id=t))['k']"),
        (
            ".update_activity()",
            "(await get_or_create_user_session(user_id=u, thread_id=t)).update_activity()",
        ),
    ],
)
def test_result_used_as_primary_gets_parentheses(use: str, rewritten: str) -> None:
    check_transformed(
        f"""\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t){use}
        """,
        f"""\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return {rewritten}
        """,
    )


def test_existing_parentheses_are_kept_not_doubled() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return (create_user_execution_context(user_id=u, thread_id=t)).run_id
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return (await get_or_create_user_session(user_id=u, thread_id=t)).run_id
        """,
    )


def test_multi_line_call_keeps_its_layout_and_comments() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            context = create_user_execution_context(
                u,  # who
                t,  # which conversation
            )
            return context
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            context = await get_or_create_user_session(
                user_id=u,  # who
                thread_id=t,  # which conversation
            )
            return context
        """,
    )


def test_list_comprehension_in_async_def_is_rewritten() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, threads):
            return [create_user_execution_context(user_id=u, thread_id=t) for t in threads]
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, threads):
            return [await get_or_create_user_session(user_id=u, thread_id=t) for t in threads]
        """,
    )


def test_configured_expression_target_needs_no_import() -> None:
    config = Config(
        root=Path("."),
        factories=CONFIG.factories,
        session_target="self.session_manager.get_or_create_user_session",
    )
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        class Handler:
            async def handle(self, u, t):
                return create_user_execution_context(u, t)
        """,
        """\
        class Handler:
            async def handle(self, u, t):
                return await self.session_manager.get_or_create_user_session(user_id=u, thread_id=t)
        """,
        config,
    )


def test_configured_module_target_is_imported_from_there() -> None:
    config = Config(
        root=Path("."),
        factories=CONFIG.factories,
        session_target="app.sessions.get_session",
    )
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return create_user_execution_context(u, t)
        """,
        """\
        from app.sessions import get_session

        async def handle(u, t):
            return await get_session(user_id=u, thread_id=t)
        """,
        config,
    )


def test_existing_shim_import_is_reused() -> None:
    check_transformed(
        """\
        from ctxmigrate.shim import get_or_create_user_session
        from app.dependencies import create_user_execution_context

        async def resume(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)

        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def resume(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )


def test_old_import_stays_while_a_review_site_uses_it() -> None:
    result = check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)

        def legacy(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """,
        """\
        from app.dependencies import create_user_execution_context
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)

        def legacy(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """,
    )
    assert [f.line for f in result.skipped] == [7]


def test_old_import_kept_with_a_note_when_a_string_names_it() -> None:
    result = check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        PATCH = "app.handlers.chat.create_user_execution_context"

        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """,
        """\
        from app.dependencies import create_user_execution_context
        from ctxmigrate.shim import get_or_create_user_session

        PATCH = "app.handlers.chat.create_user_execution_context"

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )
    assert len(result.notes) == 1
    assert "app.handlers.chat.create_user_execution_context" in result.notes[0]
    assert "line 3" in result.notes[0]


def test_comments_above_a_removed_import_stay() -> None:
    check_transformed(
        """\
        import os

        # session handling
        from app.dependencies import create_user_execution_context
        from app.other import helper

        async def handle(u, t):
            return helper(create_user_execution_context(user_id=u, thread_id=os.sep))
        """,
        """\
        import os

        # session handling
        from app.other import helper
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return helper(await get_or_create_user_session(user_id=u, thread_id=os.sep))
        """,
    )


def test_conditional_import_is_left_in_place() -> None:
    check_transformed(
        """\
        import sys

        if sys.version_info >= (3, 11):
            from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """,
        """\
        import sys
        from ctxmigrate.shim import get_or_create_user_session

        if sys.version_info >= (3, 11):
            from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )


def test_rewrite_finding_carries_the_replacement_text() -> None:
    result = fix(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t):
            return create_user_execution_context(u, t)
        """
    )
    assert [f.fix for f in result.applied] == [
        "await get_or_create_user_session(user_id=u, thread_id=t)"
    ]


def test_relative_import_is_removed_when_unused() -> None:
    check_transformed(
        """\
        from ..dependencies import create_user_execution_context as make

        async def handle(u, t):
            return make(user_id=u, thread_id=t)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )


def test_name_exported_in_dunder_all_keeps_its_import() -> None:
    result = check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        __all__ = ["create_user_execution_context", "handle"]

        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """,
        """\
        from app.dependencies import create_user_execution_context
        from ctxmigrate.shim import get_or_create_user_session

        __all__ = ["create_user_execution_context", "handle"]

        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """,
    )
    assert "line 3" in result.notes[0]


def test_factory_defined_in_the_same_module_stays_defined() -> None:
    source = textwrap.dedent(
        """\
        \"\"\"The legacy factory and its caller in one module.\"\"\"


        def create_user_execution_context(user_id, thread_id, run_id=None):
            return (user_id, thread_id, run_id)


        async def handle(u, t):
            return create_user_execution_context(u, t)
        """
    )
    results = fix_sources(
        {"app/dependencies.py": source.encode()}, Config(root=Path(".")), [CODEMOD]
    )
    fixed = results["app/dependencies.py"].fixed
    assert fixed is not None
    assert fixed.decode() == textwrap.dedent(
        """\
        \"\"\"The legacy factory and its caller in one module.\"\"\"
        from ctxmigrate.shim import get_or_create_user_session


        def create_user_execution_context(user_id, thread_id, run_id=None):
            return (user_id, thread_id, run_id)


        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """
    )


# -- an async legacy factory: the call is already awaited --------------------------


def test_awaited_legacy_call_reuses_the_existing_await() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            first = await create_user_execution_context(user_id=user_id, thread_id=thread_id)
            second = await (create_user_execution_context(user_id, thread_id))
            third = await(create_user_execution_context(user_id, thread_id))
            return first, second, third
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(user_id, thread_id):
            first = await get_or_create_user_session(user_id=user_id, thread_id=thread_id)
            second = await (get_or_create_user_session(user_id=user_id, thread_id=thread_id))
            third = await(get_or_create_user_session(user_id=user_id, thread_id=thread_id))
            return first, second, third
        """,
    )


def test_awaited_legacy_call_reports_the_fix_without_a_second_await() -> None:
    result = check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            return await create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        """\
        from ctxmigrate.shim import get_or_create_user_session

        async def handle(user_id, thread_id):
            return await get_or_create_user_session(user_id=user_id, thread_id=thread_id)
        """,
    )
    (applied,) = result.applied
    assert applied.fix == "get_or_create_user_session(user_id=user_id, thread_id=thread_id)"


# -- a self./cls. target needs the method's receiver at the site --------------------

SELF_TARGET = Config(
    root=Path("."),
    factories=("app.dependencies.create_user_execution_context",),
    session_target="self.session_manager.get_or_create_user_session",
)


@pytest.mark.parametrize(
    "method",
    [
        "@staticmethod\n    async def handle(u, t):",
        "async def handle(this, u, t):",
        "async def handle(*args):",
        "async def handle(self, u, t):\n        self = None",
        "@classmethod\n    async def handle(cls, u, t):",
    ],
    ids=["staticmethod", "other-first-parameter", "no-first-parameter", "rebound", "classmethod"],
)
def test_noop_for_self_target_where_self_is_not_the_receiver(method: str) -> None:
    source = (
        "from app.dependencies import create_user_execution_context\n\n"
        "class Handler:\n"
        f"    {method}\n"
        "        return create_user_execution_context(user_id=1, thread_id=2)\n"
    )
    result = check_noop(source, SELF_TARGET)
    assert "not inside a method whose receiver is self" in only_reason(result)


def test_noop_for_self_target_in_a_nested_function_with_its_own_self() -> None:
    result = check_noop(
        """\
        from app.dependencies import create_user_execution_context

        class Handler:
            async def handle(self, u, t):
                async def inner(self):
                    return create_user_execution_context(user_id=u, thread_id=t)
                return inner
        """,
        SELF_TARGET,
    )
    assert "not inside a method whose receiver is self" in only_reason(result)


def test_self_target_in_a_closure_of_the_method_uses_the_method_receiver() -> None:
    check_transformed(
        """\
        from app.dependencies import create_user_execution_context

        class Handler:
            async def handle(self, u, t):
                async def inner():
                    return create_user_execution_context(user_id=u, thread_id=t)
                return await inner()
        """,
        """\
        class Handler:
            async def handle(self, u, t):
                async def inner():
                    return await self.session_manager.get_or_create_user_session(user_id=u, thread_id=t)
                return await inner()
        """,
        SELF_TARGET,
    )


def test_noop_when_an_async_def_factory_is_called_without_await() -> None:
    # ``coroutine = factory(...)`` awaited later: adding ``await`` here would
    # hand the later ``await`` a context instead of a coroutine.
    modules = {
        "app/dependencies.py": b"async def create_user_execution_context(user_id, thread_id):\n"
        b"    return (user_id, thread_id)\n",
    }
    source = textwrap.dedent(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            pending = create_user_execution_context(user_id=user_id, thread_id=thread_id)
            return await pending
        """
    ).encode()
    result = fix_sources({PATH: source, **modules}, CONFIG, [CODEMOD])[PATH]
    assert result.fixed is None
    [finding] = result.skipped
    assert finding.category == "review"
    assert finding.message.startswith(
        "not awaited: create_user_execution_context is an async def, so this call makes a coroutine"
    )


def test_noop_for_a_factory_declared_with_star_args_says_where_the_arguments_go() -> None:
    modules = {
        "app/dependencies.py": b"def create_user_execution_context(func, *args, **kwargs):\n"
        b"    return func(*args, **kwargs)\n",
    }
    source = textwrap.dedent(
        """\
        from app.dependencies import create_user_execution_context

        async def handle(build, user_id, thread_id):
            return create_user_execution_context(build, user_id, thread_id)
        """
    ).encode()
    result = fix_sources({PATH: source, **modules}, CONFIG, [CODEMOD])[PATH]
    assert result.fixed is None
    [finding] = result.skipped
    assert finding.message == (
        "passes 3 positional arguments; the legacy signature (func, *args, **kwargs) "
        "names 1 and collects the rest in *args, which the session API cannot take"
    )
