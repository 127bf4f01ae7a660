"""Where output goes and how it looks: colors only on a terminal, ``NO_COLOR`` wins."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ctxmigrate.codemods.model import CtxmigrateError
from ctxmigrate.codemods.write import atomic_write_bytes

# Output that is not a terminal (a file, a CI log, a pipe) has no width; rich
# would assume 80 columns and wrap every message. COLUMNS still wins.
PLAIN_OUTPUT_WIDTH = 160

ProgressCallback = Callable[[int, int], None]


def _with_plain_width(console: Console) -> Console:
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PLAIN_OUTPUT_WIDTH
    return console


def stdout_console() -> Console:
    # rich reads NO_COLOR and FORCE_COLOR itself and drops styles when the
    # stream is not a terminal; highlight=False keeps numbers in messages plain.
    return _with_plain_width(Console(highlight=False))


def stderr_console() -> Console:
    # Summary lines are messages, not layout: never break them at the width.
    return _with_plain_width(Console(stderr=True, highlight=False, soft_wrap=True))


def file_console(buffer: io.StringIO) -> Console:
    return Console(
        file=buffer,
        width=PLAIN_OUTPUT_WIDTH,
        color_system=None,
        force_terminal=False,
        highlight=False,
    )


def uses_color(console: Console) -> bool:
    return console.is_terminal and not console.no_color


@contextmanager
def progress_bar(console: Console, label: str) -> Iterator[ProgressCallback | None]:
    """A progress callback for ``engine.run``, or None when stderr is not a terminal."""
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def report_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield report_progress


def write_stdout_bytes(data: bytes) -> None:
    """Exact bytes on stdout (patches), after any text already written."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def write_text_output(text: str, output: Path | None) -> None:
    """``text`` to ``output`` atomically (a reader never sees half a report), else stdout."""
    if output is None:
        click.echo(text, nl=False)
        return
    write_bytes_output(text.encode("utf-8"), output)


def write_bytes_output(data: bytes, output: Path) -> None:
    try:
        atomic_write_bytes(output, data)
    except OSError as error:
        raise CtxmigrateError(f"cannot write {output}: {error.strerror}") from error
