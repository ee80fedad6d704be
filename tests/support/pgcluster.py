"""A private PostgreSQL cluster for tests that restart the database.

The machine's server is shared with every other test, so a test that stops PostgreSQL runs
its own: ``initdb`` into a temporary folder, its own port and socket folder, trust auth on
127.0.0.1. PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to
the ``postgres`` user and its commands run through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.support.mqtt import HOST, free_port


def postgres_bin() -> Path | None:
    """The newest installed server's bin folder (Debian layout), None without one."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    return max(
        (b for b in found if b.parts[-2].isdigit()), key=lambda b: int(b.parts[-2]), default=None
    )


class PgCluster:
    """``start``, ``stop`` (fast shutdown: sessions are cut) and ``restart`` at will."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = bin_dir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="liftwatch-pg-"))
        self.data = self.folder / "data"
        self.log_file = self.folder / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL."""
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@{HOST}:{self.port}/{name}"

    def start(self) -> PgCluster:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses={HOST} -c fsync=off "
            "-c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        done = subprocess.run(
            self._command("pg_ctl", "-D", str(self.data), "status"), capture_output=True
        )
        return done.returncode == 0

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            if self.running():
                self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        return command

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(self._command(tool, *args), capture_output=True, cwd=self.folder)
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace")
            raise subprocess.CalledProcessError(done.returncode, tool, out)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
