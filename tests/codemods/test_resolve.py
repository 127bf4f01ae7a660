"""Resolution: which names refer to the legacy targets, through the real engine.

Each case is a small project in memory: ``pkg/deps.py`` defines the legacy
factory, ``pkg/handler.py`` is the module under test. No-op cases come first:
they mark the boundary.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ctxmigrate.codemods.analysis.memory import analyze_sources
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import Finding

DEPS = """\
def create_user_execution_context(user_id, thread_id, run_id=None, db_session=None,
                                  websocket_connection_id=None):
    return object()


def create_websocket_manager(context):
    return object()
"""
CONTEXT = """\
class WebSocketContext:
    @classmethod
    def create_for_user(cls, websocket, user_id, thread_id, run_id, connection_id):
        return cls()
"""
HANDLER = "pkg/handler.py"
CONFIG = Config(root=Path("/project"))


def project(handler: str, **extra: str) -> dict[str, bytes]:
    files = {
        "pkg/__init__.py": "",
        "pkg/deps.py": DEPS,
        "pkg/context.py": CONTEXT,
        HANDLER: textwrap.dedent(handler),
    }
    files.update(
        {path.replace("__", "/") + ".py": textwrap.dedent(text) for path, text in extra.items()}
    )
    return {path: text.encode() for path, text in files.items()}


def findings(
    handler: str, config: Config = CONFIG, path: str = HANDLER, **extra: str
) -> list[Finding]:
    analyses = analyze_sources(project(handler, **extra), config)
    return [f for f in analyses[path].findings if f.rule in ("CTX001", "CTX002", "CTX003")]


def sites(
    handler: str, config: Config = CONFIG, path: str = HANDLER, **extra: str
) -> list[tuple[str, str, int]]:
    return [(f.rule, f.category, f.line) for f in findings(handler, config, path, **extra)]


# -- no-op cases -------------------------------------------------------------------


def test_noop_when_name_is_shadowed_by_parameter() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        async def handle(user_id, thread_id, create_user_execution_context):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
        )
        == []
    )


def test_noop_when_name_is_shadowed_by_local_assignment_anywhere_in_function() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        async def handle(user_id, thread_id, factory):
            context = create_user_execution_context(user_id=user_id, thread_id=thread_id)
            create_user_execution_context = factory.make
            return context
        """
        )
        == []
    )


def test_noop_for_method_calls_sharing_the_name() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        class AgentFactory:
            async def create_user_execution_context(self, user_id, thread_id):
                return None

            async def build(self, factory, user_id, thread_id):
                await self.create_user_execution_context(user_id, thread_id)
                await factory.create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
        )
        == []
    )


def test_noop_for_same_name_function_of_another_module() -> None:
    config = Config(root=Path("/project"), factories=("pkg.deps.create_user_execution_context",))
    assert (
        sites(
            """\
        from pkg.agents import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
            config,
            pkg__agents="def create_user_execution_context(user_id, thread_id):\n    return 1\n",
        )
        == []
    )


def test_noop_for_comments_and_strings() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        async def handle(user_id, thread_id):
            # context = create_user_execution_context(user_id=user_id, thread_id=thread_id)
            note = "create_user_execution_context is deprecated"
            return note
        """
        )
        == []
    )


def test_noop_for_loop_with_except_walrus_and_comprehension_targets() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        async def loop(factories, user_id):
            for create_user_execution_context in factories:
                create_user_execution_context(user_id=user_id, thread_id="t")

        async def with_target(opener, user_id):
            with opener() as create_user_execution_context:
                create_user_execution_context(user_id=user_id, thread_id="t")

        async def except_target(user_id):
            try:
                pass
            except Exception as create_user_execution_context:
                create_user_execution_context(user_id=user_id, thread_id="t")

        async def walrus(pick, user_id):
            if (create_user_execution_context := pick()):
                create_user_execution_context(user_id=user_id, thread_id="t")

        async def comprehension(factories, user_id):
            return [create_user_execution_context(user_id=user_id, thread_id="t")
                    for create_user_execution_context in factories]
        """
        )
        == []
    )


def test_noop_when_a_closure_variable_shadows() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        def outer(factory):
            create_user_execution_context = factory

            async def inner(user_id, thread_id):
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)

            return inner
        """
        )
        == []
    )


def test_noop_when_a_local_def_shadows() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        async def handle(user_id, thread_id):
            def create_user_execution_context(**kwargs):
                return kwargs

            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
        )
        == []
    )


def test_noop_for_websocket_context_annotations_isinstance_subclass_and_construction() -> None:
    assert (
        sites(
            """\
        from pkg.context import WebSocketContext

        class Special(WebSocketContext):
            pass

        async def handle(context: WebSocketContext) -> WebSocketContext:
            if isinstance(context, WebSocketContext):
                return WebSocketContext()
            return context
        """
        )
        == []
    )


def test_noop_when_migrated_factory_is_passed_to_the_manager_target() -> None:
    assert (
        sites(
            """\
        from ctxmigrate.shim import get_manager_for_context
        from pkg.deps import create_websocket_manager

        def manager(context):
            return get_manager_for_context(context, factory=create_websocket_manager)
        """
        )
        == []
    )


def test_noop_for_an_unrelated_call_beside_an_unresolved_star_import() -> None:
    assert (
        sites(
            """\
        from somewhere_else import *

        async def handle(user_id):
            return make_things(user_id)
        """
        )
        == []
    )


# -- resolved sites -----------------------------------------------------------------


def test_direct_import_in_async_def_is_rewrite() -> None:
    assert sites(
        """\
        from pkg.deps import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 4)]


def test_import_alias() -> None:
    assert sites(
        """\
        from pkg.deps import create_user_execution_context as make

        async def handle(user_id, thread_id):
            return make(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 4)]


def test_import_module_as_alias_then_attribute_call() -> None:
    assert sites(
        """\
        import pkg.deps as d

        async def handle(user_id, thread_id):
            return d.create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 4)]


def test_import_dotted_module_then_full_path_call() -> None:
    assert sites(
        """\
        import pkg.deps

        async def handle(user_id, thread_id):
            return pkg.deps.create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 4)]


def test_relative_imports_of_module_and_name() -> None:
    assert sites(
        """\
        from . import deps
        from .deps import create_user_execution_context

        async def handle(user_id, thread_id):
            a = deps.create_user_execution_context(user_id=user_id, thread_id=thread_id)
            b = create_user_execution_context(user_id=user_id, thread_id=thread_id)
            return a, b
        """
    ) == [("CTX001", "rewrite", 5), ("CTX001", "rewrite", 6)]


def test_parent_relative_star_import_resolves_in_the_tree() -> None:
    assert sites(
        """\
        from ..deps import *

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        path="pkg/sub/handler.py",
        pkg__sub____init__="",
        pkg__sub__handler="""\
        from ..deps import *

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
    ) == [("CTX001", "rewrite", 4)]


def test_star_import_respects_all() -> None:
    assert (
        sites(
            """\
        from pkg.facade import *

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
            pkg__facade='from pkg.deps import create_user_execution_context\n__all__ = ["other"]\n',
        )
        == []
    )


def test_unresolved_star_import_from_outside_the_tree_is_review() -> None:
    found = findings(
        """\
        from legacy_platform.helpers import *

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert [(f.category, f.line) for f in found] == [("review", 4)]
    assert "unresolved star import" in found[0].message
    assert "legacy_platform.helpers" in found[0].message


def test_function_local_import() -> None:
    assert sites(
        """\
        async def handle(user_id, thread_id):
            from pkg.deps import create_user_execution_context
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 3)]


def test_function_local_import_does_not_leak_to_other_functions() -> None:
    assert (
        sites(
            """\
        async def first():
            from pkg.deps import create_user_execution_context

        async def second(create, user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
        )
        == []
    )


def test_try_except_import_error_fallbacks_both_legacy() -> None:
    assert sites(
        """\
        try:
            from pkg.deps import create_user_execution_context
        except ImportError:
            from pkg.old_deps import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        pkg__old_deps=DEPS,
    ) == [("CTX001", "rewrite", 7)]


def test_try_except_fallback_to_something_else_is_review() -> None:
    found = findings(
        """\
        try:
            from pkg.deps import create_user_execution_context
        except ImportError:
            create_user_execution_context = None

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert [(f.category, f.line) for f in found] == [("review", 7)]
    assert "decided at run time" in found[0].message


def test_reexport_under_another_name_transitively() -> None:
    assert sites(
        """\
        from pkg.c import mk

        async def handle(user_id, thread_id):
            return mk(user_id=user_id, thread_id=thread_id)
        """,
        pkg__b="from .deps import create_user_execution_context as make_ctx\n",
        pkg__c="from pkg.b import make_ctx as mk\n",
    ) == [("CTX001", "rewrite", 4)]


def test_reexport_through_package_init_attribute() -> None:
    files = project(
        """\
        import pkg

        async def handle(user_id, thread_id):
            return pkg.make_ctx(user_id=user_id, thread_id=thread_id)
        """
    )
    files["pkg/__init__.py"] = b"from .deps import create_user_execution_context as make_ctx\n"
    analysis = analyze_sources(files, CONFIG)[HANDLER]
    assert [(f.rule, f.category) for f in analysis.findings] == [("CTX001", "rewrite")]


def test_assignment_alias_is_resolved_and_not_reported_itself() -> None:
    assert sites(
        """\
        from pkg import deps

        make = deps.create_user_execution_context

        async def handle(user_id, thread_id):
            return make(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 6)]


def test_class_attribute_does_not_leak_into_methods() -> None:
    assert sites(
        """\
        from pkg.deps import create_user_execution_context

        class Handler:
            create_user_execution_context = None

            async def handle(self, user_id, thread_id):
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 7)]


def test_class_body_binding_shadows_inside_the_class_body() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        class Handler:
            def create_user_execution_context(self):
                return None

            made = create_user_execution_context(None)
        """
        )
        == []
    )


def test_class_attribute_alias_is_a_value_use() -> None:
    found = findings(
        """\
        from pkg.deps import create_user_execution_context

        class Handler:
            factory = create_user_execution_context
        """
    )
    assert [(f.category, f.line) for f in found] == [("review", 4)]
    assert "used as a value" in found[0].message


def test_nested_scope_sees_module_import() -> None:
    assert sites(
        """\
        from pkg.deps import create_user_execution_context

        def outer():
            async def inner(user_id, thread_id):
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
            return inner
        """
    ) == [("CTX001", "rewrite", 5)]


def test_global_rebinding_makes_the_site_review() -> None:
    found = findings(
        """\
        from pkg.deps import create_user_execution_context

        def install(factory):
            global create_user_execution_context
            create_user_execution_context = factory

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert [(f.category, f.line) for f in found] == [("review", 8)]


def test_nonlocal_rebinding_targets_the_enclosing_function() -> None:
    assert (
        sites(
            """\
        from pkg.deps import create_user_execution_context

        def outer():
            create_user_execution_context = None

            def install(factory):
                nonlocal create_user_execution_context
                create_user_execution_context = factory

            async def inner(user_id, thread_id):
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
            return install, inner
        """
        )
        == []
    )


def test_del_makes_the_binding_uncertain() -> None:
    found = findings(
        """\
        from pkg.deps import create_user_execution_context
        del create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert [f.category for f in found] == ["review"]


def test_websocket_context_create_for_user_is_ctx002() -> None:
    assert sites(
        """\
        from pkg.context import WebSocketContext as WSC

        async def handle(websocket, user_id, thread_id):
            return WSC.create_for_user(websocket=websocket, user_id=user_id,
                                       thread_id=thread_id, run_id=None, connection_id="c")
        """
    ) == [("CTX002", "rewrite", 4)]


def test_websocket_factory_method_used_as_value_is_review() -> None:
    found = findings(
        """\
        from pkg.context import WebSocketContext

        builder = WebSocketContext.create_for_user
        """
    )
    assert [(f.rule, f.category) for f in found] == [("CTX002", "review")]


def test_manager_factory_in_sync_code_is_rewrite() -> None:
    assert sites(
        """\
        from pkg.deps import create_websocket_manager

        def manager(context):
            return create_websocket_manager(context)
        """
    ) == [("CTX003", "rewrite", 4)]


def test_value_uses_getattr_and_partial_are_review() -> None:
    found = findings(
        """\
        import functools
        from functools import partial as bind
        from pkg import deps
        from pkg.deps import create_user_execution_context

        async def handle(register, user_id):
            register(create_user_execution_context)
            a = functools.partial(create_user_execution_context, user_id)
            b = bind(deps.create_user_execution_context, user_id)
            c = getattr(deps, "create_user_execution_context")
            return a, b, c
        """
    )
    messages = [(f.line, f.category, f.message.split(":")[0]) for f in found]
    assert messages == [
        (
            7,
            "review",
            "create_user_execution_context is used as a value "
            "(passed, stored, returned or decorated with)",
        ),
        (8, "review", "dynamic use"),
        (9, "review", "dynamic use"),
        (10, "review", "dynamic use"),
    ]


def test_a_local_getattr_is_not_the_builtin() -> None:
    assert (
        sites(
            """\
        from pkg import deps

        def getattr(obj, name):
            return None

        async def handle():
            return getattr(deps, "create_user_execution_context")
        """
        )
        == []
    )


def test_configured_target_outside_the_tree() -> None:
    config = Config(
        root=Path("/project"), factories=("platform_lib.ctx.create_user_execution_context",)
    )
    assert sites(
        """\
        from platform_lib import ctx

        async def handle(user_id, thread_id):
            return ctx.create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        config,
    ) == [("CTX001", "rewrite", 4)]


def test_symbol_and_function_are_reported() -> None:
    [finding] = findings(
        """\
        from pkg.deps import create_user_execution_context

        class AgentHandler:
            async def handle_message(self, user_id, thread_id):
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert finding.symbol == "pkg.deps.create_user_execution_context"
    assert finding.function == "AgentHandler.handle_message"
    assert finding.fix == "await get_or_create_user_session(user_id=user_id, thread_id=thread_id)"


def test_suppression_on_the_last_line_of_a_multiline_call_and_bare_ignore() -> None:
    found = findings(
        """\
        from pkg.deps import create_user_execution_context, create_websocket_manager

        async def handle(user_id, thread_id):
            context = create_user_execution_context(
                user_id=user_id, thread_id=thread_id,
            )  # ctxmigrate: ignore[CTX003, CTX001]
            other = create_user_execution_context(user_id, "t")  # ctxmigrate: ignore
            manager = create_websocket_manager(context)  # ctxmigrate: ignore[CTX001]
            return other, manager
        """
    )
    assert [(f.rule, f.category, f.line) for f in found] == [
        ("CTX001", "keep", 4),
        ("CTX001", "keep", 7),
        ("CTX003", "rewrite", 8),
    ]


def test_suppression_text_inside_a_string_suppresses_nothing() -> None:
    found = findings(
        '''\
        from pkg.deps import create_user_execution_context

        async def handle(user_id, thread_id):
            note = "# ctxmigrate: ignore"; a = create_user_execution_context(user_id, thread_id)
            b = create_user_execution_context(user_id, f"""
            # ctxmigrate: ignore""")
            c = create_user_execution_context(user_id, "# ctxmigrate: ignore")  # ctxmigrate: ignore
            return a, b, c
        '''
    )
    assert [(f.rule, f.category, f.line) for f in found] == [
        ("CTX001", "rewrite", 4),
        ("CTX001", "rewrite", 5),
        ("CTX001", "keep", 7),
    ]


# -- cycles of assignments and targets bound by assignment --------------------------


def test_a_cycle_of_local_aliases_resolves_to_nothing_and_keeps_the_file() -> None:
    # SQLAlchemy's orm/context.py: ``left = right.parent; right = left``.
    found = findings(
        """\
        from pkg.deps import create_user_execution_context

        async def join(left, right, user_id, thread_id):
            while left is not None:
                left = right.create_user_execution_context
                right = left
            left.create_user_execution_context()
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    )
    assert [(f.rule, f.category, f.line) for f in found] == [("CTX001", "rewrite", 8)]


def test_a_longer_cycle_of_aliases_at_module_level_resolves_to_nothing() -> None:
    assert sites(
        """\
        from pkg.deps import create_user_execution_context

        a = b.create_user_execution_context
        b = c
        c = a

        async def handle(user_id, thread_id):
            a.create_user_execution_context()
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """
    ) == [("CTX001", "rewrite", 9)]


def test_configured_target_bound_by_a_decorator_call_is_matched() -> None:
    config = Config(root=Path("/project"), factories=("pkg.build.create_user_execution_context",))
    assert sites(
        """\
        from pkg.build import create_user_execution_context

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id=user_id, thread_id=thread_id)
        """,
        config,
        pkg__build=(
            "import functools\n\n"
            "def _build(user_id, thread_id, run_id=None):\n"
            "    return object()\n\n"
            "create_user_execution_context = functools.lru_cache()(_build)\n"
        ),
    ) == [("CTX001", "rewrite", 4)]


def test_configured_target_bound_to_another_function_is_matched_under_an_alias() -> None:
    config = Config(root=Path("/project"), factories=("pkg.build.create_user_execution_context",))
    assert sites(
        """\
        from pkg.build import create_user_execution_context as _

        async def handle(user_id, thread_id):
            return _(user_id=user_id, thread_id=thread_id)
        """,
        config,
        pkg__build=(
            "def _build(user_id, thread_id, run_id=None):\n"
            "    return object()\n\n"
            "create_user_execution_context = _build\n"
        ),
    ) == [("CTX001", "rewrite", 4)]


def test_configured_target_bound_by_assignment_is_matched_in_its_own_module() -> None:
    config = Config(root=Path("/project"), factories=("pkg.handler.make_context",))
    assert sites(
        """\
        def _build(user_id, thread_id):
            return object()

        make_context = _build

        async def handle(user_id, thread_id):
            return make_context(user_id=user_id, thread_id=thread_id)
        """,
        config,
    ) == [("CTX001", "rewrite", 7)]


def test_an_unconfigured_assignment_of_the_default_name_is_no_target() -> None:
    # Without configuration only a ``def`` is discovered as the legacy factory.
    assert (
        sites(
            """\
            from pkg.build import create_user_execution_context

            async def handle(user_id, thread_id):
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
            """,
            pkg__deps="x = 1\n",
            pkg__build=(
                "def _build(user_id, thread_id):\n"
                "    return object()\n\n"
                "create_user_execution_context = _build\n"
            ),
        )
        == []
    )
