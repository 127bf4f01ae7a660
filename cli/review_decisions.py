"""``apply --interactive``: per-site approvals, stored so a review can be resumed.

A decision is keyed by the site's *content*, not its position: the file's path
(relative to the project root), the rule, the enclosing function, the SHA-256
of the site's source text and its occurrence among identical sites of that
function. Writing the approved sites of a file shifts lines and columns of the
sites the reviewer declined; keyed this way, those declines still match and are
not asked again. Applied sites are forgotten once written (they no longer
exist), and an edited site's text no longer matches, so it is asked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ctxmigrate.codemods.model import CtxmigrateError, Finding
from ctxmigrate.codemods.rewrite.apply_plan import AcceptKey, finding_key
from ctxmigrate.codemods.rewrite.writing import atomic_write_bytes, source_encoding

DECISIONS_FILE = ".ctxmigrate-decisions.json"
DECISIONS_VERSION = 1

Answer = Literal["yes", "no"]
# (path, line, column, rule): how the engine's ``accept`` names a finding.
FindingKey = AcceptKey

# Python's own line breaks (LibCST positions count lines the same way).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, order=True)
class SiteKey:
    path: str
    rule: str
    function: str
    site_sha256: str
    occurrence: int


def site_text(source: str, finding: Finding) -> str:
    """The characters a finding spans (1-based lines and columns, end exclusive)."""
    lines = _LINE_BREAK.split(source)
    if finding.line > len(lines) or finding.end_line > len(lines):
        return ""
    if finding.line == finding.end_line:
        return lines[finding.line - 1][finding.column - 1 : finding.end_column - 1]
    parts = [lines[finding.line - 1][finding.column - 1 :]]
    parts.extend(lines[finding.line : finding.end_line - 1])
    parts.append(lines[finding.end_line - 1][: finding.end_column - 1])
    return "\n".join(parts)


def read_source_text(path: Path) -> str:
    return decode_source(path.read_bytes())


def decode_source(data: bytes) -> str:
    """Source bytes as text, as Python reads them (cookie, BOM); never fails."""
    encoding = source_encoding(data)
    try:
        return data.decode(encoding, "replace").removeprefix("\ufeff")
    except (LookupError, UnicodeError):  # "# coding: hex", "# coding: undefined"
        return data.decode("utf-8", "replace").removeprefix("\ufeff")


def site_keys(
    findings: Sequence[Finding], root: Path, texts: Mapping[str, str] | None = None
) -> dict[FindingKey, SiteKey]:
    """A content-anchored key for each finding, in ``texts`` (path to source
    text) or else in the files on disk."""
    keys: dict[FindingKey, SiteKey] = {}
    sources: dict[str, str] = dict(texts or {})
    seen: dict[tuple[str, str, str, str], int] = {}
    for finding in sorted(findings, key=Finding.sort_key):
        if finding.path not in sources:
            try:
                sources[finding.path] = read_source_text(Path(finding.path))
            except OSError:
                sources[finding.path] = ""
        digest = hashlib.sha256(site_text(sources[finding.path], finding).encode()).hexdigest()
        relative = Path(os.path.relpath(Path(finding.path).resolve(), root.resolve())).as_posix()
        identity = (relative, finding.rule, finding.function or "", digest)
        occurrence = seen.get(identity, 0)
        seen[identity] = occurrence + 1
        keys[finding_key(finding)] = SiteKey(*identity, occurrence)
    return keys


class DecisionStore:
    """The reviewer's answers, saved after every answer (an interrupt loses nothing)."""

    def __init__(self, path: Path, answers: Mapping[SiteKey, Answer] | None = None) -> None:
        self.path = path
        self._answers: dict[SiteKey, Answer] = dict(answers or {})

    @classmethod
    def load(cls, path: Path) -> DecisionStore:
        if not path.exists():
            return cls(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("version") != DECISIONS_VERSION:
                raise ValueError(f"unsupported version {document.get('version')!r}")
            answers: dict[SiteKey, Answer] = {}
            for entry in document["decisions"]:
                answer = entry["decision"]
                if answer not in ("yes", "no"):
                    raise ValueError(f"decision must be 'yes' or 'no', got {answer!r}")
                key = SiteKey(
                    path=str(entry["path"]),
                    rule=str(entry["rule"]),
                    function=str(entry["function"]),
                    site_sha256=str(entry["site_sha256"]),
                    occurrence=int(entry["occurrence"]),
                )
                answers[key] = answer
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise CtxmigrateError(
                f"{path}: cannot read interactive decisions ({error}); fix or delete the file"
            ) from error
        return cls(path, answers)

    def answer(self, key: SiteKey) -> Answer | None:
        return self._answers.get(key)

    def record(self, key: SiteKey, answer: Answer) -> None:
        self._answers[key] = answer
        self.save()

    def forget(self, keys: Iterable[SiteKey]) -> None:
        removed = [key for key in keys if self._answers.pop(key, None) is not None]
        if removed:
            self.save()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": DECISIONS_VERSION,
            "decisions": [
                {
                    "path": key.path,
                    "rule": key.rule,
                    "function": key.function,
                    "site_sha256": key.site_sha256,
                    "occurrence": key.occurrence,
                    "decision": answer,
                }
                for key, answer in sorted(self._answers.items())
            ],
        }

    def save(self) -> None:
        text = json.dumps(self.to_json(), indent=2) + "\n"
        try:
            atomic_write_bytes(self.path, text.encode("utf-8"))
        except OSError as error:
            raise CtxmigrateError(f"cannot write {self.path}: {error.strerror}") from error
