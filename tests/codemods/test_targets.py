"""Configured target strings (``codemods/targets.py``): plain strings, no LibCST."""

from __future__ import annotations

import pytest

from ctxmigrate.codemods.targets import target_import

from .support import loads_libcst


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "ctxmigrate.shim.get_or_create_user_session",
            ("ctxmigrate.shim", "get_or_create_user_session"),
        ),
        ("shim.get_session", ("shim", "get_session")),
        ("get_session", None),
        ("self.sessions.get_or_create_user_session", None),
        ("cls.sessions.get", None),
    ],
)
def test_target_import(target: str, expected: tuple[str, str] | None) -> None:
    assert target_import(target) == expected


def test_asking_what_a_rewrite_imports_loads_no_libcst() -> None:
    # The audit asks it before parsing anything (pruning keeps code naming it).
    script = (
        "from ctxmigrate.codemods import CODEMODS\n"
        "from ctxmigrate.codemods.config import Config\n"
        "from pathlib import Path\n"
        "[codemod.required_import(Config(root=Path('.'))) for codemod in CODEMODS]\n"
    )
    assert not loads_libcst(script)
