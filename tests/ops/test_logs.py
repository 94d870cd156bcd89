"""Logging: JSON/console output, secret redaction, per-event context from contextvars."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bot.ops.logs import configure_logging, event_context, get_logger, redact_text

# Token-shaped fakes, assembled at run time so no scanner mistakes this file for a leak.
OPENAI_KEY = "sk-" + "proj-" + "A1b2C3d4" * 5
SLACK_BOT = "xox" + "b-" + "1234567890-" + "0987654321-" + "abcDEF" * 4
SLACK_APP = "xa" + "pp-" + "1-A0123456789-" + "9876543210" + "-abcdef" * 4
DISCORD_BOT = "MTIzNDU2Nzg5MDEyMzQ1Njc4" + "." + "GAbCdE" + "." + "abcdefghijklmnopqrstuvwxyz_0123"
ALL_SECRETS = (OPENAI_KEY, SLACK_BOT, SLACK_APP, DISCORD_BOT, "hunter2hunter2")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def assert_no_secrets(text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text


def test_secret_named_fields_are_redacted(stream: io.StringIO) -> None:
    """Fields named like token/key/secret/password/authorization never show their value."""
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").info(
        "llm_configured",
        api_key="plainvalue123",
        discord_token="whatever-it-is",
        headers={"Authorization": "Basic abcdef"},
        password="hunter2hunter2",
    )
    (line,) = lines(stream)
    assert line["api_key"] == "[REDACTED]"
    assert line["discord_token"] == "[REDACTED]"
    assert line["headers"] == {"Authorization": "[REDACTED]"}
    assert line["password"] == "[REDACTED]"
    assert_no_secrets(stream.getvalue())


def test_token_shaped_values_are_redacted_anywhere(stream: io.StringIO) -> None:
    """sk-, xoxb-, xapp-, Discord and URL-password secrets are scrubbed from any string."""
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").warning(
        f"startup with {OPENAI_KEY}",
        detail=f"slack {SLACK_BOT} and {SLACK_APP}",
        items=[DISCORD_BOT, "redis://:hunter2hunter2@redis:6379/0"],
    )
    (line,) = lines(stream)
    assert line["event"] == "startup with [REDACTED]"
    assert line["items"][1] == "redis://:[REDACTED]@redis:6379/0"
    assert_no_secrets(stream.getvalue())


def test_exception_and_object_values_are_redacted(stream: io.StringIO) -> None:
    """Exceptions and other objects passed as values are rendered as redacted text."""
    configure_logging("INFO", "json", stream=stream)
    error = ConnectionError("redis://:hunter2hunter2@redis:6379 refused")
    get_logger("t").error("store_down", error=error, where=("redis", SLACK_APP))
    (line,) = lines(stream)
    assert line["error"] == "ConnectionError: redis://:[REDACTED]@redis:6379 refused"
    assert line["where"] == ["redis", "[REDACTED]"]
    assert_no_secrets(stream.getvalue())


def test_numbers_under_secret_like_names_are_kept(stream: io.StringIO) -> None:
    """Token counts (prompt_tokens=812) are numbers, not secrets, and stay visible."""
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").info("llm_call", prompt_tokens=812, completion_tokens=40)
    (line,) = lines(stream)
    assert line["prompt_tokens"] == 812
    assert line["completion_tokens"] == 40


def test_secret_names_match_whole_words(stream: io.StringIO) -> None:
    """camelCase and dashed secret names are caught; tiktoken_cache_dir/tokenizer are not."""
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").info(
        "settings",
        discordToken="abc",
        **{"X-Api-Key": "abc"},
        tiktoken_cache_dir="/opt/membot/tiktoken",
        tokenizer="cl100k_base",
    )
    (line,) = lines(stream)
    assert line["discordToken"] == line["X-Api-Key"] == "[REDACTED]"
    assert line["tiktoken_cache_dir"] == "/opt/membot/tiktoken"
    assert line["tokenizer"] == "cl100k_base"


def test_stdlib_loggers_and_exceptions_are_redacted(stream: io.StringIO) -> None:
    """Plain stdlib loggers (libraries) and exception text go through the same redaction."""
    configure_logging("INFO", "json", stream=stream)
    logging.getLogger("some.library").warning("auth with %s failed", SLACK_BOT)
    try:
        raise RuntimeError(f"bad key {OPENAI_KEY}")
    except RuntimeError:
        get_logger("t").exception("step_failed")
    first, second = lines(stream)
    assert first["logger"] == "some.library"
    assert first["event"] == "auth with [REDACTED] failed"
    assert "RuntimeError" in second["exception"]
    assert_no_secrets(stream.getvalue())


def test_event_context_binds_user_platform_event_id(stream: io.StringIO) -> None:
    """Lines logged inside event_context carry user/platform/event_id; lines after do not."""
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("t")
    with event_context(user="u1", platform="discord", event_id="e-42"):
        log.info("handled")
    log.info("idle")
    inside, after = lines(stream)
    assert (inside["user"], inside["platform"], inside["event_id"]) == ("u1", "discord", "e-42")
    assert "user" not in after and "event_id" not in after


def test_level_filters_debug(stream: io.StringIO) -> None:
    """At INFO, debug lines (where message bodies go) are not written."""
    configure_logging("INFO", "json", stream=stream)
    log = get_logger("t")
    log.debug("body", text="what the user said")
    log.info("shown")
    assert [line["event"] for line in lines(stream)] == ["shown"]
    assert lines(stream)[0]["level"] == "info"


def test_console_format_is_readable_and_redacted(stream: io.StringIO) -> None:
    """fmt="console" writes a non-JSON line, still without secrets."""
    configure_logging("DEBUG", "console", stream=stream)
    get_logger("t").info("connected", token=SLACK_BOT)
    text = stream.getvalue()
    assert "connected" in text
    assert not text.lstrip().startswith("{")
    assert_no_secrets(text)


def test_auto_format_is_json_when_not_a_tty(stream: io.StringIO) -> None:
    """fmt="auto" picks JSON for a non-TTY stream (containers, CI)."""
    configure_logging("INFO", "auto", stream=stream)
    get_logger("t").info("hello")
    assert lines(stream)[0]["event"] == "hello"


def test_reconfigure_replaces_own_handler_only(stream: io.StringIO) -> None:
    """Calling configure_logging twice leaves one membot handler and keeps foreign handlers."""
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    configure_logging("INFO", "json", stream=io.StringIO())
    configure_logging("INFO", "json", stream=stream)
    get_logger("t").info("once")
    assert len(lines(stream)) == 1
    assert foreign in logging.getLogger().handlers


def test_redact_text_leaves_ordinary_text_alone() -> None:
    """Ordinary text, ids and URLs without passwords are not altered."""
    text = "user U123 asked about task-list at https://example.com/a.b and redis://redis:6379/0"
    assert redact_text(text) == text
