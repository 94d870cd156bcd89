"""The shape of the code base: layering, no import cycles, one owner per external library."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "adapters")
PLATFORM_SDKS = ("discord", "slack_bolt", "slack_sdk", "adapters")
# external library -> the only modules allowed to import it (errors translated there)
OWNERS = {
    "redis": {"bot.stores.redis_store"},
    "qdrant_client": {"bot.stores.qdrant_server"},
    "qdrant_edge": {"bot.stores.qdrant_edge", "bot.stores.sparse"},
    "openai": {"bot.agent.llm", "bot.memory.embeddings"},
    "fastembed": {"bot.memory.embeddings"},
    "onnxruntime": {"bot.memory.embeddings"},
    "tiktoken": {"bot.agent.tokens"},
    "apscheduler": {"bot.runtime.heartbeat"},
    "pypdf": {"bot.knowledge.pdf"},
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (also inside functions and
    TYPE_CHECKING blocks: a cycle hidden there is still a cycle in the design)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports(p) if i in mods and i != m} for m, p in mods.items()}


def test_core_never_imports_adapters_or_a_platform_sdk() -> None:
    """bot/ imports neither adapters/ nor discord.py nor the Slack SDKs."""
    bad = [(m, i) for m, p in modules().items() if m.startswith("bot")
           for i in imports(p) if i.split(".")[0] in PLATFORM_SDKS]
    assert bad == []


def test_no_import_cycles() -> None:
    """The module import graph of bot/ and adapters/ has no cycle."""
    g = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(g[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    # a package's __init__ naming its submodules is not a cycle of the design
    cycles = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".")
                                           for a, b in zip(c, c[1:], strict=False))]
    assert cycles == []


def test_each_external_library_has_one_owner() -> None:
    """redis, qdrant, openai, fastembed, tiktoken and apscheduler are imported only by their
    owning modules."""
    bad = []
    for m, p in modules().items():
        for i in imports(p):
            owners = OWNERS.get(i.split(".")[0])
            if owners is not None and m not in owners:
                bad.append((m, i))
    assert bad == []


def test_only_config_reads_the_environment() -> None:
    """Nothing in bot/ or adapters/ but bot.config reads os.environ or getenv."""
    bad = [m for m, p in modules().items() if m != "bot.config"
           and ("os.environ" in p.read_text() or "getenv(" in p.read_text())]
    assert bad == []


def test_detector_finds_a_cycle(tmp_path: Path) -> None:
    """The import scanner sees imports inside functions and TYPE_CHECKING blocks."""
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.service import "
                 "Service\ndef f():\n    import bot.agent.loop\n")
    assert {"bot.service", "bot.agent.loop"} <= imports(f)
