"""A scripted 20-turn conversation against an OpenAI-compatible endpoint.

Figures: per-turn latency, prompt tokens, reused-prefix share (the server's reported cached
tokens where it gives them, else computed from consecutive requests of the user, as
recorded by a proxy in front of the server), tool-call success rate, facts recalled at the
end. Baseline in the same run: the reused-prefix share the previous prompt layout (memory
metadata with the time inside the system message) would have had for the very same
requests.

Run:
  python -m bench.real_llm --fake                 # the fake LLM (echo), over real HTTP
  python -m bench.real_llm --smollm2 [--own-template]   # starts llama-cpp-python + SmolLM2
  python -m bench.real_llm                        # LLM_BASE_URL / LLM_MODEL from env/.env
Goal: reused prefix >= 90% of prompt tokens on turns after the first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bot.agent.tokens import TokenCounter
from bot.config import load_settings
from bot.events import Channel, Event, UserRef
from bot.service import Service
from bot.testing.fake_openai import META_PREFIX, FakeOpenAI, echo
from bot.testing.outbox import RecordingOutbox
from bot.testing.recording_proxy import Exchange, RecordingProxy

GOAL = 0.90
FACTS = {  # statement -> (question, word the answer must contain)
    "My name is Dana Okafor.": ("What is my name?", "dana"),
    "I live in Porto, near the river.": ("Which city do I live in?", "porto"),
    "My cat is called Miso.": ("What is my cat called?", "miso"),
    "I work as a marine biologist.": ("What is my job?", "biolog"),
    "My sister Ana lives in Oslo.": ("Where does my sister live?", "oslo"),
}
CHAT = ["Hi there!", "How are you today?", "The weather is grey and rainy here.",
        "I had green tea this morning.", "Work was busy this week.",
        "I'm reading a novel about the sea.", "Do you like music?", "I went for a walk.",
        "Tomorrow I'll cook dinner for friends.", "Thanks for chatting."]


def script() -> list[str]:
    """20 turns: facts interleaved with chat, then a question per fact."""
    facts, chat = list(FACTS), list(CHAT)
    turns: list[str] = []
    while facts or chat:
        if facts:
            turns.append(facts.pop(0))
        if chat:
            turns.append(chat.pop(0))
    return turns[:15] + [q for q, _ in FACTS.values()]


# --- reused prefix -------------------------------------------------------------------------
def old_layout(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same request as the previous layout built it: the metadata line in the system
    message, in front of the conversation."""
    if not messages or not str(messages[-1].get("content", "")).startswith(META_PREFIX):
        return messages
    system = dict(messages[0])
    system["content"] = f"{system['content']}\n{messages[-1]['content']}"
    return [system, *messages[1:-1]]


def reused(counter: TokenCounter, prev: dict[str, Any], cur: dict[str, Any],
           layout: Any = None) -> tuple[int, int]:
    """(tokens of ``cur`` shared as a prefix with ``prev``, tokens of ``cur``): tools come
    first in the servers' prompts, then whole equal messages, then the common start of the
    first differing message."""
    a, b = prev["messages"], cur["messages"]
    if layout is not None:
        a, b = layout(a), layout(b)
    tools = counter.count_tools(cur.get("tools") or [])
    same_tools = (prev.get("tools") or []) == (cur.get("tools") or [])
    total = tools + counter.count_messages(b)
    if not same_tools:
        return 0, total
    shared = tools
    for x, y in zip(a, b, strict=False):
        if x == y:
            shared += counter.count_messages([x]) - 3
            continue
        cx, cy = str(x.get("content") or ""), str(y.get("content") or "")
        n = 0
        while n < min(len(cx), len(cy)) and cx[n] == cy[n]:
            n += 1
        shared += counter.count_text(cy[:n]) if x.get("role") == y.get("role") else 0
        break
    return min(shared, total), total


def cached_tokens(ex: Exchange) -> int | None:
    usage = ex.response.get("usage") if isinstance(ex.response, dict) else None
    details = (usage or {}).get("prompt_tokens_details") or {}
    n = details.get("cached_tokens") if isinstance(details, dict) else None
    return int(n) if isinstance(n, int) else None


# --- the run ---------------------------------------------------------------------------------
async def converse(base_url: str, model: str, env_file: str | None, timeout_s: float,
                   reply_reserve: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="membot-bench-"))
    async with RecordingProxy(base_url.removesuffix("/v1")) as proxy:
        settings = load_settings(
            env_file, llm_base_url=proxy.base_url, llm_model=model, llm_timeout_s=timeout_s,
            llm_reply_reserve=reply_reserve, redis_prefix=f"bench{uuid.uuid4().hex[:8]}",
            qdrant_path=str(tmp / "qdrant"), heartbeat_enabled=False, rate_limit_per_minute=0,
            step_timeout_s=max(300.0, timeout_s * 4), llm_api_key="not-needed",
            tool_arg_max_chars=400)
        svc = Service.build(settings)
        outbox = RecordingOutbox()
        svc.router.register("bench", outbox)
        tool_calls: list[tuple[str, bool]] = []

        async def on_step(event: Any, state: Any, result: Any, seconds: float) -> None:
            tool_calls.extend(result.tools)
        svc.inbox.on_step.append(on_step)
        await svc.probe_llm()
        await svc.start()
        user = UserRef("bench", "dana", "g1", display_name="Dana")
        turns = []
        try:
            for text in script():
                before = len(proxy.chats)
                ev = Event(kind="user_message", user=user, text=text, channel=Channel(where="dm"),
                           reply_to="chan")
                waiter = outbox.expect(ev.event_id)
                started = time.perf_counter()
                await svc.submit(ev)
                await asyncio.wait_for(waiter.wait(), settings.step_timeout_s)
                seen = [r.text for r in outbox.replies if r.event_id == ev.event_id]
                turns.append({"text": text, "seconds": time.perf_counter() - started,
                              "calls": proxy.chats[before:], "seen": seen})
        finally:
            await svc.stop()
    return {"turns": turns, "tools": tool_calls, "chats": proxy.chats, "model": model}


def figures(run: dict[str, Any]) -> dict[str, Any]:
    counter = TokenCounter(run["model"])
    steps = [ex for ex in run["chats"] if ex.request.get("tools")]  # summaries excluded
    shares, old_shares, server_shares = [], [], []
    for prev, cur in zip(steps, steps[1:], strict=False):
        s, t = reused(counter, prev.request, cur.request)
        o, ot = reused(counter, prev.request, cur.request, old_layout)
        shares.append(s / t if t else 0.0)
        old_shares.append(o / ot if ot else 0.0)
        c = cached_tokens(cur)
        prompt = ((cur.response or {}).get("usage") or {}).get("prompt_tokens") if isinstance(cur.response, dict) else None
        if c is not None and prompt:
            server_shares.append(c / prompt)
    prompts = [((ex.response or {}).get("usage") or {}).get("prompt_tokens", 0)
               for ex in steps if isinstance(ex.response, dict)]
    latencies = [t["seconds"] for t in run["turns"]]
    ok_tools = sum(1 for _, ok in run["tools"] if ok)
    questions = list(FACTS.values())
    asked = run["turns"][-len(questions):]
    recalled = sum(1 for (q, word), t in zip(questions, asked, strict=True)
                   if any(word in s.lower() for s in t["seen"]))
    answered = sum(1 for t in run["turns"] if t["seen"])
    errors = sum(1 for ex in run["chats"] if ex.status != 200)
    return {
        "turns": len(run["turns"]), "answered_turns": answered, "llm_calls": len(run["chats"]),
        "http_errors": errors,
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_max_s": round(max(latencies), 2),
        "prompt_tokens_mean": round(statistics.mean(prompts)) if prompts else 0,
        "reused_prefix_mean": round(statistics.mean(shares), 3) if shares else 0.0,
        "reused_prefix_min": round(min(shares), 3) if shares else 0.0,
        "baseline_old_layout_mean": round(statistics.mean(old_shares), 3) if old_shares else 0.0,
        "server_cached_share_mean": round(statistics.mean(server_shares), 3) if server_shares else None,
        "tool_calls": len(run["tools"]), "tool_calls_ok": ok_tools,
        "tool_success_rate": round(ok_tools / len(run["tools"]), 3) if run["tools"] else None,
        "facts_recalled": f"{recalled}/{len(questions)}",
    }


def report(name: str, fig: dict[str, Any]) -> None:
    print(f"== {name}")
    for k, v in fig.items():
        print(f"  {k:28s} {v}")
    base = fig["baseline_old_layout_mean"]
    ratio = fig["reused_prefix_mean"] / base if base else float("inf")
    goal = "MET" if fig["reused_prefix_mean"] >= GOAL else "MISSED"
    print(f"  {'ratio to old layout':28s} {ratio:.2f}x   goal >= {GOAL:.0%}: {goal}")
    print(json.dumps({"bench": "real_llm", "server": name, **fig}))


async def amain(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        if args.fake:
            fake = await stack.enter_async_context(FakeOpenAI(default=echo))
            name, url, model = "fake LLM (echo)", fake.base_url, "gpt-4o-mini"
        elif args.smollm2:
            from bot.testing.llama_server import MODEL_ALIAS, LlamaServer
            fmt = None if args.own_template else "chatml-function-calling"
            server = stack.enter_context(LlamaServer(chat_format=fmt, n_ctx=args.n_ctx))
            name = f"llama-cpp-python 0.3.36 + SmolLM2-135M-Instruct Q4_1 ({fmt or 'own template'}, n_ctx {args.n_ctx})"
            url, model = server.base_url, MODEL_ALIAS
        else:
            s = load_settings(args.env_file)
            if not s.llm_base_url:
                raise SystemExit("set LLM_BASE_URL (or use --fake / --smollm2)")
            name, url, model = s.llm_base_url, s.llm_base_url, s.llm_model
        run = await converse(url, model, args.env_file, args.timeout, args.reply_reserve)
        report(name, figures(run))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fake", action="store_true", help="the fake LLM (echo) over real HTTP")
    ap.add_argument("--smollm2", action="store_true", help="start llama-cpp-python with SmolLM2")
    ap.add_argument("--own-template", action="store_true", help="SmolLM2's own chat template")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per LLM call")
    ap.add_argument("--reply-reserve", type=int, default=128)
    ap.add_argument("--env-file", default=".env")
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
