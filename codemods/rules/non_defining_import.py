"""CTX103 import-from-non-defining-module: a legacy name imported from the wrong module.

``from X import name`` where X neither defines nor re-exports the legacy name:
the import works by accident (X imports it) or fails at run time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ctxmigrate.codemods.audit_sites import AuditSite
from ctxmigrate.codemods.rules.base import Example, RuleDefinition

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.project_index import ProjectIndex
    from ctxmigrate.codemods.analysis.references import ReferenceFinder
    from ctxmigrate.codemods.analysis.summaries import ModuleSummary

_DEPS = {
    "app/__init__.py": "",
    "app/deps.py": "def create_user_execution_context(user_id, thread_id):\n    pass\n",
    "app/views.py": "from app.deps import create_user_execution_context\n",
}
VALID = (
    Example(
        {**_DEPS, "app/handler.py": "from app.deps import create_user_execution_context\n"},
        "app/handler.py",
        None,
    ),
)
INVALID = (
    Example(
        {**_DEPS, "app/handler.py": "from app.views import create_user_execution_context\n"},
        "app/handler.py",
        "review",
    ),
)


def find_sites(finder: ReferenceFinder) -> Iterator[AuditSite]:
    import libcst as cst

    from ctxmigrate.codemods.analysis.scopes import cst_dotted
    from ctxmigrate.codemods.analysis.summaries import absolute_module

    index = finder.index
    for node, scope in finder.imports_from:
        module = None if node.module is None else cst_dotted(node.module)
        source = absolute_module(finder.module_name, finder.is_package, len(node.relative), module)
        if source is None or source not in index.modules or isinstance(node.names, cst.ImportStar):
            continue
        summary = index.summary(source)
        for alias in node.names:
            if not isinstance(alias.name, cst.Name) or alias.name.value not in finder.known:
                continue
            name = alias.name.value
            message = non_defining_import_message(index, summary, source, name)
            if message is None:
                continue
            symbol, text = message
            yield AuditSite(RULE, alias.name, symbol, scope.report_function, text)


def non_defining_import_message(
    index: ProjectIndex, index_summary: ModuleSummary | None, source: str, name: str
) -> tuple[str, str] | None:
    """(symbol, message) when importing ``name`` from ``source`` is a CTX103 site."""
    from ctxmigrate.codemods.sites import Target

    target = next((s for s in index.export(source, name) if isinstance(s, Target)), None)
    if target is None:
        if name not in index.legacy_names or f"{source}.{name}" in index.modules:
            return None
        if index_summary is not None and name in index_summary.bindings:
            return None
        return (
            f"{source}.{name}",
            f"{source} neither defines nor imports {name}: the import fails at run time "
            "unless something provides the name dynamically",
        )
    if index_summary is None or index.target(f"{source}.{name}") == target:
        return None  # defined there, or passed on by a star import of a skipped file
    if index_summary.is_package or (
        index_summary.all_names is not None and name in index_summary.all_names
    ):
        return None  # a deliberate re-export
    origins = sorted(
        {b.module for b in index_summary.bindings.get(name, ()) if b.module is not None}
    )
    via = f" (it imports it from {', '.join(origins)})" if origins else ""
    defining = target.qualname.rpartition(".")[0]
    return (
        target.qualname,
        f"imports {name} from {source}, which does not define or re-export it{via}; "
        f"import it from {defining}, where {target.qualname.rpartition('.')[2]} is defined",
    )


RULE = RuleDefinition(
    id="CTX103",
    name="import-from-non-defining-module",
    description="A legacy name imported from a module that neither defines nor re-exports it.",
    fixable=False,
    find_sites=find_sites,
    valid=VALID,
    invalid=INVALID,
)
