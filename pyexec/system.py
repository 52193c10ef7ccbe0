"""The kernel's file systems pyexec needs, mounted where they are missing."""

from __future__ import annotations

import ctypes
import errno
import os

from .errors import BpfPermissionError, PyexecError

TRACEFS = "/sys/kernel/tracing"
BPFFS = "/sys/fs/bpf"
BPFFS_MAGIC = 0xCAFE4A11


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
    mount("nodev", TRACEFS, "tracefs")


def ensure_bpffs(directory: str) -> None:
    """Mounts bpffs at /sys/fs/bpf when directory's parent is not one."""
    parent = os.path.dirname(os.path.normpath(directory))
    if _is_bpffs(parent):
        return
    if parent != BPFFS:
        raise PyexecError(f"{parent} is not a BPF file system: pin under {BPFFS}")
    mount("bpf", BPFFS, "bpf")


def _is_bpffs(path: str) -> bool:
    buffer = ctypes.create_string_buffer(120)  # struct statfs, whose first field is f_type
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.statfs(path.encode(), buffer) == 0 and int.from_bytes(buffer.raw[:8], "little") == BPFFS_MAGIC


def mount(source: str, target: str, fstype: str) -> None:
    """Mounts a kernel file system; a failure is one line that says how to do it by hand."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        code = ctypes.get_errno()
        message = (f"{fstype} is not mounted at {target} and mounting it failed ({os.strerror(code)}): "
                   f"run as root, or mount it: mount -t {fstype} {source} {target}")
        raise BpfPermissionError(code, message) if code == errno.EPERM else PyexecError(message)
