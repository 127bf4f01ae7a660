"""--select/--ignore: ids or names, repeated or comma separated, unknown names rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import ConfigError
from ctxmigrate.codemods.selection import apply_rule_selection, parse_rule_names
from tests.cli.report_samples import RULES


def test_ids_and_names_mixed_repeated_and_comma_separated() -> None:
    assert parse_rule_names(["reuse-session,ctx101", " CTX002 ", "CTX001"], RULES, "--select") == (
        "CTX001",
        "CTX101",
        "CTX002",
    )


def test_empty_items_are_ignored() -> None:
    assert parse_rule_names(["", "CTX001,,"], RULES, "--select") == ("CTX001",)


def test_unknown_rule_names_the_option_and_the_known_rules() -> None:
    with pytest.raises(
        ConfigError, match=r"--ignore: unknown rule 'CTX999'.*CTX001 \(reuse-session\)"
    ):
        parse_rule_names(["CTX999"], RULES, "--ignore")


def test_command_line_select_replaces_configured_select_and_ignore_adds() -> None:
    config = Config(root=Path("."), select=("reuse-session",), ignore=("CTX101",))
    selected = apply_rule_selection(config, ["CTX002"], ["reuse-session"], RULES)
    assert selected.select == ("CTX002",)
    assert selected.ignore == ("CTX101", "CTX001")


def test_configured_names_become_ids_and_are_validated() -> None:
    config = Config(root=Path("."), select=("adapt-websocket-context",))
    assert apply_rule_selection(config, [], [], RULES).select == ("CTX002",)
    with pytest.raises(ConfigError, match="configuration 'ignore': unknown rule 'nope'"):
        apply_rule_selection(Config(root=Path("."), ignore=("nope",)), [], [], RULES)
