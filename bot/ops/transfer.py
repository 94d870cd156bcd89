"""Moving one user's memory between deployments: the export format and its import.

An export is JSON lines, one record per line, the first a header::

    {"type": "header", "format": "membot-export", "version": 2, "user": KEY, "exported_at": ISO}
    {"type": "core", "persona": {"value", "limit"}, "human": {...}, "last_edit", "last_seen", "paused_until"}
    {"type": "summary", "text": "..."}
    {"type": "recall", "id", "role", "kind", "content", "ts", "timestamp", "meta"}
    {"type": "archival", "id", "role", "kind", "content", "ts", "timestamp", "meta"}
    {"type": "link", "identity": "slack:T1:U2"}

``ts`` is the exact epoch time (``timestamp`` the same, readable). The same records as one
JSON document (``{"format": "membot-export", ..., "records": [...]}``, what the chat
commands send) import too, and so do plain message lines ``{role, content, timestamp,
name?}`` (the older import format). Import checks every line before writing anything
(reporting up to ``MAX_REPORTED`` bad lines) and is idempotent: an item keeps its id when
imported under the user it was exported from, and otherwise gets an id derived from the
target user and the item (plain lines: from their content), so importing the same thing
twice stores it once, and never overwrites another user's item.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import AdminError
from bot.memory.core import AgentState
from bot.protocols import MemoryItem

FORMAT = "membot-export"
VERSION = 2
MAX_REPORTED = 20
ROLES = {"user", "assistant", "system", "tool"}
_NS = uuid.UUID("0b6f7c52-1f1e-4d55-9a57-6d656d626f78")
_CORE_FIELDS = ("last_edit", "last_seen", "paused_until")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def parse_time(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    raise AdminError(f"{where}: timestamp must be ISO 8601 or epoch seconds, got {value!r}")


# --- export ----------------------------------------------------------------------------------------
def export_records(user: str, state: AgentState, recall: Iterable[MemoryItem],
                   archival: Iterable[MemoryItem], links: Iterable[str]) -> list[dict[str, Any]]:
    """Every record of one user's memory, header first."""
    out: list[dict[str, Any]] = [
        {"type": "header", "format": FORMAT, "version": VERSION, "user": user,
         "exported_at": datetime.now(UTC).isoformat()},
        {"type": "core", "persona": {"value": state.persona.value, "limit": state.persona.limit},
         "human": {"value": state.human.value, "limit": state.human.limit},
         **{k: getattr(state, k) for k in _CORE_FIELDS}},
        {"type": "summary", "text": state.summary},
    ]
    for kind, items in (("recall", recall), ("archival", archival)):
        out += [{"type": kind, "id": i.id, "role": i.role, "kind": i.kind, "content": i.text,
                 "ts": i.ts, "timestamp": iso(i.ts), "meta": i.meta} for i in items]
    out += [{"type": "link", "identity": identity} for identity in sorted(links)]
    return out


def as_document(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The records as one JSON document (the header's fields, then ``records``)."""
    head = {k: v for k, v in records[0].items() if k != "type"}
    return {**head, "records": records[1:]}


def as_lines(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in records]


# --- import ----------------------------------------------------------------------------------------
@dataclass
class Parsed:
    """What an import file holds, checked."""

    source: str | None = None  # the user the export came from (header)
    core: dict[str, Any] | None = None
    summary: str | None = None
    recall: list[MemoryItem] = field(default_factory=list)
    archival: list[MemoryItem] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def records_of(lines: list[str]) -> list[tuple[int, Any]]:
    """(line number, decoded JSON or the raw line when it is not JSON) per non-blank line;
    one JSON export document expands into its records."""
    text = "\n".join(lines).strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            head = {"type": "header", **{k: v for k, v in doc.items() if k != "records"}}
            recs = doc.get("records")
            return [(1, head)] + [(n, r) for n, r in enumerate(recs if isinstance(recs, list) else [None], 2)]
    out: list[tuple[int, Any]] = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as exc:
                out.append((n, AdminError(f"line {n}: not JSON ({exc.msg})")))
    return out


def parse(lines: list[str], target: str) -> Parsed:
    """Check every record; raise AdminError naming every bad line (up to MAX_REPORTED)."""
    parsed, errors = Parsed(), []
    for n, rec in records_of(lines):
        try:
            if isinstance(rec, AdminError):
                raise rec
            _one(parsed, rec, n, target)
        except AdminError as exc:
            errors.append(str(exc))
    if errors:
        shown = errors[:MAX_REPORTED]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise AdminError(f"{len(errors)} bad line(s), nothing imported:\n  " + "\n  ".join(shown) + more)
    if not (parsed.recall or parsed.archival or parsed.core or parsed.summary or parsed.links):
        raise AdminError("nothing to import")
    return parsed


def _one(parsed: Parsed, rec: Any, n: int, target: str) -> None:
    where = f"line {n}"
    if not isinstance(rec, dict):
        raise AdminError(f"{where}: expected a JSON object")
    kind = rec.get("type")
    if kind == "header":
        if rec.get("format") != FORMAT or rec.get("version") != VERSION:
            raise AdminError(f"{where}: not a {FORMAT} version {VERSION} header")
        parsed.source = _text(rec, "user", where)
    elif kind == "core":
        parsed.core = {"persona": _block(rec, "persona", where), "human": _block(rec, "human", where),
                       **{k: parse_time(rec.get(k, 0.0), f"{where}: {k}") for k in _CORE_FIELDS}}
    elif kind == "summary":
        parsed.summary = _text(rec, "text", where, empty=True)
    elif kind == "link":
        identity = _text(rec, "identity", where)
        if identity.count(":") < 2 or " " in identity:
            raise AdminError(f"{where}: identity {identity!r} is not a key like slack:TEAM:ID")
        parsed.links.append(identity)
    elif kind in ("recall", "archival"):
        getattr(parsed, kind).append(_item(rec, n, target, parsed.source))
    elif kind is None and "role" in rec:
        parsed.recall.append(_plain_message(rec, n, target))
    else:
        raise AdminError(f"{where}: unknown record type {kind!r}")


def _text(rec: dict[str, Any], key: str, where: str, empty: bool = False) -> str:
    v = rec.get(key)
    if not isinstance(v, str) or (not empty and not v.strip()):
        raise AdminError(f"{where}: {key} must be a {'' if empty else 'non-empty '}string")
    return v


def _block(rec: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    b = rec.get(name)
    if not isinstance(b, dict) or not isinstance(b.get("value"), str):
        raise AdminError(f"{where}: {name} must be {{\"value\": text, \"limit\": n}}")
    limit = b.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < len(b["value"]):
        raise AdminError(f"{where}: {name}.limit must be an integer >= the block's length")
    return {"value": b["value"], "limit": limit}


def _item(rec: dict[str, Any], n: int, target: str, source: str | None) -> MemoryItem:
    where = f"line {n}"
    meta = rec.get("meta", {})
    if not isinstance(meta, dict):
        raise AdminError(f"{where}: meta must be an object")
    content = rec.get("content")
    if not isinstance(content, str):
        raise AdminError(f"{where}: content must be a string")
    role, kind = rec.get("role", ""), rec.get("kind", "")
    if not isinstance(role, str) or not isinstance(kind, str):
        raise AdminError(f"{where}: role and kind must be strings")
    ts = parse_time(rec["ts"] if "ts" in rec else rec.get("timestamp"), where)
    given = rec.get("id")
    if not isinstance(given, str) or not given:
        raise AdminError(f"{where}: id must be a non-empty string")
    ident = given if source == target else uuid.uuid5(_NS, f"{target}\x00{given}").hex
    return MemoryItem(id=ident, user=target, text=content, ts=ts, role=role, kind=kind, meta=meta)


def _plain_message(d: dict[str, Any], n: int, target: str) -> MemoryItem:
    """One line of the plain format: {role, content, timestamp, name?}."""
    where = f"line {n}"
    role, content = d.get("role"), d.get("content")
    if role not in ROLES:
        raise AdminError(f"{where}: role must be one of {', '.join(sorted(ROLES))}")
    if not isinstance(content, str) or not content.strip():
        raise AdminError(f"{where}: content must be a non-empty string")
    if "timestamp" not in d:
        raise AdminError(f"{where}: timestamp is missing")
    name = d.get("name", "")
    if not isinstance(name, str):
        raise AdminError(f"{where}: name must be a string")
    ts = parse_time(d["timestamp"], where)
    kind = "user_message" if role == "user" else "assistant" if role == "assistant" else "system_alert"
    stored_role = role if role != "tool" else "system"
    ident = uuid.uuid5(_NS, json.dumps([target, stored_role, ts, name, content])).hex
    return MemoryItem(id=ident, user=target, text=content, ts=ts, role=stored_role, kind=kind,
                      meta={"name": name} if name else {})
