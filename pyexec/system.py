"""The kernel's file systems pyexec needs, mounted where they are missing."""

from __future__ import annotations

import errno
import os

from .errors import BpfPermissionError, PyexecError

TRACEFS = "/sys/kernel/tracing"
TRACEFS_IN_DEBUGFS = "/sys/kernel/debug/tracing"  # where kernels before 4.1, and some setups, have it
BPFFS = "/sys/fs/bpf"
BPFFS_MAGIC = 0xCAFE4A11


def tracefs() -> str | None:
    """Where tracefs is mounted (its own mount, or debugfs's copy), if it is."""
    return next((path for path in (TRACEFS, TRACEFS_IN_DEBUGFS) if os.path.isdir(f"{path}/events")), None)


def mounts(fstype: str) -> list[str]:
    """Where file systems of this type are mounted, as this process sees them."""
    with open("/proc/self/mounts") as table:
        return [fields[1] for fields in map(str.split, table) if fields[2:3] == [fstype]]


def ensure_tracefs() -> str:
    """Mounts tracefs at /sys/kernel/tracing unless it (or debugfs's copy) is there;
    returns where it is. Mounted but out of this process's reach is a permission
    error, not a missing mount."""
    found = tracefs()
    if found:
        return found
    mounted = mounts("tracefs")
    if mounted:
        raise BpfPermissionError(
            errno.EACCES, f"tracefs is mounted at {mounted[0]} but this process cannot read it: "
            "run as root, or give this user access to it (its mode, or mount option gid=)",
        )
    mount("nodev", TRACEFS, "tracefs")
    return TRACEFS


def ensure_bpffs(directory: str) -> None:
    """Mounts bpffs at /sys/fs/bpf when directory's parent is not one."""
    parent = os.path.dirname(os.path.normpath(directory))
    if _is_bpffs(parent):
        return
    if parent != BPFFS:
        raise PyexecError(f"{parent} is not a BPF file system: pin under {BPFFS}")
    mount("bpf", BPFFS, "bpf")


def _is_bpffs(path: str) -> bool:
    import ctypes

    buffer = ctypes.create_string_buffer(120)  # struct statfs, whose first field is f_type
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.statfs(path.encode(), buffer) == 0 and int.from_bytes(buffer.raw[:8], "little") == BPFFS_MAGIC


def mount(source: str, target: str, fstype: str) -> None:
    """Mounts a kernel file system; a failure is one line that says how to do it by hand."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        code = ctypes.get_errno()
        message = (f"{fstype} is not mounted at {target} and mounting it failed ({os.strerror(code)}): "
                   f"run as root, or mount it: mount -t {fstype} {source} {target}")
        raise BpfPermissionError(code, message) if code == errno.EPERM else PyexecError(message)
