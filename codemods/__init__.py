"""The analysis and the LibCST transformations behind ``ctxmigrate audit`` and ``apply``.

The registry is ``rules.REGISTERED_RULES`` (one file per rule in ``rules/``):
``RULES`` is that tuple (the fixable rules, then the audit-only ones),
``CODEMODS`` one codemod per fixable rule in the same order (the order
``ctxmigrate list`` shows them and a file's rewrites are planned). They are
built on first access (PEP 562) so that importing a submodule such as
``ctxmigrate.codemods.model`` does not load the rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctxmigrate.codemods.model import Rule
    from ctxmigrate.codemods.sites import Codemod

    CODEMODS: tuple[Codemod, ...]
    AUDIT_RULES: tuple[Rule, ...]
    RULES: tuple[Rule, ...]

__all__ = ["AUDIT_RULES", "CODEMODS", "RULES"]


def _registry() -> dict[str, Any]:
    from ctxmigrate.codemods.rules import REGISTERED_RULES

    codemods = tuple(rule.codemod() for rule in REGISTERED_RULES if rule.codemod is not None)
    return {
        "CODEMODS": codemods,
        "AUDIT_RULES": tuple(rule for rule in REGISTERED_RULES if not rule.fixable),
        "RULES": REGISTERED_RULES,
    }


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    registry = _registry()
    globals().update(registry)
    return registry[name]
