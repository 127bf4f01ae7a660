"""Walking only the parts of an ``ast`` tree where the text spells something
(and finding where it does).

A full ``ast.walk`` of a site file costs about half of its parse; the nodes
that matter (a call of ``getattr`` naming a legacy function, a name spelled
like one) sit where the text spells a needle. ``nodes_within`` visits the
statements a predicate accepts (their range holds a needle's position) and,
inside them, descends into a nested block's statements only when the
predicate accepts those too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator

# What ends a line for ``ast`` (and LibCST): CRLF, CR, LF.
LINE_BREAK = re.compile(rb"\r\n|\r|\n")


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
