"""Golden pairs: ``fixtures/<codemod>/<case>.input.py`` -> ``<case>.expected.py``, byte for byte.

Each pair is analysed as ``app/handlers/<case>.py`` with the legacy names
configured (``app.dependencies``, ``app.websocket``), and fixed with the
folder's codemod only. The expected file must parse, and fixing it again must
change nothing.

Regenerate the expected files (then review the diff!) with::

    CTXMIGRATE_REGENERATE_GOLDENS=1 python -m pytest tests/codemods/test_goldens.py
"""

from __future__ import annotations

import os
from pathlib import Path

import libcst as cst
import pytest

from ctxmigrate.codemods.rewrite.planning import FixResult, fix_sources

from .support import (
    CODEMOD_BY_FOLDER,
    FIXTURES,
    INPUT_SUFFIX,
    LEGACY_CONFIG,
    golden_codemod,
    golden_expected_path,
    golden_id,
    golden_inputs,
    golden_project,
)

REGENERATE = os.environ.get("CTXMIGRATE_REGENERATE_GOLDENS") == "1"


def run_golden(input_path: Path, source: bytes) -> FixResult:
    """Fix ``source`` as the golden case ``input_path`` is fixed."""
    display, project = golden_project(input_path, source)
    return fix_sources(project, LEGACY_CONFIG, [golden_codemod(input_path)])[display]


def test_every_codemod_has_goldens() -> None:
    cases_by_folder = {
        folder: {p.name for p in (FIXTURES / folder).glob("*")} for folder in CODEMOD_BY_FOLDER
    }
    for folder, names in cases_by_folder.items():
        inputs = {name for name in names if name.endswith(INPUT_SUFFIX)}
        assert len(inputs) >= 10, folder
        for name in inputs:
            assert name.replace(INPUT_SUFFIX, ".expected.py") in names, f"{folder}/{name}"


@pytest.mark.parametrize("input_path", golden_inputs(), ids=golden_id)
def test_golden(input_path: Path) -> None:
    source = input_path.read_bytes()
    result = run_golden(input_path, source)
    assert result.error is None
    output = source if result.fixed is None else result.fixed

    expected_file = golden_expected_path(input_path)
    if REGENERATE and (not expected_file.exists() or expected_file.read_bytes() != output):
        expected_file.write_bytes(output)
    expected = expected_file.read_bytes()

    assert output == expected
    cst.parse_module(expected)
    second = run_golden(input_path, expected)
    assert second.error is None
    assert second.fixed is None, "a second run must change nothing"
