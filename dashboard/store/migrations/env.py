"""Alembic environment: runs on the connection `dashboard.store.migrate` hands it."""

from __future__ import annotations

from alembic import context

from dashboard.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `liftwatch-dashboard migrate` (dashboard.store)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
