"""Building the project index from the candidates' summaries (and what it depends on)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ctxmigrate.codemods.analysis.parsing import ModuleFile
from ctxmigrate.codemods.cache import digest
from ctxmigrate.codemods.config import Config

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.analysis.summaries import ModuleSummary


_STAR_HINT = re.compile(rb"import[ \t]*\*")
_STAR_IMPORT = re.compile(rb"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]*\*", re.MULTILINE)


def _non_candidate_star_imports(
    summaries: Sequence[ModuleSummary],
    others: Mapping[str, tuple[ModuleFile, bytes | None]],
    lazy: Sequence[tuple[ModuleFile, bytes]] = (),
) -> dict[str, tuple[str, ...]]:
    """Star imports of the non-candidate modules a candidate star-imports, transitively.

    Only those can pass a legacy name on, so only those are scanned (a regex
    over every file of a large tree would cost as much as the pre-filter).
    The star imports of the ``lazy`` candidates (not summarised yet) are read
    from their text the same way.
    """
    stars: dict[str, tuple[str, ...]] = {}
    pending = [star for summary in summaries for star in summary.star_imports]
    for module_file, data in lazy:
        pending.extend(_star_imports(module_file, data))
    while pending:
        module = pending.pop()
        if module in stars or module not in others:
            continue
        module_file, other_data = others[module]
        if other_data is None:
            try:
                other_data = module_file.abspath.read_bytes()
            except OSError:
                other_data = b""  # gone or unreadable since it was listed: passes nothing on
        found = _star_imports(module_file, other_data)
        stars[module] = tuple(found)
        pending.extend(found)
    return {module: found for module, found in stars.items() if found}


def has_star_import(data: bytes) -> bool:
    """Whether ``data`` may hold ``import *`` (a literal prefix: runs at memory speed)."""
    return _STAR_HINT.search(data) is not None


def _star_imports(module_file: ModuleFile, data: bytes) -> list[str]:
    """The modules ``data`` star-imports (``from X import *`` lines), as absolute names."""
    from ctxmigrate.codemods.analysis.summaries import absolute_module

    found: list[str] = []
    if not has_star_import(data):
        return found
    for match in _STAR_IMPORT.finditer(data):
        level = len(match.group(1))
        name = match.group(2).decode() or None
        absolute = absolute_module(module_file.module, module_file.is_package, level, name)
        if absolute is not None:
            found.append(absolute)
    return found


def build_index(
    summaries: Sequence[ModuleSummary],
    files: Sequence[ModuleFile],
    aliases: Mapping[str, tuple[str, ...]],
    other_star_imports: Mapping[str, tuple[str, ...]],
    known_names: frozenset[str],
    config: Config,
    lazy_files: Sequence[ModuleFile] = (),
    loader: Callable[[ModuleFile], ModuleSummary | None] | None = None,
    other_modules: Iterable[str] = (),
) -> ProjectIndex:
    """The cross-module index (``apply`` adds its ``external_uses``).

    ``lazy_files`` are candidates summarised only when the index is asked
    about them (``loader`` builds the summary); they must not define a legacy
    target, since targets are discovered from ``summaries``.

    ``other_modules``: the module names of the project's other files, which
    the analysis never looks up by path (``files`` must hold every file it
    analyses)."""
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex, discover_targets

    by_name: dict[str, ModuleSummary] = {}
    for summary in summaries:
        by_name.setdefault(summary.module, summary)
    for summary in summaries:
        for alias in aliases.get(summary.module, ()):
            by_name.setdefault(alias, summary)
    modules: set[str] = set()
    named: set[str] = set()  # modules whose aliases are in ``modules``
    rooted: set[str] = set()  # names whose parent packages are in ``modules``
    for module in (*(module_file.module for module_file in files), *other_modules):
        if module in named:
            continue
        named.add(module)
        modules.add(module)
        modules.update(aliases.get(module, ()))
        # Parent packages exist even without an __init__.py (namespace packages).
        name = module
        while name and name not in rooted:
            rooted.add(name)
            name = name.rpartition(".")[0]
            if name:
                modules.add(name)
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
    for module_file in lazy_files:
        for name in (module_file.module, *aliases.get(module_file.module, ())):
            if name not in by_name:
                index.lazy_files.setdefault(name, module_file)
    index.loader = loader
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
            # Which modules are lazy; a change in one of them invalidates only
            # the outcomes that consulted it (engine._analyze_all).
            "lazy": sorted({module_file.module for module_file in index.lazy_files.values()}),
        },
        sort_keys=True,
    )
    return digest(payload)
