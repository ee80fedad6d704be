"""The migrations build exactly the schema the code declares, on both databases.

``open_store`` creates a database by running every Alembic revision; the code reads and
writes through ``schema.metadata``. A revision that forgets a column, an index or a type
would only show on a user's database, so the two are compared here.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from dashboard.store import alembic_config, open_store, schema


def test_migrated_database_matches_the_declared_schema(database_url: str) -> None:
    store = open_store(database_url)
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, schema.metadata)
    finally:
        store.close()
    assert differences == []


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    open_store(database_url).close()
    store = open_store(database_url)  # a restart runs `upgrade head` again
    try:
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == _head()
    finally:
        store.close()
