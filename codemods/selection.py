"""Rule selection: ``select``/``ignore`` (configuration or ``--select``/``--ignore``) as rule ids.

Names are ids or kebab-case names, case-insensitive, repeated or comma
separated; an unknown name is an error rather than a silently empty
selection. The library applies the same selection as the CLI: ``engine.run``
normalises a ``Config`` built by hand through ``normalized_selection``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import ConfigError, Rule


def _registered() -> tuple[Rule, ...]:
    from ctxmigrate.codemods.rules import REGISTERED_RULES

    return REGISTERED_RULES


def parse_rule_names(
    values: Iterable[str], rules: Sequence[Rule] | None, source: str
) -> tuple[str, ...]:
    """Rule ids for ``values`` (``rules`` None: the registered rules).

    Case-insensitive, order kept, duplicates dropped. An unknown name is an
    error (exit 2) naming ``source`` and the known rules.
    """
    known_rules = _registered() if rules is None else rules
    by_name = {rule.id.lower(): rule.id for rule in known_rules}
    by_name.update({rule.name.lower(): rule.id for rule in known_rules})
    ids: list[str] = []
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if not name:
                continue
            rule_id = by_name.get(name.lower())
            if rule_id is None:
                known = ", ".join(f"{rule.id} ({rule.name})" for rule in known_rules)
                raise ConfigError(f"{source}: unknown rule {name!r}; known rules: {known}")
            if rule_id not in ids:
                ids.append(rule_id)
    return tuple(ids)


def apply_rule_selection(
    config: Config,
    select: Sequence[str],
    ignore: Sequence[str],
    rules: Sequence[Rule] | None = None,
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


def normalized_selection(config: Config, rules: Sequence[Rule] | None = None) -> Config:
    """``config`` with ``select``/``ignore`` as validated rule ids."""
    if not config.select and not config.ignore:
        return config
    return apply_rule_selection(config, (), (), rules)


def rule_selected(rule: Rule, config: Config) -> bool:
    """Whether ``rule`` runs under ``config`` (ids or names, any case)."""
    names = {rule.id.lower(), rule.name.lower()}
    if config.select and not names & {name.lower() for name in config.select}:
        return False
    return not names & {name.lower() for name in config.ignore}


def check_rule_selection(config: Config, rules: Sequence[Rule] | None = None) -> None:
    """ConfigError when ``select`` and ``ignore`` leave no rule at all: a run
    that checks nothing must not pass as a clean one."""
    if not config.select and not config.ignore:
        return
    if any(rule_selected(rule, config) for rule in (_registered() if rules is None else rules)):
        return
    selected = ", ".join(config.select) if config.select else "every rule"
    ignored = ", ".join(config.ignore) or "nothing"
    raise ConfigError(
        f"no rule selected: select ({selected}) minus ignore ({ignored}) leaves nothing to check"
    )
