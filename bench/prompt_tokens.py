"""Fixed prompt overhead: tokens of system instructions + tool schemas + empty memory.

Run: python -m bench.prompt_tokens [--model gpt-4o-mini] [--env-file .env]
Settings (TIKTOKEN_CACHE_DIR, ...) come from the environment and .env, as for the bot.
Goal: at most 1,200 tokens (MemGPT's own fixed prompt is about 2,000).
"""

from __future__ import annotations

import argparse
import json

from bot.agent import prompts, tools
from bot.agent.context import ContextManager
from bot.agent.tokens import TokenCounter
from bot.config import load_settings
from bot.memory.core import AgentState

GOAL = 1_200


class _NoLLM:
    async def complete(self, *a: object, **k: object) -> object:
        raise RuntimeError("not used")

    async def close(self) -> None:
        return None


def measure(model: str, env_file: str | None = ".env") -> dict[str, int]:
    settings = load_settings(env_file, llm_model=model)
    counter = TokenCounter(model)
    ctx = ContextManager(settings, counter, _NoLLM(), tools.schemas())  # type: ignore[arg-type]
    state = AgentState.new("bench:-:user", "", settings.core_persona_limit, settings.core_human_limit)
    system = ctx.system_message(state)
    out = {
        "instructions": counter.count_text(prompts.SYSTEM),
        "system_message_with_empty_memory": counter.count_messages([system]),
        "tool_schemas": counter.count_tools(ctx.tool_schemas),  # as sent
    }
    out["fixed_total"] = out["system_message_with_empty_memory"] + out["tool_schemas"]
    out["approximate"] = int(counter.approximate)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    args = ap.parse_args()
    fig = measure(args.model, args.env_file)
    print(f"model: {args.model}  (tokenizer {'approximate' if fig['approximate'] else 'tiktoken'})")
    for k in ("instructions", "system_message_with_empty_memory", "tool_schemas", "fixed_total"):
        print(f"  {k:34s} {fig[k]:6d}")
    print(f"  {'goal':34s} {GOAL:6d}  -> {'MET' if fig['fixed_total'] <= GOAL else 'MISSED'}")
    print(f"  {'ratio to MemGPT (~2000)':34s} {fig['fixed_total'] / 2000:6.2f}")
    print(json.dumps({"bench": "prompt_tokens", "model": args.model, **fig}))


if __name__ == "__main__":
    main()
