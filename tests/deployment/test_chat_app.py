"""The chat service's input handling, without a deployment: frames, settings, command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from examples.chat_service.__main__ import parse_arguments
from examples.chat_service.app import BadRequest, ChatMessage, Settings, parse_message
from examples.chat_service.deployment import REPOSITORY_ROOT


def test_a_well_formed_frame_is_a_message() -> None:
    frame = '{"user_id": "u", "thread_id": "t", "message_id": "m", "text": "hi", "extra": 1}'
    assert parse_message(frame) == ChatMessage("u", "t", "m", "hi")


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ("not json", "a message must be a JSON object: Expecting value"),
        ("[1, 2]", "a message must be a JSON object"),
        ('{"thread_id": "t", "message_id": "m", "text": "x"}', "user_id must be a string"),
        ('{"user_id": "u", "thread_id": 7, "message_id": "m", "text": "x"}', "thread_id must"),
        ('{"user_id": "u", "thread_id": "t", "text": "x"}', "message_id must be a string"),
        ('{"user_id": "u", "thread_id": "t", "message_id": "m"}', "text must be a string"),
    ],
)
def test_a_malformed_frame_is_refused_naming_the_problem(frame: str, problem: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_message(frame)
    assert str(raised.value).startswith(problem)


def test_settings_travel_through_the_environment_unchanged() -> None:
    settings = Settings(
        redis_url="unix:///tmp/r.sock",
        key_prefix="p",
        agent_delay=0.25,
        busy_timeout=3.0,
        lease_ttl=1.5,
        idle_timeout=60.0,
    )
    assert Settings.from_environment(settings.to_environment()) == settings
    assert Settings.from_environment({}) == Settings()


@pytest.mark.parametrize(("value", "problem"), [("soon", "a number of seconds"), ("-1", ">= 0")])
def test_a_bad_number_in_the_environment_is_named(value: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        Settings.from_environment({"CHAT_BUSY_TIMEOUT": value})
    assert "CHAT_BUSY_TIMEOUT" in str(raised.value)
    assert problem in str(raised.value)


def test_command_line_options_become_the_settings() -> None:
    arguments, settings = parse_arguments(
        ["--redis-url", "redis://h:1/2", "--workers", "3", "--agent-delay", "0.1", "--port", "0"]
    )
    assert arguments.workers == 3 and arguments.port == 0
    assert settings == Settings(redis_url="redis://h:1/2", agent_delay=0.1)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--workers", "0"], "--workers must be at least 1"),
        (["--busy-timeout", "-1"], "--busy-timeout must be >= 0"),
        (["--lease-ttl", "0"], "--lease-ttl must be > 0"),
    ],
)
def test_bad_options_exit_with_status_2_naming_them(arguments: list[str], problem: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "examples.chat_service", *arguments],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert problem in completed.stderr
