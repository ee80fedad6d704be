"""The ingest's writer in a process of its own, so validation and database writes run on a
second core while the ingest's process receives and acknowledges (one GIL each).

The child is a fresh interpreter (``python -m dashboard.ingest_process``, never a fork of a
process that runs threads) in a session of its own, so a Ctrl-C meant for the dashboard
does not reach it; unlike multiprocessing's ``spawn`` it neither re-imports the caller's
main module nor leaves a resource-tracker process behind. It talks over two pipes with
`multiprocessing.connection.Connection` framing: the database URL first (not on the command
line, where ``ps`` would show its password), then ``(batch_id, items)`` batches; it answers
``("ready",)``, then ``("done", batch_id, Outcome)`` once a batch committed (or was
refused) and ``("db_error", kind, text, messages)`` for each failed attempt while it
retries. ``None`` asks it to finish the batches sent before and leave. It never outlives
its parent: it asks the kernel for SIGKILL when the parent thread that started it ends
(``PR_SET_PDEATHSIG``), and a closed pipe or a changed parent pid also ends it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from dashboard.ingest_writer import BatchWriter, Item
from dashboard.store import make_engine
from dashboard.store.organisation import CurrentOrganisation

_PR_SET_PDEATHSIG = 1


class WriterProcess:
    """The parent's handle on one writer child: started once, never restarted (make another).

    ``send`` and ``finish`` may come from any thread, ``recv`` from one; ``recv`` raises
    EOFError once the child is gone, however it ended."""

    def __init__(self, database_url: str, retry_max_s: float) -> None:
        self._sending = threading.Lock()
        batches_in, batches_out = os.pipe()
        results_in, results_out = os.pipe()
        path = os.pathsep.join([p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")])
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "dashboard.ingest_process", str(batches_in),
                 str(results_out), str(os.getpid()), repr(float(retry_max_s))],
                pass_fds=(batches_in, results_out),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)},
                start_new_session=True,
            )  # fmt: skip
        except BaseException:
            for fd in (batches_out, results_in):
                os.close(fd)
            raise
        finally:
            # Only the child holds these ends now, so its death closes the pipes.
            os.close(batches_in)
            os.close(results_out)
        self.pid = self._process.pid
        self._batches = Connection(batches_out, readable=False)
        self._results = Connection(results_in, writable=False)
        with self._sending, contextlib.suppress(OSError):
            self._batches.send(database_url)

    def send(self, batch_id: int, items: Sequence[Item]) -> bool:
        """False when the child is gone (the caller resubmits to the next one)."""
        with self._sending:
            if self._batches.closed:
                return False
            try:
                self._batches.send((batch_id, list(items)))
            except (OSError, ValueError):
                return False
        return True

    def recv(self) -> tuple[Any, ...]:
        try:
            message: tuple[Any, ...] = self._results.recv()
        except OSError as exc:
            raise EOFError(str(exc)) from exc
        return message

    def finish(self) -> None:
        """Ask the child to write what it was sent and leave."""
        with self._sending, contextlib.suppress(OSError, ValueError):
            if not self._batches.closed:
                self._batches.send(None)

    def join(self, timeout_s: float) -> None:
        """Wait for the child; kill it when it does not leave in time."""
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5.0)

    def close(self) -> None:
        """Release the pipes; a send still under way (it fails: the child is gone) ends
        first, so its file descriptor cannot be reused under it."""
        with self._sending:
            self._batches.close()
        self._results.close()

    def how_it_ended(self) -> str:
        try:
            code = self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            return "its pipe closed"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exit code {code}"


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def main(argv: Sequence[str]) -> None:
    """Write batches until told to stop or the parent is gone."""
    batches_fd, results_fd, parent_pid, retry_max_s = argv
    _die_with_parent(int(parent_pid))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process in order
    batches = Connection(int(batches_fd), writable=False)
    results = Connection(int(results_fd), readable=False)
    try:
        database_url = batches.recv()
    except (EOFError, OSError):
        return
    _serve(database_url, float(retry_max_s), batches, results, int(parent_pid))


def _serve(
    database_url: str,
    retry_max_s: float,
    batches: Connection,
    results: Connection,
    parent_pid: int,
) -> None:
    inbox: deque[Any] = deque()

    def wait(seconds: float) -> bool:
        """Sleep between retries while still taking in what the parent sends (it must never
        block on a full pipe); True once asked to stop or the parent is gone."""
        deadline = time.monotonic() + seconds
        while None not in inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if os.getppid() != parent_pid:
                return True
            if batches.poll(min(left, 0.5)):
                try:
                    inbox.append(batches.recv())
                except (EOFError, OSError):
                    return True
        return True

    def on_db_error(exc: Exception, messages: int) -> None:
        text = str(getattr(exc, "orig", None) or exc).strip()[:300]
        results.send(("db_error", type(exc).__name__, text, messages))

    engine = make_engine(database_url)
    writer = BatchWriter(
        engine,
        CurrentOrganisation(engine),
        retry_max_s=retry_max_s,
        on_db_error=on_db_error,
        wait=wait,
        keep_events=False,
    )
    try:
        results.send(("ready",))
        while True:
            message = inbox.popleft() if inbox else batches.recv()
            if message is None:
                break
            batch_id, items = message
            outcome = writer.write(items)
            if outcome is None:
                break
            results.send(("done", batch_id, outcome))
    except (EOFError, BrokenPipeError):
        pass
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
