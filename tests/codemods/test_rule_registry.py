"""The rule registry: each rule's own examples, a second rule for one target, library = CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctxmigrate.codemods import CODEMODS
from ctxmigrate.codemods.analysis.memory import analyze_sources
from ctxmigrate.codemods.classify import classify_context
from ctxmigrate.codemods.config import Config, config_from_mapping, legacy_short_names
from ctxmigrate.codemods.engine import run
from ctxmigrate.codemods.model import ConfigError, Finding
from ctxmigrate.codemods.rewrite.planning import fix_sources
from ctxmigrate.codemods.rules import REGISTERED_RULES
from ctxmigrate.codemods.rules.base import Example, RuleDefinition
from ctxmigrate.codemods.rules.catalogue import rules_markdown
from ctxmigrate.codemods.rules.reuse_session import FACTORY
from ctxmigrate.codemods.rules.reuse_session import RULE as REUSE_SESSION
from ctxmigrate.codemods.sites import Codemod, Decision, Reference

ROOT = Path("/project")


def _examples() -> list[tuple[RuleDefinition, str, Example]]:
    cases = []
    for rule in REGISTERED_RULES:
        cases.extend((rule, "valid", example) for example in rule.valid)
        cases.extend((rule, "invalid", example) for example in rule.invalid)
    return cases


EXAMPLES = _examples()


def test_every_rule_has_valid_and_invalid_examples() -> None:
    for rule in REGISTERED_RULES:
        if rule.from_runtime_evidence:
            continue
        assert rule.valid, f"{rule.id} has no VALID example"
        assert rule.invalid, f"{rule.id} has no INVALID example"


@pytest.mark.parametrize(
    ("rule", "kind", "example"),
    EXAMPLES,
    ids=[f"{rule.id}-{kind}-{n}" for n, (rule, kind, _) in enumerate(EXAMPLES)],
)
def test_rule_examples(rule: RuleDefinition, kind: str, example: Example) -> None:
    sources = {path: text.encode() for path, text in example.modules.items()}
    config = Config(root=ROOT)
    findings = analyze_sources(sources, config)[example.path].findings
    categories = {finding.category for finding in findings if finding.rule == rule.id}
    if kind == "valid":
        assert "rewrite" not in categories if rule.fixable else "review" not in categories
    else:
        assert categories == {"rewrite" if rule.fixable else "review"}
    assert categories == ({example.category} if example.category is not None else set())
    if example.expected is not None:
        fixed = fix_sources(sources, config, CODEMODS)[example.path].fixed
        assert fixed is not None
        assert fixed.decode() == example.expected


# -- a second rule for the target of CTX001 -------------------------------------------


class _ReviewEveryFactoryCall:
    """A throwaway rule: every call of the legacy factory needs a human."""

    def classify(self, ref: Reference, config: Config) -> Decision:
        decision = classify_context(ref, self.rule)
        return decision or Decision("review", "throwaway rule: look at this call")

    def rewrite(self, ref: Reference, config: Config) -> object:
        raise AssertionError("never asked: the rule never says rewrite")

    def required_import(self, config: Config) -> tuple[str, str] | None:
        return None


THROWAWAY = RuleDefinition(
    id="CTX004",
    name="review-every-factory-call",
    description="Throwaway rule for the registry tests.",
    fixable=True,
    target=FACTORY,
    test_reason="test code",
    codemod=_ReviewEveryFactoryCall,  # type: ignore[arg-type]
)
_ReviewEveryFactoryCall.rule = THROWAWAY  # type: ignore[attr-defined]
BOTH: tuple[Codemod, ...] = (CODEMODS[0], _ReviewEveryFactoryCall())  # type: ignore[tuple-item]

DEPS = "def create_user_execution_context(user_id, thread_id):\n    pass\n"
CALLER = """\
from app.deps import create_user_execution_context


async def handle(user_id, thread_id):
    return create_user_execution_context(user_id, thread_id){comment}
"""


def _rules_at_call(comment: str = "") -> dict[str, str]:
    sources = {
        "app/deps.py": DEPS.encode(),
        "app/handler.py": CALLER.format(comment=comment).encode(),
    }
    findings: list[Finding] = analyze_sources(sources, Config(root=ROOT), BOTH)[
        "app/handler.py"
    ].findings
    return {finding.rule: finding.category for finding in findings if finding.line == 5}


def test_a_second_rule_for_one_target_hides_nothing() -> None:
    assert _rules_at_call() == {"CTX001": "rewrite", "CTX004": "review"}


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("  # ctxmigrate: ignore[CTX004]", {"CTX001": "rewrite", "CTX004": "keep"}),
        (
            "  # ctxmigrate: ignore[review-every-factory-call]",
            {"CTX001": "rewrite", "CTX004": "keep"},
        ),
        ("  # ctxmigrate: ignore[CTX001]", {"CTX001": "keep", "CTX004": "review"}),
        ("  # ctxmigrate: ignore", {"CTX001": "keep", "CTX004": "keep"}),
    ],
)
def test_each_rule_for_one_target_is_suppressed_by_its_own_id(
    comment: str, expected: dict[str, str]
) -> None:
    assert _rules_at_call(comment) == expected


def test_apply_rewrites_with_the_rule_that_said_rewrite() -> None:
    sources = {"app/deps.py": DEPS.encode(), "app/handler.py": CALLER.format(comment="").encode()}
    result = fix_sources(sources, Config(root=ROOT), BOTH)["app/handler.py"]
    assert result.fixed is not None
    assert b"await get_or_create_user_session(" in result.fixed
    assert [finding.rule for finding in result.skipped] == ["CTX004"]


def test_a_rule_key_without_a_config_field_uses_the_rule_default() -> None:
    rule = RuleDefinition(
        id="CTX005",
        name="n",
        description="d",
        fixable=True,
        target=FACTORY,
        new_target_key="throwaway-target",
        new_target_default="pkg.mod.default",
    )
    assert Config(root=ROOT).new_target(rule) == "pkg.mod.default"
    configured = Config(root=ROOT, extra=(("throwaway-target", "pkg.mod.other"),))
    assert configured.new_target(rule) == "pkg.mod.other"
    assert configured.new_target(REUSE_SESSION) == "ctxmigrate.shim.get_or_create_user_session"


# -- configuration keys come from the rules --------------------------------------------


def test_configuration_keys_are_the_rules_keys() -> None:
    table = {rule.target.config_key: ["pkg.mod.name"] for rule in REGISTERED_RULES if rule.target}
    config = config_from_mapping(table, ROOT, "pyproject.toml")
    assert legacy_short_names(config) == frozenset({"name"})


def test_unknown_key_lists_the_rule_declared_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'factory'.*manager-target.*session-target"):
        config_from_mapping({"factory": ["a.b"]}, ROOT, "pyproject.toml")


# -- the library selects rules as the CLI does -----------------------------------------


@pytest.fixture
def two_context_classes(tmp_path: Path) -> Path:
    (tmp_path / "a.py").write_text("class UserExecutionContext:\n    pass\n")
    (tmp_path / "b.py").write_text("class UserExecutionContext:\n    pass\n")
    return tmp_path


def _rules_found(root: Path, config: Config) -> set[str]:
    result = run([root], config, use_cache=False, jobs=1)
    return {finding.rule for finding in result.report.findings}


def test_run_drops_an_ignored_rule_named_in_lower_case(two_context_classes: Path) -> None:
    root = two_context_classes
    assert _rules_found(root, Config(root=root)) == {"CTX104"}
    assert _rules_found(root, Config(root=root, ignore=("ctx104",))) == set()
    assert _rules_found(root, Config(root=root, ignore=("Duplicate-Context-Class",))) == set()


def test_run_rejects_a_misspelled_rule_name(two_context_classes: Path) -> None:
    root = two_context_classes
    with pytest.raises(ConfigError, match="unknown rule 'reuse-sesion'; known rules: CTX001"):
        run([root], Config(root=root, select=("reuse-sesion",)), use_cache=False)


def test_configuration_file_with_a_misspelled_rule_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"pyproject.toml: 'ignore': unknown rule 'ctx999'"):
        config_from_mapping({"ignore": ["ctx999"]}, ROOT, "pyproject.toml")


def test_configuration_names_become_ids() -> None:
    config = config_from_mapping(
        {"select": "reuse-session, ctx101", "ignore": ["STRING-REFERENCE"]}, ROOT, "x.yaml"
    )
    assert (config.select, config.ignore) == (("CTX001", "CTX101"), ("CTX102",))


# -- the examples in the docs ------------------------------------------------------------

RULES_PAGE = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_the_rules_page_shows_the_registered_rules_and_their_examples() -> None:
    expected = rules_markdown(REGISTERED_RULES)
    if os.environ.get("CTXMIGRATE_REGENERATE_DOCS") == "1":
        RULES_PAGE.write_text(expected, encoding="utf-8")
    assert RULES_PAGE.read_text(encoding="utf-8") == expected
