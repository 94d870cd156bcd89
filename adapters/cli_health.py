"""`membot memory reorganize` and `membot stats`: archival reorganization and memory health
(bot.memory.reorganize, bot.memory.health), registered by adapters.cli."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.errors import AdminError


def register(msub: Any, sub: Any) -> None:
    """Add `memory reorganize` under ``msub`` (memory actions) and `stats` under ``sub``."""
    reo = msub.add_parser("reorganize", help="merge duplicate archival notes, resolve superseded facts",
                          description="Exact duplicates become one note; older notes on a topic, "
                          "or near-duplicates above --threshold, are marked superseded (kept as "
                          "history). Prints what was done (or would be, with --dry-run).")
    who = reo.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="KEY", help="user key")
    who.add_argument("--all", action="store_true", help="every known user")
    reo.add_argument("--threshold", type=float, default=None,
                     help="cosine similarity for near-duplicates (default ARCHIVAL_MERGE_THRESHOLD)")
    reo.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    st = sub.add_parser("stats", help="memory health: hit rate, growth per user",
                        description="Memory health indicators of the deployment and of each user "
                        "(definitions: docs/memory-health.md). Latency is on /metrics.")
    st.add_argument("--json", action="store_true", help="one JSON document")


async def cmd_reorganize(svc: Any, args: argparse.Namespace) -> int:
    threshold = svc.settings.archival_merge_threshold if args.threshold is None else args.threshold
    if not 0 < threshold <= 1:
        raise AdminError("--threshold must be in (0, 1]")
    users = await svc.admin.known_users() if args.all else [args.user]
    for user in users:
        report = await svc.admin.reorganize(user, threshold, dry_run=args.dry_run)
        print(json.dumps(report, ensure_ascii=False), flush=True)
    return 0


async def cmd_stats(svc: Any, args: argparse.Namespace) -> int:
    stats = await svc.admin.stats()
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
        return 0
    print(f"users {len(stats['users'])}  items {stats['items']}  searches {stats['searches']}  "
          f"hit rate {_pct(stats['hit_rate'])} (goal > 85%)  "
          f"median growth/day {_pct(stats['growth_per_day_median'])} (goal < 5%)")
    print(f"{'user':40s} {'items':>7s} {'growth/day':>10s} {'searches':>8s} {'hit rate':>8s}")
    for u in stats["users"]:
        print(f"{u['user']:40s} {u['items']:7d} {_pct(u['growth_per_day']):>10s} "
              f"{u['searches']:8d} {_pct(u['hit_rate']):>8s}")
    return 0


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"
