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

    @staticmethod
    def _reader_of(handle: Any) -> Any:
        return handle  # its one global is read through the loader

    def executions(self) -> int:
        with self._lock:
            return int(lib.pyexec_floor_executions(self._started()))

    def run_time(self) -> tuple[int, int]:
        """(run time in ns, runs) of the program, while kernel.bpf_stats_enabled is on."""
        run_time, runs = ffi.new("unsigned long long *"), ffi.new("unsigned long long *")
        with self._lock:
            check(lib.pyexec_floor_run_time(self._started(), run_time, runs), Action("read the program's run time"))
        return int(run_time[0]), int(runs[0])
