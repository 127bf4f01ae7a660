"""Where output goes and how it looks: colors only on a terminal, ``NO_COLOR`` wins."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctxmigrate.codemods.model import CtxmigrateError

if TYPE_CHECKING:
    # rich costs ~0.05 s to import; a JSON report to a pipe never needs it.
    from rich.console import Console

# Output that is not a terminal (a file, a CI log, a pipe) has no width; rich
# would assume 80 columns and wrap every message. COLUMNS still wins.
PLAIN_OUTPUT_WIDTH = 160

ProgressCallback = Callable[[int, int], None]


def _with_plain_width(console: Console) -> Console:
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PLAIN_OUTPUT_WIDTH
    return console


def stdout_console() -> Console:
    from rich.console import Console

    # rich reads NO_COLOR and FORCE_COLOR itself and drops styles when the
    # stream is not a terminal; highlight=False keeps numbers in messages plain.
    return _with_plain_width(Console(highlight=False))


def stderr_console() -> Console:
    from rich.console import Console

    # Summary lines are messages, not layout: never break them at the width.
    return _with_plain_width(Console(stderr=True, highlight=False, soft_wrap=True))


def file_console(buffer: io.StringIO) -> Console:
    from rich.console import Console

    return Console(
        file=buffer,
        width=PLAIN_OUTPUT_WIDTH,
        color_system=None,
        force_terminal=False,
        highlight=False,
    )


def uses_color(console: Console) -> bool:
    return console.is_terminal and not console.no_color


def stderr_may_be_terminal() -> bool:
    """False only when rich would surely not treat stderr as a terminal.

    rich's own test (``Console.is_terminal``) is ``TTY_COMPATIBLE=1``, else a
    non-empty ``FORCE_COLOR``, else ``isatty()``; answering the common "no"
    here spares importing rich at all for a report written to a pipe or file.
    """
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


@contextmanager
def progress_bar(
    console_factory: Callable[[], Console], label: str
) -> Iterator[ProgressCallback | None]:
    """A progress callback for ``engine.run``, or None when stderr is not a terminal.

    Takes a console factory so that the non-terminal case builds no console.
    """
    if not stderr_may_be_terminal():
        yield None
        return
    console = console_factory()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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


def is_stdout(output: Path | None) -> bool:
    """``None`` or ``-``: click's ``allow_dash`` convention for "standard output"."""
    return output is None or str(output) == "-"


def write_text_output(text: str, output: Path | None) -> None:
    """``text`` to ``output`` (see ``write_bytes_output``), or stdout for None or ``-``."""
    if output is None or is_stdout(output):
        click.echo(text, nl=False)
        return
    write_bytes_output(text.encode("utf-8"), output)


def write_bytes_output(data: bytes, output: Path) -> None:
    """A regular (or new) file atomically, so a reader never sees half a report;
    a device, FIFO or ``/dev/stdout`` written in place; ``-`` is stdout."""
    if is_stdout(output):
        write_stdout_bytes(data)
        return
    # Only for --output: a report to stdout does not import the writing module.
    from ctxmigrate.codemods.rewrite.writing import atomic_write_bytes

    try:
        atomic_write_bytes(output, data)
    except OSError as error:
        raise CtxmigrateError(f"cannot write {output}: {error.strerror}") from error


def strip_trailing_spaces(text: str) -> str:
    """Drop the padding rich puts at the end of table lines (plain text only)."""
    return "\n".join(line.rstrip(" ") for line in text.split("\n"))


def display_path(path: str) -> str:
    """A path for a one-line message: as is, or quoted like a Python string
    literal when it holds a newline or another unprintable character."""
    return path if path.isprintable() else repr(path)
