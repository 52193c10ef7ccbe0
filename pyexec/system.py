"""The kernel's file systems pyexec needs, mounted where they are missing."""

from __future__ import annotations

import ctypes
import os

from .errors import PyexecError

TRACEFS = "/sys/kernel/tracing"


def ensure_tracefs() -> None:
    """Mounts tracefs at /sys/kernel/tracing unless it (or debugfs's copy) is there."""
    if os.path.isdir(f"{TRACEFS}/events") or os.path.isdir("/sys/kernel/debug/tracing/events"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tracefs", TRACEFS.encode(), b"tracefs", 0, None) != 0:
        reason = os.strerror(ctypes.get_errno())
        raise PyexecError(
            f"tracefs is not mounted and mounting it failed ({reason}): "
            f"run as root, or mount it: mount -t tracefs nodev {TRACEFS}"
        )
