"""What git says about the checkouts a run audits: a key for reusing a whole run.

A warm audit still lists, stats and names every file, runs ``git grep``, and
reads and hashes every file that mentions a legacy name: 0.13 s on 5,200
files, 0.9 s on 25,000. When nothing the audit reads has changed since the
last run (a CI job run again on the same commit, ``audit`` then ``progress``
or another output format), the last report is the answer. ``TreeState`` asks
git, in C, whether that is so. Only directories are looked at this way: a run
given files (pre-commit's staged files) goes the usual way.

Per checkout, two processes started at once, answered within
``engine.REUSE_PATIENCE_SECONDS`` or else asked again after discovery (before
any file is read):

- ``git status --porcelain=v2 --branch --no-ahead-behind -z
  --untracked-files=all --no-renames -- *.py``: the commit checked out (the
  branch's name and upstream are left out of the key, and the upstream is
  not compared, which can take git long), and every ``.py`` file whose work tree
  content differs from it (modified, staged, deleted, unmerged, untracked but
  not ignored). git compares content where timestamps cannot decide (racy
  entries), so an edit within the timestamp's granularity is still seen.
  Like a ``git status`` typed by hand, it then writes the timestamps it
  checked back into the index when it can (never what is staged):
  with ``--no-optional-locks`` a fresh clone or a tree whose files were
  touched made every run read those files again (0.5-0.8 s on 25,000 files);
- ``git ls-files -v -z -- *.py``: the index flags. A file marked
  assume-unchanged or skip-worktree is one git stops looking at, so its edits
  would not show above: any such file, and any unmerged file, means no key.

The key covers the status output, the bytes of every file it names (an edit
to an already modified file changes no status line), and the checkout's
location. The caller adds what else a run depends on (version, configuration,
paths, current directory). No key (None) when a path is not a directory in a
checkout, git is missing or fails, or a file status names is a symlink (its
target can change without git seeing it); the run then goes the usual way.

What git does not see is not seen here either: a file made unreadable
(``chmod``) keeps its last report until something else changes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from ctxmigrate.codemods.git import enclosing_checkout

_STATUS = (
    "status",
    "--porcelain=v2",
    "--branch",
    "-z",
    "--untracked-files=all",
    "--no-renames",
    "--no-ahead-behind",
    "--ignore-submodules=all",
    "--",
    "*.py",
)
_FLAGS = ("ls-files", "-v", "-z", "--", "*.py")
# Fields before the path in a porcelain v2 record, by its first character:
# "1 XY sub mH mI mW hH hI path" (changed), "? path" (untracked). Unmerged
# files ("u") never get here: ``ls-files -v`` tags them "M" first.
_FIELDS_BEFORE_PATH = {"1": 8, "?": 1}


class TreeState:
    """The git processes for one run's checkouts, started at once; ``key()`` waits for them."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._processes: list[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]] = []
        self._outputs: dict[subprocess.Popen[bytes], bytes] = {}
        # After ``key()``: each file git says changed, as (its entry in the
        # key: name and digest, what ``key``'s ``examine`` said of its bytes),
        # for the caller to guess what the run will do.
        self.changed: list[tuple[bytes, bool]] = []
        self._usable = bool(paths) and all(path.is_dir() for path in paths)
        if not self._usable:
            return
        tops: set[str] = set()
        for path in paths:
            # From the real path: git resolves a symlinked directory the same way.
            top = enclosing_checkout(os.path.realpath(path))
            if top is None:
                self._usable = False
                return
            tops.add(top)
        try:
            for top in sorted(tops):
                self._processes.append((top, _git(top, _STATUS), _git(top, _FLAGS)))
        except OSError:  # no git binary
            self._usable = False

    def ready(self, timeout: float) -> bool:
        """Whether git has answered, waiting up to ``timeout`` seconds in all."""
        import time

        deadline = time.monotonic() + timeout
        for _, *processes in self._processes:
            for process in processes:
                if process not in self._outputs:
                    try:
                        # Read while waiting: a long answer must not fill the pipe.
                        remaining = max(0.0, deadline - time.monotonic())
                        self._outputs[process] = process.communicate(timeout=remaining)[0]
                    except subprocess.TimeoutExpired:
                        return False  # a later communicate() keeps what was read
        return True

    def _output(self, process: subprocess.Popen[bytes]) -> bytes:
        if process not in self._outputs:
            self._outputs[process] = process.communicate()[0]
        return self._outputs[process]

    def cancel(self) -> None:
        """Stop the processes; no key is needed."""
        for _, *processes in self._processes:
            for process in processes:
                if process not in self._outputs:
                    process.kill()
                    process.communicate()
        self._processes = []

    def key(self, examine: Callable[[bytes], bool] | None = None) -> list[bytes] | None:
        """The parts of the key (status, file digests, per checkout), or None
        (see the module); ``examine`` is asked about each changed file's bytes."""
        parts: list[bytes] = []
        usable = self._usable
        for top, status, flags in self._processes:
            status_output, flags_output = self._output(status), self._output(flags)
            if not usable or status.returncode != 0 or flags.returncode != 0:
                usable = False
                continue
            if not _only_plain_entries(flags_output):
                usable = False
                continue
            records = [
                record
                for record in status_output.split(b"\0")
                # Of the headers, only the commit: not the branch's name or upstream.
                if record and (not record.startswith(b"# ") or record.startswith(b"# branch.oid "))
            ]
            digests = _work_tree_digests(top, records, examine, self.changed)
            if digests is None:
                usable = False
                continue
            parts += [os.fsencode(top), *records, b"", *digests]
        return parts if usable else None


def _git(top: str, arguments: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["git", *arguments],
        cwd=top,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _only_plain_entries(listing: bytes) -> bool:
    """Whether every ``ls-files -v`` record is tagged "H" (cached, no flag):
    not "h" (assume-unchanged), "S"/"s" (skip-worktree) or "M" (unmerged)."""
    records = listing.count(b"\0")
    plain = listing.count(b"\0H ") + listing.startswith(b"H ")
    # The last record's terminator is followed by nothing, so it starts no record.
    return plain == records


def _work_tree_digests(
    top: str,
    records: list[bytes],
    examine: Callable[[bytes], bool] | None,
    changed: list[tuple[bytes, bool]],
) -> list[bytes] | None:
    """A digest of the work tree bytes of each file a status record names (a
    deleted one has none), each added to ``changed`` with what ``examine``
    says of the bytes; None when one is a symlink or cannot be read."""
    import hashlib

    digests: list[bytes] = []
    for record in records:
        kind = record[:1].decode("ascii", "replace")
        fields = _FIELDS_BEFORE_PATH.get(kind)
        if fields is None:
            if kind == "#":
                continue  # the commit checked out
            return None  # "2" (a rename, not asked for) or anything unforeseen
        name = record.split(b" ", fields)[-1]
        path = os.path.join(top, os.fsdecode(name))
        try:
            if os.path.islink(path):
                return None
            with open(path, "rb") as handle:
                data = handle.read()
            digests.append(name + b"\0" + hashlib.sha256(data).digest())
            changed.append((digests[-1], examine is not None and examine(data)))
        except FileNotFoundError:
            continue  # deleted: its status line says so
        except OSError:
            return None
    return digests
