"""Every git process ctxmigrate starts, in one place.

Discovery lists files (``git ls-files``) and searches them (``git grep``),
configuration finds the project root (``git rev-parse``), and ``apply
--write`` checks for uncommitted changes (``git status``). A missing git
binary is never an error here: ``run_git`` returns None and each caller
decides what that means (no checkout to respect, nothing to protect).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path


def run_git(
    args: Sequence[str], cwd: Path | str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes] | None:
    """``git *args`` with its output captured; None when there is no git binary."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            check=False,
            env=None if env is None else {**os.environ, **env},
        )
    except OSError:
        return None


# Windows cannot wait on pipes (``selectors`` takes sockets only there).
PIPES_CAN_BE_WAITED_ON = os.name != "nt"


def run_git_streaming(
    args: Sequence[str], cwd: Path | str, on_record: Callable[[bytes], None]
) -> tuple[int, bytes] | None:
    """``git *args`` with ``-z`` output: ``on_record`` gets each NUL-terminated
    record as soon as git writes it (the caller works while git still runs);
    then (exit code, stderr). None when there is no git binary.

    Both pipes are read as data arrives, as ``communicate`` does, so git never
    blocks on a full stderr pipe. Windows cannot wait on pipes: there the
    output is handled once git has finished.
    """
    import selectors

    if not PIPES_CAN_BE_WAITED_ON:
        completed = run_git(args, cwd)
        if completed is None:
            return None
        for record in completed.stdout.split(b"\0"):
            on_record(record)
        return completed.returncode, completed.stderr
    try:
        process = subprocess.Popen(
            ["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError:
        return None
    assert process.stdout is not None and process.stderr is not None
    errors: list[bytes] = []
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is process.stderr:
                    errors.append(chunk)
                else:
                    *records, pending = (pending + chunk).split(b"\0")
                    for record in records:
                        on_record(record)
    if pending:
        on_record(pending)
    process.stdout.close()
    process.stderr.close()
    return process.wait(), b"".join(errors)


def enclosing_checkout(directory: str) -> str | None:
    """The nearest directory at or above ``directory`` holding a ``.git``."""
    current = os.path.abspath(directory)
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def git_refusal(stderr: bytes, directory: str) -> str | None:
    """The error message when git refused a checkout above ``directory``
    (``safe.directory``: a repository owned by another user), else None."""
    text = os.fsdecode(stderr)
    if "dubious ownership" not in text and "unsafe repository" not in text:
        return None
    checkout = enclosing_checkout(directory)
    if checkout is None:
        return None
    suggested = re.search(r"safe\.directory[ \t]+(\S[^\n]*)", text)
    target = suggested.group(1).strip() if suggested is not None else checkout
    return (
        "git refused this checkout (dubious ownership: the repository belongs to "
        "another user): .gitignore not applied and uncommitted changes cannot be "
        f"checked; run `git config --global --add safe.directory {target}`"
    )


class GitGrep:
    """``git grep -l`` for fixed strings in the ``.py`` files of one checkout, started at once.

    It searches the tracked files git reads from the work tree (those
    ``git ls-files -v`` tags ``H``: discovery marks them ``git_searchable``),
    as bytes, as the pre-filter's substring test does, in git's parallel C
    code: the whole 62 MB synthetic monorepo in ~0.04 s, against ~0.25 s to
    read and search it in Python. Untracked files are left to the pre-filter:
    with ``--untracked`` git walked the tree for them again after
    ``ls-files`` had, which cost a quarter of each search's CPU time.
    ``result()`` is None when git failed; the caller then reads the files.
    After it, ``complete`` says whether git read every file: it reports a
    file it cannot open on stderr (and still exits 0 or 1).
    """

    def __init__(self, directory: Path, needles: Iterable[str]) -> None:
        self.base = os.path.abspath(directory)
        # grep.fullName would print paths from the top of the checkout, not from here.
        command = ["git", "-c", "grep.fullName=false", "grep", "-l", "-z", "-F"]
        # One thread more than the cores (git's default is as many). Measured
        # on 2 cores, with the same files and needles: 0.035 s instead of
        # 0.057 s on the 5,200-file benchmark tree, 0.16 s instead of 0.30 s
        # on the 25,000-file one, and less CPU; git's main thread, which also
        # walks the tree for untracked files, seems to wait behind workers that
        # fill every core.
        command.append(f"--threads={(os.cpu_count() or 1) + 1}")
        for needle in sorted(set(needles)):
            command += ["-e", needle]
        command += ["--", "*.py"]
        self.complete = False
        self._process: subprocess.Popen[bytes] | None
        try:
            self._process = subprocess.Popen(
                command,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError:  # no git binary
            self._process = None

    def cancel(self) -> None:
        """Stop the search; its answer is not needed."""
        if self._process is not None:
            self._process.kill()
            self._process.communicate()
            self._process = None

    def result(self) -> set[str] | None:
        """Absolute paths of the files holding at least one needle (call once)."""
        if self._process is None:
            return None
        output, errors = self._process.communicate()
        # 1 is "no file matched"; anything else is trouble (odd config, bad repository).
        if self._process.returncode not in (0, 1):
            return None
        self.complete = not errors.strip()
        return {os.path.join(self.base, os.fsdecode(raw)) for raw in output.split(b"\0") if raw}
