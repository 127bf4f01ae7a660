"""The audit parses pruned text (``analysis/pruning.py``): positions kept, findings unchanged.

Three layers: the pruned text of small inputs (every kept character at its
line and column), the hazards where a body must be kept (each would change a
finding, or is kept by the rule for safety), and whole trees (the goldens, the
bundled legacy app, a generated monorepo) audited with and without pruning.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import libcst as cst
import pytest

from ctxmigrate.codemods import CODEMODS, engine
from ctxmigrate.codemods.analysis import file_analysis, pruning
from ctxmigrate.codemods.analysis.file_analysis import FileAnalysis, analyze_source, pruning_names
from ctxmigrate.codemods.analysis.guided_walk import Lines
from ctxmigrate.codemods.analysis.memory import build_memory_index
from ctxmigrate.codemods.analysis.pruning import pruned_source
from ctxmigrate.codemods.config import Config, load_config
from ctxmigrate.codemods.rewrite.planning import fix_source

from .support import LEGACY_CONFIG, LEGACY_MODULES, golden_id, golden_inputs, golden_project

REPOSITORY = Path(__file__).resolve().parents[2]
NAMES = ("create_user_execution_context",)
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
QUOTES = '"""'


def lines_with_endings(text: str) -> list[str]:
    """Every line with its line break; the last one (maybe empty) without."""
    pieces = _LINE_BREAK.split(text)
    endings = [*pieces[1::2], ""]
    return [content + ending for content, ending in zip(pieces[::2], endings, strict=True)]


def assert_positions_kept(original: bytes, pruned: bytes) -> None:
    """Same lines and line breaks; each line kept, emptied, cut and ended by
    ``pass`` or by the quotes opening a string, or the quotes closing it."""
    before, after = lines_with_endings(original.decode()), lines_with_endings(pruned.decode())
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        old_text, new_text = old.rstrip("\r\n"), new.rstrip("\r\n")
        assert old[len(old_text) :] == new[len(new_text) :]  # the same line break
        assert new_text in ("", old_text, QUOTES) or any(
            new_text.endswith(end) and old_text.startswith(new_text[: -len(end)])
            for end in ("pass", QUOTES)
        ), (old, new)
    ast.parse(pruned)
    if cst.parse_module(original).bytes == original:  # not so for a final lone CR
        assert cst.parse_module(pruned).bytes == pruned


def prune(source: str | bytes, names: Iterable[str] = NAMES) -> bytes | None:
    data = textwrap.dedent(source).encode() if isinstance(source, str) else source
    result = pruned_source(data, names)
    if result is not None:
        assert_positions_kept(data, result)
    return result


# -- the pruned text ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [b"", b"\n", b"a", b"a\n", b"\n\nb", b"ab\ncd", b"a\r\nb\rc\n", b"a\rb", b"\r\n"]
)
def test_line_offsets_are_where_ast_lines_start_and_end(text: bytes) -> None:
    lines = Lines.of(text)
    breaks = list(re.finditer(rb"\r\n|\r|\n", text))
    assert lines.starts == [0, *(match.end() for match in breaks)]
    assert lines.ends == [*(match.start() for match in breaks), len(text)]
    for offset in range(len(text) + 1):
        assert lines.line_of(offset) == 1 + sum(match.end() <= offset for match in breaks)


def test_a_body_of_several_lines_becomes_a_string_holding_its_line_breaks() -> None:
    source = """\
        import os


        @decorate(1)
        def helper(path: str = os.sep) -> str:
            \"\"\"Doc
            string.\"\"\"
            first = 1; second = 2
            return path + \\
                str(first + second)  # a comment
        VALUE = helper()
        """
    assert (
        prune(source)
        == textwrap.dedent(
            """\
        import os


        @decorate(1)
        def helper(path: str = os.sep) -> str:
            \"\"\"



        \"\"\"
        VALUE = helper()
        """
        ).encode()
    )


def test_body_on_the_header_line() -> None:
    assert prune("def f(): return 1; \nX = f\n") == b"def f(): pass\nX = f\n"
    assert prune("async def f(a,\n        b): return (a,\n  b)\nf\n") == (
        b'async def f(a,\n        b): """\n"""\nf\n'
    )


def test_columns_count_utf8_bytes_before_the_body() -> None:
    assert prune('def f(é="ü"): return "ö"\nf()\n') == 'def f(é="ü"): pass\nf()\n'.encode()


def test_crlf_lone_cr_tabs_bom_and_utf8_cookie_are_kept() -> None:
    crlf_tabs = b"def f():\r\n\treturn 1\r\n\r\nX = f\r\n"
    assert prune(crlf_tabs) == b"def f():\r\n\tpass\r\n\r\nX = f\r\n"
    assert prune(b"def f():\r  x = 1\r  return x\rX = f\r") == b'def f():\r  """\r"""\rX = f\r'
    bom = b"\xef\xbb\xbfdef f():\n    return 1\nf()\n"
    assert prune(bom) == b"\xef\xbb\xbfdef f():\n    pass\nf()\n"
    cookie = b"# -*- coding: utf-8 -*-\ndef f():\n    return '\xc3\xa9'\nf()\n"
    assert prune(cookie) == b"# -*- coding: utf-8 -*-\ndef f():\n    pass\nf()\n"


def test_a_last_body_without_a_final_line_break() -> None:
    assert prune(b"f()\ndef f():\n    x = 1\n    return x") == b'f()\ndef f():\n    """\n"""'
    assert prune(b"f()\ndef f(): return 1") == b"f()\ndef f(): pass"


def test_other_encodings_and_newer_syntax_are_not_pruned() -> None:
    assert prune(b"# -*- coding: latin-1 -*-\ndef f():\n    return '\xe9'\n") is None
    # Quotes reused inside an f-string (PEP 701): ast before 3.12 cannot read it.
    newer = 'def f(names):\n    return f"{names["a"]}"\n'
    if sys.version_info < (3, 12):
        assert prune(newer) is None
    assert prune("def f(:\n    return 1\n") is None
    assert prune(b"# -*- coding: no-such-codec -*-\ndef f():\n    return 1\nf\n") is None


def test_an_invalid_escape_is_the_applications_business() -> None:
    # ``ast`` warns about "\d" (an error under this suite's warning filter): not pruning's to raise.
    assert prune(b'def f():\n    return "\\d"\nf\n') == b"def f():\n    pass\nf\n"


def test_nothing_to_prune_is_none() -> None:
    assert prune("X = f\n\n\ndef f():\n    pass\n") is None
    assert prune("def f():\n    return create_user_execution_context()\n") is None


def test_nested_functions_of_a_kept_body_and_methods_are_pruned() -> None:
    source = """\
        class Service:
            LIMIT = 3

            async def handle(self, user_id):
                def unrelated():
                    return 1

                class Local:
                    def method(self):
                        return 2

                return create_user_execution_context(user_id, "t")

            def other(self):
                return self.LIMIT


        if True:
            def conditional():
                return 4
        try:
            import json
        except ImportError:
            def fallback():
                return 5
        """
    assert (
        prune(source)
        == textwrap.dedent(
            """\
        class Service:
            LIMIT = 3

            async def handle(self, user_id):
                def unrelated():
                    pass

                class Local:
                    def method(self):
                        pass

                return create_user_execution_context(user_id, "t")

            def other(self):
                pass


        if True:
            def conditional():
                pass
        try:
            import json
        except ImportError:
            def fallback():
                pass
        """
        ).encode()
    )


def test_a_decorated_first_statement_goes_with_its_decorators() -> None:
    source = """\
        def deprecated(func):
            @functools.wraps(
                func,
            )
            @ other
            def wrapper(*args):
                return func(*args)
            return wrapper
        X = deprecated
        """
    assert prune(source) == b'def deprecated(func):\n    """' + b"\n" * 6 + b'"""\nX = deprecated\n'


def test_blocks_of_try_and_match_are_pruned_in_text_order() -> None:
    # ``else`` comes after the handlers in the text, not after the body as in ``ast``.
    source = """\
        try:
            def a():
                return 1
        except ImportError:
            def b():
                return 2
        else:
            def c():
                return 3
        finally:
            def d():
                return 4
        match VALUE:
            case 1:
                def e():
                    return 5
            case _:
                def f():
                    return 6
        for item in ITEMS:
            def g():
                return 7
        else:
            def h():
                return 8
        """
    pruned = prune(source)
    assert pruned is not None
    assert b"return" not in pruned
    assert pruned.count(b"pass") == 8


@pytest.mark.parametrize(
    "body",
    [
        "getattr(module, 'create_for_user')",
        "x = getattr(module, 'create_user_execution_cont\\x65xt', None)",
        "global STATE",
        "nonlocal state",
        "'# CtxMigrate: ignore'",
        "create_user_execution_context",
        "x.create_for_user()",
    ],
)
def test_a_body_that_spells_a_needle_is_kept(body: str) -> None:
    source = f"def outer():\n    state = 1\n    def inner():\n        {body}\n    return state\n"
    assert prune(source, (*NAMES, "create_for_user")) is None


@pytest.mark.parametrize(
    "body",
    [
        "getattr(module, 'name')",
        "getattr(self, 'created_at', None)",
        "getattr(module, name)",
        "return getattr(module, 'make' + '_ctx')",
        "return 1  # getattr(module, 'name')",
    ],
)
def test_a_getattr_the_resolving_pass_cannot_note_does_not_keep_a_body(body: str) -> None:
    source = f"def outer():\n    {body}\nouter()\n"
    assert prune(source, (*NAMES, "create_for_user")) == b"def outer():\n    pass\nouter()\n"


@pytest.mark.parametrize(
    "block",
    [
        "try:\n        pass\n    except Exception:\n        {call}",
        "match x:\n        case 1:\n            {call}",
        "with open(p) as f:\n        if f:\n            {call}",
        "return [{call} for _ in range(2)]",
        "class Local:\n        attribute = {call}",
    ],
)
def test_a_noted_getattr_keeps_its_body_in_any_block(block: str) -> None:
    call = "getattr(deps, 'create_user_execution_context')"
    source = f"def outer():\n    {block.format(call=call)}\n\ndef other():\n    return 2\n"
    pruned = prune(source)
    assert pruned is not None
    assert call.encode() in pruned
    assert b"return 2" not in pruned


def test_names_bound_from_a_relevant_name_are_relevant_transitively() -> None:
    source = """\
        from app.dependencies import create_user_execution_context as build
        make = build
        class Holder:
            factory = make
        def direct():
            return make(1)
        def through_class():
            return Holder.factory
        def unrelated():
            return 1
        """
    pruned = prune(source)
    assert pruned is not None
    # build -> make -> Holder.factory: each bound from the one before.
    assert b"return make(1)" in pruned
    assert b"return Holder.factory" in pruned
    assert b"return 1" not in pruned


@pytest.mark.parametrize(
    "binding",
    [
        "if READY:\n    from app.dependencies import create_user_execution_context as make\n",
        "if READY:\n    class make(create_user_execution_context):\n        pass\n",
        "match create_user_execution_context:\n    case make:\n        pass\n",
        "match [create_user_execution_context]:\n    case [*make]:\n        pass\n",
        "match {1: create_user_execution_context}:\n    case {**make}:\n        pass\n",
        "try:\n    pass\nexcept create_user_execution_context as make:\n    pass\n",
    ],
    ids=["import-in-if", "class-in-if", "match-as", "match-star", "match-rest", "except-as"],
)
def test_every_form_of_binding_in_a_statement_spelling_a_relevant_name_counts(
    binding: str,
) -> None:
    # ``make`` is bound by a statement that names the legacy function: a body
    # using only ``make`` may hold a site, so it is kept.
    source = binding + "def uses():\n    return make(1)\nuses\n"
    pruned = prune(source)
    assert pruned is None or b"return make(1)" in pruned
    assert prune(source.replace("create_user_execution_context", "unrelated_name")) is not None


def test_an_import_makes_relevant_only_the_names_it_binds_from_a_relevant_one() -> None:
    source = """\
        from app.dependencies import create_user_execution_context as build, get_settings
        import app.dependencies as deps, json

        def uses_alias():
            return build
        def uses_module():
            return deps
        def uses_settings():
            return get_settings(json)
        """
    pruned = prune(source)
    assert pruned is not None
    assert b"return build" in pruned
    assert b"return deps" not in pruned and b"get_settings(json)" not in pruned


def test_a_module_level_definition_nothing_kept_names_is_dropped_whole() -> None:
    source = """\
        import os


        @register(
            "x",
        )
        class Unused(Base):
            def method(self):
                return os.sep


        async def helper(a): return a
        X = 1
        """
    # Both go, with the blank lines between them: one string (lines 4 to 12).
    assert prune(source) == b'import os\n\n\n"""' + b"\n" * 8 + b'"""\nX = 1\n'


def test_dropped_definitions_apart_by_more_than_blank_lines_stay_apart() -> None:
    source = """        def first_one():
            return 1

        # a comment stays (it may be a suppression elsewhere)
        def second_one():
            return 2
        X = 1
        def third_one():
            return 3
        """
    assert prune(source) == (
        b'"""\n"""\n\n# a comment stays (it may be a suppression elsewhere)\n"""\n"""\n'
        b'X = 1\n"""\n"""\n'
    )


@pytest.mark.parametrize(
    "mention",
    [
        "X = helper\n",
        '__all__ = ["helper"]\n',
        "class Kept(helper):\n    pass\n",
        "@helper\ndef decorated():\n    pass\n",
        "async def handle(u):\n    return helper(create_user_execution_context(u))\n",
    ],
)
def test_a_definition_that_kept_text_names_is_kept(mention: str) -> None:
    pruned = prune("def helper(a):\n    return a\n" + mention)
    assert pruned is not None and pruned.startswith(b"def helper(a):\n    pass\n")


def test_a_name_used_only_in_a_pruned_body_does_not_keep_a_definition() -> None:
    source = "def helper(a): return a\ndef other(): return helper(1)\nX = other\n"
    assert prune(source) == b"\ndef other(): pass\nX = other\n"


def test_definitions_below_module_level_are_never_dropped_whole() -> None:
    assert prune("if X:\n    def helper(a): return a\n") == b"if X:\n    def helper(a): pass\n"
    assert prune("class K:\n    def helper(a): return a\nK\n") == (
        b"class K:\n    def helper(a): pass\nK\n"
    )


# -- hazards: findings with and without pruning -----------------------------------

UNRELATED = "\n\ndef unrelated(items):\n    return sorted(items)\n"


def both_analyses(
    source: str, path: str = "app/handlers/case.py", config: Config = LEGACY_CONFIG
) -> tuple[FileAnalysis, FileAnalysis]:
    sources = {**LEGACY_MODULES, path: (textwrap.dedent(source) + UNRELATED).encode()}
    index, module_files = build_memory_index(sources, config)
    module_file = module_files[path]
    full, pruned = (
        analyze_source(module_file.abspath, sources[path], config, index, CODEMODS, prune=flag)
        for flag in (False, True)
    )
    return full, pruned


def findings_of(analysis: FileAnalysis) -> list[dict[str, object]]:
    return [finding.to_json() for finding in analysis.findings]


HAZARDS: dict[str, tuple[str, str | None]] = {
    # A body rebinding a module name the site resolves through (review, not rewrite).
    "global": (
        """\
        from app import dependencies as deps

        def reset():
            global deps
            deps = None

        async def handle(user_id, thread_id):
            return deps.create_user_execution_context(user_id, thread_id)
        """,
        "deps = None",
    ),
    "nonlocal": (
        """\
        async def handle(user_id, thread_id):
            from app import dependencies as deps

            def reset():
                nonlocal deps
                deps = None

            return deps.create_user_execution_context(user_id, thread_id)
        """,
        "deps = None",
    ),
    # The evaluated string names the legacy function; its text does not.
    "getattr_with_escapes": (
        """\
        from app import dependencies

        def lookup():
            return getattr(dependencies, "create_user_execution_cont\\x65xt")
        """,
        "getattr(dependencies",
    ),
    # The comment after a one-line body suppresses the default's finding.
    "suppression_after_one_line_body": (
        """\
        from app.dependencies import create_user_execution_context

        def b(c=create_user_execution_context("u", "t")): return c  # ctxmigrate: ignore[CTX001]
        """,
        "# ctxmigrate: ignore[CTX001]",
    ),
    "string_quoting_a_suppression": (
        """\
        from app.dependencies import create_user_execution_context

        def b(c=create_user_execution_context("u", "t")): return "# ctxmigrate: ignore"
        """,
        '"# ctxmigrate: ignore"',
    ),
    "module_level_alias": (
        """\
        from app.dependencies import create_user_execution_context

        make = create_user_execution_context

        async def handle(user_id, thread_id):
            return make(user_id, thread_id)
        """,
        "make(user_id, thread_id)",
    ),
    "import_alias": (
        """\
        from app.dependencies import create_user_execution_context as build

        async def handle(user_id, thread_id):
            return build(user_id, thread_id)
        """,
        "build(user_id, thread_id)",
    ),
    "class_attribute_alias": (
        """\
        from app.dependencies import create_user_execution_context

        class Handler:
            factory = create_user_execution_context

            async def handle(self, user_id, thread_id):
                return self.factory(user_id, thread_id)
        """,
        "self.factory(user_id, thread_id)",
    ),
    # A method of the legacy name: its body may go, the calls through it stay.
    "same_name_method": (
        """\
        class Factory:
            def create_user_execution_context(self, user_id, thread_id):
                return (user_id, thread_id)

            async def use(self, user_id, thread_id):
                return self.create_user_execution_context(user_id, thread_id)
        """,
        "self.create_user_execution_context(user_id, thread_id)",
    ),
    "await": (
        """\
        from app.dependencies import create_user_execution_context

        async def handle(user_id, thread_id):
            return await create_user_execution_context(user_id, thread_id)
        """,
        "await create_user_execution_context",
    ),
    "string_reference": (
        """\
        from unittest import mock

        def test_patches():
            with mock.patch("app.dependencies.create_user_execution_context"):
                pass
        """,
        "mock.patch(",
    ),
    "decorators_and_defaults": (
        """\
        from app.dependencies import create_user_execution_context
        from app.websocket import create_websocket_manager

        @register(create_user_execution_context)
        def view(factory=create_websocket_manager, *, other: "WebSocketContext" = None):
            return factory
        """,
        None,
    ),
    "module_level_all_star_del_walrus": (
        """\
        from app.dependencies import *
        from app.websocket import create_websocket_manager

        __all__ = ["create_user_execution_context", "create_websocket_manager"]
        if (manager := create_websocket_manager):
            del manager

        def helper():
            return 1
        """,
        None,
    ),
    "comprehension_and_lambda": (
        """\
        from app.dependencies import create_user_execution_context

        BUILD = lambda u, t: create_user_execution_context(u, t)

        async def handle(users):
            return [create_user_execution_context(u, "t") for u in users]
        """,
        'create_user_execution_context(u, "t")',
    ),
    "enclosing_function_names": (
        """\
        from app.dependencies import create_user_execution_context

        class Outer:
            class Inner:
                async def method(self, user_id, thread_id):
                    def helper():
                        return 2
                    return create_user_execution_context(user_id, thread_id)
        """,
        "def helper():",
    ),
    # The rewrite would import get_or_create_user_session: a binding of it clashes.
    "new_name_clash": (
        """\
        from app.dependencies import create_user_execution_context

        def get_or_create_user_session():
            return None

        def uses_new_name():
            return get_or_create_user_session

        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id, thread_id)
        """,
        "return get_or_create_user_session",
    ),
    "fresh_ids": (
        """\
        import uuid

        from app.dependencies import create_user_execution_context

        async def handle(user_id):
            thread_id = uuid.uuid4().hex
            return create_user_execution_context(user_id, thread_id)
        """,
        "uuid.uuid4().hex",
    ),
    "factory_method_and_manager": (
        """\
        from app.websocket import WebSocketContext, create_websocket_manager

        async def connect(websocket, context):
            manager = create_websocket_manager(context)
            return WebSocketContext.create_for_user(websocket, "u", "t"), manager
        """,
        "WebSocketContext.create_for_user",
    ),
    # A module-level def rebinding the name a site resolves through: its text
    # holds no needle, but kept code names it, so it is not dropped whole.
    "definition_a_site_names": (
        """\
        from app import dependencies as deps

        def deps():
            return None

        async def handle(user_id, thread_id):
            return deps.create_user_execution_context(user_id, thread_id)
        """,
        "def deps():\n    pass",
    ),
    "body_on_the_header_line": (
        """\
        from app.dependencies import create_user_execution_context

        async def handle(u, t): return create_user_execution_context(u, t)
        """,
        "return create_user_execution_context",
    ),
}


@pytest.mark.parametrize("case", sorted(HAZARDS))
def test_hazard_findings_are_unchanged_and_the_body_that_matters_is_kept(case: str) -> None:
    source, kept = HAZARDS[case]
    full, pruned = both_analyses(source)

    assert pruned.pruned and not full.pruned
    assert "return sorted(items)" not in pruned.module.code  # something was pruned
    if kept is not None:
        assert kept in pruned.module.code
    assert findings_of(pruned) == findings_of(full)
    # A method that shares the name is no site: nothing to report either way.
    assert bool(findings_of(full)) is (case != "same_name_method")


def test_fix_source_refuses_an_analysis_of_pruned_text() -> None:
    full, pruned = both_analyses(HAZARDS["await"][0])
    with pytest.raises(ValueError, match="pruned text"):
        fix_source(pruned, LEGACY_CONFIG, CODEMODS)
    assert fix_source(full, LEGACY_CONFIG, CODEMODS).error is None


def test_pruned_text_that_does_not_parse_warns_and_the_whole_file_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pruning bug must not pass silently, nor cost a finding."""
    full, _ = both_analyses(HAZARDS["global"][0])
    monkeypatch.setattr(pruning, "pruned_source", lambda source, names, tree=None: b"def (:\n")

    with pytest.warns(
        RuntimeWarning, match=r"case\.py: ctxmigrate's pruned text .* does not parse"
    ):
        _, pruned = both_analyses(HAZARDS["global"][0])

    assert not pruned.pruned
    assert findings_of(pruned) == findings_of(full)


def test_a_file_libcst_rejects_whole_is_its_own_error_not_a_pruning_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ctxmigrate.codemods.analysis.parsing import SourceError

    def rejected(source: bytes) -> cst.Module:
        raise SourceError("syntax LibCST cannot read")

    path = "app/handlers/case.py"
    source = textwrap.dedent(HAZARDS["global"][0]) + UNRELATED  # something to prune
    sources = {**LEGACY_MODULES, path: source.encode()}
    index, module_files = build_memory_index(sources, LEGACY_CONFIG)
    monkeypatch.setattr(file_analysis, "parse_module", rejected)

    with pytest.raises(SourceError, match="syntax LibCST cannot read"):
        analyze_source(
            module_files[path].abspath, sources[path], LEGACY_CONFIG, index, CODEMODS, prune=True
        )


def code_analysed_with_nothing_prepared_to_prune(prepared_names: frozenset[str]) -> str:
    """The code the analysis parsed, told that pruning with ``prepared_names``
    left nothing to prune (``PrunedText.text`` None: the full text)."""
    path = "app/handlers/case.py"
    source = HAZARDS["body_on_the_header_line"][0]
    sources = {**LEGACY_MODULES, path: (textwrap.dedent(source) + UNRELATED).encode()}
    index, module_files = build_memory_index(sources, LEGACY_CONFIG)
    analysis = analyze_source(
        module_files[path].abspath,
        sources[path],
        LEGACY_CONFIG,
        index,
        CODEMODS,
        prune=True,
        prepared=pruning.PrunedText(prepared_names, None),
    )
    return analysis.module.code


def test_the_analysis_parses_the_summary_phases_text_when_pruned_with_every_name_it_needs() -> None:
    needed = pruning_names(
        build_memory_index(LEGACY_MODULES, LEGACY_CONFIG)[0].known_names, LEGACY_CONFIG, CODEMODS
    )
    # Pruned with more names (as if "sorted" kept the unrelated body): used as it is.
    assert "return sorted(items)" in code_analysed_with_nothing_prepared_to_prune(
        needed | {"sorted"}
    )
    # Pruned without a name the analysis needs: pruned again, from the source.
    assert "return sorted(items)" not in code_analysed_with_nothing_prepared_to_prune(
        frozenset({"sorted"})
    )


def test_a_cold_audit_prunes_each_file_once_from_the_summary_phases_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPOSITORY)
    app = REPOSITORY / "fixtures" / "legacy_app"
    with_tree: list[bool] = []
    real = pruning.pruned_source

    def spy(source: bytes, names: Iterable[str], tree: ast.Module | None = None) -> bytes | None:
        with_tree.append(tree is not None)
        return real(source, names, tree)

    monkeypatch.setattr(pruning, "pruned_source", spy)
    engine.run([app], load_config(app), use_cache=False, jobs=1)

    assert with_tree and all(with_tree)


# -- whole trees: the audit with pruning equals the audit without -----------------


def spy_on_pruning(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> list[bytes]:
    """Record every text pruning produced; with ``enabled`` False, prune nothing."""
    produced: list[bytes] = []
    real = pruning.pruned_source

    def spy(source: bytes, names: Iterable[str], tree: ast.Module | None = None) -> bytes | None:
        result = real(source, names, tree) if enabled else None
        if result is not None:
            assert_positions_kept(source, result)
            produced.append(result)
        return result

    monkeypatch.setattr(pruning, "pruned_source", spy)
    return produced


def audit_json(
    paths: list[Path], config: Config, monkeypatch: pytest.MonkeyPatch, *, enabled: bool
) -> tuple[dict[str, object], list[bytes]]:
    with monkeypatch.context() as patch:
        produced = spy_on_pruning(patch, enabled)
        report = engine.run(paths, config, use_cache=False, jobs=1).report
    return report.to_json(), produced


@pytest.mark.parametrize("input_path", golden_inputs(), ids=golden_id)
def test_goldens_have_the_same_findings_with_pruning(input_path: Path) -> None:
    display, project = golden_project(input_path, input_path.read_bytes())
    index, module_files = build_memory_index(project, LEGACY_CONFIG)
    module_file = module_files[display]
    full, pruned = (
        analyze_source(
            module_file.abspath, project[display], LEGACY_CONFIG, index, CODEMODS, prune=flag
        )
        for flag in (False, True)
    )
    assert findings_of(pruned) == findings_of(full)
    assert [(codemod.rule.id, ref.span) for codemod, ref in pruned.references] == [
        (codemod.rule.id, ref.span) for codemod, ref in full.references
    ]


def test_goldens_exercise_pruning() -> None:
    pruned = [
        path for path in golden_inputs() if pruned_source(path.read_bytes(), NAMES) is not None
    ]
    assert len(pruned) >= 3, pruned


def test_the_legacy_app_audit_is_the_same_with_pruning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY)
    app = REPOSITORY / "fixtures" / "legacy_app"
    config = load_config(app)
    without, _ = audit_json([app], config, monkeypatch, enabled=False)
    with_pruning, produced = audit_json([app], config, monkeypatch, enabled=True)
    assert produced, "the legacy app has prunable bodies"
    assert with_pruning == without
    assert without["findings"]


def test_a_generated_monorepo_audit_is_the_same_with_pruning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "monorepo"
    subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "benchmarks" / "gen_monorepo.py"),
            *("--out", str(tree), "--files", "300", "--seed", "11", "--mentions", "40"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.chdir(tree)
    config = load_config(tree)
    without, _ = audit_json([tree], config, monkeypatch, enabled=False)
    with_pruning, produced = audit_json([tree], config, monkeypatch, enabled=True)
    assert len(produced) >= 3
    assert with_pruning == without
    assert without["findings"]


def test_apply_decides_from_the_pruned_text_and_rewrites_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, data in LEGACY_MODULES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    (tmp_path / "app" / "__init__.py").write_text("")
    handler = tmp_path / "app" / "handler.py"
    handler.write_text(textwrap.dedent(HAZARDS["await"][0]) + UNRELATED)
    # Only review findings (a sync function): never parsed whole.
    review_only = tmp_path / "app" / "sync_handler.py"
    review_only.write_text(
        "from app.dependencies import create_user_execution_context\n\n\n"
        "def handle(user_id, thread_id):\n"
        "    return create_user_execution_context(user_id, thread_id)\n" + UNRELATED
    )
    monkeypatch.chdir(tmp_path)
    config = Config(root=tmp_path)
    parsed_whole: list[bytes] = []
    real_parse = file_analysis.parse_module

    def recording(source: bytes, *args: object) -> object:
        if b"return sorted(items)" in source:
            parsed_whole.append(source)
        return real_parse(source, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        produced = spy_on_pruning(patch, enabled=True)
        patch.setattr(file_analysis, "parse_module", recording)
        result = engine.run([tmp_path], config, fix=True, use_cache=False, jobs=1)
    # Both handlers decided from their pruned text.
    assert sum(b"def handle(user_id, thread_id):" in text for text in produced) == 2
    (fixed,) = result.fixes
    assert fixed.fixed is not None and b"return sorted(items)" in fixed.fixed
    assert parsed_whole == [handler.read_bytes()]  # the rewritten one, whole, once
    audited, produced = audit_json([tmp_path], config, monkeypatch, enabled=True)
    assert produced and audited["findings"]


# -- random files from the hazards' pieces -----------------------------------------

MODULE_LEVEL = (
    "from app import dependencies as deps",
    "from app.dependencies import create_user_execution_context",
    "from app.dependencies import create_user_execution_context as build",
    "from app.websocket import WebSocketContext, create_websocket_manager",
    "make = create_user_execution_context",
    "import uuid",
    "from unittest import mock",
    "deps = None",
    "get_or_create_user_session = None",
    "__all__ = ['create_user_execution_context']",
)
BODIES = (
    "return sorted(items)",
    "return create_user_execution_context(user_id, thread_id)",
    "return await create_user_execution_context(user_id, thread_id)",
    "return deps.create_user_execution_context(user_id, thread_id)",
    "return make(user_id, thread_id)",
    "return build(user_id, thread_id)",
    "global deps\n    deps = None",
    "global make\n    make = len",
    "thread_id = uuid.uuid4().hex\n    return create_user_execution_context(user_id, thread_id)",
    "return getattr(deps, 'create_user_execution_cont\\x65xt')",
    "return mock.patch('app.dependencies.create_user_execution_context')",
    "manager = create_websocket_manager(user_id)\n    return manager",
    "return WebSocketContext.create_for_user(items, user_id, thread_id)",
    "get_or_create_user_session = 1\n    return create_user_execution_context(user_id, thread_id)",
    "from app import dependencies as local\n    def inner():\n        nonlocal local\n"
    "        local = None\n    return local.create_user_execution_context(user_id, thread_id)",
    "return [create_user_execution_context(u, thread_id) for u in items]",
    "return user_id  # ctxmigrate: ignore",
)


def random_module(seed: int) -> str:
    import random

    rng = random.Random(seed)
    lines = rng.sample(MODULE_LEVEL, rng.randint(2, 6))
    if rng.random() < 0.5:  # the module name global bodies rebind, and sites reach through
        lines.insert(0, MODULE_LEVEL[0])
    for number in range(rng.randint(2, 6)):
        header = rng.choice(("def", "async def"))
        body = rng.choice(BODIES)
        if "await" in body:
            header = "async def"
        parameters = "items, user_id, thread_id"
        if "\n" not in body and rng.random() < 0.3:
            # A default evaluated at definition: a site on the header's line.
            parameters += ', context=create_user_execution_context("u", "t")'
            function = f"{header} f{number}({parameters}): {body}\n"
        else:
            function = f"{header} f{number}({parameters}):\n    {body}\n"
        if rng.random() < 0.3:
            method = textwrap.indent(function.replace("(items", "(self, items"), "    ")
            function = f"class C{number}:\n{method}"
        lines.append("\n" + function)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(60))
def test_random_files_have_the_same_findings_with_pruning(seed: int) -> None:
    full, pruned = both_analyses(random_module(seed))
    assert findings_of(pruned) == findings_of(full)
    assert pruned.pruned
