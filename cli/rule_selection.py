"""``--select``/``--ignore`` and the ``select``/``ignore`` settings, as rule ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import ConfigError, Rule


def parse_rule_names(values: Iterable[str], rules: Sequence[Rule], source: str) -> tuple[str, ...]:
    """Rule ids for ``values``: ids or kebab names, repeated or comma separated.

    Case-insensitive, order kept, duplicates dropped. An unknown name is an
    error (exit 2) rather than a silently empty selection.
    """
    by_name = {rule.id.lower(): rule.id for rule in rules}
    by_name.update({rule.name.lower(): rule.id for rule in rules})
    ids: list[str] = []
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if not name:
                continue
            rule_id = by_name.get(name.lower())
            if rule_id is None:
                known = ", ".join(f"{rule.id} ({rule.name})" for rule in rules)
                raise ConfigError(f"{source}: unknown rule {name!r}; known rules: {known}")
            if rule_id not in ids:
                ids.append(rule_id)
    return tuple(ids)


def apply_rule_selection(
    config: Config, select: Sequence[str], ignore: Sequence[str], rules: Sequence[Rule]
) -> Config:
    """The config with selections as rule ids: ``--select`` replaces the
    configured ``select``, ``--ignore`` adds to the configured ``ignore``
    (project policy stays, a run can narrow it further)."""
    configured_select = parse_rule_names(config.select, rules, "configuration 'select'")
    configured_ignore = parse_rule_names(config.ignore, rules, "configuration 'ignore'")
    cli_select = parse_rule_names(select, rules, "--select")
    cli_ignore = parse_rule_names(ignore, rules, "--ignore")
    ignored = tuple(dict.fromkeys((*configured_ignore, *cli_ignore)))
    return replace(config, select=cli_select or configured_select, ignore=ignored)
