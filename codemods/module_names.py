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
        # directory -> (whether it is a package, its dotted package name or "",
        # its dotted root-relative name ("src." dropped), or None outside the
        # root or when a part is not an identifier)
        self._directories: dict[str, tuple[bool, str, str | None]] = {}

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

    def _directory(self, directory: str) -> tuple[bool, str, str | None]:
        in_package, chain = self._package(directory)
        # The parts of a file "x" in the directory, minus "x".
        relative = relative_posix(os.path.join(directory, "x"), self._root)
        rooted: str | None = None
        if relative is not None:
            parts = relative.split("/")[:-1]
            if parts and parts[0] == "src":
                parts = parts[1:]
            if all(part.isidentifier() for part in parts):
                rooted = ".".join(parts)
        known = self._directories[directory] = (in_package, ".".join(chain), rooted)
        return known

    def __call__(self, path: str) -> tuple[str, tuple[str, ...]]:
        """The module name used for relative imports, and other names it may go by.

        The primary name follows ``__init__.py`` files up to the top package
        (so a ``src/`` layout needs nothing special); a file in a directory
        without ``__init__.py`` (namespace package, script folder) is named by
        its path from the project root instead, minus a leading ``src/``.
        """
        directory, _, filename = path.rpartition("/")
        if _SLOW_SPLIT or not directory or directory.endswith("/"):
            directory, filename = os.path.split(path)
        known = self._directories.get(directory)
        in_package, packages, rooted = known if known is not None else self._directory(directory)
        stem = filename[:-3] if filename.endswith(".py") else filename
        if stem == "__init__":
            by_packages = packages
            by_root = rooted or ""
        else:
            by_packages = f"{packages}.{stem}" if packages else stem
            if rooted is None or not stem.isidentifier():
                by_root = ""
            else:
                by_root = f"{rooted}.{stem}" if rooted else stem
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


# ``str.rpartition`` splits a path as ``os.path.split`` does where "/" is the
# only separator (the root and repeated separators aside, checked above).
_SLOW_SPLIT = os.sep != "/" or os.altsep is not None


_remembered_is_package = lru_cache(maxsize=8192)(is_package)


def module_names(
    path: str, root: str, is_package: Callable[[str], bool] = _remembered_is_package
) -> tuple[str, tuple[str, ...]]:
    """``ModuleNamer(root, is_package)(path)``: the names of one file (a run
    naming many files uses one ``ModuleNamer``)."""
    return ModuleNamer(root, is_package)(path)
