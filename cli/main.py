"""The ``ctxmigrate`` command group: option parsing only; the engine does the work."""

from __future__ import annotations

from typing import Any

import click

from ctxmigrate import __version__
from ctxmigrate.cli.apply_command import apply_command
from ctxmigrate.cli.audit_command import audit_command
from ctxmigrate.cli.list_command import list_command
from ctxmigrate.codemods.model import CtxmigrateError

USAGE_ERROR_EXIT_CODE = 2


class UsageOrConfigError(click.ClickException):
    """Printed as ``Error: ...`` on stderr, like click's own usage errors."""

    exit_code = USAGE_ERROR_EXIT_CODE


class CtxmigrateGroup(click.Group):
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


cli.add_command(audit_command)
cli.add_command(apply_command)
cli.add_command(list_command)


def main() -> None:
    cli()
