"""The rule catalogue as Markdown (``docs/rules.md``), from the rules' own declarations.

Each rule's description, configuration keys and ``VALID``/``INVALID``
examples, as the registry holds them: the page cannot drift from the code
(``tests/codemods/test_rule_registry.py`` compares it).
"""

from __future__ import annotations

from collections.abc import Sequence

from ctxmigrate.codemods.rules.base import Example, RuleDefinition

_HEADER = """\
# Rules

Generated from the rule registry (`codemods/rules/`): each rule's examples are
the ones its tests run. Regenerate with
`CTXMIGRATE_REGENERATE_DOCS=1 python -m pytest tests/codemods/test_rule_registry.py`.
"""


def rules_markdown(rules: Sequence[RuleDefinition]) -> str:
    parts = [_HEADER]
    for rule in rules:
        parts.append(f"\n## {rule.id} {rule.name}\n\n{rule.description}\n")
        kind = "fixed by `apply`" if rule.fixable else "audit only"
        if rule.from_runtime_evidence:
            kind += ", from runtime evidence (`audit --evidence`)"
        keys = ", ".join(f"`{key}`" for key in rule.config_keys())
        parts.append(f"\n{kind}" + (f"; configuration keys: {keys}" if keys else "") + ".\n")
        for example in (*rule.invalid, *rule.valid):
            parts.append(_example(example))
    return "".join(parts)


def _example(example: Example) -> str:
    outcome = f"`{example.category}`" if example.category is not None else "no finding"
    text = f"\n### Example: {outcome}\n"
    for path, source in example.modules.items():
        if path == example.path or not source:
            continue
        text += f"\n`{path}`:\n\n```python\n{source}```\n"
    text += f"\n`{example.path}`:\n\n```python\n{example.modules[example.path]}```\n"
    if example.expected is not None:
        text += f"\nafter `ctxmigrate apply`:\n\n```python\n{example.expected}```\n"
    return text
