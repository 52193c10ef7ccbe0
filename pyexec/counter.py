"""ExecCounter: the BPF exec counter as a Python object."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
import warnings
import weakref
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from types import TracebackType
from typing import Any

from ._shim import ffi, lib
from .errors import (LOAD, ArgumentError, ArgumentTypeError, NotPinnedError, PinnedElsewhereError, PyexecError,
                     UnsupportedKernelError, check)
from .kernel import FEATURES, MINIMUM_FIX

DEFAULT_MAX_ENTRIES: int = lib.EXEC_COUNT_DEFAULT_ENTRIES
KERNEL_BTF = "/sys/kernel/btf/vmlinux"
# Memory one entry of max_entries takes, whether used or not: the kernel's
# preallocated element (key, value, bookkeeping and bucket), then a row of the
# buffers a read is decoded from (path, count, truncated, mount namespace).
ENTRY_BYTES = ffi.sizeof("struct exec_key") + 8 + 64 + lib.EXEC_PATH_SIZE + 8 + 1 + 4

# Each choice of key and mode, and its value in struct exec_settings.
_KEY_VALUES = {"resolved": lib.EXEC_KEY_RESOLVED, "invoked": lib.EXEC_KEY_INVOKED}
_MODE_VALUES = {"exec": lib.EXEC_MODE_EXEC, "attempts": lib.EXEC_MODE_ATTEMPTS}
#: What a path is: the file the kernel executed (as /proc/PID/exe names it), or
#: the file name exactly as the caller passed it to exec.
KEYS = tuple(_KEY_VALUES)
#: Marks where a path cut to fit in the kernel's key lost bytes: at the start of
#: a resolved path (which otherwise always starts with "/"), at the end of an
#: invoked name (which is then EXEC_PATH_SIZE - 1 bytes before it).
CUT = "\u2026"
#: What counts: successful executions, or every exec call with its outcome.
MODES = tuple(_MODE_VALUES)
#: Marks a resolved path that is another mount namespace's view, not the host's:
#: "mnt:[4026532290]/usr/bin/true" (as /proc/PID/ns/mnt names that namespace).
FOREIGN = "mnt:[{}]"
#: Of every map, the share (1/ROOT_RESERVE_SHARE) that only root's executions may
#: fill: no other user can make root's new binaries uncounted.
ROOT_RESERVE_SHARE = 8
#: Where pyexec start pins a counter (bpffs).
PIN_DIRECTORY = "/sys/fs/bpf/pyexec"
#: What executions can be counted by, in any combination.
BREAKDOWNS = {
    "path": lib.EXEC_BY_PATH,
    "uid": lib.EXEC_BY_UID,
    "comm": lib.EXEC_BY_COMM,
    "parent": lib.EXEC_BY_PARENT,
    "cgroup": lib.EXEC_BY_CGROUP,
}

# A library stays quiet unless its user configures logging.
logging.getLogger("pyexec").addHandler(logging.NullHandler())
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

    def __sub__(self, earlier: ExecStats) -> ExecStats:
        """What was lost between two readings."""
        return ExecStats(*(now - then for now, then in zip(astuple(self), astuple(earlier))))


@dataclass(frozen=True)
class ExecRecord:
    """The executions of one combination of the fields counted by; the others are None."""

    count: int
    path: str | None = None
    uid: int | None = None
    comm: str | None = None  # the command name after exec
    parent: str | None = None  # the parent's command name
    cgroup: int | None = None  # the cgroup v2 id
    outcome: int = 0  # 0 for an execution, else the errno of a failed exec call
    truncated: bool = False  # the path was cut to fit, and marked so with CUT


class ExecCounter:
    """Counts every successful program execution on the host while started.

    Use it as a context manager (or call start() and close()); snapshot()
    returns {path: executions} since start, records() every breakdown.

    key: "resolved" counts the file executed, with symlinks, relative paths and
    mounts resolved (a #! script counts as its interpreter); "invoked" the
    file name as the caller gave it. mode: "exec" counts successful executions,
    "attempts" every execve/execveat call, a failed one under the name it was
    given and its errno (ExecRecord.outcome). by: the fields to count by.

    Filters, applied in the kernel (what they leave out is never stored):
    uids (real uids), cgroup (a cgroup v2 path: it and all below it), comm (the
    command name after exec), path_prefix (on the key), exclude_self (this
    process and its children; off by default, so a tool counts its own
    subprocesses). debug: bpf_printk each key counted to the kernel's trace pipe.
    avoid: kernel features (pyexec.kernel.FEATURES) not to use even where the
    kernel has them, to test or measure their fallbacks; features tells, once
    started, which ones the loaded program uses.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        key: str = "resolved",
        mode: str = "exec",
        by: tuple[str, ...] = ("path",),
        uids: Iterable[int] = (),
        cgroup: str | None = None,
        comm: str | None = None,
        path_prefix: str | None = None,
        exclude_self: bool = False,
        debug: bool = False,
        avoid: Iterable[str] = (),
    ) -> None:
        _check_types(max_entries=max_entries, key=key, mode=mode, by=by, uids=uids, cgroup=cgroup, comm=comm,
                     path_prefix=path_prefix, exclude_self=exclude_self, debug=debug, avoid=avoid)
        if not 1 <= max_entries <= 2**31 - 1:
            raise ArgumentError("max_entries", f"max_entries must be between 1 and {2**31 - 1}, not {max_entries}")
        _check_memory_for(max_entries)
        if key not in KEYS:
            raise ArgumentError("key", f"key must be one of {', '.join(KEYS)}, not {key!r}")
        if mode not in MODES:
            raise ArgumentError("mode", f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        unknown = [field for field in by if field not in BREAKDOWNS]
        if unknown or not by:
            raise ArgumentError("by", f"by takes one or more of {', '.join(BREAKDOWNS)}, not {by!r}")
        self.max_entries = max_entries
        self.key = key
        self.mode = mode
        self.by = tuple(field for field in BREAKDOWNS if field in by)
        self.uids = tuple(sorted(set(uids)))
        if len(self.uids) > lib.EXEC_UID_FILTER_SIZE or not all(0 <= uid < 2**32 - 1 for uid in self.uids):
            raise ArgumentError("uids", f"uids takes up to {lib.EXEC_UID_FILTER_SIZE} uids, each from 0 to {2**32 - 2}")
        self.cgroup = cgroup
        self._cgroup_id, self._cgroup_level = _cgroup_filter(cgroup)
        self.comm = comm
        self._comm = _bytes_filter("comm", "a command name", comm, lib.EXEC_COMM_SIZE - 1)
        self.path_prefix = path_prefix
        self._path_prefix = _bytes_filter("path_prefix", "a path prefix", path_prefix, lib.EXEC_PATH_SIZE - 1)
        self.exclude_self = exclude_self
        self.debug = debug
        self.avoid = frozenset(avoid)
        if not self.avoid <= FEATURES.keys():
            raise ArgumentError("avoid", f"avoid takes kernel features among {', '.join(FEATURES)}, not {sorted(self.avoid)!r}")
        self.started_at = 0.0  # wall clock (time.time()) when counting started
        self._counter = ffi.NULL  # the loader's handle, when this process loaded the program
        self._reader = ffi.NULL  # what reads the maps: the loader's own, or a pinned counter's
        self._pinned = False  # opened from pins (open_pinned), not loaded here
        self._columns: _Columns | None = None  # allocated on first read
        # One call at a time: reads share the C buffers, and close frees what a read uses.
        self._lock = threading.RLock()
        self._finalizer: weakref.finalize | None = None
        _LIVE.add(self)

    def start(self) -> ExecCounter:
        """Loads the BPF program and attaches it: counting starts here."""
        with self._lock:
            return self._start()

    def _start(self) -> ExecCounter:
        if self._reader:
            raise PyexecError("this ExecCounter is already started")
        if not os.path.exists(KERNEL_BTF):
            raise UnsupportedKernelError(2, f"{KERNEL_BTF} is missing: {MINIMUM_FIX}")
        if self.mode == "attempts":
            from .system import ensure_tracefs  # ctypes, imported only when needed

            ensure_tracefs()  # libbpf finds syscall tracepoints through it
        _sync_libbpf_log_level()
        started_at = time.time()
        settings = ffi.new("struct exec_settings *", {
            "key": _KEY_VALUES[self.key],
            "mode": _MODE_VALUES[self.mode],
            "by": sum(BREAKDOWNS[field] for field in self.by),
            "uid_count": len(self.uids),
            "cgroup": self._cgroup_id,
            "cgroup_level": self._cgroup_level,
            "comm": self._comm,
            "path_prefix": self._path_prefix,
            "path_prefix_len": len(self._path_prefix),
            "exclude_self": os.getpid() if self.exclude_self else 0,
            "debug": self.debug,
            "features": {name: name not in self.avoid for name in FEATURES},
            "started_at": int(started_at * 1e9),
            "root_reserve": self.max_entries // ROOT_RESERVE_SHARE,
        })
        handle = ffi.new("struct pyexec_counter **")
        check(lib.pyexec_counter_load(settings, ffi.new("unsigned int[]", self.uids), self.max_entries, handle), LOAD)
        self._counter = handle[0]
        self._reader = lib.pyexec_counter_reader(self._counter)
        self._finalizer = weakref.finalize(self, _detach_unclosed, self._counter)
        try:
            check(lib.pyexec_counter_attach(self._counter), "attach to sched_process_exec")
        except BaseException:
            self.close()
            raise
        self.started_at = started_at
        return self

    @classmethod
    def open_pinned(cls, directory: str = PIN_DIRECTORY) -> ExecCounter:
        """The counter that pyexec start pinned under directory, to read: its
        settings are the ones it was started with, read from the kernel. close()
        leaves it counting (pyexec stop ends it)."""
        handle = ffi.new("struct pyexec_reader **")
        rc = lib.pyexec_reader_open_pinned(pin_path(directory), handle)
        if rc == -errno.ENOENT:
            raise NotPinnedError(f"no counter is pinned at {directory}: start one with pyexec start")
        if rc == -errno.EPROTO:
            raise PinnedElsewhereError(
                f"{directory} holds a counter pinned by another version of pyexec: stop it with that "
                f"version, or remove {directory}")
        check(rc, f"open the counter pinned at {directory}")
        reader = handle[0]
        try:
            settings = ffi.new("struct exec_settings *")
            lib.pyexec_reader_settings(reader, settings)
            uids = ffi.new("unsigned int[]", lib.EXEC_UID_FILTER_SIZE)
            found = ffi.new("unsigned int *")
            check(lib.pyexec_reader_uids(reader, uids, lib.EXEC_UID_FILTER_SIZE, found), "read the uid_filter map")
            counter = cls(
                lib.pyexec_reader_max_entries(reader),
                key=_name_of(_KEY_VALUES, settings.key),
                mode=_name_of(_MODE_VALUES, settings.mode),
                by=tuple(field for field, bit in BREAKDOWNS.items() if settings.by & bit),
                uids=list(uids[0 : found[0]]),
                comm=os.fsdecode(ffi.string(settings.comm)) or None,
                path_prefix=os.fsdecode(ffi.string(settings.path_prefix)) or None,
                debug=bool(settings.debug),
            )
        except BaseException:
            lib.pyexec_reader_close(reader)
            raise
        if settings.cgroup:  # named as now, if it still exists
            from .names import cgroup_names

            path = cgroup_names().path(settings.cgroup)
            counter.cgroup = path if path is not None else str(settings.cgroup)
            counter._cgroup_id, counter._cgroup_level = settings.cgroup, settings.cgroup_level
        counter.exclude_self = bool(settings.exclude_self)
        counter.started_at = settings.started_at / 1e9
        counter._reader, counter._pinned = reader, True
        counter._finalizer = weakref.finalize(counter, lib.pyexec_reader_close, reader)
        return counter

    def pin(self, directory: str) -> None:
        """Pins this started counter's maps and links under directory (on bpffs):
        the kernel goes on counting after this process ends (pyexec start)."""
        with self._lock:
            if not self._counter:
                raise PyexecError("only a counter this process started can be pinned")
            rc = lib.pyexec_counter_pin(self._counter, os.fsencode(directory))
            if rc == -errno.EINVAL and self.mode == "attempts":  # a perf event's link, not a bpf_link
                raise UnsupportedKernelError(errno.EINVAL, "this kernel cannot pin the links of syscall tracepoints "
                                             "(bpf_link for perf events, Linux 5.15): start with --mode exec, or "
                                             "count attempts with pyexec run --mode attempts")
            check(rc, f"pin the counter at {directory}")

    @property
    def map_id(self) -> int:
        """The kernel's id of this counter's exec_count map: it tells one counter from another."""
        found = ffi.new("unsigned int *")
        with self._lock:
            check(lib.pyexec_reader_map_id(self._started(), found), "read the exec_count map's id")
        return found[0]

    @property
    def filters(self) -> dict[str, Any]:
        """The filters as given (None, or [] for uids, where not set): what documents record."""
        return {"uids": list(self.uids), "cgroup": self.cgroup, "comm": self.comm,
                "path_prefix": self.path_prefix, "exclude_self": self.exclude_self}

    @property
    def features(self) -> dict[str, bool]:
        """The kernel features (pyexec.kernel.FEATURES) the loaded program uses:
        those its settings need that the kernel has; the others are False."""
        features = ffi.new("struct exec_features *")
        with self._lock:
            self._started()
            if not self._counter:
                raise PyexecError("features are known to the process that loaded the counter")
            lib.pyexec_counter_features(self._counter, features)
        return {name: bool(getattr(features, name)) for name in FEATURES}

    def close(self) -> None:
        """Detaches and unloads; the counts are gone. Safe to call twice, and
        from any thread: it waits for a read under way. A pinned counter
        (open_pinned) is only let go of: it goes on counting."""
        with self._lock:
            counter, reader, self._counter, self._reader = self._counter, self._reader, ffi.NULL, ffi.NULL
            if self._finalizer is not None:
                self._finalizer.detach()
            if counter:
                lib.pyexec_counter_destroy(counter)  # its reader with it
            elif reader:
                lib.pyexec_reader_close(reader)

    def __enter__(self) -> ExecCounter:
        """Starts counting; a pinned counter (open_pinned) counts already."""
        return self if self._pinned else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _started(self) -> object:
        """The reader: this counter's own, or a pinned one's."""
        if not self._reader:
            raise PyexecError("this ExecCounter is not started: use it in a with block or call start()")
        return self._reader

    def snapshot(self) -> dict[str, int]:
        """Executions (attempts, in that mode) per path so far; paths decoded
        with os.fsdecode (lossless)."""
        if "path" not in self.by:
            raise PyexecError("snapshot() counts by path: count by path too, or use records()")
        with self._lock:
            columns = self._read()
            if self.by == ("path",) and self.mode == "exec":
                return dict(zip(columns.paths(), columns.counts()))
            totals: dict[str, int] = {}
            for path, count in zip(columns.paths(), columns.counts()):
                totals[path] = totals.get(path, 0) + count
            return totals

    def records(self) -> list[ExecRecord]:
        """Executions per combination of the fields counted by, so far."""
        fields = self.columns()
        counts = fields.pop("count")
        return [
            ExecRecord(count, **{field: values[row] for field, values in fields.items()})
            for row, count in enumerate(counts)
        ]

    def columns(self) -> dict[str, list]:
        """What records() returns, as columns ("count", the fields counted by,
        "truncated" with the path, "outcome" in attempts mode): one list each,
        row for row. Quicker to build when there are many keys."""
        with self._lock:
            columns = self._read()
            fields = {"count": columns.counts(), **{field: columns.column(field) for field in self.by}}
            if "path" in self.by:
                fields["truncated"] = [bool(cut) for cut in columns.column("truncated")]
            if self.mode == "attempts":
                fields["outcome"] = columns.column("outcome")
        return fields

    def _read(self) -> _Columns:
        reader = self._started()
        if self._columns is None:
            wanted = self.by + (("outcome",) if self.mode == "attempts" else ())
            try:
                self._columns = _Columns(self.max_entries, wanted, cut_at_start=self.key == "resolved")
            except MemoryError:
                raise PyexecError(f"no memory for the buffers to read {self.max_entries} entries: "
                                  "choose a smaller max_entries") from None
        check(lib.pyexec_reader_snapshot(reader, self._columns.snapshot), "read the exec_count map")
        return self._columns

    def program_stats(self) -> tuple[int, int] | None:
        """(run time in ns, runs) of the attached BPF programs, summed; None while
        the kernel does not keep them (kernel.bpf_stats_enabled = 0)."""
        with self._lock:
            self._started()  # a closed counter raises, as every read does
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled") as enabled:
                if enabled.read().strip() == "0":
                    return None
        except OSError:
            return None
        run_time, runs = ffi.new("unsigned long long *"), ffi.new("unsigned long long *")
        with self._lock:
            check(lib.pyexec_reader_program_stats(self._started(), run_time, runs), "read the BPF programs' stats")
        return run_time[0], runs[0]

    def stats(self) -> ExecStats:
        """What was dropped, truncated or unreadable so far, summed over all CPUs."""
        stats = ffi.new("struct exec_stats *")
        with self._lock:
            check(lib.pyexec_reader_stats(self._started(), stats), "read the exec_stats map")
        return ExecStats(dropped=stats.dropped, truncated=stats.truncated, errors=stats.errors)


# What each argument of ExecCounter takes: a type, or for collections ("of", type).
_ARGUMENT_TYPES: dict[str, Any] = {
    "max_entries": int, "key": str, "mode": str, "by": ("of", str), "uids": ("of", int), "cgroup": (str, type(None)),
    "comm": (str, type(None)), "path_prefix": (str, type(None)), "exclude_self": bool, "debug": bool,
    "avoid": ("of", str),
}


def _check_types(**arguments: Any) -> None:
    """Each argument of its type (bool is no int here, a str no collection of str)."""
    for name, value in arguments.items():
        wanted = _ARGUMENT_TYPES[name]
        if isinstance(wanted, tuple) and wanted[0] == "of":
            ok = isinstance(value, (list, tuple, set, frozenset)) and all(
                isinstance(item, wanted[1]) and not isinstance(item, bool) for item in value)
            what = f"a list, tuple or set of {wanted[1].__name__}"
        else:
            ok = isinstance(value, wanted) and (wanted is bool or not isinstance(value, bool))
            what = " or ".join("None" if kind is type(None) else kind.__name__ for kind in (
                wanted if isinstance(wanted, tuple) else (wanted,)))
        if not ok:
            raise ArgumentTypeError(name, f"{name} takes {what}, not {value!r}")


def pinned_map_id(directory: str = PIN_DIRECTORY) -> int | None:
    """The id of the exec_count map pinned under directory now; None if none is."""
    found = ffi.new("unsigned int *")
    rc = lib.pyexec_pinned_map_id(pin_path(directory), found)
    if rc in (-errno.ENOENT, -errno.ENOTDIR):
        return None
    check(rc, f"open the counter pinned at {directory}")
    return found[0]


def pin_path(directory: str) -> bytes:
    """A pin directory for C: a NUL would end it early, so a different directory would be opened."""
    encoded = os.fsencode(directory)
    if b"\0" in encoded or not encoded:
        raise ArgumentError("directory", f"a pin directory is a path without NUL, not {directory!r}")
    return encoded


# The counters alive in this process: a child forked while one of them was being
# read gets its lock anew, not held for ever by a thread the child does not have.
_LIVE: weakref.WeakSet[ExecCounter] = weakref.WeakSet()


def _new_locks_after_fork() -> None:
    for counter in list(_LIVE):
        counter._lock = threading.RLock()


os.register_at_fork(after_in_child=_new_locks_after_fork)


def _name_of(values: dict[str, int], value: int) -> str:
    return next((name for name, known in values.items() if known == value), str(value))


def _detach_unclosed(counter: object) -> None:
    """An ExecCounter collected (or left at exit) while started: detached now."""
    warnings.warn("an ExecCounter was not closed: its BPF program stayed attached until it was "
                  "collected; use it in a with block or call close()", ResourceWarning, stacklevel=2)
    lib.pyexec_counter_destroy(counter)


def _check_memory_for(max_entries: int) -> None:
    """Refuses a map so large that the kernel would lock most of the memory up front."""
    if max_entries <= DEFAULT_MAX_ENTRIES:
        return
    needed = max_entries * ENTRY_BYTES
    with open("/proc/meminfo") as meminfo:
        available = next((int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:")), None)
    if available is not None and needed > available // 2:
        raise ArgumentError(
            "max_entries", f"max_entries={max_entries} needs about {needed / 2**30:.1f} GiB (the kernel's map is allocated "
            f"whole, and the buffers to read it), over half of the {available / 2**30:.1f} GiB available: choose fewer"
        )


def _bytes_filter(argument: str, what: str, value: str | None, longest: int) -> bytes:
    if value is None:
        return b""
    encoded = os.fsencode(value)
    if not 1 <= len(encoded) <= longest or b"\0" in encoded:
        raise ArgumentError(argument, f"{what} is 1 to {longest} bytes without NUL, not {value!r}")
    return encoded


def _cgroup_filter(path: str | None) -> tuple[int, int]:
    """(id, depth) of a cgroup v2 path, as /proc/PID/cgroup writes it or under its mount."""
    if path is None:
        return 0, 0
    if not path:
        raise ArgumentError("cgroup", "an empty cgroup path filters nothing: name one, e.g. /system.slice/cron.service")
    from .names import cgroup_names  # re and pwd, imported only when needed

    names = cgroup_names()
    relative = names.relative(path)
    cgroup_id = names.id_of(relative) if relative is not None else None
    if relative is None or cgroup_id is None:
        raise ArgumentError("cgroup", f"no such cgroup v2: {path!r}; name it as /proc/PID/cgroup does, e.g. /system.slice/cron.service")
    return cgroup_id, len([part for part in relative.split("/") if part])


class _Columns:
    """The buffers a C snapshot is written to, and their decoding."""

    def __init__(self, capacity: int, by: tuple[str, ...], cut_at_start: bool) -> None:
        def column(field: str, ctype: str, size: int) -> object:
            return ffi.new(f"{ctype}[]", size) if field in by else ffi.NULL

        self._buffers = {
            "paths": ffi.new("char[]", capacity * lib.EXEC_PATH_SIZE),
            "counts": ffi.new("unsigned long long[]", capacity),
            "uids": column("uid", "unsigned int", capacity),
            "comms": column("comm", "char", capacity * lib.EXEC_COMM_SIZE),
            "parents": column("parent", "char", capacity * lib.EXEC_COMM_SIZE),
            "cgroups": column("cgroup", "unsigned long long", capacity),
            "outcomes": column("outcome", "int", capacity),
            "truncated": column("path", "unsigned char", capacity),
            "mnt_ns": column("path", "unsigned int", capacity),
        }
        self.snapshot = ffi.new("struct pyexec_snapshot *", {"capacity": capacity, **self._buffers})
        self._cut_at_start = cut_at_start
        self._last_raw, self._last_paths = b"", list[str]()

    def counts(self) -> list[int]:
        return ffi.unpack(self._buffers["counts"], self.snapshot.found)

    def paths(self) -> list[str]:
        cuts = ffi.buffer(self._buffers["truncated"], self.snapshot.found)[:]
        namespaces = ffi.buffer(self._buffers["mnt_ns"], 4 * self.snapshot.found)[:]
        raw = ffi.buffer(self._buffers["paths"], self.snapshot.paths_size)[:] + cuts + namespaces
        # The same keys in the same order, as between most reads of a busy map:
        # the strings made last time serve again (their hashes already known).
        if raw != self._last_raw:
            # One decode for all paths: fsdecode is lossless, and a path never holds a NUL.
            paths = os.fsdecode(raw[: self.snapshot.paths_size]).split("\0")[:-1]
            if any(cuts):
                for row in (row for row, cut in enumerate(cuts) if cut):
                    paths[row] = CUT + paths[row] if self._cut_at_start else paths[row] + CUT
            if any(namespaces):
                for row, ns in enumerate(ffi.unpack(self._buffers["mnt_ns"], self.snapshot.found)):
                    if ns:
                        paths[row] = FOREIGN.format(ns) + paths[row]
            self._last_raw, self._last_paths = raw, paths
        return self._last_paths

    def column(self, field: str) -> list:
        found = self.snapshot.found
        if field == "path":
            return self.paths()
        if field in ("uid", "cgroup", "outcome"):
            return ffi.unpack(self._buffers[field + "s"], found)
        if field == "truncated":
            return ffi.unpack(self._buffers[field], found)
        size = lib.EXEC_COMM_SIZE
        raw = ffi.buffer(self._buffers[field + "s"], found * size)[:]
        return [os.fsdecode(raw[at : at + size].split(b"\0", 1)[0]) for at in range(0, len(raw), size)]
