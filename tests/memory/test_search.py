"""Search tools over the real stack: fastembed MiniLM, both Qdrant backends, the product's
ranking (bot.memory.search), and the relative-date parser (bot.memory.timeparse) with a fixed now."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from bot.memory import search
from bot.memory.longterm import LongTermMemory, embed_text, recall_item
from bot.memory.timeparse import find, parse_date
from bot.messages import Message, ToolCall
from bot.protocols import MemoryItem

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def at(day: str, hm: str = "12:00", s: int = 0) -> float:
    return datetime.fromisoformat(f"{day}T{hm}:00+00:00").timestamp() + s


NOW = at("2024-05-15", "12:00")  # a Wednesday
CHAT = [  # (timestamp, speaker, text); speakers other than Alice are imported names
    (at("2024-03-02", "10:00"), "Alice", "My flight number is TP1357, it leaves Lisbon at 7am"),
    (at("2024-03-02", "10:01"), "you", "Noted! Do you need a reminder the day before?"),
    (at("2024-03-02", "10:02"), "Alice", "I also need to renew my passport before that"),
    (at("2024-04-10", "09:00"), "Sam", "The trip to Madrid was a disaster, we missed the train"),
    (at("2024-05-06", "18:00"), "Sam", "The trip to the lake was fun but the tent leaked"),
    (at("2024-05-06", "18:01"), "Priya", "I loved the trip, next time I want to bring my kayak"),
    (at("2024-05-06", "18:02"), "Alice", "The hike on Sunday was the best part of the trip"),
    (at("2024-05-08", "09:00"), "Alice", "My sister moved to Porto in April"),
    (at("2024-05-08", "09:01"), "Priya", "Did she find a flat already?"),
    (at("2024-05-08", "09:02"), "Alice", "Yes, a small flat near the river"),
    (at("2024-05-14", "20:00"), "Alice", "I'm thinking about adopting a cat"),
    (at("2024-05-14", "20:01"), "you", "A cat would love your sunny balcony"),
]


def message(ts: float, who: str, text: str) -> Message:
    if who == "you":
        call = ToolCall("c1", "send_message", '{"message": ' + repr(text).replace("'", '"') + "}")
        return Message(role="assistant", content="", kind="assistant", ts=ts, tool_calls=[call])
    return Message(role="user", content=text, kind="user_message", ts=ts,
                   name="" if who == "Alice" else who)


async def say(memory: LongTermMemory, user: str, lines: list[tuple[float, str, str]]) -> None:
    await memory.write("recall", [recall_item(user, message(*line)) for line in lines])


@pytest.fixture
async def alice(memory: LongTermMemory) -> LongTermMemory:
    await say(memory, "alice", CHAT)
    return memory


async def top(memory: LongTermMemory, query: str, user: str = "alice", n: int = 1) -> list[str]:
    return [i.text for i in (await search.ranked(memory, "recall", user, query, now=NOW))[:n]]


def matches(result: str) -> list[str]:
    return [line for line in result.splitlines() if line.startswith("> ")]


# --- relevance -------------------------------------------------------------------------------
async def test_a_name_finds_that_persons_words(alice: LongTermMemory) -> None:
    """'what did Priya say about the trip?' ranks Priya's trip message above the others'."""
    assert await top(alice, "what did Priya say about the trip?") == [CHAT[5][2]]


async def test_a_number_finds_the_exact_code(alice: LongTermMemory) -> None:
    """A flight number matches by its exact token, and the tool shows who said it and when."""
    assert await top(alice, "TP1357") == [CHAT[0][2]]
    out = await search.conversation(alice, "alice", "flight TP1357", 0, 5, now=NOW)
    assert "> [2024-03-02 10:00] user: My flight number is TP1357" in out


async def test_a_paraphrase_finds_the_meaning(alice: LongTermMemory) -> None:
    """'where does my sister live now' finds 'My sister moved to Porto'."""
    assert CHAT[7][2] in await top(alice, "where does my sister live now?", n=2)


async def test_a_date_alone_lists_that_day_in_order(alice: LongTermMemory) -> None:
    """'what did I say on 2024-05-08' lists that day's messages in time order, nothing else."""
    out = await search.conversation(alice, "alice", "what did I say on 2024-05-08", 0, 5, now=NOW)
    assert "time order" in out and "on 2024-05-08" in out
    assert re.findall(r"\[(2024-05-0\d) ", out) == ["2024-05-08"] * 3
    assert out.index("moved to Porto") < out.index("find a flat") < out.index("near the river")


async def test_relative_dates_list_yesterday(alice: LongTermMemory) -> None:
    """'yesterday' resolves against now: the cat conversation, the assistant shown as 'you'."""
    out = await search.conversation(alice, "alice", "what did we talk about yesterday?", 0, 5, now=NOW)
    assert "adopting a cat" in out and "you: A cat would love" in out and "Porto" not in out


async def test_a_date_in_a_query_boosts_without_hiding(alice: LongTermMemory) -> None:
    """'trip last week' puts last week's trip first; the Madrid trip (April) is still found."""
    ranked = await top(alice, "the trip last week", n=10)
    assert ranked[0] in {CHAT[4][2], CHAT[5][2], CHAT[6][2]}
    assert CHAT[3][2] in await top(alice, "the trip to Madrid last week", n=3)


async def test_conversation_search_date_is_inclusive(alice: LongTermMemory) -> None:
    """conversation_search_date lists both end days and nothing outside; bad dates fail."""
    out = await search.conversation_by_date(alice, "alice", "2024-05-06", "2024-05-08", 0, 10)
    assert "tent leaked" in out and "near the river" in out and "cat" not in out and "Madrid" not in out
    with pytest.raises(search.ToolError, match="start_date must be a date"):
        await search.conversation_by_date(alice, "alice", "last week", "2024-05-08", 0, 5)


# --- context, dedupe, paging, budget --------------------------------------------------------
async def test_a_hit_comes_with_the_turns_around_it(alice: LongTermMemory) -> None:
    """The turn before and after a match are shown; turns hours away are not context."""
    out = await search.conversation(alice, "alice", "renew passport", 0, 1, now=NOW)
    lines = out.splitlines()[1:3]
    assert [line[:2] for line in lines] == ["  ", "> "] and "[2024-03-02 10:02]" in lines[1]
    assert "you: Noted!" in lines[0] and "renew my passport" in lines[1]


async def test_overlapping_windows_merge_into_one_block(alice: LongTermMemory) -> None:
    """Adjacent matches share one block: every message line appears once."""
    out = await search.conversation(alice, "alice", "sister Porto flat", 0, 3, now=NOW)
    body = [line[2:] for line in out.splitlines()[1:] if line[:2] in ("> ", "  ")]
    assert len(body) == len(set(body))
    block = out.split("\n--\n")[0]
    assert "moved to Porto" in block and "find a flat" in block


async def test_identical_texts_collapse(memory: LongTermMemory) -> None:
    """The same words said three times come back as one result."""
    await say(memory, "u", [(at("2024-05-0" + str(d), "22:00"), "Alice", "Good night, sleep well!")
                            for d in (1, 2, 3)] + [(at("2024-05-04"), "Alice", "Good morning")])
    out = await search.conversation(memory, "u", "good night", 0, 5, now=NOW)
    assert sum("Good night" in line for line in matches(out)) == 1


async def test_pages_are_stable_and_disjoint(memory: LongTermMemory) -> None:
    """The same query gives the same pages; pages never repeat a result; together they are
    the ranking."""
    await say(memory, "u", [(at("2024-04-01", s=3600 * i), "Alice", f"coffee note {i}: tried bean {i * 7}")
                            for i in range(23)])
    pages = [await search.conversation(memory, "u", "coffee beans", p, 5, now=NOW) for p in range(6)]
    again = [await search.conversation(memory, "u", "coffee beans", p, 5, now=NOW) for p in range(6)]
    assert pages == again
    seen = [m for page in pages for m in matches(page)]
    assert len(seen) == 23 == len(set(seen))
    assert "(more: page=1)" in pages[0] and "more" not in pages[4] and pages[5].startswith("No ")


async def test_a_page_fits_the_result_budget(memory: LongTermMemory) -> None:
    """Long messages are clipped so a page fits max_chars, with every match still shown."""
    await say(memory, "u", [(at("2024-04-01", s=60 * i), "Alice", f"garden story {i} " + "tomatoes " * 300)
                            for i in range(8)])
    out = await search.conversation(memory, "u", "garden tomatoes", 0, 5, now=NOW, max_chars=2_500)
    assert len(out) <= 2_500 and len(matches(out)) == 5 and "…" in out


async def test_tool_traffic_is_not_a_result(alice: LongTermMemory) -> None:
    """Echoes of earlier searches (tool results, search calls) never come back as matches."""
    call = ToolCall("c9", "conversation_search", '{"query": "TP1357 flight"}')
    await alice.write("recall", [
        recall_item("alice", Message(role="assistant", content="", kind="assistant", ts=NOW - 60, tool_calls=[call])),
        recall_item("alice", Message(role="tool", content="Past messages: TP1357 flight TP1357", kind="tool_result",
                                     ts=NOW - 59, tool_call_id="c9", name="conversation_search"))])
    ranked = await search.ranked(alice, "recall", "alice", "TP1357 flight", now=NOW)
    assert [i.kind for i in ranked[:1]] == ["user_message"] and all(i.kind != "tool_result" for i in ranked)
    assert not any(i.meta.get("tool_calls") and not i.text for i in ranked if i.role == "assistant"
                   and "conversation_search" in str(i.meta))


# --- isolation -------------------------------------------------------------------------------
async def test_no_query_returns_another_users_items(memory: LongTermMemory) -> None:
    """Users with overlapping words: rankings, listings and notes stay within the asker."""
    for user in ("alice", "bob", "carol"):
        await say(memory, user, [(at("2024-05-08", s=i), "Alice", f"{user} secret {i}: the trip code is {user.upper()}{i}")
                                 for i in range(5)])
        await memory.insert_archival(user, f"{user}'s note: trip code {user.upper()}0", ts=at("2024-05-08"))
    for query in ("trip code", "ALICE0 secret", "what did I say on 2024-05-08", "trip code yesterday"):
        ranked = await search.ranked(memory, "recall", "bob", query, now=NOW)
        out = await search.conversation(memory, "bob", query, 0, 5, now=NOW)
        notes = await search.archival(memory, "bob", query, 0, 5, now=NOW)
        assert ranked and all(i.user == "bob" for i in ranked)
        assert "alice" not in (out + notes).lower() and "carol" not in (out + notes).lower()


# --- indexing --------------------------------------------------------------------------------
async def test_turns_are_indexed_with_speaker_and_the_turn_before(alice: LongTermMemory) -> None:
    """Indexed text is 'Speaker: words' plus the turn answered; the store keeps only the text."""
    items = await alice.by_time("recall", "alice", since=CHAT[8][0], until=CHAT[8][0] + 1)
    assert items[0].text == "Did she find a flat already?" and "index" not in items[0].meta
    before = MemoryItem(id="x", user="alice", text="My sister moved to Porto", ts=0, role="user",
                        kind="user_message")
    assert embed_text(items[0], before) == ("Priya: Did she find a flat already?\n"
                                            "(after: My sister moved to Porto)")
    live = MemoryItem(id=uuid.uuid4().hex, user="a", text="[user Ann, DM, 2024-05-08 10:00] hello there",
                      ts=0, role="user", kind="user_message")
    assert embed_text(live) == "Ann: hello there"



def test_a_short_statement_after_a_long_answer_is_indexed_mostly_by_its_own_words() -> None:
    """The turn before is context, capped at the turn's own length: "I prefer minimal
    dependencies" after a 2,000-character answer with code keeps its meaning in the vector."""
    answer = MemoryItem(id="a", user="u", text="Here is the script:\n```python\n" + "x = 1\n" * 300 + "```",
                        ts=0, role="assistant", kind="assistant", meta={"name": "Assistant"})
    said = MemoryItem(id="b", user="u", text="I prefer minimal dependencies.", ts=10, role="user",
                      kind="user_message", meta={"name": "Maya"})
    text = embed_text(said, answer)
    own = "I prefer minimal dependencies."
    assert text.startswith(f"Maya: {own}\n(after: ")
    assert len(text.split("(after: ", 1)[1]) <= len(own) + 1
    reply = MemoryItem(id="c", user="u", text="Sure, " + "a long careful answer " * 40, ts=20,
                       role="assistant", kind="assistant", meta={"name": "Assistant"})
    assert embed_text(reply, said).endswith(f"(after: {own})")  # a long turn keeps up to 200 chars

# --- the date parser -------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "since", "until"), [
    ("what did I say on 2024-05-08", "2024-05-08", "2024-05-09"),
    ("2023-05-08", "2023-05-08", "2023-05-09"),
    ("yesterday", "2024-05-14", "2024-05-15"),
    ("two days ago", "2024-05-13", "2024-05-14"),
    ("the day before yesterday", "2024-05-13", "2024-05-14"),
    ("last week", "2024-05-06", "2024-05-13"),
    ("this week", "2024-05-13", "2024-05-20"),
    ("last weekend", "2024-05-11", "2024-05-13"),
    ("on Monday", "2024-05-13", "2024-05-14"),
    ("in May", "2024-05-01", "2024-06-01"),
    ("in June", "2023-06-01", "2023-07-01"),
    ("May 2023", "2023-05-01", "2023-06-01"),
    ("May 8, 2023", "2023-05-08", "2023-05-09"),
    ("8 May, 2023", "2023-05-08", "2023-05-09"),
    ("March 3rd", "2024-03-03", "2024-03-04"),
    ("last month", "2024-04-01", "2024-05-01"),
    ("last year", "2023-01-01", "2024-01-01"),
    ("in 2022", "2022-01-01", "2023-01-01"),
    ("3 weeks ago", "2024-04-21", "2024-04-28"),
    ("last summer", "2023-06-01", "2023-09-01"),
    ("between May 1 and May 5", "2024-05-01", "2024-05-06"),
    ("the week before 2024-05-08", "2024-05-01", "2024-05-08"),
])
def test_dates_resolve_against_now(query: str, since: str, until: str) -> None:
    """Absolute and relative dates become [since, until) day ranges relative to now (UTC)."""
    found, _ = find(query, NOW)
    assert found is not None
    assert (found.since, found.until) == (at(since, "00:00"), at(until, "00:00"))


@pytest.mark.parametrize("query", ["May I ask about the trip?", "the march for veterans",
                                   "flight 2023", "spring rolls recipe", "did I fall", "TP1357",
                                   "what did June say about April?"])
def test_words_that_only_look_like_dates_are_not(query: str) -> None:
    """Modal 'may', 'march', bare numbers and seasons used as nouns are not dates."""
    assert find(query, NOW) == (None, query)


def test_dates_are_taken_out_of_the_query() -> None:
    """The rest of the query comes back without the date words; 'since' runs to now."""
    found, rest = find("What did Priya say since May 2?", NOW)
    assert rest == "what did priya say ?" and found is not None
    assert found.since == at("2024-05-02", "00:00") and found.until > NOW


def test_strict_date_arguments() -> None:
    """conversation_search_date takes YYYY-MM-DD, YYYY-MM or YYYY; anything else is None."""
    assert parse_date("2024-05") is not None and parse_date("2024") is not None
    assert parse_date("yesterday") is None and parse_date("2024-13-01") is None


def test_speaker_prior_favours_whoever_the_question_is_about() -> None:
    """'my'/'the user' questions lift the user's statements over the assistant's long answers;
    'what did you suggest' lifts the assistant's; third-person questions only favour statements."""
    from bot.protocols import Hit
    def item(role: str, text: str) -> MemoryItem:
        return MemoryItem(id=uuid.uuid4().hex, user="u", text=text, ts=0.0, role=role,
                          kind="user_message" if role == "user" else "assistant")
    answer, fact, ask = item("assistant", "Here are ten tips on seats."), item("user", "I always book an aisle seat."), \
        item("user", "Which seat is best?")
    hits = [Hit(answer, 1.0), Hit(ask, 0.95), Hit(fact, 0.75)]
    assert [h.item for h in search.speaker_prior("where should my seat be?", hits)] == [fact, ask, answer]
    assert search.speaker_prior("what did you suggest about seats?", hits)[0].item is answer
    assert [h.item for h in search.speaker_prior("Where does Caroline sit?", hits)] == [answer, fact, ask]


async def test_fusion_weights_shift_the_hybrid_ranking(alice: LongTermMemory) -> None:
    """Hybrid search with weights (0, 1) ranks as words alone do, with (1, 0) as meaning alone."""
    query = "flight number TP1357"
    for weights, mode in (((0.0, 1.0), "sparse"), ((1.0, 0.0), "dense")):
        fused = await alice.search("recall", "alice", query, limit=3, weights=weights)
        alone = await alice.search("recall", "alice", query, limit=3, mode=mode)  # type: ignore[arg-type]
        assert [h.item.id for h in fused][:1] == [h.item.id for h in alone][:1]

