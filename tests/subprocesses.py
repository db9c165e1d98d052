"""Run ``python -m pargs ...`` as a user would, in a subprocess, safely next to other such runs.

Multi-process runs need a rendezvous port. Left alone, Lightning binds port 0 and releases it: an
ephemeral port, which under ``pytest -n 2`` the gloo connections of another test's processes can
take before this run's TCP store binds it again ("address already in use", about one suite run in
ten). Each run here gets ``MASTER_PORT`` from below the kernel's ephemeral range instead, where only
an explicit bind can land.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A port that is free now and outside the ephemeral range (so no outgoing connection can take it)."""
    low = int(_EPHEMERAL.read_text().split()[0]) if _EPHEMERAL.exists() else 32768
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(low // 2, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in [{low // 2}, {low})")


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
        MASTER_PORT=str(free_port()),
    )


def run_pargs(*args: str, timeout: float = 600, preexec_fn=None, cwd=None) -> subprocess.CompletedProcess:
    """``python -m pargs ARGS`` to completion; ``preexec_fn`` runs in the child before it starts; ``cwd``: the
    directory it runs in (``-m`` puts it first on the module search path, as it does for a user)."""
    return subprocess.run(
        [sys.executable, "-m", "pargs", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        preexec_fn=preexec_fn,
        cwd=cwd,
    )


def start_pargs(*args: str) -> subprocess.Popen:
    """``python -m pargs ARGS`` started, its stdout and stderr piped (text): the caller waits for it."""
    return subprocess.Popen(
        [sys.executable, "-m", "pargs", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )


def run_shell(script: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``bash -c SCRIPT`` to completion, with ``$PY`` the Python that runs the tests (``$PY -m pargs ...``)."""
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=dict(_env(), PY=sys.executable), timeout=timeout
    )
