"""bibia's own database: what MLflow has no concept of (SQLAlchemy 2 + Alembic)."""

from bibia.db.engine import Database
from bibia.db.models import (
    ApiToken,
    AuditEvent,
    Base,
    DemoSession,
    Organisation,
    ProjectRecord,
    User,
)

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Database",
    "DemoSession",
    "Organisation",
    "ProjectRecord",
    "User",
]
