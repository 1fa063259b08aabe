"""Alembic environment: runs on the connection handed in by ``Database.upgrade``."""

from alembic import context

from bibia.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always driven by Database.upgrade
    raise RuntimeError("run migrations with `bibia db upgrade` (Database.upgrade)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
