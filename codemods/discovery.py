"""Which files a run looks at, what each is called, and which ones are worth parsing.

Three steps, all cheap compared with parsing:

1. ``discover``: list the ``.py`` files under the given paths (``git ls-files``
   in a checkout so ``.gitignore`` is respected, a walk that skips virtualenv
   and build folders otherwise), apply ``exclude``, and record every file that
   cannot be listed (symlink loops) as an error.
2. ``read_sources``: read the bytes, rejecting huge, unreadable, binary and
   undecodable files with an error each.
3. ``select_candidates``: the text pre-filter. Only files that mention a legacy
   name (or a name it was re-exported under, iterated to a fixpoint) are parsed.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.git import enclosing_checkout, git_refusal, run_git, run_git_streaming
from ctxmigrate.codemods.model import CtxmigrateError, FileError
from ctxmigrate.codemods.module_names import ModuleNamer, relative_posix
from ctxmigrate.codemods.module_names import module_names as module_names
from ctxmigrate.codemods.path_patterns import path_matcher
from ctxmigrate.codemods.rules.duplicate_context_class import CENSUS_CLASS_NAMES

# Skipped by the directory walk outside a git checkout (inside one,
# .gitignore decides).
SKIPPED_DIRECTORIES = frozenset(
    {
        ".venv",
        "venv",
        "env",
        ".tox",
        ".nox",
        "build",
        "dist",
        "node_modules",
        "__pycache__",
        ".git",
        "site-packages",
        ".ctxmigrate_cache",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
_CODING_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


class SourceFile(NamedTuple):
    """One discovered ``.py`` file (a tuple: one is made per file)."""

    # The absolute path, a string: a Path per file (built, hashed, printed)
    # cost a twentieth of a warm audit; ``path`` makes one when needed.
    absolute: str
    display: str  # relative to the current directory, "/" separators (JSON ``path``)
    project_path: str  # relative to the project root, for test/exclude patterns
    module: str  # dotted module name used for relative imports
    # Other names the module may be imported under (root-relative, src layout).
    module_aliases: tuple[str, ...]
    in_test: bool
    # A regular file git tracks and reads from the work tree: ``git grep``
    # sees exactly its bytes, so the pre-filter may ask git instead of reading
    # it. Not so for untracked files (searching them made git walk the tree a
    # second time), symlinks (git grep does not follow them), and files marked
    # assume-unchanged or skip-worktree (git grep searches the index's copy).
    git_searchable: bool = False
    # Its size when git listed it (from the listing's lstat), -1 when unknown.
    size: int = -1
    # A regular file git lists, tracked or untracked: ``git status`` sees
    # every change to it (the whole-run report may be reused).
    git_listed: bool = False

    @property
    def path(self) -> Path:
        return Path(self.absolute)


@dataclass
class Discovery:
    files: list[SourceFile]
    errors: list[FileError]
    # The given directories that are git checkouts (their files were listed by git).
    git_directories: list[Path] = field(default_factory=list)
    # The checkouts git refused to read (dubious ownership), one error each (also
    # in ``errors``): .gitignore was not applied and uncommitted changes cannot be checked.
    git_refusals: list[FileError] = field(default_factory=list)

    @property
    def git_refused(self) -> bool:
        return bool(self.git_refusals)


class _Found(NamedTuple):
    """A listed file before deduplication (a tuple: one is made per file)."""

    absolute: str
    real: str  # os.path.realpath, computed without a syscall where possible
    linked: bool  # reached through a symlink (the file itself or a directory on the way)
    searchable: bool = False  # git grep reads it (see ``SourceFile.git_searchable``)
    size: int = -1  # a listed regular file's size from the listing's lstat
    listed: bool = False  # a regular file listed by git ls-files


def display_path(path: Path, cwd: Path | None = None) -> str:
    base = cwd if cwd is not None else Path.cwd()
    try:
        relative = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        relative = str(path)
    return relative.replace(os.sep, "/")


def discover(paths: Sequence[Path], config: Config, cwd: Path | None = None) -> Discovery:
    """Every ``.py`` file under ``paths``, deduplicated, in a stable order.

    Works on strings: on a 5,000-file tree pathlib objects and ``resolve()``
    per file cost more than the whole text pre-filter. Symlink loops and
    dangling links among the files are reported when they are read.

    A file reached twice (through a symlinked directory or file, or two
    overlapping paths) is listed once, by its real path; its identity (display
    path and module name) is the path reached without a symlink when there is
    one, else the first in name order, so the result never depends on the
    order in which directories are listed.
    """
    excluded = path_matcher(config.exclude) if config.exclude else None
    in_test = path_matcher(config.test_patterns)
    base = os.path.abspath(cwd) if cwd is not None else os.getcwd()
    real_base = os.path.realpath(base)
    found: list[_Found] = []
    git_directories: list[Path] = []
    errors: list[FileError] = []
    refusals: list[FileError] = []
    explicit_directories: set[str] = set()
    for given in paths:
        if not given.exists() and not given.is_symlink():
            raise CtxmigrateError(f"{given}: no such file or directory")
        absolute = os.path.abspath(given)
        linked = _through_link(absolute, base, real_base)
        if given.is_dir():
            listed, refusal = _list_git_files(given, linked)
            if refusal is not None:
                refusals.append(FileError(display_path(given, cwd), refusal))
                errors.append(refusals[-1])
            if listed is None:
                found.extend(_walk(given, errors, cwd, linked))
            else:
                git_directories.append(given)
                found.extend(listed)
                if not listed:
                    errors.extend(_explain_empty_listing(given, cwd))
        else:
            found.append(_Found(absolute, os.path.realpath(absolute), linked))
            explicit_directories.add(os.path.dirname(absolute))
    for directory, refusal in _refused_checkouts(explicit_directories):
        refusals.append(FileError(display_path(Path(directory), cwd), refusal))
        errors.append(refusals[-1])
    # One record per real file: the one reached without a symlink, then by
    # path; for the same path, the one git lists (git grep may search it).
    chosen: dict[str, _Found] = {}
    for record in found:
        current = chosen.setdefault(record.real, record)
        if current is not record and (record.linked, record.absolute, not record.searchable) < (
            current.linked,
            current.absolute,
            not current.searchable,
        ):
            chosen[record.real] = record
    root = str(config.root.resolve())
    names = ModuleNamer(root)
    files: list[SourceFile] = []
    for record in chosen.values():
        absolute = record.absolute
        project_path = relative_posix(absolute, root) or os.path.basename(absolute)
        if excluded is not None and excluded(project_path):
            continue
        module, aliases = names(absolute)
        files.append(
            SourceFile(
                absolute,
                relative_posix(absolute, base) or display_path(Path(absolute), cwd),
                project_path,
                module,
                aliases,
                in_test(project_path),
                record.searchable,
                record.size,
                record.listed,
            )
        )
    files.sort(key=attrgetter("display"))
    # Several errors for one directory (given twice) are one.
    unique_errors = list({(error.path, error.message): error for error in errors}.values())
    return Discovery(
        files=files,
        errors=unique_errors,
        git_directories=git_directories,
        git_refusals=list(dict.fromkeys(refusals)),
    )


def _through_link(absolute: str, base: str, real_base: str) -> bool:
    """Whether a given path goes through a symlink below the current directory
    (or anywhere, outside it): ``lib/appl/handler.py`` with ``lib/appl -> ../app``."""
    relative = relative_posix(absolute, base)
    if absolute == base:
        return False
    expected = os.path.join(real_base, relative) if relative is not None else absolute
    return os.path.realpath(absolute) != os.path.normpath(expected)


def _describe_os_error(error: BaseException) -> str:
    if isinstance(error, RuntimeError) or getattr(error, "errno", None) == 40:  # ELOOP
        return "symlink loop: the file cannot be resolved"
    if isinstance(error, PermissionError):
        return "unreadable: permission denied"
    if isinstance(error, FileNotFoundError):
        return "dangling symlink: the target does not exist"
    return f"cannot read: {error}"


def _list_git_files(directory: Path, linked: bool) -> tuple[list[_Found] | None, str | None]:
    """Tracked and untracked-but-not-ignored ``.py`` files (None outside a
    checkout), and why git refused the checkout, if it did.

    Regular files cost one ``lstat`` each (deleted-but-tracked files are
    dropped); their real path is the directory's plus the listed name. A
    symlink is resolved (they are few). Each name is handled as git lists it:
    git prints the tracked files at once, then walks the tree for untracked
    ones (most of its time), while these ``lstat`` calls run.

    ``-v`` tags each name: ``H`` is a tracked file git reads from the work
    tree, so ``git grep`` searches it; untracked files (``?``), files marked
    assume-unchanged (``h``) or skip-worktree (``S``) and unmerged ones are
    read by the pre-filter instead.
    """
    prefix = os.path.join(os.path.abspath(directory), "")
    real_prefix = os.path.join(os.path.realpath(directory), "")
    native = os.sep == "/"
    listed: list[_Found] = []

    def add(record: bytes) -> None:
        if not record:
            return
        # "H pkg/module.py": a one-letter tag, a space, the name.
        tracked, name = record[:2] == b"H ", os.fsdecode(record[2:])
        path = prefix + name  # os.path.join(directory, name): git names are relative
        # Deleted-but-tracked files are listed by git yet absent (a symlink
        # loop is kept: reading it reports the error).
        try:
            info = os.lstat(path)
        except OSError:
            return
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            if not os.path.isdir(path):
                listed.append(_Found(path, os.path.realpath(path), True))
        elif not stat.S_ISDIR(mode):
            real = real_prefix + (name if native else name.replace("/", os.sep))
            if stat.S_ISREG(mode):
                listed.append(_Found(path, real, linked, tracked, info.st_size, True))
            else:
                listed.append(_Found(path, real, linked))

    arguments = ["ls-files", "-co", "-v", "--exclude-standard", "-z", "--", "*.py"]
    finished = run_git_streaming(arguments, directory, add)
    if finished is None:  # no git binary
        return None, None
    returncode, errors = finished
    if returncode != 0:
        return None, git_refusal(errors, str(directory))
    return listed, None


def _refused_checkouts(directories: Iterable[str]) -> list[tuple[str, str]]:
    """Checkouts holding explicitly given files that git refuses: (top, message).

    One ``git rev-parse`` per checkout (found by looking for ``.git``), so a
    pre-commit list of staged files costs one process.
    """
    tops: dict[str, None] = {}
    for directory in sorted(directories):
        top = enclosing_checkout(directory)
        if top is not None:
            tops.setdefault(top)
    refused = []
    for top in tops:
        completed = run_git(["rev-parse", "--git-dir"], top)
        if completed is None:
            return []
        if completed.returncode != 0:
            message = git_refusal(completed.stderr, top)
            if message is not None:
                refused.append((top, message))
    return refused


def _explain_empty_listing(directory: Path, cwd: Path | None) -> list[FileError]:
    """Why git lists no ``.py`` file in a directory the user named: every file
    in it is ignored, or it holds nested repositories (their files belong to
    them). An error each, so an empty directory does not pass silently."""
    problems: list[FileError] = []
    ignored = run_git(["ls-files", "-o", "-i", "--exclude-standard", "-z", "--", "*.py"], directory)
    if ignored is None:
        return problems
    count = sum(1 for raw in ignored.stdout.split(b"\0") if raw)
    if ignored.returncode == 0 and count:
        files = "file" if count == 1 else "files"
        problems.append(
            FileError(
                display_path(directory, cwd),
                f"ignored by .gitignore: nothing audited ({count} .py {files} ignored; "
                "name the files to audit them)",
            )
        )
    for current, directories, filenames in os.walk(directory):
        if current != str(directory) and (".git" in directories or ".git" in filenames):
            problems.append(
                FileError(
                    display_path(Path(current), cwd),
                    "a separate git repository: audit it on its own",
                )
            )
            directories[:] = []
            continue
        directories[:] = sorted(d for d in directories if d not in SKIPPED_DIRECTORIES)
    return problems


def _walk(directory: Path, errors: list[FileError], cwd: Path | None, linked: bool) -> list[_Found]:
    """The ``.py`` files below ``directory``, following directory symlinks.

    A symlink to a directory on the current walk path (an ancestor of itself)
    is a loop and reported; a symlink to a directory already walked is an
    alias: skipped silently, its files are listed already. Real directories
    are always walked (an alias walked first does not hide them: duplicates
    are resolved by real path afterwards). Only symlinks cost a ``realpath``.
    """
    listed: list[_Found] = []
    visited: set[str] = set()
    on_path: set[str] = set()

    def visit(current: str, real: str, via_link: bool) -> None:
        visited.add(real)
        try:
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except OSError as error:
            errors.append(FileError(display_path(Path(current), cwd), _describe_os_error(error)))
            return
        on_path.add(real)
        for entry in entries:
            is_link = entry.is_symlink()
            try:
                is_directory = entry.is_dir(follow_symlinks=True)
            except OSError:  # a symlink loop: listed, so reading it reports the error
                is_directory = False
            if is_directory:
                if entry.name in SKIPPED_DIRECTORIES:
                    continue
                if not is_link:
                    visit(entry.path, os.path.join(real, entry.name), via_link)
                    continue
                target = os.path.realpath(entry.path)
                if target in on_path or (real + os.sep).startswith(os.path.join(target, "")):
                    errors.append(
                        FileError(
                            display_path(Path(entry.path), cwd),
                            f"symlink loop: points back to {display_path(Path(target), cwd)}",
                        )
                    )
                elif target not in visited:
                    visit(entry.path, target, True)
            elif entry.name.endswith(".py"):
                if is_link:
                    listed.append(_Found(entry.path, os.path.realpath(entry.path), True))
                else:
                    listed.append(_Found(entry.path, os.path.join(real, entry.name), via_link))
        on_path.discard(real)

    visit(os.path.abspath(directory), os.path.realpath(directory), linked)
    return listed


@dataclass
class SourceText:
    file: SourceFile
    data: bytes

    @cached_property
    def content_digest(self) -> str:
        """SHA-256 of the bytes, computed once per run for the cache keys that need it."""
        return hashlib.sha256(self.data).hexdigest()


_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _file_kind(mode: int) -> str:
    for test, kind in _FILE_KINDS:
        if test(mode):
            return kind
    return "not a file"


def _read_at_most(path: str, size: int) -> bytes:
    """Up to ``size`` bytes of a file already known to be regular.

    ``O_NONBLOCK``: should the file be swapped for a FIFO between the ``stat``
    and the ``open``, the open does not wait for a writer.

    Read with ``os.read`` in pieces of the file's own size: a buffered
    ``read(size)`` allocates ``size`` bytes (the 5 MB limit) for every file,
    which cost four times the reading itself.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        chunks: list[bytes] = []
        remaining = size
        # The expected size and one byte more (to see growth); then until EOF.
        wanted = os.fstat(descriptor).st_size + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, wanted))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            wanted = 1 << 16
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def read_sources(
    files: Iterable[SourceFile], config: Config
) -> tuple[list[SourceText], list[FileError]]:
    """The bytes of every readable source file; an error for each file that is not
    (``read_source``)."""
    sources: list[SourceText] = []
    errors: list[FileError] = []
    for source in files:
        data, error = read_source(source, config.max_file_bytes)
        if error is not None:
            errors.append(error)
        elif data is not None:
            sources.append(SourceText(source, data))
    return sources, errors


def read_source(source: SourceFile, limit: int) -> tuple[bytes | None, FileError | None]:
    """(the bytes read, or None; why the file is not source text, or None).

    Both None: the file was deleted since it was listed. Bytes with an error:
    they are not Python source text (binary, undecodable).

    Only regular files (after following symlinks) are opened: a FIFO would
    block forever, ``/dev/zero`` never ends. One ``stat`` per file decides,
    then at most ``limit + 1`` bytes are read (a file that grew past the
    limit since the ``stat`` is still rejected).
    """
    path = source.absolute  # a string: no Path per file read
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            kind = _file_kind(info.st_mode)
            return None, FileError(source.display, f"not a regular file: {kind}; not read")
        data = b"" if info.st_size > limit else _read_at_most(path, limit + 1)
    except FileNotFoundError as error:
        if os.path.islink(path):
            return None, FileError(source.display, _describe_os_error(error))
        return None, None  # deleted since it was listed (a tracked file removed from disk)
    except (OSError, RuntimeError) as error:
        return None, FileError(source.display, _describe_os_error(error))
    if info.st_size > limit or len(data) > limit:
        size = max(info.st_size, len(data))
        more = "" if info.st_size > limit else "at least "
        return None, FileError(
            source.display,
            f"skipped: {more}{size:,} bytes is over the {limit:,}-byte limit "
            "(max-file-size); large files are usually generated",
        )
    problem = text_problem(data)
    return data, None if problem is None else FileError(source.display, problem)


def text_problem(data: bytes) -> str | None:
    """Why ``data`` cannot be Python source text at all, or None.

    Cheap enough for every file (memchr and a codec pass), so binary junk and
    undecodable files are reported even when the pre-filter rules them out.
    """
    nul = data.find(b"\0")
    if nul != -1:
        return f"not Python source: binary content (NUL byte at offset {nul})"
    encoding = "utf-8"
    body = data[3:] if data.startswith(codecs.BOM_UTF8) else data
    first_end = body.find(b"\n")
    second_end = body.find(b"\n", first_end + 1) if first_end >= 0 else -1
    if body.isascii() and b"coding" not in (body if second_end < 0 else body[:second_end]):
        return None  # ASCII without a cookie (first two lines): valid UTF-8, no decoding
    for line in body.split(b"\n", 2)[:2]:
        cookie = _CODING_COOKIE.match(line)
        if cookie is not None:
            encoding = cookie.group(1).decode("ascii", "replace")
            break
        if line.strip() and not line.lstrip().startswith(b"#"):
            break
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        return f"unknown encoding {encoding!r} in the coding cookie"
    # hex, rot13, base64, zlib...: codecs, but not bytes-to-text ones.
    if not getattr(codec, "_is_text_encoding", True):
        return f"unknown or non-text encoding {encoding!r} in the coding cookie"
    try:
        body.decode(encoding)
    except UnicodeDecodeError as error:
        line_number = body[: error.start].count(b"\n") + 1
        return (
            f"cannot decode as {encoding} (line {line_number}, byte 0x{body[error.start]:02x}): "
            "add or fix the '# -*- coding: ... -*-' cookie"
        )
    except (UnicodeError, LookupError, ValueError, TypeError):
        # "undefined" always fails; a codec that is not a text codec after all.
        return f"unknown or non-text encoding {encoding!r} in the coding cookie"
    return None


def _names_pattern(names: Iterable[str]) -> re.Pattern[bytes]:
    alternatives = "|".join(re.escape(name) for name in sorted(set(names)))
    return re.compile(rb"\b(?:" + alternatives.encode() + rb")\b")


def census_pattern() -> re.Pattern[bytes]:
    names = "|".join(CENSUS_CLASS_NAMES).encode()
    return re.compile(rb"\bclass\s+(?:" + names + rb")\b")


def learned_aliases(data: bytes, names: Iterable[str]) -> set[str]:
    """Names a module binds a legacy name to: ``import x as alias``, ``alias = x``.

    Text, not syntax: an over-approximation is harmless (a few more files get
    parsed), a miss would hide a re-exported name. Only the places where a
    name occurs are matched (``bytes.find`` runs at memory speed; a regex over
    the whole file cost most of a cold audit on a tree of 5,000 candidates).
    """
    imported, assigned = _alias_patterns(frozenset(names))
    found: set[str] = set()
    lines: set[int] = set()
    for name in set(names):
        needle = name.encode()
        start = data.find(needle)
        while start != -1:
            # ``\b`` before the name looks at the byte before ``start``.
            match = imported.match(data, start)
            if match is not None:
                found.add(match.group(1).decode())
            line_start = data.rfind(b"\n", 0, start) + 1
            if line_start not in lines:
                lines.add(line_start)
                line_end = data.find(b"\n", start)
                line = assigned.fullmatch(data, line_start, len(data) if line_end < 0 else line_end)
                if line is not None:
                    found.add(line.group(1).decode())
            start = data.find(needle, start + 1)
    return found


@lru_cache(maxsize=32)
def _alias_patterns(names: frozenset[str]) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """(``name as alias`` at a name, ``alias = [module.]name`` as a whole line)."""
    alternatives = "|".join(re.escape(name) for name in sorted(names)).encode()
    imported = re.compile(rb"\b(?:" + alternatives + rb")\s+as\s+(\w+)")
    assigned = re.compile(
        rb"[ \t]*(\w+)[ \t]*(?::[^=\n]*)?=[ \t]*(?:[\w.]+\.)?(?:" + alternatives + rb")[ \t]*"
    )
    return imported, assigned


def _learned_aliases_of(source: SourceText, names: frozenset[str]) -> set[str]:
    return learned_aliases(source.data, names)


def select_candidates(
    sources: Sequence[SourceText],
    legacy_names: Iterable[str],
    more_sources: Callable[[set[str]], Sequence[SourceText]] | None = None,
    aliases_of: Callable[[SourceText, frozenset[str]], set[str]] | None = None,
) -> tuple[list[SourceText], frozenset[str]]:
    """The files worth parsing, and every name (legacy or alias) that made them so.

    Iterates to a fixpoint: module B doing ``from .deps import
    create_user_execution_context as make_ctx`` adds ``make_ctx``, and the
    files mentioning ``make_ctx`` join (and may teach further aliases).
    ``more_sources(new_names)`` adds files not in ``sources`` that may mention
    the newly learned names (those ``git grep`` found); the candidates come
    out in the order of ``sources``, then of what it added. ``aliases_of``
    stands for ``learned_aliases`` of a source (the engine's is cached).
    """
    if aliases_of is None:
        aliases_of = _learned_aliases_of
    sources = list(sources)
    known = set(legacy_names)
    census = census_pattern()
    census_needles = [name.encode() for name in CENSUS_CLASS_NAMES]
    pending = list(range(len(sources)))
    chosen: set[int] = set()
    searched: set[int] = set()  # chosen files searched for aliases of every known name
    scan_names = set(known)
    first_round = True
    while True:
        pattern = _names_pattern(scan_names)
        # A first cheap substring scan: bytes.find runs at memory speed, the
        # regex only confirms word boundaries in the files that pass it.
        needles = [name.encode() for name in scan_names]
        remaining: list[int] = []
        for index in pending:
            data = sources[index].data
            if (any(needle in data for needle in needles) and pattern.search(data)) or (
                first_round and any(name in data for name in census_needles) and census.search(data)
            ):
                chosen.add(index)
            else:
                remaining.append(index)
        pending = remaining
        first_round = False
        # Aliases of aliases are learned within the chosen files until stable.
        # A file is searched once for every name known when it is chosen, then
        # only for the names learned since (the search is per name: searching
        # for more names at once finds exactly the union).
        learned = set(known)
        fresh = sorted(chosen - searched)
        searched.update(fresh)
        extra: set[str] = set()
        asked = frozenset(learned)
        for index in fresh:
            extra |= aliases_of(sources[index], asked)
        extra -= learned
        while extra:
            learned |= extra
            newer: set[str] = set()
            asked = frozenset(extra)
            for index in searched:
                newer |= aliases_of(sources[index], asked)
            extra = newer - learned
        scan_names = learned - known
        known = learned
        if not scan_names:
            break
        if more_sources is not None:
            added = more_sources(scan_names)
            pending.extend(range(len(sources), len(sources) + len(added)))
            sources.extend(added)
    return [sources[index] for index in sorted(chosen)], frozenset(known)
