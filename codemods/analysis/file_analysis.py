"""One file against the project index: its references, classified by the rules, and its findings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ctxmigrate.codemods.analysis.parsing import ModuleFile, SourceError, parse_module
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.discovery import (
    module_names,
)
from ctxmigrate.codemods.model import Finding
from ctxmigrate.codemods.selection import rule_selected

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.analysis.pruning import PrunedText
    from ctxmigrate.codemods.sites import Codemod, Reference


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
    # ``module`` was parsed from pruned text (``analysis/pruning.py``): its
    # function bodies may be emptied, so it must never be rewritten.
    pruned: bool = False


def analyze_source(
    path: Path,
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod] | None = None,
    *,
    prune: bool = False,
    prepared: PrunedText | None = None,
) -> FileAnalysis:
    """Resolve and classify one file against the project index.

    With ``prune``, LibCST parses the text ``pruning.pruned_source`` makes, in
    which function bodies that cannot change a finding are emptied: same
    findings, a fraction of the work on long files. For the audit only: the
    resulting analysis cannot be fixed (``FileAnalysis.pruned``).
    ``prepared``: the file pruned by the summary phase, used when it was
    pruned with every name this analysis needs.
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
    if codemods is None:
        from ctxmigrate.codemods import CODEMODS

        codemods = CODEMODS
    module, pruned = _parse(source, config, index, codemods, prune, prepared, module_file.display)
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
        return FileAnalysis(
            module_file.display, module_file.abspath, source, module, [], [], pruned=pruned
        )
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

    active = codemods
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
        pruned,
    )


def _parse(
    source: bytes,
    config: Config,
    index: ProjectIndex,
    codemods: Sequence[Codemod],
    prune: bool,
    prepared: PrunedText | None,
    display: str,
) -> tuple[cst.Module, bool]:
    """The LibCST module to analyse, and whether it was parsed from pruned text."""
    rejected: SourceError | None = None
    if prune:
        from ctxmigrate.codemods.analysis.pruning import pruned_source

        names = pruning_names(index.known_names, config, codemods)
        if prepared is not None and names <= prepared.names:
            smaller = prepared.text
        else:
            smaller = pruned_source(source, names)
        if smaller is not None:
            try:
                return parse_module(smaller), True
            except SourceError as error:
                rejected = error
    module = parse_module(source)  # the file's own error, if it has one, is reported
    if rejected is not None:
        # LibCST read the file but not its pruned text: a pruning bug (it keeps
        # what it keeps where it was). The whole file decided; the warning
        # makes the bug loud (the test suite turns warnings into errors).
        import warnings

        warnings.warn(
            f"{display}: ctxmigrate's pruned text of this file does not parse ({rejected}); "
            "the whole file was analysed instead. Please report it.",
            RuntimeWarning,
            stacklevel=2,
        )
    return module, False


def pruning_names(
    known: Iterable[str], config: Config, codemods: Sequence[Codemod]
) -> frozenset[str]:
    """The names pruning keeps code for (``pruning.py``): ``known`` legacy names
    and aliases, the legacy classes' factory methods, what the rewrites import."""
    from ctxmigrate.codemods.analysis.summaries import FACTORY_METHODS

    names = set(known) | FACTORY_METHODS
    for codemod in codemods:
        required = codemod.required_import(config)
        if required is not None:
            names.add(required[1])
    return frozenset(names)


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
    from ctxmigrate.codemods.path_patterns import path_matcher

    try:
        project_path = absolute.relative_to(config.root.resolve()).as_posix()
    except ValueError:
        project_path = absolute.name
    return ModuleFile(
        display_path(absolute),
        absolute,
        module,
        absolute.name == "__init__.py",
        path_matcher(config.test_patterns)(project_path),
    )
