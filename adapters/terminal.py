"""Local terminal chat: a REPL over the same inbox, agent and memory as the platforms."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console

from bot.errors import MembotError
from bot.events import Channel, Event, Reply, UserRef
from bot.memory.core import AgentState
from bot.service import Service

HELP = """\
Commands:
  /memory            show core memory, summary and counts
  /dump [n]          show the last n messages of the context queue (default 10)
  /pop [n]           remove the last n messages from the context queue (default 1)
  /retry             drop the last answer and ask again
  /rethink TEXT      replace the agent's last inner thought with TEXT
  /rewrite TEXT      replace the agent's last message to you with TEXT
  /heartbeat         wake the agent for a timed heartbeat now
  /memorywarning     send the memory-pressure alert now
  /summarize         compact the context queue into the summary now
  /reset             delete all memory of this user (asks first)
  /help              this help
  /exit              leave (also Ctrl-D)"""


LINE_MAX = 160  # a log line or an error in the chat is cut to one line this long


def one_line(text: str) -> str:
    """The first line of a (possibly multi-line) text, cut to LINE_MAX characters."""
    lines = text.strip().splitlines() or [""]
    first = lines[0]
    more = len(lines) > 1 or len(first) > LINE_MAX
    return first[:LINE_MAX] + (" …" if more else "")


class _ConsoleStream:
    """A stream for logging handlers that prints each record as one dim line through the
    chat's console, so log lines never interleave with the spinner or the prompt."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        if text.strip():
            self.console.print(f"  log: {one_line(text)}", style="dim", markup=False,
                               highlight=False)
        return len(text)

    def flush(self) -> None:
        return None


@contextlib.contextmanager
def logs_through(console: Console) -> Iterator[None]:
    """While the chat runs, the root logger's stream handlers print through ``console``."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    stream = _ConsoleStream(console)
    old = [h.setStream(stream) for h in handlers]  # type: ignore[arg-type]
    try:
        yield
    finally:
        for h, prev in zip(handlers, old, strict=True):
            if prev is not None:
                h.setStream(prev)


@dataclass
class TerminalOutbox:
    """Prints replies; lets the REPL wait until the step of its event is complete."""

    console: Console
    waiting: dict[str, asyncio.Event] = field(default_factory=dict)
    shown: dict[str, int] = field(default_factory=dict)  # replies printed per event

    async def deliver(self, reply: Reply) -> None:
        self.shown[reply.event_id] = self.shown.get(reply.event_id, 0) + 1
        if reply.kind == "trace":
            self.console.print(f"  · {reply.text}", style="dim", markup=False, highlight=False)
        elif reply.kind == "notice":
            self.console.print(f"! {reply.text}", style="yellow", markup=False)
        else:
            self.console.print(f"bot> {reply.text}", style="bold cyan", markup=False, highlight=False)

    async def completed(self, event: Event) -> None:
        done = self.waiting.pop(event.event_id, None)
        if done:
            done.set()


def _last(state: AgentState, pred: Callable[[object], bool]) -> int:
    for i in range(len(state.fifo) - 1, -1, -1):
        if pred(state.fifo[i]):
            return i
    return -1


class TerminalChat:
    def __init__(self, service: Service, name: str, console: Console | None = None,
                 read: Callable[[str], str] = input) -> None:
        self.svc = service
        self.user = UserRef(platform="terminal", scope="local", user_id=name, display_name=name)
        self.key = self.user.key
        self.console = console or Console()
        self.outbox = TerminalOutbox(self.console)
        self.read = read
        service.router.register("terminal", self.outbox)

    async def send(self, kind: str, text: str = "", timeout_s: float = 600.0) -> str:
        event = Event(kind=kind, user=self.user, text=text,  # type: ignore[arg-type]
                      channel=Channel(where="terminal"), trace=True)
        done = asyncio.Event()
        self.outbox.waiting[event.event_id] = done
        status = await self.svc.submit(event)
        if status != "accepted":
            self.outbox.waiting.pop(event.event_id, None)
            return status
        with self.console.status("thinking…", spinner="dots"):
            await asyncio.wait_for(done.wait(), timeout_s)
        if kind == "heartbeat" and not self.outbox.shown.pop(event.event_id, 0):
            self.console.print("  (heartbeat: nothing to show)", style="dim", markup=False)
        self.outbox.shown.pop(event.event_id, None)
        return status

    async def loop(self) -> None:
        with logs_through(self.console):
            await self._loop()

    async def _loop(self) -> None:
        self.console.print(f"membot terminal chat as [bold]{self.key}[/] — /help for commands, /exit to leave")
        while True:
            try:
                line = (await asyncio.to_thread(self.read, "you> ")).strip()
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                return
            if not line:
                continue
            try:
                if line.startswith("/"):
                    if await self.command(line) == "exit":
                        return
                else:
                    await self.send("user_message", line)
            except MembotError as exc:
                self.console.print(f"error: {one_line(str(exc))}", style="red", markup=False)
            except TimeoutError:
                self.console.print("error: no answer in time", style="red")

    async def command(self, line: str) -> str:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        admin = self.svc.admin
        if cmd in ("/exit", "/quit"):
            return "exit"
        if cmd == "/help":
            self.console.print(HELP, markup=False)
        elif cmd == "/memory":
            self.console.print_json(json.dumps(await admin.show(self.key)))
        elif cmd == "/dump":
            state = await admin.state(self.key)
            for m in state.fifo[-_count(arg, 10):]:
                self.console.print(json.dumps(m.to_openai(), ensure_ascii=False), style="dim",
                                   markup=False, highlight=False)
        elif cmd == "/pop":
            n = _count(arg, 1)
            self.console.print(await admin.edit(self.key, lambda s: _pop(s, n)))
        elif cmd == "/retry":
            text = await admin.edit(self.key, _strip_to_last_user)
            if text:
                await self.send("user_message", text)
            else:
                self.console.print("nothing to retry")
        elif cmd == "/rethink":
            self.console.print(await admin.edit(self.key, lambda s: _rethink(s, arg)))
        elif cmd == "/rewrite":
            self.console.print(await admin.edit(self.key, lambda s: _rewrite(s, arg)))
        elif cmd == "/heartbeat":
            await self.send("heartbeat", "Heartbeat requested from the terminal.")
        elif cmd == "/memorywarning":
            from bot.agent.prompts import MEMORY_PRESSURE
            await self.send("system_alert", MEMORY_PRESSURE)
        elif cmd == "/summarize":
            n = await self.svc.admin.summarize(self.key)
            self.console.print(f"summarized {n} messages into the recursive summary")
        elif cmd == "/reset":
            answer = (await asyncio.to_thread(self.read, f"delete ALL memory of {self.key}? [y/N] ")).strip()
            if answer.lower() in ("y", "yes"):
                await admin.reset(self.key, actor="terminal")
                self.console.print("memory reset")
        else:
            self.console.print(f"unknown command {cmd}; /help lists them")
        return ""


def _count(arg: str, default: int) -> int:
    if not arg:
        return default
    if not arg.isdigit() or int(arg) < 1:
        raise MembotError("expected a positive whole number")
    return int(arg)


def _pop(state: AgentState, n: int) -> str:
    n = min(n, len(state.fifo))
    del state.fifo[len(state.fifo) - n:]
    while state.fifo and state.fifo[-1].tool_calls:  # keep calls and results together
        state.fifo.pop()
        n += 1
    return f"removed {n} message(s)"


def _strip_to_last_user(state: AgentState) -> str:
    i = _last(state, lambda m: getattr(m, "kind", "") == "user_message")
    if i < 0:
        return ""
    text = state.fifo[i].content.split("] ", 1)[-1]
    del state.fifo[i:]
    return text


def _rethink(state: AgentState, text: str) -> str:
    if not text:
        raise MembotError("usage: /rethink TEXT")
    i = _last(state, lambda m: getattr(m, "role", "") == "assistant")
    if i < 0:
        return "no inner thought to replace"
    state.fifo[i].content = text
    return "inner thought replaced"


def _rewrite(state: AgentState, text: str) -> str:
    if not text:
        raise MembotError("usage: /rewrite TEXT")
    for i in range(len(state.fifo) - 1, -1, -1):
        m = state.fifo[i]
        for j, call in enumerate(m.tool_calls):
            if call.name == "send_message":
                from bot.messages import ToolCall
                m.tool_calls[j] = ToolCall(call.id, call.name, json.dumps({"message": text}))
                return "last message rewritten"
        if m.role == "assistant" and not m.tool_calls and m.content:
            m.content = text
            return "last message rewritten"
    return "no message to rewrite"


async def run_chat(service: Service, name: str) -> None:
    chat = TerminalChat(service, name)
    try:
        await chat.loop()
    finally:
        service.router.unregister("terminal")

