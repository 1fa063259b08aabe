"""``Database.exclusive``: work that must run once across replicas waits its turn, on both backends."""

from __future__ import annotations

import threading
import time

import pytest


def test_blocks_of_the_same_name_run_one_at_a_time_and_other_names_do_not_wait(db) -> None:
    inside: list[str] = []
    most: list[int] = []

    def work(name: str) -> None:
        with db.exclusive(name):
            inside.append(name)
            most.append(inside.count(name))
            time.sleep(0.2)
            inside.remove(name)

    threads = [threading.Thread(target=work, args=("essai",)) for _ in range(3)]
    threads.append(threading.Thread(target=work, args=("autre",)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most and max(most) == 1  # never two blocks of one name at once
    assert len(most) == 4


def test_a_lock_is_released_when_its_block_fails(db) -> None:
    try:
        with db.exclusive("echec"):
            raise RuntimeError("panne")
    except RuntimeError:
        pass
    done = threading.Event()

    def again() -> None:
        with db.exclusive("echec"):
            done.set()

    thread = threading.Thread(target=again)
    thread.start()
    thread.join(timeout=10)
    assert done.is_set()


def test_try_exclusive_never_waits_one_holder_at_a_time(db) -> None:
    with db.try_exclusive("faucheur") as first:
        assert first is not None and first()
        with db.try_exclusive("faucheur") as second:
            assert second is None  # held elsewhere: skipped, not waited for
        with db.try_exclusive("autre-nom") as other:
            assert other is not None
    with db.try_exclusive("faucheur") as again:
        assert again is not None and again()


# PostgreSQL only: on SQLite the lock is this process's file lock, there is no connection to lose.
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_holder_whose_connection_is_dropped_loses_the_lock(db) -> None:
    from sqlalchemy import text

    with db.try_exclusive("chef") as held:
        assert held is not None and held()
        with db.engine.connect() as conn:  # the server drops the holder (as a restart would)
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
            conn.commit()
        assert not held()
        with db.try_exclusive("chef") as successor:
            assert successor is not None and successor()
