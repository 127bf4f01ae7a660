"""``ctxmigrate apply``: rewrite the ``rewrite`` sites; a dry run unless ``--write``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from ctxmigrate.cli.render_apply import ApplySummary, render_summary, show_diffs
from ctxmigrate.cli.review_decisions import (
    DECISIONS_FILE,
    DecisionStore,
    FindingKey,
    SiteKey,
    finding_key,
    read_source_text,
    site_keys,
    site_text,
)
from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.cli.run_options import RunSetup, engine_options, paths_argument, prepare_run
from ctxmigrate.cli.terminal import (
    progress_bar,
    stderr_console,
    stdout_console,
    write_bytes_output,
    write_stdout_bytes,
)
from ctxmigrate.codemods import engine
from ctxmigrate.codemods.model import CtxmigrateError, Finding
from ctxmigrate.codemods.write import build_patch, uncommitted_files, write_fixed_files

PROMPT_CHOICES = {"y": "yes", "n": "no", "a": "all", "q": "quit"}


@click.command("apply")
@paths_argument
@click.option("--write", is_flag=True, help="Write the changed files (default: dry run).")
@click.option(
    "--patch",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write one patch for `git apply` to FILE ('-' for stdout) instead of showing diffs.",
)
@click.option(
    "--interactive",
    "-i",
    is_flag=True,
    help="Approve each site (y/n/a/q); answers are remembered for the next run.",
)
@click.option(
    "--decisions",
    "decisions_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Where --interactive keeps its answers (default: <project root>/{DECISIONS_FILE}).",
)
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Let --write change files that have uncommitted changes in git.",
)
@engine_options
@click.pass_context
def apply_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    write: bool,
    patch: Path | None,
    interactive: bool,
    decisions_file: Path | None,
    allow_dirty: bool,
    config_file: Path | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Rewrite the safe sites under PATHS; show unified diffs unless --write or --patch."""
    setup = prepare_run(paths, config_file, select, ignore)
    err = stderr_console()
    store: DecisionStore | None = None
    keys: dict[FindingKey, SiteKey] = {}
    accept: frozenset[FindingKey] | None = None
    if interactive:
        store = DecisionStore.load(decisions_file or setup.config.root / DECISIONS_FILE)
        keys, accept = review_sites(setup, store, jobs=jobs, use_cache=not no_cache)

    with progress_bar(lambda: err, "rewriting") as progress:
        result = engine.run(
            setup.paths,
            setup.config,
            setup.codemods,
            fix=True,
            accept=accept,
            jobs=jobs,
            progress=progress,
            use_cache=not no_cache,
        )
    changed = [fix for fix in result.fixes if fix.fixed is not None]

    if write and not allow_dirty:
        dirty = set(uncommitted_files([fix.abspath for fix in changed]))
        if dirty:
            listed = "\n".join(f"  {fix.path}" for fix in changed if fix.abspath in dirty)
            raise CtxmigrateError(
                "refusing to write files with uncommitted changes (commit or stash them "
                f"first, or pass --allow-dirty):\n{listed}"
            )

    if patch is not None:
        patch_bytes = build_patch(changed)
        if str(patch) == "-":
            write_stdout_bytes(patch_bytes)
        else:
            write_bytes_output(patch_bytes, patch)
    elif not write:
        show_diffs(result.fixes, stdout_console())

    outcomes = write_fixed_files(changed) if write else None
    applied = {finding_key(f) for fix in changed for f in fix.applied}
    failed_paths = {fix.path for fix in result.fixes if fix.error is not None}
    not_applied = [f for f in result.report.findings if finding_key(f) not in applied]
    not_approved = [
        f for f in not_applied if f.category == "rewrite" and f.path not in failed_paths
    ]
    if store is not None and outcomes is not None:
        # Written sites are gone from the code; their answers would only go stale.
        written = {outcome.path for outcome in outcomes if outcome.written}
        store.forget(
            keys[finding_key(f)]
            for fix in changed
            if fix.path in written
            for f in fix.applied
            if finding_key(f) in keys
        )
    summary = ApplySummary(
        fixes=result.fixes,
        skipped=[f for f in not_applied if f.category != "rewrite"],
        file_errors=result.report.errors,
        written=outcomes,
        not_approved=len(not_approved) if interactive else 0,
        decisions_file=str(store.path) if store is not None else None,
        patch_file=str(patch) if patch is not None and str(patch) != "-" else None,
    )
    render_summary(summary, err)
    if write:
        failed = bool(summary.refused_writes or summary.failed_fixes)
    else:
        failed = bool(changed or summary.failed_fixes)
    ctx.exit(1 if failed else 0)


def review_sites(
    setup: RunSetup, store: DecisionStore, *, jobs: int | None, use_cache: bool
) -> tuple[dict[FindingKey, SiteKey], frozenset[FindingKey]]:
    """Ask about every rewrite site not decided before; the approved sites' keys."""
    with progress_bar(stderr_console, "auditing") as progress:
        audit = engine.run(
            setup.paths,
            setup.config,
            setup.codemods,
            jobs=jobs,
            progress=progress,
            use_cache=use_cache,
        )
    candidates = sorted(
        (f for f in audit.report.findings if f.category == "rewrite"), key=Finding.sort_key
    )
    keys = site_keys(candidates, setup.config.root)
    console = stdout_console()
    approved: set[FindingKey] = set()
    approve_rest = False
    asking = True
    for finding in candidates:
        key = keys[finding_key(finding)]
        answer = store.answer(key)
        if answer is None and asking:
            if approve_rest:
                answer = "yes"
            else:
                choice = ask_about_site(finding, setup, console)
                if choice == "quit":
                    asking = False
                    continue
                approve_rest = choice == "all"
                answer = "no" if choice == "no" else "yes"
            store.record(key, answer)
        if answer == "yes":
            approved.add(finding_key(finding))
    return keys, frozenset(approved)


def ask_about_site(finding: Finding, setup: RunSetup, console: Console) -> str:
    header = Text(f"{finding.path}:{finding.line}:{finding.column} ", "bold")
    header.append(rule_label(finding.rule, setup.rules_by_id))
    if finding.function:
        header.append(f" in {finding.function}")
    console.print(header)
    for line in _site_lines(finding):
        console.print(Text(f"  - {line}", "red"), soft_wrap=True)
    console.print(Text(f"  + {finding.fix}", "green"), soft_wrap=True)
    choice = click.prompt(
        "Apply? [y]es, [n]o, [a]ll remaining, [q]uit",
        type=click.Choice(list(PROMPT_CHOICES)),
        show_choices=False,
    )
    return PROMPT_CHOICES[choice]


def _site_lines(finding: Finding) -> Sequence[str]:
    try:
        source = read_source_text(Path(finding.path))
    except OSError:
        return []
    return site_text(source, finding).splitlines()
