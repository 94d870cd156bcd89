"""Start and stop a real Redis Cluster (three masters, no replicas) on free local ports
from ``redis-server --cluster-enabled yes`` and ``redis-cli --cluster create``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """n free ports whose +10000 cluster-bus ports are free as well."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55_000 and port not in ports and _free(port + 10_000):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cli(port: int, *args: str, timeout_s: float = 20.0) -> str:
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                         capture_output=True, text=True, timeout=timeout_s, check=False)
    return out.stdout + out.stderr


@contextmanager
def redis_cluster(workdir: Path, masters: int = 3) -> Iterator[str]:
    """Yields a ``redis+cluster://`` URL; the servers are stopped (and only they) after."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("redis-server and redis-cli are needed for the Redis Cluster test")
    ports = free_ports(masters)
    procs = []
    try:
        for port in ports:
            d = workdir / str(port)
            d.mkdir(parents=True)
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(d / "nodes.conf"), "--cluster-node-timeout", "2000",
                 "--save", "", "--appendonly", "no", "--dir", str(d)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 15
        while any("PONG" not in _cli(p, "ping", timeout_s=2) for p in ports):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        created = _cli(ports[0], "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                       "--cluster-replicas", "0", "--cluster-yes", timeout_s=60)
        assert "All 16384 slots covered" in created, created
        while any("cluster_state:ok" not in _cli(p, "cluster", "info", timeout_s=2) for p in ports):
            assert time.monotonic() < deadline + 30, "the cluster never reached state ok"
            time.sleep(0.1)
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
