"""The text pre-filter's file reading: ``git grep`` results first, Python reads only when needed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.discovery import (
    Discovery,
    SourceFile,
    SourceText,
    read_sources,
)
from ctxmigrate.codemods.git import GitGrep
from ctxmigrate.codemods.model import FileError

if TYPE_CHECKING:
    pass


class TextPrefilter:
    """The files the text pre-filter looks at, read in Python only when needed.

    Files listed by git are searched by ``git grep`` (its result for the
    first names was started before discovery); only the files it reports are
    read, so binary and undecodable content is reported for those only (like
    syntax errors, for candidates). Files outside a checkout, symlinks, and
    files over the size limit or unreadable (whose error must be reported
    for every file) are read as before. When git fails, everything is read.
    """

    def __init__(
        self,
        discovery: Discovery,
        config: Config,
        first_matches: list[set[str] | None],
        all_readable: bool = False,
    ) -> None:
        """``first_matches``: git grep's answer for the legacy and census names,
        one per checkout directory of ``discovery``; ``all_readable``: git
        grep opened every file it searched (it said nothing on stderr)."""
        self.config = config
        self._all_readable = all_readable
        self.directories = discovery.git_directories
        self.sources: list[SourceText] = []
        self.read_errors: list[FileError] = []
        self._read: set[Path] = set()
        self._searchable = [file for file in discovery.files if file.git_searchable]
        self._others = [file for file in discovery.files if not file.git_searchable]
        matches = self._union(first_matches)
        if matches is None:  # git failed: the Python pre-filter reads everything
            self._others, self._searchable = discovery.files, []
        self._first_matches = matches or set()

    @staticmethod
    def _union(results: Sequence[set[str] | None]) -> set[str] | None:
        found: set[str] = set()
        for result in results:
            if result is None:
                return None
            found |= result
        return found

    def _read_files(self, files: Sequence[SourceFile]) -> list[SourceText]:
        files = [file for file in files if file.path not in self._read]
        self._read.update(file.path for file in files)
        sources, errors = read_sources(files, self.config)
        self.sources.extend(sources)
        self.read_errors.extend(errors)
        return sources

    def _must_read(self, file: SourceFile) -> bool:
        """Oversized and unreadable files get their error whatever they contain.

        The size comes from the listing (no ``stat``); a file is checked for
        read permission only when git grep could not read some file.
        """
        if file.size < 0:
            try:
                size = os.stat(file.path).st_size
            except OSError:
                return True
        else:
            size = file.size
        if size > self.config.max_file_bytes:
            return True
        return not self._all_readable and not os.access(file.path, os.R_OK)

    def initial_sources(self) -> list[SourceText]:
        wanted = [
            file
            for file in self._searchable
            if str(file.path) in self._first_matches or self._must_read(file)
        ]
        return self._read_files([*self._others, *wanted])

    def sources_mentioning(self, names: set[str]) -> list[SourceText]:
        """Files not read yet that may mention one of ``names`` (re-export rounds)."""
        unread = [file for file in self._searchable if file.path not in self._read]
        if not unread:
            return []
        greps = [GitGrep(directory, names) for directory in self.directories]
        matches = self._union([grep.result() for grep in greps])
        if matches is None:
            return self._read_files(unread)
        return self._read_files([file for file in unread if str(file.path) in matches])
