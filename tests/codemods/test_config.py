"""Configuration: pyproject.toml ``[tool.ctxmigrate]`` and ``ctxmigrate.yaml``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import (
    DEFAULT_TEST_PATTERNS,
    Config,
    default_root,
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('tool = "x"\n', "'tool' must be a table ([tool]), got a string"),
        ("[[tool]]\nname = 1\n", "'tool' must be a table ([tool]), got an array"),
        ("tool = 3\n", "'tool' must be a table ([tool]), got a number"),
        (
            '[tool]\nctxmigrate = "x"\n',
            "'tool.ctxmigrate' must be a table ([tool.ctxmigrate]), got a string",
        ),
        (
            "[[tool.ctxmigrate]]\nselect = []\n",
            "'tool.ctxmigrate' must be a table ([tool.ctxmigrate]), got an array",
        ),
    ],
)
def test_a_tool_key_of_the_wrong_shape_is_a_configuration_error(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path)
    assert str(raised.value) == f"{tmp_path / 'pyproject.toml'}: {message}"


def test_a_tool_key_of_the_wrong_shape_exits_2_in_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ctxmigrate.cli.main import cli

    (tmp_path / "pyproject.toml").write_text('tool = "x"\n')
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["audit", "--no-cache", "."])
    assert result.exit_code == 2
    assert "'tool' must be a table" in result.output
    assert "Traceback" not in result.output


# --- the project root without a configuration file ---------------------------------------

HELPER = (
    "from app.deps import create_user_execution_context\n\n"
    "async def make(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)


def helper_tree(root: Path) -> None:
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "deps.py").write_text(
        "def create_user_execution_context(user_id, thread_id):\n    return 1\n"
    )
    (root / "tests").mkdir()
    (root / "tests" / "helpers.py").write_text(HELPER)


def helper_category(paths: list[Path]) -> str:
    from ctxmigrate.codemods.engine import run

    config = load_config(paths[0], paths=paths)
    report = run(paths, config, use_cache=False, jobs=1).report
    (category,) = [f.category for f in report.findings if f.path.endswith("helpers.py")]
    return category


def test_without_a_config_file_the_root_does_not_depend_on_the_first_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    helpers, deps = Path("tests/helpers.py"), Path("app/deps.py")
    for paths in ([Path(".")], [helpers, deps], [deps, helpers], [Path("tests"), Path("app")]):
        assert load_config(paths[0], paths=paths).root == tmp_path.resolve(), paths
        assert helper_category(paths) == "keep", paths


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_without_a_config_file_the_root_is_the_git_top_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    helper_tree(repo)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo / "tests")
    # ".." is outside the current directory: the checkout still decides.
    paths = [Path("."), Path("..")]
    assert load_config(paths[0], paths=paths).root == repo.resolve()
    assert helper_category(paths) == "keep"
    assert load_config(Path("helpers.py")).root == repo.resolve()


def test_without_a_config_file_or_git_the_root_is_the_current_directory_or_the_first_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "project" / "pkg").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    inside, outside = Path("pkg"), tmp_path / "other"
    assert load_config(inside, paths=[inside]).root == (tmp_path / "project").resolve()
    assert load_config(inside, paths=[inside, outside]).root == (tmp_path / "project/pkg").resolve()
    assert load_config(outside, paths=[outside, inside]).root == outside.resolve()
    assert default_root(inside, [inside], cwd=tmp_path) == tmp_path.resolve()


# --- select and ignore -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "ignore"),
    [
        (("CTX001",), ("CTX001",)),
        (("CTX001",), ("reuse-session",)),
        ((), ("CTX001", "CTX002", "CTX003", "CTX101", "CTX102", "CTX103", "CTX104", "CTX105")),
    ],
)
def test_select_and_ignore_that_leave_no_rule_are_a_configuration_error(
    tmp_path: Path, select: tuple[str, ...], ignore: tuple[str, ...]
) -> None:
    from ctxmigrate.codemods.engine import run

    (tmp_path / "a.py").write_text("x = 1\n")
    config = Config(root=tmp_path, select=select, ignore=ignore)
    with pytest.raises(ConfigError, match=r"^no rule selected: "):
        run([tmp_path], config, use_cache=False)
    # One rule left is enough.
    run([tmp_path], Config(root=tmp_path, select=select, ignore=ignore[1:]), use_cache=False)


def test_conflicting_select_and_ignore_exit_2_in_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from ctxmigrate.cli.main import cli

    (tmp_path / "pyproject.toml").write_text(
        '[tool.ctxmigrate]\nselect = ["CTX001"]\nignore = ["reuse-session"]\n'
    )
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["audit", "--no-cache", "."])
    assert result.exit_code == 2
    assert "no rule selected" in result.output
