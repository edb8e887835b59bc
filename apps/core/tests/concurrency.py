"""Running code in several threads at once, each with its own database connection (PostgreSQL tests)."""

import threading

from django.db import connections


def run_in_threads(target, count: int) -> list:
    """Start `count` threads together (a barrier), run `target(index)` in each, and return the results;
    any exception in a thread fails the calling test."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results
