"""Chunking: never across a heading, split at paragraphs, long paragraphs at sentences."""

from __future__ import annotations

from bot.knowledge.chunking import chunks
from bot.knowledge.document import Parsed, Section
from bot.knowledge.readers import read


def test_chunks_never_cross_a_heading_and_keep_section_and_position() -> None:
    """Small sections are not merged with their neighbours; positions count up from 0."""
    p = Parsed("T", [Section(["A"], ["one", "two"]), Section(["A", "B"], ["three"])], "markdown")
    out = chunks(p, max_chars=1_000)
    assert [(c.position, c.section, c.text) for c in out] == [
        (0, "A", "one\n\ntwo"), (1, "A > B", "three")]


def test_paragraphs_are_packed_up_to_the_limit_and_split_only_between_them() -> None:
    """Each chunk is whole paragraphs, at most max_chars long."""
    paras = [f"Paragraph {i} " + "word " * 20 for i in range(10)]
    out = chunks(Parsed("T", [Section(["S"], [p.strip() for p in paras])], "text"), max_chars=300)
    assert all(len(c.text) <= 300 for c in out) and len(out) > 1
    rejoined = "\n\n".join(c.text for c in out).split("\n\n")
    assert rejoined == [p.strip() for p in paras]


def test_a_long_paragraph_is_split_at_sentences() -> None:
    """A paragraph over the limit becomes pieces ending at sentence ends."""
    para = " ".join(f"Sentence number {i} says something useful." for i in range(40))
    out = chunks(Parsed("T", [Section([], [para])], "text"), max_chars=200)
    assert all(len(c.text) <= 200 and c.text.endswith(".") for c in out)
    assert " ".join(c.text for c in out) == para


def test_code_blocks_split_at_lines_and_giant_words_are_cut() -> None:
    """Code keeps its line breaks when split; a word longer than the limit is cut to fit."""
    code = "```\n" + "\n".join(f"print({i})" for i in range(100)) + "\n```"
    out = chunks(Parsed("T", [Section([], [code, "x" * 450])], "markdown"), max_chars=200)
    assert all(len(c.text) <= 200 for c in out)
    assert "print(0)\nprint(1)" in out[0].text


def test_unchanged_content_keeps_its_hash_wherever_it_moves() -> None:
    """The chunk hash depends on section and text, not on position."""
    a = chunks(read("a.md", b"# T\n\n## X\n\nalpha\n\n## Y\n\nbeta\n", 10**6))
    b = chunks(read("a.md", b"# T\n\n## Y\n\nbeta\n\n## X\n\nalpha\n", 10**6))
    assert {c.hash for c in a} == {c.hash for c in b}
    assert a[0].index_text("T").startswith("T — X\n")
