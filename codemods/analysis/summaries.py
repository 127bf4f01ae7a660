"""Module summaries: what each module-level name of a file is bound to.

A summary holds a module's bindings (an import, a module, an alias of a dotted
name, a definition, or anything else), its star imports, ``__all__`` and the
classes the CTX104 census counts. Summaries come from Python's ``ast`` (about
ten times faster than LibCST) and are cached by content hash; the few files
using syntax newer than the running interpreter are summarised from their
LibCST tree instead (``scopes.summarize_cst``). This module does not import
libcst: a warm-cache run reads summaries without it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ctxmigrate.codemods.rules import legacy_targets
from ctxmigrate.codemods.rules.duplicate_context_class import CENSUS_CLASS_NAMES

BindingKind = Literal["import", "module", "alias", "def", "class", "other"]
# Class methods through which a legacy class's calls go (``WebSocketContext.create_for_user``).
FACTORY_METHODS = frozenset(t.method for t in legacy_targets() if t.method is not None)
SUMMARY_VERSION = 3


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


class _CachedBindings(Mapping[str, tuple[Binding, ...]]):
    """Bindings read from the cache, each decoded on first lookup.

    A warm run reads thousands of summaries and looks up a handful of names in
    each: building every ``Binding`` up front cost a sixth of such a run.
    """

    __slots__ = ("_decoded", "raw")

    def __init__(self, raw: dict[str, list[list[Any]]]) -> None:
        self.raw = raw
        self._decoded: dict[str, tuple[Binding, ...]] = {}

    def __getitem__(self, name: str) -> tuple[Binding, ...]:
        found = self._decoded.get(name)
        if found is None:
            found = tuple(
                Binding(kind, module, bound, None if params is None else tuple(params), is_async)
                for kind, module, bound, params, is_async in self.raw[name]
            )
            self._decoded[name] = found
        return found

    def __contains__(self, name: object) -> bool:
        return name in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ModuleSummary:
    module: str
    is_package: bool
    bindings: Mapping[str, tuple[Binding, ...]]
    star_imports: tuple[str, ...]
    all_names: tuple[str, ...] | None
    classes: tuple[ClassSite, ...]

    def to_json(self) -> dict[str, Any]:
        if isinstance(self.bindings, _CachedBindings):
            bindings: dict[str, Any] = self.bindings.raw
        else:
            bindings = {
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
            }
        return {
            "module": self.module,
            "is_package": self.is_package,
            "bindings": bindings,
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
            bindings=_cached_bindings(data["bindings"]),
            star_imports=tuple(data["star_imports"]),
            all_names=None if data["all_names"] is None else tuple(data["all_names"]),
            classes=tuple(
                ClassSite(name, line, column, end_line, end_column, frozenset(suppressed))
                for name, line, column, end_line, end_column, suppressed in data["classes"]
            ),
        )


def _cached_bindings(raw: object) -> _CachedBindings:
    """The bindings of a cached summary; ValueError when they are not of the stored shape."""
    if not isinstance(raw, dict) or not all(
        isinstance(entries, list) and all(isinstance(e, list) and len(e) == 5 for e in entries)
        for entries in raw.values()
    ):
        raise ValueError("cached bindings of the wrong shape")
    return _CachedBindings(raw)


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


class SummaryBuilder:
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
    builder = SummaryBuilder(module, is_package)
    _ast_block(builder, tree.body)
    classes: list[ClassSite] = []
    declares_globals = False
    # A walk of the whole tree costs as much as the parse: only when the text
    # says a census class or a ``global`` statement may be there (substrings
    # first: the regex over every file cost a tenth of the summaries).
    if not (
        ("global" in text or any(name in text for name in CENSUS_CLASS_NAMES))
        and _CENSUS_OR_GLOBAL.search(text)
    ):
        return builder.summary(classes)
    lines = text.splitlines()
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


class _GlobalsOnly(SummaryBuilder):
    """Forwards only the bindings of names a function declared ``global``."""

    def __init__(self, target: SummaryBuilder, names: set[str]) -> None:
        super().__init__(target.module, target.is_package)
        self.target = target
        self.names = names

    def bind(self, name: str, binding: Binding) -> None:
        if name in self.names:
            self.target.bind(name, binding)


def _ast_global_rebindings(builder: SummaryBuilder, tree: ast.Module) -> None:
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


def _ast_block(builder: SummaryBuilder, statements: Iterable[ast.stmt]) -> None:
    for statement in statements:
        _ast_statement(builder, statement)


def _ast_statement(builder: SummaryBuilder, statement: ast.stmt) -> None:
    handler = _STATEMENT_HANDLERS.get(type(statement))
    if handler is not None:
        handler(builder, statement)


def _bind_import(builder: SummaryBuilder, statement: ast.Import) -> None:
    for alias in statement.names:
        if alias.asname:
            builder.bind(alias.asname, Binding("module", alias.name))
        else:
            head = alias.name.split(".", 1)[0]
            builder.bind(head, Binding("module", head))


def _bind_import_from(builder: SummaryBuilder, statement: ast.ImportFrom) -> None:
    source = absolute_module(builder.module, builder.is_package, statement.level, statement.module)
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


def _bind_function(
    builder: SummaryBuilder, statement: ast.FunctionDef | ast.AsyncFunctionDef
) -> None:
    builder.bind(
        statement.name,
        Binding(
            "def",
            params=_ast_params(statement.args),
            is_async=isinstance(statement, ast.AsyncFunctionDef),
        ),
    )


def _bind_class(builder: SummaryBuilder, statement: ast.ClassDef) -> None:
    method_params, method_async = None, False
    for item in statement.body:
        if (
            isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            and item.name in FACTORY_METHODS
        ):
            method_params = _ast_params(item.args)
            method_async = isinstance(item, ast.AsyncFunctionDef)
    builder.bind(statement.name, Binding("class", params=method_params, is_async=method_async))


def _bind_assign(builder: SummaryBuilder, statement: ast.Assign) -> None:
    for target in statement.targets:
        if isinstance(target, ast.Name) and target.id == "__all__":
            builder.all_names = _ast_string_list(statement.value)
        dotted = _ast_dotted(statement.value)
        if isinstance(target, ast.Name) and dotted is not None and len(statement.targets) == 1:
            builder.bind(target.id, Binding("alias", name=dotted))
        else:
            for name in _ast_target_names(target):
                builder.bind(name, Binding("other"))


def _bind_ann_assign(builder: SummaryBuilder, statement: ast.AnnAssign) -> None:
    if isinstance(statement.target, ast.Name):
        dotted = None if statement.value is None else _ast_dotted(statement.value)
        if dotted is not None:
            builder.bind(statement.target.id, Binding("alias", name=dotted))
        elif statement.value is not None:
            builder.bind(statement.target.id, Binding("other"))


def _bind_aug_assign(builder: SummaryBuilder, statement: ast.AugAssign) -> None:
    if isinstance(statement.target, ast.Name):
        if statement.target.id == "__all__" and builder.all_names is not None:
            extra = _ast_string_list(statement.value)
            builder.all_names = None if extra is None else [*builder.all_names, *extra]
        else:
            builder.bind(statement.target.id, Binding("other"))


def _walk_for(builder: SummaryBuilder, statement: ast.For | ast.AsyncFor) -> None:
    for name in _ast_target_names(statement.target):
        builder.bind(name, Binding("other"))
    _ast_block(builder, statement.body)
    _ast_block(builder, statement.orelse)


def _walk_branches(builder: SummaryBuilder, statement: ast.While | ast.If) -> None:
    _ast_block(builder, statement.body)
    _ast_block(builder, statement.orelse)


def _walk_with(builder: SummaryBuilder, statement: ast.With | ast.AsyncWith) -> None:
    for with_item in statement.items:
        if with_item.optional_vars is not None:
            for name in _ast_target_names(with_item.optional_vars):
                builder.bind(name, Binding("other"))
    _ast_block(builder, statement.body)


def _walk_try(builder: SummaryBuilder, statement: ast.Try | ast.TryStar) -> None:
    _ast_block(builder, statement.body)
    for handler in statement.handlers:
        if handler.name:
            builder.bind(handler.name, Binding("other"))
        _ast_block(builder, handler.body)
    _ast_block(builder, statement.orelse)
    _ast_block(builder, statement.finalbody)


def _walk_match(builder: SummaryBuilder, statement: ast.Match) -> None:
    for case in statement.cases:
        _ast_block(builder, case.body)


def _bind_delete(builder: SummaryBuilder, statement: ast.Delete) -> None:
    for target in statement.targets:
        for name in _ast_target_names(target):
            builder.bind(name, Binding("other"))


# What each module-level statement binds (and which blocks it opens); other
# statements bind nothing at module level.
_STATEMENT_HANDLERS: dict[type[ast.stmt], Callable[[SummaryBuilder, Any], None]] = {
    ast.Import: _bind_import,
    ast.ImportFrom: _bind_import_from,
    ast.FunctionDef: _bind_function,
    ast.AsyncFunctionDef: _bind_function,
    ast.ClassDef: _bind_class,
    ast.Assign: _bind_assign,
    ast.AnnAssign: _bind_ann_assign,
    ast.AugAssign: _bind_aug_assign,
    ast.For: _walk_for,
    ast.AsyncFor: _walk_for,
    ast.While: _walk_branches,
    ast.If: _walk_branches,
    ast.With: _walk_with,
    ast.AsyncWith: _walk_with,
    ast.Try: _walk_try,
    ast.TryStar: _walk_try,
    ast.Match: _walk_match,
    ast.Delete: _bind_delete,
}
