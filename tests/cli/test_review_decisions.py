"""Interactive decisions: content-anchored keys and a store that survives restarts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ctxmigrate.cli.review_decisions import (
    DecisionStore,
    SiteKey,
    site_keys,
    site_text,
)
from ctxmigrate.codemods.model import CtxmigrateError, Finding
from ctxmigrate.codemods.rewrite.apply_plan import finding_key

SITE = Finding(
    rule="CTX001",
    category="rewrite",
    path="m.py",
    line=2,
    column=11,
    end_line=2,
    end_column=56,
    symbol="deps.create_user_execution_context",
    function="handle",
    message="m",
    fix="await get_or_create_user_session(user_id=u)",
)


def test_site_text_single_and_multi_line() -> None:
    source = "a = 1\r\nb = f(x,\r\n      y)\nc"
    one = replace(SITE, line=1, column=5, end_line=1, end_column=6)
    many = replace(SITE, line=2, column=5, end_line=3, end_column=9)
    assert site_text(source, one) == "1"
    assert site_text(source, many) == "f(x,\n      y)"


def test_site_text_counts_characters_not_bytes() -> None:
    assert (
        site_text("é = f()\n", replace(SITE, line=1, column=5, end_line=1, end_column=8)) == "f()"
    )


def write_module(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(body, encoding="utf-8")


def test_keys_survive_lines_shifting_above_the_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = "deps.create_user_execution_context(user_id=u)"
    write_module(tmp_path, f"async def handle():\n    ctx = {call}\n", monkeypatch)
    before = site_keys([SITE], tmp_path)[finding_key(SITE)]
    write_module(tmp_path, f"import x\n\nasync def handle():\n    ctx = {call}\n", monkeypatch)
    moved = replace(SITE, line=4, end_line=4)
    assert site_keys([moved], tmp_path)[finding_key(moved)] == before
    assert before.path == "m.py"


def test_identical_sites_in_one_function_get_distinct_occurrences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = "deps.create_user_execution_context(user_id=u)"
    write_module(tmp_path, f"async def handle():\n    a = {call}\n    b = {call}\n", monkeypatch)
    second = replace(SITE, line=3, end_line=3)
    keys = site_keys([second, SITE], tmp_path)
    assert keys[finding_key(SITE)].occurrence == 0
    assert keys[finding_key(second)].occurrence == 1
    assert keys[finding_key(SITE)].site_sha256 == keys[finding_key(second)].site_sha256


def test_an_edited_site_gets_a_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(
        tmp_path,
        "async def handle():\n    ctx = deps.create_user_execution_context(user_id=u)\n",
        monkeypatch,
    )
    before = site_keys([SITE], tmp_path)[finding_key(SITE)]
    write_module(
        tmp_path,
        "async def handle():\n    ctx = deps.create_user_execution_context(user_id=v)\n",
        monkeypatch,
    )
    assert site_keys([SITE], tmp_path)[finding_key(SITE)] != before


def test_store_round_trip_and_forget(tmp_path: Path) -> None:
    path = tmp_path / ".ctxmigrate-decisions.json"
    yes = SiteKey("m.py", "CTX001", "handle", "a" * 64, 0)
    no = SiteKey("m.py", "CTX001", "handle", "b" * 64, 0)
    store = DecisionStore.load(path)
    store.record(yes, "yes")
    store.record(no, "no")
    reloaded = DecisionStore.load(path)
    assert (reloaded.answer(yes), reloaded.answer(no)) == ("yes", "no")
    reloaded.forget([yes])
    assert DecisionStore.load(path).answer(yes) is None
    assert json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"version": 2, "decisions": []}',
        '{"version": 1, "decisions": [{"path": 1}]}',
        '{"version": 1, "decisions": [{"path": "m.py", "rule": "CTX001", "function": "", '
        '"site_sha256": "x", "occurrence": 0, "decision": "maybe"}]}',
        "[]",
    ],
)
def test_a_corrupt_store_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "decisions.json"
    path.write_text(content)
    with pytest.raises(CtxmigrateError, match="cannot read interactive decisions"):
        DecisionStore.load(path)
