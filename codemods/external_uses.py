"""Which names of a module other modules still reach, so ``apply`` keeps their imports.

Rewriting the last call in ``pkg/handler.py`` leaves its ``from .deps import
create_user_execution_context`` unused *in that file*, but removing it breaks
every other place that reaches the name through ``pkg.handler``:

- ``from pkg.handler import create_user_execution_context`` (a re-export),
- ``from pkg.handler import *`` (a public name, or one listed in ``__all__``),
- ``mock.patch("pkg.handler.create_user_execution_context")`` in a test, or
  ``pkg.handler.create_user_execution_context`` / ``handler.create_...`` as an
  attribute of the imported module.

Every such place mentions the name as text, so it is a candidate file of the
pre-filter and its summary and text are at hand. The check errs on the side of
keeping an import: an unused import is harmless, a missing one is a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial

from ctxmigrate.codemods.analysis.parsing import ModuleFile
from ctxmigrate.codemods.analysis.summaries import ModuleSummary


def dotted_mentions(source: bytes, names: Iterable[str]) -> frozenset[str]:
    """Dotted paths in ``source`` that end in one of ``names`` (``pkg.mod.name``).

    Read from the text, strings and comments included: a ``mock.patch`` target
    is a string, and a comment that names a path costs at most a kept import.
    """
    names = [name for name in names if name]
    # Every match holds ".name": without one, the regex (with its look-behind
    # tried at every offset) need not run: 0.12 s instead of 1.5 s for the
    # 5,225 candidates of the 25,000-file benchmark tree, 98 paths in all.
    if not any(f".{name}".encode() in source for name in names):
        return frozenset()
    alternatives = "|".join(sorted((re.escape(name) for name in names), key=len, reverse=True))
    pattern = re.compile(rb"(?<![\w.])((?:[A-Za-z_]\w*\.)+)(" + alternatives.encode() + rb")(?!\w)")
    return frozenset(
        (match.group(1) + match.group(2)).decode("ascii", "replace")
        for match in pattern.finditer(source)
    )


def imports_anywhere(
    source: bytes, module_file: ModuleFile, known: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """``site_hints.imports_in_text`` of a file's bytes (none when they cannot be decoded)."""
    from ctxmigrate.codemods.analysis.parsing import decoded_or_none
    from ctxmigrate.codemods.site_hints import imports_in_text

    text = decoded_or_none(source)
    if text is None:
        return ()
    return imports_in_text(text, module_file.module, module_file.is_package, known)


def primary_module(exporters: Mapping[str, ModuleSummary], module: str | None) -> str | None:
    """The primary name of the summarised module ``module`` names (perhaps by an alias)."""
    summary = exporters.get(module) if module is not None else None
    return summary.module if summary is not None else None


@dataclass
class ImporterTexts:
    """What ``external_uses`` reads from the importers' text, by module name:
    their ``dotted_mentions``, their ``imports_anywhere`` and their bytes
    (for ``modules_bound_anywhere``)."""

    mentions: dict[str, frozenset[str]] = field(default_factory=dict)
    imports: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    sources: dict[str, tuple[bytes, ModuleFile]] = field(default_factory=dict)

    @classmethod
    def read(
        cls, files: Iterable[tuple[bytes, ModuleFile]], known: frozenset[str]
    ) -> ImporterTexts:
        texts = cls()
        for data, module_file in files:
            texts.mentions[module_file.module] = dotted_mentions(data, known)
            texts.imports[module_file.module] = imports_anywhere(data, module_file, known)
            texts.sources[module_file.module] = (data, module_file)
        return texts


@dataclass(frozen=True)
class Heads:
    """The heads of each summarised module's own dotted mentions (``deps`` in
    ``deps.create_user_execution_context``): the names it calls a legacy
    function through, which a rewrite may leave unused; and all of them."""

    by_module: Mapping[str, frozenset[str]]
    names: frozenset[str]

    @classmethod
    def of(cls, summaries: Sequence[ModuleSummary], texts: ImporterTexts) -> Heads:
        by_module = {
            summary.module: frozenset(
                mention.split(".", 1)[0] for mention in texts.mentions.get(summary.module, ())
            )
            for summary in summaries
        }
        return cls(by_module, frozenset().union(*by_module.values()))

    def bound_by_import(
        self, summaries: Sequence[ModuleSummary], known: frozenset[str]
    ) -> frozenset[str]:
        """The heads a summarised module binds by an import (``from app import
        deps``, ``import app.deps as deps``), which another module may import
        from it. Known names are left out (every file importing one is a
        candidate), and so is ``import a.b`` binding ``a`` (importing ``a``
        from another module is no one's way)."""
        found: set[str] = set()
        for summary in summaries:
            for head in self.by_module.get(summary.module, frozenset()) - known:
                if any(
                    binding.kind == "import"
                    or (binding.kind == "module" and binding.module != head)
                    for binding in summary.bindings.get(head, ())
                ):
                    found.add(head)
        return frozenset(found)


def needs_bindings(
    data: bytes,
    module_file: ModuleFile,
    heads: Heads,
    primary: Callable[[str | None], str | None],
) -> bool:
    """Whether ``external_uses`` needs the module-level bindings (the summary)
    of a candidate that was not summarised. Its imports of known names
    (``imports_anywhere``), its dotted mentions and their owners
    (``modules_bound_anywhere``) come from its text; the bindings add only

    - a star import: ``from m import *`` reaches every public name of m;
    - ``from m import h`` where m calls a legacy function through h
      (``deps.create_user_execution_context(...)``), so that the rewrite may
      leave m's import of h unused (``heads``).

    On the 25,000-file benchmark tree, none of the 5,000 candidates that only
    name the context types needs its summary.
    """
    from ctxmigrate.codemods.analysis.indexing import has_star_import
    from ctxmigrate.codemods.analysis.parsing import decoded_or_none
    from ctxmigrate.codemods.site_hints import imports_in_text

    if has_star_import(data):
        return True
    if not heads.names:
        return False
    text = decoded_or_none(data)
    if text is None:
        return True
    found = imports_in_text(text, module_file.module, module_file.is_package, heads.names)
    for source, name in found:
        exporter = primary(source)
        if exporter is not None and name in heads.by_module.get(exporter, ()):
            return True
    return False


def modules_bound_anywhere(source: bytes, module_file: ModuleFile) -> dict[str, list[str]]:
    """The dotted paths each name is bound to by an import statement anywhere
    in the file (module level, a function, a class, a branch), in ``ast.walk``
    order: ``import a.b as h`` binds h to a.b, ``from a import b`` binds b to
    a.b (a module when a.b is one). A plain ``import a.b`` binds a to a, which
    adds nothing to the path a mention spells. Empty when ``ast`` cannot read
    the file.
    """
    import ast

    from ctxmigrate.codemods.analysis.parsing import ast_or_none
    from ctxmigrate.codemods.analysis.summaries import absolute_module

    tree = ast_or_none(source)
    if tree is None:
        return {}
    bound: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is not None:
                    bound.setdefault(alias.asname, []).append(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(
                module_file.module, module_file.is_package, node.level, node.module
            )
            for alias in node.names if base is not None else ():
                bound.setdefault(alias.asname or alias.name, []).append(f"{base}.{alias.name}")
    return bound


def external_uses(
    exporters: Mapping[str, ModuleSummary],
    importers: Iterable[tuple[str, ModuleSummary | None]],
    texts: ImporterTexts,
) -> dict[str, dict[str, str]]:
    """``{module: {name: why another module needs it}}`` for every summarised module.

    ``exporters`` maps every name a summarised module goes by to its summary.
    ``importers``: every candidate's module, in the order of the files, with
    its summary; None for a candidate summarised only when asked about whose
    bindings add nothing (``needs_bindings``). ``texts``: their dotted
    mentions and the ``from X import name`` of known names anywhere in them
    (``site_hints.imports_in_text``): a summary has the module-level ones
    only, and an import inside a function breaks when that function runs.
    For the same reason the owner of a dotted mention that is no module's
    name is looked up in the imports anywhere in the importer's source
    (``modules_bound_anywhere``).
    """
    primary = partial(primary_module, exporters)

    uses: dict[str, dict[str, str]] = {}

    def note(module: str | None, name: str, why: str) -> None:
        if module is not None:
            uses.setdefault(module, {}).setdefault(name, why)

    @cache
    def bound_anywhere(module: str) -> dict[str, list[str]]:
        source = texts.sources.get(module)
        return {} if source is None else modules_bound_anywhere(*source)

    modules = {summary.module: summary for summary in exporters.values()}
    for module, importer in importers:
        if importer is not None:
            for bindings in importer.bindings.values():
                for binding in bindings:
                    if binding.kind == "import" and binding.name is not None:
                        exporter = primary(binding.module)
                        if exporter is not None and exporter != module:
                            note(
                                exporter,
                                binding.name,
                                f"{module} imports {binding.name} from {exporter}",
                            )
        for source, name in texts.imports.get(module, ()):
            exporter = primary(source)
            if exporter is not None and exporter != module:
                note(exporter, name, f"{module} imports {name} from {exporter}")
        for starred in importer.star_imports if importer is not None else ():
            exporter = primary(starred)
            if exporter is None or exporter == module:
                continue
            public = modules[exporter].all_names
            for name in modules[exporter].bindings:
                exported = name in public if public is not None else not name.startswith("_")
                if exported:
                    note(exporter, name, f"{module} does `from {exporter} import *`")
        for mention in sorted(texts.mentions.get(module, ())):
            owner, _, name = mention.rpartition(".")
            exporter = _owner_module(owner, primary, partial(bound_anywhere, module))
            if exporter is not None and exporter != module:
                note(exporter, name, f"{module} names {mention}")
    # The module's own ``__all__`` is a string in the module: rewrite/import_edits.py checks those.
    return uses


def _owner_module(
    owner: str,
    primary: Callable[[str | None], str | None],
    bound_anywhere: Callable[[], Mapping[str, list[str]]],
) -> str | None:
    """The summarised module a dotted mention's ``owner`` names: a module's
    own name, or a name an import statement of the importer binds to one (the
    file is read for that only when the owner is no module's name)."""
    found = primary(owner)
    if found is not None:
        return found
    head, _, rest = owner.partition(".")
    for module in bound_anywhere().get(head, ()):
        found = primary(f"{module}.{rest}" if rest else module)
        if found is not None:
            return found
    return None
