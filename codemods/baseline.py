"""Baselines: the findings a team already knows about, so CI fails only on new ones.

A baseline file (JSON, ``version`` 1) lists one entry per distinct site
fingerprint, with a ``count`` for identical sites. Entries are sorted and carry
no timestamps, line numbers or absolute paths, so the file diffs well in
review and only changes when sites appear or disappear.

The fingerprint of a finding (see docs/baseline.md) is a SHA-256 over

* the rule id and category (a ``keep`` site whose suppression comment is
  removed becomes a ``review`` site: that is new),
* the legacy symbol it refers to,
* the qualified name of the enclosing function (``None`` at module level), so a
  copy of a known call in another function is new,
* the source text of the site's region with every whitespace and comment
  between tokens removed, so reformatting the call keeps it known,

and the entry also records the file's path relative to the project root. Line
and column are deliberately not part of it: lines moving above a site, or edits
elsewhere in the file, keep it known. Identical sites (same file, same
fingerprint) are matched by count: with two known and three found, one is new.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tokenize
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxmigrate.codemods.model import CATEGORIES, CtxmigrateError, Finding

BASELINE_VERSION = 1
# Characters of the fingerprint kept in the file: 64 bits, ample for the
# sites of one file.
FINGERPRINT_LENGTH = 16

# Line breaks as LibCST counts lines (not str.splitlines, which also breaks
# at form feeds and other separators that Python source treats as spaces).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = re.compile(r"\s+")
_SKIPPED_TOKENS = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
)


class BaselineError(CtxmigrateError):
    """A baseline file that is missing, unreadable, corrupt or from a newer version."""


SiteKey = tuple[str, str]  # (project path, fingerprint)


@dataclass(frozen=True)
class BaselineEntry:
    path: str  # relative to the project root, "/" separators
    fingerprint: str
    rule: str
    category: str
    function: str | None
    count: int

    @property
    def key(self) -> SiteKey:
        return (self.path, self.fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rule": self.rule,
            "category": self.category,
            "function": self.function,
            "fingerprint": self.fingerprint,
            "count": self.count,
        }


@dataclass
class Baseline:
    entries: dict[SiteKey, BaselineEntry] = field(default_factory=dict)

    def total(self, categories: Iterable[str] = CATEGORIES) -> int:
        wanted = frozenset(categories)
        return sum(e.count for e in self.entries.values() if e.category in wanted)

    def to_text(self) -> str:
        ordered = sorted(
            self.entries.values(), key=lambda e: (e.path, e.rule, e.function or "", e.fingerprint)
        )
        document = {"version": BASELINE_VERSION, "entries": [e.to_json() for e in ordered]}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class KeyedFinding:
    finding: Finding
    key: SiteKey


@dataclass
class BaselineMatch:
    """The findings split by a baseline; ``fixed`` are entries (with the number
    of sites) that were in scope of the run and no longer found."""

    new: list[Finding]
    known: list[Finding]
    fixed: list[BaselineEntry]
    remaining: Baseline  # the baseline minus what was fixed (the ratchet)

    @property
    def fixed_count(self) -> int:
        return sum(entry.count for entry in self.fixed)


def normalized_code(text: str) -> str:
    """The tokens of ``text`` joined by one space, comments, line breaks and a
    trailing comma before the final ``)`` dropped; whitespace inside string
    literals is kept (it is a real change)."""
    try:
        tokens = [
            token.string
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type not in _SKIPPED_TOKENS
        ]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # A region that is not whole tokens (it never should be): whitespace runs.
        return _WHITESPACE.sub(" ", text).strip()
    if tokens[-2:] == [",", ")"]:
        # A magic trailing comma after the call's last argument (formatters add
        # it when they split the call over lines) changes nothing.
        del tokens[-2]
    return " ".join(tokens)


def region_text(lines: Sequence[str], finding: Finding) -> str:
    """The source of a finding's region (1-based lines, character columns,
    exclusive end column), or "" when the region is outside the text."""
    first, last = finding.line - 1, finding.end_line - 1
    if not (0 <= first <= last < len(lines)):
        return ""
    if first == last:
        return lines[first][finding.column - 1 : finding.end_column - 1]
    parts = [lines[first][finding.column - 1 :]]
    parts.extend(lines[first + 1 : last])
    parts.append(lines[last][: finding.end_column - 1])
    return "\n".join(parts)


def site_fingerprint(finding: Finding, code: str) -> str:
    hasher = hashlib.sha256()
    for part in (
        finding.rule,
        finding.category,
        finding.symbol,
        finding.function or "",
        normalized_code(code),
    ):
        data = part.encode("utf-8")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()[:FINGERPRINT_LENGTH]


def decode_source(data: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        text = data.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff")


def project_path(display: str, root: Path, cwd: Path) -> str:
    """A finding's path (relative to ``cwd``) relative to the project root."""
    absolute = os.path.normpath(os.path.join(cwd, display))
    relative = os.path.relpath(absolute, root)
    return relative.replace(os.sep, "/")


def key_findings(
    findings: Sequence[Finding], root: Path, cwd: Path | None = None
) -> list[KeyedFinding]:
    """Fingerprint each finding; each file with findings is read once."""
    base = (cwd or Path.cwd()).resolve()
    resolved_root = root.resolve()
    lines_by_path: dict[str, list[str]] = {}
    keyed: list[KeyedFinding] = []
    for finding in findings:
        lines = lines_by_path.get(finding.path)
        if lines is None:
            try:
                data = (base / finding.path).read_bytes()
            except OSError:
                data = b""
            lines = _LINE_BREAK.split(decode_source(data))
            lines_by_path[finding.path] = lines
        fingerprint = site_fingerprint(finding, region_text(lines, finding))
        keyed.append(
            KeyedFinding(finding, (project_path(finding.path, resolved_root, base), fingerprint))
        )
    return keyed


def baseline_from_findings(keyed: Sequence[KeyedFinding]) -> Baseline:
    counts = Counter(item.key for item in keyed)
    first: dict[SiteKey, Finding] = {}
    for item in keyed:
        first.setdefault(item.key, item.finding)
    return Baseline(
        {
            key: BaselineEntry(
                path=key[0],
                fingerprint=key[1],
                rule=finding.rule,
                category=finding.category,
                function=finding.function,
                count=counts[key],
            )
            for key, finding in first.items()
        }
    )


def match_baseline(
    baseline: Baseline, keyed: Sequence[KeyedFinding], in_scope: Mapping[str, bool] | None = None
) -> BaselineMatch:
    """Split ``keyed`` into new and known findings (identical sites by count, in
    source order: the first N of a file are the known ones).

    ``in_scope`` says, per project path, whether the run looked at that file;
    entries of files outside the run are neither fixed nor dropped (pre-commit
    audits only the staged files). None: every entry is in scope.
    """
    available = {key: entry.count for key, entry in baseline.entries.items()}
    new: list[Finding] = []
    known: list[Finding] = []
    for item in keyed:
        if available.get(item.key, 0) > 0:
            available[item.key] -= 1
            known.append(item.finding)
        else:
            new.append(item.finding)
    fixed: list[BaselineEntry] = []
    remaining = Baseline()
    for key, entry in baseline.entries.items():
        left = available[key]
        scoped = in_scope is None or in_scope.get(entry.path, False)
        if left and scoped:
            fixed.append(_with_count(entry, left))
            if entry.count - left:
                remaining.entries[key] = _with_count(entry, entry.count - left)
        else:
            remaining.entries[key] = entry
    fixed.sort(key=lambda entry: (entry.path, entry.rule, entry.function or ""))
    return BaselineMatch(new, known, fixed, remaining)


def _with_count(entry: BaselineEntry, count: int) -> BaselineEntry:
    return BaselineEntry(
        entry.path, entry.fingerprint, entry.rule, entry.category, entry.function, count
    )


def load_baseline(path: Path) -> Baseline:
    """Read a baseline; any problem is a BaselineError (exit 2), never an empty
    baseline that would silently let every site through."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: baseline file not found (create it with --write-baseline)"
        ) from None
    except OSError as error:
        raise BaselineError(f"{path}: cannot read baseline: {error.strerror}") from error
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BaselineError(f"{path}: corrupt baseline, not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise BaselineError(f"{path}: corrupt baseline: the top level must be an object")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BaselineError(f"{path}: corrupt baseline: 'version' must be an integer")
    if version > BASELINE_VERSION:
        raise BaselineError(
            f"{path}: baseline version {version} is newer than this ctxmigrate supports "
            f"({BASELINE_VERSION}); upgrade ctxmigrate"
        )
    if version < 1:
        raise BaselineError(f"{path}: corrupt baseline: unknown version {version}")
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        raise BaselineError(f"{path}: corrupt baseline: 'entries' must be a list")
    baseline = Baseline()
    for position, raw in enumerate(raw_entries):
        entry = _entry(raw)
        if entry is None:
            raise BaselineError(
                f"{path}: corrupt baseline: entry {position + 1} must have string 'path', "
                "'rule', 'category', 'fingerprint', 'function' (string or null) and a "
                "positive integer 'count'"
            )
        if entry.key in baseline.entries:
            raise BaselineError(
                f"{path}: corrupt baseline: entry {position + 1} repeats "
                f"{entry.path} {entry.fingerprint} (use 'count')"
            )
        baseline.entries[entry.key] = entry
    return baseline


def _entry(raw: object) -> BaselineEntry | None:
    if not isinstance(raw, dict):
        return None
    strings = [raw.get(name) for name in ("path", "fingerprint", "rule", "category")]
    function = raw.get("function")
    count = raw.get("count")
    if not all(isinstance(value, str) and value for value in strings):
        return None
    if function is not None and not isinstance(function, str):
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return None
    path, fingerprint, rule, category = (str(value) for value in strings)
    return BaselineEntry(path, fingerprint, rule, category, function, count)


def scope_of(baseline: Baseline, run_paths: Sequence[Path], root: Path) -> dict[str, bool]:
    """Per entry path: did a run over ``run_paths`` look at that file? A file
    that was deleted counts as looked at when its directory was scanned."""
    scanned = [Path(os.path.abspath(path)) for path in run_paths]
    resolved_root = Path(os.path.abspath(root))
    scope: dict[str, bool] = {}
    for entry in baseline.entries.values():
        if entry.path not in scope:
            absolute = Path(os.path.normpath(resolved_root / entry.path))
            scope[entry.path] = any(
                absolute == path or path in absolute.parents for path in scanned
            )
    return scope
