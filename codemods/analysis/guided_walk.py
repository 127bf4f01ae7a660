"""Walking only the parts of an ``ast`` tree where the text spells something
(and finding where it does: offsets of needles, lines as ``ast`` numbers them).

A full ``ast.walk`` of a site file costs about half of its parse; the nodes
that matter (a call of ``getattr`` naming a legacy function, a name spelled
like one) sit where the text spells a needle. ``nodes_within`` visits the
statements a predicate accepts (their range holds a needle's position) and,
inside them, descends into a nested block's statements only when the
predicate accepts those too.
"""

from __future__ import annotations

import ast
import bisect
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate

# What ends a line for ``ast`` (and LibCST): CRLF, CR, LF.
LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Lines:
    """Byte offsets of a text's lines, numbered as ``ast`` does (CRLF, CR and LF end one)."""

    starts: list[int]
    # Where each line's content ends (its line break starts).
    ends: list[int]

    @classmethod
    def of(cls, text: bytes) -> Lines:
        if b"\r" not in text:
            # Only LF: computed with C loops (map, accumulate), three times faster.
            lengths = list(map(len, text.split(b"\n")))
            starts = list(accumulate(map((1).__add__, lengths[:-1]), initial=0))
            return cls(starts, list(map(operator.add, starts, lengths)))
        starts, ends = [0], []
        for match in LINE_BREAK.finditer(text):
            ends.append(match.start())
            starts.append(match.end())
        ends.append(len(text))
        return cls(starts, ends)

    def offset(self, line: int, column: int) -> int:
        """The offset of ``column`` (in bytes) on line ``line``."""
        return self.starts[line - 1] + column

    def line_of(self, offset: int) -> int:
        """The number of the line holding ``offset``."""
        return bisect.bisect_right(self.starts, offset)


def offsets(text: bytes, needle: bytes) -> list[int]:
    """Where ``needle`` starts in ``text``, in order (overlaps included)."""
    found = []
    position = text.find(needle)
    while position >= 0:
        found.append(position)
        position = text.find(needle, position + 1)
    return found


def nodes_within(
    statements: list[ast.stmt], holds: Callable[[ast.stmt], bool]
) -> Iterator[ast.AST]:
    """Every node of each statement ``holds`` accepts (the statement first),
    except the nested statements (bodies, branches, handlers' and cases'
    bodies) ``holds`` rejects, with everything in them."""
    for statement in statements:
        if not holds(statement):
            continue
        pending: list[ast.AST] = [statement]
        while pending:
            node = pending.pop()
            yield node
            for _, field in ast.iter_fields(node):
                if isinstance(field, list) and field and isinstance(field[0], ast.stmt):
                    yield from nodes_within(field, holds)
                elif isinstance(field, list):
                    pending.extend(item for item in field if isinstance(item, ast.AST))
                elif isinstance(field, ast.AST):
                    pending.append(field)


def first_line(statement: ast.stmt) -> int:
    """The line a statement starts on: a decorated one at its first decorator."""
    decorators = getattr(statement, "decorator_list", None)
    return decorators[0].lineno if decorators else statement.lineno
