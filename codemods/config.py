"""Project configuration: ``[tool.ctxmigrate]`` in pyproject.toml or ``ctxmigrate.yaml``.

Both files use the same kebab-case keys. Lookup starts at the given path and
walks up to the filesystem root; the first directory holding a
``ctxmigrate.yaml`` or a pyproject.toml with a ``[tool.ctxmigrate]`` table
wins, and that directory is the project root (test patterns, excludes and the
cache are relative to it). Without a config file every default applies and the
root must not depend on the order of the paths (pre-commit passes staged files
in any order): the git top level of the first path in a checkout, else the
current directory when every path is inside it, else the first path's
directory (see ``default_root``).
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxmigrate.codemods.model import ConfigError

DEFAULT_TEST_PATTERNS = ("tests/", "test_*.py", "*_test.py", "conftest.py")
# Generated files beyond this size are skipped with an error instead of parsed:
# LibCST needs about a second per megabyte and minified or generated code is
# never a hand-written legacy site.
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024

# The names discovered in the scanned tree when no qualified name is configured.
DEFAULT_FACTORY_NAME = "create_user_execution_context"
DEFAULT_WEBSOCKET_CONTEXT_NAME = "WebSocketContext"
DEFAULT_MANAGER_FACTORY_NAME = "create_websocket_manager"


@dataclass(frozen=True)
class Config:
    root: Path
    # Qualified names of the legacy definitions; empty means "discover the
    # module-level definition with the default name in the scanned tree".
    factories: tuple[str, ...] = ()
    websocket_contexts: tuple[str, ...] = ()
    manager_factories: tuple[str, ...] = ()
    session_target: str = "ctxmigrate.shim.get_or_create_user_session"
    websocket_target: str = "ctxmigrate.shim.session_websocket_context"
    manager_target: str = "ctxmigrate.shim.get_manager_for_context"
    # gitignore-style patterns, relative to ``root``.
    test_patterns: tuple[str, ...] = DEFAULT_TEST_PATTERNS
    exclude: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    # The baseline file (``baseline = "FILE"``), relative to ``root``; see codemods/baseline.py.
    baseline: str | None = None

    def fingerprint(self) -> str:
        """Everything that changes analysis results, for the content-hash cache."""
        fields = (
            self.factories,
            self.websocket_contexts,
            self.manager_factories,
            self.session_target,
            self.websocket_target,
            self.manager_target,
            self.test_patterns,
            self.max_file_bytes,
        )
        return repr(fields)


_TUPLE_KEYS = {
    "factories": "factories",
    "websocket-contexts": "websocket_contexts",
    "manager-factories": "manager_factories",
    "tests": "test_patterns",
    "exclude": "exclude",
    "select": "select",
    "ignore": "ignore",
}
_STRING_KEYS = {
    "session-target": "session_target",
    "websocket-target": "websocket_target",
    "manager-target": "manager_target",
}
_INT_KEYS = {"max-file-size": "max_file_bytes"}
_PATH_KEYS = {"baseline": "baseline"}
KNOWN_KEYS = (
    frozenset(_TUPLE_KEYS) | frozenset(_STRING_KEYS) | frozenset(_INT_KEYS) | frozenset(_PATH_KEYS)
)


def load_config(
    start: Path,
    config_file: Path | None = None,
    paths: Sequence[Path] | None = None,
    cwd: Path | None = None,
) -> Config:
    """The configuration for a run started at ``start`` (a file or directory).

    ``config_file`` (pyproject.toml or a YAML file) bypasses the lookup; a
    pyproject.toml given explicitly without a ``[tool.ctxmigrate]`` table means
    "all defaults, rooted there". ``paths`` (every path of the run, ``start``
    first) and ``cwd`` only matter without a configuration file: see
    ``default_root``.
    """
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"{config_file}: configuration file not found")
        table = _read_table(config_file)
        return config_from_mapping(table or {}, config_file.resolve().parent, config_file)
    start_dir = start.resolve()
    if not start_dir.is_dir():
        start_dir = start_dir.parent
    for directory in (start_dir, *start_dir.parents):
        for name in ("ctxmigrate.yaml", "pyproject.toml"):
            candidate = directory / name
            if candidate.is_file():
                table = _read_table(candidate)
                if table is not None:
                    return config_from_mapping(table, directory, candidate)
    return Config(root=default_root(start, paths or (start,), cwd))


def default_root(start: Path, paths: Sequence[Path], cwd: Path | None = None) -> Path:
    """The project root when no configuration file is found.

    1. The git top level of ``start`` when it is in a checkout;
    2. else the current directory when every path is inside it;
    3. else ``start``'s directory (``start`` itself when it is a directory).

    Test patterns (``tests/``) are matched relative to it, so whether
    ``tests/helpers.py`` is test code must not depend on which path came first.
    """
    start_dir = start.resolve()
    if not start_dir.is_dir():
        start_dir = start_dir.parent
    toplevel = _git_toplevel(start_dir)
    if toplevel is not None:
        return toplevel
    current = (cwd if cwd is not None else Path.cwd()).resolve()
    if all(_inside(path.resolve(), current) for path in paths):
        return current
    return start_dir


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _git_toplevel(directory: Path) -> Path | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=directory,
            capture_output=True,
            check=False,
        )
    except OSError:  # no git binary
        return None
    output = completed.stdout.rstrip(b"\n")
    if completed.returncode != 0 or not output:
        return None  # not a checkout (or a refused one: discovery reports that)
    return Path(os.fsdecode(output)).resolve()


def _read_table(path: Path) -> Mapping[str, Any] | None:
    """The ctxmigrate settings in ``path``; None when a pyproject.toml has none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read configuration: {error}") from error
    if path.name == "pyproject.toml" or path.suffix == ".toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from error
        tool = document.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: 'tool' must be a table ([tool]), got {_kind(tool)}")
        table = tool.get("ctxmigrate")
        if table is None:
            return None
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: 'tool.ctxmigrate' must be a table ([tool.ctxmigrate]), got {_kind(table)}"
            )
        return table
    import yaml  # only YAML users pay for the import

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of ctxmigrate settings")
    return loaded


def _kind(value: object) -> str:
    """How a TOML/YAML value of the wrong shape is described in an error."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def config_from_mapping(table: Mapping[str, Any], root: Path, source: Path | str) -> Config:
    """Validate a settings mapping (kebab-case keys) into a Config rooted at ``root``."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in _TUPLE_KEYS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{source}: '{key}' must be a list of strings")
            values[_TUPLE_KEYS[key]] = tuple(value)
        elif key in _STRING_KEYS:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: '{key}' must be a non-empty string")
            values[_STRING_KEYS[key]] = value.strip()
        elif key in _INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{source}: '{key}' must be a positive integer (bytes)")
            values[_INT_KEYS[key]] = value
        elif key in _PATH_KEYS:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{source}: '{key}' must be a non-empty path (a string)")
            values[_PATH_KEYS[key]] = value
        else:
            known = ", ".join(sorted(KNOWN_KEYS))
            raise ConfigError(f"{source}: unknown key '{key}' (known keys: {known})")
    for key in ("factories", "websocket-contexts", "manager-factories"):
        for qualname in values.get(_TUPLE_KEYS[key], ()):
            if not _is_dotted_name(qualname) or "." not in qualname:
                raise ConfigError(
                    f"{source}: '{key}' entry {qualname!r} must be a qualified name "
                    "such as 'pkg.module.name'"
                )
    for key in _STRING_KEYS:
        target = values.get(_STRING_KEYS[key])
        if target is not None and not _is_dotted_name(target):
            raise ConfigError(f"{source}: '{key}' must be a dotted name, got {target!r}")
    return Config(root=root, **values)


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def legacy_short_names(config: Config) -> frozenset[str]:
    """The names the pre-filter starts from (before any alias is learned)."""
    names: set[str] = set()
    for configured, default in (
        (config.factories, DEFAULT_FACTORY_NAME),
        (config.websocket_contexts, DEFAULT_WEBSOCKET_CONTEXT_NAME),
        (config.manager_factories, DEFAULT_MANAGER_FACTORY_NAME),
    ):
        if configured:
            names.update(qualname.rpartition(".")[2] for qualname in configured)
        else:
            names.add(default)
    return frozenset(names)
