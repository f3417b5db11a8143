from __future__ import annotations

from alembic import context

from haneul.platform.db.models import Base

connection = context.config.attributes["connection"]
# the platform's schema, or a package's own (its versions folder and version table; no autogenerate)
version_table = context.config.attributes.get("version_table", "alembic_version")
metadata = Base.metadata if version_table == "alembic_version" else None
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  version_table=version_table)
with context.begin_transaction():
    context.run_migrations()
