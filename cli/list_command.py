"""``ctxmigrate list``: the rules users can select, ignore and suppress."""

from __future__ import annotations

import click
from rich import box
from rich.table import Table
from rich.text import Text

from ctxmigrate.cli.rule_catalogue import all_rules
from ctxmigrate.cli.terminal import stdout_console, strip_trailing_spaces, write_text_output


@click.command("list")
def list_command() -> None:
    """Show rule ids, names, whether apply fixes them, and what they find."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("fixable", no_wrap=True)
    table.add_column("description", overflow="fold")
    for rule in all_rules():
        table.add_row(
            Text(rule.id),
            Text(rule.name),
            Text("yes" if rule.fixable else "no"),
            Text(rule.description),
        )
    console = stdout_console()
    if console.is_terminal:
        console.print(table)
        return
    # Plain text for a pipe: no padding at the line ends, as for audit tables.
    with console.capture() as captured:
        console.print(table)
    write_text_output(strip_trailing_spaces(captured.get()), None)
