"""``ctxmigrate audit``: find and classify every legacy site."""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import click

from ctxmigrate import __version__
from ctxmigrate.cli.baseline_options import apply_baseline_options, baseline_options
from ctxmigrate.cli.evidence_options import (
    SortOrder,
    attach_loaded_evidence,
    evidence_options,
    load_evidence_options,
)
from ctxmigrate.cli.run_options import engine_options, paths_argument, prepare_run
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
from ctxmigrate.codemods.model import AuditReport, Category

FailOn = Literal["rewrite", "review", "never"]
FAILING_CATEGORIES: dict[FailOn, frozenset[Category]] = {
    "rewrite": frozenset({"rewrite"}),
    "review": frozenset({"rewrite", "review"}),
    "never": frozenset(),
}


def exceeds_threshold(report: AuditReport, fail_on: FailOn) -> bool:
    """Exit 1? Findings at or above ``fail_on``, or files that could not be
    analysed (they may hide sites), unless ``never``."""
    if fail_on == "never":
        return False
    failing = FAILING_CATEGORIES[fail_on]
    return bool(report.errors) or any(f.category in failing for f in report.findings)


@click.command("audit")
@paths_argument
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "sarif", "github"]),
    default="table",
    show_default=True,
    help="table for people, json (version 1 contract), sarif 2.1.0, github annotations.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the report to FILE (atomically) instead of stdout ('-' for stdout).",
)
@click.option(
    "--fail-on",
    type=click.Choice(["rewrite", "review", "never"]),
    default="review",
    show_default=True,
    help="Exit 1 when there are findings of this category or a more actionable one.",
)
@baseline_options
@engine_options
@evidence_options
@click.pass_context
def audit_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    output_format: str,
    output: Path | None,
    fail_on: FailOn,
    baseline_file: Path | None,
    write_baseline: Path | None,
    update_baseline: bool,
    no_baseline: bool,
    config_file: Path | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    jobs: int | None,
    no_cache: bool,
    evidence_files: tuple[str, ...],
    evidence_path_map: tuple[str, ...],
    sort_order: SortOrder,
) -> None:
    """Find and classify every legacy site under PATHS (default: the current directory)."""
    loaded = load_evidence_options(evidence_files, evidence_path_map, sort_order)
    setup = prepare_run(paths, config_file, select, ignore)
    with progress_bar(stderr_console, "auditing") as progress:
        result = engine.run(
            setup.paths,
            setup.config,
            # The registered codemods, loaded (with libcst) only if a file is a candidate.
            None,
            jobs=jobs,
            progress=progress,
            use_cache=not no_cache,
        )
    report = result.report
    # Evidence first: its runtime-only sites (CTX105) can be known to the baseline too.
    evidence = None if loaded is None else attach_loaded_evidence(report, setup, loaded)
    baseline = apply_baseline_options(
        report,
        setup.config,
        setup.paths,
        baseline_file,
        write_baseline,
        update_baseline,
        no_baseline,
    )
    if baseline is not None:
        # Known findings are hidden everywhere below and do not count for --fail-on.
        report = baseline.report
    if is_stdout(output):
        output = None
    # Each renderer is imported only for its format (the table one needs rich).
    if output_format == "json":
        if evidence is None:
            document = report.to_json()
        else:
            from ctxmigrate.codemods.evidence import report_json

            document = report_json(report, evidence, by_evidence=sort_order == "evidence")
        if baseline is not None:
            document["summary"]["baseline"] = baseline.summary()
        write_text_output(json.dumps(document, indent=2, ensure_ascii=False) + "\n", output)
    elif output_format == "sarif":
        from ctxmigrate.cli.render_sarif import sarif_log

        log = sarif_log(report, setup.rules, __version__, Path.cwd(), evidence=evidence)
        write_text_output(json.dumps(log, indent=2, ensure_ascii=False) + "\n", output)
    elif output_format == "github":
        from ctxmigrate.cli.render_github import github_annotations

        write_text_output(github_annotations(report, setup.rules_by_id), output)
    else:
        from ctxmigrate.cli.render_table import render_table

        renderer: Callable[..., None] = render_table
        if evidence is not None:
            from ctxmigrate.cli.render_evidence import render_evidence_table

            renderer = functools.partial(
                render_evidence_table, result=evidence, by_evidence=sort_order == "evidence"
            )
        if baseline is not None:
            renderer = baseline.under_table(renderer)

        if output is None:
            console = stdout_console()
            if console.is_terminal:
                renderer(report, setup.rules_by_id, console)
            else:
                # Plain text for a pipe or a CI log: no padding at the line ends.
                with console.capture() as captured:
                    renderer(report, setup.rules_by_id, console)
                write_text_output(strip_trailing_spaces(captured.get()), None)
        else:
            buffer = io.StringIO()
            renderer(report, setup.rules_by_id, file_console(buffer))
            write_text_output(strip_trailing_spaces(buffer.getvalue()), output)
    ctx.exit(1 if exceeds_threshold(report, fail_on) else 0)
