"""Child processes of the demo that cannot outlive it, and free ports for its servers."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((HOST, port)) == 0


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the demo dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: Sequence[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own process group (a terminal's Ctrl-C reaches the demo only, which
    stops its children in order), output to ``log``, tied to the demo's life."""
    out: IO[bytes] = log.open("ab")
    try:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        out.close()


def stop_all(
    processes: Sequence[subprocess.Popen[bytes]],
    timeout_s: float,
    sig: signal.Signals = signal.SIGTERM,
) -> list[subprocess.Popen[bytes]]:
    """Signal all, wait together up to ``timeout_s``, kill the rest; returns those killed."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(sig)
    deadline = time.monotonic() + timeout_s
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.0, deadline - time.monotonic()))
    killed = [p for p in processes if p.poll() is None]
    for p in killed:
        p.kill()
        p.wait()
    return killed
