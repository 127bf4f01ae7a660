"""Line/column spans for the few nodes a report needs, without ``PositionProvider``.

``PositionProvider`` records a range for every node of the module; on a 150 KB
file that costs about 1.6x the parse itself, while plain code generation
costs about 0.25x. A file has a handful of reported nodes, so one code
generation pass that records character offsets only for those nodes, then
maps offsets to lines in the generated text, gives the same ranges (LibCST's
syntactic positions: parentheses and surrounding whitespace excluded).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import libcst as cst
from libcst._nodes.internal import CodegenState

from ctxmigrate.codemods.sites import Span

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Recorder:
    """Context manager recording the character range of one wanted node."""

    __slots__ = ("key", "start", "state")

    def __init__(self, state: _OffsetRecordingState, key: int) -> None:
        self.state = state
        self.key = key
        self.start = 0

    def __enter__(self) -> None:
        self.start = self.state.offset()

    def __exit__(self, *exc_info: object) -> None:
        self.state.ranges[self.key] = (self.start, self.state.offset())


class _OffsetRecordingState(CodegenState):
    """Code generation that records the character range of the wanted nodes only.

    Every node enters ``record_syntactic_position``; for the unwanted ones a
    shared no-op context manager is returned (the generator-based one of the
    base class costs more than the rest of code generation). Offsets are
    summed lazily from the token list, only when a wanted node needs one.
    """

    def __init__(self, module: cst.Module, wanted: frozenset[int]) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.wanted = wanted
        self.ranges: dict[int, tuple[int, int]] = {}
        self._counted_tokens = 0
        self._counted_length = 0

    def offset(self) -> int:
        tokens = self.tokens
        if self._counted_tokens < len(tokens):
            self._counted_length += sum(map(len, tokens[self._counted_tokens :]))
            self._counted_tokens = len(tokens)
        return self._counted_length

    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> AbstractContextManager[None]:
        key = id(node)
        if key in self.wanted:
            return _Recorder(self, key)
        return _NOTHING


_NOTHING: AbstractContextManager[None] = nullcontext()


@dataclass(frozen=True)
class SourceLines:
    """The module's text with its line starts, to turn offsets into 1-based positions."""

    text: str
    starts: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> SourceLines:
        starts = [0]
        starts.extend(match.end() for match in _LINE_BREAK.finditer(text))
        return cls(text, tuple(starts))

    def position(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1

    def line(self, number: int) -> str:
        """Line ``number`` (1-based) without its line break."""
        if number < 1 or number > len(self.starts):
            return ""
        start = self.starts[number - 1]
        end = self.starts[number] if number < len(self.starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")


def node_spans(
    module: cst.Module, nodes: Iterable[cst.CSTNode]
) -> tuple[dict[int, Span], SourceLines]:
    """Spans of ``nodes`` (keyed by ``id(node)``) and the module's lines up to
    the end of the last top-level statement that holds one of them (at least
    every line a node spans)."""
    wanted = frozenset(id(node) for node in nodes)
    state = _OffsetRecordingState(module, wanted)
    # What ``Module._codegen_impl`` does, stopped once every wanted node is seen:
    # the statements after it cannot move it, and printing them costs as much
    # again on a long file.
    for empty_line in module.header:
        empty_line._codegen(state)
    for statement in module.body:
        if len(state.ranges) == len(wanted):
            break
        statement._codegen(state)
    else:  # printed to the end: the footer and the final line break as LibCST does
        for empty_line in module.footer:
            empty_line._codegen(state)
        if not module.has_trailing_newline:
            state.pop_trailing_newline()
        elif not state.tokens:
            state.add_token(state.default_newline)
    lines = SourceLines.of("".join(state.tokens))
    spans: dict[int, Span] = {}
    for key, (start, end) in state.ranges.items():
        line, column = lines.position(start)
        end_line, end_column = lines.position(end)
        spans[key] = Span(line, column, end_line, end_column)
    return spans, lines
