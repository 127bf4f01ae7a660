"""``ctxmigrate progress``: what is left, where, and how far the migration is."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctxmigrate.cli.baseline_options import baseline_display, configured_baseline
from ctxmigrate.cli.run_options import RunSetup, engine_options, paths_argument, prepare_run
from ctxmigrate.cli.terminal import (
    file_console,
    is_stdout,
    progress_bar,
    stderr_console,
    stdout_console,
    strip_trailing_spaces,
    write_text_output,
)
from ctxmigrate.codemods import engine
from ctxmigrate.codemods.baseline import load_baseline
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import ConfigError
from ctxmigrate.codemods.progress import Progress, measure_progress

if TYPE_CHECKING:
    from ctxmigrate.codemods.history import AuditTree


def _history_counter(jobs: int | None, no_cache: bool) -> AuditTree:
    from ctxmigrate.codemods.history import category_counts

    def audit_tree(paths: Sequence[Path], config: Config) -> tuple[dict[str, int], int]:
        result = engine.run(paths, config, None, jobs=jobs, use_cache=not no_cache)
        report = result.report
        return category_counts([f.category for f in report.findings]), len(report.errors)

    return audit_tree


@click.command("progress")
@paths_argument
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Measure against this baseline (default: 'baseline' in the config).",
)
@click.option("--no-baseline", is_flag=True, help="Ignore the configured baseline.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "html"]),
    default="table",
    show_default=True,
    help="table for people, json (version 1), html (one self-contained file; needs -o).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the report to FILE (atomically) instead of stdout.",
)
@click.option(
    "--history",
    type=click.IntRange(min=1),
    metavar="N",
    help="Also audit the last N commits from git objects (cached per commit) for a burndown.",
)
@click.option(
    "--link-base",
    metavar="URL",
    help="HTML links to sites: URL + path + '#L' + line (default: relative file links).",
)
@engine_options
def progress_command(
    paths: tuple[Path, ...],
    baseline_file: Path | None,
    no_baseline: bool,
    output_format: str,
    output: Path | None,
    history: int | None,
    link_base: str | None,
    config_file: Path | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Show what is left to migrate under PATHS by category, rule and directory,
    and the share done against the baseline. Always exits 0 on success:
    gate CI with ``audit --baseline``."""
    if no_baseline and baseline_file is not None:
        raise ConfigError("--no-baseline cannot be combined with --baseline")
    if output_format == "html" and is_stdout(output):
        raise ConfigError("--format html needs --output FILE")
    setup = prepare_run(paths, config_file, select, ignore)
    baseline_path = configured_baseline(setup.config, baseline_file, no_baseline)
    baseline = load_baseline(baseline_path) if baseline_path is not None else None
    with progress_bar(stderr_console, "auditing") as bar:
        result = engine.run(
            setup.paths, setup.config, None, jobs=jobs, progress=bar, use_cache=not no_cache
        )
    progress = measure_progress(
        result.report,
        setup.config.root,
        setup.paths,
        baseline,
        baseline_display(baseline_path) if baseline_path is not None else None,
    )
    if history is not None:
        from ctxmigrate.codemods.history import audit_history

        progress.history = audit_history(
            setup.config,
            setup.paths,
            history,
            _history_counter(jobs, no_cache),
            use_cache=not no_cache,
        )
    if is_stdout(output):
        output = None
    if output_format == "json":
        write_text_output(
            json.dumps(progress.to_json(), indent=2, ensure_ascii=False) + "\n", output
        )
    elif output_format == "html":
        from ctxmigrate.cli.render_progress_html import progress_html

        assert output is not None
        write_text_output(
            progress_html(progress, setup.rules_by_id, output, link_base, setup.config.root), output
        )
    else:
        _render_table(progress, setup, output)


def _render_table(progress: Progress, setup: RunSetup, output: Path | None) -> None:
    from ctxmigrate.cli.render_progress_table import render_progress

    if output is None:
        console = stdout_console()
        if console.is_terminal:
            render_progress(progress, setup.rules_by_id, console)
            return
        with console.capture() as captured:
            render_progress(progress, setup.rules_by_id, console)
        write_text_output(strip_trailing_spaces(captured.get()), None)
        return
    buffer = io.StringIO()
    render_progress(progress, setup.rules_by_id, file_console(buffer))
    write_text_output(strip_trailing_spaces(buffer.getvalue()), output)
