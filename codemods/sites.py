"""What resolution hands to the codemods: resolved references to legacy targets.

Contract between the resolver (``analysis/``), which decides
*what a name refers to*, and the per-rule codemods (``reuse_session.py``, ...),
which decide *whether and how a site is rewritten*. Audit and apply both go
through ``Codemod.classify``, so every ``rewrite`` finding is exactly what
``apply`` changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from ctxmigrate.codemods.model import Category

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.config import Config
    from ctxmigrate.codemods.rules.base import LegacyTarget, RuleDefinition

ScopeKind = Literal["async", "sync", "lambda", "module", "class"]
# call:    the target is called directly: f(...), mod.f(...), WebSocketContext.create_for_user(...)
# value:   the target is used as a value (passed, assigned, returned, decorated with)
# getattr: getattr(module, "name") / operator.attrgetter style dynamic lookup
# partial: functools.partial(target, ...)
# star:    the name may come from a star import that could not be resolved
Usage = Literal["call", "value", "getattr", "partial", "star"]


@dataclass(frozen=True)
class Target:
    """A legacy definition: what a rule declares about it, its qualified name, its parameters."""

    spec: LegacyTarget
    qualname: str
    # Parameter names in order, for mapping positional arguments to keywords;
    # None when the definition is not in the scanned tree (configured only).
    params: tuple[str, ...] | None
    # Defined with ``async def`` in the scanned tree: a call that is not
    # awaited makes a coroutine, not a context or a manager.
    is_async: bool = False

    @property
    def kind(self) -> str:
        return self.spec.kind


@dataclass(frozen=True)
class Scope:
    """Where a reference sits: the innermost function-like scope."""

    kind: ScopeKind
    # Dotted name inside the module ("AgentHandler.handle_message"), None at module level.
    function: str | None


@dataclass(frozen=True)
class Span:
    """1-based lines, 1-based character columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Reference:
    """One use of a legacy target in one module, resolved by name, never by text."""

    target: Target
    usage: Usage
    # The node of the whole site: the Call for calls (including
    # ``WebSocketContext.create_for_user(...)``), the Name/Attribute otherwise.
    # Identity matters: apply replaces exactly this node in ``module``.
    node: cst.CSTNode
    call: cst.Call | None
    # The callee as written, e.g. "deps.create_user_execution_context".
    callee_code: str
    scope: Scope
    span: Span
    in_test: bool
    # Rule ids named in a ``# ctxmigrate: ignore[...]`` comment on the site's
    # lines; a bare ``# ctxmigrate: ignore`` gives {"*"}.
    suppressed: frozenset[str]
    # Why resolution is not certain (the name is also bound to something else
    # in its scope; the star import that may provide it); classify_context
    # turns it into a review reason.
    uncertainty: str | None = None
    # The site is inside a generator expression (``(f(x) for x in xs)``):
    # an ``await`` there turns it into an async generator, which breaks every
    # consumer (``list(...)``, ``asyncio.gather(*...)``), so CTX001/CTX002
    # leave it for review. List/set/dict comprehensions are evaluated eagerly
    # and are fine.
    in_generator_expression: bool = False
    # The call is already the operand of ``await`` (``await factory(...)``,
    # ``await (factory(...))``): the legacy callee is async in this codebase.
    # CTX001/CTX002 reuse that ``await`` instead of adding a second one.
    awaited: bool = False
    # Why the name the codemod would import (``get_or_create_user_session``)
    # cannot be used at this site: a parameter, a local or another module-level
    # binding of that name is what the site would call.
    new_name_clash: str | None = None
    # Which of ``self``/``cls`` are the enclosing method's receiver at the site:
    # a ``self.``/``cls.`` target can only be written where its head is one.
    receivers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """A codemod's verdict on one reference."""

    category: Category
    message: str
    # The replacement as source text, for reports (JSON ``fix``, SARIF fixes).
    fix: str | None = None


class Codemod(Protocol):
    """One transformation (one rule file in ``codemods/rules/``)."""

    rule: RuleDefinition

    def classify(self, ref: Reference, config: Config) -> Decision: ...

    def rewrite(self, ref: Reference, config: Config) -> cst.BaseExpression:
        """The replacement for ``ref.node``; only called when classify said rewrite."""
        ...

    def required_import(self, config: Config) -> tuple[str, str] | None:
        """(module, name) the rewritten code needs, or None for an expression target."""
        ...
