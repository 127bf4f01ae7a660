"""The data the engine hands to the CLI: rules, findings, reports.

This module is the contract between ``ctxmigrate.codemods`` (the engine) and
``ctxmigrate.cli`` (rendering). It imports nothing heavy so the CLI can build
``ctxmigrate list`` without parsing anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Category = Literal["rewrite", "review", "keep"]
CATEGORIES: tuple[Category, ...] = ("rewrite", "review", "keep")

JSON_VERSION = 1


class CtxmigrateError(Exception):
    """Base class of every error the CLI maps to exit code 2 (usage or configuration)."""


class ConfigError(CtxmigrateError):
    """The configuration (pyproject.toml / ctxmigrate.yaml / options) is invalid."""


@dataclass(frozen=True)
class Rule:
    """A rule users can name: ``--select CTX001`` or ``--select reuse-session``.

    ``fixable`` rules have a codemod; the others are audit-only findings.
    """

    id: str
    name: str
    description: str
    fixable: bool


@dataclass(frozen=True)
class Finding:
    """One site, as the JSON contract (version 1) describes it.

    ``path`` is relative to the current directory with ``/`` separators; lines
    and columns are 1-based; columns count characters, not bytes; ``end_*`` is
    exclusive-column like LSP/SARIF (the character after the last one).
    """

    rule: str
    category: Category
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    symbol: str
    function: str | None
    message: str
    fix: str | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.rule)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileError:
    """A file that could not be (fully) analysed; the rest of the run goes on."""

    path: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditReport:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files_scanned: int = 0

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {category: 0 for category in CATEGORIES}
        for finding in self.findings:
            counts[finding.category] += 1
        return {"files_scanned": self.files_scanned, **counts}

    def to_json(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "findings": [f.to_json() for f in sorted(self.findings, key=Finding.sort_key)],
            "errors": [e.to_json() for e in sorted(self.errors, key=lambda e: e.path)],
            "summary": self.summary(),
        }
