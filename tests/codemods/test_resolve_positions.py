"""Positions and module summaries: the fast paths agree with the slow references.

``positions.node_spans`` must give LibCST's ``PositionProvider`` ranges (in
characters, 1-based, end exclusive), and the ``ast`` module summary must equal
the LibCST one that files with newer syntax get.
"""

from __future__ import annotations

import ast
import textwrap

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from ctxmigrate.codemods.analysis.scopes import ScopeWalker, summarize_cst
from ctxmigrate.codemods.analysis.summaries import Binding, summarize_ast
from ctxmigrate.codemods.positions import SourceLines, _OffsetRecordingState, node_spans

SAMPLE = """\
# -*- coding: utf-8 -*-
import a.b as c, d.e
from . import sibling
from ..parent import thing as other, more
from .deps import *
try:
    from fast import impl
except ImportError:
    from slow import impl
if TYPE_CHECKING:
    from typing import Any
make = c.factory
label: str = "café"
alias: Any = sibling.create
__all__ = ["make", "impl"]
__all__ += ["label"]
for index, (left, *rest) in enumerate([]):
    pass
with open("x") as (handle, other_handle):
    del handle
class WebSocketContext(Base):
    @classmethod
    def create_for_user(cls, websocket, user_id, *, thread_id=None):
        return cls()
async def handler(user_id, /, thread_id, *args, run_id=None, **kwargs):
    global shared
    shared = 1
    return (créé := (await build(user_id=user_id,
                                  thread_id=thread_id)))
"""


def test_spans_match_position_provider_with_unicode_and_crlf() -> None:
    for text in (SAMPLE, SAMPLE.replace("\n", "\r\n")):
        module = cst.parse_module(text)
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        expected = wrapper.resolve(PositionProvider)
        wanted = [
            node
            for node in expected
            if isinstance(node, cst.Call | cst.Name | cst.Attribute | cst.SimpleString)
        ]
        spans, _ = node_spans(module, wanted)
        assert len(wanted) > 40
        for node in wanted:
            position = expected[node]
            span = spans[id(node)]
            assert (span.line, span.column) == (position.start.line, position.start.column + 1)
            assert (span.end_line, span.end_column) == (position.end.line, position.end.column + 1)


def test_spans_print_the_module_only_up_to_the_last_statement_holding_a_node() -> None:
    text = "# header\nfirst = 1\nsecond = call(2)  # comment\n\n\ndef later():\n    return 3\n"
    module = cst.parse_module(text)
    statement = module.body[1]
    assert isinstance(statement, cst.SimpleStatementLine)
    call = statement.body[0].value  # type: ignore[attr-defined]
    spans, lines = node_spans(module, [call])
    assert (spans[id(call)].line, spans[id(call)].column) == (3, 10)
    assert lines.line(3) == "second = call(2)  # comment"
    assert "later" not in lines.text
    # The last statement (its range holds its line break): printed to the end as
    # LibCST prints a module (footer, final line break popped when missing).
    for source in (text, text.rstrip("\n"), text + "# footer\n"):
        module = cst.parse_module(source)
        last = module.body[-1]
        state = _OffsetRecordingState(module, frozenset({id(last)}))
        module._codegen(state)
        full = SourceLines.of("".join(state.tokens))
        start, end = state.ranges[id(last)]
        spans, lines = node_spans(module, [last])
        span = spans[id(last)]
        assert ((span.line, span.column), (span.end_line, span.end_column)) == (
            full.position(start),
            full.position(end),
        )
        assert lines.text == full.text == source


def test_source_lines_maps_offsets_and_strips_line_breaks() -> None:
    lines = SourceLines.of("ab\r\ncé\rd\n")
    assert lines.position(0) == (1, 1)
    assert lines.position(5) == (2, 2)
    assert lines.position(7) == (3, 1)
    assert [lines.line(number) for number in (1, 2, 3, 4, 5)] == ["ab", "cé", "d", "", ""]


@pytest.mark.parametrize(("module", "is_package"), [("pkg.mod", False), ("pkg.sub", True)])
def test_ast_and_libcst_summaries_agree(module: str, is_package: bool) -> None:
    walker = ScopeWalker(module, is_package)
    walker.walk(cst.parse_module(SAMPLE))
    from_cst = summarize_cst(walker, [])
    from_ast = summarize_ast(ast.parse(SAMPLE), module, is_package, SAMPLE)
    assert from_ast.bindings == from_cst.bindings
    assert from_ast.star_imports == from_cst.star_imports
    assert from_ast.all_names == from_cst.all_names == ("make", "impl", "label")
    assert set(from_ast.bindings) >= {"c", "d", "sibling", "other", "impl", "make", "shared"}


def test_summary_records_imports_relative_to_the_package() -> None:
    summary = summarize_ast(ast.parse(SAMPLE), "pkg.mod", False, SAMPLE)
    # ``from ..parent import thing as other`` in pkg.mod: one level above pkg.
    assert summary.bindings["other"] == (Binding("other"),)
    assert summary.bindings["more"] == (Binding("other"),)
    assert summary.star_imports == ("pkg.deps",)
    assert [b.module for b in summary.bindings["impl"]] == ["fast", "slow"]
    assert summary.bindings["c"][0].module == "a.b"
    assert summary.bindings["d"][0].module == "d"
    assert summary.bindings["make"][0].name == "c.factory"
    assert summary.bindings["WebSocketContext"][0].params == (
        "cls",
        "websocket",
        "user_id",
        "*",
        "thread_id",
    )
    assert summary.bindings["handler"][0].params == (
        "user_id",
        "thread_id",
        "*args",
        "run_id",
        "**kwargs",
    )
    census = summary.classes
    assert [(c.name, c.line, c.column, c.end_column) for c in census] == [
        ("WebSocketContext", 21, 1, 23)
    ]


def test_census_columns_count_characters() -> None:
    text = textwrap.dedent(
        """\
        é = "où"
        if é:
            class UserExecutionContext: pass  # ctxmigrate: ignore[CTX104]
        """
    )
    [site] = summarize_ast(ast.parse(text), "m", False, text).classes
    assert (site.line, site.column, site.end_column) == (3, 5, 31)
    assert site.suppressed == frozenset({"CTX104"})
