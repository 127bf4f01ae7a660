"""Apply the codemods to one analysed file: exactly the ``rewrite`` sites, nothing else.

The sites come from the same analysis and the same findings that ``audit``
reports, so ``apply`` changes exactly what ``audit`` calls ``rewrite``. Each
site is replaced by node identity in the parsed module; the new name is
imported once (``AddImportsVisitor``), the old import is removed only when
nothing in the module still uses it (``RemoveImportsVisitor``) and no string
in the module names it; the output is parsed again before anyone may write it.
Everything outside the edited expressions (encoding, BOM, line endings, a
missing final newline, comments) comes back byte for byte.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.helpers import get_absolute_module_from_package_for_import

from ctxmigrate.codemods.analysis.scopes import iter_nodes
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import Finding
from ctxmigrate.codemods.positions import node_spans
from ctxmigrate.codemods.sites import Codemod, Reference

if TYPE_CHECKING:
    from ctxmigrate.codemods.engine import FileAnalysis

UTF8_BOM = b"\xef\xbb\xbf"

_ImportStatement = cst.Import | cst.ImportFrom

# (path, line, column, rule) of a finding, as ``--interactive`` records approvals.
AcceptKey = tuple[str, int, int, str]


@dataclass
class FixResult:
    """The outcome of fixing one file; ``fixed`` is None when nothing changes."""

    path: str
    abspath: Path
    original: bytes
    fixed: bytes | None = None
    applied: list[Finding] = field(default_factory=list)
    # Findings of the file that were not applied, each with its reason.
    skipped: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Set when the output could not be produced or failed to parse: the file
    # is then left untouched.
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.fixed is not None


@dataclass(frozen=True)
class _Site:
    ref: Reference
    codemod: Codemod
    finding: Finding


def fix_source(
    analysis: FileAnalysis,
    config: Config,
    codemods: Sequence[Codemod],
    accept: frozenset[AcceptKey] | None = None,
) -> FixResult:
    """Rewrite the file's ``rewrite`` findings (those in ``accept`` when given)."""
    result = FixResult(path=analysis.path, abspath=analysis.abspath, original=analysis.source)
    sites, result.skipped = _plan(analysis, codemods, accept)
    if sites:
        _apply(analysis, config, sites, result)
    result.skipped.sort(key=Finding.sort_key)
    return result


def _apply(analysis: FileAnalysis, config: Config, sites: list[_Site], result: FixResult) -> None:
    module = analysis.module
    source_text = module.code
    # The messages do not say "left untouched": the CLI prefixes that, and the
    # same text is the reason of the file's sites in the skipped list.
    try:
        fixed_module, notes = _transform(
            module, source_text, sites, config, analysis.path, analysis.reached_from_outside
        )
        fixed = _encode_like(fixed_module, analysis.source)
    except Exception as error:
        # One odd file must not end a run over thousands: it is reported and left alone.
        result.error = f"the rewrite failed: {type(error).__name__}: {error}"
    else:
        try:
            cst.parse_module(fixed)
        except cst.ParserSyntaxError as error:
            result.error = (
                f"the rewritten file does not parse: {_syntax_error(fixed, analysis.source, error)}"
            )
    if result.error is not None:
        result.skipped.extend(
            dataclasses.replace(site.finding, category="review", message=result.error)
            for site in sites
        )
        return
    result.applied = sorted((site.finding for site in sites), key=Finding.sort_key)
    result.notes = notes
    if fixed != analysis.source:
        result.fixed = fixed


def _syntax_error(fixed: bytes, original: bytes, error: cst.ParserSyntaxError) -> str:
    """One message with one position (in the rewritten text) for output that does not parse.

    LibCST's message holds two positions that disagree ("Syntax Error @ 6:1 ...
    error at 5:23"), neither reliably the offending token; CPython's parser
    names the token and says what is wrong. It is asked only when it accepts
    the original file: a file using syntax newer than this interpreter would
    otherwise be blamed for that syntax instead of the rewrite.
    """
    try:
        compile(original, "<original>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        compile(fixed, "<rewritten>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as python_error:
        if python_error.filename == "<rewritten>" and python_error.lineno is not None:
            return (
                f"{python_error.msg} at line {python_error.lineno}, "
                f"column {python_error.offset} of the rewritten text"
            )
    except ValueError:  # null bytes: LibCST's own account below
        pass
    message = re.sub(r"^parser error: error at \d+:\d+: ", "", error.message)
    return (
        f"{message} at line {error.raw_line}, column {error.raw_column + 1} of the rewritten text"
    )


def _plan(
    analysis: FileAnalysis, codemods: Sequence[Codemod], accept: frozenset[AcceptKey] | None
) -> tuple[list[_Site], list[Finding]]:
    """Pair each ``rewrite`` finding with its reference; everything else is skipped."""
    findings_by_site = {(f.line, f.column, f.rule): f for f in analysis.findings}
    sites: list[_Site] = []
    planned: set[tuple[int, int, str]] = set()
    declined: set[tuple[int, int, str]] = set()
    applying = {codemod.rule.id for codemod in codemods}
    for codemod, ref in analysis.references:
        if codemod.rule.id not in applying:
            continue
        key = (ref.span.line, ref.span.column, codemod.rule.id)
        finding = findings_by_site.get(key)
        if finding is None or finding.category != "rewrite" or key in planned:
            continue
        if accept is not None and (finding.path, *key) not in accept:
            declined.add(key)
            continue
        planned.add(key)
        sites.append(_Site(ref, codemod, finding))
    skipped = [
        dataclasses.replace(finding, message=f"not accepted: {finding.message}")
        if (finding.line, finding.column, finding.rule) in declined
        else finding
        for finding in analysis.findings
        if (finding.line, finding.column, finding.rule) not in planned
    ]
    return sites, skipped


def _transform(
    module: cst.Module,
    source_text: str,
    sites: list[_Site],
    config: Config,
    display_path: str,
    reached_from_outside: Mapping[str, str],
) -> tuple[cst.Module, list[str]]:
    context = CodemodContext(
        full_module_name=_module_name(display_path), full_package_name=_package_name(display_path)
    )
    replaced = module.visit(_SiteReplacer(sites, config))
    for site in sites:
        required = site.codemod.required_import(config)
        if required is not None:
            AddImportsVisitor.add_needed_import(context, *required)
    notes = _schedule_old_import_removal(
        module, replaced, source_text, sites, context, reached_from_outside
    )
    with_imports = _LayoutKeepingAddImportsVisitor(context).transform_module(replaced)
    if not context.scratch.get(RemoveImportsVisitor.CONTEXT_KEY):
        # Nothing to remove: spare the scope analysis RemoveImportsVisitor runs.
        return with_imports, notes
    return _CommentKeepingRemoveImportsVisitor(context).transform_module(with_imports), notes


class _SiteReplacer(cst.CSTTransformer):
    """Replaces exactly the sites' nodes (by identity), innermost first."""

    def __init__(self, sites: list[_Site], config: Config) -> None:
        super().__init__()
        self._sites = {id(site.ref.node): site for site in sites}
        self._config = config
        self._parents: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._parents.append(node)
        return True

    def on_leave(  # type: ignore[override]
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode:
        self._parents.pop()
        site = self._sites.get(id(original_node))
        if site is None or site.ref.node is not original_node:
            return updated_node
        # Rewrite the updated node so a site nested in this one's arguments
        # (already replaced on the way up) keeps its replacement.
        ref = dataclasses.replace(
            site.ref,
            node=updated_node,
            call=updated_node if isinstance(updated_node, cst.Call) else site.ref.call,
        )
        replacement = site.codemod.rewrite(ref, self._config)
        parent = self._parents[-1] if self._parents else None
        if _await_needs_parentheses(parent, original_node, replacement):
            replacement = replacement.with_changes(
                lpar=(cst.LeftParen(),), rpar=(cst.RightParen(),)
            )
        return replacement


def _await_needs_parentheses(
    parent: cst.CSTNode | None, original: cst.CSTNode, replacement: cst.BaseExpression
) -> bool:
    """``await f().x`` means ``await (f().x)``: an awaited primary needs parentheses."""
    if not isinstance(replacement, cst.Await) or replacement.lpar:
        return False
    if isinstance(parent, cst.Attribute | cst.Subscript):
        return parent.value is original
    if isinstance(parent, cst.Call):
        return parent.func is original
    return False


def _schedule_old_import_removal(
    module: cst.Module,
    replaced: cst.Module,
    source_text: str,
    sites: list[_Site],
    context: CodemodContext,
    reached_from_outside: Mapping[str, str],
) -> list[str]:
    """Ask RemoveImportsVisitor to drop the imports the sites used, if unused afterwards.

    Only unconditional imports qualify: removing one branch of a ``try/except
    ImportError`` fallback would leave the other dangling. An import is kept,
    and the note says why, when a string in the module names it
    (``mock.patch("pkg.mod.create_user_execution_context")``) or when another
    module reaches the name through this one (``reached_from_outside``: a
    re-export, a star import, a ``mock.patch`` target in a test file).
    """
    # A rule that passes the callee on (CTX003's ``factory=``) keeps its name in use.
    bound_names = {
        site.ref.callee_code.split(".", 1)[0]
        for site in sites
        if not site.codemod.rule.keeps_callee
    }
    # A name the rewritten module still spells (a review site, an annotation)
    # keeps its import: no need for RemoveImportsVisitor's scope analysis,
    # which costs about 30 parses of the file.
    still_spelled = _NamesStillSpelled(bound_names)
    replaced.visit(still_spelled)
    bound_names -= still_spelled.found
    if not bound_names:
        return []
    imports = _ImportCollector(bound_names)
    module.visit(imports)
    notes: list[str] = []
    for bound_name, statements in sorted(imports.by_bound_name.items()):
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
    return notes


class _NamesStillSpelled(cst.CSTVisitor):
    """Which of ``names`` a module still spells outside its import statements."""

    def __init__(self, names: set[str]) -> None:
        self._names = names
        self.found: set[str] = set()

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # ``x.name`` spells ``x``, not ``name``
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)  # ``f(name=1)`` spells no ``name``
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value in self._names:
            self.found.add(node.value)


class _ImportCollector(cst.CSTVisitor):
    """Unconditional import aliases that bind one of ``bound_names``."""

    _CONDITIONAL = (cst.Try, cst.TryStar, cst.If, cst.While, cst.For, cst.With, cst.Match)

    def __init__(self, bound_names: set[str]) -> None:
        self._bound_names = bound_names
        self._conditional_depth = 0
        self.by_bound_name: dict[
            str, list[tuple[cst.Import | cst.ImportFrom, cst.ImportAlias]]
        ] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, self._CONDITIONAL):
            self._conditional_depth += 1
        elif isinstance(node, cst.Import | cst.ImportFrom):
            if not self._conditional_depth:
                self._collect(node)
            return False
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, self._CONDITIONAL):
            self._conditional_depth -= 1

    def _collect(self, statement: cst.Import | cst.ImportFrom) -> None:
        if isinstance(statement.names, cst.ImportStar):
            return
        for alias in statement.names:
            if alias.evaluated_alias is not None:
                bound = alias.evaluated_alias
            elif isinstance(statement, cst.Import):
                bound = alias.evaluated_name.split(".", 1)[0]
            else:
                bound = alias.evaluated_name
            if bound in self._bound_names:
                self.by_bound_name.setdefault(bound, []).append((statement, alias))


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


class _LayoutKeepingAddImportsVisitor(AddImportsVisitor):
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


class _CommentKeepingRemoveImportsVisitor(RemoveImportsVisitor):
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


def _encode_like(module: cst.Module, original: bytes) -> bytes:
    """The module's text in the original file's encoding, with its BOM if it had one."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(original).readline)
    text = module.code.removeprefix("\ufeff")
    if encoding == "utf-8-sig":
        return UTF8_BOM + text.encode("utf-8")
    return text.encode(encoding)


def _module_name(display_path: str) -> str:
    parts = list(Path(display_path).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(part for part in parts if part not in ("", ".", ".."))


def _package_name(display_path: str) -> str:
    # Only used to resolve relative imports consistently between this module
    # and RemoveImportsVisitor; a package of at least a few levels keeps
    # ``from .. import x`` resolvable even for a shallow display path.
    module = _module_name(display_path)
    parts = module.split(".") if module else []
    if not display_path.endswith("__init__.py"):
        parts = parts[:-1]
    return ".".join(["_ctxmigrate_root"] * 8 + parts)


def fix_sources(
    sources: Mapping[str, bytes],
    config: Config,
    codemods: Sequence[Codemod],
    accept: frozenset[AcceptKey] | None = None,
) -> dict[str, FixResult]:
    """Analyse in-memory sources as one project and fix each file (tests, goldens, previews).

    The keys are display paths (``"pkg/handler.py"``); imports between the
    sources resolve as they would on disk.
    """
    # The engine calls fix_source from its workers, so it is imported here, not at the top.
    from ctxmigrate.codemods.engine import analyze_sources

    analyses = analyze_sources(sources, config, codemods)
    return {
        path: fix_source(analysis, config, codemods, accept) for path, analysis in analyses.items()
    }
