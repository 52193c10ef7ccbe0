"""The time pyexec takes to load and attach its counter in the running kernel:
the median of a few loads of each key, as JSON. bench/load-times.sh runs it in
each kernel of the matrix, for this tree and for a baseline commit."""

import json
import statistics
import sys
import time

from pyexec import ExecCounter


def load_seconds(key: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with ExecCounter(key=key):
            times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(json.dumps({key: load_seconds(key, rounds) for key in ("resolved", "invoked")}, separators=(",", ":")))
