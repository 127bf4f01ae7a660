"""Structural checks of a SARIF 2.1.0 log (the schema cannot be fetched at test time)."""

from __future__ import annotations

from typing import Any

SARIF_LEVELS = {"none", "note", "warning", "error"}
COLUMN_KINDS = {"utf16CodeUnits", "unicodeCodePoints"}


def check_message(message: Any) -> None:
    assert isinstance(message, dict)
    assert isinstance(message.get("text"), str) or isinstance(message.get("id"), str)


def check_region(region: Any) -> None:
    assert isinstance(region, dict)
    for key in ("startLine", "startColumn", "endLine", "endColumn"):
        assert isinstance(region[key], int) and region[key] >= 1, key
    assert (region["startLine"], region["startColumn"]) <= (region["endLine"], region["endColumn"])


def check_artifact_location(location: Any, base_ids: dict[str, Any]) -> None:
    assert isinstance(location["uri"], str) and location["uri"]
    assert not location["uri"].startswith("/"), "uri must be relative to the base id"
    assert " " not in location["uri"], "uri must be percent-encoded"
    assert location["uriBaseId"] in base_ids


def assert_valid_sarif(log: dict[str, Any]) -> None:
    """The required properties and value constraints of the SARIF 2.1.0 schema
    for every object we emit (sarifLog, run, tool, toolComponent,
    reportingDescriptor, invocation, notification, result, location,
    physicalLocation, artifactLocation, region, fix, artifactChange, replacement).
    """
    assert log["version"] == "2.1.0"
    assert isinstance(log["$schema"], str)
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert isinstance(driver["name"], str)
    rules = driver["rules"]
    assert len({rule["id"] for rule in rules}) == len(rules), "rule ids must be unique"
    for rule in rules:
        assert isinstance(rule["id"], str)
        assert isinstance(rule["name"], str)
        check_message(rule["shortDescription"])
    assert run["columnKind"] in COLUMN_KINDS
    base_ids = run["originalUriBaseIds"]
    for base in base_ids.values():
        assert base["uri"].startswith("file://") and base["uri"].endswith("/")
    for invocation in run["invocations"]:
        assert isinstance(invocation["executionSuccessful"], bool)
        for notification in invocation["toolExecutionNotifications"]:
            check_message(notification["message"])
            assert notification["level"] in SARIF_LEVELS
            for location in notification["locations"]:
                check_artifact_location(location["physicalLocation"]["artifactLocation"], base_ids)
    for result in run["results"]:
        check_message(result["message"])
        assert result["level"] in SARIF_LEVELS
        if "ruleIndex" in result:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        for location in result["locations"]:
            physical = location["physicalLocation"]
            check_artifact_location(physical["artifactLocation"], base_ids)
            check_region(physical["region"])
        for fix in result.get("fixes", []):
            check_message(fix["description"])
            assert len(fix["artifactChanges"]) >= 1
            for change in fix["artifactChanges"]:
                check_artifact_location(change["artifactLocation"], base_ids)
                assert len(change["replacements"]) >= 1
                for replacement in change["replacements"]:
                    check_region(replacement["deletedRegion"])
                    assert isinstance(replacement["insertedContent"]["text"], str)
