"""make bench's floor tool: the floor program (pyexec.floor) counting until
SIGTERM, then its count as JSON on stdout."""

import json
import signal
import sys
import threading

from pyexec.floor import FloorCounter

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
with FloorCounter() as floor:
    print("floor: counting", file=sys.stderr, flush=True)
    stop.wait()
    print(json.dumps({"executions": floor.executions()}))
