"""The text pre-filter's file reading: ``git grep`` results first, Python reads only when needed."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.discovery import (
    Discovery,
    SourceFile,
    SourceText,
    read_source,
    read_sources,
)
from ctxmigrate.codemods.git import GitGrep
from ctxmigrate.codemods.model import FileError


class TextPrefilter:
    """The files the text pre-filter looks at, read in Python only when needed.

    Files git tracks are searched by ``git grep`` (its result for the first
    names was started before discovery); only the files it reports are
    read, so binary and undecodable content is reported for those only (like
    syntax errors, for candidates). The other files git lists (untracked,
    assume-unchanged, skip-worktree: see ``SourceFile.git_searchable``) are
    read at once and searched here the way ``git grep -F`` would (a ``bytes``
    substring test, every round), with the same outcome: their content is
    reported only once they match. Files outside a checkout, symlinks, and
    files over the size limit or unreadable (whose error must be reported
    for every file) are read as before. When git fails, everything is read.

    The first ``git grep`` may also have searched for ``remembered`` names
    (the aliases the previous run learned): a file it reports that holds
    none of the first names is read but held back, and a later round asking
    only about remembered names is answered from the held files, without
    another ``git grep`` (a ``bytes`` substring test, as ``git grep -F``
    does). Held files count as read only once a round asks for them.
    """

    def __init__(
        self,
        discovery: Discovery,
        config: Config,
        first_matches: list[set[str] | None],
        all_readable: bool = False,
        first_names: Sequence[str] = (),
        remembered: Iterable[str] = (),
    ) -> None:
        """``first_matches``: git grep's answer for ``first_names`` (the legacy
        and census names) and ``remembered``, one per checkout directory of
        ``discovery``; ``all_readable``: git grep opened every file it
        searched (it said nothing on stderr)."""
        self.config = config
        self._all_readable = all_readable
        self.directories = discovery.git_directories
        self.sources: list[SourceText] = []
        self.read_errors: list[FileError] = []
        self._read: set[str] = set()
        self._searchable = [file for file in discovery.files if file.git_searchable]
        local = [file for file in discovery.files if file.git_listed and not file.git_searchable]
        self._others = [file for file in discovery.files if not file.git_listed]
        matches = self._union(first_matches)
        if matches is None:  # git failed: the Python pre-filter reads everything
            self._others, self._searchable, local = discovery.files, [], []
        self._first_matches = matches or set()
        self._first_names = tuple(first_names)
        self._first_needles = tuple(name.encode() for name in first_names)
        self._remembered = frozenset(remembered) - frozenset(first_names)
        # path -> (file, its bytes, its error): read, holding only remembered names.
        self._held: dict[str, tuple[SourceFile, bytes, FileError | None]] = {}
        # The same for the listed files git grep does not search: read, not
        # yet matched by a round's names.
        self._unsearched: dict[str, tuple[SourceFile, bytes, FileError | None]] = {}
        for file in local:
            data, error = read_source(file, self.config.max_file_bytes)
            if data is None:  # unreadable, too large: reported whatever it holds
                if error is not None:
                    self.read_errors.append(error)
            else:
                self._unsearched[file.absolute] = (file, data, error)

    @staticmethod
    def _union(results: Sequence[set[str] | None]) -> set[str] | None:
        found: set[str] = set()
        for result in results:
            if result is None:
                return None
            found |= result
        return found

    def _read_files(self, files: Sequence[SourceFile]) -> list[SourceText]:
        files = [file for file in files if file.absolute not in self._read]
        self._read.update(file.absolute for file in files)
        sources, errors = read_sources(files, self.config)
        self.sources.extend(sources)
        self.read_errors.extend(errors)
        return sources

    def _admit(self, file: SourceFile, data: bytes, error: FileError | None) -> SourceText | None:
        self._read.add(file.absolute)
        if error is not None:
            self.read_errors.append(error)
            return None
        source = SourceText(file, data)
        self.sources.append(source)
        return source

    def _must_read(self, file: SourceFile) -> bool:
        """Oversized and unreadable files get their error whatever they contain.

        The size comes from the listing (discovery records it for every file
        git grep searches: no ``stat``); a file is checked for read permission
        only when git grep could not read some file.
        """
        if file.size > self.config.max_file_bytes:
            return True
        return not self._all_readable and not os.access(file.absolute, os.R_OK)

    def _matching(
        self, held: dict[str, tuple[SourceFile, bytes, FileError | None]], names: Iterable[str]
    ) -> list[SourceText]:
        """The files of ``held`` holding one of ``names``, admitted (and no longer held)."""
        needles = [name.encode() for name in names]
        found: list[SourceText] = []
        for path, (file, data, error) in list(held.items()):
            if any(needle in data for needle in needles):
                del held[path]
                admitted = self._admit(file, data, error)
                if admitted is not None:
                    found.append(admitted)
        return found

    def initial_sources(self) -> list[SourceText]:
        unsearched = self._matching(self._unsearched, self._first_names)
        if not self._remembered:
            wanted = [
                file
                for file in self._searchable
                if file.absolute in self._first_matches or self._must_read(file)
            ]
            return [*self._read_files([*self._others, *wanted]), *unsearched]
        first = list(self._others)
        maybe: list[SourceFile] = []
        for file in self._searchable:
            if self._must_read(file):
                first.append(file)
            elif file.absolute in self._first_matches:
                maybe.append(file)
        sources = [*self._read_files(first), *unsearched]
        for file in maybe:
            data, error = read_source(file, self.config.max_file_bytes)
            if data is None:  # changed since git read it: reported (or dropped) now
                self._read.add(file.absolute)
                if error is not None:
                    self.read_errors.append(error)
            elif any(needle in data for needle in self._first_needles):
                admitted = self._admit(file, data, error)
                if admitted is not None:
                    sources.append(admitted)
            else:
                self._held[file.absolute] = (file, data, error)
        return sources

    def sources_mentioning(self, names: set[str]) -> list[SourceText]:
        """Files not read yet that may mention one of ``names`` (re-export rounds)."""
        found = self._matching(self._unsearched, names)
        unread = [file for file in self._searchable if file.absolute not in self._read]
        if not unread:
            return found
        if names <= self._remembered:
            return [*found, *self._matching(self._held, names)]
        greps = [GitGrep(directory, names) for directory in self.directories]
        matches = self._union([grep.result() for grep in greps])
        if matches is None:
            return [*found, *self._read_files(unread)]
        return [*found, *self._read_files([file for file in unread if file.absolute in matches])]
