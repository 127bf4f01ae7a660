"""Import edits of a rewrite: add the new name once, drop the old import when nothing uses it.

LibCST's ``AddImportsVisitor`` and ``RemoveImportsVisitor`` do the edits; the
subclasses here keep the file's layout (comments on the import lines, blank
lines, a parenthesised import list) the way a person editing it would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import cast

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.helpers import get_absolute_module_from_package_for_import
from libcst.metadata import ProviderT

from ctxmigrate.codemods.analysis.scopes import child_nodes, holding, iter_nodes
from ctxmigrate.codemods.positions import node_spans

_ImportStatement = cst.Import | cst.ImportFrom


def schedule_old_import_removal(
    module: cst.Module,
    replaced: cst.Module,
    source_text: str,
    bound_names: set[str],
    context: CodemodContext,
    reached_from_outside: Mapping[str, str],
) -> tuple[list[str], bool]:
    """Ask RemoveImportsVisitor to drop the imports of ``bound_names`` (the names
    the rewritten sites were called by), if unused afterwards; the notes, and
    whether the names asked about are known to be unused (``remove_imports``).

    Only unconditional imports qualify: removing one branch of a ``try/except
    ImportError`` fallback would leave the other dangling. An import is kept,
    and the note says why, when a string in the module names it
    (``mock.patch("pkg.mod.create_user_execution_context")``) or when another
    module reaches the name through this one (``reached_from_outside``: a
    re-export, a star import, a ``mock.patch`` target in a test file).
    """
    # A name the rewritten module still spells (a review site, an annotation)
    # keeps its import: no need for RemoveImportsVisitor's scope analysis,
    # which costs about 30 parses of the file.
    bound_names -= _names_still_spelled(replaced, bound_names)
    if not bound_names:
        return [], False
    notes: list[str] = []
    scheduled: set[str] = set()
    for bound_name, statements in sorted(_unconditional_imports(module, bound_names).items()):
        outside = reached_from_outside.get(bound_name)
        if outside is not None:
            notes.append(
                f"kept the import of {bound_name}: {outside}, which would break without it"
            )
            continue
        string_reference = _string_reference(module, source_text, bound_name)
        for statement, alias in statements:
            if string_reference is not None:
                text, line = string_reference
                notes.append(
                    f"kept the import of {bound_name}: the string {text} on line {line} "
                    "names it and would break without it"
                )
                continue
            scheduled.add(bound_name)
            if isinstance(statement, cst.Import):
                RemoveImportsVisitor.remove_unused_import(
                    context, alias.evaluated_name, asname=alias.evaluated_alias
                )
                continue
            imported_module = get_absolute_module_from_package_for_import(
                context.full_package_name, statement
            )
            if imported_module is not None:
                RemoveImportsVisitor.remove_unused_import(
                    context, imported_module, alias.evaluated_name, alias.evaluated_alias
                )
    return notes, bool(scheduled) and not _in_any_string(replaced, scheduled)


def _in_any_string(module: cst.Module, names: set[str]) -> bool:
    """Whether a string literal's text (a docstring, ``__all__``, an
    annotation in quotes) contains one of ``names``."""
    return any(
        isinstance(node, cst.SimpleString | cst.FormattedStringText)
        and any(name in node.value for name in names)
        for node in iter_nodes(module)
    )


def remove_imports(context: CodemodContext, module: cst.Module, known_unused: bool) -> cst.Module:
    """``module`` without the imports ``schedule_old_import_removal`` asked to drop.

    ``known_unused``: those names are spelled nowhere in the module but in
    their imports, not even inside a string. LibCST's scope analysis (the
    metadata it computes, then ``GatherUnusedImportsVisitor``: more than half
    of ``apply``'s time) can then find no use of them, so it is skipped.
    """
    if not known_unused:
        return CommentKeepingRemoveImportsVisitor(context).transform_module(module)
    # No metadata needed: without the deep copy ``transform_module`` makes for it.
    return _KnownUnusedImportsRemover(context).transform_module_impl(module)


def add_imports(context: CodemodContext, module: cst.Module) -> cst.Module:
    """``module`` with the imports asked for in ``context`` (``LayoutKeepingAddImportsVisitor``).

    Run with ``transform_module_impl``: ``transform_module`` would first
    deep-copy the module for metadata AddImportsVisitor does not use.
    """
    return LayoutKeepingAddImportsVisitor(context).transform_module_impl(module)


def _names_still_spelled(module: cst.Module, names: set[str]) -> set[str]:
    """Which of ``names`` a module still spells outside its import statements.

    ``x.name`` spells ``x``, not ``name``; ``f(name=1)`` spells no ``name``.
    A walk over the fields (``scopes.child_nodes``), not a LibCST visitor:
    several times faster on a whole module.
    """
    found: set[str] = set()
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            if node.value in names:
                found.add(node.value)
        elif isinstance(node, cst.Attribute | cst.Arg):
            stack.append(node.value)
        elif not isinstance(node, _ImportStatement):
            stack.extend(child_nodes(node))
    return found


# An import inside one of these may not run: removing it could leave another
# branch's import dangling (``try/except ImportError`` fallbacks).
_CONDITIONAL = (cst.Try, cst.TryStar, cst.If, cst.While, cst.For, cst.With, cst.Match)


def _unconditional_imports(
    module: cst.Module, bound_names: set[str]
) -> dict[str, list[tuple[_ImportStatement, cst.ImportAlias]]]:
    """The unconditional import aliases binding each of ``bound_names``, in source order."""
    found: dict[str, list[tuple[_ImportStatement, cst.ImportAlias]]] = {}
    stack: list[tuple[cst.CSTNode, bool]] = [(module, False)]
    while stack:
        node, conditional = stack.pop()
        if isinstance(node, _ImportStatement):
            if not conditional and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    bound = _bound_name(node, alias)
                    if bound in bound_names:
                        found.setdefault(bound, []).append((node, alias))
            continue
        inside = conditional or isinstance(node, _CONDITIONAL)
        stack.extend((child, inside) for child in reversed(child_nodes(node)))
    return found


def _bound_name(statement: _ImportStatement, alias: cst.ImportAlias) -> str:
    if alias.evaluated_alias is not None:
        return alias.evaluated_alias
    if isinstance(statement, cst.Import):
        return alias.evaluated_name.split(".", 1)[0]
    return alias.evaluated_name


def _string_reference(
    module: cst.Module, source_text: str, bound_name: str
) -> tuple[str, int] | None:
    """A string literal that is a dotted path ending in ``bound_name``, with its line."""
    # A dotted-path string ends with the name and its closing quote; most
    # files have none, and then no visit is needed.
    if re.search(re.escape(bound_name) + "[\"']", source_text) is None:
        return None
    pattern = re.compile(r"(?:[A-Za-z_]\w*\.)*" + re.escape(bound_name))
    # The engine's own walk and span computation: no LibCST visitor rebuilding
    # the tree, no PositionProvider over the whole module.
    found = next(
        (
            node
            for node in iter_nodes(module)
            if isinstance(node, cst.SimpleString)
            and isinstance(value := node.evaluated_value, str)
            and pattern.fullmatch(value) is not None
        ),
        None,
    )
    if found is None:
        return None
    spans, _ = node_spans(module, [found])
    return found.value, spans[id(found)].line


class _StatementsOnly(cst.CSTTransformer):
    """A transformer that does not descend into expressions or simple statements.

    RemoveImportsVisitor acts on import statements (at any depth) and the
    blocks holding them; an expression holds no statement, and an import's
    own parts are read from the statement. Walking every node of a 300-line
    file through its matcher machinery cost about 0.2 s per file.
    """

    def on_visit(self, node: cst.CSTNode) -> bool:
        return super().on_visit(node) and not isinstance(node, _NO_STATEMENT_BELOW)


_NO_STATEMENT_BELOW = (cst.BaseExpression, cst.BaseSmallStatement)


class LayoutKeepingAddImportsVisitor(AddImportsVisitor):
    """AddImportsVisitor that adds the import line and nothing else around it.

    Three departures from LibCST, each for a surprise in the output:

    - A line of several imports (``import os; import sys``) counts as an
      import, so the new import goes after it, not above it.
    - Joining existing top-level imports, the new line gets no blank line
      after it: LibCST inserts one before the next statement, which adds a
      blank line where the file had none (``# section`` right below the
      imports). A file without top-level imports still gets LibCST's blank
      line between its new import block and the code.
    - A statement that imports the name under an alias
      (``from ctxmigrate.shim import get_or_create_user_session as goc``) is
      not extended: the rewritten calls spell the plain name, which gets a
      line of its own, as isort and ruff keep ``as`` imports apart, instead of
      a statement listing the same name twice.
    """

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._joins_top_imports = False

    def _split_module(
        self, orig_module: cst.Module, updated_module: cst.Module
    ) -> tuple[
        list[cst.SimpleStatementLine | cst.BaseCompoundStatement],
        list[cst.SimpleStatementLine | cst.BaseCompoundStatement],
        list[cst.SimpleStatementLine | cst.BaseCompoundStatement],
    ]:
        before, imports, after = super()._split_module(orig_module, updated_module)
        # LibCST's split stops at the first line that is not exactly one import.
        while after and _is_import_line(after[0]):
            imports.append(after.pop(0))
        self._joins_top_imports = bool(imports)
        return before, imports, after

    def _insert_empty_line(
        self, statements: list[cst.SimpleStatementLine | cst.BaseCompoundStatement]
    ) -> list[cst.SimpleStatementLine | cst.BaseCompoundStatement]:
        if self._joins_top_imports:
            return statements
        return super()._insert_empty_line(statements)

    def on_visit(self, node: cst.CSTNode) -> bool:
        # AddImportsVisitor edits the module's body and the imports at its top
        # (``leave_ImportFrom`` leaves the others alone): the walk stops at
        # the top-level statements' parts.
        return super().on_visit(node) and isinstance(node, cst.Module | cst.SimpleStatementLine)

    def visit_Module(self, node: cst.Module) -> None:
        # LibCST gathers the imports at the top of the module with a walk of
        # the whole module; given the top statements alone (up to the first
        # one that is not an import line, included) it finds the same ones.
        end = 1
        while end < len(node.body) and _is_import_line(node.body[end]):
            end += 1
        super().visit_Module(node.with_changes(body=node.body[: end + 1]))

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom:
        if not isinstance(updated_node.names, cst.ImportStar):
            module = get_absolute_module_from_package_for_import(
                self.context.full_package_name, updated_node
            )
            wanted = self.module_mapping.get(module or "", set())
            if any(
                alias.asname is not None and alias.evaluated_name in wanted
                for alias in updated_node.names
            ):
                return updated_node
        return super().leave_ImportFrom(original_node, updated_node)


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body
    )


class CommentKeepingRemoveImportsVisitor(_StatementsOnly, RemoveImportsVisitor):
    """RemoveImportsVisitor that leaves everything but the removed names as written.

    LibCST drops a removed statement with its leading lines, which would take
    a section comment (``# session handling``) or the blank line separating
    two import groups with it; they move to the next statement instead.

    Which names go is RemoveImportsVisitor's decision; how a statement that
    keeps some names is edited is ours: when the last name goes, LibCST
    drops the comma of the name before it, and with it that line's comment
    and the line break before ``)``. Here each kept name keeps its comma,
    spacing and comments, and only the removed name's own text goes (in a
    one-name-per-line layout, its line).
    """

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self._orphaned_lines: dict[int, Sequence[cst.EmptyLine]] = {}

    def leave_Import(
        self, original_node: cst.Import, updated_node: cst.Import
    ) -> cst.Import | cst.RemovalSentinel:
        result = super().leave_Import(original_node, updated_node)
        if not isinstance(result, cst.Import) or result is updated_node:
            return result
        removed = _removed_indexes(updated_node.names, result.names)
        if removed is None:
            return result
        names, _, _ = _without_aliases(updated_node.names, removed, None, None)
        return updated_node.with_changes(names=names)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        result = super().leave_ImportFrom(original_node, updated_node)
        if (
            not isinstance(result, cst.ImportFrom)
            or result is updated_node
            or isinstance(updated_node.names, cst.ImportStar)
            or isinstance(result.names, cst.ImportStar)
        ):
            return result
        removed = _removed_indexes(updated_node.names, result.names)
        if removed is None:
            return result
        lpar, rpar = updated_node.lpar, updated_node.rpar
        names, before, after = _without_aliases(
            updated_node.names,
            removed,
            lpar.whitespace_after if lpar is not None else None,
            rpar.whitespace_before if rpar is not None else None,
        )
        return updated_node.with_changes(
            names=names,
            lpar=lpar if lpar is None else lpar.with_changes(whitespace_after=before),
            rpar=rpar if rpar is None else rpar.with_changes(whitespace_before=after),
        )

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine:
        if original_node.body and not updated_node.body:
            self._orphaned_lines[id(original_node)] = original_node.leading_lines
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        body, leftover = self._adopt_orphaned_lines(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body, footer=(*leftover, *updated_node.footer))

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body, leftover = self._adopt_orphaned_lines(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body, footer=(*leftover, *updated_node.footer))

    def _adopt_orphaned_lines(
        self, original_body: Sequence[cst.BaseStatement], updated_body: Sequence[cst.BaseStatement]
    ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        """The updated body with each removed statement's lines given to the next survivor."""
        survivors = iter(updated_body)
        body: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []
        removed_first = False
        for statement in original_body:
            orphaned = self._orphaned_lines.get(id(statement))
            if orphaned is not None:
                pending.extend(orphaned)
                removed_first = removed_first or not body
                continue
            survivor = next(survivors)
            if pending or (removed_first and not body):
                survivor = _with_leading_lines(survivor, pending, at_top=not body)
                pending = []
            body.append(survivor)
        body.extend(survivors)
        return body, pending


def _with_leading_lines(
    statement: cst.BaseStatement, adopted: list[cst.EmptyLine], *, at_top: bool
) -> cst.BaseStatement:
    """``adopted`` above ``statement``; one blank-line gap, not two, where both have one.

    ``at_top``: the statements removed were the first of their block, so the
    survivor now opens it and blank lines before its first comment would
    open the block (or the file) with an empty line.
    """
    own = list(cast(Sequence[cst.EmptyLine], getattr(statement, "leading_lines", ())))
    if own and own[0].comment is None:
        while adopted and adopted[-1].comment is None:
            adopted = adopted[:-1]
    lines = [*adopted, *own]
    if at_top:
        while lines and lines[0].comment is None:
            lines.pop(0)
    return statement.with_changes(leading_lines=tuple(lines))


class _KnownUnusedImportsRemover(CommentKeepingRemoveImportsVisitor):
    """Removes every import of the names asked about, without LibCST's scope
    analysis: for names known to be unused (``remove_imports``)."""

    @classmethod
    def get_inherited_dependencies(cls) -> frozenset[ProviderT]:
        return frozenset()  # not ScopeProvider and the rest RemoveImportsVisitor declares

    def visit_Module(self, node: cst.Module) -> None:
        statements = [
            statement
            for statement in iter_nodes(node)
            if isinstance(statement, cst.Import | cst.ImportFrom)
        ]
        # Every import alias counts as unused; only the ones asked about are looked up.
        self._unused_imports = {
            alias: statement
            for statement in statements
            if not isinstance(statement.names, cst.ImportStar)
            for alias in statement.names
        }
        self._holding_imports = holding(node, statements)

    def on_visit(self, node: cst.CSTNode) -> bool:
        # Only what holds an import can change: the rest (most function
        # bodies) is not rebuilt, 40% of the time apply spends here.
        return super().on_visit(node) and id(node) in self._holding_imports


def _removed_indexes(
    names: Sequence[cst.ImportAlias], kept: Sequence[cst.ImportAlias]
) -> list[int] | None:
    """The positions in ``names`` of the aliases missing from ``kept`` (a subsequence).

    None when ``kept`` is not a subsequence of ``names``, in the same order.
    """
    kept_keys = [(alias.evaluated_name, alias.evaluated_alias) for alias in kept]
    removed: list[int] = []
    matched = 0
    for index, alias in enumerate(names):
        key = (alias.evaluated_name, alias.evaluated_alias)
        if matched < len(kept_keys) and kept_keys[matched] == key:
            matched += 1
        else:
            removed.append(index)
    return removed if matched == len(kept_keys) and removed else None


_Gap = cst.BaseParenthesizableWhitespace


def _without_aliases(
    names: Sequence[cst.ImportAlias], removed: list[int], before: _Gap | None, after: _Gap | None
) -> tuple[list[cst.ImportAlias], _Gap | None, _Gap | None]:
    """``names`` without the aliases at ``removed`` (not all), the others as written.

    ``before`` is the whitespace after ``(`` and ``after`` the whitespace
    before ``)``, None without parentheses; both are returned, adjusted.
    Taking out one name means taking out it, its comma and one of the two
    gaps around it; a gap that breaks the line splits in two: the end of
    the previous line (a comment there belongs to the previous name) and the
    indentation of the next. The previous name keeps its comma unless the
    removed name was the last one and had none.
    """
    aliases = list(names)
    for index in sorted(removed, reverse=True):
        alias = aliases[index]
        previous = aliases[index - 1] if index else None
        if index == len(aliases) - 1 and not isinstance(alias.comma, cst.Comma):
            # The last name without a trailing comma: the comma before it goes.
            assert previous is not None, "removing every name is RemoveImportsVisitor's job"
            if after is not None:
                after = _join_gaps(_gap_after(previous), after, closes=True)
            aliases[index - 1] = previous.with_changes(comma=cst.MaybeSentinel.DEFAULT)
        elif previous is None:
            following = _gap_after(alias)
            # ``(a,\n b)`` -> ``(b)``, not ``(\n b)``: a bare line break after a
            # name that shared the parenthesis' line was that name's line end.
            if isinstance(before, cst.ParenthesizedWhitespace) or (
                before is not None and _has_comment(following)
            ):
                before = _join_gaps(before, following, closes=False)
        else:
            joined = _join_gaps(
                _gap_after(previous), _gap_after(alias), closes=index == len(aliases) - 1
            )
            comma = previous.comma if isinstance(previous.comma, cst.Comma) else cst.Comma()
            aliases[index - 1] = previous.with_changes(
                comma=comma.with_changes(whitespace_after=joined)
            )
        del aliases[index]
    return aliases, before, after


def _gap_after(alias: cst.ImportAlias) -> _Gap:
    if isinstance(alias.comma, cst.Comma):
        return alias.comma.whitespace_after
    # An alias AddImportsVisitor created has no comma node; it prints ", ".
    return cst.SimpleWhitespace(" ")


def _join_gaps(previous: _Gap, following: _Gap, *, closes: bool) -> _Gap:
    """The one gap left of the two around a removed name.

    ``closes``: the removed name was the last, so ``)`` comes next; it then
    follows the previous name on its line (``(a, b)`` -> ``(a)``,
    ``(a, b,)`` -> ``(a,)``) unless that line ends in a comment, and no blank
    line is left above it. Otherwise the next name takes the removed one's
    place (``a, b, c`` -> ``a, c``).
    """
    if isinstance(previous, cst.ParenthesizedWhitespace):
        if isinstance(following, cst.ParenthesizedWhitespace):
            # The removed name had a line of its own: the previous line keeps
            # its end (and comment), the next token keeps its indentation.
            empty_lines = [*previous.empty_lines, *following.empty_lines]
            while closes and empty_lines and empty_lines[-1].comment is None:
                empty_lines.pop()
            return following.with_changes(first_line=previous.first_line, empty_lines=empty_lines)
        if not closes:
            # The removed name opened a line that the next name now opens.
            return previous
        return previous.with_changes(last_line=following) if _has_comment(previous) else following
    if isinstance(following, cst.ParenthesizedWhitespace):
        # The removed name closed a line: its end (and comment) stays.
        return following
    return following if closes else previous


def _has_comment(gap: _Gap) -> bool:
    return isinstance(gap, cst.ParenthesizedWhitespace) and (
        gap.first_line.comment is not None
        or any(line.comment is not None for line in gap.empty_lines)
    )
