"""fix_source: what is preserved byte for byte, imports, approvals, and refusing bad output."""

from __future__ import annotations

import dataclasses
import sys
import textwrap

import libcst as cst
import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rewrite.planning import FixResult, fix_sources
from ctxmigrate.codemods.rules.adapt_websocket_context import AdaptWebSocketContextCodemod
from ctxmigrate.codemods.rules.reuse_session import ReuseSessionCodemod
from ctxmigrate.codemods.rules.reuse_websocket_manager import ReuseWebSocketManagerCodemod
from ctxmigrate.codemods.sites import Reference

from .support import LEGACY_CONFIG, LEGACY_MODULES

CODEMODS = (ReuseSessionCodemod(), AdaptWebSocketContextCodemod(), ReuseWebSocketManagerCodemod())
PATH = "app/handler.py"

HANDLER = textwrap.dedent(
    """\
    \"\"\"Handler.\"\"\"
    from app.dependencies import create_user_execution_context


    async def handle(u, t):
        # keep me
        return create_user_execution_context(
            user_id=u,
            thread_id=t,
        )
    """
)
HANDLER_FIXED = textwrap.dedent(
    """\
    \"\"\"Handler.\"\"\"
    from ctxmigrate.shim import get_or_create_user_session


    async def handle(u, t):
        # keep me
        return await get_or_create_user_session(
            user_id=u,
            thread_id=t,
        )
    """
)


def fix_bytes(
    source: bytes, accept: frozenset[tuple[str, int, int, str]] | None = None
) -> FixResult:
    return fix_sources({PATH: source, **LEGACY_MODULES}, LEGACY_CONFIG, CODEMODS, accept)[PATH]


def test_unix_file_is_the_reference_case() -> None:
    result = fix_bytes(HANDLER.encode())
    assert result.fixed == HANDLER_FIXED.encode()
    assert result.original == HANDLER.encode()
    assert result.path == PATH


def test_crlf_line_endings_are_kept_including_inserted_lines() -> None:
    result = fix_bytes(HANDLER.replace("\n", "\r\n").encode())
    assert result.fixed == HANDLER_FIXED.replace("\n", "\r\n").encode()
    assert result.fixed is not None
    assert result.fixed.count(b"\n") == result.fixed.count(b"\r\n")


def test_utf8_bom_is_kept() -> None:
    result = fix_bytes(b"\xef\xbb\xbf" + HANDLER.encode())
    assert result.fixed == b"\xef\xbb\xbf" + HANDLER_FIXED.encode()


def test_encoding_cookie_keeps_the_file_in_its_encoding() -> None:
    cookie = "# -*- coding: latin-1 -*-\n"
    source = (cookie + HANDLER.replace("keep me", "caf\u00e9")).encode("latin-1")
    result = fix_bytes(source)
    expected = (cookie + HANDLER_FIXED.replace("keep me", "caf\u00e9")).encode("latin-1")
    assert result.fixed == expected
    assert b"caf\xe9" in expected


def test_missing_final_newline_is_not_added() -> None:
    result = fix_bytes(HANDLER.rstrip("\n").encode())
    assert result.fixed == HANDLER_FIXED.rstrip("\n").encode()


def test_one_import_line_for_several_rules_and_sites() -> None:
    source = textwrap.dedent(
        """\
        from app.dependencies import create_user_execution_context
        from app.websocket import WebSocketContext, create_websocket_manager


        async def handle(ws, u, t):
            context = create_user_execution_context(user_id=u, thread_id=t)
            again = create_user_execution_context(user_id=u, thread_id=t)
            view = WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)
            manager = create_websocket_manager(context)
            return context, again, view, manager
        """
    ).encode()
    result = fix_bytes(source)
    assert result.fixed is not None
    text = result.fixed.decode()
    assert text.count("from ctxmigrate.shim import") == 1
    assert text.count("get_or_create_user_session") == 3  # the import and two sites
    assert "from app.dependencies import" not in text
    # create_websocket_manager is still used (as factory=), WebSocketContext is not.
    assert "from app.websocket import create_websocket_manager\n" in text
    assert [finding.rule for finding in result.applied] == ["CTX001", "CTX001", "CTX002", "CTX003"]
    assert fix_bytes(result.fixed).fixed is None


def test_accept_limits_the_fix_to_approved_sites() -> None:
    source = textwrap.dedent(
        """\
        from app.dependencies import create_user_execution_context


        async def first(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)


        async def second(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """
    ).encode()
    result = fix_bytes(source, accept=frozenset({(PATH, 9, 12, "CTX001")}))
    assert [(f.line, f.column) for f in result.applied] == [(9, 12)]
    assert result.fixed is not None
    text = result.fixed.decode()
    assert "    return create_user_execution_context(user_id=u, thread_id=t)" in text
    assert "    return await get_or_create_user_session(user_id=u, thread_id=t)" in text
    # The declined site still uses the legacy name: its import stays.
    assert "from app.dependencies import create_user_execution_context" in text
    [declined] = result.skipped
    assert declined.line == 5
    assert declined.message.startswith("not accepted: ")


def test_accepting_nothing_changes_nothing() -> None:
    result = fix_bytes(HANDLER.encode(), accept=frozenset())
    assert result.fixed is None
    assert result.applied == []


def test_file_without_rewrite_sites_is_untouched() -> None:
    source = b"def handle():\n    return 1\n"
    result = fix_bytes(source)
    assert result.fixed is None
    assert result.error is None
    assert result.applied == [] and result.skipped == []


def test_review_and_keep_findings_are_reported_as_skipped() -> None:
    source = textwrap.dedent(
        """\
        from app.dependencies import create_user_execution_context


        def sync(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)


        async def ignored(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)  # ctxmigrate: ignore
        """
    ).encode()
    result = fix_bytes(source)
    assert result.fixed is None
    assert [(f.line, f.category) for f in result.skipped] == [(5, "review"), (9, "keep")]


class _BrokenReuseSession(ReuseSessionCodemod):
    """Produces output that cannot parse, to prove it is never handed out."""

    def rewrite(self, ref: Reference, config: Config) -> cst.BaseExpression:
        return cst.Name("lambda")


def test_output_that_does_not_parse_leaves_the_file_untouched() -> None:
    broken = (_BrokenReuseSession(), *CODEMODS[1:])
    result = fix_sources({PATH: HANDLER.encode(), **LEGACY_MODULES}, LEGACY_CONFIG, broken)[PATH]
    assert result.fixed is None
    # One message, one position: the offending ``(`` of ``return lambda(``.
    assert result.error == (
        "the rewritten file does not parse: "
        "invalid syntax at line 7, column 18 of the rewritten text"
    )
    assert result.applied == []
    assert [(finding.category, finding.message) for finding in result.skipped] == [
        ("review", result.error)
    ]


def test_output_that_does_not_parse_in_newer_syntax_gets_libcst_position() -> None:
    # Python 3.11 cannot parse a ``type`` statement: its parser would blame it,
    # not the rewrite, so LibCST's own position is given (once).
    broken = (_BrokenReuseSession(), *CODEMODS[1:])
    source = "type Alias = int\n" + HANDLER
    result = fix_sources({PATH: source.encode(), **LEGACY_MODULES}, LEGACY_CONFIG, broken)[PATH]
    assert result.error == (
        "the rewritten file does not parse: "
        "expected one of *, **, :, NAME at line 9, column 1 of the rewritten text"
    )


def test_output_python_reads_is_not_parsed_again_with_libcst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ctxmigrate.codemods.rewrite import planning

    fixed = fix_bytes(HANDLER.encode())  # analysed (LibCST parses the input) before the patch
    assert fixed.fixed == HANDLER_FIXED.encode()

    def refuse(source: object) -> object:
        raise AssertionError("LibCST parsed output CPython reads")

    monkeypatch.setattr(planning.cst, "parse_module", refuse)
    planning._check_parses(HANDLER_FIXED.encode())
    # What CPython rejects still goes to LibCST, whose verdict stands.
    with pytest.raises(AssertionError, match="LibCST parsed"):
        planning._check_parses(b"type Alias = int\n" if sys.version_info < (3, 12) else b"x = (\n")


def test_result_is_a_plain_record_for_the_writer() -> None:
    result = fix_bytes(HANDLER.encode())
    assert result.changed
    assert dataclasses.asdict(result)["fixed"] == HANDLER_FIXED.encode()


# -- import statements: only the removed names' text goes ---------------------------

# A site that imports the legacy name beside OTHER_THING, which stays in use.
SITE = """

async def handle(u, t):
    return create_user_execution_context(user_id=u, thread_id=t), OTHER_THING
"""
SITE_FIXED = """from ctxmigrate.shim import get_or_create_user_session


async def handle(u, t):
    return await get_or_create_user_session(user_id=u, thread_id=t), OTHER_THING
"""
MULTI_LINE_IMPORT = (
    "from app.dependencies import (\n"
    "    OTHER_THING,  # used below\n"
    "    create_user_execution_context,  # legacy\n"
    ")\n"
)


def test_noop_keeps_a_multi_line_import_a_review_site_still_uses() -> None:
    source = MULTI_LINE_IMPORT + SITE.replace("async def", "def")
    assert fix_bytes(source.encode()).fixed is None


def test_noop_keeps_the_aliased_shim_import_when_nothing_is_rewritten() -> None:
    source = "from ctxmigrate.shim import get_or_create_user_session as goc\n" + SITE.replace(
        "async def", "def"
    )
    assert fix_bytes(source.encode()).fixed is None


@pytest.mark.parametrize(
    ("imports", "kept"),
    [
        pytest.param(
            MULTI_LINE_IMPORT,
            "from app.dependencies import (\n    OTHER_THING,  # used below\n)\n",
            id="last-with-trailing-comma",
        ),
        pytest.param(
            "from app.dependencies import (\n"
            "    OTHER_THING,  # used below\n"
            "    create_user_execution_context  # legacy\n"
            ")\n",
            "from app.dependencies import (\n    OTHER_THING  # used below\n)\n",
            id="last-without-trailing-comma",
        ),
        pytest.param(
            "from app.dependencies import (\n"
            "    create_user_execution_context,  # legacy\n"
            "    OTHER_THING,  # used below\n"
            ")\n",
            "from app.dependencies import (\n    OTHER_THING,  # used below\n)\n",
            id="first",
        ),
        pytest.param(
            "from app.dependencies import (  # app names\n"
            "    OTHER_THING,  # used below\n"
            "    # the factory\n"
            "    create_user_execution_context,  # legacy\n"
            "\n"
            "    OTHER_THING as OTHER,   # also used\n"
            "  )\n",
            "from app.dependencies import (  # app names\n"
            "    OTHER_THING,  # used below\n"
            "    # the factory\n"
            "\n"
            "    OTHER_THING as OTHER,   # also used\n"
            "  )\n",
            id="middle",
        ),
        pytest.param(
            "from app.dependencies import (OTHER_THING, create_user_execution_context)\n",
            "from app.dependencies import (OTHER_THING)\n",
            id="one-line-parenthesized",
        ),
        pytest.param(
            "from app.dependencies import (OTHER_THING, create_user_execution_context,)\n",
            "from app.dependencies import (OTHER_THING,)\n",
            id="one-line-trailing-comma",
        ),
        pytest.param(
            "from app.dependencies import (\n"
            "    OTHER_THING,\n"
            "\n"
            "    create_user_execution_context,\n"
            ")\n",
            "from app.dependencies import (\n    OTHER_THING,\n)\n",
            id="last-after-a-blank-line",
        ),
        pytest.param(
            "from app.dependencies import (create_user_execution_context,\n"
            "                              OTHER_THING)  # both\n",
            "from app.dependencies import (OTHER_THING)  # both\n",
            id="first-of-two-lines",
        ),
        pytest.param(
            "from app.dependencies import (create_user_execution_context,  # legacy\n"
            "                              OTHER_THING)\n",
            "from app.dependencies import (  # legacy\n"
            "                              OTHER_THING)\n",
            id="first-of-two-lines-with-a-comment",
        ),
        pytest.param(
            "from app.dependencies import (OTHER_THING, OTHER_THING as OTHER,\n"
            "                              create_user_execution_context)\n",
            "from app.dependencies import (OTHER_THING, OTHER_THING as OTHER)\n",
            id="grid-last",
        ),
        pytest.param(
            "from app.dependencies import (OTHER_THING,  # used below\n"
            "                              create_user_execution_context)\n",
            "from app.dependencies import (OTHER_THING  # used below\n)\n",
            id="grid-last-after-a-comment",
        ),
        pytest.param(
            "from app.dependencies import (\n"
            "    OTHER_THING, create_user_execution_context,  # both\n"
            ")\n",
            "from app.dependencies import (\n    OTHER_THING,  # both\n)\n",
            id="second-on-a-shared-line",
        ),
        pytest.param(
            "from app.dependencies import create_user_execution_context, OTHER_THING  # x\n",
            "from app.dependencies import OTHER_THING  # x\n",
            id="single-line-first",
        ),
        pytest.param(
            "from app.dependencies import OTHER_THING,  create_user_execution_context\n",
            "from app.dependencies import OTHER_THING\n",
            id="single-line-last",
        ),
    ],
)
def test_removing_a_name_keeps_the_other_names_as_written(imports: str, kept: str) -> None:
    result = fix_bytes((imports + SITE).encode())
    assert result.fixed == (kept + SITE_FIXED).encode()
    assert fix_bytes(result.fixed).fixed is None


def test_removing_several_names_keeps_the_remaining_lines() -> None:
    source = (
        "from app.dependencies import (\n"
        "    create_user_execution_context as make,  # alias\n"
        "    OTHER_THING,  # used below\n"
        "    create_user_execution_context,  # legacy\n"
        ")\n"
        "\n"
        "\n"
        "async def handle(u, t):\n"
        "    return make(u, t), create_user_execution_context(u, t), OTHER_THING\n"
    )
    result = fix_bytes(source.encode())
    assert result.fixed == (
        b"from app.dependencies import (\n"
        b"    OTHER_THING,  # used below\n"
        b")\n"
        b"from ctxmigrate.shim import get_or_create_user_session\n"
        b"\n"
        b"\n"
        b"async def handle(u, t):\n"
        b"    return await get_or_create_user_session(user_id=u, thread_id=t), "
        b"await get_or_create_user_session(user_id=u, thread_id=t), OTHER_THING\n"
    )


@pytest.mark.parametrize(
    ("imports", "kept"),
    [
        ("import app.dependencies, os  # x\n", "import os  # x\n"),
        ("import os, app.dependencies\n", "import os\n"),
        ("import os, app.dependencies, sys\n", "import os, sys\n"),
        ("import os,  \\\n    app.dependencies\n", "import os\n"),
    ],
    ids=["first", "last", "middle", "continued-line"],
)
def test_removing_a_module_from_a_plain_import_keeps_the_others(imports: str, kept: str) -> None:
    source = imports + SITE.replace(
        "create_user_execution_context(", "app.dependencies.create_user_execution_context("
    ).replace(", OTHER_THING", ", os")
    result = fix_bytes(source.encode())
    assert result.fixed == (kept + SITE_FIXED.replace(", OTHER_THING", ", os")).encode()


# -- the new import line: nothing added around it -----------------------------------


def test_replacing_the_only_import_adds_no_blank_line() -> None:
    source = (
        "#!/usr/bin/env python\n"
        '"""Doc."""\n'
        "# leading comment for import\n"
        "from app.dependencies import create_user_execution_context  # legacy factory\n"
        "# trailing comment block\n"
        "CONST = 1\n"
        "\n"
        "\n"
        "async def handle(u, t):\n"
        "    return create_user_execution_context(u, t)\n"
    )
    result = fix_bytes(source.encode())
    assert result.fixed == (
        b"#!/usr/bin/env python\n"
        b'"""Doc."""\n'
        b"# leading comment for import\n"
        b"from ctxmigrate.shim import get_or_create_user_session\n"
        b"# trailing comment block\n"
        b"CONST = 1\n"
        b"\n"
        b"\n"
        b"async def handle(u, t):\n"
        b"    return await get_or_create_user_session(user_id=u, thread_id=t)\n"
    )


def test_new_import_joining_other_imports_adds_no_blank_line() -> None:
    source = (
        "import os\n"
        "CONST = os.sep\n"
        "\n"
        "\n"
        "async def handle(u, t):\n"
        "    from app.dependencies import create_user_execution_context\n"
        "\n"
        "    return create_user_execution_context(u, t)\n"
    )
    result = fix_bytes(source.encode())
    assert result.fixed == (
        b"import os\n"
        b"from ctxmigrate.shim import get_or_create_user_session\n"
        b"CONST = os.sep\n"
        b"\n"
        b"\n"
        b"async def handle(u, t):\n"
        b"    return await get_or_create_user_session(user_id=u, thread_id=t)\n"
    )


def test_new_import_goes_after_a_line_of_several_imports() -> None:
    source = (
        "import os; from app.dependencies import create_user_execution_context; import sys\n"
        "\n"
        "\n"
        "async def handle(u, t):\n"
        "    return create_user_execution_context(u, t), os, sys\n"
    )
    result = fix_bytes(source.encode())
    assert result.fixed == (
        b"import os; import sys\n"
        b"from ctxmigrate.shim import get_or_create_user_session\n"
        b"\n"
        b"\n"
        b"async def handle(u, t):\n"
        b"    return await get_or_create_user_session(user_id=u, thread_id=t), os, sys\n"
    )


def test_first_top_level_import_is_set_apart_from_the_code() -> None:
    source = (
        "async def handle(u, t):\n"
        "    from app.dependencies import create_user_execution_context\n"
        "\n"
        "    return create_user_execution_context(u, t)\n"
    )
    result = fix_bytes(source.encode())
    assert result.fixed == (
        b"from ctxmigrate.shim import get_or_create_user_session\n"
        b"\n"
        b"async def handle(u, t):\n"
        b"    return await get_or_create_user_session(user_id=u, thread_id=t)\n"
    )


def test_aliased_import_of_the_new_name_gets_a_plain_import_beside_it() -> None:
    source = (
        "from app.dependencies import create_user_execution_context\n"
        "from ctxmigrate.shim import configure, get_or_create_user_session as goc\n"
        "\n"
        "\n"
        "async def handle(u, t):\n"
        "    return create_user_execution_context(u, t), goc, configure\n"
    )
    result = fix_bytes(source.encode())
    assert result.fixed == (
        b"from ctxmigrate.shim import configure, get_or_create_user_session as goc\n"
        b"from ctxmigrate.shim import get_or_create_user_session\n"
        b"\n"
        b"\n"
        b"async def handle(u, t):\n"
        b"    return await get_or_create_user_session(user_id=u, thread_id=t), goc, configure\n"
    )


# --- the import edits' shortcuts (import_edits.remove_imports, AddImports' top block)


def _no_scope_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    from libcst.codemod.visitors._gather_unused_imports import GatherUnusedImportsVisitor

    def refuse(self: object, node: cst.Module) -> None:
        raise AssertionError("LibCST's scope analysis ran")

    monkeypatch.setattr(GatherUnusedImportsVisitor, "visit_Module", refuse)


def test_an_import_spelled_nowhere_else_goes_without_libcst_scope_analysis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_scope_analysis(monkeypatch)

    assert fix_bytes(HANDLER.encode()).fixed == HANDLER_FIXED.encode()


def test_the_shortcut_still_removes_an_unused_import_nested_in_a_function_or_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It rebuilds only what holds an import: the nested ones are reached."""
    _no_scope_analysis(monkeypatch)
    nested = (
        "\n\nclass Later:\n    def reload(self):\n        x = 1\n"
        "        if x:\n            from app.dependencies import create_user_execution_context\n"
        "        return x\n"
    )
    kept = "\n\nclass Later:\n    def reload(self):\n        x = 1\n        if x:\n"
    kept += "            pass\n        return x\n"

    assert fix_bytes((HANDLER + nested).encode()).fixed == (HANDLER_FIXED + kept).encode()


@pytest.mark.parametrize(
    "annotation",
    ['"create_user_execution_context"', '"list[create_user_execution_context]"'],
)
def test_a_name_used_in_a_string_annotation_keeps_its_import(annotation: str) -> None:
    """LibCST reads annotations in quotes; its scope analysis decides then."""
    source = HANDLER + f"\n\ndef typed(factory: {annotation}) -> None:\n    pass\n"

    result = fix_bytes(source.encode())

    assert result.fixed is not None
    assert b"from app.dependencies import create_user_execution_context\n" in result.fixed
    assert b"await get_or_create_user_session(" in result.fixed


def test_a_name_only_a_docstring_mentions_still_loses_its_import() -> None:
    """A string holding the name sends the file through LibCST's analysis,
    which reads no use in a docstring: the same rewrite."""
    mention = '    """Not create_user_execution_context any more."""\n'
    source = HANDLER.replace("    # keep me\n", mention + "    # keep me\n")

    result = fix_bytes(source.encode())

    assert (
        result.fixed
        == HANDLER_FIXED.replace("    # keep me\n", mention + "    # keep me\n").encode()
    )


def test_a_shim_import_below_the_top_block_is_not_extended() -> None:
    """LibCST joins a new name to an existing import only at the top of the
    module; handed only the top block, it must still see where that ends."""
    source = textwrap.dedent(
        """\
        from app.dependencies import create_user_execution_context

        LIMIT = 3
        from ctxmigrate.shim import session_websocket_context


        async def handle(u, t):
            return create_user_execution_context(user_id=u, thread_id=t)
        """
    )

    result = fix_bytes(source.encode())

    assert (
        result.fixed
        == textwrap.dedent(
            """\
        from ctxmigrate.shim import get_or_create_user_session

        LIMIT = 3
        from ctxmigrate.shim import session_websocket_context


        async def handle(u, t):
            return await get_or_create_user_session(user_id=u, thread_id=t)
        """
        ).encode()
    )
