"""The resolving pass: every use of a legacy target in one module, resolved by name.

``ReferenceFinder`` extends the scope walk: during it, only cheap textual
checks decide what to note (a name in the pre-filter's set, a factory-method
attribute, a call that may involve them, a string mentioning them); ``find``
then resolves the notes in walk order, once all bindings are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ctxmigrate.codemods.analysis.lookup import Lookup, lookup_expression, lookup_name
from ctxmigrate.codemods.analysis.project_index import ModuleSymbol, ProjectIndex
from ctxmigrate.codemods.analysis.scopes import (
    LexicalScope,
    ScopeWalker,
    Visit,
    child_nodes,
    cst_dotted,
)
from ctxmigrate.codemods.analysis.summaries import FACTORY_METHODS
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.sites import Target, Usage


@dataclass(frozen=True)
class RawReference:
    """A reference found by the resolving pass, before positions are known."""

    target: Target
    usage: Usage
    node: cst.CSTNode
    call: cst.Call | None
    callee: cst.BaseExpression | None
    scope: LexicalScope
    uncertainty: str | None
    order: int


# Callees that take the legacy function as ``factory=`` once migrated
# (``get_manager_for_context(ctx, factory=create_websocket_manager)``,
# ``UserSessionManager(factory=create_user_execution_context)``): passing it
# there is the migration, not a dynamic use.
SHIM_MODULE = "ctxmigrate.shim"


class ReferenceFinder(ScopeWalker):
    """The walk plus the resolution of every expression that may name a legacy target.

    During the walk, only cheap textual checks decide what to note (a name in
    the pre-filter's set, an attribute ``create_for_user``, a call that may
    involve them, a string mentioning them); ``find`` then resolves the notes in
    walk order, once all bindings are known. Afterwards ``references`` and the
    audit inputs (``strings``, ``imports_from``, ``assignments``) are set.
    """

    def __init__(
        self, module_name: str, is_package: bool, index: ProjectIndex, config: Config
    ) -> None:
        super().__init__(module_name, is_package)
        self.index = index
        self.config = config
        self.known = index.known_names
        self.references: list[RawReference] = []
        self.consumed: set[int] = set()
        # ids of the operands of ``await`` expressions (an awaited legacy call).
        self.awaited: set[int] = set()
        self._notes: list[tuple[str, cst.CSTNode, LexicalScope, int]] = []
        self._order = 0
        # Inputs of the audit-only rules.
        self.strings: list[tuple[cst.SimpleString, LexicalScope]] = []
        self.imports_from: list[tuple[cst.ImportFrom, LexicalScope]] = []
        self.assignments: list[tuple[LexicalScope, str, cst.BaseExpression, int]] = []
        self._migration_callees = {
            config.session_target,
            config.websocket_target,
            config.manager_target,
        }

    def find(self, module: cst.Module) -> None:
        self.walk(module)
        resolvers = {
            "call": self._resolve_call,
            "attribute": self._resolve_attribute,
            "name": self._resolve_name,
            "string": self._resolve_string,
        }
        for kind, node, scope, order in self._notes:
            self.scope = scope
            resolvers[kind](node, order)  # type: ignore[operator]
        self.scope = self.module_scope

    def _note(self, kind: str, node: cst.CSTNode) -> int:
        self._order += 1
        self._notes.append((kind, node, self.scope, self._order))
        return self._order

    # what the walk notes ------------------------------------------------------

    def _last_name(self, node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.Name):
            return node.value
        if isinstance(node, cst.Attribute):
            return node.attr.value
        return None

    def visit_Call(self, node: cst.Call) -> Visit:
        known = self.known
        last = self._last_name(node.func)
        first = node.args[0].value if node.args else None
        if last == "cast" and first is not None:
            # typing.cast("WebSocketContext", value): the type, as a string.
            self._make_strings_inert(first)
        if (
            last in known
            or last in FACTORY_METHODS
            or last == "getattr"
            or (first is not None and self._last_name(first) in known)
            or (first is not None and self._last_name(first) in FACTORY_METHODS)
            or any(arg.keyword is not None and arg.keyword.value == "factory" for arg in node.args)
        ):
            self._note("call", node)
        return None

    def visit_Await(self, node: cst.Await) -> Visit:
        self.awaited.add(id(node.expression))
        return None

    def visit_Annotation(self, node: cst.Annotation) -> Visit:
        # A forward reference ("WebSocketContext", "Optional[...]") names a
        # type; no rewrite breaks it.
        self._make_strings_inert(node)
        return None

    def _make_strings_inert(self, root: cst.CSTNode) -> None:
        pending = [root]
        while pending:
            node = pending.pop()
            if isinstance(node, cst.SimpleString):
                self.inert_strings.add(id(node))
            else:
                pending.extend(child_nodes(node))

    def visit_Attribute(self, node: cst.Attribute) -> Visit:
        self.not_loads.add(id(node.attr))
        attribute = node.attr.value
        if attribute in self.known or attribute in FACTORY_METHODS:
            self._note("attribute", node)
        return [(node.value, self.scope)]

    def visit_Name(self, node: cst.Name) -> Visit:
        if node.value in self.known and id(node) not in self.not_loads:
            self._note("name", node)
        return []

    def visit_SimpleString(self, node: cst.SimpleString) -> Visit:
        if id(node) not in self.inert_strings and any(name in node.value for name in self.known):
            self._note("string", node)
        return []

    def on_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        if any(
            isinstance(alias.name, cst.Name) and alias.name.value in self.known
            for alias in node.names
        ):
            self.imports_from.append((node, self.scope))

    def on_assignment(
        self, target: cst.BaseExpression, value: cst.BaseExpression, count: int
    ) -> None:
        if count == 1 and isinstance(target, cst.Name) and self.scope.kind != "module":
            self._order += 1
            self.assignments.append((self.scope, target.value, value, self._order))

    # resolution ---------------------------------------------------------------

    def lookup(self, node: cst.BaseExpression) -> Lookup:
        return lookup_expression(node, self.scope, self, self.index)

    def _add(
        self,
        target: Target,
        usage: Usage,
        node: cst.CSTNode,
        call: cst.Call | None,
        callee: cst.BaseExpression | None,
        uncertainty: str | None,
        order: int,
    ) -> None:
        self.references.append(
            RawReference(target, usage, node, call, callee, self.scope, uncertainty, order)
        )

    def _function_target(self, node: cst.BaseExpression) -> tuple[Target, Lookup] | None:
        """The factory/manager target ``node`` (a Name/Attribute chain) refers to."""
        if self._last_name(node) not in self.known:
            return None
        lookup = self.lookup(node)
        target = lookup.target()
        if target is None or target.spec.method is not None:
            return None
        return target, lookup

    def _websocket_method_target(self, node: cst.BaseExpression) -> tuple[Target, Lookup] | None:
        """The WebSocketContext target of ``X.create_for_user``."""
        if not (isinstance(node, cst.Attribute) and node.attr.value in FACTORY_METHODS):
            return None
        lookup = self.lookup(node.value)
        target = lookup.target()
        if target is None or target.spec.method != node.attr.value:
            return None
        return target, lookup

    def _any_target(self, node: cst.BaseExpression) -> tuple[Target, Lookup] | None:
        return self._function_target(node) or self._websocket_method_target(node)

    @staticmethod
    def _spelled(node: cst.BaseExpression) -> str:
        return cst_dotted(node) or "the name"

    def _resolve_call(self, node: cst.Call, order: int) -> None:
        func = node.func
        found = self._any_target(func)
        if found is not None:
            target, lookup = found
            uncertainty = lookup.uncertainty(self._spelled(func))
            self._add(target, "call", node, node, func, uncertainty, order)
            self.consumed.add(id(func))
            return
        if isinstance(func, cst.Name) and func.value in self.index.legacy_names:
            lookup = self.lookup(func)
            star_target = self._target_named(func.value)
            if lookup.star_module is not None and not lookup.symbols and star_target is not None:
                reason = (
                    f"`from {lookup.star_module} import *` (a module outside the "
                    f"scanned tree) may provide {func.value}"
                )
                self._add(star_target, "star", node, node, func, reason, order)
                self.consumed.add(id(func))
                return
        self._dynamic_uses(node, order)

    def _target_named(self, name: str) -> Target | None:
        for target in self.index.targets:
            if target.qualname.rpartition(".")[2] == name and target.spec.method is None:
                return target
        return None

    def _dynamic_uses(self, node: cst.Call, order: int) -> None:
        func = node.func
        spelled = cst_dotted(func)
        if spelled is None:
            return
        if spelled == "getattr" and len(node.args) >= 2:
            self._getattr_use(node, order)
        elif node.args and node.args[0].keyword is None:
            bound = node.args[0].value
            found = self._any_target(bound)
            if found is not None and "functools.partial" in self._module_symbols(func):
                target, lookup = found
                uncertainty = lookup.uncertainty(self._spelled(bound))
                self._add(target, "partial", bound, None, None, uncertainty, order)
                self.consumed.add(id(bound))
        passes_factory = any(
            arg.keyword is not None and arg.keyword.value == "factory" for arg in node.args
        )
        if passes_factory and self._is_migration_callee(func, spelled):
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "factory":
                    self.consumed.add(id(arg.value))

    def _module_symbols(self, node: cst.BaseExpression) -> set[str]:
        return {s.name for s in self.lookup(node).symbols if isinstance(s, ModuleSymbol)}

    def _is_migration_callee(self, func: cst.BaseExpression, spelled: str) -> bool:
        if spelled in self._migration_callees:  # an expression target, as configured
            return True
        for qualname in self._module_symbols(func):
            if qualname in self._migration_callees or qualname.startswith(SHIM_MODULE + "."):
                return True
        return False

    def _getattr_use(self, node: cst.Call, order: int) -> None:
        if lookup_name("getattr", self.scope, self, self.index).symbols:
            return  # a local ``getattr``, not the builtin
        name_node = node.args[1].value
        if not isinstance(name_node, cst.SimpleString):
            return
        attribute = name_node.evaluated_value
        if not isinstance(attribute, str):
            return
        owner = self.lookup(node.args[0].value)
        target: Target | None = None
        if attribute in FACTORY_METHODS:
            owner_target = owner.target()
            if owner_target is not None and owner_target.spec.method == attribute:
                target = owner_target
        elif attribute in self.known:
            found = Lookup(self.index.attribute_chain(owner.symbols, [attribute])).target()
            if found is not None and found.spec.method is None:
                target = found
        if target is not None:
            self._add(target, "getattr", node, None, None, None, order)
            self.inert_strings.add(id(name_node))
            self.consumed.add(id(node.args[0].value))

    def _resolve_attribute(self, node: cst.Attribute, order: int) -> None:
        if id(node) in self.consumed:
            return
        # An alias of the factory method is not followed (calls through it are
        # not CTX002 sites), so the alias itself is the finding.
        found = self._websocket_method_target(node)
        if found is None and id(node) not in self.alias_sources:
            found = self._function_target(node)
        if found is not None:
            target, lookup = found
            uncertainty = lookup.uncertainty(self._spelled(node))
            self._add(target, "value", node, None, None, uncertainty, order)
            self.consumed.add(id(node))

    def _resolve_name(self, node: cst.Name, order: int) -> None:
        key = id(node)
        if key in self.consumed or key in self.alias_sources:
            return
        found = self._function_target(node)
        if found is not None:
            target, lookup = found
            self._add(target, "value", node, None, None, lookup.uncertainty(node.value), order)

    def _resolve_string(self, node: cst.SimpleString, order: int) -> None:
        if id(node) not in self.inert_strings:
            self.strings.append((node, self.scope))
