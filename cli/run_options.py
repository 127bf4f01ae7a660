"""Options shared by ``audit`` and ``apply``, and the run they describe."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import click

from ctxmigrate.cli.rule_catalogue import all_rules, registered_codemods
from ctxmigrate.codemods.config import Config, load_config
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.selection import apply_rule_selection
from ctxmigrate.codemods.sites import Codemod

F = TypeVar("F", bound=Callable[..., Any])


def paths_argument(command: F) -> F:
    return click.argument(
        "paths",
        nargs=-1,
        type=click.Path(exists=True, file_okay=True, dir_okay=True, path_type=Path),
    )(command)


def engine_options(command: F) -> F:
    """--config, --select, --ignore, --jobs, --no-cache (in --help order)."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="pyproject.toml or ctxmigrate.yaml to use instead of looking one up.",
        ),
        click.option(
            "--select",
            multiple=True,
            metavar="RULES",
            help="Only these rules (ids or names, comma separated or repeated).",
        ),
        click.option(
            "--ignore",
            multiple=True,
            metavar="RULES",
            help="Skip these rules (ids or names), in addition to the configured ones.",
        ),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(min=1),
            help="Worker processes (default: one per CPU when there are many files).",
        ),
        click.option("--no-cache", is_flag=True, help="Ignore and do not update the cache."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class RunSetup:
    """What a run needs; the registry (which imports libcst) is loaded on first use."""

    paths: tuple[Path, ...]
    config: Config

    @cached_property
    def codemods(self) -> tuple[Codemod, ...]:
        return registered_codemods()

    @cached_property
    def rules(self) -> tuple[Rule, ...]:
        return all_rules()

    @property
    def rules_by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}


def prepare_run(
    paths: Sequence[Path],
    config_file: Path | None,
    select: Sequence[str],
    ignore: Sequence[str],
) -> RunSetup:
    """Config (looked up from the first path, as ruff does), rules and codemods."""
    run_paths = tuple(paths) or (Path("."),)
    setup = RunSetup(run_paths, load_config(run_paths[0], config_file, paths=run_paths))
    config = setup.config
    if select or ignore or config.select or config.ignore:
        # The engine applies select/ignore; names are validated and turned into ids here.
        setup.config = apply_rule_selection(config, select, ignore, setup.rules)
    return setup
