"""The classify/rewrite skeleton that CTX001-CTX003 share.

Every codemod rewrites one legacy call into a call of a configured target, and
decides the same way: where the site is (``classify_context``), whether the
call can be awaited there, whether its arguments map onto the legacy signature
and onto what the new API accepts, and whether a ``self.``/``cls.`` target can
be written at the site. Only the rule-specific parts differ, and each codemod
file states them: its legacy signature and target, which call shape it accepts,
which mapped arguments it can carry over, the message of a rewrite, and how
the new call is built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ctxmigrate.codemods.classify import classify_context
from ctxmigrate.codemods.sites import Decision, Reference

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.arguments import ArgumentMapping
    from ctxmigrate.codemods.config import Config
    from ctxmigrate.codemods.rules.base import LegacyTarget, RuleDefinition

# The helpers below build LibCST nodes; they are imported when a site is judged,
# so that the registry (read by configuration loading) stays free of libcst.


class LegacyCallCodemod(ABC):
    """A codemod that replaces one legacy call with a call of a configured target.

    Subclasses set ``rule`` (whose ``target``, ``new_target_key`` and
    ``awaits_new_call`` this class reads) and the class attributes below, and
    implement the abstract methods.
    """

    rule: RuleDefinition
    # Why a site whose node is not the accepted call shape cannot be rewritten.
    not_a_legacy_call_reason: str
    # The call shape ``rewrite`` accepts, for its error when misused.
    rewritable_calls: str = "calls"

    @property
    def target(self) -> LegacyTarget:
        assert self.rule.target is not None, f"{self.rule.id} declares no legacy target"
        return self.rule.target

    def configured_target(self, config: Config) -> str:
        """The dotted target (or ``self.``/``cls.`` expression) the call becomes."""
        assert self.rule.new_target_key is not None
        return config.new_target(self.rule)

    @abstractmethod
    def rewrite_reason(self, callee: str) -> str:
        """The message of a ``rewrite`` finding; ``callee`` is the new callee as written."""

    @abstractmethod
    def mapping_problem(self, mapping: ArgumentMapping, signature: tuple[str, ...]) -> str | None:
        """Why the mapped arguments cannot be carried over to the new call, or None."""

    @abstractmethod
    def new_call(
        self, call: cst.Call, mapping: ArgumentMapping, config: Config
    ) -> cst.BaseExpression:
        """The replacement for ``call``, whose arguments passed ``mapping_problem``."""

    def unawaited_async_reason(self, callee: str, new_callee: str) -> str:
        """Why a call of an ``async def`` legacy callee without ``await`` stays as it is."""
        return (
            f"not awaited: {callee} is an async def, so this call makes a coroutine "
            f"that the code awaits later (or never); {new_callee}(...) is awaited here "
            "and would hand that code a context instead"
        )

    def legacy_call(self, ref: Reference) -> cst.Call | None:
        """The call this codemod can rewrite at the site, or None."""
        return ref.call

    def classify(self, ref: Reference, config: Config) -> Decision:
        from ctxmigrate.codemods.arguments import (
            GENERATOR_EXPRESSION_REASON,
            callee_label,
            code_for,
            expression_target_problem,
        )

        context_decision = classify_context(ref, self.rule)
        if context_decision is not None:
            return context_decision
        if self.rule.awaits_new_call and ref.in_generator_expression:
            return Decision("review", GENERATOR_EXPRESSION_REASON)
        target = self.configured_target(config)
        if ref.new_name_clash is not None:
            return Decision("review", ref.new_name_clash)
        if ref.awaited and not self.rule.awaits_new_call:
            return Decision(
                "review",
                f"awaited: {ref.callee_code} is async here, and "
                f"{callee_label(target)} calls its factory synchronously",
            )
        if ref.target.is_async and not ref.awaited:
            return Decision(
                "review", self.unawaited_async_reason(ref.callee_code, callee_label(target))
            )
        problem = self._argument_problem(ref) or expression_target_problem(target, ref.receivers)
        if problem is not None:
            return Decision("review", problem)
        fix = code_for(self.rewrite(ref, config))
        return Decision("rewrite", self.rewrite_reason(callee_label(target)), fix=fix)

    def rewrite(self, ref: Reference, config: Config) -> cst.BaseExpression:
        import libcst as cst

        from ctxmigrate.codemods.arguments import call_signature, map_arguments

        call = self.legacy_call(ref)
        if call is None:
            raise ValueError(f"{self.rule.id} rewrites {self.rewritable_calls} only")
        mapping = map_arguments(call, call_signature(ref.target.params, self.target.signature))
        if mapping.problem is not None:
            raise ValueError(mapping.problem)
        new = self.new_call(call, mapping, config)
        if ref.awaited and isinstance(new, cst.Await):
            # ``await legacy(...)``: the existing ``await`` now awaits the new
            # call; the call's own parentheses stay on it (``await(f())``).
            return new.expression.with_changes(lpar=new.lpar, rpar=new.rpar)
        return new

    def required_import(self, config: Config) -> tuple[str, str] | None:
        from ctxmigrate.codemods.targets import target_import

        return target_import(self.configured_target(config))

    def _argument_problem(self, ref: Reference) -> str | None:
        from ctxmigrate.codemods.arguments import call_signature, map_arguments

        call = self.legacy_call(ref)
        if call is None:
            return self.not_a_legacy_call_reason
        signature = call_signature(ref.target.params, self.target.signature)
        mapping = map_arguments(call, signature)
        if mapping.problem is not None:
            return mapping.problem
        return self.mapping_problem(mapping, signature)


class AwaitedKeywordCallCodemod(LegacyCallCodemod):
    """A codemod whose new call is ``await <target>(name=value, ...)`` (CTX001, CTX002).

    Subclasses name what the new API accepts and requires; the argument check
    and the new call are the same for every such rule.
    """

    # The keywords the new callee accepts, and the ones a call must pass.
    accepted_keywords: frozenset[str]
    required_keywords: tuple[str, ...]
    # The new callee and what the required keywords identify, for the messages.
    new_callee_name: str
    identifies: str

    def mapping_problem(self, mapping: ArgumentMapping, signature: tuple[str, ...]) -> str | None:
        passed = mapping.names()
        unsupported = sorted(passed - self.accepted_keywords)
        if unsupported:
            return f"passes {', '.join(unsupported)}, which {self.new_callee_name} does not accept"
        missing = [name for name in self.required_keywords if name not in passed]
        if missing:
            names = " or ".join(missing)
            return f"does not pass {names}: the {self.identifies} cannot be identified"
        return None

    def new_call(
        self, call: cst.Call, mapping: ArgumentMapping, config: Config
    ) -> cst.BaseExpression:
        from ctxmigrate.codemods.arguments import awaited_keyword_call, target_expression

        target = target_expression(self.configured_target(config))
        return awaited_keyword_call(call, target, mapping)
