"""The few SQL spellings that differ between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def greatest(conn: Connection, a: Any, b: Any) -> Any:
    """The larger of two values, the non-NULL one if one is NULL."""
    fn = func.greatest if conn.dialect.name == "postgresql" else func.max
    return func.coalesce(fn(a, b), a, b)


def least(conn: Connection, a: Any, b: Any) -> Any:
    fn = func.least if conn.dialect.name == "postgresql" else func.min
    return func.coalesce(fn(a, b), a, b)
