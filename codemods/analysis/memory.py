"""In-memory projects (tests, goldens, previews): every given file analysed, no pre-filter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ctxmigrate.codemods.analysis.file_analysis import FileAnalysis, analyze_source
from ctxmigrate.codemods.analysis.indexing import build_index
from ctxmigrate.codemods.analysis.parsing import ModuleFile, summarize_source
from ctxmigrate.codemods.config import Config, legacy_short_names
from ctxmigrate.codemods.discovery import (
    SourceFile,
    SourceText,
    module_names,
    select_candidates,
)
from ctxmigrate.codemods.model import Finding
from ctxmigrate.codemods.selection import normalized_selection, rule_selected

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.sites import Codemod


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
    from ctxmigrate.codemods.path_patterns import path_matcher

    root = config.root.absolute()
    keys = {PurePosixPath(key).as_posix() for key in sources}

    def is_package(directory: str) -> bool:
        try:
            relative = Path(directory).relative_to(root).as_posix()
        except ValueError:
            return False
        return relative != "." and f"{relative}/__init__.py" in keys

    in_test = path_matcher(config.test_patterns)
    module_files: dict[str, ModuleFile] = {}
    aliases: dict[str, tuple[str, ...]] = {}
    for key in sources:
        posix = PurePosixPath(key).as_posix()
        absolute = root / posix
        module, module_aliases = module_names(str(absolute), str(root), is_package)
        aliases[module] = module_aliases
        module_files[key] = ModuleFile(
            posix, absolute, module, absolute.name == "__init__.py", in_test(posix)
        )
    texts = [
        SourceText(
            SourceFile(
                str(m.abspath), m.display, m.display, m.module, aliases[m.module], m.in_test
            ),
            sources[key],
        )
        for key, m in module_files.items()
    ]
    _, known = select_candidates(texts, legacy_short_names(config))
    from ctxmigrate.codemods.external_uses import ImporterTexts, external_uses

    summaries = [summarize_source(sources[key], m)[0] for key, m in module_files.items()]
    index = build_index(summaries, list(module_files.values()), aliases, {}, known, config)
    index.external_uses = external_uses(
        index.summaries,
        {summary.module: summary for summary in index.summaries.values()}.items(),
        ImporterTexts.read(((sources[key], m) for key, m in module_files.items()), known),
    )
    return index, module_files
