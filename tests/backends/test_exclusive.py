"""``Database.exclusive``: work that must run once across replicas waits its turn, on both backends."""

from __future__ import annotations

import threading
import time


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
