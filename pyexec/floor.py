"""FloorCounter: the floor of any exec counter at sched_process_exec (one atomic
add to a global per execution, csrc/floor.bpf.c), which make bench measures
pyexec against. The smallest BpfProgram: what a second program takes."""

from __future__ import annotations

from typing import Any

from ._shim import ffi, lib
from .errors import LOAD, Action, check
from .program import BpfProgram


class FloorCounter(BpfProgram):
    """Counts every execution on the host, by nothing: use it in a with block."""

    kind = "FloorCounter"

    def _load(self) -> Any:
        handle = ffi.new("struct pyexec_floor **")
        check(lib.pyexec_floor_load(handle), LOAD)
        return handle[0]

    def _attach(self, handle: Any) -> None:
        check(lib.pyexec_floor_attach(handle), Action("attach to sched_process_exec"))

    _destroy = staticmethod(lib.pyexec_floor_destroy)
    _totals = staticmethod(lib.pyexec_floor_totals)

    @staticmethod
    def _reader_of(handle: Any) -> Any:
        return handle  # its one global is read through the loader

    def executions(self) -> int:
        with self._lock:
            return int(lib.pyexec_floor_executions(self._started()))
