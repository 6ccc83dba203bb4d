"""Alembic environment: runs on the connection netcon hands over."""

from alembic import context

from core.store import schema

schema.add_partial_indexes()
connection = context.config.attributes.get("connection")
context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
