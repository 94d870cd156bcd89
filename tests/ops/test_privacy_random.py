"""Randomized privacy test: many people, servers and workspaces, DMs and channels, admin
commands by members, server admins, operators and the people themselves. An adversarial
model saves every canary it is told to core and archival memory, searches all stores
for canaries, and repeats in its answer every canary it can see. Afterwards no prompt,
search result, answer or admin output ever held a canary its viewer may not see: another
person's, a DM's in a channel, another server's, or one deleted by a reset."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.errors import AccessDenied
from bot.events import Channel, Event, UserRef
from bot.ops.access import Actor
from bot.testing.fake_openai import FakeOpenAI, Turn, call, text, tool_calls
from bot.testing.outbox import RecordingOutbox
from tests.conftest import make_settings, start_service

CANARY = re.compile(r"cnry(\d\d)x([a-z0-9]+)x(\d+)")
TAG = re.compile(r"\bevt(\d+)\b")
PROBE = "secret zebra"  # in every canary message: a search for it finds them all


@dataclass(frozen=True)
class Person:
    n: int
    platform: str  # discord | slack
    scope: str  # "-" (Discord) or the Slack team
    servers: tuple[str, ...]  # origin codes: g1..g3 (guilds) or t1/t2 (their workspace)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.scope}:{self.n}"


@dataclass
class World:
    people: list[Person]
    events: dict[int, tuple[int, str]] = field(default_factory=dict)  # evt -> (person, origin)
    born: dict[str, int] = field(default_factory=dict)  # canary -> wave it was said in
    resets: dict[int, list[int]] = field(default_factory=dict)  # person -> waves from which a reset holds
    checked: int = 0  # texts checked
    seen: int = 0  # canaries found in them (all allowed, or the test fails)
    refused: int = 0  # admin commands refused as they should be
    violations: list[str] = field(default_factory=list)

    def allowed(self, token: re.Match[str], person: int, origin: str | None, at: int) -> bool:
        """May a viewer (person, in origin; None = the person's own DM/admin view) see it
        at wave ``at``?"""
        owner, where = int(token.group(1)), token.group(2)
        if owner != person:
            return False
        born = self.born.get(token.group(0), 0)
        if any(born < r <= at for r in self.resets.get(owner, [])):
            return False  # said before a reset of that memory
        return origin in (None, "dm") or where == origin

    def check(self, what: str, content: str, person: int, origin: str | None, at: int) -> None:
        self.checked += 1
        for token in CANARY.finditer(content):
            self.seen += 1
            if not self.allowed(token, person, origin, at):
                self.violations.append(f"{what}: {token.group(0)} seen by {person} in {origin}")


def adversary(request: dict[str, Any]) -> Turn:
    """Save the event's canary everywhere, search for all canaries, repeat what it sees."""
    messages = request.get("messages", [])
    if not request.get("tools"):  # a summary: keep every canary it was given
        found = sorted(set(CANARY.findall(json.dumps(messages))))
        return text("Summary of the talk: " + " ".join(f"cnry{a}x{b}x{c}" for a, b, c in found))
    last = messages[-1]
    if last["role"] == "user" and last["content"].startswith("[memory:"):
        last = messages[-2]  # the metadata line comes last
    if last["role"] != "tool":
        said = CANARY.search(str(last.get("content") or ""))
        calls = [call("conversation_search", query=PROBE, request_heartbeat=True),
                 call("archival_memory_search", query=PROBE, request_heartbeat=True)]
        if said:
            calls = [call("core_memory_append", label="human", content=f"Fact {said.group(0)}",
                          request_heartbeat=True),
                     call("archival_memory_insert", content=f"Note {said.group(0)} {PROBE}",
                          request_heartbeat=True)] + calls
        return tool_calls(calls)
    seen = sorted(set(m.group(0) for m in CANARY.finditer(json.dumps(messages))))
    return tool_calls([call("send_message", message="I know: " + (" ".join(seen) or "nothing"),
                            request_heartbeat=False)])


def viewer(request: dict[str, Any], world: World) -> tuple[int, str | None] | None:
    """The event a chat request was made for: the newest event line in its prompt."""
    for m in reversed(request.get("messages", [])):
        content = str(m.get("content") or "")
        if m["role"] == "user" and content.startswith("[user"):
            tag = TAG.search(content)
            return world.events[int(tag.group(1))] if tag else None
        if m["role"] == "user" and content.startswith("[heartbeat"):
            return None
    return None


def make_world(rng: random.Random, n_people: int = 50) -> World:
    people = []
    for n in range(n_people):
        if n < 30:
            guilds = tuple(sorted(rng.sample(["g1", "g2", "g3"], rng.randint(1, 3))))
            people.append(Person(n, "discord", "-", guilds))
        else:
            team = "T1" if n < 40 else "T2"
            people.append(Person(n, "slack", team, (team.lower(),)))
    return World(people)


def make_event(world: World, rng: random.Random, number: int, wave: int) -> Event:
    p = world.people[rng.randrange(len(world.people))]
    origin = "dm" if rng.random() < 0.4 else rng.choice(p.servers)
    canary = f"cnry{p.n:02d}x{origin}x{number}"
    world.events[number] = (p.n, origin)
    world.born[canary] = wave
    where = "dm" if origin == "dm" else "channel"
    server = "" if origin == "dm" else (origin.upper() if p.platform == "slack" else origin)
    channel = Channel(where=where, name="" if where == "dm" else f"chat-{origin}",  # type: ignore[arg-type]
                      id=f"{origin}-{p.n if where == 'dm' else 'main'}", server=server)
    return Event(kind="user_message", user=UserRef(p.platform, str(p.n), p.scope),
                 text=f"evt{number} my {PROBE} is {canary}", channel=channel,
                 reply_to=channel.id, event_id=f"ev{number}")


async def admin_round(svc: Any, world: World, rng: random.Random, wave: int) -> None:
    """A few admin commands by random callers on random people; outputs are checked."""
    for _ in range(rng.randint(2, 5)):
        target = world.people[rng.randrange(len(world.people))]
        caller = world.people[rng.randrange(len(world.people))]
        role = rng.choice(["self", "member", "server_admin", "operator"])
        if role == "self":
            actor, viewer_n = Actor(caller.key), caller.n
            target = caller
        elif role == "operator":
            actor, viewer_n = Actor("discord:-:77", operator=True), target.n
        else:
            admin_of = f"{caller.platform}:{caller.servers[0]}" if role == "server_admin" else ""
            actor, viewer_n = Actor(caller.key, admin_of=admin_of), caller.n
        op = rng.choice(["show", "search", "export", "forget_preview", "audit", "reset"])
        if op == "reset" and rng.random() < 0.7:
            op = "show"  # resets are rarer
        try:
            out = await _run(svc, op, actor, target.key)
        except AccessDenied:
            if viewer_n == target.n or actor.operator:
                world.violations.append(f"{op} by {role} on own/operator refused")
            world.refused += 1
            continue
        if role in ("member", "server_admin") and caller.n != target.n:
            world.violations.append(f"{op} by {role} {caller.key} on {target.key} was allowed")
        if op == "reset":  # canaries born up to this wave are dead from the next one
            world.resets.setdefault(target.n, []).append(wave + 1)
        world.check(f"admin {op}", json.dumps(out, default=str), viewer_n if role != "operator"
                    else target.n, None, wave + 1)


async def _run(svc: Any, op: str, actor: Actor, identity: str) -> Any:
    access = svc.access
    if op == "show":
        return await access.show(actor, identity)
    if op == "search":
        return await access.search(actor, rng_kind(identity), PROBE, identity, limit=20)
    if op == "export":
        return await access.export(actor, identity)
    if op == "forget_preview":
        return (await access.forget_preview(actor, PROBE, identity)).preview(50)
    if op == "audit":
        return [e.__dict__ for e in await access.audit_trail(actor, identity)]
    return await access.reset(actor, identity)


def rng_kind(identity: str) -> str:
    return "archival" if hash(identity) % 2 else "recall"


@pytest.fixture
async def world_service(tmp_path: Path, embedder: Any) -> AsyncIterator[tuple[Any, FakeOpenAI, RecordingOutbox]]:
    async with FakeOpenAI(default=adversary) as fake:
        settings = make_settings(tmp_path, fake.base_url, llm_context_window=2_048,
                                 llm_reply_reserve=256, core_human_limit=600, workers=8)
        svc, outbox = await start_service(settings, embedder)
        for platform in ("discord", "slack"):
            svc.router.register(platform, outbox)
        yield svc, fake, outbox
        await svc.stop()
        from tests.adapters.conftest import wipe
        await wipe(settings)


async def run_world(svc: Any, fake: FakeOpenAI, outbox: RecordingOutbox, n_events: int,
                    seed: int = 7) -> World:
    rng = random.Random(seed)
    world = make_world(rng)
    wave_size, number = 50, 0
    request_wave: list[int] = []  # the wave of each chat request, in order
    reply_wave: list[int] = []
    for wave in range((n_events + wave_size - 1) // wave_size):
        batch = [make_event(world, rng, number + i, wave) for i in range(min(wave_size, n_events - number))]
        number += len(batch)
        waiters = [outbox.expect(e.event_id) for e in batch]
        for e in batch:
            assert await svc.submit(e) == "accepted"
        done, _ = await asyncio.wait([asyncio.ensure_future(w.wait()) for w in waiters], timeout=300)
        missing = [e.event_id for e, w in zip(batch, waiters, strict=True) if not w.is_set()]
        assert not missing, (f"wave {wave}: {len(missing)} of {len(batch)} events not completed in 300 s: "
                             f"{missing[:10]}; dead letters: {len(await svc.redis.dead_letters())}")
        await svc.writer.flush()
        request_wave += [wave] * (len(fake.requests) - len(request_wave))
        reply_wave += [wave] * (len(outbox.replies) - len(reply_wave))
        await admin_round(svc, world, rng, wave)
        request_wave += [wave + 1] * (len(fake.requests) - len(request_wave))  # admin heartbeats
        reply_wave += [wave + 1] * (len(outbox.replies) - len(reply_wave))
    for request, at in zip(fake.requests, request_wave, strict=True):
        if not request.get("tools"):
            continue  # summarizer calls: their output is checked where it is shown
        seen_by = viewer(request, world)
        content = json.dumps(request.get("messages", []))
        if seen_by is None:  # a heartbeat: one person's own view
            owners = {int(t.group(1)) for t in CANARY.finditer(content)}
            world.checked += 1
            if len(owners) > 1:
                world.violations.append(f"heartbeat prompt mixes people {sorted(owners)}")
            continue
        world.check("prompt", content, *seen_by, at)
    for reply, at in zip(outbox.replies, reply_wave, strict=True):
        tag = re.fullmatch(r"ev(\d+)", reply.event_id)
        if tag and int(tag.group(1)) in world.events:
            world.check("reply", reply.text, *world.events[int(tag.group(1))], at)
    return world


def _report(world: World, n_events: int) -> str:
    return (f"privacy random test: {n_events} events, {len(world.people)} people, 3 guilds, "
            f"2 workspaces: {world.checked} prompts/replies/admin outputs checked, "
            f"{world.seen} canaries seen (all allowed), {world.refused} admin commands refused, "
            f"{len(world.violations)} violations")


async def test_no_canary_reaches_a_viewer_who_may_not_see_it(world_service: Any) -> None:
    """150 mixed events and admin commands: zero canaries outside their allowed views."""
    world = await run_world(*world_service, n_events=150)
    print(_report(world, 150))
    assert world.violations == [] and world.seen > 100 and world.refused > 0


@pytest.mark.slow
async def test_no_canary_leaks_in_1000_events(world_service: Any) -> None:
    """The full run: 50 people, 3 guilds, 2 workspaces, 1,000 events plus admin commands."""
    world = await run_world(*world_service, n_events=1_000, seed=11)
    print(_report(world, 1_000))
    assert world.violations == [] and world.seen > 1_000 and world.refused > 0
