"""The ``ctxmigrate`` command group: option parsing only; the engine does the work."""

from __future__ import annotations

import click

from ctxmigrate import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ctxmigrate")
def cli() -> None:
    """Migrate websocket_core backends to one session per conversation."""


def main() -> None:
    cli()
