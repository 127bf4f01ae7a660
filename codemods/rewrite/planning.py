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
from typing import TYPE_CHECKING

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from ctxmigrate.codemods.analysis.parsing import ast_or_none, decoded
from ctxmigrate.codemods.analysis.scopes import holding
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import Finding
from ctxmigrate.codemods.rewrite.import_edits import (
    add_imports,
    remove_imports,
    schedule_old_import_removal,
)
from ctxmigrate.codemods.sites import Codemod, Reference

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.file_analysis import FileAnalysis
    from ctxmigrate.codemods.rewrite.apply_plan import AcceptKey


UTF8_BOM = b"\xef\xbb\xbf"


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
    """Rewrite the file's ``rewrite`` findings (those in ``accept`` when given).

    Raises ValueError for an analysis of pruned text (``analyze_source(...,
    prune=True)``): its tree lacks function bodies, and printing it would
    delete them.
    """
    if analysis.pruned:
        raise ValueError(
            f"{analysis.path}: the analysis was made from pruned text (audit only); "
            "fixing needs analyze_source(..., prune=False)"
        )
    result = FixResult(path=analysis.path, abspath=analysis.abspath, original=analysis.source)
    sites, result.skipped = _plan(analysis, codemods, accept)
    if sites:
        _apply(analysis, config, sites, result)
    result.skipped.sort(key=Finding.sort_key)
    return result


def _apply(analysis: FileAnalysis, config: Config, sites: list[_Site], result: FixResult) -> None:
    module = analysis.module
    # The file's text as LibCST read it (it prints the module back to these
    # characters): printing the module again cost 10% of apply.
    source_text = decoded(analysis.source)
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
            _check_parses(fixed)
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


def _check_parses(fixed: bytes) -> None:
    """Raise ParserSyntaxError unless the rewritten text parses.

    CPython's own parser answers first (a tenth of LibCST's time: 0.4 s of
    apply on the 25,000-file benchmark tree); only text it rejects, which may
    be syntax newer than this interpreter, goes to LibCST, whose error is
    the one reported.
    """
    if ast_or_none(fixed) is None:
        cst.parse_module(fixed)


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
    replaced = module.visit(_SiteReplacer(module, sites, config))
    for site in sites:
        required = site.codemod.required_import(config)
        if required is not None:
            AddImportsVisitor.add_needed_import(context, *required)
    # A rule that passes the callee on (CTX003's ``factory=``) keeps its name in use.
    bound_names = {
        site.ref.callee_code.split(".", 1)[0]
        for site in sites
        if not site.codemod.rule.keeps_callee
    }
    notes, known_unused = schedule_old_import_removal(
        module, replaced, source_text, bound_names, context, reached_from_outside
    )
    with_imports = add_imports(context, replaced)
    if not context.scratch.get(RemoveImportsVisitor.CONTEXT_KEY):
        # Nothing to remove: spare the scope analysis RemoveImportsVisitor runs.
        return with_imports, notes
    return remove_imports(context, with_imports, known_unused), notes


class _SiteReplacer(cst.CSTTransformer):
    """Replaces exactly the sites' nodes (by identity), innermost first.

    It descends only into the nodes that hold a site: rebuilding every node
    of a long module cost more than the rest of the rewrite.
    """

    def __init__(self, module: cst.Module, sites: list[_Site], config: Config) -> None:
        super().__init__()
        self._sites = {id(site.ref.node): site for site in sites}
        self._config = config
        self._parents: list[cst.CSTNode] = []
        self._holding_a_site = holding(module, [site.ref.node for site in sites])

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._parents.append(node)
        return id(node) in self._holding_a_site

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
    from ctxmigrate.codemods.analysis.memory import analyze_sources

    analyses = analyze_sources(sources, config, codemods)
    return {
        path: fix_source(analysis, config, codemods, accept) for path, analysis in analyses.items()
    }
