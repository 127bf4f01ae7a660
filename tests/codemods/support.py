"""What the codemod tests share: the legacy application, the golden cases, inline checks.

Inline cases (``check_noop`` / ``check_transformed``) and golden pairs go
through the real pipeline (``fix_sources``: discovery, resolver, classify,
fix), with the legacy definitions analysed beside the file under test as an
application has them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rewrite.planning import FixResult, fix_sources
from ctxmigrate.codemods.rules.adapt_websocket_context import AdaptWebSocketContextCodemod
from ctxmigrate.codemods.rules.reuse_session import ReuseSessionCodemod
from ctxmigrate.codemods.rules.reuse_websocket_manager import ReuseWebSocketManagerCodemod
from ctxmigrate.codemods.sites import Codemod


def git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``root`` (with an author for commits); fail the test if git fails."""
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        check=True,
        capture_output=True,
    )


# -- the legacy application ------------------------------------------------------

LEGACY_FACTORY_MODULE = {
    "app/dependencies.py": b"def create_user_execution_context(\n"
    b"    user_id, thread_id, run_id=None, db_session=None, websocket_connection_id=None\n"
    b"):\n"
    b"    return (user_id, thread_id, run_id, db_session, websocket_connection_id)\n",
}
LEGACY_WEBSOCKET_MODULE = {
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
# Both legacy modules, so ``from app import dependencies as deps`` resolves
# like it does in an application.
LEGACY_MODULES = {**LEGACY_FACTORY_MODULE, **LEGACY_WEBSOCKET_MODULE}
# Every legacy name configured, as the goldens and the multi-rule tests use them.
LEGACY_CONFIG = Config(
    root=Path("."),
    factories=("app.dependencies.create_user_execution_context",),
    websocket_contexts=("app.websocket.WebSocketContext",),
    manager_factories=("app.websocket.create_websocket_manager",),
)

# -- golden pairs ----------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CODEMOD_BY_FOLDER: dict[str, Codemod] = {
    "reuse_session": ReuseSessionCodemod(),
    "adapt_websocket_context": AdaptWebSocketContextCodemod(),
    "reuse_websocket_manager": ReuseWebSocketManagerCodemod(),
}
INPUT_SUFFIX = ".input.py"
EXPECTED_SUFFIX = ".expected.py"


def golden_inputs() -> list[Path]:
    """Every ``fixtures/<codemod>/<case>.input.py``, in a stable order."""
    return sorted(
        path
        for folder in CODEMOD_BY_FOLDER
        for path in (FIXTURES / folder).glob(f"*{INPUT_SUFFIX}")
    )


def golden_id(input_path: Path) -> str:
    """The test id ``<codemod>/<case>``, so each pair fails on its own."""
    return f"{input_path.parent.name}/{input_path.name.removesuffix(INPUT_SUFFIX)}"


def golden_expected_path(input_path: Path) -> Path:
    return input_path.with_name(input_path.name.removesuffix(INPUT_SUFFIX) + EXPECTED_SUFFIX)


def golden_codemod(input_path: Path) -> Codemod:
    """The codemod a case is fixed with: the one its folder is named after, alone."""
    return CODEMOD_BY_FOLDER[input_path.parent.name]


def golden_project(input_path: Path, source: bytes) -> tuple[str, dict[str, bytes]]:
    """The display path of the case and the project it is analysed in.

    The case is analysed as ``app/handlers/<case>.py`` beside the legacy modules.
    """
    display = f"app/handlers/{input_path.name.removesuffix(INPUT_SUFFIX)}.py"
    return display, {display: source, **LEGACY_MODULES}


# -- inline cases ----------------------------------------------------------------


@dataclass(frozen=True)
class InlineCases:
    """Inline before/after checks of one test module, through ``fix_sources``.

    ``path`` is where the sample is analysed; ``legacy_modules`` are the
    definitions its sites resolve to.
    """

    codemods: Sequence[Codemod]
    config: Config
    path: str
    legacy_modules: dict[str, bytes]

    def fix(
        self,
        source: str,
        config: Config | None = None,
        path: str | None = None,
        codemods: Sequence[Codemod] | None = None,
    ) -> FixResult:
        """Fix the dedented ``source``; the module's defaults unless given."""
        at = self.path if path is None else path
        sources = {at: textwrap.dedent(source).encode(), **self.legacy_modules}
        return fix_sources(
            sources,
            self.config if config is None else config,
            self.codemods if codemods is None else codemods,
        )[at]

    def check_noop(
        self, source: str, config: Config | None = None, path: str | None = None
    ) -> FixResult:
        result = self.fix(source, config, path)
        assert result.error is None
        assert result.fixed is None, result.fixed.decode() if result.fixed else ""
        assert result.applied == []
        return result

    def check_transformed(
        self,
        before: str,
        after: str,
        config: Config | None = None,
        codemods: Sequence[Codemod] | None = None,
    ) -> FixResult:
        result = self.fix(before, config, codemods=codemods)
        assert result.error is None
        assert result.fixed is not None
        assert result.fixed.decode() == textwrap.dedent(after)
        again = self.fix(result.fixed.decode(), config, codemods=codemods)
        assert again.fixed is None, "a second run must change nothing"
        return result


def loads_libcst(script: str) -> bool:
    """Whether running ``script`` in a fresh interpreter imports LibCST."""
    completed = subprocess.run(
        [sys.executable, "-c", script + "\nimport sys; print('libcst' in sys.modules)\n"],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip().splitlines()[-1] == "True"
