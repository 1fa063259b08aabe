"""Engine, sessions and migrations of bibia's own database."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from domain.errors import DatabaseUnavailable, RegistryUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"

#: What the API and the pages say while bibia's database does not answer.
UNAVAILABLE = (
    "base de données indisponible : le service ne peut pas la joindre pour le moment ; "
    "réessayez dans quelques instants"
)


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """The French 503 for ``exc`` when it (or what caused it) is a database that cannot be reached.

    SQLAlchemy reports a server that is down, restarting or gone mid-statement as an
    ``OperationalError`` or an ``InterfaceError`` (a closed connection), and a pool
    with no connection free for ``pool_timeout`` seconds as a ``TimeoutError``;
    anything else (a constraint, a bug) is not an outage and gets None.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DatabaseUnavailable):
            return current
        if isinstance(current, OperationalError | InterfaceError | PoolTimeout):
            return DatabaseUnavailable(UNAVAILABLE)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


#: Whether this connection's session holds the advisory lock of a key (its two 32-bit halves).
_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid::bigint = (:hi & 4294967295) AND objid::bigint = :lo"
)


def _lock_key(what: str) -> int:
    """The advisory lock key of a name (64 bits of its hash)."""
    return int.from_bytes(hashlib.sha256(f"bibia:{what}".encode()).digest()[:8], "big", signed=True)


class Database:
    """bibia's database: ``session()`` for units of work, ``upgrade()`` for migrations."""

    def __init__(self, url: str, name: str | None = None) -> None:
        """``name``: what PostgreSQL shows as the connections' ``application_name``
        (``pg_stat_activity``: which replica holds a connection or a lock)."""
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        elif name and url.startswith("postgresql"):
            kwargs["connect_args"] = {"application_name": name[:63]}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (idempotent).

        Replicas starting together on a new database migrate one after the other
        (:meth:`exclusive`): the first creates the schema, the others find it current.
        """
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection_url"] = self.url
        try:
            with self.exclusive("migrations"), self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise RegistryUnavailable(f"base de données de bibia injoignable : {exc.orig}") from exc

    @contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Run the block alone among the processes sharing this database; the others wait.

        On PostgreSQL, a session advisory lock (``pg_advisory_lock``) on a connection of
        its own, held for the block and released with it (or when the process dies and its
        connection closes). On SQLite, the embedded single-machine default, an exclusive
        ``flock`` on a file beside the database (an in-memory database needs none).

        Args:
            what: names the work (``migrations``, ``seed``, ...): different names do not wait
                for one another.
        """
        key = _lock_key(what)
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            return
        path = self.engine.url.database if dialect == "sqlite" else None
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.{what}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def try_exclusive(self, what: str) -> Iterator[Callable[[], bool] | None]:
        """Like :meth:`exclusive`, but never waits: ``None`` when another process holds ``what``.

        On PostgreSQL, ``pg_try_advisory_lock`` on a connection of its own, kept for the
        block; on SQLite a non-blocking ``flock``. A process that dies, or whose connection
        the server drops, loses the lock: another one's next try gets it.

        Yields:
            None when another process holds it; else a check, true while this process
            still holds it (false once its connection is gone, e.g. the server restarted).
        """
        key = _lock_key(what)
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            except BaseException:
                conn.close()
                raise

            def held() -> bool:
                try:
                    return bool(conn.scalar(_HELD, {"hi": key >> 32, "lo": key & 0xFFFFFFFF}))
                except SQLAlchemyError:
                    return False

            try:
                yield held if got else None
            finally:
                with contextlib.suppress(SQLAlchemyError):
                    if got:
                        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                with contextlib.suppress(SQLAlchemyError):
                    conn.close()
            return
        path = self.engine.url.database if dialect == "sqlite" else None
        if not path or path == ":memory:":
            yield lambda: True
            return
        with open(f"{path}.{what}.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            try:
                yield lambda: True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            # the server is down or went away: a French 503, not a 500 (pool_pre_ping
            # hands out a fresh connection once it answers again)
            with contextlib.suppress(Exception):
                session.rollback()
            raise DatabaseUnavailable(UNAVAILABLE) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            with contextlib.suppress(OperationalError, InterfaceError):
                session.close()

    def dispose(self) -> None:
        self.engine.dispose()
