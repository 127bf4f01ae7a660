"""Which candidate files can hold a site, decided from ``ast``: only those meet LibCST.

The text pre-filter selects every file that *mentions* a legacy name. On a
tree half-way through a migration most of them only name the context types
(imports, annotations, ``isinstance`` checks), and parsing each with LibCST
costs about 20 times the ``ast`` parse the module summary already does. While
that ``ast`` tree is at hand, ``site_hints`` notes what could make a finding:

- a name or attribute spelled like a legacy *function* (or an alias of one):
  a call, a value use, ``functools.partial``, a star-import call (CTX001,
  CTX003, CTX101);
- an attribute named like a legacy class's factory method
  (``create_for_user``): a CTX002 site; the class's own name is not enough,
  since a class is only ever a site through that method;
- a string containing a legacy function name or factory method, or a dotted
  path ending in a legacy class name (CTX102, ``getattr``);
- ``from X import name`` of a legacy name: a CTX103 site when X neither
  defines nor re-exports it, which ``needs_analysis`` decides from the
  project index once it is built.

A file ``ast`` cannot read (syntax newer than the interpreter) gets no hints
and is always analysed. The hints over-approximate: a file they let through
may still have no finding; a file they rule out has none.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ctxmigrate.codemods.analysis.guided_walk import Lines, first_line, nodes_within, offsets

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.config import Config


@dataclass(frozen=True)
class HintNames:
    """The names the hints look for (the pre-filter's known names, split by use)."""

    # Legacy function names and every alias learned (kind unknown: treated as functions).
    functions: frozenset[str]
    # Factory methods of legacy classes (``create_for_user``).
    methods: frozenset[str]
    # Every known name, classes included: what an import or a string may name.
    known: frozenset[str]

    def key(self) -> str:
        """For cache keys: hints depend on these names."""
        return repr((sorted(self.functions), sorted(self.methods), sorted(self.known)))

    @cached_property
    def site_needles(self) -> tuple[bytes, ...]:
        """Text without any of these cannot name a site (``may_name_a_site``)."""
        classes = self.known - self.functions
        return (
            *(name.encode() for name in sorted(self.functions | self.methods)),
            *(f".{name}{quote}".encode() for name in sorted(classes) for quote in "\"'"),
        )


def hint_names(known: Iterable[str], config: Config) -> HintNames:
    """Split ``known`` (legacy names and learned aliases) for ``site_hints``."""
    from ctxmigrate.codemods.rules import legacy_targets

    known_names = frozenset(known)
    class_names: set[str] = set()
    function_names: set[str] = set()
    methods: set[str] = set()
    for target in legacy_targets():
        configured = config.legacy_names(target)
        names = {q.rpartition(".")[2] for q in configured} if configured else {target.default_name}
        if target.method is not None:
            class_names |= names
            methods.add(target.method)
        else:
            function_names |= names
    # A name that is only a legacy class's is a site through its method alone;
    # anything else known (an alias of unknown kind) counts as a function.
    functions = (known_names - class_names) | function_names
    return HintNames(frozenset(functions), frozenset(methods), known_names | function_names)


@dataclass(frozen=True)
class SiteHints:
    """What the ``ast`` walk found; see the module docstring."""

    # A name, attribute or string that may be (or name) a legacy site.
    may_have_sites: bool
    # ``from X import name`` of known names: (X as an absolute module, name).
    imports: tuple[tuple[str, str], ...]

    def to_json(self) -> list[Any]:
        return [self.may_have_sites, [list(pair) for pair in self.imports]]

    @classmethod
    def from_json(cls, data: list[Any]) -> SiteHints:
        may_have_sites, imports = data
        return cls(bool(may_have_sites), tuple((str(m), str(n)) for m, n in imports))


def site_hints(
    tree: ast.Module, source: bytes, module: str, is_package: bool, names: HintNames
) -> SiteHints:
    """The hints of one module; ``source`` is the text ``tree`` was parsed from.

    Walking every node of every candidate cost twice the parse, so the text
    decides first: without a legacy function or factory-method name anywhere in
    it, no name, attribute or string can be one, and a string can only matter as
    a dotted path ending in a legacy class name (``"app.ws.WebSocketContext"``):
    then only the statements are visited, for the imports.
    """
    if may_name_a_site(source, names):
        return _walk_everything(tree, source, module, is_package, names)
    return SiteHints(False, _imports(tree.body, module, is_package, names.known))


def may_name_a_site(source: bytes, names: HintNames) -> bool:
    """Whether the text names a legacy function or factory method, or holds a
    dotted path to a legacy class in a string: else only imports can be sites."""
    return any(needle in source for needle in names.site_needles)


def text_hints(source: bytes, module: str, is_package: bool, names: HintNames) -> SiteHints | None:
    """The hints of a file that cannot name a site, from its text alone; None
    when it may name one (or cannot be decoded): then ``site_hints`` decides.

    Such a file's only possible sites are ``from X import name`` statements
    of a known name. For each occurrence of a known name, the statement that
    may hold it is the one starting at the last ``from`` before it that can
    begin a statement; it is followed to its end (parentheses, comments and
    line continuations included) and, when it reaches the name, parsed with
    ``ast``. Text in strings and comments may yield extra imports: the hints
    may over-approximate (``needs_analysis`` then sends the file to the full
    analysis, which decides), never miss one.
    """
    from ctxmigrate.codemods.analysis.parsing import decoded_or_none

    if may_name_a_site(source, names):
        return None
    text = decoded_or_none(source)
    if text is None:
        return None
    return SiteHints(False, imports_in_text(text, module, is_package, names.known))


def imports_in_text(
    text: str, module: str, is_package: bool, known: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """``from X import name`` of the ``known`` names anywhere in ``text`` (in a
    function, a class, a branch), as (X as an absolute module, name), sorted.

    Found from the text (see ``text_hints``): an import statement quoted in a
    string or a comment counts too, which over-approximates, never misses.
    """
    found: list[tuple[str, str]] = []
    examined: set[int] = set()
    # Driven by the word "import" (a few per file), not by the names: a name
    # may be as common as ``self``. The names imported come after the first
    # "import" of the statement (even one inside a longer word of the path).
    position = text.find("import")
    while position >= 0:
        start = _statement_start_before(text, position)
        if start is not None and start not in examined:
            end = _statement_end(text, start)
            if end is not None and end > position:
                examined.add(start)
                imported = text[position:end]
                if any(name in imported for name in known):
                    found.extend(_parsed_imports(text[start:end], module, is_package, known))
        position = text.find("import", position + len("import"))
    return tuple(dict.fromkeys(sorted(found)))


# Matched only where ``str.rfind`` found "from" (a regex scan of the whole
# text with the look-behind first runs at a tenth of the speed).
_FROM_WORD = re.compile(r"(?<![\w.])from\b")
# A statement's text up to a character that needs a closer look; an import
# statement holds no quotes, so one ends the search (it is not an import).
_PLAIN = re.compile(r"[^\n\r;#(\\\"']*")
# Atomic (``*+``): an unclosed parenthesis must fail at once, not retry
# every way of splitting the comments inside it.
_PARENTHESISED = re.compile(r"\((?:[^)#\"']++|#[^\n\r]*+)*+\)")
_CONTINUATION = re.compile(r"\\(?:\r\n|\r|\n)")


def _parsed_imports(
    statement: str, module: str, is_package: bool, known: frozenset[str]
) -> list[tuple[str, str]]:
    try:
        tree = ast.parse(statement)
    except (SyntaxError, ValueError):
        return []  # not an import: a real one always parses on its own
    found: list[tuple[str, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            found.extend(_imported(node, module, is_package, known))
    return found


def _statement_start_before(text: str, position: int) -> int | None:
    """The last word ``from`` before ``position`` that can begin a statement.

    When ``position`` is inside a ``from ... import`` statement, that is its
    start: inside one, no ``from`` can begin a statement (a module path holds
    it only inside a longer word, a comment only after ``#``).
    """
    start = text.rfind("from", 0, position)
    while start >= 0:
        if _starts_statement(text, start):
            return start
        start = text.rfind("from", 0, start)
    return None


def _starts_statement(text: str, start: int) -> bool:
    """Whether the word ``from`` at ``start`` can begin a statement: after a line
    break (or a line continuation), ``;`` or a compound statement's ``:``."""
    if _FROM_WORD.match(text, start) is None:
        return False
    before = start - 1
    while before >= 0 and text[before] in " \t\f":
        before -= 1
    return before < 0 or text[before] in "\n\r;:"


def _statement_end(text: str, start: int) -> int | None:
    """Where the simple statement starting at ``start`` ends (None: it holds a string)."""
    position = start
    while True:
        position = _PLAIN.match(text, position).end()  # type: ignore[union-attr]
        if position == len(text) or text[position] in "\n\r;#":
            return position
        character = text[position]
        if character == "(":
            group = _PARENTHESISED.match(text, position)
            if group is None:
                return None
            position = group.end()
        elif character == "\\":
            continued = _CONTINUATION.match(text, position)
            if continued is None:
                return None
            position = continued.end()
        else:  # a quote
            return None


def _walk_everything(
    tree: ast.Module, source: bytes, module: str, is_package: bool, names: HintNames
) -> SiteHints:
    functions, methods, known = names.functions, names.methods, names.known
    # A string naming a function or a factory method may be a site; one naming
    # a class only as a dotted path ("app.ws.WebSocketContext"): a bare class
    # name in a string (an annotation) is never one.
    callables = tuple(functions | methods)
    classes = tuple(known - functions)

    def may_be_a_site(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in functions
        if isinstance(node, ast.Attribute):
            return node.attr in functions or node.attr in methods
        if isinstance(node, ast.Constant):
            value = node.value
            return isinstance(value, str) and (
                any(name in value for name in callables)
                or ("." in value and any(name in value for name in classes))
            )
        return False

    # The statements on the lines that spell a needle first: a site is there
    # (walking every node cost half the parse).
    lines = _needle_lines(source, names.site_needles)

    def holds(statement: ast.stmt) -> bool:
        assert statement.end_lineno is not None
        index = bisect.bisect_left(lines, first_line(statement))
        return index < len(lines) and lines[index] <= statement.end_lineno

    if any(may_be_a_site(node) for node in nodes_within(tree.body, holds)):
        return SiteHints(True, ())
    # Not there: a string may spell one only once evaluated (escapes, implicit
    # concatenation), so the whole tree decides, and gives the imports.
    imports: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if may_be_a_site(node):
            return SiteHints(True, ())
        if isinstance(node, ast.ImportFrom):
            imports.extend(_imported(node, module, is_package, known))
    return SiteHints(False, tuple(dict.fromkeys(imports)))


def _needle_lines(source: bytes, needles: Iterable[bytes]) -> list[int]:
    """The numbers of the lines where a needle starts, sorted (line breaks are
    the same bytes in every encoding Python source may use)."""
    lines = Lines.of(source)
    return [
        lines.line_of(offset)
        for offset in sorted(offset for needle in needles for offset in offsets(source, needle))
    ]


def _imports(
    statements: list[ast.stmt], module: str, is_package: bool, known: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """``from X import name`` of known names anywhere in ``statements`` (nested too)."""
    found: list[tuple[str, str]] = []
    pending = list(statements)
    while pending:
        statement = pending.pop()
        if isinstance(statement, ast.ImportFrom):
            found.extend(_imported(statement, module, is_package, known))
            continue
        for field in ("body", "orelse", "finalbody"):
            block = getattr(statement, field, None)
            if isinstance(block, list):
                pending.extend(block)
        for handler in getattr(statement, "handlers", ()):
            pending.extend(handler.body)
        for case in getattr(statement, "cases", ()):
            pending.extend(case.body)
    return tuple(dict.fromkeys(sorted(found)))


def _imported(
    node: ast.ImportFrom, module: str, is_package: bool, known: frozenset[str]
) -> list[tuple[str, str]]:
    from ctxmigrate.codemods.analysis.summaries import absolute_module

    imported = [alias.name for alias in node.names if alias.name in known]
    if not imported:
        return []
    source = absolute_module(module, is_package, node.level, node.module)
    return [] if source is None else [(source, name) for name in imported]


def needs_analysis(
    hints: SiteHints | None, module: str, index: ProjectIndex, import_rule_selected: bool
) -> bool:
    """Whether a candidate must be parsed and resolved for its findings."""
    if hints is None or hints.may_have_sites:
        return True
    if not import_rule_selected:
        return False
    from ctxmigrate.codemods.rules.non_defining_import import non_defining_import_message

    for source, name in hints.imports:
        if source not in index.modules or name not in index.known_names:
            continue
        if non_defining_import_message(index, index.summary(source), source, name) is not None:
            return True
    return False
