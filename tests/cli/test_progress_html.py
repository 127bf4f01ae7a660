"""``progress --format html``: one self-contained file, rendered by real headless Chromium."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.cli.chromium import WINDOW, chromium_binary, read_png, run_chromium
from tests.cli.conftest import LegacyTree, RunCli

SYNC_CALL = "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
BURNDOWN_RED = (0xCF, 0x22, 0x2E)
PROGRESS_GREEN = (0x2D, 0xA4, 0x4E)


class DomOutline(HTMLParser):
    """What the tests look at in the DOM Chromium dumps."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[str] = []
        self.site_links: list[tuple[str, str]] = []
        self.directories: list[str] = []
        self.cards: dict[str, str] = {}
        self.tags: set[str] = set()
        self.reasons: list[str] = []
        self._link: str | None = None
        self._card: str | None = None
        self._in_reasons = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag == "circle" and attributes.get("class") == "point":
            self.points.append(attributes["data-remaining"] or "")
        if tag == "a" and attributes.get("class") == "loc":
            self._link = attributes["href"] or ""
        if tag == "details":
            self.directories.append(attributes["data-directory"] or "")
        if tag == "div" and attributes.get("class") == "card":
            self._card = attributes["data-testid"]
        if tag == "table" and attributes.get("data-testid") == "reasons":
            self._in_reasons = True
        if tag == "td" and self._in_reasons:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_reasons = False
        if tag == "td" and self._cell is not None:
            self.reasons.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self.site_links.append((self._link, data))
            self._link = None
        if self._card is not None and data.strip():
            self.cards[self._card] = data.strip()
            self._card = None
        if self._cell is not None:
            self._cell.append(data)


def fix_last_sync_call(tree: LegacyTree) -> None:
    before, found, after = tree.handler.read_text().rpartition(SYNC_CALL)
    assert found
    tree.handler.write_text(before + "    return None\n" + after)


def migrate_in_three_commits(tree: LegacyTree, run_cli: RunCli) -> None:
    """Commits with 3, 2 and 1 sites left (handle_sync, then handle_reply fixed)."""
    assert run_cli("audit", "--write-baseline", "baseline.json").exit_code == 0
    tree.commit_all()
    fix_last_sync_call(tree)
    tree.commit_all()
    fix_last_sync_call(tree)
    tree.commit_all()
    Path("report").mkdir()
    # Uncommitted: a new sync site in another directory (a review reason).
    (tree.root / "svc").mkdir()
    (tree.root / "svc" / "__init__.py").write_text("")
    (tree.root / "svc" / "worker.py").write_text(
        "from pkg.deps import create_user_execution_context\n\n\n"
        "def work(user_id):\n"
        "    return create_user_execution_context(user_id=user_id, thread_id=None)\n"
    )


def test_report_is_self_contained(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    migrate_in_three_commits(legacy_tree, run_cli)
    result = run_cli(
        "progress", "--baseline", "baseline.json", "--history", "3", "--format", "html",
        "-o", "report/progress.html",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = Path("report/progress.html").read_text()
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html and "url(" not in html
    assert " src=" not in html
    # The only URL is the SVG namespace, which is a name, never fetched.
    assert re.findall(r"https?://[^\s\"']+", html) == ["http://www.w3.org/2000/svg"]


@pytest.fixture
def chromium() -> str:
    return chromium_binary()


def test_chromium_renders_the_burndown_sites_and_reasons(
    legacy_tree: LegacyTree, run_cli: RunCli, chromium: str, tmp_path: Path
) -> None:
    migrate_in_three_commits(legacy_tree, run_cli)
    output = Path("report/progress.html")
    result = run_cli(
        "progress", "--baseline", "baseline.json", "--history", "3", "--format", "html",
        "-o", str(output),
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    dom = run_chromium(chromium, output, tmp_path / "profile-dom", "--dump-dom").stdout.decode()
    outline = DomOutline()
    outline.feed(dom)
    # 3 commits (3, 2, 1 remaining) and the work tree (1 + the new svc site).
    assert outline.points == ["3", "2", "1", "2"]
    assert outline.cards["percent-done"] == "66.7%"
    assert outline.cards["remaining"] == "2"
    assert outline.cards["fixed"] == "2"
    assert outline.cards["new"] == "1"
    assert outline.directories == ["pkg", "svc"]
    assert outline.site_links == [
        ("../pkg/handler.py#L5", "pkg/handler.py:5"),
        ("../svc/worker.py#L5", "svc/worker.py:5"),
    ]
    # The links resolve to the real files from the report's directory.
    for href, _ in outline.site_links:
        assert (output.parent / href.partition("#")[0]).is_file()
    assert outline.reasons == ["1", "sync function: await is impossible"]
    assert "script" not in outline.tags

    screenshot = tmp_path / "progress.png"
    run_chromium(chromium, output, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    image = read_png(screenshot.read_bytes())
    assert (image.width, image.height) == WINDOW
    # The burndown line and points are drawn, and the progress bar is filled.
    assert image.count(BURNDOWN_RED) > 500
    assert image.count(PROGRESS_GREEN) > 1000


def test_link_base_points_sites_at_a_hosted_repository(
    legacy_tree: LegacyTree, run_cli: RunCli, chromium: str, tmp_path: Path
) -> None:
    result = run_cli(
        "progress", "--format", "html", "-o", "progress.html",
        "--link-base", "https://example.test/org/app/blob/abc123/",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    dom = run_chromium(chromium, Path("progress.html"), tmp_path / "p", "--dump-dom")
    outline = DomOutline()
    outline.feed(dom.stdout.decode())
    assert [href for href, _ in outline.site_links] == [
        "https://example.test/org/app/blob/abc123/pkg/handler.py#L5",
        "https://example.test/org/app/blob/abc123/pkg/handler.py#L10",
        "https://example.test/org/app/blob/abc123/pkg/handler.py#L14",
    ]
    # Without history or baseline: one point (the work tree), no percentage.
    assert outline.points == ["3"]
    assert outline.cards["percent-done"] == "n/a"
