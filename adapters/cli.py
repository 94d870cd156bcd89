"""The ``membot`` command: run the service, chat in a terminal, manage memory."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from adapters import cli_health
from adapters.cli_deadletters import cmd_dead_letters
from adapters.cli_deadletters import register as register_dead_letters
from adapters.cli_knowledge import cmd_knowledge
from adapters.cli_knowledge import register as register_knowledge
from bot.config import Settings, load_settings
from bot.errors import AdminError, ConfigError, KnowledgeError, MembotError

log = logging.getLogger("membot")

DESCRIPTION = """\
membot: a Discord/Slack bot where every user gets a long-lived agent that remembers them.
Configuration comes from environment variables and a .env file (see .env.example)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="membot", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-file", default=".env", help="settings file to read (default: .env)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the bot: Discord and/or Slack when their tokens are "
                         "set, otherwise a terminal chat",
                         description="Start every platform adapter whose credentials are set "
                         "(DISCORD_TOKEN; SLACK_BOT_TOKEN with SLACK_APP_TOKEN or "
                         "SLACK_SIGNING_SECRET). With none, open the terminal chat.")
    run.add_argument("--user", default="local", help="terminal chat user name (default: local)")

    chat = sub.add_parser("chat", help="chat with your agent in this terminal",
                          description="Terminal chat with one user's agent. Type /help inside.")
    chat.add_argument("--user", default="local", help="user name (memory key terminal:local:NAME)")

    mem = sub.add_parser("memory", help="inspect, search, import, export or reset a user's memory",
                         description="Memory operations. KEY is a user key such as "
                         "terminal:local:alice, discord:GUILD:USERID or slack:TEAM:USERID, or a "
                         "short name (alice) when only one user key ends with it. While "
                         "`membot run` is running, these commands go through its admin socket.")
    msub = mem.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = msub.add_parser("show", help="core memory, summary, counts, next heartbeat")
    srch = msub.add_parser("search", help="search recall or archival memory",
                           description="Queries come as arguments, or one per line on stdin. "
                           "Prints results per query.")
    srch.add_argument("queries", nargs="*", help="queries (default: read lines from stdin)")
    srch.add_argument("--kind", choices=["recall", "archival"], default="recall")
    srch.add_argument("--limit", type=int, default=5, help="hits per query (1-100, default 5)")
    srch.add_argument("--json", action="store_true", help="one JSON line per query")
    imp = msub.add_parser("import", help="import an export, or past messages (JSON lines)",
                          description="FILE is what `membot memory export` wrote (core memory, "
                          "summary, recall, archival, links), or plain lines {\"role\": "
                          "\"user|assistant|system\", \"content\": \"...\", \"timestamp\": "
                          "\"ISO-8601 or epoch\", \"name\": \"optional speaker\"}. Every line is "
                          "checked before anything is written; importing twice stores things once.")
    imp.add_argument("file", help="JSON-lines file, or - for stdin")
    exp = msub.add_parser("export", help="write everything of a user as JSON lines (import reads it)")
    exp.add_argument("--out", default="-", help="output file (default: stdout)")
    rst = msub.add_parser("reset", help="delete all memory of a user")
    rst.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    lnk = msub.add_parser("link", help="let another platform identity share this user's memory")
    lnk.add_argument("identity", help="the identity to link, e.g. slack:T123:U456")
    for sp in (show, srch, imp, exp, rst, lnk):
        sp.add_argument("--user", required=True, metavar="KEY", help="user key")
    cli_health.register(msub, sub)

    register_knowledge(sub)
    register_dead_letters(sub)

    hb = sub.add_parser("heartbeat", help="trigger one heartbeat for a user now",
                        description="Queue a reflection heartbeat for KEY through the user's "
                        "queue (waits for a running step).")
    hb.add_argument("--user", required=True, metavar="KEY")

    sync = sub.add_parser("sync-commands", help="register Discord slash commands (run after upgrades)",
                          description="Push the slash command tree to Discord. Use --guild for "
                          "instant registration in one server while testing.")
    sync.add_argument("--guild", default=None, help="guild id (default: global)")

    sub.add_parser("doctor", help="check Redis, vector store, LLM, model files and platform tokens",
                   description="Check every dependency of the bot (Redis, the vector store, the "
                   "LLM endpoint and its tool calling, embedding model and tokenizer files, "
                   "platform tokens and scopes) and print what to fix. Exit 1 on any failure.")
    sub.add_parser("setup-assets", help="locate or download the embedding model and tokenizer files",
                   description="Use the offline assets found in ASSETS_DIRS (../shared beside "
                   "the checkout, data/assets), or download them once into EMBEDDING_CACHE_DIR "
                   "and TIKTOKEN_CACHE_DIR. Prints where they are.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    try:
        settings = load_settings(args.env_file)
        from bot.ops.logs import configure_logging
        level = settings.log_level
        if args.command == "chat" and level == "INFO":  # keep the conversation readable
            level = "WARNING"
        configure_logging(level, settings.log_format)
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as exc:
        print(f"membot: configuration error: {exc}", file=sys.stderr)
        return 2
    except (AdminError, KnowledgeError) as exc:
        print(f"membot: {exc}", file=sys.stderr)
        return 1
    except MembotError as exc:
        print(f"membot: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        return await cmd_run(settings, args.user)
    if args.command == "chat":
        return await cmd_chat(settings, args.user)
    if args.command == "memory":
        action = cli_health.cmd_reorganize if args.action == "reorganize" else cmd_memory
        return await _with_service(settings, lambda svc: action(svc, args))
    if args.command == "knowledge":
        return await _with_service(settings, lambda svc: cmd_knowledge(svc, args))
    if args.command == "dead-letters":
        return await _with_service(settings, lambda svc: cmd_dead_letters(svc, args))
    if args.command == "stats":
        return await _with_service(settings, lambda svc: cli_health.cmd_stats(svc, args))
    if args.command == "heartbeat":
        return await cmd_heartbeat(settings, args.user)
    if args.command == "doctor":
        from adapters.cli_doctor import cmd_doctor
        return await cmd_doctor(settings)
    if args.command == "setup-assets":
        from adapters.cli_assets import cmd_setup_assets
        return await cmd_setup_assets(settings)
    if args.command == "sync-commands":
        from adapters.discord_adapter import sync_commands
        return await sync_commands(settings, args.guild)
    raise ConfigError(f"unknown command {args.command}")


def _service(settings: Settings, need_llm: bool = True) -> Any:
    from bot.service import Service
    if need_llm:
        settings.require_llm()
        return Service.build(settings)
    from bot.service import DisabledLLM  # memory commands need no LLM
    llm = None if settings.llm_configured else DisabledLLM()
    return Service.build(settings, llm=llm)


async def _with_service(settings: Settings, fn: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``fn`` with the admin socket of a running bot, which holds the stores, or else
    with the stores opened here: ``fn`` uses only ``admin``, ``knowledge_admin`` and
    ``settings``, which both offer."""
    from adapters.cli_remote import running_bot
    live = await running_bot(settings.admin_socket_path, settings)
    if live is not None:
        return await fn(live)
    if settings.embedding_threads == 0:  # nothing else runs here: imports may use every core
        settings = settings.model_copy(update={"embedding_threads": os.cpu_count() or 1})
    svc = _service(settings, need_llm=False)
    await svc.open(load_embedder=False)
    try:
        return await fn(svc)
    finally:
        await svc.writer.flush()
        await svc.close()


async def _user(admin: Any, name: str, *, must_exist: bool = True) -> str:
    """The user key a name stands for (a short name resolves when unambiguous); with
    ``must_exist`` an AdminError when nothing is stored under it."""
    user = await admin.find_user(name)
    if user != name:
        print(f"({name} -> {user})", file=sys.stderr)
    if must_exist:
        await admin.require_memory(user)
    return str(user)


async def _refuse_beside_live(settings: Settings, what: str) -> None:
    """A bot already holding the embedded engine here: say so, instead of a lock error
    (with QDRANT_URL several processes may share the store, so nothing is refused)."""
    from adapters.cli_remote import running_bot
    if settings.qdrant_url or await running_bot(settings.admin_socket_path) is None:
        return
    raise AdminError(f"a bot (`membot run` or `chat`) is already running here (its admin socket "
                     f"{settings.admin_socket_path} answers) and holds the embedded vector store; "
                     f"{what}, or stop it first (QDRANT_URL lets several processes share one store)")


async def cmd_run(settings: Settings, user: str) -> int:
    settings.require_llm()
    from adapters.runner import run_service
    return await run_service(settings, terminal_user=user)


async def cmd_chat(settings: Settings, user: str) -> int:
    settings.require_llm()
    await _refuse_beside_live(settings, "chat in that bot's terminal (or on Discord/Slack)")
    from adapters.runner import serve_admin_socket
    from adapters.terminal import run_chat
    svc = _service(settings)
    await svc.probe_llm()
    await svc.start()
    control = await serve_admin_socket(svc)
    try:
        await run_chat(svc, user)
    finally:
        if control is not None:
            await control.stop()
        await svc.stop()
    return 0


async def cmd_heartbeat(settings: Settings, name: str) -> int:
    async def run(svc: Any) -> int:
        user = await _user(svc.admin, name)
        status = await svc.admin.heartbeat_now(user, actor="cli")
        print(f"heartbeat for {user}: {status}")
        return 0

    from adapters.cli_remote import running_bot
    live = await running_bot(settings.admin_socket_path)
    if live is not None:
        return await run(live)
    svc = _service(settings)
    await svc.open()
    try:
        return await run(svc)
    finally:
        await svc.close()


async def cmd_memory(svc: Any, args: argparse.Namespace) -> int:
    admin = svc.admin
    user = await _user(admin, args.user, must_exist=args.action not in ("import", "link"))
    if args.action == "show":
        print(json.dumps(await admin.show(user), indent=2, ensure_ascii=False))
    elif args.action == "search":
        queries = args.queries or [q.strip() for q in sys.stdin if q.strip()]
        for q in queries:
            hits = await admin.search(user, args.kind, q, args.limit)
            if args.json:
                print(json.dumps({"query": q, "hits": hits}, ensure_ascii=False), flush=True)
            else:
                print(render_hits(q, hits))
    elif args.action == "import":
        return await _import(admin, user, args.file)
    elif args.action == "export":
        data = "".join(line + "\n" for line in await admin.export_lines(user))
        if args.out == "-":
            sys.stdout.write(data)
        else:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(data)
            print(f"wrote {args.out} ({data.count(chr(10))} records)", file=sys.stderr)
    elif args.action == "reset":
        if not args.yes:
            if not sys.stdin.isatty():
                raise AdminError("refusing to reset without confirmation; pass --yes")
            if input(f"Delete ALL memory of {user}? [y/N] ").strip().lower() not in ("y", "yes"):
                print("cancelled")
                return 1
        receipt = await admin.reset(user)
        print(f"memory of {user} deleted; removed: "
              + ", ".join(f"{n} {what}" for what, n in receipt.items()))
    elif args.action == "link":
        await admin.link(args.identity, user)
        print(f"{args.identity} now shares the memory of {user}")
    return 0


def render_hits(query: str, hits: list[dict[str, Any]]) -> str:
    """Search hits for a terminal: score, time, speaker and what they said."""
    lines = [f"# {query}"] + [
        f"  {h['score']:.3f}  {h['timestamp'][:16].replace('T', ' ')}  "
        f"{h.get('speaker') or h['role'] or 'note'}: {' '.join(h['text'].split())}" for h in hits]
    return "\n".join(lines if hits else [*lines, "  (nothing found)"])


async def _import(admin: Any, user: str, path: str) -> int:
    from rich.progress import Progress
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise AdminError(f"cannot read {path}: {exc.strerror}") from None
    with Progress(transient=True) as bar:
        task = bar.add_task("importing", total=len(lines))
        n = await admin.import_lines(user, lines, lambda done, total: bar.update(task, completed=done, total=total))
    new = n["recall"] + n["archival"]
    extra = [f"{n['archival']} new archival notes"] if n["archival"] else []
    extra += ["core memory"] if n["core"] else []
    extra += ["summary"] if n["summary"] else []
    extra += [f"{n['links']} links"] if n["links"] else []
    print(f"imported {n['lines']} messages and notes into the memory of {user}: {new} new, "
          f"{n['lines'] - new} already there" + (f"; also {', '.join(extra)}" if extra else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
