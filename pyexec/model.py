"""pyexec's vocabulary: what can be counted, by what, and the records and losses
a counter reads. Pure Python: report, snapshot and diff use it without the
compiled extension.

BREAKDOWNS is the one registry of the fields a count can be broken down by.
Each entry says where the kernel puts the field (its bit of enum exec_by, its
member of struct exec_count_key, both in csrc/execcount.h) and how it is
shown: the fields a row carries, its Prometheus labels. The reader, the
report, CSV, snapshots and the exporter all iterate it; a new field is one
entry here plus its fill in the BPF program.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass, field, fields
from typing import Any

from . import _contract as C

#: What a path is: the file the kernel executed (as /proc/PID/exe names it), or
#: the file name exactly as the caller passed it to exec.
KEYS = {"resolved": C.EXEC_KEY_RESOLVED, "invoked": C.EXEC_KEY_INVOKED}
#: What counts: successful executions, or every exec call with its outcome.
MODES = {"exec": C.EXEC_MODE_EXEC, "attempts": C.EXEC_MODE_ATTEMPTS}
#: Marks where a path cut to fit lost bytes: at the start of
#: a resolved path (which otherwise always starts with "/"), at the end of an
#: invoked name (which is then EXEC_PATH_SIZE - 1 bytes before it).
CUT = "\u2026"
#: Marks a resolved path that is another mount namespace's view, not the host's:
#: "mnt:[4026532290]/usr/bin/true" (as /proc/PID/ns/mnt names that namespace).
FOREIGN = "mnt:[{}]"


@dataclass(frozen=True)
class Shown:
    """A field of a row (table, CSV, JSON, snapshot), and its JSON types."""

    name: str
    types: tuple[type, ...]
    what: str  # those types, as an error message says them

    @property
    def numeric(self) -> bool:
        """Right-aligned in a table."""
        return self.types == (int,)


TEXT = (str,), "a string"
NUMBER = (int,), "a whole number"
OPTIONAL_TEXT = (str, type(None)), "a string or null"


@dataclass(frozen=True)
class Breakdown:
    """A field executions can be counted by (--by NAME)."""

    name: str
    bit: int  # its bit of enum exec_by
    member: str  # its member of struct exec_count_key
    text: bool  # decoded as text (a fixed-size char array), else a number
    shown: tuple[Shown, ...]  # what a row shows for it, its value first
    labels: tuple[str, ...]  # its Prometheus labels: first the one that tells keys apart
    show: Callable[[Any, ExecRecord], tuple[Any, ...]]  # its value's (in a record's) values of `shown`
    label: Callable[[Any], tuple[str, ...]]  # its value's values of `labels`


# The names people read (pyexec.names: re and pwd) are looked up only once a row is shown.
def _user(uid: int) -> str | None:
    from .names import user_name

    return user_name(uid)


def _cgroup_path(cgroup_id: int | None) -> str | None:
    from .names import cgroup_names

    return cgroup_names().path(cgroup_id or 0)


def _cgroup_shown(cgroup_id: int, record: ExecRecord) -> tuple[str, str | None]:
    from .names import container

    path = _cgroup_path(cgroup_id)
    return (path if path is not None else str(cgroup_id)), container(path)


#: Every breakdown, in the order their fields are shown.
BREAKDOWNS: dict[str, Breakdown] = {breakdown.name: breakdown for breakdown in (
    Breakdown("path", C.EXEC_BY_PATH, "path", True,
              (Shown("path", *TEXT), Shown("truncated", (bool,), "true or false")), ("path",),
              lambda path, record: (path, record.truncated), lambda value: (value,)),
    Breakdown("uid", C.EXEC_BY_UID, "uid", False,
              (Shown("uid", *NUMBER), Shown("user", *OPTIONAL_TEXT)), ("uid", "user"),
              lambda uid, record: (uid, _user(uid)),
              lambda value: (str(value), _user(value) or "")),
    Breakdown("comm", C.EXEC_BY_COMM, "comm", True, (Shown("comm", *TEXT),), ("comm",),
              lambda comm, record: (comm,), lambda value: (value,)),
    Breakdown("parent", C.EXEC_BY_PARENT, "parent", True, (Shown("parent", *TEXT),), ("parent",),
              lambda parent, record: (parent,), lambda value: (value,)),
    Breakdown("cgroup", C.EXEC_BY_CGROUP, "cgroup", False,
              (Shown("cgroup", *TEXT), Shown("container", *OPTIONAL_TEXT)), ("cgroup_id", "cgroup"),
              _cgroup_shown, lambda value: (str(value), _cgroup_path(value) or "")),
)}
#: Every field a row may show, by name.
SHOWN: dict[str, Shown] = {shown.name: shown for breakdown in BREAKDOWNS.values() for shown in breakdown.shown}


def shown_fields(by: tuple[str, ...]) -> tuple[str, ...]:
    """The fields a row shows when counting by these breakdowns."""
    return tuple(shown.name for name in by for shown in BREAKDOWNS[name].shown)


class ExecRecord(tuple):
    """The executions of one combination of the fields counted by: record.path,
    record.uid, ... (BREAKDOWNS) are its values, None for a field not counted by.
    Immutable; a tuple underneath, for a read may make 40 000 of them and a
    tuple is made in C (rows()), where a frozen dataclass runs its __init__."""

    __slots__ = ()

    def __new__(cls, count: int, values: Mapping[str, Any] | None = None, outcome: int = 0,
                truncated: bool = False) -> ExecRecord:
        return tuple.__new__(cls, (count, {} if values is None else values, outcome, truncated))

    @classmethod
    def rows(cls, rows: Iterable[tuple[int, Mapping[str, Any], int, bool]]) -> list[ExecRecord]:
        """Records of (count, values, outcome, truncated) tuples, made in C."""
        return list(map(tuple.__new__, itertools.repeat(cls), rows))

    @property
    def count(self) -> int:  # type: ignore[override]  # the count of executions, not tuple.count
        return self[0]

    @property
    def values(self) -> Mapping[str, Any]:  # by breakdown name
        return self[1]

    @property
    def outcome(self) -> int:  # 0 for an execution, else the errno of a failed exec call
        return self[2]

    @property
    def truncated(self) -> bool:  # the path was cut to fit, and marked so with CUT
        return self[3]

    def __getattr__(self, name: str) -> Any:
        if name in BREAKDOWNS:
            return self.values.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getnewargs__(self) -> tuple[int, Mapping[str, Any], int, bool]:  # pickle and copy call __new__ with these
        return self.count, self.values, self.outcome, self.truncated

    def __repr__(self) -> str:
        return (f"ExecRecord(count={self.count!r}, values={self.values!r}, outcome={self.outcome!r}, "
                f"truncated={self.truncated!r})")


@dataclass(frozen=True)
class ExecLosses:
    """Executions the kernel side could not count exactly, since it started
    (struct exec_losses); each field's metadata says what it means."""

    dropped: int = field(metadata={"meaning": "Executions not counted: the kernel refused to insert their key"})
    truncated: int = field(metadata={"meaning": "Executions counted under a path cut to fit"})
    errors: int = field(metadata={"meaning": "Executions not counted: their file name could not be read"})
    # Newer than the others: a snapshot saved before it was counted has none (0).
    missed: int = field(default=0, metadata={
        "meaning": "Executions not counted: the kernel did not run the BPF program, already running on that CPU"})
    collisions: int = field(default=0, metadata={
        "meaning": "Executions not counted: their path's id was another path's already"})

    def __sub__(self, earlier: ExecLosses) -> ExecLosses:
        """What was lost between two readings."""
        return ExecLosses(*(now - then for now, then in zip(astuple(self), astuple(earlier))))

    @staticmethod
    def meanings() -> dict[str, str]:
        return {loss.name: loss.metadata["meaning"] for loss in fields(ExecLosses)}


NO_LOSSES = ExecLosses(0, 0, 0, 0, 0)
