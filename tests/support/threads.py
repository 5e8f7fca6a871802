"""Racing threads: start several callers together, as concurrent requests would."""

from __future__ import annotations

import threading
import time


def run_in_threads(count: int, target, *, stagger_s: float = 0.0) -> list:
    """Start `count` threads on `target(index)` together (thread i after i x `stagger_s`);
    return their results (or errors)."""
    from django.db import connection

    barrier = threading.Barrier(count)
    results: list = [None] * count

    def main(index: int) -> None:
        try:
            barrier.wait()
            time.sleep(index * stagger_s)
            results[index] = target(index)
        except BaseException as error:  # surfaced to the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
