"""The shared message splitter: limits, boundaries, code fences."""

from __future__ import annotations

import random
import re

import pytest

from adapters.chunking import split_message

WORDS = "alpha beta gamma delta epsilon zeta theta iota kappa lambda".split()


def _prose(n: int, seed: int = 0) -> str:
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(n)) + "."


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text.replace("```python", " ").replace("```", " "))


def test_short_text_is_one_chunk() -> None:
    """Text within the limit is returned as is."""
    assert split_message("hello there", 2_000) == ["hello there"]
    assert split_message("", 2_000) == []


def test_chunks_respect_the_limit_and_keep_every_word() -> None:
    """Every chunk fits; together they hold the same words in the same order."""
    text = "\n\n".join(_prose(120, i) for i in range(20))
    chunks = split_message(text, 2_000)
    assert len(chunks) > 1 and all(len(c) <= 2_000 for c in chunks)
    assert _words("\n".join(chunks)) == _words(text)


def test_prefers_paragraph_boundaries() -> None:
    """With paragraphs available, chunks end at a paragraph end."""
    paras = [_prose(60, i) for i in range(12)]
    chunks = split_message("\n\n".join(paras), 1_000)
    assert all(c.endswith(".") for c in chunks)
    assert all(any(c.endswith(p) for p in paras) for c in chunks)


def test_falls_back_to_sentences_then_words() -> None:
    """One long paragraph splits at a sentence end, else a space — never inside a word."""
    sentences = " ".join(f"Sentence number {i} is here." for i in range(200))
    for c in split_message(sentences, 500):
        assert c.endswith("here.")
    words = " ".join(f"w{i:04d}" for i in range(1_000))
    chunks = split_message(words, 300)
    assert all(re.fullmatch(r"(w\d{4} )*w\d{4}", c) for c in chunks)


def test_single_overlong_word_is_cut() -> None:
    """A word longer than the limit is the only thing ever cut mid-word."""
    chunks = split_message("x" * 4_500, 2_000)
    assert "".join(chunks) == "x" * 4_500 and len(chunks) == 3
    assert all(len(c) <= 2_000 for c in chunks)


def test_code_block_is_closed_and_reopened() -> None:
    """A fenced block cut across chunks is closed and reopened with its language."""
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(150))
    text = f"Here is the code:\n\n```python\n{code}\n```\n\nThat's all."
    chunks = split_message(text, 2_000)
    assert len(chunks) >= 3 and all(len(c) <= 2_000 for c in chunks)
    for c in chunks:
        assert c.count("```") % 2 == 0, c[:80]
    for c in chunks[1:]:
        assert c.startswith("```python\n") or c.startswith("That's all")
    assert "\n    value_1 = compute(1)" in chunks[0] + chunks[1]  # indentation kept
    rejoined = "".join(c.removeprefix("```python\n").removesuffix("\n```") for c in chunks)
    assert all(f"value_{i} = compute({i})" in rejoined for i in range(150))


def test_opening_fence_is_not_left_alone_at_a_chunk_end() -> None:
    """A cut just after a ```lang line moves before it, so no chunk ends on an empty block."""
    code = f"print('{'x' * 40}')\n" * 60
    text = ("word " * 394).strip() + "\n```python\n" + code + "```"
    chunks = split_message(text, 2_000)
    assert not chunks[0].rstrip().endswith("```python\n```")
    assert "```python" not in chunks[0]


@pytest.mark.parametrize("limit", [100, 3_500])
def test_slack_and_small_limits(limit: int) -> None:
    """Any limit works, including Slack's larger one."""
    text = "\n\n".join(_prose(200, i) for i in range(10))
    assert all(len(c) <= limit for c in split_message(text, limit))
