"""The dotted names a discovered file is imported under.

Computed per directory, not per file: walking up the ``__init__.py`` chain
and splitting the root-relative path for each of 25,000 files cost a tenth of
a warm audit; files share a few thousand directories.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache


def is_package(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "__init__.py"))


def relative_posix(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` when it is inside it, with "/" separators."""
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].replace(os.sep, "/")


class ModuleNamer:
    """``module_names`` for many files under one root, remembering each directory."""

    def __init__(self, root: str, is_package: Callable[[str], bool] = is_package) -> None:
        self._root = root
        self._is_package = is_package
        # directory -> (whether it is a package, the package names from the top package down)
        self._packages: dict[str, tuple[bool, tuple[str, ...]]] = {}
        # directory -> its root-relative parts ("src/" dropped), or None outside
        # the root or when a part is not an identifier
        self._relative: dict[str, tuple[str, ...] | None] = {}

    def _package(self, directory: str) -> tuple[bool, tuple[str, ...]]:
        known = self._packages.get(directory)
        if known is None:
            chain: tuple[str, ...] = ()
            package = self._is_package(directory)
            if package:
                parent, name = os.path.split(directory)
                if name:
                    chain = (*self._package(parent)[1], name)
            known = self._packages[directory] = (package, chain)
        return known

    def _root_parts(self, directory: str) -> tuple[str, ...] | None:
        if directory in self._relative:
            return self._relative[directory]
        # The parts of a file "x" in the directory, minus "x".
        relative = relative_posix(os.path.join(directory, "x"), self._root)
        parts: tuple[str, ...] | None = None
        if relative is not None:
            parts = tuple(relative.split("/")[:-1])
            if parts and parts[0] == "src":
                parts = parts[1:]
            if not all(part.isidentifier() for part in parts):
                parts = None
        self._relative[directory] = parts
        return parts

    def __call__(self, path: str) -> tuple[str, tuple[str, ...]]:
        """The module name used for relative imports, and other names it may go by.

        The primary name follows ``__init__.py`` files up to the top package
        (so a ``src/`` layout needs nothing special); a file in a directory
        without ``__init__.py`` (namespace package, script folder) is named by
        its path from the project root instead, minus a leading ``src/``.
        """
        directory, filename = os.path.split(path)
        stem = filename[:-3] if filename.endswith(".py") else filename
        in_package, chain = self._package(directory)
        by_packages = ".".join(chain if stem == "__init__" else (*chain, stem))
        root_parts = self._root_parts(directory)
        by_root = ""
        if root_parts is not None:
            if stem != "__init__":
                by_root = ".".join((*root_parts, stem)) if stem.isidentifier() else ""
            else:
                by_root = ".".join(root_parts)
        # A file outside any package is named from the root: a namespace package
        # or a script folder is imported by its path.
        primary = by_packages or by_root or stem if in_package or not by_root else by_root
        # The other non-empty names, sorted (at most two).
        first = by_packages if by_packages and by_packages != primary else ""
        second = by_root if by_root and by_root != primary and by_root != first else ""
        if first and second:
            return primary, (first, second) if first < second else (second, first)
        if first or second:
            return primary, (first or second,)
        return primary, ()


_remembered_is_package = lru_cache(maxsize=8192)(is_package)


def module_names(
    path: str, root: str, is_package: Callable[[str], bool] = _remembered_is_package
) -> tuple[str, tuple[str, ...]]:
    """``ModuleNamer(root, is_package)(path)``: the names of one file (a run
    naming many files uses one ``ModuleNamer``)."""
    return ModuleNamer(root, is_package)(path)
