"""Audit-only rules CTX101-CTX104, through the real engine."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ctxmigrate.codemods import AUDIT_RULES
from ctxmigrate.codemods.analysis.memory import analyze_sources
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import Finding

DEPS = """\
def create_user_execution_context(user_id, thread_id, run_id=None):
    return object()
"""
CONFIG = Config(root=Path("/project"))


def analyse(files: dict[str, str], config: Config = CONFIG) -> dict[str, list[Finding]]:
    sources = {"pkg/__init__.py": "", "pkg/deps.py": DEPS}
    sources.update({path: textwrap.dedent(text) for path, text in files.items()})
    analyses = analyze_sources({p: t.encode() for p, t in sources.items()}, config)
    return {path: analysis.findings for path, analysis in analyses.items()}


def of_rule(findings: list[Finding], rule: str) -> list[tuple[str, int, int]]:
    return [(f.category, f.line, f.column) for f in findings if f.rule == rule]


def test_audit_rules_catalogue() -> None:
    assert [(rule.id, rule.name, rule.fixable) for rule in AUDIT_RULES] == [
        ("CTX101", "fresh-ids-per-message", False),
        ("CTX102", "string-reference", False),
        ("CTX103", "import-from-non-defining-module", False),
        ("CTX104", "duplicate-context-class", False),
        ("CTX105", "runtime-only-site", False),
    ]


# -- CTX101 fresh ids per message ---------------------------------------------------


def test_noop_when_ids_come_from_the_message() -> None:
    findings = analyse(
        {
            "pkg/handler.py": """\
            from pkg.deps import create_user_execution_context

            async def handle(user_id, message):
                thread_id = message.thread_id
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
            """
        }
    )["pkg/handler.py"]
    assert of_rule(findings, "CTX101") == []


def test_noop_when_the_fresh_id_is_not_passed_to_the_legacy_call() -> None:
    findings = analyse(
        {
            "pkg/handler.py": """\
            import uuid
            from pkg.deps import create_user_execution_context

            async def handle(user_id, thread_id):
                request_id = str(uuid.uuid4())
                return create_user_execution_context(user_id=user_id, thread_id=thread_id)
            """
        }
    )["pkg/handler.py"]
    assert of_rule(findings, "CTX101") == []


def test_noop_when_assigned_in_another_function_or_after_the_call() -> None:
    findings = analyse(
        {
            "pkg/handler.py": """\
            from uuid import uuid4
            from pkg.deps import create_user_execution_context

            def new_thread():
                thread_id = str(uuid4())
                return thread_id

            async def handle(user_id, thread_id):
                context = create_user_execution_context(user_id=user_id, thread_id=thread_id)
                thread_id = str(uuid4())
                return context
            """
        }
    )["pkg/handler.py"]
    assert of_rule(findings, "CTX101") == []


def test_fresh_thread_and_run_ids_right_before_the_call() -> None:
    findings = analyse(
        {
            "pkg/handler.py": """\
            import uuid
            from uuid import uuid4
            from pkg.deps import create_user_execution_context
            from pkg.ids import generate_thread_id

            async def handle(user_id, message):
                thread_id = message.payload.get("thread_id") or f"thread_{uuid4()}"
                run_id = str(uuid.uuid4())
                return create_user_execution_context(user_id, thread_id, run_id)

            async def inline(user_id):
                return create_user_execution_context(user_id, thread_id=generate_thread_id())
            """,
            "pkg/ids.py": "def generate_thread_id():\n    return 'x'\n",
        }
    )["pkg/handler.py"]
    assert of_rule(findings, "CTX101") == [("review", 7, 17), ("review", 8, 14), ("review", 12, 61)]
    messages = [f.message for f in findings if f.rule == "CTX101"]
    assert messages[0].startswith("fresh thread_id generated per message (uuid4())")
    assert "at line 9" in messages[0]
    assert "new run" in messages[1]


def test_fresh_ids_in_tests_are_keep() -> None:
    findings = analyse(
        {
            "tests/test_handler.py": """\
            from uuid import uuid4
            from pkg.deps import create_user_execution_context

            async def test_isolated():
                thread_id = str(uuid4())
                create_user_execution_context(user_id="u", thread_id=thread_id)
            """
        }
    )["tests/test_handler.py"]
    [fresh] = [f for f in findings if f.rule == "CTX101"]
    assert fresh.category == "keep" and fresh.message.startswith("test code: ")


# -- CTX102 string references -------------------------------------------------------


def test_noop_for_docstrings_all_and_unrelated_strings() -> None:
    findings = analyse(
        {
            "pkg/facade.py": '''\
            """Use create_user_execution_context(...) sparingly."""
            from pkg.deps import create_user_execution_context

            __all__ = ["create_user_execution_context"]
            LABEL = "pkg.deps.other_function"
            ''',
        }
    )["pkg/facade.py"]
    assert of_rule(findings, "CTX102") == []


def test_noop_for_type_strings_and_the_websocket_context_class_name() -> None:
    findings = analyse(
        {
            "pkg/ws.py": """\
            class WebSocketContext:
                @classmethod
                def create_for_user(cls, websocket, user_id, thread_id):
                    return cls()
            """,
            "pkg/types.py": """\
            from typing import Optional, cast

            def f(
                ctx: "WebSocketContext", make: "create_user_execution_context"
            ) -> "Optional[WebSocketContext]":
                label: "create_user_execution_context" = make
                print("WebSocketContext")
                return cast("create_user_execution_context", ctx)
            """,
        }
    )["pkg/types.py"]
    assert of_rule(findings, "CTX102") == []


def test_patch_target_of_create_for_user_is_review() -> None:
    findings = analyse(
        {
            "pkg/ws.py": """\
            class WebSocketContext:
                @classmethod
                def create_for_user(cls, websocket, user_id, thread_id):
                    return cls()
            """,
            "tests/test_ws.py": """\
            from unittest import mock

            def test_patch():
                with mock.patch("pkg.ws.WebSocketContext.create_for_user"):
                    pass
            """,
        }
    )["tests/test_ws.py"]
    assert of_rule(findings, "CTX102") == [("review", 4, 21)]


def test_patch_targets_and_source_text_checks_are_review_even_in_tests() -> None:
    findings = analyse(
        {
            "pkg/handler.py": "from pkg.deps import create_user_execution_context\n",
            "pkg/b.py": "from .deps import create_user_execution_context as make_ctx\n",
            "tests/test_handler.py": """\
            from unittest import mock
            from pkg import deps

            def test_patch(monkeypatch):
                with mock.patch("pkg.handler.create_user_execution_context"):
                    pass
                monkeypatch.setattr("pkg.b.make_ctx", None)
                mock.patch.object(deps, "create_user_execution_context")

            def test_source_text(source):
                assert "create_user_execution_context(" not in source
            """,
        }
    )["tests/test_handler.py"]
    assert of_rule(findings, "CTX102") == [
        ("review", 5, 21),
        ("review", 7, 25),
        ("review", 8, 29),
        ("review", 11, 12),
    ]
    symbols = {f.symbol for f in findings if f.rule == "CTX102"}
    assert symbols == {"pkg.deps.create_user_execution_context"}


# -- CTX103 imports from a module that does not define the name ---------------------


def test_noop_for_imports_from_the_defining_module_a_package_or_all() -> None:
    findings = analyse(
        {
            "pkg/__init__.py": "from .deps import create_user_execution_context\n",
            "pkg/facade.py": (
                "from .deps import create_user_execution_context\n"
                "__all__ = ['create_user_execution_context']\n"
            ),
            "pkg/handler.py": """\
            from pkg.deps import create_user_execution_context
            from pkg import create_user_execution_context as via_package
            from pkg.facade import create_user_execution_context as via_facade
            """,
        }
    )["pkg/handler.py"]
    assert of_rule(findings, "CTX103") == []


def test_import_through_a_module_that_only_imports_it() -> None:
    findings = analyse(
        {
            "pkg/handler.py": "from .deps import create_user_execution_context\n",
            "pkg/views.py": "from pkg.handler import create_user_execution_context\n",
            "pkg/ghost.py": "from pkg.empty import create_user_execution_context\n",
            "pkg/empty.py": "VALUE = 1\n",
        }
    )
    [finding] = [f for f in findings["pkg/views.py"] if f.rule == "CTX103"]
    assert (finding.category, finding.line, finding.column) == ("review", 1, 25)
    assert "pkg.handler" in finding.message and "import it from pkg.deps" in finding.message
    [ghost] = [f for f in findings["pkg/ghost.py"] if f.rule == "CTX103"]
    assert "neither defines nor imports" in ghost.message


# -- CTX104 census --------------------------------------------------------------------


def test_census_of_context_classes() -> None:
    findings = analyse(
        {
            "pkg/context.py": "class WebSocketContext:\n    pass\n",
            "pkg/models.py": "class UserExecutionContext:\n    pass\n",
            "pkg/legacy.py": (
                "class UserExecutionContext:  # ctxmigrate: ignore[CTX104]\n    pass\n"
            ),
            "tests/fakes.py": "def make():\n    class UserExecutionContext:\n        pass\n",
        }
    )
    assert of_rule(findings["pkg/context.py"], "CTX104") == [("keep", 1, 1)]
    [models] = [f for f in findings["pkg/models.py"] if f.rule == "CTX104"]
    assert models.category == "review"
    assert models.message.startswith("3 classes named UserExecutionContext")
    assert "pkg/legacy.py:1, pkg/models.py:1, tests/fakes.py:2" in models.message
    assert of_rule(findings["pkg/legacy.py"], "CTX104") == [("keep", 1, 1)]
    assert of_rule(findings["tests/fakes.py"], "CTX104") == [("review", 2, 5)]


def test_ignored_rules_produce_no_findings() -> None:
    config = Config(root=Path("/project"), ignore=("CTX104", "fresh-ids-per-message"))
    findings = analyse(
        {
            "pkg/models.py": """\
            from uuid import uuid4
            from pkg.deps import create_user_execution_context

            class UserExecutionContext:
                pass

            async def handle(user_id):
                return create_user_execution_context(user_id=user_id, thread_id=str(uuid4()))
            """
        },
        config,
    )["pkg/models.py"]
    assert {f.rule for f in findings} == {"CTX001"}
