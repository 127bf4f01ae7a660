"""Which rules and codemods exist (the registry in ``ctxmigrate.codemods``)."""

from __future__ import annotations

from ctxmigrate.codemods.adapt_websocket_context import AdaptWebSocketContextCodemod
from ctxmigrate.codemods.audit_rules import AUDIT_RULES
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.reuse_session import ReuseSessionCodemod
from ctxmigrate.codemods.reuse_websocket_manager import ReuseWebSocketManagerCodemod
from ctxmigrate.codemods.sites import Codemod


def registered_codemods() -> tuple[Codemod, ...]:
    """The codemods in their registry order (``ctxmigrate.codemods.CODEMODS``)."""
    return (ReuseSessionCodemod(), AdaptWebSocketContextCodemod(), ReuseWebSocketManagerCodemod())


def all_rules() -> tuple[Rule, ...]:
    """Every rule users can name, fixable ones first (``ctxmigrate.codemods.RULES``)."""
    return (*(codemod.rule for codemod in registered_codemods()), *AUDIT_RULES)
