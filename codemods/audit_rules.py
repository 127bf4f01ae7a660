"""Audit-only rules: findings a human must look at, which no codemod rewrites.

* CTX101 fresh-ids-per-message: a thread/run id generated (``uuid4()``,
  ``generate_thread_id()``, ...) in the same function right before a legacy
  context is built from it: every message then starts a new conversation.
* CTX102 string-reference: a string that names a legacy function by import
  path (``mock.patch("pkg.handler.create_user_execution_context")``) or by
  text (``"create_user_execution_context(" in source``): a rewrite breaks it.
* CTX103 import-from-non-defining-module: ``from X import name`` where X
  neither defines nor re-exports the legacy name.
* CTX104 duplicate-context-class: every class named ``UserExecutionContext``
  or ``WebSocketContext`` in the tree; several of one name need review.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import libcst as cst

from ctxmigrate.codemods.classify import is_suppressed, suppression_reason
from ctxmigrate.codemods.model import Category, Finding, Rule
from ctxmigrate.codemods.resolve import (
    WEBSOCKET_FACTORY_METHOD,
    ModuleSummary,
    ModuleSymbol,
    RawReference,
    ReferenceFinder,
    absolute_module,
    cst_dotted,
    iter_nodes,
)
from ctxmigrate.codemods.sites import Target

FRESH_IDS = Rule(
    "CTX101",
    "fresh-ids-per-message",
    "A thread/run id generated right before a legacy context is built: "
    "every message starts a new conversation.",
    fixable=False,
)
STRING_REFERENCE = Rule(
    "CTX102",
    "string-reference",
    "A string naming a legacy function (mock.patch target, source-text check) "
    "that a rewrite would break.",
    fixable=False,
)
NON_DEFINING_IMPORT = Rule(
    "CTX103",
    "import-from-non-defining-module",
    "A legacy name imported from a module that neither defines nor re-exports it.",
    fixable=False,
)
DUPLICATE_CONTEXT_CLASS = Rule(
    "CTX104",
    "duplicate-context-class",
    "Census of classes named UserExecutionContext / WebSocketContext; "
    "several of one name need review.",
    fixable=False,
)
AUDIT_RULES: tuple[Rule, ...] = (
    FRESH_IDS,
    STRING_REFERENCE,
    NON_DEFINING_IMPORT,
    DUPLICATE_CONTEXT_CLASS,
)

# Callees that mint a new identifier on every call.
FRESH_ID_CALLEE = re.compile(
    r"^(?:uuid[1-8]|token_hex|token_urlsafe|token_bytes|urandom|getrandbits|ulid|new_ulid"
    r"|nanoid|(?:generate|gen|new|make|create|random)_\w*(?:id|uuid))$"
)
# The ids whose freshness matters: the conversation and the run.
_ID_PARAMETERS = ("thread_id", "run_id")
_DEFAULT_SIGNATURES = {
    "factory": ("user_id", "thread_id", "run_id", "db_session", "websocket_connection_id"),
    "websocket_context": ("websocket", "user_id", "thread_id", "run_id", "connection_id"),
}
_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
RELATED_LINE = "{related_line}"


@dataclass(frozen=True)
class AuditSite:
    """An audit-only finding before positions are known."""

    rule: Rule
    node: cst.CSTNode
    symbol: str
    function: str | None
    # May contain ``{related_line}``: the line of ``related`` once known.
    message: str
    related: cst.CSTNode | None = None
    # Test code reaches ``keep`` (fresh ids in tests are the point of a test);
    # False for rules whose breakage is in the tests themselves (CTX102).
    keep_in_tests: bool = True


def audit_sites(finder: ReferenceFinder) -> list[AuditSite]:
    """CTX101-CTX103 sites of one module, from the resolving pass's notes."""
    sites: list[AuditSite] = []
    sites.extend(_fresh_id_sites(finder))
    sites.extend(_string_sites(finder))
    sites.extend(_import_sites(finder))
    return sites


def _fresh_id_generator(node: cst.CSTNode) -> str | None:
    """The spelled callee of a fresh-id call inside ``node``, if any."""
    for child in iter_nodes(node):
        if isinstance(child, cst.Call):
            dotted = cst_dotted(child.func)
            if dotted is not None and FRESH_ID_CALLEE.match(dotted.rpartition(".")[2]):
                return dotted
    return None


def _signature(target: Target) -> tuple[str, ...]:
    if target.params is not None:
        params = target.params
        if params and params[0] in ("self", "cls"):
            params = params[1:]
        return params
    return _DEFAULT_SIGNATURES.get(target.kind, ())


def _passed_ids(ref: RawReference) -> Iterator[tuple[str, cst.BaseExpression]]:
    """(parameter, value) of the thread/run ids a legacy call passes."""
    if ref.call is None:
        return
    signature = _signature(ref.target)
    for position, arg in enumerate(ref.call.args):
        if arg.star:
            return
        if arg.keyword is not None:
            parameter = arg.keyword.value
        elif position < len(signature):
            parameter = signature[position]
        else:
            continue
        if parameter in _ID_PARAMETERS:
            yield parameter, arg.value


def _fresh_id_message(parameter: str, generator: str, callee: str) -> str:
    consequence = (
        "every message starts a new conversation and loses the previous state"
        if parameter == "thread_id"
        else "every message gets a new run and a new context instead of the session's"
    )
    return (
        f"fresh {parameter} generated per message ({generator}()) right before "
        f"{callee}(...) at line {RELATED_LINE}: {consequence}; take the {parameter} "
        "from the message or the session"
    )


def _fresh_id_sites(finder: ReferenceFinder) -> Iterator[AuditSite]:
    reported: set[int] = set()
    for ref in finder.references:
        if ref.usage != "call" or ref.target.kind not in _DEFAULT_SIGNATURES:
            continue
        callee = cst_dotted(ref.callee) if ref.callee is not None else None
        callee = callee or ref.target.qualname.rpartition(".")[2]
        for parameter, value in _passed_ids(ref):
            generated_at: cst.CSTNode | None = None
            generator = _fresh_id_generator(value)
            if generator is not None:
                generated_at = value
            elif isinstance(value, cst.Name):
                assigned = [
                    (order, assigned_value)
                    for scope, name, assigned_value, order in finder.assignments
                    if scope is ref.scope and name == value.value and order < ref.order
                ]
                if assigned:
                    _, latest = max(assigned, key=lambda item: item[0])
                    generator = _fresh_id_generator(latest)
                    if generator is not None:
                        generated_at = latest
            if generated_at is None or generator is None or id(generated_at) in reported:
                continue
            reported.add(id(generated_at))
            yield AuditSite(
                FRESH_IDS,
                generated_at,
                ref.target.qualname,
                ref.scope.report_function,
                _fresh_id_message(parameter, generator, callee),
                related=ref.node,
            )


def _string_sites(finder: ReferenceFinder) -> Iterator[AuditSite]:
    index = finder.index
    # A string naming the WebSocketContext class breaks with no rewrite: the class
    # stays. Only the functions' names (whose calls go away) are checked by text.
    legacy_functions = {
        target.qualname.rpartition(".")[2]
        for target in index.targets
        if target.kind != "websocket_context"
    }
    for node, scope in finder.strings:
        value = node.evaluated_value
        if not isinstance(value, str):
            continue
        last = value.rpartition(".")[2]
        if _DOTTED_PATH.fullmatch(value) and (
            last in finder.known or last == WEBSOCKET_FACTORY_METHOD
        ):
            head, *rest = value.split(".")
            # "pkg.ws.WebSocketContext.create_for_user": the class, then its factory.
            factory_method = last == WEBSOCKET_FACTORY_METHOD
            symbols = index.attribute_chain(
                (ModuleSymbol(head),), rest[:-1] if factory_method else rest
            )
            target = next((s for s in symbols if isinstance(s, Target)), None)
            if target is not None and (not factory_method or target.kind == "websocket_context"):
                yield AuditSite(
                    STRING_REFERENCE,
                    node,
                    target.qualname,
                    scope.report_function,
                    f"string reference to {value} (a mock.patch/monkeypatch target or an "
                    "import path): once the call sites are rewritten it no longer "
                    "intercepts anything; update it with the migration",
                    keep_in_tests=False,
                )
                continue
        for name in sorted(legacy_functions):
            if value == name or re.search(rf"\b{re.escape(name)}\s*\(", value):
                target = next(t for t in index.targets if t.qualname.endswith("." + name))
                what = f"'{name}('" if value != name else f"'{name}'"
                yield AuditSite(
                    STRING_REFERENCE,
                    node,
                    target.qualname,
                    scope.report_function,
                    f"the string names the legacy function by text ({what}): a source-text "
                    "check, patch.object or hasattr-style lookup that a rewrite would break",
                    keep_in_tests=False,
                )
                break


def _import_sites(finder: ReferenceFinder) -> Iterator[AuditSite]:
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
            message = _non_defining_import_message(
                index_summary=summary, source=source, name=name, finder=finder
            )
            if message is None:
                continue
            symbol, text = message
            yield AuditSite(NON_DEFINING_IMPORT, alias.name, symbol, scope.report_function, text)


def _non_defining_import_message(
    *, index_summary: ModuleSummary | None, source: str, name: str, finder: ReferenceFinder
) -> tuple[str, str] | None:
    index = finder.index
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


def census_findings(
    summaries: Sequence[ModuleSummary], display_paths: Mapping[str, str]
) -> list[Finding]:
    """CTX104: one finding per class named like a context type, over the whole tree."""
    by_name: dict[str, list[tuple[str, ModuleSummary, int]]] = {}
    for summary in summaries:
        display = display_paths[summary.module]
        for position, site in enumerate(summary.classes):
            by_name.setdefault(site.name, []).append((display, summary, position))
    findings: list[Finding] = []
    category: Category
    for name, places in sorted(by_name.items()):
        places.sort(key=lambda place: (place[0], place[1].classes[place[2]].line))
        locations = ", ".join(
            f"{display}:{summary.classes[position].line}" for display, summary, position in places
        )
        for display, summary, position in places:
            site = summary.classes[position]
            if is_suppressed(site.suppressed, DUPLICATE_CONTEXT_CLASS.id):
                category = "keep"
                message = suppression_reason(DUPLICATE_CONTEXT_CLASS.id)
            elif len(places) == 1:
                category = "keep"
                message = f"the only class named {name} in the scanned tree"
            else:
                category = "review"
                message = (
                    f"{len(places)} classes named {name} in the scanned tree ({locations}): "
                    "sessions hold one context type; decide which one the others become"
                )
            findings.append(
                Finding(
                    rule=DUPLICATE_CONTEXT_CLASS.id,
                    category=category,
                    path=display,
                    line=site.line,
                    column=site.column,
                    end_line=site.end_line,
                    end_column=site.end_column,
                    symbol=f"{summary.module}.{name}",
                    function=None,
                    message=message,
                )
            )
    return findings
