"""Configuration: pyproject.toml ``[tool.ctxmigrate]`` and ``ctxmigrate.yaml``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxmigrate.codemods.config import (
    DEFAULT_TEST_PATTERNS,
    Config,
    legacy_short_names,
    load_config,
)
from ctxmigrate.codemods.model import ConfigError

PYPROJECT = """\
[project]
name = "app"

[tool.ctxmigrate]
factories = ["app.dependencies.create_user_execution_context"]
websocket-contexts = ["app.websocket_core.context.WebSocketContext"]
manager-factories = ["app.websocket_core.manager.create_websocket_manager"]
session-target = "self.session_manager.get_or_create_user_session"
tests = ["tests/", "*_spec.py"]
exclude = ["migrations/"]
select = ["CTX001"]
ignore = ["string-reference"]
max-file-size = 1000
"""


def test_defaults_without_any_config_file(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == Config(root=tmp_path.resolve())
    assert config.test_patterns == DEFAULT_TEST_PATTERNS
    assert config.session_target == "ctxmigrate.shim.get_or_create_user_session"
    assert legacy_short_names(config) == {
        "create_user_execution_context",
        "WebSocketContext",
        "create_websocket_manager",
    }


def test_pyproject_table_is_read_and_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "app" / "deep").mkdir(parents=True)
    config = load_config(tmp_path / "app" / "deep")
    assert config.root == tmp_path.resolve()
    assert config.factories == ("app.dependencies.create_user_execution_context",)
    assert config.websocket_contexts == ("app.websocket_core.context.WebSocketContext",)
    assert config.manager_factories == ("app.websocket_core.manager.create_websocket_manager",)
    assert config.session_target == "self.session_manager.get_or_create_user_session"
    assert config.test_patterns == ("tests/", "*_spec.py")
    assert config.exclude == ("migrations/",)
    assert (config.select, config.ignore) == (("CTX001",), ("string-reference",))
    assert config.max_file_bytes == 1000


def test_pyproject_without_the_table_is_skipped_for_one_higher_up(tmp_path: Path) -> None:
    (tmp_path / "ctxmigrate.yaml").write_text("exclude: [vendor/]\n")
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "pyproject.toml").write_text('[project]\nname = "service"\n')
    config = load_config(tmp_path / "service")
    assert config.root == tmp_path.resolve()
    assert config.exclude == ("vendor/",)


def test_yaml_uses_the_same_keys(tmp_path: Path) -> None:
    (tmp_path / "ctxmigrate.yaml").write_text(
        "factories:\n  - app.deps.create_user_execution_context\nmanager-target: app.shim.managed\n"
    )
    config = load_config(tmp_path)
    assert config.factories == ("app.deps.create_user_execution_context",)
    assert config.manager_target == "app.shim.managed"


def test_explicit_config_file(tmp_path: Path) -> None:
    custom = tmp_path / "conf" / "audit.yaml"
    custom.parent.mkdir()
    custom.write_text("tests: [spec/]\n")
    config = load_config(tmp_path, custom)
    assert config.test_patterns == ("spec/",)
    assert config.root == custom.parent.resolve()


def test_empty_yaml_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "ctxmigrate.yaml").write_text("")
    assert load_config(tmp_path) == Config(root=tmp_path.resolve())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.ctxmigrate]\nfactorys = []\n", "unknown key 'factorys'"),
        ("[tool.ctxmigrate]\nfactories = 3\n", "'factories' must be a list of strings"),
        ("[tool.ctxmigrate]\nfactories = [1]\n", "'factories' must be a list of strings"),
        ("[tool.ctxmigrate]\nfactories = ['create']\n", "must be a qualified name"),
        ("[tool.ctxmigrate]\nsession-target = ''\n", "'session-target' must be a non-empty"),
        ("[tool.ctxmigrate]\nsession-target = 'a b'\n", "'session-target' must be a dotted"),
        ("[tool.ctxmigrate]\nmax-file-size = true\n", "'max-file-size' must be a positive"),
        ("[tool.ctxmigrate]\nmax-file-size = -1\n", "'max-file-size' must be a positive"),
        ("[tool.ctxmigrate\n", "invalid TOML"),
        ("[tool]\nctxmigrate = 3\n", "must be a table"),
    ],
)
def test_pyproject_errors_name_the_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(tmp_path)
    assert str(tmp_path / "pyproject.toml") in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "the top level must be a mapping"),
        ("exclude: [unclosed\n", "invalid YAML"),
        ("tests: {a: 1}\n", "'tests' must be a list of strings"),
    ],
)
def test_yaml_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "ctxmigrate.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(tmp_path)
    assert "ctxmigrate.yaml" in str(raised.value)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path, tmp_path / "nope.toml")


def test_fingerprint_changes_with_what_changes_results(tmp_path: Path) -> None:
    base = Config(root=tmp_path)
    assert base.fingerprint() == Config(root=tmp_path / "elsewhere").fingerprint()
    assert base.fingerprint() != Config(root=tmp_path, factories=("a.b.c",)).fingerprint()
    assert base.fingerprint() != Config(root=tmp_path, test_patterns=("spec/",)).fingerprint()
