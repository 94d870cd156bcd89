"""``membot dead-letters list|retry|drop``: what membot gave up on, for an operator."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any


def register(sub: Any) -> None:
    """Add the ``dead-letters`` command group to the ``membot`` parser."""
    dl = sub.add_parser("dead-letters", help="events and replies that failed for good: list, retry, drop",
                        description="An event lands here after MAX_EVENT_ATTEMPTS failed steps, a "
                        "reply after a permanent refusal or DELIVERY_MAX_ATTEMPTS failed sends.")
    ds = dl.add_subparsers(dest="action", metavar="ACTION", required=True)
    lst = ds.add_parser("list", help="list dead letters (oldest first)")
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text in (("retry", "queue entries again"), ("drop", "delete entries")):
        p = ds.add_parser(name, help=text)
        p.add_argument("ids", nargs="*", metavar="ID")
        p.add_argument("--all", action="store_true", help="every entry")


async def cmd_dead_letters(svc: Any, args: argparse.Namespace) -> int:
    admin = svc.admin  # bot.ops.admin: bot.ops.deadletters does the work
    if args.action == "list":
        entries = await admin.dead_letters()
        for e in entries:
            if args.json:
                print(json.dumps(e, ensure_ascii=False))
            else:
                when = datetime.fromtimestamp(float(e.get("at", 0)), UTC).strftime("%Y-%m-%d %H:%M")
                print(f"{e.get('id')}  {when}  {e.get('kind'):6} {e.get('user')}  "
                      f"tries={e.get('attempts')}  {e.get('error')}  | {e.get('what')}")
        if not entries and not args.json:
            print("no dead letters")
        return 0
    if args.action == "retry":
        print(f"queued {await admin.retry_dead_letters(args.ids, args.all)} again")
    else:
        print(f"dropped {await admin.drop_dead_letters(args.ids, args.all)}")
    return 0
