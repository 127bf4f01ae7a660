"""``progress --format html``: one self-contained page (no network, no script).

Everything is inline: the CSS, and the burndown as an SVG drawn here (no chart
library, no CDN), so the file works offline and as a CI artifact. Sites link
to ``file:line``: relative to the report's own location by default, or under
``--link-base`` (``https://github.com/org/repo/blob/<sha>/``) for a hosted
repository, with GitHub's ``#L<line>`` anchor.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from itertools import groupby
from pathlib import Path
from urllib.parse import quote

from ctxmigrate import __version__
from ctxmigrate.cli.render_progress_table import headline
from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.progress import WORK_CATEGORIES, Progress, Site

CHART_WIDTH = 760
CHART_HEIGHT = 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 16, 16, 56

# Widths of the site tables' columns: paths and messages get the room.
SITE_COLUMNS = (
    '<colgroup><col style="width:27%"><col style="width:15%"><col style="width:8%">'
    '<col style="width:18%"><col style="width:32%"></colgroup>'
)

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 "DejaVu Sans", system-ui, sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
main { max-width: 1000px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.headline { color: #57606a; margin: 0 0 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 16px;
        min-width: 96px; }
.card .value { font-size: 24px; font-weight: bold; display: block; }
.card .label { color: #57606a; font-size: 12px; text-transform: uppercase; }
.bar { height: 10px; background: #d0d7de; border-radius: 5px; overflow: hidden; margin: 12px 0; }
.bar span { display: block; height: 100%; background: #2da44e; }
section, figure { background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
                  padding: 12px 16px; margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2;
         vertical-align: top; overflow-wrap: anywhere; }
th { white-space: nowrap; }
table.sites { table-layout: fixed; }
#burndown { width: 100%; height: auto; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.rewrite { color: #1a7f37; font-weight: bold; }
.review { color: #9a6700; font-weight: bold; }
.new { background: #bf3989; color: #fff; border-radius: 8px; padding: 0 6px; font-size: 11px; }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: bold; }
code, a.loc { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: 13px; }
a { color: #0969da; }
svg text { font: 11px "DejaVu Sans", sans-serif; fill: #57606a; }
footer { color: #57606a; font-size: 12px; margin-top: 24px; }
"""


def site_href(site: Site, root: Path, output: Path, link_base: str | None) -> str:
    """``link_base`` + the path relative to the project ``root``, or a link
    relative to the report file."""
    line = site.finding.line
    if link_base is not None:
        relative = os.path.relpath(Path.cwd() / site.path, root).replace(os.sep, "/")
        return f"{link_base}{quote(relative)}#L{line}"
    target = os.path.relpath(Path.cwd() / site.path, output.resolve().parent)
    return f"{quote(target.replace(os.sep, '/'))}#L{line}"


def _card(label: str, value: str, test_id: str) -> str:
    return (
        f'<div class="card" data-testid="{test_id}"><span class="value">{escape(value)}</span>'
        f'<span class="label">{escape(label)}</span></div>'
    )


def burndown_svg(points: Sequence[tuple[str, str, int]], reference: int | None) -> str:
    """Remaining sites per point (label, tooltip, remaining), oldest first."""
    width = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    height = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = max([value for _, _, value in points] + [reference or 0, 1])
    steps = max(len(points) - 1, 1)

    def x(index: int) -> float:
        return MARGIN_LEFT + (width * index / steps if len(points) > 1 else width / 2)

    def y(value: int) -> float:
        return MARGIN_TOP + height - height * value / top

    parts = [
        f'<svg id="burndown" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
        f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}">',
        "<title>Remaining legacy sites per commit</title>",
    ]
    for tick in sorted({0, top // 2, top}):
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}" stroke="#eaeef2"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    if reference is not None:
        parts.append(
            f'<line class="reference" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + width}" '
            f'y1="{y(reference):.1f}" y2="{y(reference):.1f}" stroke="#8250df" '
            f'stroke-dasharray="6 4"/>'
            f'<text x="{MARGIN_LEFT + width}" y="{y(reference) - 4:.1f}" text-anchor="end" '
            f'fill="#8250df">baseline {reference}</text>'
        )
    coordinates = " ".join(
        f"{x(index):.1f},{y(value):.1f}" for index, (_, _, value) in enumerate(points)
    )
    parts.append(
        f'<polyline points="{coordinates}" fill="none" stroke="#cf222e" stroke-width="2.5"/>'
    )
    label_every = max(1, len(points) // 12)
    for index, (label, tooltip, value) in enumerate(points):
        parts.append(
            f'<circle class="point" cx="{x(index):.1f}" cy="{y(value):.1f}" r="4" '
            f'fill="#cf222e" data-remaining="{value}"><title>{escape(tooltip)}: '
            f"{value} remaining</title></circle>"
        )
        if index % label_every == 0 or index == len(points) - 1:
            bottom = MARGIN_TOP + height + 14
            parts.append(
                f'<text x="{x(index):.1f}" y="{bottom}" text-anchor="end" '
                f'transform="rotate(-35 {x(index):.1f} {bottom})">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _counts_rows(rows: Mapping[str, Mapping[str, int]]) -> str:
    return "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f'<td class="n">{counts[category]}</td>' for category in WORK_CATEGORIES)
        + f'<td class="n">{sum(counts.values())}</td></tr>'
        for name, counts in rows.items()
    )


def _counts_table(test_id: str, first: str, rows: Mapping[str, Mapping[str, int]]) -> str:
    header = "".join(f'<th class="n">{c}</th>' for c in (*WORK_CATEGORIES, "total"))
    return (
        f'<table data-testid="{test_id}"><thead><tr><th>{first}</th>{header}</tr></thead>'
        f"<tbody>{_counts_rows(rows)}</tbody></table>"
    )


def _history_points(progress: Progress) -> list[tuple[str, str, int]]:
    points = [
        (point.commit[:8], f"{point.commit[:12]} {point.date} {point.subject}", point.remaining)
        for point in progress.history
    ]
    points.append(("work tree", "the work tree now", progress.remaining))
    return points


def _site_rows(
    sites: Sequence[tuple[int, Site]],
    progress: Progress,
    rules_by_id: Mapping[str, Rule],
    root: Path,
    output: Path,
    link_base: str | None,
) -> str:
    rows = []
    for index, site in sites:
        f = site.finding
        new = ' <span class="new">new</span>' if index in progress.new else ""
        rows.append(
            f'<tr class="site" data-category="{f.category}" data-rule="{escape(f.rule)}">'
            f'<td><a class="loc" href="{escape(site_href(site, root, output, link_base))}">'
            f"{escape(site.path)}:{f.line}</a>{new}</td>"
            f"<td>{escape(rule_label(f.rule, rules_by_id))}</td>"
            f'<td class="{f.category}">{f.category}</td>'
            f"<td><code>{escape(f.function or '<module>')}</code></td>"
            f"<td>{escape(f.message)}</td></tr>"
        )
    return "".join(rows)


def progress_html(
    progress: Progress,
    rules_by_id: Mapping[str, Rule],
    output: Path,
    link_base: str | None = None,
    root: Path | None = None,
) -> str:
    project_root = (root or Path.cwd()).resolve()
    percent = progress.percent_done
    cards = [
        _card("percent done", "n/a" if percent is None else f"{percent:.1f}%", "percent-done"),
        _card("remaining", str(progress.remaining), "remaining"),
        *(_card(c, str(n), c) for c, n in progress.by_category().items()),
        _card("fixed", "n/a" if progress.fixed is None else str(progress.fixed), "fixed"),
        _card("new", str(len(progress.new)) if progress.baseline_file else "n/a", "new"),
        _card("keep", str(progress.kept), "keep"),
    ]
    bar = f'<div class="bar"><span style="width:{percent or 0:.1f}%"></span></div>'
    if progress.history:
        chart_note = f"The last {len(progress.history)} commits, and the work tree."
    else:
        chart_note = "Only the work tree: run with --history N for a burndown over commits."
    chart = burndown_svg(_history_points(progress), progress.known_at_baseline)
    reasons: Counter[str] = Counter(
        site.finding.message for site in progress.sites if site.finding.category == "review"
    )
    reason_rows = "".join(
        f'<tr><td class="n">{count}</td><td>{escape(message)}</td></tr>'
        for message, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    )
    by_rule = {rule_label(r, rules_by_id): row for r, row in progress.by_rule().items()}
    indexed = list(enumerate(progress.sites))
    indexed.sort(key=lambda item: (item[1].directory, item[1].path, item[1].finding.line))
    directories = []
    for directory, group in groupby(indexed, key=lambda item: item[1].directory):
        sites = list(group)
        rows = _site_rows(sites, progress, rules_by_id, project_root, output, link_base)
        directories.append(
            f'<details open data-directory="{escape(directory)}"><summary>{escape(directory)} '
            f'({len(sites)})</summary><table class="sites">{SITE_COLUMNS}'
            "<thead><tr><th>site</th><th>rule</th>"
            f"<th>category</th><th>function</th><th>message</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>"
        )
    if not directories:
        directories.append('<p data-testid="done">No legacy sites left.</p>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ctxmigrate progress</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>ctxmigrate migration progress</h1>
<p class="headline" data-testid="headline">{escape(headline(progress))}</p>
<div class="cards">{"".join(cards)}</div>
{bar}
<h2>Burndown</h2>
<figure>{chart}<figcaption>{escape(chart_note)}</figcaption></figure>
<h2>Remaining by rule</h2>
<section>{_counts_table("by-rule", "rule", by_rule)}</section>
<h2>Remaining by directory</h2>
<section>{_counts_table("by-directory", "directory", progress.by_directory())}</section>
<h2>Review reasons</h2>
<section><table data-testid="reasons"><thead><tr><th class="n">sites</th><th>reason</th></tr>
</thead><tbody>{reason_rows}</tbody></table></section>
<h2>Remaining sites</h2>
<section data-testid="sites">{"".join(directories)}</section>
<footer>ctxmigrate {escape(__version__)}; {progress.files_scanned} files scanned,
{progress.errors} could not be analysed.</footer>
</main>
</body>
</html>
"""
