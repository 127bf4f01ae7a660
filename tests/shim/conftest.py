from collections.abc import Iterator

import pytest

from ctxmigrate.shim import legacy_observer, reset_configuration


@pytest.fixture(autouse=True)
def fresh_shim_configuration() -> Iterator[None]:
    """Module-level configuration (default manager, mode) must not leak between tests."""
    reset_configuration()
    legacy_observer().reset()
    yield
    reset_configuration()
    legacy_observer().reset()
