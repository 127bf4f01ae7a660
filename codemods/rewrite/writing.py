"""Safe output for ``ctxmigrate apply``: diffs, patches, atomic writes, git checks.

No click and no rich here: the CLI decides how things look, this module decides
what reaches the disk. Everything works on bytes, because a source file's
encoding cookie, BOM, CRLF line endings and missing final newline must survive
a rewrite byte for byte, and a patch must give ``git apply`` those same bytes.
"""

from __future__ import annotations

import difflib
import io
import os
import stat
import tempfile
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ctxmigrate.codemods.git import run_git
from ctxmigrate.codemods.model import CtxmigrateError

if TYPE_CHECKING:
    import subprocess

NO_NEWLINE_MARKER = b"\\ No newline at end of file\n"


class FixedFile(Protocol):
    """What a write needs from a ``FixResult`` (``rewrite/planning.py``)."""

    @property
    def path(self) -> str: ...

    @property
    def abspath(self) -> Path: ...

    @property
    def original(self) -> bytes: ...

    @property
    def fixed(self) -> bytes | None: ...


@dataclass(frozen=True)
class WriteOutcome:
    """What happened to one file: written, or left alone with the reason."""

    path: str
    written: bool
    reason: str | None = None


def _split_lines(data: bytes) -> list[bytes]:
    """Lines as git sees them: only ``\\n`` ends a line, ``\\r`` stays content.

    ``bytes.splitlines`` would also split on a lone ``\\r``, which git does not,
    and the hunks would then not apply.
    """
    lines = data.split(b"\n")
    with_ends = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        with_ends.append(lines[-1])
    return with_ends


def _quote_patch_path(path: str) -> bytes:
    """A path as git writes it in patch headers (C-style quotes when needed)."""
    raw = path.encode("utf-8", "surrogateescape")
    if not any(byte < 0x20 or byte in (0x22, 0x5C, 0x7F) for byte in raw):
        return raw
    escapes = {0x22: b'\\"', 0x5C: b"\\\\", 0x09: b"\\t", 0x0A: b"\\n", 0x0D: b"\\r"}
    quoted = bytearray(b'"')
    for byte in raw:
        if byte in escapes:
            quoted += escapes[byte]
        elif byte < 0x20 or byte == 0x7F:
            quoted += b"\\%03o" % byte
        else:
            quoted.append(byte)
    quoted += b'"'
    return bytes(quoted)


def unified_diff_bytes(path: str, old: bytes, new: bytes, *, context: int = 3) -> bytes:
    """A ``git apply``-compatible patch for one file, exact to the byte.

    Empty when ``old == new``. Paths get git's ``a/``/``b/`` prefixes, so apply
    it with ``git apply`` (``-p1``) from the directory the paths are relative to.
    A last line without a newline gets git's "\\ No newline at end of file".
    As git does, a name with a space ends with a tab in the ``---``/``+++``
    lines, so ``patch -p1`` applies it too.
    """
    if old == new:
        return b""
    quoted = _quote_patch_path(path)
    if quoted.startswith(b'"'):
        a_name, b_name = b'"a/' + quoted[1:], b'"b/' + quoted[1:]
    else:
        a_name, b_name = b"a/" + quoted, b"b/" + quoted
    # git ends the ---/+++ names with a tab when the name holds a space: GNU
    # patch would otherwise take everything after the first blank for a date.
    name_end = b"\t" if b" " in path.encode("utf-8", "surrogateescape") else b""
    out = io.BytesIO()
    out.write(b"diff --git " + a_name + b" " + b_name + b"\n")
    hunks = difflib.diff_bytes(
        difflib.unified_diff,
        _split_lines(old),
        _split_lines(new),
        fromfile=a_name + name_end,
        tofile=b_name + name_end,
        n=context,
        lineterm=b"\n",
    )
    for line in hunks:
        out.write(line)
        # Only a file's last line can lack "\n"; git needs the marker after it
        # (and difflib would otherwise glue the next diff line onto it).
        if not line.endswith(b"\n"):
            out.write(b"\n" + NO_NEWLINE_MARKER)
    return out.getvalue()


def source_encoding(source: bytes) -> str:
    """The encoding Python itself would use to read ``source`` (PEP 263, BOM)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        return "utf-8"
    return "utf-8" if encoding == "utf-8-sig" else encoding


def unified_diff(path: str, old: bytes, new: bytes, *, context: int = 3) -> str:
    """The same diff as ``unified_diff_bytes``, as text for display.

    Decoded with the file's own encoding (a latin-1 file shows its ``é``);
    undecodable bytes are surrogate-escaped rather than lost, so
    ``text.encode(source_encoding(old), "surrogateescape")`` gives the patch back.
    """
    patch = unified_diff_bytes(path, old, new, context=context)
    encoding = source_encoding(old)
    try:
        return patch.decode(encoding, "surrogateescape")
    except LookupError:
        return patch.decode("utf-8", "surrogateescape")


def build_patch(files: Iterable[FixedFile]) -> bytes:
    """One patch for every changed file, in the order given, with ``patch_paths``' names."""
    changed = [(item, item.fixed) for item in files if item.fixed is not None]
    paths = patch_paths([item for item, _ in changed])
    return b"".join(
        unified_diff_bytes(path, item.original, fixed)
        for path, (item, fixed) in zip(paths, changed, strict=True)
    )


def patch_paths(files: Sequence[FixedFile]) -> list[str]:
    """The name of each file in a patch, as ``git diff`` writes it.

    Relative to the top level of the file's git checkout, so ``git apply``
    works from anywhere in it (git reads patch paths from the top level),
    also for a project in a subfolder. Outside any checkout, or when git
    cannot answer, the display path (relative to the current directory).
    """
    toplevels: dict[Path, Path | None] = {}
    paths: list[str] = []
    for item in files:
        real = Path(os.path.realpath(item.abspath))
        if real.parent not in toplevels:
            try:
                toplevels[real.parent] = _git_toplevel(real.parent)
            except GitCheckError:
                toplevels[real.parent] = None
        toplevel = toplevels[real.parent]
        if toplevel is not None and real.is_relative_to(toplevel):
            paths.append(real.relative_to(toplevel).as_posix())
        else:
            paths.append(item.path)
    return paths


def _new_file_mode() -> int:
    # os.umask can only be read by setting it; the CLI is single-threaded here.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def writes_in_place(path: Path) -> bool:
    """True when ``path`` must be opened and written rather than replaced.

    Only a regular file (after following symlinks) or a missing path may be
    replaced by a rename. Anything else that exists (a character device such
    as ``/dev/null`` or ``/dev/stdout`` on a terminal, a FIFO, a socket, the
    pipe behind a shell's ``>(...)``) is written in place: renaming over it
    would swap the device node or pipe for a regular file.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    except OSError:
        # The atomic path reports the real problem (permission, loop, ...).
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_in_place(path: Path, data: bytes) -> None:
    # No O_CREAT, no O_TRUNC: the node exists and is not a regular file.
    fd = os.open(path, os.O_WRONLY)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half.

    Temporary file in the same directory (``os.replace`` is atomic only within a
    file system), fsync before the rename, the existing file's permission bits
    kept (a new file gets the umask's default). A symlink is followed: its
    target is replaced, the link stays a link. A target that exists and is not
    a regular file (device, FIFO, socket) is written in place instead
    (``writes_in_place``).
    """
    if writes_in_place(path):
        _write_in_place(path, data)
        return
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".ctxmigrate-tmp"
    )
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), mode)
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


READ_ONLY_REASON = "read-only file; not overwritten (make it writable to rewrite it)"


def _is_read_only(path: Path) -> bool:
    """No write bit at all (``chmod a-w``), or none for this user.

    The mode bits are checked as well as ``os.access``: root may write anything,
    yet a file somebody made read-only is a statement that nobody should.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return mode & 0o222 == 0 or not os.access(path, os.W_OK)


def symlink_outside_root(path: Path, root: Path) -> str | None:
    """Where ``path`` really is, when symlinks take it outside ``root``; else None.

    A file reached without any symlink is never reported, wherever it is.
    """
    real = os.path.realpath(path)
    if real == os.path.abspath(path):
        return None
    real_root = os.path.realpath(root)
    if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return real


def write_fixed_file(item: FixedFile, root: Path | None = None) -> WriteOutcome:
    """Write one fixed file unless it changed on disk since the engine read it.

    Also refused: a read-only file, and (with ``root``) a file that a symlink
    places outside the project root, whose change no ``git diff`` of the
    project would show.
    """
    if item.fixed is None:
        return WriteOutcome(item.path, written=False, reason="nothing to change")
    if root is not None:
        outside = symlink_outside_root(item.abspath, root)
        if outside is not None:
            return WriteOutcome(
                item.path,
                written=False,
                reason=f"a symlink to {outside}, outside the project root; not written through",
            )
    try:
        on_disk = item.abspath.read_bytes()
    except OSError as error:
        return WriteOutcome(item.path, written=False, reason=f"cannot read: {error.strerror}")
    if on_disk != item.original:
        return WriteOutcome(
            item.path,
            written=False,
            reason="changed on disk since it was read; not overwritten (run apply again)",
        )
    if _is_read_only(item.abspath):
        return WriteOutcome(item.path, written=False, reason=READ_ONLY_REASON)
    try:
        atomic_write_bytes(item.abspath, item.fixed)
    except OSError as error:
        return WriteOutcome(item.path, written=False, reason=f"cannot write: {error.strerror}")
    return WriteOutcome(item.path, written=True)


def write_fixed_files(items: Iterable[FixedFile], root: Path | None = None) -> list[WriteOutcome]:
    """Write every file that has a fix; one outcome per such file, in order."""
    return [write_fixed_file(item, root) for item in items if item.fixed is not None]


class GitCheckError(CtxmigrateError):
    """git failed in a way that leaves "uncommitted changes?" unanswered."""


def _git_failure(directory: Path, completed: subprocess.CompletedProcess[bytes]) -> GitCheckError:
    message = os.fsdecode(completed.stderr).strip().splitlines()
    detail = message[0] if message else f"exit status {completed.returncode}"
    return GitCheckError(
        f"cannot check {directory} for uncommitted changes: git failed ({detail}); "
        "fix git (for 'dubious ownership': git config --global --add safe.directory "
        "<checkout>) or pass --allow-dirty"
    )


def _git_toplevel(directory: Path) -> Path | None:
    """The checkout's top level; None outside any checkout or without git.

    Any other failure (a checkout git refuses to read, such as one owned by
    another user) raises GitCheckError: "outside a checkout" would skip the check.
    """
    completed = run_git(
        ["-C", str(directory), "rev-parse", "--show-toplevel"],
        # git's messages in English, to recognize "not a git repository".
        env={"LC_ALL": "C", "LANGUAGE": ""},
    )
    if completed is None:
        # No git installed: there is no checkout to protect.
        return None
    if completed.returncode != 0:
        if b"not a git repository" in completed.stderr:
            return None
        raise _git_failure(directory, completed)
    return Path(os.fsdecode(completed.stdout.rstrip(b"\n"))).resolve()


def _porcelain_paths(output: bytes) -> set[str]:
    """Paths listed by ``git status --porcelain=v1 -z`` (renames: both names)."""
    paths: set[str] = set()
    entries = iter(output.split(b"\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        status, name = entry[:2], entry[3:]
        paths.add(os.fsdecode(name))
        if b"R" in status or b"C" in status:
            # -z puts the rename's source path in the next field.
            paths.add(os.fsdecode(next(entries, b"")))
    return paths


def uncommitted_files(paths: Sequence[Path]) -> list[Path]:
    """The given files that have uncommitted changes (or are untracked) in git.

    Returned as given, in the given order. Files outside any git checkout are
    never reported. One ``git status`` per repository, limited to these files.
    Raises GitCheckError when git fails for a checkout (the answer is unknown).
    """
    by_repo: dict[Path, list[tuple[Path, str]]] = {}
    toplevels: dict[Path, Path | None] = {}
    for path in paths:
        resolved = Path(os.path.realpath(path))
        directory = resolved.parent
        if directory not in toplevels:
            toplevels[directory] = _git_toplevel(directory)
        toplevel = toplevels[directory]
        if toplevel is not None:
            by_repo.setdefault(toplevel, []).append(
                (path, resolved.relative_to(toplevel).as_posix())
            )
    dirty: set[Path] = set()
    for toplevel, files in by_repo.items():
        completed = run_git(
            # Literal pathspecs: a file named "a*.py" must not match "ab.py".
            [
                "--literal-pathspecs",
                "-C",
                str(toplevel),
                "status",
                "--porcelain=v1",
                "--untracked-files=all",
                "-z",
                "--",
                *(relative for _, relative in files),
            ],
        )
        if completed is None:
            raise GitCheckError(f"cannot check {toplevel} for uncommitted changes: git not found")
        if completed.returncode != 0:
            raise _git_failure(toplevel, completed)
        listed = _porcelain_paths(completed.stdout)
        dirty.update(path for path, relative in files if relative in listed)
    return [path for path in paths if path in dirty]
