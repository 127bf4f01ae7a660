"""The analysis engine: paths and configuration in, classified findings (and fixes) out.

The CLI calls ``run`` only. The pipeline, cheapest step first:

1. discover the ``.py`` files (``git ls-files`` in a checkout, while ``git
   grep`` already searches them for the legacy names);
2. the text pre-filter picks the candidate files (a legacy name, or a name a
   legacy name was re-exported under, appears in them); in a checkout only the
   files git grep selects are read, elsewhere every file is (errors for
   unreadable, binary, undecodable or huge files);
3. a module summary (``ast``, cached by content hash) builds the project
   index, and the legacy targets are discovered from it; the same ``ast``
   tree gives the site hints (``site_hints.py``). Candidates whose text shows
   they can hold no site but an import and define nothing legacy (most of
   them, on a tree half-way through a migration) are not parsed: their hints
   come from the text, and their summary is built only if the index asks
   about them (``_split_lazy``);
4. each candidate that can hold a site is parsed with LibCST, resolved and
   classified (in worker processes when there are enough of them to pay for
   them; on a cold run, in the analysis server forked before discovery, which
   imports LibCST meanwhile: ``analysis_server.py``); with ``fix=True`` the
   same worker applies the codemods;
5. the CTX104 class census is computed over the summaries (a lazy file
   defines no census class).

LibCST is imported only when a file must be parsed (not on a warm-cache run).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctxmigrate.codemods.analysis.file_analysis import analyze_source, pruning_names
from ctxmigrate.codemods.analysis.indexing import (
    _non_candidate_star_imports,
    build_index,
    index_digest,
)
from ctxmigrate.codemods.analysis.parsing import (
    ModuleFile,
    SourceError,
    deep_recursion,
    summarize_source,
)
from ctxmigrate.codemods.analysis.prefilter import TextPrefilter
from ctxmigrate.codemods.cache import AnalysisCache, digest
from ctxmigrate.codemods.config import Config, legacy_short_names
from ctxmigrate.codemods.discovery import (
    Discovery,
    SourceFile,
    SourceText,
    discover,
    learned_aliases,
    select_candidates,
)
from ctxmigrate.codemods.git import GitGrep
from ctxmigrate.codemods.model import AuditReport, FileError, Finding, Rule
from ctxmigrate.codemods.rules.duplicate_context_class import CENSUS_CLASS_NAMES
from ctxmigrate.codemods.selection import check_rule_selection, normalized_selection, rule_selected
from ctxmigrate.codemods.site_hints import (
    HintNames,
    SiteHints,
    hint_names,
    may_name_a_site,
    needs_analysis,
    text_hints,
)
from ctxmigrate.codemods.tree_state import TreeState

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.analysis.pruning import PrunedText
    from ctxmigrate.codemods.analysis.summaries import ModuleSummary
    from ctxmigrate.codemods.analysis_server import AnalysisServer
    from ctxmigrate.codemods.rewrite.apply_plan import AcceptKey
    from ctxmigrate.codemods.rewrite.planning import FixResult
    from ctxmigrate.codemods.sites import Codemod


# Candidate files each worker must get for a process pool to pay for its
# start-up and for shipping the index. Measured with fork on 2 cores (see
# docs/audit.md): 1 file per worker is 9% slower than serial, 2 files already
# 25% faster. Spawning interpreters (macOS, Windows) costs about ten times more
# per worker, hence the larger, unmeasured, margin there.
POOL_MIN_FILES_PER_WORKER_FORK = 2


POOL_MIN_FILES_PER_WORKER_SPAWN = 16


@dataclass
class RunResult:
    report: AuditReport
    fixes: list[FixResult] = field(default_factory=list)
    # The git checkouts git refused to read (dubious ownership,
    # ``safe.directory``), one error each (also in ``report.errors``):
    # .gitignore was not applied and uncommitted changes cannot be checked, so
    # ``apply --write`` must not treat the files as "outside any checkout".
    git_refusals: list[FileError] = field(default_factory=list)

    @property
    def git_unavailable(self) -> bool:
        return bool(self.git_refusals)


@dataclass
class _Outcome:
    display: str
    findings: list[Finding]
    error: FileError | None = None
    fix: FixResult | None = None
    # The lazy modules the analysis looked at (``ProjectIndex.consulted``).
    consulted: frozenset[str] = frozenset()


def default_codemods() -> tuple[Codemod, ...]:
    from ctxmigrate.codemods import CODEMODS

    return CODEMODS


_WORKER_STATE: tuple[Config, ProjectIndex, Sequence[Codemod], bool, frozenset[Any] | None] | None


_WORKER_STATE = None


def set_worker_state(
    state: tuple[Config, ProjectIndex, Sequence[Codemod], bool, frozenset[AcceptKey] | None],
) -> None:
    global _WORKER_STATE
    _WORKER_STATE = state


def preload_analysis(fix: bool) -> None:
    """Import what the analysis (and with ``fix``, the rewriting) of a file needs."""
    import libcst  # noqa: F401

    default_codemods()
    if fix:
        import ctxmigrate.codemods.rewrite.planning  # noqa: F401


def _analyze_in_worker(item: tuple[str, bytes, PrunedText | None]) -> _Outcome:
    assert _WORKER_STATE is not None
    config, index, codemods, fix, accept = _WORKER_STATE
    return _analyze_file(Path(item[0]), item[1], config, index, codemods, fix, accept, item[2])


def _analyze_file(
    path: Path,
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    fix: bool,
    accept: frozenset[AcceptKey] | None,
    prepared: PrunedText | None = None,
) -> _Outcome:
    index.consulted = set()
    with deep_recursion():
        outcome = _analyze_and_fix(path, source, config, index, codemods, fix, accept, prepared)
    outcome.consulted = frozenset(index.consulted)
    return outcome


def _analyze_and_fix(
    path: Path,
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    fix: bool,
    accept: frozenset[AcceptKey] | None,
    prepared: PrunedText | None,
) -> _Outcome:
    display = index.files[str(path)].display
    try:
        # The pruned text gives the same findings (``pruning.py``); only a file
        # apply rewrites is parsed whole, since a rewrite needs the real tree.
        analysis = analyze_source(
            path, source, config, index, codemods, prune=True, prepared=prepared
        )
        if fix and any(finding.category == "rewrite" for finding in analysis.findings):
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
        from ctxmigrate.codemods.rewrite.planning import fix_source

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
        os.path.basename(source.absolute) == "__init__.py",
        source.in_test,
    )


class _OtherModuleFiles(Mapping[str, tuple[ModuleFile, "bytes | None"]]):
    """The files that are not candidates, by module name, each made a ModuleFile
    only when a star import reaches it (most never are)."""

    def __init__(self, files: Mapping[str, tuple[SourceFile, bytes | None]]) -> None:
        self._files = files

    def __getitem__(self, module: str) -> tuple[ModuleFile, bytes | None]:
        source, data = self._files[module]
        return _module_file(source), data

    def __contains__(self, module: object) -> bool:
        return module in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


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
    cache = AnalysisCache(config.root, enabled=use_cache and not fix)
    # When nothing is cached; with a cache, most runs analyse few files or
    # none, and forking would cost them 12 ms (see ``_run`` for the exception).
    server = _Preload(fix, jobs, enabled=not cache.has_outcomes())
    try:
        return _run(paths, config, codemods, fix, accept, jobs, progress, cache, server)
    finally:
        server.close()


def _run(
    paths: Sequence[Path],
    config: Config,
    codemods: Sequence[Codemod] | None,
    fix: bool,
    accept: frozenset[AcceptKey] | None,
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
    cache: AnalysisCache,
    server: _Preload,
) -> RunResult:
    legacy_names = legacy_short_names(config)
    first_names = (*legacy_names, *CENSUS_CLASS_NAMES)
    names_key = digest("learned names", *sorted(first_names))
    remembered = cache.learned_names(names_key)
    reuse = _LastReport(
        # Not for a run given its own codemods: the key does not know them.
        paths if cache.enabled and codemods is None else (),
        config,
        cache,
        hint_names((*legacy_names, *remembered), config),
    )
    # Started before discovery: git searches while ls-files output is processed.
    first_greps = {
        given: GitGrep(given, (*first_names, *remembered)) for given in paths if given.is_dir()
    }
    # With a cache, the analysis server is also forked when a file git says
    # changed may hold a site: its analysis is then likely, and LibCST's
    # import overlaps discovery (0.25 s to 0.21 s after an edit to a site file
    # of the 5,200-file tree).
    reused, discovery = _reused_or_discovered(
        paths,
        config,
        reuse,
        list(first_greps.values()),
        lambda: server.start(likely=reuse.changed_files_may_name_a_site()),
    )
    if reused is not None:
        return RunResult(reused)
    assert discovery is not None
    # Only checkouts' results are used; every process is waited for.
    results = {given: grep.result() for given, grep in first_greps.items()}
    # Stored at the end only if every file is one git sees whole (no symlink,
    # none outside it) and git did not refuse the checkout.
    reuse.storable = reuse.storable and not discovery.git_refusals
    reuse.storable = reuse.storable and all(file.git_listed for file in discovery.files)
    report = AuditReport()
    report.errors.extend(discovery.errors)
    report.files_scanned = len(discovery.files) + sum(
        1 for error in discovery.errors if error.path.endswith(".py")
    )
    prefilter = TextPrefilter(
        discovery,
        config,
        [results[given] for given in discovery.git_directories],
        all(first_greps[given].complete for given in discovery.git_directories),
        first_names,
        remembered,
    )
    aliases_of = _AliasMemo(cache)
    candidates, known = select_candidates(
        prefilter.initial_sources(), legacy_names, prefilter.sources_mentioning, aliases_of
    )
    aliases_of.store()
    learned = sorted(name for name in known - set(legacy_names) if name.isidentifier())
    if learned != remembered:
        cache.store_learned_names(names_key, learned)
    report.errors.extend(prefilter.read_errors)
    if not candidates:
        report.errors.sort(key=lambda error: error.path)
        reuse.store(report)
        return RunResult(report, git_refusals=discovery.git_refusals)
    order = {source.absolute: position for position, source in enumerate(discovery.files)}
    candidates.sort(key=lambda candidate: order[candidate.file.absolute])
    sources = prefilter.sources

    codemods = default_codemods() if codemods is None else codemods
    # Only candidates get a ModuleFile (and a Path) up front; the index knows
    # every other file by its module name alone.
    module_files = {c.file.absolute: _module_file(c.file) for c in candidates}
    summaries: list[ModuleSummary] = []
    hints: list[SiteHints | None] = []
    parsed: list[SourceText] = []
    names = hint_names(known, config)
    eager, lazy = _split_lazy(candidates, module_files, names, config, cache)
    selected = [codemod for codemod in codemods if rule_selected(codemod.rule, config)]

    def prune_names() -> frozenset[str]:
        return pruning_names(names.known, config, selected)

    # The summary phase prunes too while it holds each file's ``ast`` tree
    # (the analysis reuses it).
    prepared: dict[str, PrunedText] = {}
    summarised, all_cacheable = _summaries(
        eager, module_files, cache, jobs, names, prune_names, server.server
    )
    reuse.storable = reuse.storable and all_cacheable
    for candidate, summary_or_error in zip(eager, summarised, strict=True):
        if isinstance(summary_or_error, FileError):
            report.errors.append(summary_or_error)
        else:
            summaries.append(summary_or_error[0])
            hints.append(summary_or_error[1])
            parsed.append(candidate)
            if summary_or_error[2] is not None:
                prepared[candidate.file.absolute] = summary_or_error[2]
    for candidate, lazy_hints in lazy:
        parsed.append(candidate)
        hints.append(lazy_hints)
    read_data = {source.file.absolute: source.data for source in sources}
    others: dict[str, tuple[SourceFile, bytes | None]] = {}
    other_modules: list[str] = []
    for source_file in discovery.files:
        if source_file.absolute not in module_files:
            other_modules.append(source_file.module)
            # None: the pre-filter kept no bytes (no name matched); read if star-imported.
            data = read_data.get(source_file.absolute)
            if data is not None or source_file.git_listed:
                for name in (source_file.module, *source_file.module_aliases):
                    others.setdefault(name, (source_file, data))
    every_alias = {source.module: source.module_aliases for source in discovery.files}
    # Most modules have none; an absent entry means the same (``.get(module, ())``).
    aliases = {
        module: module_aliases for module, module_aliases in every_alias.items() if module_aliases
    }
    lazy_sources = [(module_files[c.file.absolute], c.data) for c, _ in lazy]
    index = build_index(
        summaries,
        list(module_files.values()),
        aliases,
        _non_candidate_star_imports(summaries, _OtherModuleFiles(others), lazy_sources),
        known,
        config,
        lazy_files=[module_file for module_file, _ in lazy_sources],
        loader=_LazyLoader(lazy_sources, cache),
        other_modules=other_modules,
    )
    if fix:
        index.external_uses = _external_uses(
            candidates, parsed, summaries, module_files, known, index, prefilter
        )
    # Only files that can hold a site are parsed with LibCST (see site_hints).
    from ctxmigrate.codemods.rules.non_defining_import import RULE as IMPORT_RULE

    import_rule = rule_selected(IMPORT_RULE, config)
    analysed = [
        candidate
        for candidate, candidate_hints in zip(parsed, hints, strict=True)
        if needs_analysis(
            candidate_hints, module_files[candidate.file.absolute].module, index, import_rule
        )
    ]
    lazy_data = {module_file.module: data for module_file, data in lazy_sources}
    outcomes = _analyze_all(
        analysed,
        config,
        index,
        selected,
        fix,
        accept,
        jobs,
        progress,
        cache,
        lazy_data,
        prepared,
        server.server,
    )

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
        # Lazy files (after the summarised ones in ``parsed``) define no census class.
        displays = {
            summary.module: module_files[c.file.absolute].display
            for summary, c in zip(summaries, parsed[: len(summaries)], strict=True)
        }
        report.findings.extend(census_findings(summaries, displays))
    report.findings.sort(key=Finding.sort_key)
    report.errors.sort(key=lambda error: error.path)
    fixes.sort(key=lambda result: result.path)
    reuse.store(report)
    return RunResult(report, fixes, git_refusals=discovery.git_refusals)


class _Preload:
    """The analysis server (``analysis_server.py``), started before discovery
    when nothing is cached (or an analysis is ``likely``), processes are
    forked and more than one core is there to use."""

    def __init__(self, fix: bool, jobs: int | None, enabled: bool) -> None:
        self._fix = fix
        self._jobs = jobs
        self._enabled = enabled
        self.server: AnalysisServer | None = None

    def start(self, likely: bool = False) -> None:
        if not (self._enabled or likely) or _cores(self._jobs) < 2:
            return
        import multiprocessing

        if multiprocessing.get_start_method() != "fork" or multiprocessing.current_process().daemon:
            return  # a daemonic process may start none (a task queue's worker, say)
        from ctxmigrate.codemods.analysis_server import AnalysisServer

        self.server = AnalysisServer(self._fix)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


# How long a run waits for git's answer (``tree_state``) before discovering
# the files anyway: git status answers within this on a tree of 25,000 files
# whose index is fresh; in a fresh clone, where git first reads the files
# whose index entries it cannot trust (0.45 s there), discovery goes on and
# the answer is asked for again before any file is read.
REUSE_PATIENCE_SECONDS = 0.1


def _reused_or_discovered(
    paths: Sequence[Path],
    config: Config,
    reuse: _LastReport,
    greps: Sequence[GitGrep],
    before_discovery: Callable[[], None],
) -> tuple[AuditReport | None, Discovery | None]:
    """The last report when git says it still holds, else the discovery.

    git is asked before discovery if it answers within
    ``REUSE_PATIENCE_SECONDS``, else after it, before any file is read. The
    searches and git processes are stopped when their answers are not needed.
    """
    discovery: Discovery | None = None
    try:
        reused = reuse.report(patience=REUSE_PATIENCE_SECONDS)
        if reused is None:
            before_discovery()
            discovery = discover(paths, config)
            reused = reuse.report(patience=None)
    except BaseException:
        _stop(greps, reuse)
        raise
    if reused is not None:
        _stop(greps, reuse)
    return reused, discovery


def _stop(greps: Sequence[GitGrep], reuse: _LastReport) -> None:
    for grep in greps:
        grep.cancel()
    reuse.cancel()


class _LastReport:
    """The last report of this run's tree, while git says nothing it reads has
    changed (``tree_state``); and storing this run's report for the next one.

    The key is known before any file is read, so a report stored under it is
    never older than the tree it describes. Given no paths, it does nothing.
    """

    def __init__(
        self, paths: Sequence[Path], config: Config, cache: AnalysisCache, site_names: HintNames
    ) -> None:
        """``site_names``: what a changed file must name to make its analysis
        likely (``changed_files_may_name_a_site``)."""
        self._tree = TreeState(paths)
        self._site_names = site_names
        self._paths = paths
        self._config = config
        self._cache = cache
        self._key: str | None = None
        self._asked = False
        self.storable = False

    def report(self, patience: float | None) -> AuditReport | None:
        """The stored report for the tree's key, or None; None as well when git
        has not answered within ``patience`` seconds (None: however long)."""
        if self._asked:
            return None
        if patience is not None and not (
            self._cache.has_run_reports() and self._tree.ready(patience)
        ):
            return None  # nothing to reuse yet (the first run), or git is slow: ask later
        self._asked = True
        parts = self._tree.key(partial(may_name_a_site, names=self._site_names))
        if parts is None:
            return None
        # Besides git's answer (and what every key holds: ``cache.digest``):
        # the configuration, the paths and the current directory (report
        # paths are relative to it).
        self._key = digest(
            "run",
            repr(self._config),
            os.getcwd(),
            *(os.path.abspath(path) for path in self._paths),
            "\0",
            *parts,
        )
        self.storable = True
        return self._cache.run_report(self._key)

    def changed_files_may_name_a_site(self) -> bool:
        """Whether a file git says differs from the commit may hold a site (its
        text names a legacy function, an alias of one or a factory method),
        unless the last run's status named it as it is now: that run analysed
        it (a rewrite not committed yet), so its findings are cached. False
        until ``report`` has asked git."""
        named = [entry.hex() for entry, may_hold_a_site in self._tree.changed if may_hold_a_site]
        return bool(named) and not set(named) <= self._changes_seen

    @cached_property
    def _changes_key(self) -> str:
        return digest("changes seen")  # one entry: the last run's status

    @cached_property
    def _changes_seen(self) -> frozenset[str]:
        return self._cache.changes_seen(self._changes_key)

    def store(self, report: AuditReport) -> None:
        if self._key is not None and self._tree.changed:
            # For the next run's guess (above).
            entries = sorted(entry.hex() for entry, _ in self._tree.changed)
            if entries != sorted(self._changes_seen):
                self._cache.store_changes_seen(self._changes_key, entries)
        if self.storable and self._key is not None:
            self._cache.store_run_report(self._key, report)

    def cancel(self) -> None:
        self._tree.cancel()


def _known_rules(codemods: Sequence[Codemod] | None) -> tuple[Rule, ...]:
    """The registered rules, and the rules of codemods given to a run."""
    from ctxmigrate.codemods.rules import REGISTERED_RULES

    given = tuple(codemod.rule for codemod in codemods or ())
    return tuple(dict.fromkeys((*REGISTERED_RULES, *given)))


def _external_uses(
    candidates: Sequence[SourceText],
    parsed: Sequence[SourceText],
    summaries: Sequence[ModuleSummary],
    module_files: Mapping[str, ModuleFile],
    known: frozenset[str],
    index: ProjectIndex,
    prefilter: TextPrefilter,
) -> dict[str, dict[str, str]]:
    """What apply keeps imports for (``external_uses.py``), read from every
    candidate that parsed (``parsed``: the summarised ones first, then the
    lazy ones), taken in the order of the files. A lazy candidate is
    summarised only when its bindings may add something (``needs_bindings``).

    A module may also import from a summarised one a name through which that
    one calls a legacy function (``from app.handler import deps``, where the
    handler calls ``deps.create_user_execution_context``) without naming any
    legacy name itself: no candidate. The files that spell such a name
    (``git grep`` in a checkout, through the pre-filter) are read for their
    import statements too.
    """
    from ctxmigrate.codemods.external_uses import (
        Heads,
        ImporterTexts,
        external_uses,
        imports_anywhere,
        needs_bindings,
        primary_module,
    )

    summary_of = dict(zip((c.file.absolute for c in parsed), summaries, strict=False))
    texts = ImporterTexts.read(((c.data, module_files[c.file.absolute]) for c in parsed), known)
    primary = partial(primary_module, index.summaries)
    heads = Heads.of(summaries, texts)
    importers: dict[str, ModuleSummary | None] = {}
    for candidate in candidates:
        module_file = module_files[candidate.file.absolute]
        if candidate.file.absolute in summary_of:
            summary: ModuleSummary | None = summary_of[candidate.file.absolute]
        elif module_file.module not in texts.mentions:
            continue  # it did not parse: its error is reported, it reaches nothing
        elif needs_bindings(candidate.data, module_file, heads, primary):
            summary = index.summary(module_file.module)
        else:
            summary = None
        importers.setdefault(module_file.module, summary)
    through = heads.bound_by_import(summaries, known)
    if through:
        chosen = {candidate.file.absolute for candidate in candidates}
        prefilter.sources_mentioning(set(through))  # read now, in a checkout
        needles = [name.encode() for name in sorted(through)]
        for source in prefilter.sources:
            if source.file.absolute in chosen or not any(n in source.data for n in needles):
                continue
            module_file = _module_file(source.file)
            found = imports_anywhere(source.data, module_file, through)
            if found and module_file.module not in importers:  # a candidate's name: its own
                importers[module_file.module] = None
                texts.imports[module_file.module] = found
    return external_uses(index.summaries, importers.items(), texts)


def _split_lazy(
    candidates: Sequence[SourceText],
    module_files: Mapping[str, ModuleFile],
    names: HintNames,
    config: Config,
    cache: AnalysisCache,
) -> tuple[list[SourceText], list[tuple[SourceText, SiteHints]]]:
    """(candidates summarised now, candidates summarised when asked about, with their hints).

    On a tree half-way through a migration most candidates only name the
    context types (imports, annotations, ``isinstance``): parsing each costs
    far more than everything else the audit does with them. A candidate is
    lazy when its text shows it can hold no site but an import
    (``site_hints.text_hints``), defines no legacy target or census class
    (no ``def``/``class`` of such a name in it) and is not the module of a
    configured target (which may bind it by assignment). A lazy file that is
    never imported from is never parsed: a syntax error in it goes unreported,
    as it cannot change a finding.

    Deciding costs several full-text searches per file (0.5 s for 5,000
    files); the decisions are cached, in one entry for the run, by a digest of
    each file's bytes and module (0.05 s for the same files).
    """
    definitions, configured_modules = _definition_markers(config)
    entry_key = digest("text hints", names.key(), repr(definitions))
    remembered = cache.text_hints(entry_key)
    decisions: dict[str, Any] = {}
    eager: list[SourceText] = []
    lazy: list[tuple[SourceText, SiteHints]] = []
    for candidate in candidates:
        module_file = module_files[candidate.file.absolute]
        hints = None
        if not configured_modules.intersection(
            (module_file.module, *candidate.file.module_aliases)
        ):
            key = (
                digest(module_file.module, str(module_file.is_package), candidate.content_digest)
                if cache.enabled
                else ""
            )
            hints = _text_hints_of(candidate.data, module_file, names, definitions, remembered, key)
            decisions[key] = None if hints is None else hints.to_json()
        if hints is None:
            eager.append(candidate)
        else:
            lazy.append((candidate, hints))
    if decisions != remembered:
        cache.store_text_hints(entry_key, decisions)
    return eager, lazy


def _text_hints_of(
    data: bytes,
    module_file: ModuleFile,
    names: HintNames,
    definitions: Sequence[bytes],
    remembered: Mapping[str, Any],
    key: str,
) -> SiteHints | None:
    """A candidate's hints from its text (None: summarise it now), cached under ``key``."""
    if key in remembered:
        cached = remembered[key]
        if cached is None:
            return None
        try:
            return SiteHints.from_json(cached)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            pass  # a corrupt entry is a miss
    if _defines(data, definitions):
        return None
    return text_hints(data, module_file.module, module_file.is_package, names)


class _AliasMemo:
    """``learned_aliases`` of each file the pre-filter searches, cached in one
    entry for the run by the file's content digest and the names asked about.

    On a tree where thousands of files name a context type, searching each
    for every known name cost 0.17 s of a warm run (0.05 s to hash them, and
    ``_split_lazy`` reuses those digests).
    """

    def __init__(self, cache: AnalysisCache) -> None:
        self._cache = cache
        self._key = digest("aliases by file")
        self._remembered = cache.file_aliases(self._key) if cache.enabled else {}
        self._used: dict[str, list[str]] = {}
        # A short digest of each set of names asked about, made once per set:
        # the same few sets come with each of thousands of files.
        self._names_digests: dict[frozenset[str], str] = {}

    def __call__(self, source: SourceText, names: frozenset[str]) -> set[str]:
        if not self._cache.enabled:
            return learned_aliases(source.data, names)
        names_digest = self._names_digests.get(names)
        if names_digest is None:
            names_digest = self._names_digests[names] = digest(*sorted(names))[:16]
        key = f"{source.content_digest} {names_digest}"
        found = self._remembered.get(key)
        if not isinstance(found, list) or not all(isinstance(name, str) for name in found):
            found = sorted(learned_aliases(source.data, names))  # a miss, or a corrupt entry
        self._used[key] = found
        return set(found)

    def store(self) -> None:
        if self._cache.enabled and self._used != self._remembered:
            self._cache.store_file_aliases(self._key, self._used)


_DEFINING_KEYWORD = re.compile(rb"\b(?:def|class)(?:\s|\\)+\Z")


def _defines(data: bytes, names: Sequence[bytes]) -> bool:
    """Whether ``def name``/``class name`` may occur in ``data`` for one of ``names``.

    Looks at each occurrence of a name (a few per file) rather than scanning
    the whole text with a pattern that starts with ``\b`` (no fast search).
    """
    for name in names:
        start = data.find(name)
        while start >= 0:
            end = start + len(name)
            if (end == len(data) or not (data[end : end + 1].isalnum() or data[end] == 95)) and (
                _DEFINING_KEYWORD.search(data, max(0, start - 64), start) is not None
            ):
                return True
            start = data.find(name, end)
    return False


def _definition_markers(config: Config) -> tuple[tuple[bytes, ...], frozenset[str]]:
    """(legacy and census names a ``def``/``class`` may define, the configured targets' modules)."""
    from ctxmigrate.codemods.rules import legacy_targets

    names = set(CENSUS_CLASS_NAMES)
    modules: set[str] = set()
    for target in legacy_targets():
        names.add(target.default_name)
        for qualname in config.legacy_names(target):
            module, _, name = qualname.rpartition(".")
            modules.add(module)
            names.add(name)
    return tuple(name.encode() for name in sorted(names)), frozenset(modules)


class _LazyLoader:
    """Summarises a lazy candidate from the bytes already read, through the cache."""

    def __init__(self, sources: Sequence[tuple[ModuleFile, bytes]], cache: AnalysisCache) -> None:
        self._data = {module_file.module: data for module_file, data in sources}
        self._cache = cache

    def __call__(self, module_file: ModuleFile) -> ModuleSummary | None:
        from ctxmigrate.codemods.analysis.summaries import SUMMARY_VERSION, ModuleSummary

        data = self._data[module_file.module]
        key = digest(
            "lazy summary",
            str(SUMMARY_VERSION),
            module_file.module,
            str(module_file.is_package),
            data,
        )
        cached = self._cache.summary(key)
        if cached is not None and "summary" in cached:
            try:
                return ModuleSummary.from_json(cached["summary"])
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                pass  # a corrupt entry is a miss
        elif cached is not None:
            return None
        result, cacheable = _summarize_job((data, module_file, None, None))
        if isinstance(result, FileError):
            if cacheable:
                self._cache.store_summary(key, {"error": result.message})
            return None
        self._cache.store_summary(key, {"summary": result[0].to_json(), "hints": None})
        return result[0]


def _summaries(
    candidates: Sequence[SourceText],
    module_files: Mapping[str, ModuleFile],
    cache: AnalysisCache,
    jobs: int | None,
    names: HintNames,
    prune_names: Callable[[], frozenset[str]] | None,
    server: AnalysisServer | None = None,
) -> tuple[list[tuple[ModuleSummary, SiteHints | None, PrunedText | None] | FileError], bool]:
    """The module summary (or the error) of each candidate, from the cache or computed,
    with its site hints and, when computed with ``prune_names`` (asked for only
    then: naming what rewrites import loads LibCST), its pruned text; and
    whether every outcome may be cached (not so for an internal error).

    Computed in worker processes when there are enough of them, like the analysis.
    """
    from ctxmigrate.codemods.analysis.summaries import SUMMARY_VERSION, ModuleSummary

    results: dict[int, tuple[ModuleSummary, SiteHints | None, PrunedText | None] | FileError] = {}
    keys: dict[int, str] = {}
    missing: list[int] = []
    for position, candidate in enumerate(candidates):
        module_file = module_files[candidate.file.absolute]
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
                    None,  # not cached: the analysis prunes it if it must
                )
            else:
                missing.append(position)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            missing.append(position)  # a corrupt entry is a miss
    pruned_with = None if prune_names is None or not missing else prune_names()
    jobs_input = [
        (candidates[p].data, module_files[candidates[p].file.absolute], names, pruned_with)
        for p in missing
    ]
    workers = _worker_count(len(missing), jobs)
    if workers == 2 and server is not None:
        computed = server.share(_summarize_job, jobs_input)
    elif workers > 1:
        from concurrent.futures import ProcessPoolExecutor

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
            summary, hints, _ = result
            cache.store_summary(
                keys[position],
                {"summary": summary.to_json(), "hints": None if hints is None else hints.to_json()},
            )
    all_cacheable = all(cacheable for _, cacheable in computed)
    return [results[position] for position in range(len(candidates))], all_cacheable


def _summarize_job(
    item: tuple[bytes, ModuleFile, HintNames | None, frozenset[str] | None],
) -> tuple[tuple[ModuleSummary, SiteHints | None, PrunedText | None] | FileError, bool]:
    """(summary, hints and pruned text, or the error; whether the outcome may be cached)."""
    data, module_file, names, prune_names = item
    try:
        with deep_recursion():
            return summarize_source(data, module_file, names, prune_names), True
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
    lazy_data: Mapping[str, bytes],
    prepared: Mapping[str, PrunedText],
    server: AnalysisServer | None = None,
) -> list[_Outcome]:
    """Each file's outcome, from the cache or analysed (from its ``prepared``
    pruned text, by absolute path, when the summary phase made one).

    A cached outcome also records the lazy modules its analysis consulted,
    with a digest of each one's bytes: it is reused only while they match
    (the index digest in its key covers everything else).
    """
    total = len(parsed)
    lazy_digests: dict[str, str] = {}

    def lazy_digest(module: str) -> str | None:
        data = lazy_data.get(module)
        if data is None:
            return None
        if module not in lazy_digests:
            lazy_digests[module] = digest(data)
        return lazy_digests[module]

    outcomes: dict[int, _Outcome] = {}
    keys: dict[int, str] = {}
    pending: list[int] = []
    if cache.enabled:  # the index digest alone costs 4 ms on the benchmark tree
        shared = digest(
            config.fingerprint(),
            index_digest(index),
            ",".join(sorted(codemod.rule.id for codemod in codemods)),
            repr((sorted(config.select), sorted(config.ignore))),
        )
        for position, candidate in enumerate(parsed):
            module_file = index.files[str(candidate.file.path)]
            keys[position] = digest(shared, repr(module_file), candidate.data)
            cached = cache.outcome(keys[position])
            if cached is not None and all(
                lazy_digest(module) == expected for module, expected in cached[2].items()
            ):
                outcomes[position] = _Outcome(module_file.display, cached[0], cached[1])
            else:
                pending.append(position)
    else:
        pending = list(range(total))
    done = len(outcomes)
    if progress is not None:
        progress(done, total)
    workers = _worker_count(len(pending), jobs)
    items = [
        (str(parsed[p].file.path), parsed[p].data, prepared.get(parsed[p].file.absolute))
        for p in pending
    ]
    state = (config, index, codemods, fix, accept)

    def analysed() -> Iterator[tuple[int, _Outcome]]:
        """(position, outcome) of each pending file, as each is done."""
        if server is not None and pending:
            for number, outcome in server.analyze(state, items, workers):
                yield pending[number], outcome
        elif workers > 1:
            # Imported only here (11-14 ms): a warm run has nothing to analyse.
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(
                max_workers=workers, initializer=set_worker_state, initargs=(state,)
            ) as pool:
                chunk = _chunk_size(items, workers)
                results = pool.map(_analyze_in_worker, items, chunksize=chunk)
                yield from zip(pending, results, strict=True)
        else:
            for position, (path, data, prepared_text) in zip(pending, items, strict=True):
                yield position, _analyze_file(Path(path), data, *state, prepared_text)

    for position, outcome in analysed():
        outcomes[position] = outcome
        done += 1
        if progress is not None:
            progress(done, total)
    for position in pending if cache.enabled else ():
        outcome = outcomes[position]
        consulted = {module: lazy_digest(module) for module in sorted(outcome.consulted)}
        cache.store_outcome(
            keys[position],
            outcome.findings,
            outcome.error,
            {module: value for module, value in consulted.items() if value is not None},
        )
    return [outcomes[position] for position in range(total)]


def _cores(jobs: int | None) -> int:
    """The processes a run may use: ``jobs``, else one per core."""
    return jobs if jobs is not None else (os.cpu_count() or 1)


def _worker_count(pending: int, jobs: int | None) -> int:
    if pending < 2 * min(POOL_MIN_FILES_PER_WORKER_FORK, POOL_MIN_FILES_PER_WORKER_SPAWN):
        return 1  # too few for two workers whatever the start method (and no import)
    import multiprocessing

    available = _cores(jobs)
    if available <= 1:
        return 1
    per_worker = (
        POOL_MIN_FILES_PER_WORKER_FORK
        if multiprocessing.get_start_method() == "fork"
        else POOL_MIN_FILES_PER_WORKER_SPAWN
    )
    return max(1, min(available, pending // per_worker))
