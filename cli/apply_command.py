"""``ctxmigrate apply``: rewrite the ``rewrite`` sites; a dry run unless ``--write``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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
    decode_source,
    site_keys,
    site_text,
)
from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.cli.run_options import RunSetup, engine_options, paths_argument, prepare_run
from ctxmigrate.cli.terminal import (
    display_path,
    is_stdout,
    progress_bar,
    stderr_console,
    stdout_console,
    write_bytes_output,
)
from ctxmigrate.codemods import engine
from ctxmigrate.codemods.model import Finding
from ctxmigrate.codemods.rewrite.apply_plan import (
    ReviewedState,
    check_write_allowed,
    finding_key,
    plan_apply,
)
from ctxmigrate.codemods.rewrite.writing import build_patch, write_fixed_files

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
    review: Review | None = None
    if interactive:
        store = DecisionStore.load(decisions_file or setup.config.root / DECISIONS_FILE)
        review = review_sites(setup, store, jobs=jobs, use_cache=not no_cache)
        if review.ended_by_eof:
            err.print(
                "End of input: stopped asking; undecided sites are not applied "
                "and will be asked next time."
            )

    with progress_bar(lambda: err, "rewriting") as progress:
        result = engine.run(
            setup.paths,
            setup.config,
            setup.codemods,
            fix=True,
            accept=review.accept if review is not None else None,
            jobs=jobs,
            progress=progress,
            use_cache=not no_cache,
        )
    plan = plan_apply(result, review.state if review is not None else None)
    if write:
        check_write_allowed(plan, allow_dirty=allow_dirty)

    changed = plan.changed
    if patch is not None:
        write_bytes_output(build_patch(changed), patch)
    elif not write:
        show_diffs(plan.fixes, stdout_console())

    outcomes = write_fixed_files(changed, setup.config.root) if write else None
    if store is not None and review is not None and outcomes is not None:
        # Written sites are gone from the code; their answers would only go stale.
        # Only approvals are ever dropped: a "no" stays a "no".
        written = {outcome.path for outcome in outcomes if outcome.written}
        store.forget(
            key
            for fix in changed
            if fix.path in written
            for f in fix.applied
            if (key := review.keys.get(finding_key(f))) is not None and store.answer(key) == "yes"
        )
    summary = ApplySummary(
        fixes=plan.fixes,
        skipped=[f for f in plan.not_applied() if f.category != "rewrite"],
        file_errors=result.report.errors,
        written=outcomes,
        not_approved=len(plan.not_approved()) if interactive else 0,
        decisions_file=str(store.path) if store is not None else None,
        patch_file=str(patch) if patch is not None and not is_stdout(patch) else None,
        stale=sorted(plan.stale),
    )
    render_summary(summary, err)
    ctx.exit(1 if plan.failed(outcomes) else 0)


@dataclass
class Review:
    """The outcome of the interactive review, and what it was based on."""

    keys: dict[FindingKey, SiteKey]
    accept: frozenset[FindingKey]
    # The bytes of every file with a rewrite site, as the review read them
    # (None: unreadable), and the rewrite sites found in them.
    reviewed: dict[str, bytes | None] = field(default_factory=dict)
    sites: dict[str, frozenset[FindingKey]] = field(default_factory=dict)
    ended_by_eof: bool = False

    @property
    def state(self) -> ReviewedState:
        return ReviewedState(self.reviewed, self.sites)


def review_sites(
    setup: RunSetup, store: DecisionStore, *, jobs: int | None, use_cache: bool
) -> Review:
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
    review = Review(keys={}, accept=frozenset())
    sources: dict[str, str] = {}
    for finding in candidates:
        if finding.path in review.reviewed:
            continue
        try:
            data: bytes | None = Path(finding.path).read_bytes()
        except OSError:
            data = None
        review.reviewed[finding.path] = data
        sources[finding.path] = decode_source(data) if data is not None else ""
    for finding in candidates:
        review.sites[finding.path] = review.sites.get(finding.path, frozenset()) | {
            finding_key(finding)
        }
    review.keys = site_keys(candidates, setup.config.root, sources)
    console = stdout_console()
    approved: set[FindingKey] = set()
    approve_rest = False
    asking = True
    for finding in candidates:
        key = review.keys[finding_key(finding)]
        answer = store.answer(key)
        if answer is None and asking:
            if approve_rest:
                answer = "yes"
            else:
                choice = ask_about_site(finding, sources[finding.path], setup, console)
                if choice in ("quit", "eof"):
                    asking = False
                    review.ended_by_eof = choice == "eof"
                    continue
                approve_rest = choice == "all"
                answer = "no" if choice == "no" else "yes"
            store.record(key, answer)
        if answer == "yes":
            approved.add(finding_key(finding))
    review.accept = frozenset(approved)
    return review


PROMPT = "Apply? [y]es, [n]o, [a]ll remaining, [q]uit"


def parse_answer(text: str) -> str | None:
    """y/yes, n/no, a/all, q/quit in any case; None for anything else."""
    word = text.strip().lower()
    return PROMPT_CHOICES.get(word) or (word if word in PROMPT_CHOICES.values() else None)


def read_answer() -> str:
    """One of ``PROMPT_CHOICES``' values, asked until valid; "eof" at end of input."""
    while True:
        # As click.prompt does (readline editing on a terminal), without turning
        # end of input into click's "Aborted!" (exit 1).
        click.echo(f"{PROMPT}:", nl=False)
        try:
            text = input(" ")
        except EOFError:
            click.echo()
            return "eof"
        if not _stdin_is_terminal():
            # Piped answers: show them, so the transcript reads like a session.
            click.echo(text)
        answer = parse_answer(text)
        if answer is not None:
            return answer
        click.echo(
            f"Error: {text.strip()!r} is not one of y, yes, n, no, a, all, q, quit.", err=True
        )


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def ask_about_site(finding: Finding, source: str, setup: RunSetup, console: Console) -> str:
    header = Text(f"{display_path(finding.path)}:{finding.line}:{finding.column} ", "bold")
    header.append(rule_label(finding.rule, setup.rules_by_id))
    if finding.function:
        header.append(f" in {finding.function}")
    console.print(header)
    for line in site_text(source, finding).splitlines():
        console.print(Text(f"  - {line}", "red"), soft_wrap=True)
    console.print(Text(f"  + {finding.fix}", "green"), soft_wrap=True)
    return read_answer()
