"""Replicas behind a reverse proxy (:mod:`tests.scale.cluster`): PostgreSQL's fixture from tests/backends."""

from tests.backends.conftest import postgres_server

__all__ = ["postgres_server"]
