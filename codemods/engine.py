"""The analysis engine: paths and configuration in, classified findings (and fixes) out.

The CLI calls ``run`` only. The pipeline, cheapest step first:

1. discover the ``.py`` files (``git ls-files`` in a checkout, while ``git
   grep`` already searches them for the legacy names);
2. the text pre-filter picks the candidate files (a legacy name, or a name a
   legacy name was re-exported under, appears in them); in a checkout only the
   files git grep selects are read, elsewhere every file is (errors for
   unreadable, binary, undecodable or huge files);
3. a module summary per candidate (``ast``, cached by content hash) builds the
   project index, and the legacy targets are discovered from it;
4. each candidate is parsed with LibCST, resolved and classified (in worker
   processes when there are enough candidates to pay for them); with
   ``fix=True`` the same worker applies the codemods;
5. the CTX104 class census is computed over all summaries.

LibCST is imported only when there is a candidate file.
"""

from __future__ import annotations

import ast
import io
import os
import re
import sys
import tokenize
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ctxmigrate.codemods.cache import AnalysisCache, digest
from ctxmigrate.codemods.config import Config, legacy_short_names
from ctxmigrate.codemods.discovery import (
    Discovery,
    GitGrep,
    SourceFile,
    SourceText,
    discover,
    module_names,
    read_sources,
    select_candidates,
    text_problem,
)
from ctxmigrate.codemods.model import AuditReport, FileError, Finding, Rule
from ctxmigrate.codemods.rules.duplicate_context_class import CENSUS_CLASS_NAMES
from ctxmigrate.codemods.selection import check_rule_selection, normalized_selection, rule_selected
from ctxmigrate.codemods.site_hints import (
    HintNames,
    SiteHints,
    hint_names,
    needs_analysis,
    site_hints,
)

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.analysis.summaries import ModuleSummary
    from ctxmigrate.codemods.fix import FixResult
    from ctxmigrate.codemods.sites import Codemod, Reference

AcceptKey = tuple[str, int, int, str]

# Candidate files each worker must get for a process pool to pay for its
# start-up and for shipping the index. Measured with fork on 2 cores (see
# docs/audit.md): 1 file per worker is 9% slower than serial, 2 files already
# 25% faster. Spawning interpreters (macOS, Windows) costs about ten times more
# per worker, hence the larger, unmeasured, margin there.
POOL_MIN_FILES_PER_WORKER_FORK = 2
POOL_MIN_FILES_PER_WORKER_SPAWN = 16

_PYTHON2_HINTS = re.compile(
    rb"^[ \t]*(?:print[ \t]+[^\s=(]|exec[ \t]+[\"']|except[ \t]+[\w.]+[ \t]*,[ \t]*\w+[ \t]*:)",
    re.MULTILINE,
)
_STAR_IMPORT = re.compile(rb"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]*\*", re.MULTILINE)


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


@dataclass
class FileAnalysis:
    path: str  # display path
    abspath: Path
    source: bytes
    module: cst.Module
    # Each reference with the codemod that judged it (one pair per selected rule).
    references: list[tuple[Codemod, Reference]]
    findings: list[Finding]
    # Names other modules reach through this one, with why (apply keeps their imports).
    reached_from_outside: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RunResult:
    report: AuditReport
    fixes: list[FixResult] = field(default_factory=list)
    # A path lies in a git checkout that git refused to read (dubious
    # ownership, ``safe.directory``): .gitignore was not applied (an error in
    # ``report.errors`` says so) and uncommitted changes cannot be checked, so
    # ``apply --write`` must not treat the files as "outside any checkout".
    git_unavailable: bool = False


@dataclass
class _Outcome:
    display: str
    findings: list[Finding]
    error: FileError | None = None
    fix: FixResult | None = None


def default_codemods() -> tuple[Codemod, ...]:
    from ctxmigrate.codemods import CODEMODS

    return CODEMODS


# --- parsing ------------------------------------------------------------------------


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


def _decoded(source: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    return source.decode(encoding)


def summarize_source(
    source: bytes, module_file: ModuleFile, names: HintNames | None = None
) -> tuple[ModuleSummary, SiteHints | None]:
    """The module summary: from ``ast`` when it can parse the file, else from LibCST.

    With ``names``, also the site hints of the ``ast`` tree (None when ``ast``
    could not read the file: it is then always analysed).
    """
    from ctxmigrate.codemods.analysis.scopes import ScopeWalker, summarize_cst
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
        summary = summarize_ast(tree, module, is_package, _decoded(source))
        hints = None if names is None else site_hints(tree, module, is_package, names)
        return summary, hints
    # Syntax newer than the running interpreter: LibCST reads it.
    cst_module = parse_module(source, python_error)
    walker = ScopeWalker(module_file.module, module_file.is_package)
    walker.walk(cst_module)
    return summarize_cst(walker, _census_with_cst(cst_module)), None


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


# --- the index ----------------------------------------------------------------------


def _non_candidate_star_imports(
    summaries: Sequence[ModuleSummary], others: Mapping[str, tuple[ModuleFile, bytes | None]]
) -> dict[str, tuple[str, ...]]:
    """Star imports of the non-candidate modules a candidate star-imports, transitively.

    Only those can pass a legacy name on, so only those are scanned (a regex
    over every file of a large tree would cost as much as the pre-filter).
    """
    from ctxmigrate.codemods.analysis.summaries import absolute_module

    stars: dict[str, tuple[str, ...]] = {}
    pending = [star for summary in summaries for star in summary.star_imports]
    while pending:
        module = pending.pop()
        if module in stars or module not in others:
            continue
        module_file, data = others[module]
        if data is None:
            try:
                data = module_file.abspath.read_bytes()
            except OSError:
                data = b""  # gone or unreadable since it was listed: passes nothing on
        found = []
        for match in _STAR_IMPORT.finditer(data):
            level = len(match.group(1))
            name = match.group(2).decode() or None
            absolute = absolute_module(module_file.module, module_file.is_package, level, name)
            if absolute is not None:
                found.append(absolute)
        stars[module] = tuple(found)
        pending.extend(found)
    return {module: found for module, found in stars.items() if found}


def build_index(
    summaries: Sequence[ModuleSummary],
    files: Sequence[ModuleFile],
    aliases: Mapping[str, tuple[str, ...]],
    other_star_imports: Mapping[str, tuple[str, ...]],
    known_names: frozenset[str],
    config: Config,
    mentions: Mapping[str, frozenset[str]] | None = None,
) -> ProjectIndex:
    """The cross-module index; ``mentions`` (module -> dotted paths it names) is
    only needed when fixing, to keep imports other modules reach."""
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex, discover_targets
    from ctxmigrate.codemods.external_uses import external_uses

    by_name: dict[str, ModuleSummary] = {}
    for summary in summaries:
        by_name.setdefault(summary.module, summary)
    for summary in summaries:
        for alias in aliases.get(summary.module, ()):
            by_name.setdefault(alias, summary)
    modules: set[str] = set()
    for module_file in files:
        modules.add(module_file.module)
        modules.update(aliases.get(module_file.module, ()))
        # Parent packages exist even without an __init__.py (namespace packages).
        parts = module_file.module.split(".")
        modules.update(".".join(parts[:end]) for end in range(1, len(parts)))
    targets = discover_targets(config, by_name)
    known = known_names | {target.qualname.rpartition(".")[2] for target in targets}
    index = ProjectIndex(
        summaries=by_name,
        modules=frozenset(modules),
        other_star_imports=dict(other_star_imports),
        targets=targets,
        known_names=frozenset(known),
        module_aliases=dict(aliases),
    )
    index.files = {str(module_file.abspath): module_file for module_file in files}
    if mentions is not None:
        index.external_uses = external_uses(by_name, mentions)
    return index


def index_digest(index: ProjectIndex) -> str:
    """Everything in the index that can change another file's findings."""
    import json

    primary = sorted({summary.module: summary for summary in index.summaries.values()}.items())
    payload = json.dumps(
        {
            "summaries": [summary.to_json() for _, summary in primary],
            "modules": sorted(index.modules),
            "stars": sorted(index.other_star_imports.items()),
            "targets": [[t.kind, t.qualname, t.params, t.is_async] for t in index.targets],
            "known": sorted(index.known_names),
            "aliases": sorted(index.module_aliases.items()),
        },
        sort_keys=True,
    )
    return digest(payload)


# --- one file -----------------------------------------------------------------------


def analyze_source(
    path: Path,
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod] | None = None,
) -> FileAnalysis:
    """Resolve and classify one file against the project index.

    Raises SourceError when the file cannot be parsed.
    """
    from ctxmigrate.codemods.analysis.lookup import method_receivers, new_name_clash
    from ctxmigrate.codemods.analysis.references import ReferenceFinder
    from ctxmigrate.codemods.analysis.summaries import SUPPRESSION, suppressed_rules
    from ctxmigrate.codemods.audit_sites import RELATED_LINE, audit_sites
    from ctxmigrate.codemods.classify import is_suppressed, suppression_reason
    from ctxmigrate.codemods.positions import node_spans
    from ctxmigrate.codemods.sites import Reference, Scope

    module_file = index.files.get(str(path.absolute())) or _module_file_on_disk(path, config)
    module = parse_module(source)
    finder = ReferenceFinder(module_file.module, module_file.is_package, index, config)
    finder.find(module)
    from ctxmigrate.codemods.rules import REGISTERED_RULES

    audit_rules = [rule for rule in REGISTERED_RULES if rule_selected(rule, config)]
    sites = audit_sites(finder, audit_rules)
    nodes: list[cst.CSTNode] = [ref.node for ref in finder.references]
    nodes.extend(site.node for site in sites)
    nodes.extend(site.related for site in sites if site.related is not None)
    references: list[tuple[Codemod, Reference]] = []
    findings: list[Finding] = []
    if not nodes:
        return FileAnalysis(module_file.display, module_file.abspath, source, module, [], [])
    # Only real comments suppress: "# ctxmigrate: ignore" inside a string must not.
    quoting = _strings_quoting_suppressions(module) if b"ctxmigrate:" in source.lower() else []
    spans, lines = node_spans(module, [*nodes, *quoting])
    quoted = [spans[id(string)] for string in quoting]

    def suppressed_on(line: int) -> frozenset[str]:
        found: set[str] = set()
        text = lines.line(line)
        for match in SUPPRESSION.finditer(text):
            position = (line, match.start() + 1)
            if not any(
                (span.line, span.column) <= position < (span.end_line, span.end_column)
                for span in quoted
            ):
                found |= suppressed_rules(match.group(0))
        return frozenset(found)

    def suppressed_at(line: int, end_line: int) -> frozenset[str]:
        return suppressed_on(line) | suppressed_on(end_line)

    active = codemods if codemods is not None else default_codemods()
    # Every selected codemod judges every reference to its target: two rules
    # for one target both report.
    judging = [codemod for codemod in active if rule_selected(codemod.rule, config)]
    for raw in finder.references:
        span = spans[id(raw.node)]
        callee = raw.callee if raw.callee is not None else raw.node
        for codemod in judging:
            if codemod.rule.target != raw.target.spec:
                continue
            required = codemod.required_import(config)
            ref = Reference(
                target=raw.target,
                usage=raw.usage,
                node=raw.node,
                call=raw.call,
                callee_code=module.code_for_node(callee),
                scope=Scope(raw.scope.report_kind, raw.scope.report_function),
                span=span,
                in_test=module_file.in_test,
                suppressed=suppressed_at(span.line, span.end_line),
                uncertainty=raw.uncertainty,
                in_generator_expression=raw.scope.in_generator_expression,
                awaited=id(raw.node) in finder.awaited,
                new_name_clash=None if required is None else new_name_clash(*required, raw.scope),
                receivers=method_receivers(raw.scope),
            )
            references.append((codemod, ref))
    for codemod, ref in references:
        decision = codemod.classify(ref, config)
        findings.append(
            Finding(
                rule=codemod.rule.id,
                category=decision.category,
                path=module_file.display,
                line=ref.span.line,
                column=ref.span.column,
                end_line=ref.span.end_line,
                end_column=ref.span.end_column,
                symbol=ref.target.qualname,
                function=ref.scope.function,
                message=decision.message,
                fix=decision.fix if decision.category == "rewrite" else None,
            )
        )
    for site in sites:
        span = spans[id(site.node)]
        message = site.message
        if site.related is not None:
            message = message.replace(RELATED_LINE, str(spans[id(site.related)].line))
        if is_suppressed(suppressed_at(span.line, span.end_line), site.rule):
            category, message = "keep", suppression_reason(site.rule.id)
        elif module_file.in_test and site.keep_in_tests:
            category, message = "keep", f"test code: {message}"
        else:
            category = "review"
        findings.append(
            Finding(
                rule=site.rule.id,
                category=category,  # type: ignore[arg-type]
                path=module_file.display,
                line=span.line,
                column=span.column,
                end_line=span.end_line,
                end_column=span.end_column,
                symbol=site.symbol,
                function=site.function,
                message=message,
            )
        )
    findings.sort(key=Finding.sort_key)
    return FileAnalysis(
        module_file.display,
        module_file.abspath,
        source,
        module,
        references,
        findings,
        index.external_uses.get(module_file.module, {}),
    )


def _strings_quoting_suppressions(module: cst.Module) -> list[cst.CSTNode]:
    """String literals whose text contains ``ctxmigrate:`` (they suppress nothing)."""
    import libcst as cst

    from ctxmigrate.codemods.analysis.scopes import iter_nodes

    return [
        node
        for node in iter_nodes(module)
        if (isinstance(node, cst.SimpleString) and "ctxmigrate:" in node.value.lower())
        or (
            isinstance(node, cst.FormattedString)
            and any(
                isinstance(part, cst.FormattedStringText) and "ctxmigrate:" in part.value.lower()
                for part in node.parts
            )
        )
    ]


def _module_file_on_disk(path: Path, config: Config) -> ModuleFile:
    from ctxmigrate.codemods.discovery import display_path

    absolute = path.absolute()
    module, _ = module_names(str(absolute), str(config.root.resolve()))
    import pathspec

    tests = pathspec.GitIgnoreSpec.from_lines(config.test_patterns)
    try:
        project_path = absolute.relative_to(config.root.resolve()).as_posix()
    except ValueError:
        project_path = absolute.name
    return ModuleFile(
        display_path(absolute),
        absolute,
        module,
        absolute.name == "__init__.py",
        tests.match_file(project_path),
    )


# --- in-memory projects (tests, goldens, previews) --------------------------------


def analyze_sources(
    sources: Mapping[str, bytes], config: Config, codemods: Sequence[Codemod] | None = None
) -> dict[str, FileAnalysis]:
    """Analyse in-memory files as one project; keys are paths relative to ``config.root``.

    Every given file is analysed (no pre-filter), and CTX104 census findings
    join the findings of the file that holds the class. Raises SourceError when
    a file does not parse.
    """
    index, module_files = build_memory_index(sources, config)
    from ctxmigrate.codemods.rules.duplicate_context_class import RULE as CENSUS_RULE
    from ctxmigrate.codemods.rules.duplicate_context_class import census_findings

    config = normalized_selection(config)
    census: list[Finding] = []
    if rule_selected(CENSUS_RULE, config):
        primary = [
            index.summaries[module_file.module]
            for module_file in module_files.values()
            if module_file.module in index.summaries
        ]
        census = census_findings(primary, {m.module: m.display for m in module_files.values()})
    analyses: dict[str, FileAnalysis] = {}
    for key, module_file in module_files.items():
        analysis = analyze_source(module_file.abspath, sources[key], config, index, codemods)
        extra = [finding for finding in census if finding.path == module_file.display]
        if extra:
            analysis.findings = sorted([*analysis.findings, *extra], key=Finding.sort_key)
        analyses[key] = analysis
    return analyses


def build_memory_index(
    sources: Mapping[str, bytes], config: Config
) -> tuple[ProjectIndex, dict[str, ModuleFile]]:
    """The project index of in-memory files (``{"pkg/mod.py": b"..."}``)."""
    import pathspec

    root = config.root.absolute()
    keys = {PurePosixPath(key).as_posix() for key in sources}

    def is_package(directory: str) -> bool:
        try:
            relative = Path(directory).relative_to(root).as_posix()
        except ValueError:
            return False
        return relative != "." and f"{relative}/__init__.py" in keys

    tests = pathspec.GitIgnoreSpec.from_lines(config.test_patterns)
    module_files: dict[str, ModuleFile] = {}
    aliases: dict[str, tuple[str, ...]] = {}
    for key in sources:
        posix = PurePosixPath(key).as_posix()
        absolute = root / posix
        module, module_aliases = module_names(str(absolute), str(root), is_package)
        aliases[module] = module_aliases
        module_files[key] = ModuleFile(
            posix, absolute, module, absolute.name == "__init__.py", tests.match_file(posix)
        )
    texts = [
        SourceText(
            SourceFile(m.abspath, m.display, m.display, m.module, aliases[m.module], m.in_test),
            sources[key],
        )
        for key, m in module_files.items()
    ]
    _, known = select_candidates(texts, legacy_short_names(config))
    from ctxmigrate.codemods.external_uses import dotted_mentions

    summaries = [summarize_source(sources[key], m)[0] for key, m in module_files.items()]
    mentions = {m.module: dotted_mentions(sources[key], known) for key, m in module_files.items()}
    index = build_index(
        summaries, list(module_files.values()), aliases, {}, known, config, mentions
    )
    return index, module_files


# --- the whole run --------------------------------------------------------------------

_WORKER_STATE: tuple[Config, ProjectIndex, Sequence[Codemod], bool, frozenset[Any] | None] | None
_WORKER_STATE = None


def _init_worker(
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    fix: bool,
    accept: frozenset[AcceptKey] | None,
) -> None:
    global _WORKER_STATE
    _WORKER_STATE = (config, index, codemods, fix, accept)


def _analyze_in_worker(item: tuple[str, bytes]) -> _Outcome:
    assert _WORKER_STATE is not None
    config, index, codemods, fix, accept = _WORKER_STATE
    return _analyze_file(Path(item[0]), item[1], config, index, codemods, fix, accept)


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


def _analyze_file(
    path: Path,
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    fix: bool,
    accept: frozenset[AcceptKey] | None,
) -> _Outcome:
    with deep_recursion():
        return _analyze_and_fix(path, source, config, index, codemods, fix, accept)


def _analyze_and_fix(
    path: Path,
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    fix: bool,
    accept: frozenset[AcceptKey] | None,
) -> _Outcome:
    display = index.files[str(path)].display
    try:
        analysis = analyze_source(path, source, config, index, codemods)
    except SourceError as error:
        return _Outcome(display, [], FileError(display, str(error)))
    except RecursionError:
        return _Outcome(
            display, [], FileError(display, "too deeply nested for the analysis; skipped")
        )
    except Exception as error:  # one odd file must not abort a 5,000-file audit
        return _Outcome(display, [], FileError(display, _internal_error(error)))
    fixed: FixResult | None = None
    if fix and any(finding.category == "rewrite" for finding in analysis.findings):
        from ctxmigrate.codemods.fix import fix_source

        fixed = fix_source(analysis, config, codemods, accept)
    return _Outcome(display, analysis.findings, None, fixed)


def _internal_error(error: Exception) -> str:
    return (
        f"internal error while analysing this file ({type(error).__name__}: {error}); "
        "the rest of the tree was audited; please report it"
    )


def _module_file(source: SourceFile) -> ModuleFile:
    return ModuleFile(
        source.display,
        source.path,
        source.module,
        source.path.name == "__init__.py",
        source.in_test,
    )


class _TextPrefilter:
    """The files the text pre-filter looks at, read in Python only when needed.

    Files listed by git are searched by ``git grep`` (its result for the
    first names was started before discovery); only the files it reports are
    read, so binary and undecodable content is reported for those only (like
    syntax errors, for candidates). Files outside a checkout, symlinks, and
    files over the size limit or unreadable (whose error must be reported
    for every file) are read as before. When git fails, everything is read.
    """

    def __init__(
        self, discovery: Discovery, config: Config, first_matches: list[set[str] | None]
    ) -> None:
        """``first_matches``: git grep's answer for the legacy and census names,
        one per checkout directory of ``discovery``."""
        self.config = config
        self.directories = discovery.git_directories
        self.sources: list[SourceText] = []
        self.read_errors: list[FileError] = []
        self._read: set[Path] = set()
        self._searchable = [file for file in discovery.files if file.git_searchable]
        self._others = [file for file in discovery.files if not file.git_searchable]
        matches = self._union(first_matches)
        if matches is None:  # git failed: the Python pre-filter reads everything
            self._others, self._searchable = discovery.files, []
        self._first_matches = matches or set()

    @staticmethod
    def _union(results: Sequence[set[str] | None]) -> set[str] | None:
        found: set[str] = set()
        for result in results:
            if result is None:
                return None
            found |= result
        return found

    def _read_files(self, files: Sequence[SourceFile]) -> list[SourceText]:
        files = [file for file in files if file.path not in self._read]
        self._read.update(file.path for file in files)
        sources, errors = read_sources(files, self.config)
        self.sources.extend(sources)
        self.read_errors.extend(errors)
        return sources

    def _must_read(self, file: SourceFile) -> bool:
        """Oversized and unreadable files get their error whatever they contain."""
        try:
            too_big = os.stat(file.path).st_size > self.config.max_file_bytes
        except OSError:
            return True
        return too_big or not os.access(file.path, os.R_OK)

    def initial_sources(self) -> list[SourceText]:
        wanted = [
            file
            for file in self._searchable
            if str(file.path) in self._first_matches or self._must_read(file)
        ]
        return self._read_files([*self._others, *wanted])

    def sources_mentioning(self, names: set[str]) -> list[SourceText]:
        """Files not read yet that may mention one of ``names`` (re-export rounds)."""
        unread = [file for file in self._searchable if file.path not in self._read]
        if not unread:
            return []
        greps = [GitGrep(directory, names) for directory in self.directories]
        matches = self._union([grep.result() for grep in greps])
        if matches is None:
            return self._read_files(unread)
        return self._read_files([file for file in unread if str(file.path) in matches])


def run(
    paths: Sequence[Path],
    config: Config,
    codemods: Sequence[Codemod] | None = None,
    *,
    fix: bool = False,
    accept: frozenset[AcceptKey] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
) -> RunResult:
    """Audit (and with ``fix=True`` fix) the ``.py`` files under ``paths``.

    ``codemods`` None means the registered ones (loaded, with libcst, only
    when there is a candidate file). Raises CtxmigrateError for a path that
    does not exist. Per-file problems are reported in ``report.errors``; the
    rest of the tree is still analysed.
    """
    config = normalized_selection(config, _known_rules(codemods))
    check_rule_selection(config, _known_rules(codemods))
    legacy_names = legacy_short_names(config)
    # Started before discovery: git searches while ls-files output is processed.
    first_greps = {
        given: GitGrep(given, (*legacy_names, *CENSUS_CLASS_NAMES))
        for given in paths
        if given.is_dir()
    }
    try:
        discovery = discover(paths, config)
    finally:
        # Only checkouts' results are used; every process is waited for.
        results = {given: grep.result() for given, grep in first_greps.items()}
    report = AuditReport()
    report.errors.extend(discovery.errors)
    report.files_scanned = len(discovery.files) + sum(
        1 for error in discovery.errors if error.path.endswith(".py")
    )
    prefilter = _TextPrefilter(
        discovery, config, [results[given] for given in discovery.git_directories]
    )
    candidates, known = select_candidates(
        prefilter.initial_sources(), legacy_names, prefilter.sources_mentioning
    )
    report.errors.extend(prefilter.read_errors)
    if not candidates:
        report.errors.sort(key=lambda error: error.path)
        return RunResult(report, git_unavailable=discovery.git_refused)
    order = {source.path: position for position, source in enumerate(discovery.files)}
    candidates.sort(key=lambda candidate: order[candidate.file.path])
    sources = prefilter.sources

    cache = AnalysisCache(config.root, enabled=use_cache and not fix)
    codemods = default_codemods() if codemods is None else codemods
    module_files = {source.path: _module_file(source) for source in discovery.files}
    summaries: list[ModuleSummary] = []
    hints: list[SiteHints | None] = []
    parsed: list[SourceText] = []
    names = hint_names(known, config)
    for candidate, summary_or_error in zip(
        candidates, _summaries(candidates, module_files, cache, jobs, names), strict=True
    ):
        if isinstance(summary_or_error, FileError):
            report.errors.append(summary_or_error)
        else:
            summaries.append(summary_or_error[0])
            hints.append(summary_or_error[1])
            parsed.append(candidate)
    candidate_paths = {candidate.file.path for candidate in candidates}
    read_data = {source.file.path: source.data for source in sources}
    others: dict[str, tuple[ModuleFile, bytes | None]] = {}
    for source_file in discovery.files:
        if source_file.path not in candidate_paths:
            module_file = module_files[source_file.path]
            # None: the pre-filter left it unread (git grep); read if star-imported.
            data = read_data.get(source_file.path)
            if data is not None or source_file.git_searchable:
                for name in (module_file.module, *source_file.module_aliases):
                    others.setdefault(name, (module_file, data))
    aliases = {source.module: source.module_aliases for source in discovery.files}
    index = build_index(
        summaries,
        list(module_files.values()),
        aliases,
        _non_candidate_star_imports(summaries, others),
        known,
        config,
        _mentions(parsed, module_files, known) if fix else None,
    )
    selected = [codemod for codemod in codemods if rule_selected(codemod.rule, config)]
    # Only files that can hold a site are parsed with LibCST (see site_hints).
    from ctxmigrate.codemods.rules.non_defining_import import RULE as IMPORT_RULE

    import_rule = rule_selected(IMPORT_RULE, config)
    analysed = [
        candidate
        for candidate, candidate_hints in zip(parsed, hints, strict=True)
        if needs_analysis(
            candidate_hints, module_files[candidate.file.path].module, index, import_rule
        )
    ]
    outcomes = _analyze_all(analysed, config, index, selected, fix, accept, jobs, progress, cache)

    fixes: list[FixResult] = []
    for outcome in outcomes:
        report.findings.extend(outcome.findings)
        if outcome.error is not None:
            report.errors.append(outcome.error)
        if outcome.fix is not None:
            fixes.append(outcome.fix)

    from ctxmigrate.codemods.rules.duplicate_context_class import RULE as CENSUS_RULE
    from ctxmigrate.codemods.rules.duplicate_context_class import census_findings

    if rule_selected(CENSUS_RULE, config):
        displays = {
            summary.module: module_files[c.file.path].display
            for summary, c in zip(summaries, parsed, strict=True)
        }
        report.findings.extend(census_findings(summaries, displays))
    report.findings.sort(key=Finding.sort_key)
    report.errors.sort(key=lambda error: error.path)
    fixes.sort(key=lambda result: result.path)
    return RunResult(report, fixes, git_unavailable=discovery.git_refused)


def _known_rules(codemods: Sequence[Codemod] | None) -> tuple[Rule, ...]:
    """The registered rules, and the rules of codemods given to a run."""
    from ctxmigrate.codemods.rules import REGISTERED_RULES

    given = tuple(codemod.rule for codemod in codemods or ())
    return tuple(dict.fromkeys((*REGISTERED_RULES, *given)))


def _mentions(
    parsed: Sequence[SourceText], module_files: Mapping[Path, ModuleFile], known: frozenset[str]
) -> dict[str, frozenset[str]]:
    """Dotted paths each candidate names: only apply needs them, to keep imports
    that other modules reach (a re-export, a ``mock.patch`` target)."""
    from ctxmigrate.codemods.external_uses import dotted_mentions

    return {module_files[c.file.path].module: dotted_mentions(c.data, known) for c in parsed}


def _summaries(
    candidates: Sequence[SourceText],
    module_files: Mapping[Path, ModuleFile],
    cache: AnalysisCache,
    jobs: int | None,
    names: HintNames,
) -> list[tuple[ModuleSummary, SiteHints | None] | FileError]:
    """The module summary (or the error) of each candidate, from the cache or computed.

    Computed in worker processes when there are enough of them, like the analysis.
    """
    from ctxmigrate.codemods.analysis.summaries import SUMMARY_VERSION, ModuleSummary

    results: dict[int, tuple[ModuleSummary, SiteHints | None] | FileError] = {}
    keys: dict[int, str] = {}
    missing: list[int] = []
    for position, candidate in enumerate(candidates):
        module_file = module_files[candidate.file.path]
        keys[position] = digest(
            "summary",
            str(SUMMARY_VERSION),
            module_file.module,
            str(module_file.is_package),
            names.key(),
            candidate.data,
        )
        cached = cache.summary(keys[position])
        try:
            if cached is not None and "error" in cached:
                results[position] = FileError(module_file.display, cached["error"])
            elif cached is not None:
                hints = cached["hints"]
                results[position] = (
                    ModuleSummary.from_json(cached["summary"]),
                    None if hints is None else SiteHints.from_json(hints),
                )
            else:
                missing.append(position)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            missing.append(position)  # a corrupt entry is a miss
    jobs_input = [
        (candidates[p].data, module_files[candidates[p].file.path], names) for p in missing
    ]
    workers = _worker_count(len(missing), jobs)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            computed = list(
                pool.map(_summarize_job, jobs_input, chunksize=_chunk_size(missing, workers))
            )
    else:
        computed = [_summarize_job(item) for item in jobs_input]
    for position, (result, cacheable) in zip(missing, computed, strict=True):
        results[position] = result
        if cacheable and isinstance(result, FileError):
            cache.store_summary(keys[position], {"error": result.message})
        elif cacheable and not isinstance(result, FileError):
            summary, hints = result
            cache.store_summary(
                keys[position],
                {"summary": summary.to_json(), "hints": None if hints is None else hints.to_json()},
            )
    return [results[position] for position in range(len(candidates))]


def _summarize_job(
    item: tuple[bytes, ModuleFile, HintNames],
) -> tuple[tuple[ModuleSummary, SiteHints | None] | FileError, bool]:
    """(summary and hints, or the error; whether the outcome may be cached)."""
    data, module_file, names = item
    try:
        with deep_recursion():
            return summarize_source(data, module_file, names), True
    except SourceError as error:
        return FileError(module_file.display, str(error)), True
    except RecursionError:
        message = "too deeply nested for the analysis; skipped"
        return FileError(module_file.display, message), False
    except Exception as error:  # one odd file must not abort a 5,000-file audit
        return FileError(module_file.display, _internal_error(error)), False


def _chunk_size(items: Sequence[object], workers: int) -> int:
    return max(1, len(items) // (workers * 4))


def _analyze_all(
    parsed: Sequence[SourceText],
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    fix: bool,
    accept: frozenset[AcceptKey] | None,
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
    cache: AnalysisCache,
) -> list[_Outcome]:
    total = len(parsed)
    outcomes: dict[int, _Outcome] = {}
    shared = digest(
        config.fingerprint(),
        index_digest(index),
        ",".join(sorted(codemod.rule.id for codemod in codemods)),
        repr((sorted(config.select), sorted(config.ignore))),
    )
    keys: dict[int, str] = {}
    pending: list[int] = []
    for position, candidate in enumerate(parsed):
        module_file = index.files[str(candidate.file.path)]
        keys[position] = digest(shared, repr(module_file), candidate.data)
        cached = cache.outcome(keys[position])
        if cached is not None:
            outcomes[position] = _Outcome(module_file.display, cached[0], cached[1])
        else:
            pending.append(position)
    done = len(outcomes)
    if progress is not None:
        progress(done, total)
    workers = _worker_count(len(pending), jobs)
    if workers > 1:
        with ProcessPoolExecutor(
            max_workers=workers,
            initializer=_init_worker,
            initargs=(config, index, codemods, fix, accept),
        ) as pool:
            items = [(str(parsed[p].file.path), parsed[p].data) for p in pending]
            results = pool.map(_analyze_in_worker, items, chunksize=_chunk_size(items, workers))
            for position, outcome in zip(pending, results, strict=True):
                outcomes[position] = outcome
                done += 1
                if progress is not None:
                    progress(done, total)
    else:
        for position in pending:
            candidate = parsed[position]
            outcomes[position] = _analyze_file(
                candidate.file.path, candidate.data, config, index, codemods, fix, accept
            )
            done += 1
            if progress is not None:
                progress(done, total)
    for position in pending:
        outcome = outcomes[position]
        cache.store_outcome(keys[position], outcome.findings, outcome.error)
    return [outcomes[position] for position in range(total)]


def _worker_count(pending: int, jobs: int | None) -> int:
    import multiprocessing

    available = jobs if jobs is not None else (os.cpu_count() or 1)
    if available <= 1:
        return 1
    per_worker = (
        POOL_MIN_FILES_PER_WORKER_FORK
        if multiprocessing.get_start_method() == "fork"
        else POOL_MIN_FILES_PER_WORKER_SPAWN
    )
    return max(1, min(available, pending // per_worker))
