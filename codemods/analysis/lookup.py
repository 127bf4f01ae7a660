"""Scope-aware lookup: what a name or attribute chain refers to at one place in a module."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ctxmigrate.codemods.analysis.project_index import ProjectIndex, Symbol
from ctxmigrate.codemods.analysis.scopes import (
    LexicalScope,
    ScopeWalker,
)
from ctxmigrate.codemods.analysis.summaries import Binding
from ctxmigrate.codemods.sites import Target


@dataclass(frozen=True)
class Lookup:
    """The result of resolving one expression inside a module."""

    symbols: tuple[Symbol, ...]
    # Set when a name may come from a star import of a module outside the tree.
    star_module: str | None = None

    def target(self) -> Target | None:
        for symbol in self.symbols:
            if isinstance(symbol, Target):
                return symbol
        return None

    def uncertainty(self, spelled: str) -> str | None:
        """Why the resolution is not certain: the name is bound to other things too."""
        target = self.target()
        if target is None:
            return None
        # Two legacy definitions (``try: from new import f`` / ``except
        # ImportError: from old import f``) are both legacy: no doubt there.
        others = [symbol for symbol in self.symbols if not isinstance(symbol, Target)]
        if not others:
            return None
        return (
            f"{spelled} is bound to {target.qualname} and, elsewhere in the same scope, "
            "to something else (a fallback, a rebinding or a del): which one runs is "
            "decided at run time"
        )


def lookup_name(
    name: str,
    scope: LexicalScope,
    module: ScopeWalker,
    index: ProjectIndex,
    following: frozenset[tuple[int, str]] = frozenset(),
) -> Lookup:
    """Resolve ``name`` as read in ``scope`` (LEGB, class bodies skipped from inside).

    ``following``: the (scope id, name) local aliases being resolved further
    up the call chain; meeting one again is a cycle of assignments.
    """
    current: LexicalScope | None = scope
    if name in scope.global_names:
        current = module.module_scope
    first = True
    while current is not None:
        if current.kind == "class" and not first:
            current = current.parent
            continue
        if name in current.nonlocal_names:
            current = current.parent
            first = False
            continue
        bindings = current.bindings.get(name)
        if bindings:
            symbols: list[Symbol] = []
            for binding in bindings:
                symbols.extend(
                    _local_binding_symbols(name, binding, current, module, index, following)
                )
            return Lookup(tuple(dict.fromkeys(symbols)))
        current = current.parent
        first = False
    star_modules = module.module_scope.star_imports
    in_tree = [star for star in star_modules if star in index.modules]
    found = index._star_export(in_tree, name)
    if found:
        return Lookup(found)
    for star in star_modules:
        if star in index.modules:
            continue
        target = index.target(f"{star}.{name}")
        if target is not None:
            return Lookup((target,))
        return Lookup((), star_module=star)
    return Lookup(())


def _local_binding_symbols(
    name: str,
    binding: Binding,
    scope: LexicalScope,
    module: ScopeWalker,
    index: ProjectIndex,
    following: frozenset[tuple[int, str]],
) -> tuple[Symbol, ...]:
    if scope is module.module_scope:
        # Module-level bindings resolve exactly like another module's export.
        return index.binding_symbols(module.module_name, name, binding)
    if binding.kind == "alias" and binding.name is not None:
        key = (id(scope), name)
        if key in following:
            # A cycle of assignments (``f = f.wrapped``, ``left = right.parent;
            # right = left``): it adds nothing the other bindings do not say.
            return (None,)
        head, *attributes = binding.name.split(".")
        found = lookup_name(head, scope, module, index, following | {key})
        return index.attribute_chain(found.symbols, attributes) or (None,)
    if binding.kind in ("import", "module"):
        return index.binding_symbols(module.module_name, name, binding)
    return (None,)


def lookup_expression(
    node: cst.BaseExpression, scope: LexicalScope, module: ScopeWalker, index: ProjectIndex
) -> Lookup:
    """Resolve a Name/Attribute chain; anything else resolves to nothing."""
    if isinstance(node, cst.Name):
        return lookup_name(node.value, scope, module, index)
    if isinstance(node, cst.Attribute):
        base = lookup_expression(node.value, scope, module, index)
        return Lookup(index.attribute_chain(base.symbols, [node.attr.value]))
    return Lookup(())


def visible_bindings(name: str, scope: LexicalScope) -> list[Binding]:
    """What a load of ``name`` in ``scope`` may see (flow-insensitive LEGB).

    A class body's names are visible to that body only, never to the
    functions and comprehensions nested in it.
    """
    current: LexicalScope | None = scope
    while current is not None:
        if (current is scope or current.kind != "class") and name in current.bindings:
            return current.bindings[name]
        current = current.parent
    return []


def method_receivers(scope: LexicalScope) -> frozenset[str]:
    """Which of ``self``/``cls`` name the receiver of an enclosing method at ``scope``.

    The name must resolve to the first parameter of a method (not a
    staticmethod, not rebound in it): ``self`` in a nested ``def inner(self)``,
    in a module-level function or after ``self = ...`` is something else.
    """
    receivers: set[str] = set()
    for head in ("self", "cls"):
        current: LexicalScope | None = scope
        while current is not None:
            if (current is scope or current.kind != "class") and head in current.bindings:
                if current.receiver == head and head not in current.assigned:
                    receivers.add(head)
                break
            current = current.parent
    return frozenset(receivers)


def new_name_clash(import_module: str, name: str, scope: LexicalScope) -> str | None:
    """Why ``name`` imported from ``import_module`` would not be what a site in ``scope`` calls.

    A parameter or local of that name in an enclosing function, or a module-level
    binding to anything but that very import, would shadow or replace it.
    """
    for binding in visible_bindings(name, scope):
        if not (
            binding.kind == "import" and binding.module == import_module and binding.name == name
        ):
            return (
                f"{name} already means something else here; "
                f"importing it from {import_module} would clash"
            )
    return None
