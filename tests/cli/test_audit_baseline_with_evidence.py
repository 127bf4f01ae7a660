"""``audit --baseline`` together with ``--evidence``: runtime-only sites can be known too."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import RunCli
from tests.cli.test_audit_evidence import observed  # noqa: F401  (the fixture)


def test_runtime_only_sites_are_baselined_and_the_table_says_what_was_hidden(
    observed: Path,  # noqa: F811
    run_cli: RunCli,
) -> None:
    evidence = ("--no-cache", "--evidence", str(observed))
    written = run_cli("audit", *evidence, "--write-baseline", "baseline.json")
    assert written.exit_code == 0, written.output
    entries = json.loads(Path("baseline.json").read_text())["entries"]
    assert "CTX105" in [entry["rule"] for entry in entries]  # the plugin's runtime-only call

    result = run_cli("audit", "--format", "json", *evidence, "--baseline", "baseline.json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["findings"] == []
    assert document["summary"]["baseline"] == {
        "file": "baseline.json",
        "known": 4,
        "new": 0,
        "fixed": 0,
    }
    # The evidence table (not the plain one) still ends with the baseline's line.
    table = run_cli("audit", *evidence, "--baseline", "baseline.json")
    assert table.exit_code == 0
    assert "4 known findings hidden by baseline baseline.json; 0 new" in table.stdout
    # Without the evidence, the plugin's site is not found: its entry is stale.
    plain = run_cli("audit", "--format", "json", "--no-cache", "--baseline", "baseline.json")
    assert json.loads(plain.stdout)["summary"]["baseline"]["fixed"] == 1
