"""Writing a result to a path a user named (--output, --save), as root, safely.

- "-" is standard output.
- A regular file is replaced atomically (a temporary file renamed over it) and
  keeps its mode and owner; a new file gets the umask's mode.
- Anything else that exists (a device such as /dev/null, a FIFO, /dev/stdout) is
  written through: opened and written, never replaced.
- A symbolic link to a regular file is refused: replacing what it points to
  would let whoever made the link choose the file root overwrites.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile

from .errors import PyexecError

STDOUT = "-"


class OutputPathError(PyexecError, ValueError):
    """A path pyexec will not write a result to."""


def check(path: str) -> None:
    """Refuses, before any work, a path that write() would refuse."""
    _kind(path)


def write(path: str, data: bytes) -> None:
    """Writes data to path as the module says; readers of a regular file see
    the old one or the whole new one."""
    kind, existing = _kind(path)
    if kind == "stdout":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    elif kind == "through":
        with open(path, "wb") as out:
            out.write(data)
    else:
        _replace(path, data, existing)


def _kind(path: str) -> tuple[str, os.stat_result | None]:
    """("stdout" | "through" | "replace", the stat of the file replaced or None)."""
    if path == STDOUT:
        return "stdout", None
    if not path:
        raise OutputPathError("an empty path: name a file, or - for standard output")
    try:
        target = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise OutputPathError(f"{path} is a symbolic link to nothing: name the file itself") from None
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise OutputPathError(f"{path}: no such directory") from None
        return "replace", None
    except OSError as error:
        raise OutputPathError(f"cannot write {path}: {error.strerror}") from None
    if stat.S_ISDIR(target.st_mode):
        raise OutputPathError(f"{path} is a directory: name a file in it")
    if not stat.S_ISREG(target.st_mode):
        return "through", None
    if os.path.islink(path):
        raise OutputPathError(f"{path} is a symbolic link: name the file it points to, {os.path.realpath(path)}")
    return "replace", target


def _umask() -> int:
    with open("/proc/self/status") as status:
        line = next((line for line in status if line.startswith("Umask:")), "Umask:\t0022")
    return int(line.split()[1], 8)


def _replace(path: str, data: bytes, existing: os.stat_result | None) -> None:
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".pyexec-")
    try:
        if existing is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:  # the owner first: a chown clears the set-id bits the mode then restores
            os.fchown(fd, existing.st_uid, existing.st_gid)
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
