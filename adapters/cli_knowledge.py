"""``membot knowledge add|list|show|remove|sync|search``: the knowledge bases of servers,
workspaces and the whole deployment, from the command line (bot.knowledge does the work)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bot.errors import KnowledgeError

SCOPE_HELP = "global (the whole deployment), discord:GUILD_ID or slack:TEAM_ID"


def register(sub: Any) -> None:
    """Add the ``knowledge`` command group to the ``membot`` parser."""
    kn = sub.add_parser("knowledge", help="documents each server/workspace's agents can search",
                        description="Knowledge bases: documents (Markdown, text, reST, HTML, "
                        "PDF) of a Discord server, a Slack workspace or the whole deployment, "
                        "searched by the agent of every member talking there.")
    ks = kn.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = ks.add_parser("add", help="add or replace files and directories (unchanged ones are skipped)")
    add.add_argument("paths", nargs="+", metavar="PATH")
    lst = ks.add_parser("list", help="documents, versions and knowledge drift of a scope (all scopes without --scope)")
    lst.add_argument("--since", default=None, help="drift since this date (YYYY-MM-DD; "
                     "default: KNOWLEDGE_DRIFT_DAYS ago)")
    lst.add_argument("--json", action="store_true")
    show = ks.add_parser("show", help="one document's record and version history")
    show.add_argument("source", help="document name as `list` shows it")
    rm = ks.add_parser("remove", help="delete documents and their chunks (history is kept)")
    rm.add_argument("sources", nargs="+", metavar="SOURCE")
    sync = ks.add_parser("sync", help="make the scope match a directory: add new, replace changed, remove deleted")
    sync.add_argument("directory")
    srch = ks.add_parser("search", help="search a scope (and global) as a member's agent would")
    srch.add_argument("query")
    srch.add_argument("--limit", type=int, default=5)
    for sp in (add, show, rm, sync, srch):
        sp.add_argument("--scope", required=True, help=SCOPE_HELP)
    lst.add_argument("--scope", default=None, help=SCOPE_HELP)
    for sp in (add, rm, sync):
        sp.add_argument("--by", default="cli", help="who made the change, for the history (default: cli)")


async def cmd_knowledge(svc: Any, args: argparse.Namespace) -> int:
    kb = svc.knowledge_admin  # bot.knowledge.admin, here or in the running bot
    if args.action in ("add", "sync"):
        return await _ingest(kb, args)
    if args.action == "list":
        return await _list(kb, svc.settings, args)
    if args.action == "show":
        print(json.dumps(await kb.show(args.scope, args.source), indent=2, ensure_ascii=False,
                         default=str))
        return 0
    if args.action == "remove":
        for source in args.sources:
            out = await kb.remove(args.scope, source, actor=args.by)
            print(f"removed {out['source']} (v{out['version']}, {out['chunks']} chunks) from {args.scope}")
        return 0
    hits = await kb.search(args.scope, args.query, limit=args.limit)
    for h in hits:
        print(f"{h['score']:.3f}  {h['citation']}\n       {' '.join(h['text'].split())[:200]}")
    if not hits:
        print("no match")
    return 0


async def _ingest(kb: Any, args: argparse.Namespace) -> int:
    from rich.progress import Progress

    failed: list[dict[str, Any]] = []
    with Progress(transient=True) as bar:
        task = bar.add_task(f"{args.action} {args.scope}", total=None)

        def report(o: dict[str, Any]) -> None:
            if o["status"] == "failed":
                failed.append(o)
                print(f"error: {o['error']}", file=sys.stderr)  # rich shows it above the bar

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if args.action == "add":
            outcomes = await kb.add(args.scope, args.paths, actor=args.by, report=report, advance=advance)
        else:
            outcomes = await kb.sync(args.scope, args.directory, actor=args.by,
                                     report=report, advance=advance)
    counts = {s: sum(1 for o in outcomes if o["status"] == s)
              for s in ("added", "updated", "unchanged", "removed", "failed")}
    chunks = sum(o["chunks"] for o in outcomes if o["status"] in ("added", "updated"))
    print(f"{args.scope}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f" ({chunks} chunks written)" if outcomes else f"{args.scope}: no files found")
    if failed and args.action == "sync":
        print("nothing removed: fix the files above and sync again", file=sys.stderr)
    return 1 if failed or not outcomes else 0


async def _list(kb: Any, settings: Any, args: argparse.Namespace) -> int:
    rows = await kb.listing(args.scope, _since(args.since, settings.knowledge_drift_days))
    if args.json:
        print(json.dumps(rows if not args.scope else rows[0], indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no knowledge yet: membot knowledge add --scope SCOPE PATH...")
    for row in rows:
        print(f"{row['scope']}: {row['documents']} documents, {row['chunks']} chunks, "
              f"knowledge drift {row['drift']:.1%} since {row['drift_since']}")
        for d in row["docs"] if args.scope else []:
            print(f"  {d['source']:<40} v{d['version']:<3} {d['chunks']:>5} chunks  "
                  f"{d['updated']}  {d['by']}  {d['title']}")
    return 0


def _since(text: str | None, days: float) -> float:
    if text is None:
        return time.time() - days * 86_400
    from bot.memory.timeparse import parse_date

    found = parse_date(text)
    if found is None:
        raise KnowledgeError(f"--since must be a date like 2026-01-31, got {text!r}")
    return found.since
