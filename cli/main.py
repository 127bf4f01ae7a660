"""The ``ctxmigrate`` command group: option parsing only; the engine does the work."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from typing import Any

import click

from ctxmigrate import __version__
from ctxmigrate.codemods.model import CtxmigrateError

USAGE_ERROR_EXIT_CODE = 2

# Each subcommand's module, imported only when that command runs (or --help
# lists it): ``apply`` pulls in libcst's codemod framework (~0.15 s), which an
# ``audit`` must not pay for.
SUBCOMMANDS = {
    "audit": "ctxmigrate.cli.audit_command:audit_command",
    "apply": "ctxmigrate.cli.apply_command:apply_command",
    "list": "ctxmigrate.cli.list_command:list_command",
    "progress": "ctxmigrate.cli.progress_command:progress_command",
}


class UsageOrConfigError(click.ClickException):
    """Printed as ``Error: ...`` on stderr, like click's own usage errors."""

    exit_code = USAGE_ERROR_EXIT_CODE


class CtxmigrateGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in SUBCOMMANDS:
            return command
        module_name, _, attribute = SUBCOMMANDS[cmd_name].partition(":")
        loaded = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(loaded, click.Command)
        self.add_command(loaded, cmd_name)
        return loaded

    def invoke(self, ctx: click.Context) -> Any:
        # The one place where the project's errors become exit code 2.
        try:
            return super().invoke(ctx)
        except CtxmigrateError as error:
            raise UsageOrConfigError(str(error)) from error


@click.group(cls=CtxmigrateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ctxmigrate")
def cli() -> None:
    """Migrate websocket_core backends to one session per conversation."""


# Young collections every 100,000 allocations instead of 700: with the
# defaults the cyclic GC ran 277 times in a warm audit of 25,000 files (0.11 s,
# 7% of it) and 790 times in a cold serial one of 5,200 (0.25 s); the engine
# makes little cyclic garbage (3 MB more peak memory on that cold run).
GC_THRESHOLDS = (100_000, 50, 100)


def main() -> None:
    """The console entry point (and ``python -m ctxmigrate``): a short-lived process.

    It ends with ``os._exit`` once its output is flushed, as mypy does: freeing
    every object at interpreter exit took 14 ms of a 0.35 s cold audit. Only
    the exit status click chose comes out (a crash still ends as Python ends
    it, traceback and all); ``cli()``, which the tests call, is unchanged.
    """
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        cli()
    except SystemExit as exiting:
        status = exiting.code
    else:  # pragma: no cover - click's standalone mode always raises SystemExit
        status = 0
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)  # what the interpreter does with a message
        status = 1
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (``| head``), or a closed stream: nothing to add.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status or 0)
