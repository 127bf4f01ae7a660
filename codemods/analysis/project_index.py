"""The project index: what ``module.name`` is, across the scanned modules.

Imports, re-exports under another name, package attributes and star imports
are followed transitively and cycle-safe; names of modules outside the scanned
tree stay symbolic dotted paths, which is how configured targets outside it
match. The legacy targets are discovered here from the rules' declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctxmigrate.codemods.analysis.summaries import Binding, ModuleSummary
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rules import legacy_targets
from ctxmigrate.codemods.sites import Target

# --- the project index --------------------------------------------------------------


@dataclass(frozen=True)
class ModuleSymbol:
    """A module, or a dotted path outside the scanned tree we cannot look into."""

    name: str


# What an expression may refer to: a legacy target, a module/dotted path, or
# None for anything else (a local definition, a computed value, ...).
Symbol = Target | ModuleSymbol | None


@dataclass
class ProjectIndex:
    """Everything cross-module resolution needs; picklable for worker processes."""

    summaries: dict[str, ModuleSummary]  # by every name a module goes by
    modules: frozenset[str]  # every module name in the scanned tree
    # Star imports of in-tree modules the pre-filter ruled out (they bind no
    # legacy name themselves, but may pass one on through ``import *``).
    other_star_imports: dict[str, tuple[str, ...]]
    targets: tuple[Target, ...]
    # Every name the pre-filter searched for: legacy names and their aliases.
    known_names: frozenset[str]
    # Alternative names of each primary module name (root-relative, src layout).
    module_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # analysis.parsing.ModuleFile of every discovered file, by absolute path.
    files: dict[str, Any] = field(default_factory=dict)
    # {module: {name: why another module needs it}} (external_uses.py): apply
    # keeps such a name's import even when this module no longer uses it.
    external_uses: dict[str, dict[str, str]] = field(default_factory=dict)
    # Candidates summarised only when asked about (``summary``), by every name
    # they go by: files that can hold no site and define nothing legacy, which
    # matter only as a source another module imports from (a re-export).
    lazy_files: dict[str, Any] = field(default_factory=dict)
    # How a lazy module is summarised (None: read and parse its file); not pickled.
    loader: Callable[[Any], ModuleSummary | None] | None = field(default=None, repr=False)
    # The lazy modules (primary names) the analysis looked at since this was
    # last reset: a cached outcome stays valid only while they are unchanged.
    consulted: set[str] = field(default_factory=set, repr=False)
    _lazy_summaries: dict[str, ModuleSummary | None] = field(default_factory=dict, repr=False)
    _targets_by_qualname: dict[str, Target] = field(default_factory=dict, repr=False)
    _exports: dict[tuple[str, str], tuple[Symbol, ...]] = field(default_factory=dict, repr=False)
    _in_progress: set[tuple[str, str]] = field(default_factory=set, repr=False)
    # The lazy modules each memoised export depended on, and those of the
    # exports being computed (innermost last): a memo hit must count them too.
    _export_deps: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict, repr=False)
    _dep_frames: list[set[str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for target in self.targets:
            self._targets_by_qualname.setdefault(target.qualname, target)
            module, _, name = target.qualname.rpartition(".")
            for alias in self.module_aliases.get(module, ()):
                self._targets_by_qualname.setdefault(f"{alias}.{name}", target)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_exports"] = {}
        state["_in_progress"] = set()
        state["_export_deps"] = {}
        state["_dep_frames"] = []
        state["consulted"] = set()
        state["loader"] = None
        return state

    @property
    def legacy_names(self) -> frozenset[str]:
        return frozenset(target.qualname.rpartition(".")[2] for target in self.targets)

    def target(self, qualname: str) -> Target | None:
        return self._targets_by_qualname.get(qualname)

    def summary(self, module: str) -> ModuleSummary | None:
        """The summary of ``module``; a lazy one is built on first use (None when
        the module is not a candidate, or its file cannot be parsed)."""
        found = self.summaries.get(module)
        if found is not None or not self.lazy_files:
            return found
        module_file = self.lazy_files.get(module)
        if module_file is None:
            return None
        primary = module_file.module
        self._note((primary,))
        if primary not in self._lazy_summaries:
            load = self.loader if self.loader is not None else summary_from_disk
            self._lazy_summaries[primary] = load(module_file)
        return self._lazy_summaries[primary]

    def _note(self, modules: Iterable[str]) -> None:
        (self._dep_frames[-1] if self._dep_frames else self.consulted).update(modules)

    def export(self, module: str, name: str) -> tuple[Symbol, ...]:
        """What ``module.name`` refers to (several symbols when bound several ways)."""
        key = (module, name)
        cached = self._exports.get(key)
        if cached is not None:
            self._note(self._export_deps.get(key, ()))
            return cached
        if key in self._in_progress:  # an import cycle: it adds nothing new
            return ()
        self._in_progress.add(key)
        self._dep_frames.append(set())
        try:
            result = self._compute_export(module, name)
        finally:
            self._in_progress.discard(key)
            deps = self._dep_frames.pop()
        self._exports[key] = result
        if deps:
            self._export_deps[key] = frozenset(deps)
            self._note(deps)
        return result

    def _compute_export(self, module: str, name: str) -> tuple[Symbol, ...]:
        qualname = f"{module}.{name}"
        summary = self.summary(module)
        if summary is not None:
            bindings = summary.bindings.get(name)
            if bindings:
                symbols: list[Symbol] = []
                for binding in bindings:
                    symbols.extend(self.binding_symbols(summary.module, name, binding))
                return tuple(dict.fromkeys(symbols))
            from_stars = self._star_export(summary.star_imports, name)
            if from_stars:
                return from_stars
            if qualname in self.modules:
                return (ModuleSymbol(qualname),)
            return ()
        if module in self.modules:
            if qualname in self.modules:
                return (ModuleSymbol(qualname),)
            return self._star_export(self.other_star_imports.get(module, ()), name)
        target = self.target(qualname)
        return (target if target is not None else ModuleSymbol(qualname),)

    def _star_export(self, star_modules: Iterable[str], name: str) -> tuple[Symbol, ...]:
        for star_module in star_modules:
            source = self.summary(star_module)
            if source is not None and source.all_names is not None:
                if name not in source.all_names:
                    continue
            elif name.startswith("_"):
                continue
            if star_module not in self.modules:
                # Outside the tree: only a configured target can be known there.
                target = self.target(f"{star_module}.{name}")
                if target is not None:
                    return (target,)
                continue
            symbols = self.export(star_module, name)
            if symbols:
                return symbols
        return ()

    def binding_symbols(self, module: str, name: str, binding: Binding) -> tuple[Symbol, ...]:
        """The symbols of a module-level ``binding`` of ``name`` in ``module``."""
        bound_target = self._target_bound_without_definition(module, name)
        if bound_target is not None:
            return (bound_target,)
        if binding.kind == "import" and binding.module is not None and binding.name is not None:
            return self.export(binding.module, binding.name)
        if binding.kind == "module" and binding.module is not None:
            return (ModuleSymbol(binding.module),)
        if binding.kind == "alias" and binding.name is not None:
            head, *attributes = binding.name.split(".")
            # An alias of something unknown is still a binding to "something else".
            return self.attribute_chain(self.export(module, head), attributes) or (None,)
        if binding.kind in ("def", "class"):
            return (self.target(f"{module}.{name}"),)
        return (None,)

    def _target_bound_without_definition(self, module: str, name: str) -> Target | None:
        """The configured target ``module.name`` when the module binds it without a def.

        ``create_user_execution_context = functools.lru_cache()(_build)``, ``=
        _build`` or an import under that name: the configured qualified name is
        the legacy callable whatever builds it. With a ``def`` or ``class``
        there, other bindings stay doubts (a fallback ``= None``).
        """
        target = self.target(f"{module}.{name}")
        if target is None:
            return None
        summary = self.summary(module)
        bindings = () if summary is None else summary.bindings.get(name, ())
        if any(binding.kind in ("def", "class") for binding in bindings):
            return None
        return target

    def attribute_chain(
        self, symbols: Iterable[Symbol], attributes: Sequence[str]
    ) -> tuple[Symbol, ...]:
        current = tuple(symbols)
        for attribute in attributes:
            following: list[Symbol] = []
            for symbol in current:
                if isinstance(symbol, ModuleSymbol):
                    following.extend(self.export(symbol.name, attribute) or (None,))
                else:
                    following.append(None)
            current = tuple(dict.fromkeys(following))
        return current


def summary_from_disk(module_file: Any) -> ModuleSummary | None:
    """A lazy module's summary read from its file (in worker processes); None
    when it cannot be read or parsed (like a candidate with a syntax error)."""
    from ctxmigrate.codemods.analysis.parsing import SourceError, summarize_source

    try:
        return summarize_source(module_file.abspath.read_bytes(), module_file)[0]
    except (OSError, SourceError, RecursionError):
        return None


def discover_targets(config: Config, summaries: Mapping[str, ModuleSummary]) -> tuple[Target, ...]:
    """The legacy definitions: configured qualified names, else module-level definitions."""
    targets: list[Target] = []
    primary = {summary.module: summary for summary in summaries.values()}
    for spec in legacy_targets():
        configured = config.legacy_names(spec)
        default_name, definition = spec.default_name, spec.definition
        if configured:
            for qualname in configured:
                module, _, name = qualname.rpartition(".")
                summary = summaries.get(module)
                params, is_async = None, False
                if summary is not None:
                    for binding in summary.bindings.get(name, ()):
                        if binding.kind == definition:
                            params, is_async = binding.params, binding.is_async
                targets.append(Target(spec, qualname, params, is_async))
            continue
        for module in sorted(primary):
            for binding in primary[module].bindings.get(default_name, ()):
                if binding.kind == definition:
                    targets.append(
                        Target(spec, f"{module}.{default_name}", binding.params, binding.is_async)
                    )
                    break
    return tuple(targets)
