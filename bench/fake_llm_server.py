"""Serve the fake OpenAI-compatible server (echo responder) in its own process, so the
benchmarked process pays none of its CPU or GIL time. Prints the base URL, then serves
until killed."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from bot.testing.fake_openai import FakeOpenAI, echo


async def _serve() -> None:
    fake = FakeOpenAI(default=echo, validate=False)
    await fake.start()
    print(fake.base_url, flush=True)
    await asyncio.Event().wait()


class ServerProcess:
    """``with ServerProcess() as url:`` runs this module in a child process."""

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.fake_llm_server"],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(5)


if __name__ == "__main__":
    try:
        asyncio.run(_serve())
    except KeyboardInterrupt:
        pass
