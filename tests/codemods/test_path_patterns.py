"""``path_matcher`` must agree with pathspec's ``GitIgnoreSpec`` on every pattern form."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pathspec
import pytest

from ctxmigrate.codemods.config import DEFAULT_TEST_PATTERNS
from ctxmigrate.codemods.path_patterns import _translate, path_matcher

PATTERNS = (
    *DEFAULT_TEST_PATTERNS,
    "tests",
    "/tests/",
    "/tests",
    "pkg/tests/",
    "pkg/test_*.py",
    "/conftest.py",
    "src/app/legacy.py",
    "src/*/x.py",
    "a?.py",
    "*.py",
    "*",
    "*/",
    "gen-*/",
    "v1.2/",
    "**/tests",
    "tests/**",
    "a/**/b.py",
    "x**y.py",
    "!tests/keep.py",
    "[ab].py",
    "# a comment",
    "",
    "spaced name.py",
    r"\#hash.py",
    "./tests/",
    "../x.py",
    "a//b.py",
    "?",
)
PATHS = (
    "tests/test_a.py",
    "tests/keep.py",
    "pkg/tests/helpers.py",
    "pkg/tests",
    "pkg/test_b.py",
    "pkg/sub/test_b.py",
    "pkg/b_test.py",
    "conftest.py",
    "pkg/conftest.py",
    "src/app/legacy.py",
    "src/app/sub/legacy.py",
    "src/z/x.py",
    "src/x.py",
    "ab.py",
    "a.py",
    "abc.py",
    "gen-1/mod.py",
    "v1.2/mod.py",
    "v1x2/mod.py",
    "a/b.py",
    "a/q/b.py",
    "xy.py",
    "x_then_y.py",
    "spaced name.py",
    "#hash.py",
    "tests",
    "mytests/x.py",
    "testsuite/test_x.py",
)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_matches_as_pathspec_does(pattern: str) -> None:
    expected = pathspec.GitIgnoreSpec.from_lines([pattern])
    matcher = path_matcher([pattern])
    assert [matcher(path) for path in PATHS] == [expected.match_file(path) for path in PATHS]


def test_pattern_lists_match_as_pathspec_does() -> None:
    for size in (0, 2, 3):
        for patterns in itertools.combinations(PATTERNS, size):
            expected = pathspec.GitIgnoreSpec.from_lines(patterns)
            matcher = path_matcher(patterns)
            assert [matcher(p) for p in PATHS] == [expected.match_file(p) for p in PATHS], patterns


def test_the_default_test_patterns_need_no_pathspec() -> None:
    assert all(_translate(pattern) is not None for pattern in DEFAULT_TEST_PATTERNS)
    code = (
        "import sys\n"
        "from ctxmigrate.codemods.path_patterns import path_matcher\n"
        "from ctxmigrate.codemods.config import DEFAULT_TEST_PATTERNS\n"
        "assert path_matcher(DEFAULT_TEST_PATTERNS)('pkg/tests/a.py')\n"
        "assert 'pathspec' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("pattern", ["**/tests", "!keep.py", "[ab].py", "*", "./x.py"])
def test_other_forms_are_left_to_pathspec(pattern: str) -> None:
    assert _translate(pattern) is None
