"""The dashboard's database: SQLite (WAL) file by default, PostgreSQL by URL.

`open_store` creates the engine and brings the schema to the newest Alembic revision, so a
fresh install and an upgrade take the same path. Everything that writes goes through the
small modules beside this one (`lifts`, `cameras`, `organisation`), each a plain function
over a connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError

from dashboard.store import schema

__all__ = ["Store", "StoreError", "open_store"]


class StoreError(RuntimeError):
    """The database cannot be opened or migrated; the message says which and why."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config() -> Config:
    """Alembic's view of the migrations shipped in this package (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", "dashboard.store:migrations")
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision (idempotent)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@dataclass
class Store:
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def events_stored(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.lifts)).scalar_one())

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Connect (and by default migrate); raises StoreError naming the database."""
    engine = make_engine(url)
    try:
        if upgrade:
            migrate(engine)
        else:
            with engine.connect() as conn:
                conn.execute(select(1))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(
            f"database {engine.url.render_as_string()}: {exc.__class__.__name__}: "
            f"{getattr(exc, 'orig', None) or exc}"
        ) from exc
    return Store(engine)
