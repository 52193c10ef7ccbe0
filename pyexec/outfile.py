"""Writing a result to a path a user named (--output, --save), as root, safely.

- "-" is standard output.
- A regular file is replaced atomically (a temporary file renamed over it) and
  keeps its mode; a new file gets the umask's mode. Either way it is this
  user's: a file that another user made (say in /tmp, for root to fill) is
  refused, never filled and handed back to them.
- A device (/dev/null, a terminal, /dev/stdout) is written through: opened and
  written, never replaced. So is a FIFO of this user's, once a process reads it:
  with no reader, or a reader that stops reading for WRITE_SECONDS, it is an
  error, never a wait for ever. Another user's FIFO or socket is refused.
- A symbolic link to a regular file is refused: replacing what it points to
  would let whoever made the link choose the file root overwrites.
"""

from __future__ import annotations

import errno
import functools
import os
import select
import stat
import sys
import tempfile
import time

from .errors import PyexecError

STDOUT = "-"
WRITE_SECONDS = 30.0  # how long a FIFO's or a device's reader may keep a write waiting


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
        _write_through(path, data)
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
    _check_owner(path, target)
    if not stat.S_ISREG(target.st_mode):
        return "through", None
    if os.path.islink(path):
        raise OutputPathError(f"{path} is a symbolic link: name the file it points to, {os.path.realpath(path)}")
    return "replace", target


def _check_owner(path: str, target: os.stat_result) -> None:
    """Refuses a file, FIFO or socket of another user's. Devices are written through
    whoever owns them (a terminal is its user's, and only root makes device nodes),
    and so are anonymous pipes (/dev/stdout under sudo is the invoking user's pipe):
    only a process that holds one can hand it over, nobody can plant one in a directory."""
    device = stat.S_ISCHR(target.st_mode) or stat.S_ISBLK(target.st_mode)
    if not device and not _anonymous_pipe(target) and target.st_uid != os.geteuid():
        raise OutputPathError(f"{path} belongs to uid {target.st_uid}, not to this user: pyexec writes only "
                              "its own files or new ones: remove it, or name another path")


def _anonymous_pipe(target: os.stat_result) -> bool:
    """Whether target is a pipe of pipefs (made by pipe(2)), not a FIFO in a directory."""
    return stat.S_ISFIFO(target.st_mode) and target.st_dev == _pipefs_device()


@functools.cache
def _pipefs_device() -> int:
    """The device of pipefs, which holds every pipe(2): that of a pipe made here."""
    reader, writer = os.pipe()
    try:
        return os.fstat(reader).st_dev
    finally:
        os.close(reader)
        os.close(writer)


def _write_through(path: str, data: bytes) -> None:
    """Writes to a device or FIFO, checked once more once open (it may have been
    swapped since), never waiting more than WRITE_SECONDS for its reader."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # what it opened is checked below
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise OutputPathError(f"{path} is a FIFO that no process reads: start its reader first") from None
        raise OutputPathError(f"cannot write {path}: {error.strerror}") from None
    try:
        target = os.fstat(fd)
        if stat.S_ISREG(target.st_mode) or stat.S_ISDIR(target.st_mode):
            raise OutputPathError(f"{path} changed while pyexec counted: name it again")
        _check_owner(path, target)
        deadline = time.monotonic() + WRITE_SECONDS
        view = memoryview(data)
        while view:
            if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
                raise OutputPathError(f"the reader of {path} read nothing for {WRITE_SECONDS:g} s: "
                                      f"{len(view)} bytes of {len(data)} not written")
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
    finally:
        os.close(fd)


def _umask() -> int:
    with open("/proc/self/status") as status:
        line = next((line for line in status if line.startswith("Umask:")), "Umask:\t0022")
    return int(line.split()[1], 8)


def _replace(path: str, data: bytes, existing: os.stat_result | None) -> None:
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".pyexec-")
    try:
        if existing is None:
            os.fchmod(fd, 0o666 & ~_umask())
        else:  # the group first: a chown clears the set-id bits the mode then restores
            os.fchown(fd, -1, existing.st_gid)
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
