"""A counter pinned on bpffs (pyexec start): the kernel counts with no pyexec
process alive, and any later process reads it (show, status, serve), resets
its view (reset) or ends it (stop).

Every function takes the pin directory as the user named it and works on its
real path: a directory reached through a symbolic link is the same counter,
with the same reset record."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from dataclasses import asdict
from typing import Any

from . import _contract as C
from .counter import ExecCounter
from .errors import BpfPermissionError, PinnedElsewhereError, PyexecError, PyexecWarning, permission_fix
from .program import pin_path
from .report import Report, timestamp
from .settings import PIN_DIRECTORY
from .system import ensure_bpffs

# What a reset saved: the counts at that moment, which show then subtracts.
# Not on bpffs, which holds only BPF objects; root's, like the pins.
BASELINES = "/run/pyexec"
# What the shim pins besides the links: a directory holding only these is ours.
PINNED_MAPS = {C.EXEC_PIN_COUNT, C.EXEC_PIN_LOSSES, C.EXEC_PIN_UIDS, C.EXEC_PIN_SETTINGS}
# start pins into <directory>_starting_<pid> and renames it into place (bpffs
# names cannot hold a dot): a start killed half-way leaves no directory that
# looks like a counter, and the next start removes what it left.
STARTING = "_starting_"


class RecordError(PyexecError):
    """The reset records cannot be trusted: their directory is not root's alone."""


class DamagedRecordError(RecordError):
    """The last reset's record cannot be read: reset replaces it."""


def real(directory: str) -> str:
    """The pin directory's real path: the one name its record and its pins go by."""
    pin_path(directory)  # refuses a NUL, as the kernel would not see past it
    return os.path.realpath(directory)


def baseline_path(directory: str) -> str:
    """The reset record of the counter pinned at directory (its real path, whole)."""
    digest = hashlib.sha256(os.fsencode(real(directory))).hexdigest()[:32]
    return os.path.join(BASELINES, f"{digest}.baseline.json")


def start(counter: ExecCounter, directory: str = PIN_DIRECTORY) -> None:
    """Loads and attaches counter, pins it under directory (0700: what runs on a
    host is for root to see), and lets go of it: the kernel goes on counting."""
    directory = real(directory)
    ensure_bpffs(directory)
    _remove_abandoned_starts(directory)
    if _lexists(directory):
        if is_running(directory):
            since = _started_text(directory)
            raise PyexecError(f"a counter is already pinned at {directory}{since}: pyexec stop ends it")
        if _is_partial(directory):
            raise PinnedElsewhereError(f"{directory} holds a counter that never finished starting: "
                                       "pyexec stop removes it")
        raise PinnedElsewhereError(f"{directory} exists but holds no counter: remove it, or pin elsewhere")
    partial = f"{directory}{STARTING}{os.getpid()}"
    os.mkdir(partial, 0o700)
    try:
        with counter:
            counter.pin(partial)
            try:
                os.rename(partial, directory)  # the links hold the programs attached from here on
            except OSError as error:  # another start got there first
                raise PyexecError(f"cannot pin at {directory}: {error.strerror} (another pyexec start?): "
                                  "pyexec status says what is there") from None
    except BaseException:
        unpin(partial)
        raise
    _forget_record(directory)  # one an earlier counter there may have left


def _remove_abandoned_starts(directory: str) -> None:
    """What a start killed before it renamed its pins into place left behind."""
    parent, name = os.path.split(directory)
    for entry in _names(parent):
        pid = entry.removeprefix(name + STARTING)
        if entry.startswith(name + STARTING) and pid.isdecimal() and not _alive(int(pid)):
            unpin(os.path.join(parent, entry))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _lexists(path: str) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        raise _cannot_see(path) from None
    return True


def _cannot_see(directory: str) -> BpfPermissionError:
    return BpfPermissionError(errno.EACCES, f"cannot tell whether a counter is pinned at {directory}: "
                              f"permission denied: {permission_fix()}")


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except NotADirectoryError:
        raise PinnedElsewhereError(f"{directory} is not a directory: remove it, or pin elsewhere") from None
    except PermissionError:
        raise _cannot_see(directory) from None


def _started_text(directory: str) -> str:
    """' (since ...)' of the counter pinned there; another version's is refused as such."""
    try:
        with ExecCounter.open_pinned(directory) as counter:
            return f" (since {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(counter.started_at))})"
    except PinnedElsewhereError:
        raise
    except PyexecError:
        return ""


def is_running(directory: str = PIN_DIRECTORY) -> bool:
    """Whether a pinned link keeps a program attached there. A directory this
    process cannot look into is a permission error, not "no"."""
    directory = real(directory)
    try:
        if not stat.S_ISDIR(os.stat(directory).st_mode):
            return False
    except FileNotFoundError:
        return False
    except PermissionError:
        raise _cannot_see(directory) from None
    return any(name.startswith(C.EXEC_PIN_LINK_PREFIX) for name in _names(directory))


def _is_partial(directory: str) -> bool:
    """A directory of pyexec's pins without a link: a start (of an older pyexec) killed half-way."""
    return set(_names(directory)) <= PINNED_MAPS


def _trusted_records() -> bool:
    """Whether there are records to read: True for a real directory of this user's
    of mode 0700 (only it could have written there); False where there is none,
    or it is root's and this user is not root (with CAP_BPF and CAP_PERFMON only:
    out of reach, so no record). Any other directory cannot be trusted."""
    try:
        info = os.lstat(BASELINES)
    except (FileNotFoundError, PermissionError):
        return False
    if os.geteuid() != 0 and info.st_uid == 0:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise RecordError(f"{BASELINES} is not a directory of this user's with mode 0700, so its reset records "
                          f"cannot be trusted: remove it (pyexec reset makes it anew)")
    return True


def _baseline(directory: str, current_start: float) -> Report | None:
    """What the last reset of this counter recorded, if there is a record of it."""
    from .snapshot import SnapshotError, load

    if not _trusted_records():
        return None
    path = baseline_path(directory)
    if not os.path.lexists(path):
        return None
    try:
        baseline, _ = load(path)
    except SnapshotError as error:
        raise DamagedRecordError(f"the last reset's record is damaged ({error}): pyexec reset makes a new one") from None
    if baseline.started_at != current_start:  # a record left by an earlier counter
        return None
    return baseline


def report(counter: ExecCounter, directory: str = PIN_DIRECTORY) -> Report:
    """What the pinned counter counted, since the last reset if there was one. The
    record is read before the map: a reset between the two can then only make
    the counts larger, never negative."""
    baseline = _baseline(directory, counter.started_at)
    current = Report.of(counter)
    return current.since(baseline) if baseline is not None else current


def reset(directory: str = PIN_DIRECTORY) -> Report:
    """Makes show count from now. The kernel's counters go on climbing (an
    exporter's series stay monotonic): the counts now are recorded, and later
    reads subtract them. An execution that races with the reset is counted in
    what it records or after it, never in neither. Returns what was reset (since
    the start, when the record was damaged: a new one replaces it)."""
    from .snapshot import save

    with ExecCounter.open_pinned(directory) as counter:
        try:
            baseline = _baseline(directory, counter.started_at)
        except DamagedRecordError as error:
            baseline = None
            _warn(f"{str(error).partition(': pyexec reset')[0]}: replaced by this reset's")
        now = Report.of(counter)  # one read, both what is set aside and where counting resumes
        try:
            os.makedirs(BASELINES, mode=0o700, exist_ok=True)
            if not _trusted_records():
                raise PermissionError(errno.EACCES, "it is root's")
            save(now, baseline_path(directory))
        except PermissionError as error:
            raise BpfPermissionError(errno.EACCES, f"cannot record the reset in {BASELINES}: {error.strerror}: "
                                     "run pyexec reset as root") from None
    return now.since(baseline) if baseline is not None else now


def final(directory: str = PIN_DIRECTORY) -> Report:
    """The counts stop prints: since the last reset, or since the start (with a
    warning) when its record is damaged or cannot be trusted."""
    with ExecCounter.open_pinned(directory) as counter:
        try:
            return report(counter, directory)
        except RecordError as error:
            _warn(f"{error}; the counts are since the start")
            return Report.of(counter)


def stop(directory: str = PIN_DIRECTORY) -> Report:
    """The final counts; then unpins, which detaches the programs and frees the maps."""
    counts = final(directory)
    unpin(directory)
    return counts


def remove_partial(directory: str = PIN_DIRECTORY) -> bool:
    """Removes what a start killed half-way left at directory; False if it is not that."""
    directory = real(directory)
    if not os.path.isdir(directory) or is_running(directory) or not _is_partial(directory):
        return False
    unpin(directory)
    return True


def unpin(directory: str) -> None:
    """Removes the pins (the kernel frees what nothing else holds) and the reset record."""
    directory = real(directory)
    for name in _names(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    _forget_record(directory)


def _forget_record(directory: str) -> None:
    try:
        os.unlink(baseline_path(directory))
    except (FileNotFoundError, PermissionError):  # none, or out of reach: none to this process
        pass


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, PyexecWarning, stacklevel=3)


def status(directory: str = PIN_DIRECTORY) -> dict[str, Any]:
    """Whether a counter is pinned there, since when, with what settings, how
    full its map is and what it could not count."""
    if not is_running(directory):
        return {"running": False, "directory": directory}
    with ExecCounter.open_pinned(directory) as counter:
        current = report(counter, directory)
        entries = len(counter.records())  # keys in the map, whatever the view
        return {
            "running": True,
            "directory": directory,
            **current.settings(),
            "started": timestamp(counter.started_at),
            "since": current.span()["start"],  # the last reset, or the start
            "entries": entries,
            "capacity": counter.settings.max_entries,
            "memory": counter.memory(),  # bytes of kernel memory, by map
            "total": current.total,
            **asdict(current.losses),
        }
