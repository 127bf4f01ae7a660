"""The audit's LibCST parse reads less: what cannot change a finding is emptied.

A site file is often hundreds of lines long while its sites sit in one or two
functions; parsing, walking and printing the rest with LibCST is most of a cold
audit's time. ``pruned_source`` reads the file with ``ast`` and empties the
body of every function that cannot affect a finding, keeping every line and
every column of what remains where it was: the body's text, from its first
statement to the end of its last line, becomes ``pass`` when it is one line
(``def f(): return 1`` becomes ``def f(): pass``), else a triple-quoted string
holding only the line breaks it held, opened where the first statement
started and closed at the start of the last line: one token for LibCST.
Decorators, parameters, defaults, annotations, the return annotation, the
function's name and everything outside function bodies (module level, class
bodies) are kept as written, so every enclosing ``def``/``class`` name a
finding reports is still there.

The rule. A function body (``def`` or ``async def``, at any depth: methods,
nested functions, defs inside ``if``/``try``) is pruned when the text it
occupies (from its first statement to the end of its last line, comments and
strings included) contains none of these, as a substring:

- a *relevant name*: the known legacy names and aliases (the project index's
  ``known_names``: what the resolving pass notes), the legacy classes' factory
  methods (``create_for_user``), the names the rewrites would import
  (``get_or_create_user_session``...), and, transitively, every name bound at
  module or class level by a statement whose text contains a relevant name
  (``make = create_user_execution_context`` makes ``make`` relevant;
  ``from deps import create_user_execution_context as make`` too, an import
  counting name by name: ``get_db`` imported beside it is not);
- a call of ``getattr`` with a string constant whose value (escapes
  evaluated: the text may not show it) is a relevant name: CTX102 reads such
  a call. Other uses (``getattr(self, "created_at", None)``, a comment) keep
  nothing;
- ``global`` or ``nonlocal`` (a body that rebinds a module or enclosing name
  changes what a kept site resolves to, or whether the rewrite's import would
  clash: ``new_name_clash``);
- ``ctxmigrate`` in any case (a suppression comment on a line a kept finding
  shares, or a string quoting one).

Otherwise the body is kept and the functions nested in it are examined the same
way. Why that is enough: the resolving pass notes only names, attributes,
calls and strings that spell a relevant name (or ``getattr`` of one), so a body
without one holds no reference and no audit-only site (CTX101's assignments
are read only in the scope of a reference); its bindings are local to it and
to the scopes nested in it, which are pruned with it, unless ``global`` or
``nonlocal`` says otherwise; what a ``def`` binds (its name, parameters, async
or not) and what a class binds come from the kept header and class body;
``await`` detection, method receivers and ``new_name_clash`` look only at the
scopes that enclose a kept site. Positions come from the code LibCST prints,
which is the pruned text: kept nodes print at their original line and column.

Then whole definitions. A ``def``, ``async def`` or ``class`` statement at
module level (decorators included) is dropped, its line left empty (one line)
or its lines made a string literal of their line breaks as above, when its
text holds none of the substrings above and the name it binds
appears nowhere else in the text LibCST will read (the file with the bodies
above emptied): no kept code can then resolve to it, so dropping the binding
changes no finding, and it holds no reference or site of its own. A name
spelled anywhere else (a call, ``__all__``, a base class, a decorator, a
kept body, even as part of a longer word) keeps it; a name spelled only in
pruned bodies does not. Below module level nothing is dropped whole (an
emptied block would not parse). On the 5,200-file benchmark tree this
takes the site files' kept non-blank lines from 4,597 to 1,783. Dropped
definitions apart only by blank lines become one string with those lines
(a comment between them stays): LibCST makes three nodes of every blank
line, a fifth of all the nodes of those files (24,951 to 19,647; their
parse 0.047 s to 0.039 s).

Not pruned at all: a file ``ast`` cannot read (syntax newer than the running
interpreter), a file in another encoding than UTF-8 (``ast`` columns count
UTF-8 bytes), and a file where nothing qualifies. A rewrite needs the real
tree (``fix_source`` refuses an analysis made from pruned text): ``apply``
decides from the pruned text which files it rewrites (the findings are the
same) and parses only those whole.
"""

from __future__ import annotations

import ast
import bisect
import io
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ctxmigrate.codemods.analysis.guided_walk import LINE_BREAK, Lines, nodes_within, offsets

_BOM = b"\xef\xbb\xbf"
# Text that keeps a body whatever the names: see the module docstring.
ALWAYS_RELEVANT = ("global", "nonlocal")
SUPPRESSION_MARKER = b"ctxmigrate"
_QUOTES = b'"""'


@dataclass(frozen=True)
class PrunedText:
    """What ``pruned_source`` made of a file (None: nothing to prune) with ``names``.

    The summary phase prunes while it holds the file's ``ast`` tree; the
    analysis reuses the result when the names it needs are among ``names``
    (pruning with more names only keeps more), and prunes again otherwise.
    """

    names: frozenset[str]
    text: bytes | None


def pruned_source(
    source: bytes, names: Iterable[str], tree: ast.Module | None = None
) -> bytes | None:
    """``source`` with the function bodies, then the module-level definitions,
    that cannot change a finding emptied.

    ``names``: the relevant names before the transitive closure (known legacy
    names and aliases, factory methods, the names rewrites import). None when
    nothing is pruned or the file is not pruned at all (see the module
    docstring); the result is otherwise the same length in lines, with every
    kept character at its original line and column. ``tree``: ``ast``'s tree
    of ``source``, when the caller has it (not parsed again).
    """
    if not _is_utf8(source):
        return None
    if tree is None:
        # Imported here: parsing imports this module.
        from ctxmigrate.codemods.analysis.parsing import ast_or_none

        tree = ast_or_none(source)
        if tree is None:
            return None
    bom = source.startswith(_BOM)
    text = source[len(_BOM) :] if bom else source
    lines = Lines.of(text)
    relevant = _relevant_names(tree, text, lines, names)
    occurrences = _occurrences(text, (*sorted(relevant), *ALWAYS_RELEVANT))
    getattrs = offsets(text, b"getattr")
    if getattrs:
        occurrences = sorted(
            (*occurrences, *_noted_getattr_calls(tree.body, text, lines, getattrs, relevant))
        )
    bodies = _replaced(text, sorted(_prunable_bodies(tree.body, text, lines, occurrences)), b"pass")
    if bodies is None:
        return None
    unused = _merged(
        sorted(_unused_definitions(tree.body, text, lines, occurrences, bodies)), bodies
    )
    result = _replaced(bodies, unused, b"")
    if result is None or result is text:
        return None
    return (_BOM if bom else b"") + result


def _merged(ranges: list[tuple[int, int]], text: bytes) -> list[tuple[int, int]]:
    """``ranges`` (sorted, disjoint), those separated by nothing but blank
    lines made one: one string then stands for the dropped definitions and the
    blank lines between them (LibCST makes three nodes of each blank line)."""
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and not text[merged[-1][1] : start].strip():
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _replaced(text: bytes, ranges: list[tuple[int, int]], filler: bytes) -> bytes | None:
    """``text`` with each range replaced by ``filler`` when it holds no line
    break, else by a string literal holding the line breaks it held (so every
    later line keeps its number); ``text`` itself when there is no range, None
    when ranges overlap (never expected; the full text is safe).

    Why a string: LibCST makes a node of every empty line (three of them, and
    their validation), but one token of a string, whatever its length: the
    benchmark's site files parse in 0.076 s instead of 0.100 s. The string is
    a statement of its own (a function's whole body, or a module-level
    statement in place of a dropped definition), which no rule reads: the
    resolving pass notes a string only when it spells a relevant name.
    """
    if not ranges:
        return text
    pieces: list[bytes] = []
    done = 0
    for start, end in ranges:
        if start < done:
            return None
        pieces.append(text[done:start])
        if b"\r" in text:
            breaks = [match.group() for match in LINE_BREAK.finditer(text, start, end)]
        else:
            breaks = [b"\n"] * text.count(b"\n", start, end)
        if breaks:
            pieces.append(_QUOTES)
            pieces.extend(breaks)
            pieces.append(_QUOTES)
        else:
            pieces.append(filler)
        done = end
    pieces.append(text[done:])
    return b"".join(pieces)


def _unused_definitions(
    statements: list[ast.stmt],
    text: bytes,
    lines: Lines,
    occurrences: list[int],
    pruned: bytes,
) -> Iterator[tuple[int, int]]:
    """(start, end) ranges of ``pruned`` holding a module-level ``def`` or
    ``class`` (decorators included) that can be dropped whole: its text holds
    no needle, and the name it binds appears nowhere else in ``pruned`` (the
    text LibCST will read), so no kept code can resolve to it.

    ``pruned`` has the lines of ``text``; what precedes a module-level
    statement on its line is never pruned, so its column is the same too.
    """
    pruned_lines = Lines.of(pruned)
    for statement in statements:
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        assert statement.end_lineno is not None
        start = _statement_start(statement, text, lines)
        end = lines.ends[statement.end_lineno - 1]
        index = bisect.bisect_left(occurrences, start)
        if index < len(occurrences) and occurrences[index] < end:
            continue
        first_line = lines.line_of(start)
        pruned_start = pruned_lines.starts[first_line - 1] + (start - lines.starts[first_line - 1])
        pruned_end = pruned_lines.ends[statement.end_lineno - 1]
        name = statement.name.encode()
        if name in pruned[:pruned_start] or name in pruned[pruned_end:]:
            continue
        yield pruned_start, pruned_end


def _is_utf8(source: bytes) -> bool:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except (SyntaxError, LookupError):
        return False
    return encoding in ("utf-8", "utf-8-sig")


def _occurrences(text: bytes, needles: Iterable[str]) -> list[int]:
    """Sorted offsets where a needle (or the suppression marker, in any case) starts."""
    found: list[int] = []
    for needle in needles:
        if needle:
            found.extend(offsets(text, needle.encode()))
    found.extend(offsets(text.lower(), SUPPRESSION_MARKER))
    found.sort()
    return found


def _noted_getattr_calls(
    statements: list[ast.stmt], text: bytes, lines: Lines, spelled: list[int], relevant: set[str]
) -> Iterator[int]:
    """Where each ``getattr(...)`` call the resolving pass may note as a site
    starts: the builtin's name called with a string constant whose value (escapes
    evaluated) is a relevant name. Only the statements whose text holds one of
    ``spelled`` (where ``getattr`` is spelled) are looked into, block by block.

    CTX102 reads ``getattr(owner, "name")`` with the name a string literal;
    any argument counts here (over-approximating keeps more), and a
    ``getattr`` that is not such a call (a comment, ``getattr(self, attr)``,
    ``getattr(self, "created_at", None)``) no longer keeps a body.
    """

    def holds(statement: ast.stmt) -> bool:
        assert statement.end_lineno is not None and statement.end_col_offset is not None
        start = _statement_start(statement, text, lines)
        end = lines.offset(statement.end_lineno, statement.end_col_offset)
        index = bisect.bisect_left(spelled, start)
        return index < len(spelled) and spelled[index] < end

    for node in nodes_within(statements, holds):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and any(
                isinstance(argument, ast.Constant)
                and isinstance(argument.value, str)
                and argument.value in relevant
                for argument in (*node.args, *(keyword.value for keyword in node.keywords))
            )
        ):
            yield lines.offset(node.func.lineno, node.func.col_offset)


def _prunable_bodies(
    statements: list[ast.stmt], text: bytes, lines: Lines, occurrences: list[int]
) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges to replace, in text order, disjoint."""
    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            first, last = statement.body[0], statement.body[-1]
            assert last.end_lineno is not None
            start = _statement_start(first, text, lines)
            # To the end of the last line: a trailing ``;``, comment or ``\`` goes too.
            end = lines.ends[last.end_lineno - 1]
            index = bisect.bisect_left(occurrences, start)
            # No needle holds whitespace or ``:``, so none starts before ``start`` and
            # reaches into the body: the occurrences from ``start`` on are enough.
            if index == len(occurrences) or occurrences[index] >= end:
                if not _is_already_pass(statement.body):
                    yield start, end
                continue
            # Kept: its nested functions may still go.
            yield from _prunable_bodies(statement.body, text, lines, occurrences)
            continue
        # In text order: ``try`` blocks read body, handlers, ``else``, ``finally``.
        blocks: list[list[ast.stmt]] = [getattr(statement, "body", None) or []]
        blocks.extend(handler.body for handler in getattr(statement, "handlers", ()))
        blocks.extend(case.body for case in getattr(statement, "cases", ()))
        blocks.append(getattr(statement, "orelse", None) or [])
        blocks.append(getattr(statement, "finalbody", None) or [])
        for block in blocks:
            yield from _prunable_bodies(block, text, lines, occurrences)


def _statement_start(statement: ast.stmt, text: bytes, lines: Lines) -> int:
    """Where ``statement`` starts: a decorated one at its first decorator's ``@``
    (``ast`` places a ``def`` or ``class`` at its keyword, after the decorators)."""
    decorators = getattr(statement, "decorator_list", None)
    if decorators:
        first = decorators[0]
        # Only blanks and line continuations separate ``@`` from its expression.
        return text.rfind(b"@", 0, lines.offset(first.lineno, first.col_offset))
    return lines.offset(statement.lineno, statement.col_offset)


def _is_already_pass(body: list[ast.stmt]) -> bool:
    """A one-line ``pass`` body gains nothing from being rewritten."""
    return len(body) == 1 and isinstance(body[0], ast.Pass) and body[0].end_lineno == body[0].lineno


def _relevant_names(tree: ast.Module, text: bytes, lines: Lines, names: Iterable[str]) -> set[str]:
    """``names`` and, transitively, every name bound at module or class level by a
    statement whose text contains a relevant name."""
    relevant = {name for name in names if name}
    statements = list(_binding_statements(tree.body, text, lines))
    pending = list(relevant)
    while pending:
        needles = [name.encode() for name in pending]
        pending = []
        remaining = []
        for segment, bound in statements:
            if any(needle in segment for needle in needles):
                names_bound = bound if isinstance(bound, frozenset) else set(_bound_names(bound))
                for name in names_bound - relevant:
                    relevant.add(name)
                    pending.append(name)
            else:
                remaining.append((segment, bound))
        statements = remaining
    return relevant


def _binding_statements(
    statements: list[ast.stmt], text: bytes, lines: Lines
) -> Iterator[tuple[bytes, frozenset[str] | ast.stmt]]:
    """(text, the names bound, or the statement to find them in when its text
    holds a relevant name: walking every statement for them cost a third of
    the pruning) of the statements at module or class level.

    An import counts name by name (with its module); a compound statement
    (``if``, ``try``, ``for``, ``with``...) counts whole,
    with every name bound in it outside function bodies: over-approximating
    only keeps more. Function bodies bind locals, seen by no other scope
    (``global``/``nonlocal`` keep a body whole); a ``def``'s own name is bound to
    a function, which is not a legacy callable.
    """
    for statement in statements:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(statement, ast.ClassDef):
            yield from _binding_statements(statement.body, text, lines)
            continue
        if isinstance(statement, ast.Import | ast.ImportFrom):
            # Name by name: ``from deps import create_user_execution_context, get_db``
            # makes ``get_db`` no more relevant than it was.
            source = (statement.module or "") if isinstance(statement, ast.ImportFrom) else ""
            for alias in statement.names:
                if alias.name != "*":
                    bound_name = (alias.asname or alias.name).split(".")[0]
                    spelled = f"{source} {alias.name} {alias.asname or ''}"
                    yield spelled.encode(), frozenset((bound_name,))
            continue
        assert statement.end_lineno is not None and statement.end_col_offset is not None
        start = lines.offset(statement.lineno, statement.col_offset)
        end = lines.offset(statement.end_lineno, statement.end_col_offset)
        yield text[start:end], statement


def _bound_names(statement: ast.stmt) -> Iterator[str]:
    pending: list[ast.AST] = [statement]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            yield node.id
        elif isinstance(node, ast.alias):
            yield (node.asname or node.name).split(".")[0]
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name is not None:
            yield node.name
        elif isinstance(node, ast.MatchMapping) and node.rest is not None:
            yield node.rest
        elif isinstance(node, ast.ExceptHandler) and node.name is not None:
            yield node.name
        pending.extend(ast.iter_child_nodes(node))
