"""What a rule declares: one object per rule, read by every part of the engine.

Configuration (its keys), discovery (the legacy definitions to look for),
classification (test-code reasons, whether ``await`` is needed), planning,
suppression and ``ctxmigrate list`` all read these declarations; nothing else
in the engine is keyed by a target kind. This module imports nothing heavy:
configuration loading reads the registry before any file is parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ctxmigrate.codemods.model import Category, Rule

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ctxmigrate.codemods.analysis.references import ReferenceFinder
    from ctxmigrate.codemods.audit_sites import AuditSite
    from ctxmigrate.codemods.sites import Codemod


@dataclass(frozen=True)
class LegacyTarget:
    """A kind of legacy definition a fixable rule looks for.

    Several rules may share one target (a rule beside CTX001 for the same
    factory): each classifies the target's references on its own.
    """

    kind: str
    # The module-level name discovered in the scanned tree when none is configured.
    default_name: str
    definition: Literal["def", "class"]
    # The parameters calls are mapped by when the definition is not in the tree.
    signature: tuple[str, ...]
    # The configuration key listing qualified names of such definitions.
    config_key: str
    # For a class: the factory method its legacy calls go through
    # (``WebSocketContext.create_for_user``); None for a function.
    method: str | None = None
    # Its calls pass thread/run ids (CTX101 checks where they come from).
    carries_ids: bool = True


@dataclass(frozen=True)
class Example:
    """A Fixit-style example: ``modules`` (path -> source) analysed as one project.

    ``path`` is the module the example is about. ``category`` is what the
    rule reports there (None: the rule reports nothing); ``expected`` is the
    module after ``apply`` for a ``rewrite`` example.
    """

    modules: Mapping[str, str]
    path: str
    category: Category | None
    expected: str | None = None


@dataclass(frozen=True)
class RuleDefinition(Rule):
    """A rule and everything the engine needs to know about it.

    ``Rule`` (id, name, description, fixable) is what reports show; the rest
    is what configuration, discovery, classification and planning read.
    """

    # Fixable rules: the legacy definitions whose references the codemod judges.
    target: LegacyTarget | None = None
    # The configuration key of the dotted callee the rewrite calls
    # ("session-target"); its default is the ``Config`` field of that name, or
    # ``new_target_default`` for a rule whose key has no field.
    new_target_key: str | None = None
    new_target_default: str | None = None
    # Why a site in test code stays as it is (``keep``).
    test_reason: str | None = None
    # The rewritten call is awaited: impossible in sync code, lambdas, module level.
    awaits_new_call: bool = True
    # The rewrite passes the legacy callee on (``factory=create_websocket_manager``),
    # so its import stays in use.
    keeps_callee: bool = False
    # The codemod (imported when called: it needs libcst).
    codemod: Callable[[], Codemod] | None = field(default=None, compare=False)
    # Audit-only rules: the sites of one module, from the resolving pass's notes.
    find_sites: Callable[[ReferenceFinder], Iterable[AuditSite]] | None = field(
        default=None, compare=False
    )
    # Its findings come from runtime evidence (``audit --evidence``), not from
    # the source text: no examples to run on a source tree.
    from_runtime_evidence: bool = False
    # Examples where the rule must not report a rewrite, and where it must report one.
    valid: tuple[Example, ...] = field(default=(), compare=False, repr=False)
    invalid: tuple[Example, ...] = field(default=(), compare=False, repr=False)

    def config_keys(self) -> tuple[str, ...]:
        """The configuration keys this rule declares."""
        keys = [] if self.target is None else [self.target.config_key]
        if self.new_target_key is not None:
            keys.append(self.new_target_key)
        return tuple(keys)
