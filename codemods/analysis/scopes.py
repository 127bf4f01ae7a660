"""Per-module lexical scopes over a LibCST tree.

``ScopeWalker`` walks one module and collects the bindings of every scope
(module, class, function, lambda, comprehension, with ``global``/``nonlocal``)
with Python's rules: class bodies do not leak into methods, a name bound
anywhere in a function is local to all of it, parameters and
loop/with/except/walrus targets shadow. LibCST's own ``ScopeProvider`` would
cost about ten times the parse; this walk does only what resolution needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import libcst as cst

from ctxmigrate.codemods.analysis.summaries import (
    FACTORY_METHODS,
    Binding,
    ClassSite,
    ModuleSummary,
    SummaryBuilder,
    absolute_module,
)
from ctxmigrate.codemods.sites import ScopeKind

# --- per-module scopes (LibCST) -----------------------------------------------------

ScopeNodeKind = Literal["module", "class", "function", "lambda", "comprehension"]


@dataclass(eq=False)
class LexicalScope:
    kind: ScopeNodeKind
    parent: LexicalScope | None
    # Dotted name inside the module ("Handler.on_message"); None for the module.
    function: str | None
    is_async: bool = False
    # A comprehension scope made by a generator expression (lazy, unlike
    # list/set/dict comprehensions).
    is_generator: bool = False
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    global_names: set[str] = field(default_factory=set)
    nonlocal_names: set[str] = field(default_factory=set)
    star_imports: list[str] = field(default_factory=list)
    # For a method (a def directly in a class body): its first positional
    # parameter, the receiver (``self``, ``cls``); None for a staticmethod.
    receiver: str | None = None
    # Names bound by a statement of this scope, parameters excepted (a rebound ``self``).
    assigned: set[str] = field(default_factory=set)

    def bind(self, name: str, binding: Binding) -> None:
        existing = self.bindings.setdefault(name, [])
        if binding not in existing:
            existing.append(binding)

    @property
    def report_kind(self) -> ScopeKind:
        """The kind a Reference reports: comprehensions take their enclosing scope's."""
        scope: LexicalScope = self
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        if scope.kind == "function":
            return "async" if scope.is_async else "sync"
        if scope.kind == "comprehension":
            return "module"
        return scope.kind

    @property
    def in_generator_expression(self) -> bool:
        """Inside a generator expression of the innermost function-like scope."""
        scope: LexicalScope | None = self
        while scope is not None and scope.kind == "comprehension":
            if scope.is_generator:
                return True
            scope = scope.parent
        return False

    @property
    def report_function(self) -> str | None:
        scope: LexicalScope = self
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        return scope.function


_CONSTANT_NAMES = frozenset({"None", "True", "False"})


def cst_dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None (constants are not names)."""
    if isinstance(node, cst.Name):
        return None if node.value in _CONSTANT_NAMES else node.value
    if isinstance(node, cst.Attribute):
        base = cst_dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def _cst_target_names(node: cst.BaseExpression) -> Iterator[cst.Name]:
    if isinstance(node, cst.Name):
        yield node
    elif isinstance(node, cst.Tuple | cst.List):
        for element in node.elements:
            yield from _cst_target_names(element.value)
    elif isinstance(node, cst.StarredElement):
        yield from _cst_target_names(node.value)


def _cst_params(parameters: cst.Parameters) -> tuple[str, ...]:
    """The same names as ``_ast_params``, stars marked the same way."""
    names = [param.name.value for param in (*parameters.posonly_params, *parameters.params)]
    if isinstance(parameters.star_arg, cst.Param):
        names.append(f"*{parameters.star_arg.name.value}")
    elif parameters.kwonly_params:
        names.append("*")
    names.extend(param.name.value for param in parameters.kwonly_params)
    if parameters.star_kwarg is not None:
        names.append(f"**{parameters.star_kwarg.name.value}")
    return tuple(names)


def _string_list(node: cst.BaseExpression) -> list[str] | None:
    if not isinstance(node, cst.List | cst.Tuple):
        return None
    values = []
    for element in node.elements:
        if not isinstance(element.value, cst.SimpleString):
            return None
        value = element.value.evaluated_value
        if not isinstance(value, str):
            return None
        values.append(value)
    return values


# Fields that never hold a name or an expression: whitespace, punctuation,
# operators. Skipping them keeps the walk to the nodes that can matter.
_TRIVIA_FIELDS = frozenset(
    {
        "lpar",
        "rpar",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "trailing_whitespace",
        "comma",
        "semicolon",
        "newline",
        "equal",
        "colon",
        "dot",
        "operator",
        "asynchronous",
        "lbrace",
        "rbrace",
        "lbracket",
        "rbracket",
        "first_colon",
        "second_colon",
        "relative",
        "star_tok",
    }
)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The direct children of ``node`` that can hold names, in field order.

    LibCST's own ``visit``/``children`` rebuild every node they pass through
    (a dataclass construction per node); reading the fields is several times
    faster and keeps node identity.
    """
    kind = type(node)
    names = _CHILD_FIELDS.get(kind)
    if names is None:
        names = tuple(
            item.name
            for item in dataclasses.fields(kind)
            if item.name not in _TRIVIA_FIELDS and not item.name.startswith("whitespace")
        )
        _CHILD_FIELDS[kind] = names
    children: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            children.append(value)
        elif isinstance(value, tuple | list):
            children.extend(item for item in value if isinstance(item, cst.CSTNode))
    return children


def iter_nodes(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under ``root`` (pre-order), without recursion."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(child_nodes(node)))


def holding(root: cst.CSTNode, nodes: Sequence[cst.CSTNode]) -> set[int]:
    """The ids of the nodes under ``root`` that hold one of ``nodes``, and ``root``'s.

    A transformer that descends only into these rebuilds nothing else: the
    rewrite of a site, the removal of an import, in a long module.
    """
    parents: dict[int, cst.CSTNode] = {}
    stack: list[cst.CSTNode] = [root]
    while stack:
        node = stack.pop()
        for child in child_nodes(node):  # never in a whitespace or punctuation field
            parents[id(child)] = node
            stack.append(child)
    found = {id(root)}
    for node in nodes:
        parent = parents.get(id(node))
        while parent is not None and id(parent) not in found:
            found.add(id(parent))
            parent = parents.get(id(parent))
    return found


Visit = list[tuple[cst.CSTNode, "LexicalScope"]] | None


class ScopeWalker:
    """One iterative walk over a module that builds every scope and its bindings.

    A ``visit_<NodeType>`` handler runs when the walk reaches a node of that
    type, with ``self.scope`` set to the node's scope; it returns None to walk
    the node's children in the same scope, or the exact (child, scope) pairs
    to walk: decorators, defaults, annotations and class bases go to the
    enclosing scope, as Python evaluates them, bodies to the new one. Names
    are resolved only after the walk, when every scope's bindings are known
    (a name assigned anywhere in a function is local to all of it).
    """

    def __init__(self, module_name: str, is_package: bool) -> None:
        self.module_name = module_name
        self.is_package = is_package
        self.module_scope = LexicalScope("module", None, None)
        self.scope = self.module_scope
        # Name nodes that are not loads (targets, attribute names, keywords...).
        self.not_loads: set[int] = set()
        # Right-hand sides of ``alias = dotted.name`` in module/function scopes:
        # calls through the alias are resolved, the assignment is no finding.
        self.alias_sources: set[int] = set()
        # String nodes that are docstrings, ``__all__`` entries or getattr names.
        self.inert_strings: set[int] = set()
        self.all_names: list[str] | None = None
        self._handlers: dict[type, Callable[[Any], Visit]] = {}
        for attribute in dir(self):
            if attribute.startswith("visit_"):
                node_type = getattr(cst, attribute.removeprefix("visit_"))
                self._handlers[node_type] = getattr(self, attribute)

    def walk(self, root: cst.CSTNode) -> None:
        handlers = self._handlers
        stack: list[tuple[cst.CSTNode, LexicalScope]] = [(root, self.module_scope)]
        while stack:
            node, scope = stack.pop()
            self.scope = scope
            handler = handlers.get(type(node))
            visits = handler(node) if handler is not None else None
            if visits is None:
                children = child_nodes(node)
                children.reverse()
                stack.extend((child, scope) for child in children)
            else:
                visits.reverse()
                stack.extend(visits)
        self.scope = self.module_scope

    # scope management ---------------------------------------------------------

    def _new_scope(
        self, kind: ScopeNodeKind, name: str | None, is_async: bool = False
    ) -> LexicalScope:
        outer = self.scope.report_function
        function = name if outer is None or name is None else f"{outer}.{name}"
        if name is None:
            function = outer
        return LexicalScope(kind, self.scope, function, is_async)

    def _bind(self, name: str, binding: Binding, scope: LexicalScope | None = None) -> None:
        scope = scope or self.scope
        if name in scope.global_names:
            scope = self.module_scope
        elif name in scope.nonlocal_names:
            enclosing = scope.parent
            while enclosing is not None and enclosing.kind in ("class", "comprehension"):
                enclosing = enclosing.parent
            scope = enclosing or self.module_scope
        scope.assigned.add(name)
        scope.bind(name, binding)

    def _bind_target(self, target: cst.BaseExpression, scope: LexicalScope | None = None) -> None:
        for name in _cst_target_names(target):
            self.not_loads.add(id(name))
            self._bind(name.value, Binding("other"), scope)

    def _parameter_visits(
        self, parameters: cst.Parameters
    ) -> list[tuple[cst.CSTNode, LexicalScope]]:
        """Annotations and defaults, evaluated in the enclosing scope."""
        visits: list[tuple[cst.CSTNode, LexicalScope]] = []
        for param in self._all_params(parameters):
            self.not_loads.add(id(param.name))
            if param.annotation is not None:
                visits.append((param.annotation, self.scope))
            if param.default is not None:
                visits.append((param.default, self.scope))
        return visits

    @staticmethod
    def _all_params(parameters: cst.Parameters) -> list[cst.Param]:
        params = [*parameters.posonly_params, *parameters.params, *parameters.kwonly_params]
        if isinstance(parameters.star_arg, cst.Param):
            params.append(parameters.star_arg)
        if parameters.star_kwarg is not None:
            params.append(parameters.star_kwarg)
        return params

    def visit_FunctionDef(self, node: cst.FunctionDef) -> Visit:
        self.not_loads.add(id(node.name))
        self._bind(
            node.name.value,
            Binding("def", params=_cst_params(node.params), is_async=node.asynchronous is not None),
        )
        visits: list[tuple[cst.CSTNode, LexicalScope]] = [
            (decorator, self.scope) for decorator in node.decorators
        ]
        visits.extend(self._parameter_visits(node.params))
        if node.returns is not None:
            visits.append((node.returns, self.scope))
        scope = self._new_scope("function", node.name.value, node.asynchronous is not None)
        for param in self._all_params(node.params):
            scope.bind(param.name.value, Binding("other"))
        if self.scope.kind == "class":
            scope.receiver = method_receiver(node)
        visits.append((node.body, scope))
        return visits

    def visit_Lambda(self, node: cst.Lambda) -> Visit:
        visits = self._parameter_visits(node.params)
        scope = self._new_scope("lambda", None)
        for param in self._all_params(node.params):
            scope.bind(param.name.value, Binding("other"))
        visits.append((node.body, scope))
        return visits

    def visit_ClassDef(self, node: cst.ClassDef) -> Visit:
        self.not_loads.add(id(node.name))
        method_params, method_async = None, False
        if isinstance(node.body, cst.IndentedBlock):
            for statement in node.body.body:
                if (
                    isinstance(statement, cst.FunctionDef)
                    and statement.name.value in FACTORY_METHODS
                ):
                    method_params = _cst_params(statement.params)
                    method_async = statement.asynchronous is not None
        self._bind(node.name.value, Binding("class", params=method_params, is_async=method_async))
        visits: list[tuple[cst.CSTNode, LexicalScope]] = [
            (decorator, self.scope) for decorator in node.decorators
        ]
        visits.extend((base, self.scope) for base in node.bases)
        visits.extend((keyword, self.scope) for keyword in node.keywords)
        visits.append((node.body, self._new_scope("class", node.name.value)))
        return visits

    def _comprehension(self, node: cst.CSTNode, is_generator: bool) -> Visit:
        scope = self._new_scope("comprehension", None)
        scope.is_generator = is_generator
        return [(child, scope) for child in child_nodes(node)]

    def visit_ListComp(self, node: cst.ListComp) -> Visit:
        return self._comprehension(node, False)

    def visit_SetComp(self, node: cst.SetComp) -> Visit:
        return self._comprehension(node, False)

    def visit_DictComp(self, node: cst.DictComp) -> Visit:
        return self._comprehension(node, False)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> Visit:
        return self._comprehension(node, True)

    def visit_CompFor(self, node: cst.CompFor) -> Visit:
        self._bind_target(node.target)
        return None

    # bindings -----------------------------------------------------------------

    def visit_Import(self, node: cst.Import) -> Visit:
        for alias in node.names:
            dotted = cst_dotted(alias.name)
            if dotted is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._bind(alias.asname.name.value, Binding("module", dotted))
            else:
                head = dotted.split(".", 1)[0]
                self._bind(head, Binding("module", head))
        return []

    def visit_ImportFrom(self, node: cst.ImportFrom) -> Visit:
        module = None if node.module is None else cst_dotted(node.module)
        source = absolute_module(self.module_name, self.is_package, len(node.relative), module)
        if isinstance(node.names, cst.ImportStar):
            if source is not None:
                self.scope.star_imports.append(source)
            return []
        for alias in node.names:
            if not isinstance(alias.name, cst.Name):
                continue
            bound = alias.name.value
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            if source is None:
                self._bind(bound, Binding("other"))
            else:
                self._bind(bound, Binding("import", source, alias.name.value))
        self.on_import_from(node)
        return []

    def on_import_from(self, node: cst.ImportFrom) -> None:
        """Hook for the reference finder (CTX103)."""

    def visit_Assign(self, node: cst.Assign) -> Visit:
        dotted = cst_dotted(node.value)
        for assign_target in node.targets:
            target = assign_target.target
            if isinstance(target, cst.Name) and target.value == "__all__":
                self._mark_all(node.value)
            if isinstance(target, cst.Name) and dotted is not None and len(node.targets) == 1:
                self.not_loads.add(id(target))
                self._bind(target.value, Binding("alias", name=dotted))
                if self.scope.kind != "class":
                    self.alias_sources.add(id(node.value))
            else:
                self._bind_target(target)
        self.on_assignment(node.targets[0].target, node.value, len(node.targets))
        return None

    def on_assignment(
        self, target: cst.BaseExpression, value: cst.BaseExpression, count: int
    ) -> None:
        """Hook for the reference finder (CTX101)."""

    def visit_AnnAssign(self, node: cst.AnnAssign) -> Visit:
        if not isinstance(node.target, cst.Name):
            return None
        self.not_loads.add(id(node.target))
        if node.target.value == "__all__" and node.value is not None:
            self._mark_all(node.value)
        dotted = None if node.value is None else cst_dotted(node.value)
        if dotted is not None and node.value is not None:
            self._bind(node.target.value, Binding("alias", name=dotted))
            if self.scope.kind != "class":
                self.alias_sources.add(id(node.value))
        elif node.value is not None or self.scope.kind == "function":
            # A bare annotation makes the name local to a function.
            self._bind(node.target.value, Binding("other"))
        if node.value is not None:
            self.on_assignment(node.target, node.value, 1)
        return None

    def _mark_all(self, value: cst.BaseExpression) -> None:
        if self.scope is not self.module_scope:
            return
        names = _string_list(value)
        if names is not None:
            self.all_names = names
        if isinstance(value, cst.List | cst.Tuple):
            self.inert_strings.update(id(element.value) for element in value.elements)

    def visit_AugAssign(self, node: cst.AugAssign) -> Visit:
        if isinstance(node.target, cst.Name):
            self.not_loads.add(id(node.target))
            if node.target.value == "__all__" and self.scope is self.module_scope:
                extra = _string_list(node.value)
                if self.all_names is not None:
                    self.all_names = None if extra is None else [*self.all_names, *extra]
                if isinstance(node.value, cst.List | cst.Tuple):
                    self.inert_strings.update(id(e.value) for e in node.value.elements)
            else:
                self._bind(node.target.value, Binding("other"))
        return None

    def visit_For(self, node: cst.For) -> Visit:
        self._bind_target(node.target)
        return None

    def visit_WithItem(self, node: cst.WithItem) -> Visit:
        if node.asname is not None:
            self._bind_target(node.asname.name)
        return None

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> Visit:
        if node.name is not None:
            self._bind_target(node.name.name)
        return None

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> Visit:
        if node.name is not None:
            self._bind_target(node.name.name)
        return None

    def visit_NamedExpr(self, node: cst.NamedExpr) -> Visit:
        # PEP 572: the target binds in the nearest non-comprehension scope.
        scope = self.scope
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent
        if isinstance(node.target, cst.Name):
            self.not_loads.add(id(node.target))
            self._bind(node.target.value, Binding("other"), scope)
        return None

    def visit_Del(self, node: cst.Del) -> Visit:
        self._bind_target(node.target)
        return None

    def visit_Global(self, node: cst.Global) -> Visit:
        # Python rejects a global declaration after the name is used or bound
        # in the function, so every later binding is redirected correctly.
        self.scope.global_names.update(item.name.value for item in node.names)
        return []

    def visit_Nonlocal(self, node: cst.Nonlocal) -> Visit:
        self.scope.nonlocal_names.update(item.name.value for item in node.names)
        return []

    def visit_MatchAs(self, node: cst.MatchAs) -> Visit:
        if node.name is not None:
            self._bind_target(node.name)
        return None

    def visit_MatchStar(self, node: cst.MatchStar) -> Visit:
        if node.name is not None:
            self._bind_target(node.name)
        return None

    def visit_MatchMapping(self, node: cst.MatchMapping) -> Visit:
        if node.rest is not None:
            self._bind_target(node.rest)
        return None

    def visit_Attribute(self, node: cst.Attribute) -> Visit:
        self.not_loads.add(id(node.attr))
        return None

    def visit_Arg(self, node: cst.Arg) -> Visit:
        if node.keyword is not None:
            self.not_loads.add(id(node.keyword))
        return None

    def visit_Expr(self, node: cst.Expr) -> Visit:
        # A string statement (docstring or a stray literal) is never used at runtime.
        if isinstance(node.value, cst.SimpleString | cst.ConcatenatedString):
            self.inert_strings.add(id(node.value))
        return None


def summarize_cst(walker: ScopeWalker, classes: Sequence[ClassSite]) -> ModuleSummary:
    """The module summary from a collecting pass (for files ``ast`` cannot parse)."""
    builder = SummaryBuilder(walker.module_name, walker.is_package)
    for name, bindings in walker.module_scope.bindings.items():
        for binding in bindings:
            builder.bind(name, binding)
    builder.star_imports = list(walker.module_scope.star_imports)
    builder.all_names = walker.all_names
    return builder.summary(classes)


def method_receiver(node: cst.FunctionDef) -> str | None:
    decorators = {cst_dotted(decorator.decorator) for decorator in node.decorators}
    if decorators & {"staticmethod", "builtins.staticmethod"}:
        return None
    positional = [*node.params.posonly_params, *node.params.params]
    return positional[0].name.value if positional else None
