"""``audit --baseline / --write-baseline / --update-baseline``: options and the
step between the engine's report and the renderers (codemods/baseline.py does
the matching)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ctxmigrate.cli.terminal import write_text_output
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import AuditReport, ConfigError

if TYPE_CHECKING:
    # Imported when a baseline is used: an audit without one does not pay for it.
    from ctxmigrate.codemods.baseline import BaselineMatch

F = TypeVar("F", bound=Callable[..., Any])


def baseline_options(command: F) -> F:
    options = [
        click.option(
            "--baseline",
            "baseline_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Hide the findings this baseline knows (default: 'baseline' in the config).",
        ),
        click.option(
            "--write-baseline",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="Record every current finding in FILE (JSON), then report against it.",
        ),
        click.option(
            "--update-baseline",
            is_flag=True,
            help="Drop fixed entries from the baseline (never adds new sites).",
        ),
        click.option(
            "--no-baseline", is_flag=True, help="Ignore the configured baseline: report everything."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class BaselineOutcome:
    file: Path
    match: BaselineMatch
    report: AuditReport  # only the new findings
    written: bool = False
    updated: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "file": baseline_display(self.file),
            "known": len(self.match.known),
            "new": len(self.match.new),
            "fixed": self.match.fixed_count,
        }

    def under_table(self, renderer: Callable[..., None]) -> Callable[..., None]:
        """``renderer`` (report, rules, console), then the baseline's lines."""

        def render(report: AuditReport, rules: Any, console: Any) -> None:
            renderer(report, rules, console)
            for line in self.lines():
                console.print(line, markup=False)

        return render

    def lines(self) -> list[str]:
        """What the table adds under its summary line."""
        name = baseline_display(self.file)
        known = len(self.match.known)
        if self.written:
            return [f"wrote baseline {name}: {known} known finding{'s' if known != 1 else ''}"]
        lines = [
            f"{known} known finding{'s' if known != 1 else ''} hidden by baseline {name}; "
            f"{len(self.match.new)} new"
        ]
        fixed = self.match.fixed_count
        if fixed and self.updated:
            lines.append(f"{fixed} fixed site{'s' if fixed != 1 else ''} dropped from {name}")
        elif fixed:
            lines.append(
                f"{fixed} baseline site{'s' if fixed != 1 else ''} no longer found (stale): "
                "run with --update-baseline to shrink it"
            )
        return lines


def baseline_display(path: Path) -> str:
    """The baseline's path for messages and JSON, as given on the command line
    (a configured one is made relative to the current directory)."""
    return path.as_posix()


def configured_baseline(
    config: Config, baseline_file: Path | None, no_baseline: bool
) -> Path | None:
    if no_baseline:
        return None
    if baseline_file is not None:
        return baseline_file
    if config.baseline is not None:
        # Relative to the current directory: the JSON summary never shows an
        # absolute path the user did not type.
        return Path(os.path.relpath(config.root / config.baseline))
    return None


def covers_root(run_paths: Sequence[Path], root: Path) -> bool:
    resolved = root.resolve()
    return any(
        path.resolve() == resolved or path.resolve() in resolved.parents for path in run_paths
    )


def apply_baseline_options(
    report: AuditReport,
    config: Config,
    run_paths: Sequence[Path],
    baseline_file: Path | None,
    write_baseline: Path | None,
    update_baseline: bool,
    no_baseline: bool,
) -> BaselineOutcome | None:
    """Write, read, match and ratchet the baseline; None without one."""
    if write_baseline is not None and (baseline_file is not None or update_baseline):
        raise ConfigError("--write-baseline cannot be combined with --baseline/--update-baseline")
    if no_baseline and (baseline_file is not None or update_baseline):
        raise ConfigError("--no-baseline cannot be combined with --baseline/--update-baseline")
    path = write_baseline or configured_baseline(config, baseline_file, no_baseline)
    if path is None:
        if update_baseline:
            raise ConfigError("--update-baseline needs a baseline (--baseline FILE or config)")
        return None
    if (update_baseline or write_baseline is not None) and not covers_root(run_paths, config.root):
        # A partial run cannot tell a fixed site from one whose legacy
        # definition lives in a file it did not scan: the ratchet would drop
        # sites that are still there.
        option = "--update-baseline" if update_baseline else "--write-baseline"
        raise ConfigError(
            f"{option} needs a run over the whole project (its root {config.root}); "
            "omit PATHS or pass the root"
        )
    from ctxmigrate.codemods.baseline import (
        baseline_from_findings,
        key_findings,
        load_baseline,
        match_baseline,
        scope_of,
    )

    keyed = key_findings(report.findings, config.root)
    written = updated = False
    if write_baseline is not None:
        baseline = baseline_from_findings(keyed)
        write_text_output(baseline.to_text(), write_baseline)
        written = True
    else:
        baseline = load_baseline(path)
    match = match_baseline(baseline, keyed, scope_of(baseline, run_paths, config.root))
    if update_baseline and match.fixed:
        write_text_output(match.remaining.to_text(), path)
        updated = True
    # replace(): whatever else the report carries (errors, counts) stays as is.
    filtered = dataclasses.replace(report, findings=list(match.new))
    return BaselineOutcome(path, match, filtered, written, updated)
