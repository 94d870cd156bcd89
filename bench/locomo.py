"""LoCoMo conversations for the retrieval benchmark, and the reference baselines.

A conversation becomes JSON lines for ``Admin.import_lines`` (speaker_a as the user,
speaker_b as the assistant, ``name`` = speaker, a session's turns 10 s apart from its
date time, a shared photo's caption as ``[shares a photo: ...]``); questions of
categories 1-4 with their evidence dia_ids. Baselines over the raw turn texts: Okapi
BM25, dense cosine, and their reciprocal-rank fusion (k=60), as in the data's README.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

TURN_GAP_S = 10
CATEGORIES = (1, 2, 3, 4)
_STOP = set("""a an and are as at be but by did do does for from had has have he her his how i in
is it its me my of on or our she so that the their them they this to was we were what when where
which who why will with would you your""".split())


@dataclass
class Turn:
    dia: str
    speaker: str
    text: str
    ts: float


@dataclass
class Question:
    text: str
    evidence: set[str]
    category: int
    kind: str = ""  # question type when the set names one (bench.devset_chat), else "cat<N>"
    topic: str = ""  # the changing attribute of an update question (bench.devset_chat)


@dataclass
class Conversation:
    name: str
    speaker_a: str
    turns: list[Turn] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    @property
    def now(self) -> float:
        """A day after the last session: when the questions are asked."""
        return self.turns[-1].ts + 86_400

    def import_lines(self) -> list[str]:
        return [json.dumps({"role": "user" if t.speaker == self.speaker_a else "assistant",
                            "content": t.text, "timestamp": t.ts, "name": t.speaker})
                for t in self.turns]


def load(path: Path) -> list[Conversation]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    return [_conversation(raw) for f in files for raw in json.loads(f.read_text())]


def _conversation(raw: dict) -> Conversation:  # type: ignore[type-arg]
    conv = raw["conversation"]
    out = Conversation(raw.get("sample_id", "?"), conv["speaker_a"])
    n = 1
    while f"session_{n}" in conv:
        start = datetime.strptime(conv[f"session_{n}_date_time"], "%I:%M %p on %d %B, %Y")
        for i, t in enumerate(conv[f"session_{n}"]):
            text = t["text"] + (f" [shares a photo: {t['blip_caption']}]" if t.get("blip_caption") else "")
            ts = (start.replace(tzinfo=UTC) + timedelta(seconds=TURN_GAP_S * i)).timestamp()
            out.turns.append(Turn(t["dia_id"], t["speaker"], text, ts))
        n += 1
    for q in raw["qa"]:
        evidence = {e for ev in q.get("evidence", []) for e in re.split(r"[;,\s]+", ev) if e}
        if q.get("category") in CATEGORIES and evidence:
            kind = str(q.get("type") or f"cat{q['category']}")
            out.questions.append(Question(q["question"], evidence, q["category"], kind, str(q.get("topic", ""))))
    return out


def recall_at(ranked: Sequence[str], evidence: set[str], k: int) -> float:
    return len(evidence & set(ranked[:k])) / len(evidence)


# --- baselines -------------------------------------------------------------------------------
def tokens(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]


class BM25:
    """Okapi BM25 (k1=1.2, b=0.75) over one conversation's raw turn texts."""

    def __init__(self, docs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(tokens(d)) for d in docs]
        self.lens = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lens) / max(len(self.docs), 1)
        df = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.k1, self.b = k1, b

    def rank(self, query: str) -> list[int]:
        terms = set(tokens(query))
        scores = []
        for d, length in zip(self.docs, self.lens, strict=True):
            s = 0.0
            for w in terms & d.keys():
                tf = d[w]
                s += self.idf[w] * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / self.avg))
            scores.append(s)
        return sorted(range(len(self.docs)), key=lambda i: -scores[i])


def dense_rank(doc_vecs: np.ndarray, query_vec: Sequence[float]) -> list[int]:  # type: ignore[type-arg]
    scores = doc_vecs @ np.asarray(query_vec, dtype=np.float32)
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def rrf(rankings: Sequence[Sequence[int]], k: int = 60, depth: int = 100) -> list[int]:
    score: dict[int, float] = {}
    for ranking in rankings:
        for r, i in enumerate(ranking[:depth]):
            score[i] = score.get(i, 0.0) + 1.0 / (k + r + 1)
    return sorted(score, key=lambda i: -score[i])
