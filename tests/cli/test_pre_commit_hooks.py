"""The pre-commit hooks users install: valid, and in step with the CLI and its extra."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ctxmigrate.cli.main import cli

REPOSITORY = Path(__file__).resolve().parents[2]


def hooks() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((REPOSITORY / ".pre-commit-hooks.yaml").read_text())
    return {hook["id"]: hook for hook in document}


def test_audit_hook_fails_on_rewrite_for_python_files() -> None:
    hook = hooks()["ctxmigrate-audit"]
    assert hook["entry"] == "ctxmigrate audit --fail-on rewrite"
    assert hook["language"] == "python"
    assert hook["types"] == ["python"]
    assert hook["pass_filenames"] is True


@pytest.mark.parametrize(
    "hook_id", ["ctxmigrate-audit", "ctxmigrate-audit-new", "ctxmigrate-apply"]
)
def test_hook_entries_parse_with_the_cli(hook_id: str, tmp_path: Path) -> None:
    program, command_name, *options = shlex.split(hooks()[hook_id]["entry"])
    assert program == "ctxmigrate"
    # Subcommands load lazily: ask the group, as click does when it runs one.
    command = cli.get_command(click.Context(cli), command_name)
    assert command is not None
    staged = tmp_path / "staged.py"
    staged.write_text("x = 1\n")
    with command.make_context(command_name, [*options, str(staged)]) as ctx:
        assert isinstance(ctx, click.Context)
        assert ctx.params["paths"] == (staged,)


@pytest.mark.parametrize(
    "hook_id", ["ctxmigrate-audit", "ctxmigrate-audit-new", "ctxmigrate-apply"]
)
def test_hooks_install_the_cli_extra(hook_id: str) -> None:
    # pre-commit installs the package without extras.
    pyproject = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    cli_extra = pyproject["project"]["optional-dependencies"]["cli"]
    assert hooks()[hook_id]["additional_dependencies"] == cli_extra
