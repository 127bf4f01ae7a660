"""PEP 702 deprecation: runtime warnings at the caller, and type checkers flag callers."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ctxmigrate
from ctxmigrate.shim import create_user_execution_context, deprecated


@deprecated("legacy_fetch is deprecated; use fetch")
async def legacy_fetch(value: int) -> int:
    await asyncio.sleep(0)
    return value


@deprecated("legacy_build is deprecated; use build")
def legacy_build(value: int) -> int:
    return value


def test_async_function_stays_a_coroutine_function() -> None:
    assert inspect.iscoroutinefunction(legacy_fetch)
    assert asyncio.iscoroutinefunction(legacy_fetch)


def test_async_warning_points_at_the_awaiting_line() -> None:
    async def caller() -> int:
        return await legacy_fetch(7)

    with pytest.warns(DeprecationWarning, match="use fetch") as caught:
        assert asyncio.run(caller()) == 7
    assert caught[0].filename == __file__


def test_sync_warning_points_at_the_caller() -> None:
    with pytest.warns(DeprecationWarning, match="use build") as caught:
        assert legacy_build(3) == 3
    assert caught[0].filename == __file__


def test_deprecation_message_is_exposed_for_introspection() -> None:
    assert legacy_fetch.__deprecated__ == "legacy_fetch is deprecated; use fetch"  # type: ignore[attr-defined]
    assert "get_or_create_user_session" in create_user_execution_context.__deprecated__  # type: ignore[attr-defined]


@pytest.mark.slow
def test_mypy_flags_callers_of_the_drop_in_and_of_marked_async_functions(tmp_path: Path) -> None:
    caller = tmp_path / "caller.py"
    caller.write_text(
        textwrap.dedent(
            """
            from ctxmigrate.shim import create_user_execution_context, deprecated

            @deprecated("use the new one")
            async def old_async() -> int:
                return 1

            async def handler() -> None:
                create_user_execution_context("u", "t")
                await old_async()
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--enable-error-code",
            "deprecated",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            "",
            str(caller),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        # mypy cannot follow setuptools' editable-install import hook: point it at
        # the directory that holds the ctxmigrate package.
        env={**os.environ, "MYPYPATH": str(Path(ctxmigrate.__file__).resolve().parents[1])},
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    drop_in = "function ctxmigrate.shim.legacy.create_user_execution_context is deprecated"
    assert f"caller.py:2: error: {drop_in}" in result.stdout
    assert "caller.py:10: error: function caller.old_async is deprecated" in result.stdout
