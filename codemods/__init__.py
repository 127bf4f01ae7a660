"""The analysis and the LibCST transformations behind ``ctxmigrate audit`` and ``apply``.

The registry is explicit and ordered: ``CODEMODS`` (one per fixable rule, in the
order ``ctxmigrate list`` shows them and a file's rewrites are planned) and
``RULES`` (the fixable rules, then the audit-only ones). It is built on first
access (PEP 562) because the codemods import libcst, and a run whose text
pre-filter rules out every file should not pay for importing it.
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
    from ctxmigrate.codemods.adapt_websocket_context import AdaptWebSocketContextCodemod
    from ctxmigrate.codemods.audit_rules import AUDIT_RULES
    from ctxmigrate.codemods.evidence import RUNTIME_ONLY_SITE
    from ctxmigrate.codemods.reuse_session import ReuseSessionCodemod
    from ctxmigrate.codemods.reuse_websocket_manager import ReuseWebSocketManagerCodemod

    codemods: tuple[Codemod, ...] = (
        ReuseSessionCodemod(),
        AdaptWebSocketContextCodemod(),
        ReuseWebSocketManagerCodemod(),
    )
    return {
        "CODEMODS": codemods,
        "AUDIT_RULES": (*AUDIT_RULES, RUNTIME_ONLY_SITE),
        "RULES": (*(codemod.rule for codemod in codemods), *AUDIT_RULES, RUNTIME_ONLY_SITE),
    }


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    registry = _registry()
    globals().update(registry)
    return registry[name]
