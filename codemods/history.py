"""``progress --history N``: audit the last N commits straight from git objects.

The work tree is never checked out or touched: each commit's files under the
run's paths come out of ``git archive`` (a tar stream of the commit's blobs)
into a private temporary directory, which the engine audits like any tree.
Only the counts are kept, cached per commit under
``.ctxmigrate_cache/history/``: the key is the commit id (its content is
immutable), the paths audited, the configuration and the ctxmigrate version,
so a second run reads N small JSON files instead of auditing.

Consecutive commits share most files, so after the first extraction the tree
is moved from one commit to the next by writing only the files ``git diff``
names (their blobs read with one ``git cat-file --batch``); symlinks and
submodules fall back to a full extraction.

The commits are the first-parent chain of HEAD (the branch's own history, one
point per merge), oldest first in the result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ctxmigrate.codemods.cache import CACHE_DIRECTORY, digest
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import CATEGORIES, CtxmigrateError
from ctxmigrate.codemods.progress import HistoryPoint

HISTORY_CACHE_KIND = "history"
# The engine's own content-hash cache lives in this directory of the
# extracted tree and is kept from one commit to the next (unchanged files are
# not parsed again).
_KEEP_BETWEEN_COMMITS = CACHE_DIRECTORY

AuditTree = Callable[[Sequence[Path], Config], tuple[dict[str, int], int]]


class HistoryError(CtxmigrateError):
    """--history cannot run here (not a git checkout, no commits)."""


@dataclass(frozen=True)
class Commit:
    id: str
    date: str
    subject: str


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as error:
        raise HistoryError(f"--history needs git: {error.strerror}") from error


def git_toplevel(directory: Path) -> Path:
    completed = _git(["rev-parse", "--show-toplevel"], directory)
    if completed.returncode != 0:
        detail = completed.stderr.decode(errors="replace").strip()
        raise HistoryError(f"--history needs a git checkout: {directory}: {detail}")
    return Path(os.fsdecode(completed.stdout.rstrip(b"\n"))).resolve()


def last_commits(toplevel: Path, count: int) -> list[Commit]:
    """The last ``count`` first-parent commits of HEAD, oldest first."""
    completed = _git(
        ["log", "--first-parent", f"-n{count}", "--format=%H%x00%cI%x00%s", "HEAD", "--"],
        toplevel,
    )
    if completed.returncode != 0:
        detail = completed.stderr.decode(errors="replace").strip()
        raise HistoryError(f"--history: cannot list commits: {detail}")
    commits = []
    for line in completed.stdout.decode("utf-8", errors="replace").splitlines():
        commit_id, date, subject = line.split("\0", 2)
        commits.append(Commit(commit_id, date, subject))
    commits.reverse()
    return commits


def _extract(toplevel: Path, commit: str, pathspecs: Sequence[str], tree: Path) -> None:
    """The commit's files under ``pathspecs`` into ``tree`` (emptied first,
    except the engine cache). A pathspec absent at that commit yields nothing."""
    for child in tree.iterdir():
        if child.name == _KEEP_BETWEEN_COMMITS:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    present = [spec for spec in pathspecs if _exists_at(toplevel, commit, spec)]
    if not present:
        return
    with tempfile.TemporaryFile() as archive:
        completed = subprocess.run(
            ["git", "archive", "--format=tar", commit, "--", *(spec or "." for spec in present)],
            cwd=toplevel,
            stdout=archive,
            stderr=subprocess.PIPE,
            check=False,
        )
        if completed.returncode != 0:
            detail = completed.stderr.decode(errors="replace").strip()
            raise HistoryError(f"--history: git archive {commit[:12]} failed: {detail}")
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r:") as members:
            # "data": no absolute paths, no links out of the tree, no devices.
            members.extractall(tree, filter="data")


def _update(
    toplevel: Path, previous: str, commit: str, pathspecs: Sequence[str], tree: Path
) -> bool:
    """Turn ``tree`` (holding ``previous``) into ``commit`` by writing only the
    files that differ. False when that is not simple (symlinks, submodules,
    odd names): the caller extracts the whole commit instead."""
    specs = [spec or "." for spec in pathspecs]
    completed = _git(
        ["diff", "--raw", "-z", "--no-renames", "--no-abbrev", previous, commit, "--", *specs],
        toplevel,
    )
    if completed.returncode != 0:
        return False
    fields = completed.stdout.split(b"\0")
    changes: list[tuple[str, str]] = []  # (status, path)
    for header, raw_path in zip(fields[0::2], fields[1::2], strict=False):
        if not header:
            break
        old_mode, new_mode, _, _, status = header.decode().lstrip(":").split(" ")
        path = os.fsdecode(raw_path)
        if {old_mode, new_mode} & {"120000", "160000"} or "\n" in path:
            return False
        changes.append((status, path))
    wanted = [path for status, path in changes if status != "D"]
    contents = _blobs(toplevel, commit, wanted)
    if contents is None:
        return False
    for status, path in changes:
        target = tree / path
        if status == "D":
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(contents[path])
    return True


def _blobs(toplevel: Path, commit: str, paths: Sequence[str]) -> dict[str, bytes] | None:
    """The content of ``paths`` at ``commit``, in one ``git cat-file --batch``."""
    if not paths:
        return {}
    request = "".join(f"{commit}:{path}\n" for path in paths).encode()
    try:
        completed = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=toplevel,
            input=request,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if completed.returncode != 0:
        return None
    output = completed.stdout
    contents: dict[str, bytes] = {}
    position = 0
    for path in paths:
        end = output.index(b"\n", position)
        header = output[position:end].split(b" ")
        if len(header) != 3 or header[1] != b"blob":
            return None
        size = int(header[2])
        contents[path] = output[end + 1 : end + 1 + size]
        position = end + 1 + size + 1
    return contents


def _exists_at(toplevel: Path, commit: str, spec: str) -> bool:
    if spec in ("", "."):
        return True
    completed = _git(["cat-file", "-e", f"{commit}:{spec}"], toplevel)
    return completed.returncode == 0


def _cache_file(root: Path, key: str) -> Path:
    return root / CACHE_DIRECTORY / HISTORY_CACHE_KIND / f"{key}.json"


def _load_counts(path: Path) -> dict[str, int] | None:
    try:
        value: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict) or set(value) != set(CATEGORIES):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
        return None
    return {category: value[category] for category in CATEGORIES}


def _store_counts(path: Path, counts: dict[str, int]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# created by ctxmigrate\n*\n", encoding="utf-8")
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(counts, handle, sort_keys=True)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only checkout: the cache is an optimisation only


def audit_history(
    config: Config,
    run_paths: Sequence[Path],
    count: int,
    audit_tree: AuditTree,
    use_cache: bool = True,
) -> list[HistoryPoint]:
    """One point per commit (oldest first): the category counts of the run's
    paths as they were at that commit.

    ``audit_tree(paths, config)`` audits an extracted tree and returns its
    category counts (the caller runs the engine, so selection and jobs apply).
    """
    toplevel = git_toplevel(config.root if config.root.is_dir() else config.root.parent)
    root_inside = os.path.relpath(config.root.resolve(), toplevel)
    if root_inside.startswith(".."):
        raise HistoryError(f"--history: the project root {config.root} is outside {toplevel}")
    pathspecs = []
    for path in run_paths:
        relative = os.path.relpath(Path(path).resolve(), toplevel)
        if relative.startswith(".."):
            raise HistoryError(f"--history: {path} is outside the git checkout {toplevel}")
        pathspecs.append("" if relative == "." else relative.replace(os.sep, "/"))
    commits = last_commits(toplevel, count)
    # Everything but the root (which differs per extraction) that changes results.
    config_key = config.fingerprint() + repr((config.select, config.ignore, config.exclude))
    points: list[HistoryPoint] = []
    with tempfile.TemporaryDirectory(prefix="ctxmigrate-history-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        tree_root = tree / root_inside if root_inside != "." else tree
        extracted: str | None = None  # the commit ``tree`` holds
        for commit in commits:
            key = digest(commit.id, root_inside, *pathspecs, config_key)
            cache_file = _cache_file(config.root, key)
            counts = _load_counts(cache_file) if use_cache else None
            cached = counts is not None
            if counts is None:
                # Consecutive commits share most files: write only the changes.
                if extracted is None or not _update(
                    toplevel, extracted, commit.id, pathspecs, tree
                ):
                    _extract(toplevel, commit.id, pathspecs, tree)
                extracted = commit.id
                tree_root.mkdir(parents=True, exist_ok=True)
                targets = [tree / spec if spec else tree for spec in pathspecs]
                existing = [target for target in targets if target.exists()]
                counts = dict.fromkeys(CATEGORIES, 0)
                if existing:
                    found, _errors = audit_tree(existing, replace(config, root=tree_root))
                    counts.update(found)
                if use_cache:
                    _store_counts(cache_file, counts)
            points.append(HistoryPoint(commit.id, commit.date, commit.subject, counts, cached))
    return points


def category_counts(categories: Sequence[str]) -> dict[str, int]:
    counts = Counter(categories)
    return {category: counts.get(category, 0) for category in CATEGORIES}
