"""How a counter counts: one frozen object, validated once, that the command
line's options make, ExecCounter takes, a pinned counter gives back, and that
converts to and from struct exec_settings (csrc/execcount.h) under the same
names. Pure Python: it does not load the extension."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from . import _contract as C
from .errors import ArgumentError, ArgumentTypeError
from .kernel import FEATURES
from .model import BREAKDOWNS, KEYS, MODES
from .system import BPFFS

DEFAULT_MAX_ENTRIES: int = C.EXEC_COUNT_DEFAULT_ENTRIES
MAX_ENTRIES_LIMIT: int = C.EXEC_MAX_ENTRIES_LIMIT
#: Of every map, the share (1/ROOT_RESERVE_SHARE) that only root's executions may
#: fill: no other user can make root's new binaries uncounted.
ROOT_RESERVE_SHARE = 8
#: Where pyexec start pins a counter (bpffs).
PIN_DIRECTORY = f"{BPFFS}/pyexec"
#: The largest uid a filter takes ((uid_t)-1 is no uid).
LARGEST_UID = 2**32 - 2


@dataclass(frozen=True)
class Settings:
    """The options of pyexec run, by their names there (ExecCounter's docstring says
    what each does). Validated and normalized when made: by in BREAKDOWNS' order,
    uids sorted, cgroup resolved to the id and depth the kernel filters by."""

    key: str = "resolved"
    mode: str = "exec"
    by: tuple[str, ...] = ("path",)
    uids: tuple[int, ...] = ()
    cgroup: str | None = None
    comm: str | None = None
    path_prefix: str | None = None
    exclude_self: bool = False
    max_entries: int = DEFAULT_MAX_ENTRIES
    debug: bool = False
    avoid: frozenset[str] = frozenset()
    # The cgroup as the kernel filters by it: its id, and its depth below the root.
    cgroup_id: int = field(default=0, init=False, repr=False)
    cgroup_level: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            _check_type(name, value)
        if not 1 <= self.max_entries <= MAX_ENTRIES_LIMIT:
            raise ArgumentError("max_entries", f"max_entries must be between 1 and {MAX_ENTRIES_LIMIT}, "
                                f"not {self.max_entries}")
        if self.key not in KEYS:
            raise ArgumentError("key", f"key must be one of {', '.join(KEYS)}, not {self.key!r}")
        if self.mode not in MODES:
            raise ArgumentError("mode", f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not self.by or any(name not in BREAKDOWNS for name in self.by):
            raise ArgumentError("by", f"by takes one or more of {', '.join(BREAKDOWNS)}, not {self.by!r}")
        uids = tuple(sorted(set(self.uids)))
        if len(uids) > C.EXEC_UID_FILTER_SIZE or not all(0 <= uid <= LARGEST_UID for uid in uids):
            raise ArgumentError("uids", f"uids takes up to {C.EXEC_UID_FILTER_SIZE} uids, each from 0 to {LARGEST_UID}")
        _encoded("comm", "a command name", self.comm, C.EXEC_COMM_SIZE - 1)
        _encoded("path_prefix", "a path prefix", self.path_prefix, C.EXEC_PATH_SIZE - 1)
        avoid = frozenset(self.avoid)
        if not avoid <= FEATURES.keys():
            raise ArgumentError("avoid", f"avoid takes kernel features among {', '.join(FEATURES)}, "
                                f"not {sorted(avoid)!r}")
        normal: dict[str, Any] = {"by": tuple(name for name in BREAKDOWNS if name in self.by), "uids": uids, "avoid": avoid}
        if self.cgroup is not None:
            normal["cgroup_id"], normal["cgroup_level"] = _cgroup_filter(self.cgroup)
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    @property
    def root_reserve(self) -> int:
        return self.max_entries // ROOT_RESERVE_SHARE

    def filters(self) -> dict[str, Any]:
        """The filters as given (None, or [] for uids, where not set): what documents record."""
        return {"uids": list(self.uids), "cgroup": self.cgroup, "comm": self.comm,
                "path_prefix": self.path_prefix, "exclude_self": self.exclude_self}

    def describe(self) -> str:
        """What is counted, in a line: key, mode, breakdown and filters."""
        parts = [f"key {self.key}", f"mode {self.mode}", f"by {','.join(self.by)}"]
        filters = {"uid": ",".join(map(str, self.uids)) or None, "cgroup": self.cgroup, "comm": self.comm,
                   "path-prefix": self.path_prefix}
        parts += [f"{name} {value}" for name, value in filters.items() if value]
        if self.exclude_self:
            parts.append("excluding pyexec")
        return " · ".join(parts)

    def fill(self, struct: Any, started_at_ns: int) -> None:
        """Writes these settings into a cffi struct exec_settings, under the same names;
        --exclude-self becomes the id of this process, which the kernel leaves out."""
        struct.key, struct.mode = KEYS[self.key], MODES[self.mode]
        struct.by = sum(BREAKDOWNS[name].bit for name in self.by)
        filters = struct.filters
        filters.uid_count = len(self.uids)
        filters.cgroup, filters.cgroup_level = self.cgroup_id, self.cgroup_level
        filters.comm = os.fsencode(self.comm or "")
        filters.path_prefix = prefix = os.fsencode(self.path_prefix or "")
        filters.path_prefix_len = len(prefix)
        filters.exclude_tgid = os.getpid() if self.exclude_self else 0
        struct.debug = self.debug
        for name in FEATURES:
            setattr(struct.allowed, name, name not in self.avoid)
        struct.started_at = started_at_ns
        struct.max_entries, struct.root_reserve = self.max_entries, self.root_reserve

    @classmethod
    def of(cls, struct: Any, uids: list[int], string: Any) -> Settings:
        """The settings a loaded program reads (a cffi struct exec_settings), with the uids
        of its filter; string is ffi.string. A cgroup is named as it is now, if it still
        exists, else by its id."""
        filters = struct.filters
        settings = cls(
            key=_name_of(KEYS, struct.key), mode=_name_of(MODES, struct.mode),
            by=tuple(name for name, breakdown in BREAKDOWNS.items() if struct.by & breakdown.bit),
            uids=tuple(uids), comm=os.fsdecode(string(filters.comm)) or None,
            path_prefix=os.fsdecode(string(filters.path_prefix)) or None, exclude_self=bool(filters.exclude_tgid),
            max_entries=struct.max_entries, debug=bool(struct.debug),
            avoid=frozenset(name for name in FEATURES if not getattr(struct.allowed, name)),
        )
        if filters.cgroup:
            from .names import cgroup_names

            path = cgroup_names().path(filters.cgroup)
            for name, value in (("cgroup", path if path is not None else str(filters.cgroup)),
                                ("cgroup_id", filters.cgroup), ("cgroup_level", filters.cgroup_level)):
                object.__setattr__(settings, name, value)
        return settings


# What each setting takes: a type, or for collections ("of", type).
_TYPES: dict[str, Any] = {
    "max_entries": int, "key": str, "mode": str, "by": ("of", str), "uids": ("of", int), "cgroup": (str, type(None)),
    "comm": (str, type(None)), "path_prefix": (str, type(None)), "exclude_self": bool, "debug": bool,
    "avoid": ("of", str), "cgroup_id": int, "cgroup_level": int,
}


def _check_type(name: str, value: Any) -> None:
    """A value of the setting's type (bool is no int here, a str no collection of str)."""
    wanted = _TYPES[name]
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


def _name_of(values: dict[str, int], value: int) -> str:
    return next((name for name, known in values.items() if known == value), str(value))


def _encoded(name: str, what: str, value: str | None, longest: int) -> None:
    if value is None:
        return
    encoded = os.fsencode(value)
    if not 1 <= len(encoded) <= longest or b"\0" in encoded:
        raise ArgumentError(name, f"{what} is 1 to {longest} bytes without NUL, not {value!r}")


def _cgroup_filter(path: str) -> tuple[int, int]:
    """(id, depth) of a cgroup v2 path, as /proc/PID/cgroup writes it or under its mount."""
    if not path:
        raise ArgumentError("cgroup", "an empty cgroup path filters nothing: name one, e.g. /system.slice/cron.service")
    from .names import cgroup_names  # re and pwd, imported only when needed

    names = cgroup_names()
    relative = names.relative(path)
    cgroup_id = names.id_of(relative) if relative is not None else None
    if relative is None or cgroup_id is None:
        raise ArgumentError("cgroup", f"no such cgroup v2: {path!r}; name it as /proc/PID/cgroup does, "
                            "e.g. /system.slice/cron.service")
    return cgroup_id, len([part for part in relative.split("/") if part])
