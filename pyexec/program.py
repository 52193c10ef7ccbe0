"""A BPF program as a Python object: what every program of pyexec's shares,
whichever it is (the exec counter now; another is a subclass). Its lifecycle
(start, close, a with block, a finalizer for one never closed), the lock its
calls take turns on, pinning, and libbpf's log."""

from __future__ import annotations

import logging
import os
import threading
import warnings
import weakref
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from ._shim import ffi, lib
from .errors import Action, ArgumentError, PyexecError, check

KERNEL_BTF = "/sys/kernel/btf/vmlinux"

# A library stays quiet unless its user configures logging.
logging.getLogger("pyexec").addHandler(logging.NullHandler())
libbpf_logger = logging.getLogger("pyexec.libbpf")
_LIBBPF_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)  # libbpf's 0, 1, 2


@ffi.def_extern()
def pyexec_libbpf_log(level: int, message: Any) -> None:
    text = ffi.string(message).decode("utf-8", "backslashreplace")
    libbpf_logger.log(_LIBBPF_LEVELS[min(level, 2)], "%s", text.removeprefix("libbpf: "))


def sync_libbpf_log_level() -> None:
    """Lets through, and only formats, the libbpf messages the logger would show."""
    effective = libbpf_logger.getEffectiveLevel()
    lib.pyexec_set_log_level(sum(effective <= level for level in _LIBBPF_LEVELS) - 1)


def libbpf_version() -> str:
    """The version of the libbpf linked into pyexec, e.g. "v1.5"."""
    return str(ffi.string(lib.pyexec_libbpf_version()).decode())


def pin_path(directory: str) -> bytes:
    """A pin directory for C: a NUL would end it early, so a different directory would be opened."""
    encoded = os.fsencode(directory)
    if b"\0" in encoded or not encoded:
        raise ArgumentError("directory", f"a pin directory is a path without NUL, not {directory!r}")
    return encoded


Self = TypeVar("Self", bound="BpfProgram")


class BpfProgram:
    """A BPF program this process loads (start) or one pinned by another (a
    subclass's open_pinned), read through a reader either way. Subclasses name
    their C functions; their calls run under self._lock, one at a time: reads
    share C buffers, and close frees what a read uses."""

    #: What the kind of program is called in messages ("ExecCounter").
    kind: ClassVar[str] = "BPF program"

    def __init__(self) -> None:
        self._handle: Any = ffi.NULL  # the loader's, when this process loaded the program
        self._reader: Any = ffi.NULL  # what reads its maps: the loader's own, or a pinned one's
        self._pinned = False  # opened from pins, not loaded here
        self._lock = threading.RLock()
        self._finalizer: weakref.finalize | None = None
        _LIVE.add(self)

    # What a subclass provides: load (returns the loader's handle), and its C functions.
    def _load(self) -> Any:
        raise NotImplementedError

    def _attach(self, handle: Any) -> None:
        raise NotImplementedError

    @staticmethod
    def _destroy(handle: Any) -> None:
        raise NotImplementedError

    @staticmethod
    def _reader_of(handle: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _close_reader(reader: Any) -> None:
        raise NotImplementedError

    def _pin(self, handle: Any, directory: bytes) -> None:
        raise NotImplementedError

    @staticmethod
    def _totals(reader: Any, out: Any) -> int:
        raise NotImplementedError

    def start(self: Self) -> Self:
        """Loads the BPF program and attaches it."""
        with self._lock:
            if self._reader:
                raise PyexecError(f"this {self.kind} is already started")
            if not os.path.exists(KERNEL_BTF):
                from .errors import UnsupportedKernelError
                from .kernel import MINIMUM_FIX

                raise UnsupportedKernelError(2, f"{KERNEL_BTF} is missing: {MINIMUM_FIX}")
            sync_libbpf_log_level()
            handle = self._load()
            self._handle, self._reader = handle, self._reader_of(handle)
            self._finalizer = weakref.finalize(self, _destroy_unclosed, self.kind, type(self)._destroy, handle)
            try:
                self._attach(handle)
            except BaseException:
                self.close()
                raise
            return self

    def _opened(self, reader: Any) -> None:
        """Takes a pinned program's reader, which close() lets go of."""
        self._reader, self._pinned = reader, True
        self._finalizer = weakref.finalize(self, type(self)._close_reader, reader)

    def pin(self, directory: str) -> None:
        """Pins this started program's maps and links under directory (on bpffs):
        the kernel goes on running it after this process ends."""
        with self._lock:
            if not self._handle:
                raise PyexecError(f"only a {self.kind} this process started can be pinned")
            self._pin(self._handle, pin_path(directory))

    def run_time(self) -> tuple[int, int] | None:
        """(run time in ns, runs) of the attached BPF programs, summed; None while
        the kernel does not keep them (kernel.bpf_stats_enabled = 0)."""
        with self._lock:
            self._started()  # a closed program raises, as every read does
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled") as enabled:
                if enabled.read().strip() == "0":
                    return None
        except OSError:
            return None
        totals = ffi.new("struct pyexec_program_totals *")
        with self._lock:
            check(self._totals(self._started(), totals), Action("read the BPF programs' run time"))
        return int(totals.run_time_ns), int(totals.run_count)

    def close(self) -> None:
        """Detaches and unloads. Safe to call twice, and from any thread: it waits
        for a read under way. A pinned program is only let go of: it goes on."""
        with self._lock:
            handle, reader, self._handle, self._reader = self._handle, self._reader, ffi.NULL, ffi.NULL
            if self._finalizer is not None:
                self._finalizer.detach()
            if handle:
                self._destroy(handle)  # its reader with it
            elif reader:
                self._close_reader(reader)

    def __enter__(self: Self) -> Self:
        """Starts; a pinned program runs already."""
        return self if self._pinned else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _started(self) -> Any:
        """The reader: this program's own, or a pinned one's."""
        if not self._reader:
            raise PyexecError(f"this {self.kind} is not started: use it in a with block or call start()")
        return self._reader


# The programs alive in this process: a child forked while one of them was being
# read gets its lock anew, not held for ever by a thread the child does not have.
_LIVE: weakref.WeakSet[BpfProgram] = weakref.WeakSet()


def _new_locks_after_fork() -> None:
    for program in list(_LIVE):
        program._lock = threading.RLock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


def _destroy_unclosed(kind: str, destroy: Any, handle: Any) -> None:
    """A program collected (or left at exit) while started: detached now."""
    warnings.warn(f"{kind} not closed: its BPF program stayed attached until it was "
                  "collected; use it in a with block or call close()", ResourceWarning, stacklevel=2)
    destroy(handle)
