"""The deploy files: Dockerfile shape, pinned lock, compose wiring — checked by parsing.

No Docker engine is needed: the Dockerfile is read by the small parser below, compose.yaml
with PyYAML, and the two health-check commands are run for real against local servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pydantic import AliasChoices

from bot.config import Settings
from bot.ops.logs import redact_text
from bot.ops.metrics import Metrics
from bot.ops.server import OpsServer

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DEV_TOOLS = {"pytest", "pytest-asyncio", "ruff", "mypy", "membot"}


# --- a small Dockerfile parser ------------------------------------------------------------
@dataclass
class Instruction:
    cmd: str  # upper-case keyword
    flags: dict[str, str]  # leading --name=value options
    args: str  # the rest, continuation lines joined

    def exec_form(self) -> list[str] | None:
        """The JSON-array (exec) form of the arguments, or None for shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value if ok else None


@dataclass
class Stage:
    base: str
    name: str | None
    body: list[Instruction]

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.body if i.cmd == cmd]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            words = shlex.split(ins.args)
            if words and "=" not in words[0]:  # legacy "ENV KEY value"
                out[words[0]] = " ".join(words[1:])
                continue
            out.update(w.split("=", 1) for w in words)  # type: ignore[misc]
        return out


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each FROM resolved against those ARGs."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments and blank lines, also inside continuations
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        cmd, _, rest = line.partition(" ")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            key, _, value = flag[2:].partition("=")
            flags[key] = value
            rest = rest.strip()
        ins = Instruction(cmd.upper(), flags, rest)
        if ins.cmd == "FROM":
            words = rest.split()
            base = re.sub(
                r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0]
            )
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name, []))
        elif not stages:
            assert ins.cmd == "ARG", f"only ARG may precede the first FROM, not {ins.cmd}"
            key, _, value = rest.partition("=")
            global_args[key] = value
        else:
            stages[-1].body.append(ins)
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((DEPLOY / "Dockerfile").read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def settings_env_names() -> set[str]:
    names: set[str] = set()
    for field_name, info in Settings.model_fields.items():
        names.add(field_name.upper())
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(a).upper() for a in alias.choices if isinstance(a, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
    return names


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# --- Dockerfile ------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_on_slim_python(stages: list[Stage]) -> None:
    """At least two stages (builder + runtime), every base a slim Python 3.11 image."""
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base


def test_builder_and_runtime_share_the_base(stages: list[Stage]) -> None:
    """The copied venv runs on the same interpreter it was built with."""
    assert stages[0].base == stages[-1].base


def test_copy_from_names_an_earlier_stage(stages: list[Stage]) -> None:
    """Every COPY --from refers to a stage defined before it (by name or index)."""
    seen: list[str] = []
    copies = 0
    for index, stage in enumerate(stages):
        for ins in stage.all("COPY"):
            if "from" in ins.flags:
                copies += 1
                assert ins.flags["from"] in seen, f"COPY --from={ins.flags['from']}"
        seen += [str(index)] + ([stage.name] if stage.name else [])
    assert copies >= 2  # venv and baked assets


def test_final_stage_runs_as_non_root_uid_10001(final: Stage) -> None:
    """The last USER of the final stage is uid 10001, not root."""
    users = final.all("USER")
    assert users, "final stage has no USER"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001"


def test_entrypoint_and_cmd_are_exec_form(final: Stage) -> None:
    """ENTRYPOINT ["membot"] + CMD ["run"] in JSON form, so SIGTERM reaches Python."""
    assert final.all("ENTRYPOINT")[-1].exec_form() == ["membot"]
    assert final.all("CMD")[-1].exec_form() == ["run"]


def test_final_env_configures_the_container(final: Stage) -> None:
    """Runtime ENV sets offline asset dirs, data path, JSON logs, ops bind and unbuffered IO."""
    env = final.env()
    assert env["TIKTOKEN_CACHE_DIR"] and env["EMBEDDING_CACHE_DIR"]
    assert env["QDRANT_PATH"] == "/data/qdrant"
    assert env["LOG_FORMAT"] == "json"
    assert (env["OPS_HOST"], env["OPS_PORT"]) == ("0.0.0.0", "8080")
    assert env["PYTHONUNBUFFERED"] == "1"
    missing = {"TIKTOKEN_CACHE_DIR", "EMBEDDING_CACHE_DIR", "QDRANT_PATH", "LOG_FORMAT",
               "OPS_HOST", "OPS_PORT"} - settings_env_names()  # fmt: skip
    assert not missing, f"not Settings fields: {missing}"


def test_baked_assets_are_where_runtime_env_points(stages: list[Stage], final: Stage) -> None:
    """The builder downloads both tiktoken encodings and the fastembed model into the dirs
    that the final stage copies and points TIKTOKEN_CACHE_DIR/EMBEDDING_CACHE_DIR at."""
    builder = stages[0]
    runs = " ".join(i.args for i in builder.all("RUN"))
    assert "tiktoken.get_encoding" in runs
    assert "cl100k_base" in runs and "o200k_base" in runs
    assert "TextEmbedding" in runs
    env = final.env()
    assert builder.env()["TIKTOKEN_CACHE_DIR"] == env["TIKTOKEN_CACHE_DIR"]
    assert f"cache_dir='{env['EMBEDDING_CACHE_DIR']}'" in runs
    copied = [i.args.split()[-1] for i in final.all("COPY") if "from" in i.flags]
    for path in (env["TIKTOKEN_CACHE_DIR"], env["EMBEDDING_CACHE_DIR"]):
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), path


def test_inline_python_snippets_compile(stages: list[Stage]) -> None:
    """Every `python -c "..."` in a RUN or HEALTHCHECK is valid Python."""
    snippets = []
    for stage in stages:
        for ins in stage.all("RUN"):
            snippets += re.findall(r'python -c "([^"]+)"', ins.args)
        for ins in stage.all("HEALTHCHECK"):
            form = ins.args.removeprefix("CMD").strip()
            argv = json.loads(form)
            snippets.append(argv[argv.index("-c") + 1])
    assert len(snippets) >= 4
    for code in snippets:
        compile(code, "<dockerfile>", "exec")


def test_expose_volume_and_healthcheck_without_curl(final: Stage) -> None:
    """Port 8080 exposed, /data a volume, HEALTHCHECK in exec form with python, no curl."""
    assert "8080" in final.all("EXPOSE")[-1].args.split()
    volume = final.all("VOLUME")[-1]
    assert "/data" in (volume.exec_form() or volume.args.split())
    check = final.all("HEALTHCHECK")[-1]
    assert check.args.startswith("CMD")
    argv = json.loads(check.args.removeprefix("CMD").strip())
    assert argv[0] == "python"
    assert "curl" not in check.args and "wget" not in check.args
    assert "/healthz" in check.args


async def test_healthcheck_command_probes_ops_server(final: Stage) -> None:
    """The HEALTHCHECK command exits 0 against a live /healthz on OPS_PORT, non-zero when down."""
    argv = json.loads(final.all("HEALTHCHECK")[-1].args.removeprefix("CMD").strip())
    argv[0] = sys.executable

    async def run(port: int) -> int:
        env = {**os.environ, "OPS_PORT": str(port)}
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stderr=subprocess.DEVNULL)
        return await asyncio.wait_for(proc.wait(), timeout=20)

    server = OpsServer("127.0.0.1", 0, Metrics())
    await server.start()
    try:
        assert await run(server.port) == 0
    finally:
        await server.stop()
    assert await run(server.port) != 0


def test_dockerignore_keeps_junk_out_and_sources_in() -> None:
    """.dockerignore excludes venv/git/.env/data/tests but nothing the Dockerfile COPYs."""
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)

    for junk in (".venv", ".git", ".env", "data", "tests", ".env.local"):
        assert ignored(junk), junk
    for needed in ("pyproject.toml", "README.md", "bot/ops/server.py", "adapters/__init__.py",
                   "deploy/requirements.lock"):  # fmt: skip
        assert not ignored(needed), needed


# --- lock file ---------------------------------------------------------------------------------
def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (DEPLOY / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version.strip(), f"unpinned lock line: {raw!r}"
        pins[canonicalize_name(name)] = version.strip()
    return pins


def test_lock_pins_every_runtime_dependency() -> None:
    """Each [project] dependency is pinned with == in the lock, at a version it allows."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = lock_pins()
    for dep in deps:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} missing from deploy/requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), (dep, pins[name])


def test_lock_holds_no_dev_tools_or_the_project() -> None:
    """The lock is runtime-only: no pytest/ruff/mypy, and not membot itself."""
    assert not DEV_TOOLS & set(lock_pins())


# --- compose ------------------------------------------------------------------------------------
def test_compose_is_valid_yaml_with_the_three_services(compose: dict[str, Any]) -> None:
    """bot, redis and qdrant are defined; ollama only under the local-llm profile."""
    services = compose["services"]
    assert {"bot", "redis", "qdrant"} <= set(services)
    for name in ("bot", "redis", "qdrant"):
        assert not services[name].get("profiles"), f"{name} must start by default"
    assert services["ollama"]["profiles"] == ["local-llm"]


def test_bot_builds_from_the_deploy_dockerfile(compose: dict[str, Any]) -> None:
    """The build context and dockerfile resolve to this repository's deploy/Dockerfile."""
    build = compose["services"]["bot"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_bot_waits_for_healthy_stores(compose: dict[str, Any]) -> None:
    """The bot depends on redis and qdrant with condition service_healthy."""
    deps = compose["services"]["bot"]["depends_on"]
    for name in ("redis", "qdrant"):
        assert deps[name]["condition"] == "service_healthy"


def test_bot_service_lifecycle(compose: dict[str, Any]) -> None:
    """restart unless-stopped, 30s grace on stop, ops port 8080 published, /data on a volume."""
    bot = compose["services"]["bot"]
    assert bot["restart"] == "unless-stopped"
    assert bot["stop_grace_period"] == "30s"
    assert any(str(p).endswith("8080:8080") for p in bot["ports"])
    assert any(str(v).endswith(":/data") for v in bot["volumes"])
    assert bot["env_file"] == [{"path": "../.env", "required": False}]


def test_bot_env_points_at_the_store_services(compose: dict[str, Any]) -> None:
    """REDIS_URL and QDRANT_URL name the redis and qdrant services on their ports."""
    env = environment(compose["services"]["bot"])
    redis, qdrant = urlsplit(env["REDIS_URL"]), urlsplit(env["QDRANT_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert (qdrant.scheme, qdrant.hostname, qdrant.port) == ("http", "qdrant", 6333)


def test_bot_env_names_are_settings_fields(compose: dict[str, Any]) -> None:
    """Every variable compose sets on the bot is read by Settings (no typos, no dead vars)."""
    unknown = set(environment(compose["services"]["bot"])) - settings_env_names()
    assert not unknown, f"not Settings fields: {unknown}"


def test_container_env_is_valid_settings(
    compose: dict[str, Any], final: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image ENV plus the compose environment load into Settings without errors."""
    names = settings_env_names()
    for key in list(os.environ):
        if key in names:
            monkeypatch.delenv(key)
    env = {k: v for k, v in final.env().items() if k in names}
    env.update(environment(compose["services"]["bot"]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ops_port == 8080
    assert settings.qdrant_url == "http://qdrant:6333"


def test_compose_holds_no_secret_values(compose: dict[str, Any]) -> None:
    """No token-shaped text anywhere and no value under a secret-looking variable name."""
    raw = (DEPLOY / "compose.yaml").read_text()
    assert redact_text(raw) == raw
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            secretish = re.search(r"(^|_)(TOKEN|SECRET|PASSWORD|KEY)(_|$)", key)
            assert not (secretish and value), f"{name}: {key} has a value in compose.yaml"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    """Every named volume a service mounts is declared; redis and qdrant persist data."""
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} not declared"
    assert any(str(v).endswith(":/data") for v in compose["services"]["redis"]["volumes"])
    assert any(
        str(v).endswith(":/qdrant/storage") for v in compose["services"]["qdrant"]["volumes"]
    )


def test_redis_uses_aof_and_has_healthcheck(compose: dict[str, Any]) -> None:
    """Redis runs with appendonly yes / appendfsync everysec and is health-checked by ping."""
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = redis["command"]
    words = command if isinstance(command, list) else shlex.split(command)
    assert words[words.index("--appendonly") + 1] == "yes"
    assert words[words.index("--appendfsync") + 1] == "everysec"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_qdrant_pinned_and_checked_without_curl(compose: dict[str, Any]) -> None:
    """Qdrant is pinned to a v1.x.y tag; its healthcheck asks /readyz with no curl/wget."""
    qdrant = compose["services"]["qdrant"]
    assert re.fullmatch(r"qdrant/qdrant:v1\.\d+\.\d+", qdrant["image"])
    test = " ".join(qdrant["healthcheck"]["test"])
    assert "/readyz" in test
    assert "curl" not in test and "wget" not in test


@pytest.fixture
def http_status() -> Iterator[tuple[int, list[int]]]:
    """A local HTTP server answering /readyz with the status held in the yielded list."""
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.send_response(status[0] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_qdrant_healthcheck_command_runs(
    compose: dict[str, Any], http_status: tuple[int, list[int]]
) -> None:
    """The qdrant healthcheck, as YAML delivers it, exits 0 on 200 OK and non-zero on 503."""
    port, status = http_status
    argv = list(compose["services"]["qdrant"]["healthcheck"]["test"])
    assert argv[:3] == ["CMD", "bash", "-c"]
    script = argv[3].replace("/127.0.0.1/6333", f"/127.0.0.1/{port}")
    assert script != argv[3]

    def run() -> int:
        return subprocess.run(["bash", "-c", script], timeout=10, check=False).returncode

    assert run() == 0
    status[0] = 503
    assert run() != 0
