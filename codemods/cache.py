"""Content-hash cache of per-file analysis results under ``.ctxmigrate_cache/``.

Two kinds of entries, both JSON (never pickle: a cache directory committed to
a repository must not be able to run code when someone audits it):

* ``summary``: a candidate file's module summary, keyed by its bytes, its
  module name and the engine version;
* ``outcome``: a file's findings or error, keyed by its bytes, where it sits
  (display path, module, test or not), the configuration, the selected rules,
  and a digest of the whole project index: a change in any module that could
  alter resolution invalidates every outcome, never a summary.

A corrupt or unreadable entry counts as a miss; a cache that cannot be written
(read-only checkout) is silently skipped: caching is an optimisation only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ctxmigrate import __version__
from ctxmigrate.codemods.model import FileError, Finding

CACHE_DIRECTORY = ".ctxmigrate_cache"
# Bump when analysis results change for the same input.
ENGINE_VERSION = "1"


def digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in (__version__, ENGINE_VERSION, *parts):
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
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(value, handle)
            os.replace(temporary, path)
        except OSError:
            self.enabled = False

    def summary(self, key: str) -> dict[str, Any] | None:
        value = self._load("summary", key)
        return value if isinstance(value, dict) else None

    def store_summary(self, key: str, value: dict[str, Any]) -> None:
        self._store("summary", key, value)

    def outcome(self, key: str) -> tuple[list[Finding], FileError | None] | None:
        value = self._load("outcome", key)
        try:
            findings = [Finding(**item) for item in value["findings"]]
            error = None if value["error"] is None else FileError(**value["error"])
        except (TypeError, KeyError):
            if value is not None:
                self.hits -= 1
                self.misses += 1
            return None
        return findings, error

    def store_outcome(self, key: str, findings: list[Finding], error: FileError | None) -> None:
        self._store(
            "outcome",
            key,
            {
                "findings": [finding.to_json() for finding in findings],
                "error": None if error is None else error.to_json(),
            },
        )
