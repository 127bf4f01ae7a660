"""Configured target strings: which are expressions, and what a rewrite imports for one.

Plain strings, no LibCST: the audit asks what the rewrites import (pruning
keeps code naming it) before anything is parsed.
"""

from __future__ import annotations

# A configured target whose first dotted segment is one of these is an
# expression evaluated at the call site (no import), e.g.
# ``self.session_manager.get_or_create_user_session``.
EXPRESSION_TARGET_ROOTS = frozenset({"self", "cls"})


def is_expression_target(target: str) -> bool:
    return target.split(".", 1)[0] in EXPRESSION_TARGET_ROOTS


def target_import(target: str) -> tuple[str, str] | None:
    """``("a.b", "name")`` for ``a.b.name``; None for an expression target."""
    if is_expression_target(target):
        return None
    module, _, name = target.rpartition(".")
    if not module:
        # A bare name: the application already provides it (a builtin-like
        # helper or a name the module defines); nothing to import.
        return None
    return module, name
