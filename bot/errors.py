"""The project's exceptions. Every error raised on purpose derives from ``MembotError``.

    MembotError
    ├── ConfigError            misconfiguration a person must fix (missing key, bad value)
    ├── LLMError               the chat/embedding endpoint failed
    │   ├── LLMTimeout         no answer in time (after retries)
    │   ├── LLMUnavailable     connection refused, 5xx or rate limit after bounded retries
    │   ├── LLMRejected        the server refused this request (4xx, validation): not retried
    │   ├── ContextOverflow    the server said the prompt is longer than its window
    │   └── ModelBehaviorError the model answered something we cannot use
    ├── EmbeddingError         embeddings could not be produced (model missing offline, ...)
    ├── StoreError             Redis or Qdrant failed
    │   └── DimensionMismatch  stored vectors have another size than the embedder's
    ├── ToolError              a tool call failed; the text goes back to the model
    ├── DeliveryError          a platform did not take a reply (permanent or temporary)
    ├── AdminError             an admin operation was refused (bad input, nothing changed)
    │   └── AccessDenied       the caller may not act on that memory (bot.ops.access)
    └── KnowledgeError         a document or knowledge request was refused (nothing changed)

Library errors (redis, qdrant, openai) are translated into these in the one module that
imports the library.
"""

from __future__ import annotations


class MembotError(Exception):
    """Root of every error membot raises on purpose."""


class ConfigError(MembotError):
    """A setting is missing or wrong; the message names the setting."""


class LLMError(MembotError):
    """The LLM endpoint failed."""


class LLMTimeout(LLMError):
    """The LLM did not answer within the configured timeout."""


class LLMUnavailable(LLMError):
    """The LLM endpoint refused, rate-limited or errored after bounded retries."""


class LLMRejected(LLMError):
    """The server refused the request itself (a 4xx, or a 500 naming a validation error):
    sending it again would fail again, so it is not retried."""


class ContextOverflow(LLMError):
    """The server rejected the prompt as longer than the model's context window.
    ``window`` is the window the server named in its error, when it named one."""

    def __init__(self, message: str, window: int | None = None) -> None:
        super().__init__(message)
        self.window = window


class ModelBehaviorError(LLMError):
    """The model produced output that cannot be used at all."""


class EmbeddingError(MembotError):
    """Embeddings could not be computed."""


class StoreError(MembotError):
    """A storage backend (Redis or Qdrant) failed."""


class DimensionMismatch(StoreError):
    """The vector store holds vectors of another dimension than the embedder produces."""


class ToolError(MembotError):
    """A tool call failed; its message is returned to the model as the tool result."""


class AdminError(MembotError):
    """An admin/self-service memory operation was refused; nothing was changed."""


class KnowledgeError(MembotError):
    """A document could not be read or a knowledge operation was refused; nothing changed."""


class DeliveryError(MembotError):
    """A platform did not take a reply. ``permanent``: it never will (no permission, channel
    gone, text refused); otherwise a later try may work, not before ``retry_after`` seconds
    when the platform said so. ``parts_done``: chunks of the reply already posted."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None,
                 parts_done: int = 0) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.parts_done = parts_done


class AccessDenied(AdminError):
    """The caller may not do this to that memory (see docs/privacy.md); nothing changed."""
