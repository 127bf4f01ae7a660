"""Content-hash cache of per-file analysis results under ``.ctxmigrate_cache/``.

Seven kinds of entries, all JSON (never pickle: a cache directory committed to
a repository must not be able to run code when someone audits it):

* ``summary``: a candidate file's module summary, keyed by its bytes, its
  module name and the engine version (every key also holds ctxmigrate's
  version, the interpreter's and LibCST's release: ``environment_digest``);
* ``outcome``: a file's findings or error, keyed by its bytes, where it sits
  (display path, module, test or not), the configuration, the selected rules,
  and a digest of the project index: a change in any summarised module that
  could alter resolution invalidates every outcome, never a summary. Modules
  summarised only when asked about (``engine._split_lazy``) are not in that
  digest: an outcome lists those its analysis consulted, with a digest of
  each one's bytes, and is reused only while they match;
* ``hints``: one entry per run, which candidates are summarised only when
  asked about and their site hints from the text (``engine._split_lazy``),
  keyed by the hint names, and each file by its bytes and module;
* ``aliases``: one entry per run, the aliases each file the pre-filter
  searched binds, by a digest of its bytes and the names asked about
  (``engine._AliasMemo``);
* ``names``: the aliases of the legacy names the last run learned, so the
  next run's first ``git grep`` looks for them too (``TextPrefilter``); a
  stale list costs a ``git grep``, never a finding;
* ``run``: a whole run's report, keyed by what git says of the checkouts
  (``tree_state``), the configuration, the paths and the current directory;
* ``changes``: the files the last run's ``git status`` named, each by name
  and a digest of its bytes, so the next run forks the analysis server only
  for a file changed since (``engine._LastReport``); a stale list costs 12 ms
  or the overlap of LibCST's import, never a finding.

A corrupt or unreadable entry, or one without the expected shape (a hand-edited
``{"error": null}``), counts as a miss; a cache that cannot be written
(read-only checkout) is silently skipped: caching is an optimisation only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from ctxmigrate import __version__
from ctxmigrate.codemods.model import AuditReport, FileError, Finding

CACHE_DIRECTORY = ".ctxmigrate_cache"
# Bump when analysis results change for the same input.
ENGINE_VERSION = "1"


def environment_digest(python_version: str, libcst_origin: str | None) -> str:
    """What decides a result besides ctxmigrate and its input: the interpreter
    (which syntax ``ast`` reads, the wording of its syntax errors) and the
    LibCST release (what it parses; a cached "cannot parse" must not outlive
    an upgrade that reads the file). The release is read from the
    ``_version.py`` beside ``libcst/__init__.py`` (``libcst_origin``), as
    importing LibCST costs 0.1 s and ``importlib.metadata`` 0.04 s; without
    one, from the size and modification time of ``__init__.py`` itself.
    """
    parts = [python_version.encode(), b"\0"]
    if libcst_origin is not None:
        try:
            with open(os.path.join(os.path.dirname(libcst_origin), "_version.py"), "rb") as file:
                parts.append(file.read())
        except OSError:
            try:
                status = os.stat(libcst_origin)
                parts.append(f"{status.st_size} {status.st_mtime_ns}".encode())
            except OSError:
                parts.append(b"unreadable")
    return hashlib.sha256(b"".join(parts)).hexdigest()


@functools.cache
def _environment() -> str:
    spec = importlib.util.find_spec("libcst")  # no import: only where it would come from
    return environment_digest(sys.version, None if spec is None else spec.origin)


def digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in (__version__, ENGINE_VERSION, _environment(), *parts):
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


class AnalysisCache:
    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.directory = root / CACHE_DIRECTORY
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self._prepared = False

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / key[:2] / f"{key}.json"

    def _load(self, kind: str, key: str) -> Any:
        if not self.enabled:
            return None
        try:
            with open(self._path(kind, key), encoding="utf-8") as handle:
                value = json.load(handle)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def _store(self, kind: str, key: str, value: Any) -> None:
        if not self.enabled:
            return
        path = self._path(kind, key)
        try:
            if not self._prepared:
                self.directory.mkdir(parents=True, exist_ok=True)
                ignore = self.directory / ".gitignore"
                if not ignore.exists():
                    ignore.write_text("# created by ctxmigrate\n*\n", encoding="utf-8")
                self._prepared = True
            path.parent.mkdir(parents=True, exist_ok=True)
            import tempfile  # only when writing: a warm run reads

            descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(value, handle)
            os.replace(temporary, path)
        except OSError:
            self.enabled = False

    def _reject(self, value: Any) -> None:
        """A loaded entry without the expected shape: a miss after all."""
        if value is not None:
            self.hits -= 1
            self.misses += 1

    def summary(self, key: str) -> dict[str, Any] | None:
        """``{"error": message}`` or ``{"summary": {...}, "hints": [...] | None}``
        (the module summary and its site hints); anything else is a miss."""
        value = self._load("summary", key)
        if isinstance(value, dict) and (
            (len(value) == 1 and isinstance(value.get("error"), str))
            or (
                value.keys() == {"summary", "hints"}
                and isinstance(value["summary"], dict)
                and (value["hints"] is None or isinstance(value["hints"], list))
            )
        ):
            return value
        self._reject(value)
        return None

    def store_summary(self, key: str, value: dict[str, Any]) -> None:
        self._store("summary", key, value)

    def learned_names(self, key: str) -> list[str]:
        """The aliases of legacy names the last run learned (``names`` entry), or []."""
        value = self._load("names", key)
        if isinstance(value, list) and all(
            isinstance(name, str) and name.isidentifier() for name in value
        ):
            return value
        self._reject(value)
        return []

    def store_learned_names(self, key: str, names: list[str]) -> None:
        self._store("names", key, names)

    def changes_seen(self, key: str) -> frozenset[str]:
        """The changed files (name and digest, in hex) the last run's ``git
        status`` named (``changes`` entry), or an empty set."""
        value = self._load("changes", key)
        if isinstance(value, list) and all(isinstance(entry, str) for entry in value):
            return frozenset(value)
        self._reject(value)
        return frozenset()

    def store_changes_seen(self, key: str, entries: list[str]) -> None:
        self._store("changes", key, entries)

    def text_hints(self, key: str) -> dict[str, Any]:
        """The text-hint decisions of the last run's candidates (``hints`` entry):
        ``{file key: None (summarise it now) | site hints as JSON}``; {} on a miss."""
        return self._load_mapping("hints", key)

    def store_text_hints(self, key: str, value: dict[str, Any]) -> None:
        self._store("hints", key, value)

    def file_aliases(self, key: str) -> dict[str, Any]:
        """The aliases the last run learned in each file (``aliases`` entry):
        ``{file digest and names asked: [alias, ...]}``; {} on a miss."""
        return self._load_mapping("aliases", key)

    def _load_mapping(self, kind: str, key: str) -> dict[str, Any]:
        """A one-per-run entry holding a JSON object; {} on a miss or anything else."""
        value = self._load(kind, key)
        if isinstance(value, dict):
            return value
        self._reject(value)
        return {}

    def store_file_aliases(self, key: str, value: dict[str, Any]) -> None:
        self._store("aliases", key, value)

    def outcome(self, key: str) -> tuple[list[Finding], FileError | None, dict[str, str]] | None:
        """(findings, error, {lazy module consulted: digest of its bytes})."""
        value = self._load("outcome", key)
        try:
            findings = [_finding(item) for item in value["findings"]]
            error = None if value["error"] is None else _file_error(value["error"])
            depends = value["depends_on"]
            if not isinstance(depends, dict) or not all(
                isinstance(item, str) for item in (*depends, *depends.values())
            ):
                raise ValueError("bad depends_on")
        except (TypeError, KeyError, ValueError):
            self._reject(value)
            return None
        return findings, error, depends

    def store_outcome(
        self,
        key: str,
        findings: list[Finding],
        error: FileError | None,
        depends_on: dict[str, str],
    ) -> None:
        self._store(
            "outcome",
            key,
            {
                "findings": [finding.to_json() for finding in findings],
                "error": None if error is None else error.to_json(),
                "depends_on": depends_on,
            },
        )

    def has_outcomes(self) -> bool:
        """Whether a run stored a file's findings here (else every file is analysed)."""
        return self.enabled and (self.directory / "outcome").is_dir()

    def has_run_reports(self) -> bool:
        """Whether a run stored its report here (else ``run_report`` can only miss)."""
        return self.enabled and (self.directory / "run").is_dir()

    def run_report(self, key: str) -> AuditReport | None:
        """A whole run's report (``run`` entry, see ``tree_state``), or None."""
        value = self._load("run", key)
        try:
            if not isinstance(value, dict) or set(value) != {"findings", "errors", "files_scanned"}:
                raise ValueError("not a report")
            scanned = value["files_scanned"]
            if not isinstance(scanned, int) or isinstance(scanned, bool):
                raise ValueError("bad files_scanned")
            return AuditReport(
                [_finding(item) for item in value["findings"]],
                [_file_error(item) for item in value["errors"]],
                scanned,
            )
        except (TypeError, ValueError):
            self._reject(value)
            return None

    def store_run_report(self, key: str, report: AuditReport) -> None:
        self._store(
            "run",
            key,
            {
                "findings": [finding.to_json() for finding in report.findings],
                "errors": [error.to_json() for error in report.errors],
                "files_scanned": report.files_scanned,
            },
        )


_FINDING_TYPES: dict[str, tuple[type, ...]] = {
    "rule": (str,),
    "category": (str,),
    "path": (str,),
    "line": (int,),
    "column": (int,),
    "end_line": (int,),
    "end_column": (int,),
    "symbol": (str,),
    "function": (str, type(None)),
    "message": (str,),
    "fix": (str, type(None)),
}


def _finding(item: Any) -> Finding:
    """A cached finding, only when every field has its type (ValueError otherwise)."""
    if not isinstance(item, dict) or set(item) != set(_FINDING_TYPES):
        raise ValueError("not a finding")
    for name, types in _FINDING_TYPES.items():
        value = item[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"bad {name}")
    if item["category"] not in ("rewrite", "review", "keep"):
        raise ValueError("bad category")
    return Finding(**item)


def _file_error(item: Any) -> FileError:
    if (
        not isinstance(item, dict)
        or set(item) != {"path", "message"}
        or not all(isinstance(value, str) for value in item.values())
    ):
        raise ValueError("not a file error")
    return FileError(**item)
