"""A counter pinned on bpffs (pyexec start): the kernel counts with no pyexec
process alive, and any later process reads it (show, status, serve), resets
its view (reset) or ends it (stop)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

from .counter import PIN_DIRECTORY, ExecCounter
from .errors import PinnedElsewhereError, PyexecError
from .report import Report, timestamp
from .system import ensure_bpffs

# What a reset saved: the counts at that moment, which show then subtracts.
# Not on bpffs, which holds only BPF objects; root's, like the pins.
BASELINES = "/run/pyexec"
LINK_PREFIX = "link_"  # the shim pins each attached program's link so


def baseline_path(directory: str) -> str:
    return os.path.join(BASELINES, os.path.basename(os.path.normpath(directory)) + ".baseline.json")


def start(counter: ExecCounter, directory: str = PIN_DIRECTORY) -> None:
    """Loads and attaches counter, pins it under directory (0700: what runs on a
    host is for root to see), and lets go of it: the kernel goes on counting."""
    ensure_bpffs(directory)
    if os.path.lexists(directory):
        if any(name.startswith(LINK_PREFIX) for name in _names(directory)):
            since = _started_text(directory)
            raise PyexecError(f"a counter is already pinned at {directory}{since}: pyexec stop ends it")
        raise PinnedElsewhereError(f"{directory} exists but holds no counter: remove it, or pin elsewhere")
    os.mkdir(directory, 0o700)
    try:
        with counter:
            counter.pin(directory)
    except BaseException:
        unpin(directory)
        raise


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except NotADirectoryError:
        raise PinnedElsewhereError(f"{directory} is not a directory: remove it, or pin elsewhere") from None


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
    """Whether a pinned link keeps a program attached there."""
    return os.path.isdir(directory) and any(name.startswith(LINK_PREFIX) for name in _names(directory))


def report(counter: ExecCounter, directory: str = PIN_DIRECTORY, current: Report | None = None) -> Report:
    """What the pinned counter counted (current: as read already), since the last reset if there was one."""
    from .snapshot import SnapshotError, load

    current = current or Report.of(counter)
    if not os.path.exists(baseline_path(directory)):
        return current
    try:
        baseline, _ = load(baseline_path(directory))
    except SnapshotError as error:
        raise PyexecError(f"the last reset's record is damaged ({error}): pyexec reset makes a new one") from None
    if baseline.started_at != current.started_at:  # a record left by an earlier counter
        return current
    return current.since(baseline)


def reset(directory: str = PIN_DIRECTORY) -> Report:
    """Makes show count from now. The kernel's counters go on climbing (an
    exporter's series stay monotonic): the counts now are recorded, and later
    reads subtract them. An execution that races with the reset is counted in
    what it records or after it, never in neither. Returns what was reset."""
    from .snapshot import save

    with ExecCounter.open_pinned(directory) as counter:
        now = Report.of(counter)  # one read, both what is set aside and where counting resumes
        before = report(counter, directory, now)
        os.makedirs(BASELINES, mode=0o700, exist_ok=True)
        save(now, baseline_path(directory))
    return before


def stop(directory: str = PIN_DIRECTORY) -> Report:
    """The final counts; then unpins, which detaches the programs and frees the maps."""
    with ExecCounter.open_pinned(directory) as counter:
        final = report(counter, directory)
    unpin(directory)
    return final


def unpin(directory: str) -> None:
    for name in _names(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    try:
        os.unlink(baseline_path(directory))
    except FileNotFoundError:
        pass


def status(directory: str = PIN_DIRECTORY) -> dict[str, Any]:
    """Whether a counter is pinned there, since when, with what settings, how
    full its map is and what it could not count."""
    if not os.path.isdir(directory):
        return {"running": False, "directory": directory}
    with ExecCounter.open_pinned(directory) as counter:
        entries = len(counter.records())  # keys in the map, whatever the view
        current = report(counter, directory)
        return {
            "running": is_running(directory),
            "directory": directory,
            **current.settings(),
            "started": timestamp(counter.started_at),
            "since": current.span()["start"],  # the last reset, or the start
            "entries": entries,
            "capacity": counter.max_entries,
            "total": current.total,
            **asdict(current.stats),
        }
