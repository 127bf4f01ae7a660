"""Reading one file: LibCST's parse with clear errors, and the module summary.

The summary (and the site hints) come from Python's ``ast`` when it can read
the file; LibCST is used only for files ``ast`` cannot read (syntax newer than
the running interpreter) and for the files that need analysis or rewriting.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import sys
import tokenize
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxmigrate.codemods.analysis import pruning
from ctxmigrate.codemods.discovery import (
    text_problem,
)
from ctxmigrate.codemods.rules.duplicate_context_class import CENSUS_CLASS_NAMES
from ctxmigrate.codemods.site_hints import (
    HintNames,
    SiteHints,
    site_hints,
)

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.analysis.summaries import ModuleSummary


class SourceError(Exception):
    """A file that cannot be analysed (syntax error, not Python); reported under ``errors``."""


@dataclass(frozen=True)
class ModuleFile:
    """What the analysis of one file needs to know about where it sits."""

    display: str
    abspath: Path
    module: str
    is_package: bool
    in_test: bool


_PYTHON2_HINTS = re.compile(
    rb"^[ \t]*(?:print[ \t]+[^\s=(]|exec[ \t]+[\"']|except[ \t]+[\w.]+[ \t]*,[ \t]*\w+[ \t]*:)",
    re.MULTILINE,
)


def _syntax_error_message(source: bytes, detail: str) -> str:
    message = f"syntax error: {detail}"
    if _PYTHON2_HINTS.search(source):
        message += " (this looks like Python 2 code; ctxmigrate reads Python 3 only)"
    return message


def parse_module(source: bytes, python_error: SyntaxError | None = None) -> cst.Module:
    """LibCST's parse of ``source``; SourceError with a clear message when it fails.

    LibCST reads the encoding cookie, a BOM and CRLF itself and accepts syntax
    newer than the running interpreter (PEP 701 f-strings on 3.11). When
    Python's own parser failed too, its ``python_error`` is the clearer message
    (LibCST reports where its parser gave up, often a line later).
    """
    import libcst as cst

    problem = text_problem(source)
    if problem is not None:
        raise SourceError(problem)
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        if python_error is not None and python_error.lineno is not None:
            detail = f"line {python_error.lineno}, column {python_error.offset}: {python_error.msg}"
        else:
            detail = f"line {error.raw_line}, column {error.raw_column + 1}: {error.message}"
        raise SourceError(_syntax_error_message(source, detail)) from None
    except (UnicodeDecodeError, LookupError, SyntaxError, ValueError) as error:
        raise SourceError(f"cannot read as Python source: {error}") from None


def decoded(source: bytes) -> str:
    """``source`` decoded as Python does (encoding cookie, BOM, else UTF-8)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    return source.decode(encoding)


def decoded_or_none(source: bytes) -> str | None:
    """``decoded``, or None when the bytes cannot be decoded as Python source."""
    try:
        return decoded(source)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None


def ast_or_none(source: bytes) -> ast.Module | None:
    """``ast``'s tree of ``source``, or None when ``ast`` cannot read it (newer
    syntax, nesting too deep, a null byte). Its warnings (invalid escapes) are
    the application's business."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def summarize_source(
    source: bytes,
    module_file: ModuleFile,
    names: HintNames | None = None,
    prune_names: frozenset[str] | None = None,
) -> tuple[ModuleSummary, SiteHints | None, pruning.PrunedText | None]:
    """The module summary: from ``ast`` when it can parse the file, else from LibCST.

    With ``names``, also the site hints of the ``ast`` tree (None when ``ast``
    could not read the file: it is then always analysed); with
    ``prune_names``, the text the audit's LibCST parse may read instead
    (``pruning.py``), made from the same tree.
    """
    from ctxmigrate.codemods.analysis.summaries import summarize_ast

    try:
        with warnings.catch_warnings():
            # Invalid escape sequences and the like are the application's business.
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except SyntaxError as error:
        tree, python_error = None, error
    except ValueError:
        tree, python_error = None, None
    if tree is not None:
        module, is_package = module_file.module, module_file.is_package
        summary = summarize_ast(tree, module, is_package, decoded(source))
        hints = None if names is None else site_hints(tree, source, module, is_package, names)
        pruned = None
        if prune_names is not None:
            # Too deep to prune here: the analysis prunes it again, and reports what it must.
            with contextlib.suppress(RecursionError):
                text = pruning.pruned_source(source, prune_names, tree)
                pruned = pruning.PrunedText(prune_names, text)
        return summary, hints, pruned
    # Syntax newer than the running interpreter: LibCST reads it (and only then
    # is it imported: ``scopes`` imports it, 0.1 s a summary worker need not pay).
    from ctxmigrate.codemods.analysis.scopes import ScopeWalker, summarize_cst

    cst_module = parse_module(source, python_error)
    walker = ScopeWalker(module_file.module, module_file.is_package)
    walker.walk(cst_module)
    return summarize_cst(walker, _census_with_cst(cst_module)), None, None


def _census_with_cst(module: cst.Module) -> list[Any]:
    import libcst as cst

    from ctxmigrate.codemods.analysis.scopes import iter_nodes
    from ctxmigrate.codemods.analysis.summaries import ClassSite, suppressed_rules
    from ctxmigrate.codemods.positions import node_spans

    classes = [
        node
        for node in iter_nodes(module)
        if isinstance(node, cst.ClassDef) and node.name.value in CENSUS_CLASS_NAMES
    ]
    if not classes:
        return []
    spans, lines = node_spans(module, [node.name for node in classes])
    sites = []
    for node in classes:
        span = spans[id(node.name)]
        line_text = lines.line(span.line)
        class_column = line_text.find("class") + 1 if "class" in line_text else span.column
        sites.append(
            ClassSite(
                node.name.value,
                span.line,
                class_column,
                span.end_line,
                span.end_column,
                suppressed_rules(line_text),
            )
        )
    return sites


# Python's default limit (1,000 frames) stops LibCST's recursive code generation
# on expressions CPython itself compiles (a 400-term ``"a" + "a" + ...`` in
# generated code). Since 3.11, Python-to-Python calls do not grow the C stack,
# so a higher limit only lets such files through; the nesting LibCST's parser
# accepts is bounded by its own limits.
ANALYSIS_RECURSION_LIMIT = 20_000


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Run the analysis and the fix of one file with ``ANALYSIS_RECURSION_LIMIT``."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, ANALYSIS_RECURSION_LIMIT))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
