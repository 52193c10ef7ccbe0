"""ExecCounter: the BPF exec counter (csrc/execcount.bpf.c) as a Python object."""

from __future__ import annotations

import errno
import itertools
import os
import time
from typing import Any

from . import _contract as C
from ._shim import ffi, lib
from .errors import LOAD, Action, ArgumentError, ArgumentTypeError, NotPinnedError, PinnedElsewhereError, PyexecError, \
    UnsupportedKernelError, check
from .kernel import FEATURES
from .model import BREAKDOWNS, CUT, FOREIGN, ExecLosses, ExecRecord
from .program import BpfProgram, pin_path
from .settings import DEFAULT_MAX_ENTRIES, PIN_DIRECTORY, Settings

KEY = "struct exec_count_key"
_KERNEL_ELEMENT = 64  # what the kernel adds to each preallocated element: bookkeeping and bucket
_RECORD_SIZES = [getattr(lib, f"EXEC_PATHS_{n}_SIZE") for n in range(lib.EXEC_PATH_CLASSES)]
# Memory one entry of max_entries takes, whether used or not: the kernel's
# preallocated elements (the count's, and its share of each exec_paths map's),
# then a row of the buffers a read is decoded from (count, path index, path id,
# and a path of typical length in the path table).
ENTRY_BYTES = (ffi.sizeof(KEY) + 8 + _KERNEL_ELEMENT
               + sum((size + 16 + _KERNEL_ELEMENT) >> (n * lib.EXEC_PATHS_SHIFT) for n, size in enumerate(_RECORD_SIZES))
               + 8 + 4 + 16 + 64)
_KEY_MEMBERS = dict(ffi.typeof(KEY).fields)
#: The maps of a counter, as memory() names them.
MAPS = (C.EXEC_PIN_COUNT, *(f"{C.EXEC_PIN_PATHS}{n}" for n in range(lib.EXEC_PATH_CLASSES)), C.EXEC_PIN_FILES,
        C.EXEC_PIN_KEYS, C.EXEC_PIN_FLUSHES, C.EXEC_PIN_LOSSES, C.EXEC_PIN_UIDS)


class ExecCounter(BpfProgram):
    """Counts every successful program execution on the host while started.

    Use it as a context manager (or call start() and close()); counts()
    returns {path: executions} since start, records() every breakdown.

    ExecCounter(settings) counts as a pyexec.Settings says; ExecCounter(**options)
    makes the Settings of those options:
    key: "resolved" counts the file executed, with symlinks, relative paths and
    mounts resolved (a #! script counts as its interpreter); "invoked" the
    file name as the caller gave it. mode: "exec" counts successful executions,
    "attempts" every execve/execveat call, a failed one under the name it was
    given and its errno (ExecRecord.outcome). by: the fields to count by
    (pyexec.BREAKDOWNS). max_entries: the distinct keys the kernel map holds.

    Filters, applied in the kernel (what they leave out is never stored):
    uids (real uids), cgroup (a cgroup v2 path: it and all below it), comm (the
    command name after exec), path_prefix (on the key), exclude_self (this
    process and its children; off by default, so a tool counts its own
    subprocesses). debug: bpf_printk each key counted to the kernel's trace pipe.
    avoid: kernel features (pyexec.kernel.FEATURES) not to use even where the
    kernel has them, to test or measure their fallbacks; features_used tells,
    once started, which ones the loaded program uses.
    """

    kind = "ExecCounter"

    def __init__(self, settings: Settings | None = None, /, **options: Any) -> None:
        if settings is not None and options:
            raise ArgumentTypeError("settings", "ExecCounter takes a Settings or options, not both")
        if settings is not None and not isinstance(settings, Settings):
            raise ArgumentTypeError("settings", f"ExecCounter takes a pyexec.Settings (or options), not {settings!r}")
        self.settings = settings if settings is not None else Settings(**options)
        check_memory_for(self.settings.max_entries)
        self.started_at = 0.0  # wall clock (time.time()) when counting started
        self._columns: _Columns | None = None  # allocated on first read
        super().__init__()

    def _load(self) -> Any:
        if self.settings.mode == "attempts" or self.settings.key == "resolved":
            from .system import ensure_tracefs

            try:  # libbpf finds syscall tracepoints through it
                ensure_tracefs()
            except PyexecError:
                if self.settings.mode == "attempts":
                    raise  # else the counter goes on without its file cache, which watches renames
        started_at = time.time()
        struct = ffi.new("struct exec_settings *")
        self.settings.fill(struct, int(started_at * 1e9))
        handle = ffi.new("struct pyexec_counter **")
        check(lib.pyexec_counter_load(struct, ffi.new("unsigned int[]", self.settings.uids), handle), LOAD)
        self.started_at = started_at
        return handle[0]

    def _attach(self, handle: Any) -> None:
        check(lib.pyexec_counter_attach(handle), Action("attach to sched_process_exec"))

    _destroy = staticmethod(lib.pyexec_counter_destroy)
    _reader_of = staticmethod(lib.pyexec_counter_reader)
    _close_reader = staticmethod(lib.pyexec_count_reader_close)
    _totals = staticmethod(lib.pyexec_count_reader_totals)

    def _pin(self, handle: Any, directory: bytes) -> None:
        where = os.fsdecode(directory)
        check(lib.pyexec_counter_pin(handle, directory), Action(f"pin the counter at {where}", cases={
            # a perf event's link, not a bpf_link
            errno.EINVAL: lambda: UnsupportedKernelError(
                errno.EINVAL, "this kernel cannot pin the links of syscall tracepoints (bpf_link for perf "
                "events, Linux 5.15): start with --mode exec, or count attempts with pyexec run --mode attempts"),
        } if self.settings.mode == "attempts" else {}))

    @classmethod
    def open_pinned(cls, directory: str = PIN_DIRECTORY) -> ExecCounter:
        """The counter that pyexec start pinned under directory, to read: its
        settings are the ones it was started with, read from the kernel. close()
        leaves it counting (pyexec stop ends it)."""
        handle = ffi.new("struct pyexec_count_reader **")
        check(lib.pyexec_count_reader_open_pinned(pin_path(directory), handle), _open_pinned(directory))
        reader = handle[0]
        try:
            struct = ffi.new("struct exec_settings *")
            lib.pyexec_count_reader_settings(reader, struct)
            uids = ffi.new("unsigned int[]", lib.EXEC_UID_FILTER_SIZE)
            found = ffi.new("unsigned int *")
            check(lib.pyexec_count_reader_uids(reader, uids, lib.EXEC_UID_FILTER_SIZE, found),
                  Action("read the uid_filter map"))
            counter = cls(Settings.of(struct, list(uids[0 : found[0]]), ffi.string))
        except BaseException:
            lib.pyexec_count_reader_close(reader)
            raise
        counter.started_at = struct.started_at / 1e9
        counter._opened(reader)
        return counter

    @property
    def map_id(self) -> int:
        """The kernel's id of this counter's exec_count map: it tells one counter from another."""
        found = ffi.new("unsigned int *")
        with self._lock:
            check(lib.pyexec_count_reader_map_id(self._started(), found), Action("read the exec_count map's id"))
        return int(found[0])

    def memory(self) -> dict[str, int]:
        """The kernel memory each of the counter's maps takes, in bytes (its memlock)."""
        sizes = ffi.new("unsigned long long[]", lib.PYEXEC_COUNTER_MAPS)
        with self._lock:
            lib.pyexec_count_reader_memory(self._started(), sizes)
        return dict(zip(MAPS, map(int, sizes)))

    @property
    def features_used(self) -> dict[str, bool]:
        """The kernel features (pyexec.kernel.FEATURES) the loaded program uses:
        those its settings need that the kernel has; the others are False."""
        features = ffi.new("struct exec_features *")
        with self._lock:
            self._started()
            if not self._handle:
                raise PyexecError("the features used are known to the process that loaded the counter")
            lib.pyexec_counter_features_used(self._handle, features)
        return {name: bool(getattr(features, name)) for name in FEATURES}

    def counts(self) -> dict[str, int]:
        """Executions (attempts, in that mode) per path so far; paths decoded
        with os.fsdecode (lossless)."""
        if "path" not in self.settings.by:
            raise PyexecError("counts() counts by path: count by path too, or use records()")
        with self._lock:
            columns = self._read()
            if self.settings.by == ("path",) and self.settings.mode == "exec":
                return dict(zip(columns.paths(), columns.counts()))
            totals: dict[str, int] = {}
            for path, count in zip(columns.paths(), columns.counts()):
                totals[path] = totals.get(path, 0) + count
            return totals

    def records(self) -> list[ExecRecord]:
        """Executions per combination of the fields counted by, so far."""
        fields = self.columns()
        counts = fields.pop("count")
        # Row by row, by zip: a dict or keyword arguments made for each of
        # 40000 rows cost as much as the read.
        outcomes = fields.pop("outcome", None) or itertools.repeat(0)
        truncated = fields.pop("truncated", None) or itertools.repeat(False)
        names = tuple(fields)
        if len(names) == 1:  # the usual case, by a literal: a third of dict(zip())'s time
            values = [{names[0]: value} for value in fields[names[0]]]
        else:
            values = [dict(zip(names, row)) for row in zip(*fields.values())] if names else [{} for _ in counts]
        return ExecRecord.rows(zip(counts, values, outcomes, truncated))

    def columns(self) -> dict[str, list]:
        """What records() returns, as columns ("count", the fields counted by,
        "truncated" with the path, "outcome" in attempts mode): one list each,
        row for row. Quicker to build when there are many keys."""
        with self._lock:
            columns = self._read()
            fields = {"count": columns.counts(), **{name: columns.column(name) for name in self.settings.by}}
            if "path" in self.settings.by:
                fields["truncated"] = columns.column("truncated")
            if self.settings.mode == "attempts":
                fields["outcome"] = columns.column("outcome")
        return fields

    def _read(self) -> _Columns:
        reader = self._started()
        if self._columns is None:
            try:
                self._columns = _Columns(self.settings.max_entries, self.settings)
            except MemoryError:
                raise PyexecError(f"no memory for the buffers to read {self.settings.max_entries} entries: "
                                  "choose a smaller max_entries") from None
        check(lib.pyexec_count_reader_read(reader, self._columns.struct), Action("read the exec_count map"))
        lib.pyexec_count_reader_paths(reader, self._columns.table)
        return self._columns

    def losses(self) -> ExecLosses:
        """What was dropped, truncated or unreadable so far, summed over all CPUs."""
        losses = ffi.new("struct exec_losses *")
        with self._lock:
            check(lib.pyexec_count_reader_losses(self._started(), losses), Action("read the exec_losses map"))
        return ExecLosses(**{name: getattr(losses, name) for name in ExecLosses.meanings()})


def _open_pinned(directory: str) -> Action:
    return Action(f"open the counter pinned at {directory}", cases={
        errno.ENOENT: lambda: NotPinnedError(f"no counter is pinned at {directory}: start one with pyexec start"),
        errno.ENOTDIR: lambda: NotPinnedError(f"no counter is pinned at {directory}: start one with pyexec start"),
        errno.EPROTO: lambda: PinnedElsewhereError(
            f"{directory} holds a counter pinned by another version of pyexec: stop it with that "
            f"version, or remove {directory}"),
    })


def pinned_map_id(directory: str = PIN_DIRECTORY) -> int | None:
    """The id of the exec_count map pinned under directory now; None if none is."""
    found = ffi.new("unsigned int *")
    try:
        check(lib.pyexec_pinned_map_id(pin_path(directory), C.EXEC_PIN_COUNT.encode(), found), _open_pinned(directory))
    except NotPinnedError:
        return None
    return int(found[0])


def check_memory_for(max_entries: int) -> None:
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


class _Columns:
    """The buffers a read of exec_count is written to, and their decoding: the
    members of the key that the settings need, one column each, and each
    entry's path, by its index in the reader's table of paths."""

    def __init__(self, capacity: int, settings: Settings) -> None:
        members = [BREAKDOWNS[name].member for name in settings.by if name != "path"]
        members += ["outcome"] if settings.mode == "attempts" else []
        self._counts = ffi.new("unsigned long long[]", capacity)
        self._path_index = ffi.new("unsigned int[]", capacity)
        self._buffers: dict[str, Any] = {}
        columns = ffi.new("struct pyexec_column[]", len(members))
        for column, member in zip(columns, members):
            size = ffi.sizeof(_KEY_MEMBERS[member].type)
            self._buffers[member] = ffi.new("char[]", capacity * size)
            column.offset, column.size, column.out = _KEY_MEMBERS[member].offset, size, self._buffers[member]
        self._columns = columns  # kept alive: the struct points at it
        self.struct = ffi.new("struct pyexec_count_columns *", {
            "capacity": capacity, "counts": self._counts, "paths": self._path_index,
            "columns": columns, "column_count": len(members)})
        self.table = ffi.new("struct pyexec_path_table *")
        self._cut_at_start = settings.key == "resolved"
        self._last_raw, self._last_paths, self._last_cuts = b"", list[str](), b""

    def counts(self) -> list[int]:
        return ffi.unpack(self._counts, self.struct.found)

    def _numbers(self, member: str) -> list[int]:
        ctype = _KEY_MEMBERS[member].type
        return ffi.unpack(ffi.cast(f"{ctype.cname} *", self._buffers[member]), self.struct.found)

    def _table(self) -> tuple[list[str], bytes]:
        """The distinct paths, marked as cut or another namespace's, and their cut flags."""
        table = self.table
        size, count = table.size, table.count
        cuts = ffi.buffer(table.truncated, count)[:] if count else b""
        namespaces = ffi.buffer(table.mnt_ns, 4 * count)[:] if count else b""
        raw = (ffi.buffer(table.bytes, size)[:] if size else b"") + cuts + namespaces
        # The same paths in the same order, as between most reads of a busy map:
        # the strings made last time serve again (their hashes already known).
        if raw != self._last_raw:
            # One decode for all paths: fsdecode is lossless, and a path never holds a NUL.
            paths = os.fsdecode(raw[:size]).split("\0")[:-1]
            if cuts.strip(b"\0"):
                for at, cut in enumerate(cuts):
                    if cut:
                        paths[at] = CUT + paths[at] if self._cut_at_start else paths[at] + CUT
            if namespaces.strip(b"\0"):
                for at, ns in enumerate(ffi.unpack(table.mnt_ns, count)):
                    if ns:
                        paths[at] = FOREIGN.format(ns) + paths[at]
            self._last_raw, self._last_paths, self._last_cuts = raw, paths, cuts
        return self._last_paths, self._last_cuts

    def _rows(self, values: list, missing: object) -> list:
        """values, one per distinct path, for each entry by its path; missing
        for an entry whose path was not found."""
        index = ffi.unpack(self._path_index, self.struct.found)
        if max(index, default=0) < len(values):
            return [values[at] for at in index]
        return [values[at] if at < len(values) else missing for at in index]

    def paths(self) -> list[str]:
        return self._rows(self._table()[0], "")

    def column(self, name: str) -> list:
        """A breakdown's values (by its name), or another member's."""
        if name == "path":
            return self.paths()
        if name == "truncated":
            return self._rows([bool(cut) for cut in self._table()[1]], False)
        breakdown = BREAKDOWNS.get(name)
        member = breakdown.member if breakdown else name
        if breakdown is None or not breakdown.text:
            return self._numbers(member)
        size = ffi.sizeof(_KEY_MEMBERS[member].type)
        raw = ffi.buffer(self._buffers[member], self.struct.found * size)[:]
        return [os.fsdecode(raw[at : at + size].split(b"\0", 1)[0]) for at in range(0, len(raw), size)]
