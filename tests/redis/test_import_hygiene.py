"""The shim core never imports redis: only the Redis store module does."""

from __future__ import annotations

import subprocess
import sys


def modules_after_import(statement: str) -> set[str]:
    script = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(completed.stdout.split())


def test_importing_the_shim_does_not_import_redis() -> None:
    loaded = modules_after_import(
        "import ctxmigrate.shim\n"
        "from ctxmigrate.shim import UserSessionManager, get_or_create_user_session\n"
        "import ctxmigrate.shim.store, ctxmigrate.shim.manager"
    )
    assert "ctxmigrate.shim.manager" in loaded
    assert not {name for name in loaded if name == "redis" or name.startswith("redis.")}
    assert "ctxmigrate.shim.redis_store" not in loaded


def test_importing_the_redis_store_imports_redis() -> None:
    # The check above must be able to fail: this is the import it guards against.
    assert "redis.asyncio" in modules_after_import("import ctxmigrate.shim.redis_store")
