"""fix_source: what is preserved byte for byte, imports, approvals, and refusing bad output."""

from __future__ import annotations

import dataclasses
import textwrap

import libcst as cst

from ctxmigrate.codemods.adapt_websocket_context import AdaptWebSocketContextCodemod
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.fix import FixResult, fix_sources
from ctxmigrate.codemods.reuse_session import ReuseSessionCodemod
from ctxmigrate.codemods.reuse_websocket_manager import ReuseWebSocketManagerCodemod
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
    assert result.error is not None
    assert "does not parse" in result.error
    assert result.applied == []
    assert [finding.category for finding in result.skipped] == ["review"]


def test_result_is_a_plain_record_for_the_writer() -> None:
    result = fix_bytes(HANDLER.encode())
    assert result.changed
    assert dataclasses.asdict(result)["fixed"] == HANDLER_FIXED.encode()
