"""ExecCounter: the BPF exec counter as a Python object."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from types import TracebackType

from ._shim import ffi, lib
from .errors import KERNEL_FIX, PyexecError, UnsupportedKernelError, check

DEFAULT_MAX_ENTRIES: int = lib.EXEC_COUNT_DEFAULT_ENTRIES
KERNEL_BTF = "/sys/kernel/btf/vmlinux"

libbpf_logger = logging.getLogger("pyexec.libbpf")
_LIBBPF_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)  # libbpf's 0, 1, 2


@ffi.def_extern()
def pyexec_libbpf_log(level: int, message: object) -> None:
    text = ffi.string(message).decode("utf-8", "backslashreplace")
    libbpf_logger.log(_LIBBPF_LEVELS[min(level, 2)], "%s", text.removeprefix("libbpf: "))


def _sync_libbpf_log_level() -> None:
    """Lets through, and only formats, the libbpf messages the logger would show."""
    effective = libbpf_logger.getEffectiveLevel()
    lib.pyexec_set_log_level(sum(effective <= level for level in _LIBBPF_LEVELS) - 1)


def libbpf_version() -> str:
    """The version of the libbpf linked into pyexec, e.g. "v1.5"."""
    return ffi.string(lib.pyexec_libbpf_version()).decode()


@dataclass(frozen=True)
class ExecStats:
    """Executions the kernel side could not count exactly, since it started."""

    dropped: int  # not counted: the map was full
    truncated: int  # counted under a path cut to 255 bytes
    errors: int  # not counted: the file name could not be read


class ExecCounter:
    """Counts every successful program execution on the host while started.

    Use it as a context manager (or call start() and close()); snapshot()
    returns {path: executions} since start.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if not 1 <= max_entries <= 2**31 - 1:
            raise ValueError(f"max_entries must be between 1 and {2**31 - 1}, not {max_entries}")
        self.max_entries = max_entries
        self._counter = ffi.NULL
        self._snapshot = None  # the C snapshot's columns, allocated on first use

    def start(self) -> ExecCounter:
        """Loads the BPF program and attaches it: counting starts here."""
        if self._counter:
            raise PyexecError("this ExecCounter is already started")
        if not os.path.exists(KERNEL_BTF):
            raise UnsupportedKernelError(2, f"{KERNEL_BTF} is missing: {KERNEL_FIX}")
        _sync_libbpf_log_level()
        config = ffi.new("struct pyexec_config *", {"max_entries": self.max_entries})
        handle = ffi.new("struct pyexec_counter **")
        check(lib.pyexec_counter_load(config, handle), "load the BPF program")
        self._counter = handle[0]
        try:
            check(lib.pyexec_counter_attach(self._counter), "attach to sched_process_exec")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Detaches and unloads; the counts are gone. Safe to call twice."""
        counter, self._counter = self._counter, ffi.NULL
        lib.pyexec_counter_destroy(counter)

    def __enter__(self) -> ExecCounter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _started(self) -> object:
        if not self._counter:
            raise PyexecError("this ExecCounter is not started: use it in a with block or call start()")
        return self._counter

    def snapshot(self) -> dict[str, int]:
        """Executions per path so far; paths decoded with os.fsdecode (lossless)."""
        counter = self._started()
        if self._snapshot is None:
            self._snapshot = _Columns(self.max_entries)
        columns = self._snapshot
        check(lib.pyexec_counter_snapshot(counter, columns.snapshot), "read the exec_count map")
        found, size = columns.snapshot.found, columns.snapshot.paths_size
        # One decode for all paths: fsdecode is lossless, and a path never holds a NUL.
        paths = os.fsdecode(ffi.buffer(columns.paths, size)[:]).split("\0")[:-1]
        return dict(zip(paths, ffi.unpack(columns.counts, found)))

    def stats(self) -> ExecStats:
        """What was dropped, truncated or unreadable so far, summed over all CPUs."""
        stats = ffi.new("struct exec_stats *")
        check(lib.pyexec_counter_stats(self._started(), stats), "read the exec_stats map")
        return ExecStats(dropped=stats.dropped, truncated=stats.truncated, errors=stats.errors)


class _Columns:
    """The buffers a C snapshot is written to, kept alive together."""

    def __init__(self, capacity: int) -> None:
        self.paths = ffi.new("char[]", capacity * lib.EXEC_PATH_SIZE)
        self.counts = ffi.new("unsigned long long[]", capacity)
        self.snapshot = ffi.new(
            "struct pyexec_snapshot *",
            {"capacity": capacity, "paths": self.paths, "counts": self.counts},
        )
