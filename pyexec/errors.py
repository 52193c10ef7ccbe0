"""pyexec's exceptions, and the one place where shim return codes become them."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import _contract as C
from .kernel import MINIMUM_FIX

# pyexec's exit codes (sysexits.h where one fits), for the CLI and doctor.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_UNSUPPORTED = 69  # EX_UNAVAILABLE: the kernel lacks BTF, a tracepoint, or rejects the program
EXIT_NO_PERMISSION = 77  # EX_NOPERM: not root, nor CAP_BPF + CAP_PERFMON
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it: Ctrl-C before counting began

ENOTSUPP = C.EXEC_ENOTSUPP  # the kernel's own "operation not supported", not in errno


class PyexecError(Exception):
    """Base class of every error pyexec raises."""

    def __str__(self) -> str:
        if isinstance(self, OSError) and self.strerror:
            return self.strerror
        return super().__str__()


class _NamedArgument(PyexecError):
    """An error about one argument to ExecCounter; `argument` names it."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class ArgumentError(_NamedArgument, ValueError):
    """A bad argument to ExecCounter; `argument` names it."""


class ArgumentTypeError(_NamedArgument, TypeError):
    """An argument to ExecCounter of the wrong type; `argument` names it."""


class BpfPermissionError(PyexecError, PermissionError):
    """The kernel refused to load or attach BPF for lack of privilege."""


class UnsupportedKernelError(PyexecError, OSError):
    """The running kernel lacks something pyexec needs (BTF, a tracepoint, a BPF feature)."""


class PyexecWarning(UserWarning):
    """Something pyexec worked around, and says so (the CLI: one line on stderr)."""


class NotPinnedError(PyexecError):
    """No counter is pinned where one was looked for (pyexec start pins one)."""


class PinnedElsewhereError(PyexecError):
    """What is pinned there is not a counter this pyexec can read or replace."""


_UNSUPPORTED = {errno.ENOENT, errno.ESRCH, errno.EOPNOTSUPP, errno.ENOSYS, ENOTSUPP}

# The capabilities pyexec may need, by their bit in CapEff.
CAPABILITY_BITS = {"CAP_BPF": 39, "CAP_PERFMON": 38, "CAP_SYS_ADMIN": 21}
COUNTING_CAPABILITIES = ("CAP_BPF", "CAP_PERFMON")  # loading and attaching
# What the verifier answers when it rejects a program.
_REJECTED = {errno.EINVAL, errno.EACCES, errno.E2BIG}


@dataclass(frozen=True)
class Action:
    """A shim call, as its errors name it ("cannot <text>: ..."), and what its
    error codes mean where they mean something of their own."""

    text: str
    load: bool = False  # a load: EACCES, EINVAL and E2BIG are the verifier's verdict
    capabilities: tuple[str, ...] = COUNTING_CAPABILITIES  # what an EPERM says this process lacks
    cases: Mapping[int, Callable[[], PyexecError]] = field(default_factory=dict)  # errno -> its error here


LOAD = Action("load the BPF program", load=True)


def check(rc: int, action: Action) -> None:
    """Raises the matching exception when a shim call returned -errno."""
    if rc >= 0:
        return
    code = -rc
    if code in action.cases:
        raise action.cases[code]()
    reason = os.strerror(code) if code != ENOTSUPP else "Operation not supported"
    # EACCES is the verifier's verdict on a load; elsewhere (a pin's directory) a permission.
    if code == errno.EPERM or (code == errno.EACCES and not action.load):
        raise BpfPermissionError(code, f"cannot {action.text}: {reason}: {permission_fix(action.capabilities)}")
    if code in _UNSUPPORTED:
        raise UnsupportedKernelError(code, f"cannot {action.text}: {reason}: {MINIMUM_FIX}")
    if code in _REJECTED and action.load:
        raise UnsupportedKernelError(
            code, f"cannot {action.text}: this kernel (Linux {os.uname().release}) rejected it ({reason}): "
            "see what pyexec doctor says, and run with --verbose for the verifier's log")
    error = PyexecError(f"cannot {action.text}: {reason} (run with --verbose for libbpf's log)")
    error.errno = code  # type: ignore[attr-defined]
    raise error


def missing_capabilities(capabilities: tuple[str, ...] = COUNTING_CAPABILITIES) -> list[str]:
    """Those of the capabilities this process does not have."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("CapEff:"))
    effective = int(line.split()[1], 16)
    return [name for name in capabilities if not effective >> CAPABILITY_BITS[name] & 1]


def grant(capabilities: tuple[str, ...] = COUNTING_CAPABILITIES) -> str:
    """How to give a process what it lacks."""
    return f"run it as root (e.g. sudo pyexec) or grant it {' and '.join(capabilities)}"


def permission_fix(capabilities: tuple[str, ...] = COUNTING_CAPABILITIES) -> str:
    missing = missing_capabilities(capabilities)
    if missing:
        return f"this process lacks {' and '.join(missing)}: {grant(capabilities)}"
    return f"the capabilities are there ({' and '.join(capabilities)}), so kernel lockdown or a security module forbids it"
