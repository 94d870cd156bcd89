"""A second retrieval development set, of another shape than LoCoMo: one person chatting with
an assistant over many sessions.

Generated from templates with a seeded RNG (nothing taken from other memory benchmarks):
each conversation is a user and "Assistant" over ~16 sessions days apart. Most turns are
work requests (code, recipes, plans, budgets...) answered by long assistant turns with code
blocks and lists. Planted among them, each stated once and asked about later:

- ``preference`` / ``instruction``: short user statements ("I prefer minimal dependencies",
  "from now on put code in fenced blocks") asked about indirectly;
- ``update_current`` / ``update_previous``: facts that change (city, job, deadline...),
  asked for the current and for the earlier value;
- ``order``: which of two life events came first (evidence: both turns);
- ``summary``: one topic the user came back to in several sessions (evidence: all of them);
- ``assistant``: something a long assistant answer said ("which book did you suggest");
- ``fact``: a single personal fact asked about in other words.

The JSON has LoCoMo's shape (``conversation`` with ``session_N`` and ``session_N_date_time``,
``qa`` with ``evidence`` dia ids and a ``category``), plus ``type`` per question, so
``bench.locomo.load`` reads both sets.

Run: python -m bench.devset_chat [--out bench/data/chat-dev.json] [--seed 7] [--conversations 8]
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import devset_text as T

OUT = Path(__file__).resolve().parent / "data" / "chat-dev.json"
SESSIONS = 16
CATEGORY = {"fact": 1, "summary": 1, "order": 2, "update_current": 2, "update_previous": 2,
            "preference": 3, "instruction": 3, "assistant": 4}


@dataclass
class Plant:
    """A user (or assistant) turn to place in a given session, and the questions on it."""

    session: int
    text: str
    key: str  # groups turns that answer one question
    role: str = "user"


@dataclass
class Builder:
    rng: random.Random
    user: str
    sessions: list[list[tuple[str, str]]] = field(default_factory=list)  # (speaker, text)
    keys: dict[str, list[str]] = field(default_factory=dict)  # key -> dia ids
    qa: list[dict[str, object]] = field(default_factory=list)

    def ask(self, kind: str, question: str, keys: list[str], answer: str = "", topic: str = "") -> None:
        self.qa.append({"question": question, "answer": answer, "type": kind,
                        "category": CATEGORY[kind], "_keys": keys, **({"topic": topic} if topic else {})})


def _plants(b: Builder) -> list[Plant]:
    rng, out = b.rng, []
    late = list(range(2, SESSIONS - 1))
    for pref in rng.sample(T.PREFERENCES, 4):
        key = f"pref:{pref.name}"
        out.append(Plant(rng.choice(late[:8]), rng.choice(pref.say), key))
        b.ask("preference", rng.choice(pref.ask), [key], pref.name)
    for ins in rng.sample(T.INSTRUCTIONS, 3):
        key = f"ins:{ins.name}"
        out.append(Plant(rng.choice(late[:8]), rng.choice(ins.say), key))
        b.ask("instruction", rng.choice(ins.ask), [key], ins.name)
    for att in rng.sample(T.UPDATES, 3):
        first, second = rng.sample(att.values, 2)
        s1 = rng.choice(range(1, 7))
        s2 = rng.choice(range(s1 + 4, SESSIONS - 1))
        out.append(Plant(s1, rng.choice(att.first).format(v=first), f"upd:{att.name}:0"))
        out.append(Plant(s2, rng.choice(att.change).format(v=second, old=first), f"upd:{att.name}:1"))
        b.ask("update_current", rng.choice(att.ask_now), [f"upd:{att.name}:1"], second, f"user.{att.name}")
        b.ask("update_previous", rng.choice(att.ask_before), [f"upd:{att.name}:0"], first, f"user.{att.name}")
    events = rng.sample(T.EVENTS, 4)
    slots = sorted(rng.sample(range(1, SESSIONS - 1), 4))
    for ev, s in zip(events, slots, strict=True):
        out.append(Plant(s, rng.choice(ev.say), f"ev:{ev.name}"))
    for a, c in ((0, 1), (2, 3)):
        pair = [events[a], events[c]]
        rng.shuffle(pair)
        b.ask("order", T.ORDER_Q[rng.randrange(len(T.ORDER_Q))].format(a=pair[0].short, b=pair[1].short),
              [f"ev:{pair[0].name}", f"ev:{pair[1].name}"], events[a].short)
    topic = rng.choice(T.ARCS)
    for n, s in enumerate(sorted(rng.sample(range(1, SESSIONS - 1), len(topic.steps)))):
        out.append(Plant(s, topic.steps[n], f"arc:{topic.name}"))
    b.ask("summary", rng.choice(topic.ask), [f"arc:{topic.name}"])
    for fact in rng.sample(T.FACTS, 3):
        key = f"fact:{fact.name}"
        out.append(Plant(rng.choice(late), rng.choice(fact.say), key))
        b.ask("fact", rng.choice(fact.ask), [key])
    for rec in rng.sample(T.RECOMMENDATIONS, 3):
        key = f"rec:{rec.name}"
        s = rng.choice(late)
        out.append(Plant(s, rec.request, key + ":q"))
        out.append(Plant(s, T.long_answer(rng, rec.topic, lead=rec.answer), key, role="assistant"))
        b.ask("assistant", rec.ask, [key])
    return out


def build(rng: random.Random, index: int) -> dict[str, object]:
    user = T.NAMES[index % len(T.NAMES)]
    b = Builder(rng, user)
    plants = _plants(b)
    start = datetime(2025, 1, 6, 9, 0, tzinfo=UTC) + timedelta(days=rng.randrange(60))
    conv: dict[str, object] = {"speaker_a": user, "speaker_b": "Assistant"}
    when = start
    for s in range(1, SESSIONS + 1):
        turns = _session(rng, user, [p for p in plants if p.session == s])
        conv[f"session_{s}"] = [{"speaker": spk, "dia_id": f"D{s}:{i + 1}", "text": text}
                                for i, (spk, text, _) in enumerate(turns)]
        for i, (_, _, key) in enumerate(turns):
            if key:
                b.keys.setdefault(key, []).append(f"D{s}:{i + 1}")
        conv[f"session_{s}_date_time"] = when.strftime("%I:%M %p on %d %B, %Y").lstrip("0")
        when += timedelta(days=rng.randint(3, 11), hours=rng.randint(-3, 3))
    qa = []
    for q in b.qa:
        keys = q.pop("_keys")
        q["evidence"] = [d for k in keys for d in b.keys.get(str(k), [])]  # type: ignore[attr-defined]
        qa.append(q)
    return {"sample_id": f"chat-{index}", "conversation": conv, "qa": qa}


def _session(rng: random.Random, user: str, plants: list[Plant]) -> list[tuple[str, str, str]]:
    """Work requests with long answers; planted user statements ride along as their own
    turns (answered briefly) or open a request."""
    out: list[tuple[str, str, str]] = []
    tasks = rng.sample(T.TASKS, rng.randint(2, 4))
    queue = list(plants)
    rng.shuffle(queue)
    out.append((user, rng.choice(T.GREETINGS), ""))
    out.append(("Assistant", rng.choice(T.GREETING_REPLIES), ""))
    for task in tasks:
        if queue and rng.random() < 0.6:
            p = queue.pop()
            if p.role == "assistant":
                queue.insert(0, p)
            else:
                out.append((user, p.text, p.key))
                nxt = next((q for q in queue if q.role == "assistant" and q.key + ":q" == p.key), None)
                if nxt is not None:
                    queue.remove(nxt)
                    out.append(("Assistant", nxt.text, nxt.key))
                else:
                    out.append(("Assistant", rng.choice(T.ACKS), ""))
        out.append((user, rng.choice(task.asks), ""))
        out.append(("Assistant", T.long_answer(rng, task.topic), ""))
        if rng.random() < 0.4:
            out.append((user, rng.choice(T.FOLLOWUPS), ""))
            out.append(("Assistant", T.long_answer(rng, task.topic, short=True), ""))
    for p in queue:  # whatever did not fit in between
        if p.role == "assistant":
            continue
        out.append((user, p.text, p.key))
        nxt = next((q for q in queue if q.role == "assistant" and q.key + ":q" == p.key), None)
        out.append(("Assistant", nxt.text if nxt else rng.choice(T.ACKS), nxt.key if nxt else ""))
    out.append((user, rng.choice(T.GOODBYES), ""))
    return out


def generate(seed: int = 7, conversations: int = 8) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [build(rng, i) for i in range(conversations)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--conversations", type=int, default=8)
    args = ap.parse_args()
    data = generate(args.seed, args.conversations)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))
    turns = sum(len(v) for c in data for k, v in c["conversation"].items()  # type: ignore[attr-defined]
                if k.startswith("session_") and not k.endswith("date_time"))
    print(f"wrote {args.out}: {len(data)} conversations, {turns} turns, "
          f"{sum(len(c['qa']) for c in data)} questions")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
