"""What a name refers to: module summaries, the project index, and scope-aware lookup.

LibCST's ``QualifiedNameProvider`` / ``ScopeProvider`` resolve every name of a
module and cost ten times the parse (DESIGN.md, "Performance budget"). This
resolver does the part that matters here:

* a **module summary** per candidate file: what each module-level name is
  bound to (an import, a module, an alias of a dotted name, a definition, or
  anything else), its star imports and ``__all__``. Summaries come from
  Python's ``ast`` (ten times faster than LibCST) and, for the few files using
  syntax newer than the running interpreter, from the LibCST module instead;
* the **project index** answers "what is ``module.name``?" across modules:
  imports, re-exports under another name, package attributes and star imports,
  transitively and cycle-safe; names of modules outside the scanned tree stay
  symbolic dotted paths, which is how configured targets outside it match;
* ``ModuleResolver`` walks one LibCST module twice: first it collects the
  bindings of every scope (module, class, function, lambda, comprehension,
  with ``global``/``nonlocal``), then it resolves the names and attribute
  chains that can matter (the pre-filter's names) with Python's rules: class
  bodies do not leak into methods, a name bound anywhere in a function is local
  to all of it, parameters and loop/with/except/walrus targets shadow.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import libcst as cst

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rules import legacy_targets
from ctxmigrate.codemods.rules.duplicate_context_class import CENSUS_CLASS_NAMES
from ctxmigrate.codemods.sites import ScopeKind, Target, Usage

BindingKind = Literal["import", "module", "alias", "def", "class", "other"]
# Class methods through which a legacy class's calls go (``WebSocketContext.create_for_user``).
FACTORY_METHODS = frozenset(t.method for t in legacy_targets() if t.method is not None)
SUMMARY_VERSION = 2


@dataclass(frozen=True)
class Binding:
    """What one statement binds a name to.

    ``import``: ``from module import name``; ``module``: the module ``module``;
    ``alias``: the dotted expression ``name`` (``make = deps.factory``);
    ``def``/``class``: a definition here (``params``: the function's
    parameters, or a class's ``create_for_user`` parameters; ``is_async``: that
    function is an ``async def``); ``other``: anything else (a parameter, a
    computed value, ``del``).
    """

    kind: BindingKind
    module: str | None = None
    name: str | None = None
    params: tuple[str, ...] | None = None
    is_async: bool = False


@dataclass(frozen=True)
class ClassSite:
    """A class definition named like a context type (the CTX104 census)."""

    name: str
    line: int
    column: int
    end_line: int
    end_column: int
    # Rule ids of a ``# ctxmigrate: ignore[...]`` comment on the ``class`` line.
    suppressed: frozenset[str]


@dataclass(frozen=True)
class ModuleSummary:
    module: str
    is_package: bool
    bindings: Mapping[str, tuple[Binding, ...]]
    star_imports: tuple[str, ...]
    all_names: tuple[str, ...] | None
    classes: tuple[ClassSite, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "is_package": self.is_package,
            "bindings": {
                name: [
                    [
                        b.kind,
                        b.module,
                        b.name,
                        None if b.params is None else list(b.params),
                        b.is_async,
                    ]
                    for b in bindings
                ]
                for name, bindings in self.bindings.items()
            },
            "star_imports": list(self.star_imports),
            "all_names": None if self.all_names is None else list(self.all_names),
            "classes": [
                [c.name, c.line, c.column, c.end_line, c.end_column, sorted(c.suppressed)]
                for c in self.classes
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModuleSummary:
        return cls(
            module=data["module"],
            is_package=data["is_package"],
            bindings={
                name: tuple(
                    Binding(
                        kind, module, bound, None if params is None else tuple(params), is_async
                    )
                    for kind, module, bound, params, is_async in bindings
                )
                for name, bindings in data["bindings"].items()
            },
            star_imports=tuple(data["star_imports"]),
            all_names=None if data["all_names"] is None else tuple(data["all_names"]),
            classes=tuple(
                ClassSite(name, line, column, end_line, end_column, frozenset(suppressed))
                for name, line, column, end_line, end_column, suppressed in data["classes"]
            ),
        )


SUPPRESSION = re.compile(r"#\s*ctxmigrate:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)


def suppressed_rules(line: str) -> frozenset[str]:
    """Rule ids named by a suppression comment on ``line``; ``{"*"}`` for a bare one."""
    found: set[str] = set()
    for match in SUPPRESSION.finditer(line):
        if match.group(1) is None:
            found.add("*")
        else:
            # Ids and names in any case, as --select takes them: CTX001, ctx001, reuse-session.
            found.update(
                part.strip().upper()
                if re.fullmatch(r"(?i)ctx\d+", part.strip())
                else part.strip().lower()
                for part in match.group(1).split(",")
                if part.strip()
            )
    return frozenset(found)


def absolute_module(current: str, is_package: bool, level: int, module: str | None) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` in ``current``."""
    if level == 0:
        return module
    parts = current.split(".") if current else []
    if not is_package:
        parts = parts[:-1]
    if level > len(parts):  # beyond the top-level package: an ImportError in Python
        return None
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    if module:
        parts.extend(module.split("."))
    return ".".join(parts) or None


# --- summaries from Python's ast --------------------------------------------------


def _ast_dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _ast_dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _ast_target_names(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _ast_target_names(element)
    elif isinstance(node, ast.Starred):
        yield from _ast_target_names(node.value)


def _ast_params(arguments: ast.arguments) -> tuple[str, ...]:
    """Parameter names in order; ``*name`` (``*`` when bare) and ``**name`` mark the stars."""
    names = [argument.arg for argument in (*arguments.posonlyargs, *arguments.args)]
    if arguments.vararg is not None:
        names.append(f"*{arguments.vararg.arg}")
    elif arguments.kwonlyargs:
        names.append("*")
    names.extend(argument.arg for argument in arguments.kwonlyargs)
    if arguments.kwarg is not None:
        names.append(f"**{arguments.kwarg.arg}")
    return tuple(names)


def _ast_string_list(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.List | ast.Tuple) and all(
        isinstance(element, ast.Constant) and isinstance(element.value, str)
        for element in node.elts
    ):
        return [element.value for element in node.elts]  # type: ignore[attr-defined]
    return None


class _SummaryBuilder:
    """Collects module-level bindings; shared shape for the ast and LibCST paths."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.bindings: dict[str, list[Binding]] = {}
        self.star_imports: list[str] = []
        self.all_names: list[str] | None = None

    def bind(self, name: str, binding: Binding) -> None:
        existing = self.bindings.setdefault(name, [])
        if binding not in existing:
            existing.append(binding)

    def summary(self, classes: Sequence[ClassSite]) -> ModuleSummary:
        return ModuleSummary(
            module=self.module,
            is_package=self.is_package,
            bindings={name: tuple(bindings) for name, bindings in self.bindings.items()},
            star_imports=tuple(dict.fromkeys(self.star_imports)),
            all_names=None if self.all_names is None else tuple(self.all_names),
            classes=tuple(classes),
        )


_CENSUS_OR_GLOBAL = re.compile(r"\bglobal\b|\bclass\s+(?:" + "|".join(CENSUS_CLASS_NAMES) + r")\b")


def summarize_ast(tree: ast.Module, module: str, is_package: bool, text: str) -> ModuleSummary:
    builder = _SummaryBuilder(module, is_package)
    _ast_block(builder, tree.body)
    lines = text.splitlines()
    classes: list[ClassSite] = []
    declares_globals = False
    # A walk of the whole tree costs as much as the parse: only when the text
    # says a census class or a ``global`` statement may be there.
    if not _CENSUS_OR_GLOBAL.search(text):
        return builder.summary(classes)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            declares_globals = True
        elif isinstance(node, ast.ClassDef) and node.name in CENSUS_CLASS_NAMES:
            line_text = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
            # ast columns are UTF-8 byte offsets; reports count characters.
            column = len(line_text.encode()[: node.col_offset].decode(errors="replace"))
            name_at = line_text.find(node.name, column)
            end_column = (name_at if name_at >= 0 else column) + len(node.name)
            classes.append(
                ClassSite(
                    node.name,
                    node.lineno,
                    column + 1,
                    node.lineno,
                    end_column + 1,
                    suppressed_rules(line_text),
                )
            )
    if declares_globals:  # rare: only then look for functions rebinding module names
        _ast_global_rebindings(builder, tree)
    return builder.summary(classes)


class _GlobalsOnly(_SummaryBuilder):
    """Forwards only the bindings of names a function declared ``global``."""

    def __init__(self, target: _SummaryBuilder, names: set[str]) -> None:
        super().__init__(target.module, target.is_package)
        self.target = target
        self.names = names

    def bind(self, name: str, binding: Binding) -> None:
        if name in self.names:
            self.target.bind(name, binding)


def _ast_global_rebindings(builder: _SummaryBuilder, tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        names: set[str] = set()
        pending: list[ast.AST] = list(node.body)
        while pending:
            child = pending.pop()
            if isinstance(child, ast.Global):
                names.update(child.names)
            elif not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                pending.extend(ast.iter_child_nodes(child))
        if names:
            _ast_block(_GlobalsOnly(builder, names), node.body)


def _ast_block(builder: _SummaryBuilder, statements: Iterable[ast.stmt]) -> None:
    for statement in statements:
        _ast_statement(builder, statement)


def _ast_statement(builder: _SummaryBuilder, statement: ast.stmt) -> None:
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.asname:
                builder.bind(alias.asname, Binding("module", alias.name))
            else:
                head = alias.name.split(".", 1)[0]
                builder.bind(head, Binding("module", head))
    elif isinstance(statement, ast.ImportFrom):
        source = absolute_module(
            builder.module, builder.is_package, statement.level, statement.module
        )
        for alias in statement.names:
            if alias.name == "*":
                if source is not None:
                    builder.star_imports.append(source)
                continue
            bound = alias.asname or alias.name
            if source is None:
                builder.bind(bound, Binding("other"))
            else:
                builder.bind(bound, Binding("import", source, alias.name))
    elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        builder.bind(
            statement.name,
            Binding(
                "def",
                params=_ast_params(statement.args),
                is_async=isinstance(statement, ast.AsyncFunctionDef),
            ),
        )
    elif isinstance(statement, ast.ClassDef):
        method_params, method_async = None, False
        for item in statement.body:
            if (
                isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name in FACTORY_METHODS
            ):
                method_params = _ast_params(item.args)
                method_async = isinstance(item, ast.AsyncFunctionDef)
        builder.bind(statement.name, Binding("class", params=method_params, is_async=method_async))
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name) and target.id == "__all__":
                builder.all_names = _ast_string_list(statement.value)
            dotted = _ast_dotted(statement.value)
            if isinstance(target, ast.Name) and dotted is not None and len(statement.targets) == 1:
                builder.bind(target.id, Binding("alias", name=dotted))
            else:
                for name in _ast_target_names(target):
                    builder.bind(name, Binding("other"))
    elif isinstance(statement, ast.AnnAssign):
        if isinstance(statement.target, ast.Name):
            dotted = None if statement.value is None else _ast_dotted(statement.value)
            if dotted is not None:
                builder.bind(statement.target.id, Binding("alias", name=dotted))
            elif statement.value is not None:
                builder.bind(statement.target.id, Binding("other"))
    elif isinstance(statement, ast.AugAssign):
        if isinstance(statement.target, ast.Name):
            if statement.target.id == "__all__" and builder.all_names is not None:
                extra = _ast_string_list(statement.value)
                builder.all_names = None if extra is None else [*builder.all_names, *extra]
            else:
                builder.bind(statement.target.id, Binding("other"))
    elif isinstance(statement, ast.For | ast.AsyncFor):
        for name in _ast_target_names(statement.target):
            builder.bind(name, Binding("other"))
        _ast_block(builder, statement.body)
        _ast_block(builder, statement.orelse)
    elif isinstance(statement, ast.While | ast.If):
        _ast_block(builder, statement.body)
        _ast_block(builder, statement.orelse)
    elif isinstance(statement, ast.With | ast.AsyncWith):
        for with_item in statement.items:
            if with_item.optional_vars is not None:
                for name in _ast_target_names(with_item.optional_vars):
                    builder.bind(name, Binding("other"))
        _ast_block(builder, statement.body)
    elif isinstance(statement, ast.Try | ast.TryStar):
        _ast_block(builder, statement.body)
        for handler in statement.handlers:
            if handler.name:
                builder.bind(handler.name, Binding("other"))
            _ast_block(builder, handler.body)
        _ast_block(builder, statement.orelse)
        _ast_block(builder, statement.finalbody)
    elif isinstance(statement, ast.Match):
        for case in statement.cases:
            _ast_block(builder, case.body)
    elif isinstance(statement, ast.Delete):
        for target in statement.targets:
            for name in _ast_target_names(target):
                builder.bind(name, Binding("other"))


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
    # engine.ModuleFile of every discovered file, by absolute path.
    files: dict[str, Any] = field(default_factory=dict)
    # {module: {name: why another module needs it}} (external_uses.py): apply
    # keeps such a name's import even when this module no longer uses it.
    external_uses: dict[str, dict[str, str]] = field(default_factory=dict)
    _targets_by_qualname: dict[str, Target] = field(default_factory=dict, repr=False)
    _exports: dict[tuple[str, str], tuple[Symbol, ...]] = field(default_factory=dict, repr=False)
    _in_progress: set[tuple[str, str]] = field(default_factory=set, repr=False)

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
        return state

    @property
    def legacy_names(self) -> frozenset[str]:
        return frozenset(target.qualname.rpartition(".")[2] for target in self.targets)

    def target(self, qualname: str) -> Target | None:
        return self._targets_by_qualname.get(qualname)

    def summary(self, module: str) -> ModuleSummary | None:
        return self.summaries.get(module)

    def export(self, module: str, name: str) -> tuple[Symbol, ...]:
        """What ``module.name`` refers to (several symbols when bound several ways)."""
        key = (module, name)
        cached = self._exports.get(key)
        if cached is not None:
            return cached
        if key in self._in_progress:  # an import cycle: it adds nothing new
            return ()
        self._in_progress.add(key)
        try:
            result = self._compute_export(module, name)
        finally:
            self._in_progress.discard(key)
        self._exports[key] = result
        return result

    def _compute_export(self, module: str, name: str) -> tuple[Symbol, ...]:
        qualname = f"{module}.{name}"
        summary = self.summaries.get(module)
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
            source = self.summaries.get(star_module)
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
        summary = self.summaries.get(module)
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
            scope.receiver = _method_receiver(node)
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
    builder = _SummaryBuilder(walker.module_name, walker.is_package)
    for name, bindings in walker.module_scope.bindings.items():
        for binding in bindings:
            builder.bind(name, binding)
    builder.star_imports = list(walker.module_scope.star_imports)
    builder.all_names = walker.all_names
    return builder.summary(classes)


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


def _method_receiver(node: cst.FunctionDef) -> str | None:
    decorators = {cst_dotted(decorator.decorator) for decorator in node.decorators}
    if decorators & {"staticmethod", "builtins.staticmethod"}:
        return None
    positional = [*node.params.posonly_params, *node.params.params]
    return positional[0].name.value if positional else None


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
