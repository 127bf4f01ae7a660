"""The wheel installs one import name, ``ctxmigrate``, with the three rooms as subpackages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ctxmigrate

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("ctxmigrate-*.whl")
    return built


def test_the_wheel_version_is_the_package_version(wheel: Path) -> None:
    # One version string: pyproject reads ctxmigrate.__version__.
    assert wheel.name.startswith(f"ctxmigrate-{ctxmigrate.__version__}-")


def test_wheel_installs_only_the_ctxmigrate_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"ctxmigrate"}
    for room in ("codemods", "shim", "cli"):
        assert f"ctxmigrate/{room}/__init__.py" in names


def test_installed_wheel_imports_from_site_packages(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-t", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    # bin/ holds the console script; no generic top-level package such as cli or shim.
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert installed - {"bin"} == {"ctxmigrate"}
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import ctxmigrate.shim, ctxmigrate.codemods.model, ctxmigrate.cli.main;"
        "print(ctxmigrate.shim.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert Path(result.stdout.strip()).is_relative_to(target / "ctxmigrate" / "shim")
