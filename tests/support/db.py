"""Real databases for tests: a SQLite file per test, a fresh PostgreSQL database per test.

PostgreSQL is found at ``LIFTWATCH_TEST_POSTGRES`` (default: the local server as user
postgres). Each test gets its own database, created from the server and dropped after, so
tests never see each other's rows. Without a reachable server the test is skipped, except
under CI (``CI`` set), where `.ci/run` starts one and a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("LIFTWATCH_TEST_POSTGRES", DEFAULT_SERVER)


def server_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(server_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"{server_url()}: {exc}".strip()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new empty database on the server; yields its SQLAlchemy URL, drops it after."""
    name = f"liftwatch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
