"""Structured logging: structlog in front of stdlib logging, with secrets redacted.

``configure_logging`` routes both structlog loggers and plain stdlib loggers (aiohttp,
discord, httpx, ...) through one handler whose last steps are ``redact_secrets`` and the
renderer, so nothing reaches the output unredacted — including exception text.

Per-event context: wrap the handling of one event in ``event_context(user=...,
platform=..., event_id=...)`` (``structlog.contextvars.bound_contextvars``); every line
logged inside, from any module or task started inside, carries those keys.

Message bodies (user text, model output, tool arguments) are logged only at DEBUG:
callers log ids, sizes and counts at INFO and put bodies in ``log.debug(...)`` calls.
The redaction below is a safety net for credentials, not a licence to log content.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

Format = Literal["auto", "json", "console"]

REDACTED = "[REDACTED]"

_SECRET_KEY_WORDS = frozenset(
    {"token", "tokens", "key", "apikey", "secret", "password", "passwd", "pwd",
     "authorization", "auth", "cookie", "credential", "credentials"}
)  # fmt: skip
_KEY_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_SECRET_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style API keys (sk-..., sk-proj-...)
    re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{8,}"),  # Slack bot/user/app-config tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{8,}"),  # Slack app-level (Socket Mode) tokens
    # Discord bot tokens: base64 user id . timestamp . HMAC
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    re.compile(r"(?i)(?<=\bbearer )[A-Za-z0-9._~+/=-]{8,}"),  # Authorization: Bearer <x>
]
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(?=@)", re.I)
_MAX_DEPTH = 6
_HANDLER_FLAG = "_membot_handler"


def redact_text(text: str) -> str:
    """``text`` with token-shaped substrings and URL passwords replaced by ``[REDACTED]``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)


def _is_secret_key(key: object) -> bool:
    # Whole words, split at separators and camelCase: api_key, discordToken, X-Api-Key and
    # Authorization are secret; tiktoken_cache_dir and tokenizer are not.
    words = _KEY_WORD.findall(str(key))
    return any(word.lower() in _SECRET_KEY_WORDS for word in words)


def _redact(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if depth < _MAX_DEPTH and isinstance(value, dict):
        return {k: _redact_item(k, v, depth + 1) for k, v in value.items()}
    if depth < _MAX_DEPTH and isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    # Any other object would be rendered through str/repr: scrub that text instead.
    return redact_text(str(value))


def _redact_item(key: object, value: Any, depth: int) -> Any:
    # Counts and flags under secret-looking names (prompt_tokens=812) are kept.
    if _is_secret_key(key) and value is not None and not isinstance(value, bool | int | float):
        return REDACTED
    return _redact(value, depth)


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: blank secret-named fields, scrub token shapes from all strings.

    A field is secret when a word of its name (split at ``_``, ``-``, ``.`` and camelCase)
    is token(s), key, apikey, secret, password, passwd, pwd, authorization, auth, cookie or
    credential(s), and its value is not a number/bool/None. In every other
    string (the event text, exception text, nested dicts and lists) OpenAI ``sk-`` keys,
    Slack ``xox?-``/``xapp-`` tokens, Discord bot tokens, bearer tokens and URL passwords
    are replaced by ``[REDACTED]``.
    """
    return {k: _redact_item(k, v, 0) for k, v in event_dict.items()}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(fmt: Format, stream: TextIO) -> Processor:
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    if use_console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer()


_CHATTY = ("httpx", "httpx2", "httpcore", "openai", "apscheduler", "discord.gateway",
           "discord.client", "slack_bolt", "slack_sdk", "aiohttp.access")


def configure_logging(
    level: str = "INFO", fmt: Format = "auto", stream: TextIO | None = None
) -> None:
    """Set up structlog and the root stdlib logger; safe to call again to reconfigure.

    ``fmt``: "json" writes one JSON object per line, "console" a readable coloured line,
    "auto" picks console when ``stream`` (default stderr) is a TTY, else json.
    """
    out = stream if stream is not None else sys.stderr
    shared = _shared_processors()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # exception text is redacted below, too
            redact_secrets,
            _renderer(fmt, out),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_FLAG, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":  # libraries' per-request INFO lines are noise (and URLs)
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: module-level loggers made before this call follow the new config.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger over the stdlib logger ``name`` (use ``__name__``)."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def event_context(**context: Any) -> Iterator[None]:
    """Bind ``user=``, ``platform=``, ``event_id=`` (and any extras) to every log line inside."""
    with structlog.contextvars.bound_contextvars(**context):
        yield
