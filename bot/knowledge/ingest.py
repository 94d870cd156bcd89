"""Files and folders into a scope: ``add`` (files and directories), ``sync`` (a directory:
add new, replace changed, remove deleted). Each file is read and checked on its own: an
unreadable one is reported with its reason and the others go on; nothing of it is written.

Names: a file named on its own is stored under its file name; files found in a directory
under their path relative to it (``guides/setup.md``), with the directory as their origin,
which is what ``sync`` compares against (documents uploaded from a chat are never removed
by a sync).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import KnowledgeError
from bot.knowledge.base import KnowledgeBase, Outcome, Prepared
from bot.knowledge.readers import KINDS
from bot.knowledge.scopes import parse_scope

BATCH = 32  # documents per version switch (one catalog write)
Report = Callable[[Outcome], None]  # called once per file, as soon as its fate is known
Advance = Callable[[int, int], None]  # (files done, files total)


@dataclass(frozen=True)
class FileRef:
    source: str
    path: Path
    origin: str = ""


def collect(paths: Iterable[str | Path]) -> list[FileRef]:
    """The files to ingest: named files as they are (any type: an unsupported one is
    reported), directories walked for supported types, hidden files and folders skipped."""
    out: list[FileRef] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            root = path.resolve()
            for f in sorted(root.rglob("*")):
                rel = f.relative_to(root)
                if (f.is_file() and f.suffix.lower() in KINDS and f.suffix
                        and not any(part.startswith(".") for part in rel.parts)):
                    out.append(FileRef(rel.as_posix(), f, str(root)))
        else:
            out.append(FileRef(path.name, path))
    return out


def _walk(root: str | Path) -> tuple[str, list[FileRef]]:
    base = Path(root).expanduser()
    if not base.is_dir():
        raise KnowledgeError(f"{root} is not a directory")
    return str(base.resolve()), collect([base])


def _read(kb: KnowledgeBase, ref: FileRef) -> Prepared:
    try:
        size = ref.path.stat().st_size
        if size > kb.max_bytes:  # refuse before loading a huge file into memory
            raise KnowledgeError(f"is {size / 1_048_576:.1f} MB; the limit is "
                                 f"{kb.max_bytes / 1_048_576:.1f} MB (KNOWLEDGE_MAX_FILE_MB)")
        data = ref.path.read_bytes()
    except FileNotFoundError:
        raise KnowledgeError("does not exist") from None
    except IsADirectoryError:
        raise KnowledgeError("is a directory") from None
    except OSError as exc:
        raise KnowledgeError(f"cannot be read ({exc.strerror})") from None
    return kb.prepare(ref.path.name, data, source=ref.source, origin=ref.origin)


async def add_files(kb: KnowledgeBase, scope: str, refs: list[FileRef], *, actor: str,
                    report: Report | None = None, advance: Advance | None = None) -> list[Outcome]:
    """Add or replace every readable file; one outcome per file (failed ones with why)."""
    scope = parse_scope(scope)
    outcomes: list[Outcome] = []
    pending: list[Prepared] = []

    async def flush() -> None:
        done = await kb.commit(scope, pending, actor=actor)
        pending.clear()
        for o in done:
            _note(o)

    def _note(o: Outcome) -> None:
        outcomes.append(o)
        if report:
            report(o)
        if advance:
            advance(len(outcomes), len(refs))

    for ref in refs:
        try:
            pending.append(await asyncio.to_thread(_read, kb, ref))
        except KnowledgeError as exc:
            _note(Outcome(ref.source, "failed", error=f"{ref.path}: {exc}"))
        if len(pending) >= BATCH:
            await flush()
    if pending:
        await flush()
    return outcomes


async def sync(kb: KnowledgeBase, scope: str, root: str | Path, *, actor: str,
               report: Report | None = None, advance: Advance | None = None) -> list[Outcome]:
    """Make the scope's documents from ``root`` match it: add new, replace changed, remove
    those whose file is gone. Removal happens only if every file could be read, so a
    transient read error never deletes a document."""
    scope = parse_scope(scope)
    origin, refs = await asyncio.to_thread(_walk, root)
    outcomes = await add_files(kb, scope, refs, actor=actor, report=report, advance=advance)
    if any(o.status == "failed" for o in outcomes):
        return outcomes
    present = {r.source for r in refs}
    catalog = await kb.catalog(scope)
    for rec in list(catalog.docs.values()):
        if rec.origin == origin and rec.source not in present:
            out = await kb.remove(scope, rec.source, actor=actor)
            outcomes.append(out)
            if report:
                report(out)
    return outcomes
