"""Shared fixtures: real Redis (a private key prefix per test, every key deleted after the
test), the embedded Qdrant engine in a temp dir, the real fastembed model, and a fake
OpenAI-compatible server reached over HTTP by the real openai client.

Where things are (one line each, also in the README):
- Redis: MEMBOT_TEST_REDIS_URL, else REDIS_URL, else redis://127.0.0.1:6379/0.
- Embedding model: MEMBOT_TEST_MODEL_DIR, else models/all-MiniLM-L6-v2-onnx in ../shared
  or data/assets (bot.assets), else downloaded once into data/models.
- tiktoken files: MEMBOT_TEST_TIKTOKEN_DIR, else tiktoken_cache in ../shared or
  data/assets, else downloaded once into data/tiktoken.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import assets
from bot.memory.embeddings import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
_DIRS = assets.search_dirs(assets.DEFAULT_ASSETS_DIRS)
_model_env = os.environ.get("MEMBOT_TEST_MODEL_DIR")
MODEL_DIR: Path | None = Path(_model_env) if _model_env else assets.find_model_dir(DEFAULT_MODEL, _DIRS)
MODEL_CACHE = REPO / "data" / "models"  # where fastembed downloads the model without MODEL_DIR
_tik_env = os.environ.get("MEMBOT_TEST_TIKTOKEN_DIR")
TIKTOKEN_DIR = Path(_tik_env) if _tik_env else (assets.find_tiktoken_dir(_DIRS)
                                                or REPO / assets.TIKTOKEN_DOWNLOAD_DIR)
REDIS_URL = (os.environ.get("MEMBOT_TEST_REDIS_URL") or os.environ.get("REDIS_URL")
             or "redis://127.0.0.1:6379/0")

os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TIKTOKEN_DIR))
if MODEL_DIR is not None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def model_env() -> dict[str, str]:
    """Environment for a membot subprocess: the test model, wherever it comes from."""
    if MODEL_DIR is not None:
        return {"EMBEDDING_MODEL_PATH": str(MODEL_DIR), "TIKTOKEN_CACHE_DIR": str(TIKTOKEN_DIR)}
    return {"EMBEDDING_CACHE_DIR": str(MODEL_CACHE), "TIKTOKEN_CACHE_DIR": str(TIKTOKEN_DIR)}


async def wait_until_ready(port: int, timeout_s: float = 30.0, alive: Any = None) -> bool:
    """Poll ``/readyz`` of a membot on 127.0.0.1:port until it answers 200 (True), the
    ``alive()`` callable says the process ended, or the time is up (False)."""
    import asyncio
    import time

    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline and (alive is None or alive()):
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return False


# --- Redis key prefixes: every prefix a test uses is registered and swept afterwards -------------
SESSION = uuid.uuid4().hex[:6]
_prefixes: list[str] = []


def new_prefix() -> str:
    """A fresh Redis key prefix for one test; its keys are deleted when the test ends."""
    prefix = f"t{SESSION}{uuid.uuid4().hex[:8]}"
    _prefixes.append(prefix)
    return prefix


def sweep_prefixes() -> int:
    """Delete every key under the prefixes registered so far; the number deleted."""
    if not _prefixes:
        return 0
    import redis

    client: Any = (redis.RedisCluster.from_url(REDIS_URL.replace("+cluster://", "://", 1))
                   if "+cluster://" in REDIS_URL else redis.Redis.from_url(REDIS_URL))
    deleted = 0
    try:
        for prefix in _prefixes:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
            deleted += client.delete(*keys) if keys else 0
    finally:
        client.close()
    _prefixes.clear()
    return deleted


@pytest.fixture(autouse=True)
def _redis_keys_swept() -> Iterator[None]:
    """After every test, no key of a prefix it used is left in Redis."""
    yield
    sweep_prefixes()


@pytest.fixture(autouse=True)
def _no_real_model_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real LLM provider: keys and base URLs from the host are removed."""
    for var in ("OPENAI_API_KEY", "LLM_API_KEY", "LLM_BASE_URL", "OPENAI_BASE_URL",
                "DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "QDRANT_URL"):
        monkeypatch.delenv(var, raising=False)


_WIRE_PROBLEMS: list[str] = []


def _check_request(body: dict[str, Any]) -> None:
    from tests.wire_schema import request_problems

    _WIRE_PROBLEMS.extend(request_problems(body))


def pytest_configure(config: pytest.Config) -> None:
    from bot.testing.fake_openai import FakeOpenAI

    if _check_request not in FakeOpenAI.observers:
        FakeOpenAI.observers.append(_check_request)


@pytest.fixture(autouse=True)
def _every_request_is_valid(request: pytest.FixtureRequest) -> Any:
    """Every chat request a test sends to the fake server passes the OpenAI request schema
    (the openai package's types) and the rules strict servers add (no content null)."""
    _WIRE_PROBLEMS.clear()
    yield
    problems = list(_WIRE_PROBLEMS)
    _WIRE_PROBLEMS.clear()
    if problems and request.node.get_closest_marker("sends_invalid_requests") is None:
        pytest.fail("invalid chat request(s) sent: " + "; ".join(sorted(set(problems))[:5]))


@pytest.fixture(scope="session")
def embedder() -> Any:
    from bot.config import Settings
    from bot.memory.embeddings import build_embedder

    return build_embedder(Settings(_env_file=None, embedding_model_path=MODEL_DIR and str(MODEL_DIR),  # type: ignore[call-arg]
                                   embedding_cache_dir=str(MODEL_CACHE)))


@pytest.fixture
async def fake_llm() -> AsyncIterator[Any]:
    from bot.testing.fake_openai import FakeOpenAI

    async with FakeOpenAI() as fake:
        yield fake


def make_settings(tmp_path: Path, base_url: str, **over: Any) -> Any:
    from bot.config import Settings

    values: dict[str, Any] = dict(
        llm_base_url=base_url, llm_api_key="test-key", llm_model="gpt-4o-mini",
        llm_timeout_s=5.0, llm_max_retries=1, redis_url=REDIS_URL,
        redis_prefix=new_prefix(), qdrant_path=str(tmp_path / "qdrant"),
        embedding_model_path=MODEL_DIR and str(MODEL_DIR), embedding_cache_dir=str(MODEL_CACHE),
        tiktoken_cache_dir=str(TIKTOKEN_DIR),
        heartbeat_enabled=False, rate_limit_per_minute=0, workers=4, step_timeout_s=30.0,
    )
    values.update(over)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path, fake_llm: Any) -> Any:
    return make_settings(tmp_path, fake_llm.base_url)


@pytest.fixture
async def redis_store(settings: Any) -> AsyncIterator[Any]:
    from bot.stores.redis_store import RedisStore

    store = RedisStore(settings.redis_url, settings.redis_prefix)
    yield store
    await store.delete_prefix()
    await store.close()


class Harness:
    """A started Service with a recording outbox and helpers to talk to it."""

    def __init__(self, service: Any, outbox: Any, fake: Any) -> None:
        self.svc = service
        self.outbox = outbox
        self.fake = fake

    async def say(self, text: str, user: str = "alice", *, scope: str = "g1",
                  where: str = "dm", kind: str = "user_message", event_id: str | None = None,
                  wait: bool = True) -> Any:
        from bot.events import Channel, Event, UserRef

        event = Event(kind=kind, user=UserRef("test", user, scope), text=text,  # type: ignore[arg-type]
                      channel=Channel(where=where, name="general" if where == "channel" else ""),  # type: ignore[arg-type]
                      reply_to="chan", **({"event_id": event_id} if event_id else {}))
        waiter = self.outbox.expect(event.event_id)
        status = await self.svc.submit(event)
        if wait and status == "accepted":
            await __import__("asyncio").wait_for(waiter.wait(), 30)
        return event

    def key(self, user: str = "alice", scope: str = "g1") -> str:
        return f"test:{scope}:{user}"

    async def state(self, user: str = "alice") -> Any:
        return await self.svc.states.load(self.key(user))


async def start_service(settings: Any, embedder: Any, **seams: Any) -> Any:
    from bot.service import Service
    from bot.testing.outbox import RecordingOutbox

    svc = Service.build(settings, embedder=embedder, **seams)
    outbox = RecordingOutbox()
    svc.router.register("test", outbox)
    await svc.start()
    return svc, outbox


@pytest.fixture
async def harness(settings: Any, embedder: Any, fake_llm: Any) -> AsyncIterator[Harness]:
    svc, outbox = await start_service(settings, embedder)
    yield Harness(svc, outbox, fake_llm)
    redis = svc.redis
    await svc.stop()
    from bot.stores.redis_store import RedisStore

    cleaner = RedisStore(settings.redis_url, settings.redis_prefix)
    await cleaner.delete_prefix()
    await cleaner.close()
    del redis
