"""The metadata database: engine set-up (SQLite WAL by default), migrations, tables."""

from haneul.platform.db.engine import make_engine, migrate, version_table
from haneul.platform.db.models import Base, Checkpoint, MetricChunk, MetricKey, Session, Team, User

__all__ = ["Base", "Checkpoint", "MetricChunk", "MetricKey", "Session", "Team", "User", "make_engine", "migrate",
           "version_table"]
