"""``audit --evidence FILE``, ``--evidence-path-map FROM=TO``, ``--sort``: the options and
their run (the work is in ``ctxmigrate.codemods.evidence``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from ctxmigrate.cli.run_options import RunSetup
from ctxmigrate.cli.terminal import stderr_console
from ctxmigrate.codemods.model import AuditReport

if TYPE_CHECKING:
    # Imported when --evidence is given: an audit without it does not pay for it.
    from ctxmigrate.codemods.evidence import EvidenceResult

F = TypeVar("F", bound=Callable[..., Any])
SortOrder = Literal["location", "evidence"]


def evidence_options(command: F) -> F:
    options = [
        click.option(
            "--evidence",
            "evidence_files",
            multiple=True,
            metavar="FILE",
            help="Observations written by write_observations() (repeatable; globs such as "
            "'obs/*.json' are expanded). Adds run-time calls to each finding.",
        ),
        click.option(
            "--evidence-path-map",
            "evidence_path_map",
            multiple=True,
            metavar="FROM=TO",
            help="Recorded paths under FROM are files under TO here (e.g. /app=.); "
            "default: the longest matching path suffix.",
        ),
        click.option(
            "--sort",
            "sort_order",
            type=click.Choice(["location", "evidence"]),
            default="location",
            show_default=True,
            help="evidence: the call sites that fired most at run time first (needs --evidence).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class LoadedEvidence:
    observations: dict[str, Any]
    files: int
    path_map: list[tuple[str, str]]


def load_evidence_options(
    evidence_files: Sequence[str], path_map: Sequence[str], sort_order: SortOrder
) -> LoadedEvidence | None:
    """Read the evidence before the run, so a bad file fails fast (exit 2)."""
    if not evidence_files:
        if sort_order == "evidence":
            raise click.UsageError("--sort evidence needs --evidence FILE")
        if path_map:
            raise click.UsageError("--evidence-path-map needs --evidence FILE")
        return None
    from ctxmigrate.codemods.evidence import load_evidence, parse_path_map

    pairs = parse_path_map(path_map)
    observations, files = load_evidence(evidence_files)
    return LoadedEvidence(observations, files, pairs)


def attach_loaded_evidence(
    report: AuditReport, setup: RunSetup, loaded: LoadedEvidence
) -> EvidenceResult:
    from ctxmigrate.codemods.evidence import collect_evidence

    result = collect_evidence(
        report, setup.paths, setup.config, loaded.observations, loaded.files, loaded.path_map
    )
    if result.unmatched:
        unique = sorted(set(result.unmatched))
        stderr_console().print(
            f"evidence: {len(result.unmatched)} recorded call site"
            f"{'s' if len(result.unmatched) != 1 else ''} in files that are not among the "
            f"audited files (first: {unique[0]}); see --evidence-path-map",
            highlight=False,
            markup=False,
        )
    return result
