"""Alembic environment: migrations run on the connection the server hands over
(``server.db.migrate``), for SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context

from server.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
