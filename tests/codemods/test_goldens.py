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

from ctxmigrate.codemods.adapt_websocket_context import AdaptWebSocketContextCodemod
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.fix import FixResult, fix_sources
from ctxmigrate.codemods.reuse_session import ReuseSessionCodemod
from ctxmigrate.codemods.reuse_websocket_manager import ReuseWebSocketManagerCodemod
from ctxmigrate.codemods.sites import Codemod

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CODEMOD_BY_FOLDER: dict[str, Codemod] = {
    "reuse_session": ReuseSessionCodemod(),
    "adapt_websocket_context": AdaptWebSocketContextCodemod(),
    "reuse_websocket_manager": ReuseWebSocketManagerCodemod(),
}
GOLDEN_CONFIG = Config(
    root=Path("."),
    factories=("app.dependencies.create_user_execution_context",),
    websocket_contexts=("app.websocket.WebSocketContext",),
    manager_factories=("app.websocket.create_websocket_manager",),
)
# The legacy definitions the golden sites resolve to, analysed with every case
# as part of the same project (so ``from app import dependencies as deps``
# resolves like it does in an application).
LEGACY_MODULES = {
    "app/dependencies.py": b"def create_user_execution_context(\n"
    b"    user_id, thread_id, run_id=None, db_session=None, websocket_connection_id=None\n"
    b"):\n"
    b"    return (user_id, thread_id, run_id, db_session, websocket_connection_id)\n",
    "app/websocket.py": b"class WebSocketContext:\n"
    b"    @classmethod\n"
    b"    def create_for_user(\n"
    b"        cls, websocket, user_id, thread_id, run_id=None, connection_id=None\n"
    b"    ):\n"
    b"        return cls()\n"
    b"\n"
    b"\n"
    b"def create_websocket_manager(user_context):\n"
    b"    return user_context\n",
}
REGENERATE = os.environ.get("CTXMIGRATE_REGENERATE_GOLDENS") == "1"
INPUT_SUFFIX = ".input.py"


def golden_inputs() -> list[Path]:
    return sorted(
        path
        for folder in CODEMOD_BY_FOLDER
        for path in (FIXTURES / folder).glob(f"*{INPUT_SUFFIX}")
    )


def golden_id(input_path: Path) -> str:
    return f"{input_path.parent.name}/{input_path.name.removesuffix(INPUT_SUFFIX)}"


def expected_path(input_path: Path) -> Path:
    return input_path.with_name(input_path.name.removesuffix(INPUT_SUFFIX) + ".expected.py")


def run_golden(input_path: Path, source: bytes) -> FixResult:
    """Fix ``source`` as the golden case ``input_path`` is fixed."""
    display = f"app/handlers/{input_path.name.removesuffix(INPUT_SUFFIX)}.py"
    codemod = CODEMOD_BY_FOLDER[input_path.parent.name]
    return fix_sources({display: source, **LEGACY_MODULES}, GOLDEN_CONFIG, [codemod])[display]


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

    expected_file = expected_path(input_path)
    if REGENERATE and (not expected_file.exists() or expected_file.read_bytes() != output):
        expected_file.write_bytes(output)
    expected = expected_file.read_bytes()

    assert output == expected
    cst.parse_module(expected)
    second = run_golden(input_path, expected)
    assert second.error is None
    assert second.fixed is None, "a second run must change nothing"
