"""``ModuleNamer`` (per directory, remembered) names files as walking up from each file does."""

from __future__ import annotations

import os
from pathlib import Path

from ctxmigrate.codemods.module_names import ModuleNamer, module_names


def _names_by_walking(path: str, root: str) -> tuple[str, tuple[str, ...]]:
    """The per-file algorithm ``ModuleNamer`` replaced, kept as the oracle."""

    def is_package(directory: str) -> bool:
        return os.path.isfile(os.path.join(directory, "__init__.py"))

    directory, filename = os.path.split(path)
    stem = filename[:-3] if filename.endswith(".py") else filename
    parts: list[str] = [] if stem == "__init__" else [stem]
    in_package = is_package(directory)
    while is_package(directory):
        parent, package = os.path.split(directory)
        if not package:
            break
        parts.insert(0, package)
        directory = parent
    by_packages = ".".join(parts)
    by_root = ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if path.startswith(prefix):
        relative = path[len(prefix) :].replace(os.sep, "/").removesuffix(".py").split("/")
        if relative and relative[0] == "src" and len(relative) > 1:
            relative = relative[1:]
        if relative and relative[-1] == "__init__":
            relative = relative[:-1]
        if all(part.isidentifier() for part in relative):
            by_root = ".".join(relative)
    primary = by_packages or by_root or stem if in_package or not by_root else by_root
    aliases = tuple(sorted({name for name in (by_packages, by_root) if name and name != primary}))
    return primary, aliases


LAYOUT = (
    "__init__.py",
    "top.py",
    "src/__init__.py",
    "src.py",
    "src/app/__init__.py",
    "src/app/handler.py",
    "src/app/sub/__init__.py",
    "src/app/sub/deep.py",
    "src/loose/script.py",
    "pkg/__init__.py",
    "pkg/mod.py",
    "pkg/not-an-identifier.py",
    "pkg/nested/__init__.py",
    "pkg/nested/more.py",
    "pkg/namespace/inside.py",
    "pkg/namespace/__init__py_lookalike.py",
    "services/chat/handler.py",
    "services/chat/__init__.py.bak",
    "scripts/run-me/tool.py",
    "scripts/run-me/__init__.py",
    "scripts/run-me/inner/__init__.py",
    "scripts/run-me/inner/x.py",
    "noext/script",
    "tests/test_a.py",
    "tests/__init__.py",
    "class/mod.py",
)


def test_per_directory_names_equal_the_per_file_walk(tmp_path: Path) -> None:
    root = tmp_path / "project"
    for relative in LAYOUT:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("")
    outside = tmp_path / "elsewhere" / "pkg"
    outside.mkdir(parents=True)
    (outside / "__init__.py").write_text("")
    (outside / "mod.py").write_text("")
    paths = [str(root / relative) for relative in LAYOUT]
    paths += [str(outside / "mod.py"), str(outside / "__init__.py")]
    for base in (str(root), str(root) + os.sep, str(root / "src"), str(tmp_path)):
        namer = ModuleNamer(base)
        for path in paths:
            expected = _names_by_walking(path, base)
            assert namer(path) == expected, (path, base)
            assert module_names(path, base) == expected, (path, base)
    # Remembered directories give the same answers the second time.
    namer = ModuleNamer(str(root))
    first = [namer(path) for path in paths]
    assert [namer(path) for path in reversed(paths)] == first[::-1]


def test_the_package_walk_stops_at_the_filesystem_root() -> None:
    packages = {"/", "/a"}
    namer = ModuleNamer("/", lambda directory: directory in packages)
    assert namer("/a/b.py") == ("a.b", ())
    assert namer("/c.py") == ("c", ())
