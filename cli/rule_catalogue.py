"""Which rules and codemods exist: the registry in ``ctxmigrate.codemods``."""

from __future__ import annotations

from ctxmigrate.codemods import CODEMODS, RULES
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.sites import Codemod


def registered_codemods() -> tuple[Codemod, ...]:
    """The codemods in their registry order."""
    return CODEMODS


def all_rules() -> tuple[Rule, ...]:
    """Every rule users can name, fixable ones first."""
    return RULES
