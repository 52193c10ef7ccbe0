"""The kernel's file systems pyexec needs, mounted where they are missing."""

from __future__ import annotations

import ctypes
import errno
import os

from .errors import BpfPermissionError, PyexecError

TRACEFS = "/sys/kernel/tracing"


def ensure_tracefs() -> None:
    """Mounts tracefs at /sys/kernel/tracing unless it (or debugfs's copy) is there.
    Mounted but out of this process's reach is a permission error, not a missing mount."""
    if os.path.isdir(f"{TRACEFS}/events") or os.path.isdir("/sys/kernel/debug/tracing/events"):
        return
    with open("/proc/self/mounts") as mounts:
        mounted = [line.split()[1] for line in mounts if line.split()[2:3] == ["tracefs"]]
    if mounted:
        raise BpfPermissionError(
            errno.EACCES, f"tracefs is mounted at {mounted[0]} but this process cannot read it: "
            "run as root, or give this user access to it (its mode, or mount option gid=)",
        )
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tracefs", TRACEFS.encode(), b"tracefs", 0, None) != 0:
        code = ctypes.get_errno()
        message = (f"tracefs is not mounted and mounting it failed ({os.strerror(code)}): "
                   f"run as root, or mount it: mount -t tracefs nodev {TRACEFS}")
        raise BpfPermissionError(code, message) if code == errno.EPERM else PyexecError(message)
