"""pyexec doctor: can pyexec run here, and if not, what to do."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .counter import ExecCounter
from .errors import (
    COUNTING_CAPABILITIES, EXIT_NO_PERMISSION, EXIT_UNSUPPORTED, BpfPermissionError, PyexecError,
    UnsupportedKernelError, grant, missing_capabilities,
)
from .kernel import FEATURES, MINIMUM_FIX, SUPPORT, describe
from .program import KERNEL_BTF, libbpf_version
from .system import BPFFS, TRACEFS, mounts, tracefs


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "fail", "warn" (works, with less) or "info"
    detail: str
    fix: str = ""
    exit_code: int = 0  # what a failure of this check makes doctor exit with


def _read(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return None


def checks() -> list[Check]:
    # What the kernel can do is probed by loading the program (the last rows), not read off its version.
    results = [Check("kernel", "info", f"Linux {os.uname().release} (pyexec is {SUPPORT})", "")]

    btf = os.path.exists(KERNEL_BTF)
    results.append(
        Check("BTF", "pass", KERNEL_BTF)
        if btf
        else Check("BTF", "fail", f"{KERNEL_BTF} is missing", MINIMUM_FIX, EXIT_UNSUPPORTED)
    )

    missing = missing_capabilities()
    results.append(
        Check("permission", "pass", " and ".join(COUNTING_CAPABILITIES))
        if not missing
        else Check("permission", "fail", f"this process lacks {' and '.join(missing)}", grant(), EXIT_NO_PERMISSION)
    )

    unprivileged = _read("/proc/sys/kernel/unprivileged_bpf_disabled")
    results.append(Check("unprivileged_bpf_disabled", "info", f"kernel.unprivileged_bpf_disabled = {unprivileged}",
                         "pyexec needs CAP_BPF whatever it is"))

    lockdown = _read("/sys/kernel/security/lockdown")
    if lockdown is None:
        results.append(Check("lockdown", "info", "unknown (securityfs not mounted)"))
    elif "[confidentiality]" in lockdown:
        results.append(Check("lockdown", "fail", lockdown, "lockdown=confidentiality forbids reading kernel memory from BPF: boot without it", EXIT_NO_PERMISSION))
    else:
        results.append(Check("lockdown", "pass", lockdown))

    traced = tracefs()
    results.append(
        Check("tracefs", "pass", f"mounted at {traced}")
        if traced
        else Check("tracefs", "warn", "not mounted (needed by --mode attempts and debug-log; pyexec mounts it as root)",
                   f"mount -t tracefs nodev {TRACEFS}")
    )
    results.append(
        Check("bpffs", "pass", f"mounted at {BPFFS}")
        if BPFFS in mounts("bpf")
        else Check("bpffs", "info", "not mounted (not needed yet)", f"mount -t bpf bpf {BPFFS}")
    )
    results.append(Check("memlock", "info", "BPF memory is charged to the cgroup from Linux 5.11, "
                         "before that to RLIMIT_MEMLOCK, which libbpf raises"))

    if traced:
        syscalls = os.path.isdir(f"{traced}/events/syscalls/sys_enter_execve")
        results.append(
            Check("syscall tracepoints", "pass", "syscalls:sys_{enter,exit}_execve{,at}")
            if syscalls
            else Check("syscall tracepoints", "warn", "missing: --mode attempts cannot work",
                       "a kernel built with CONFIG_FTRACE_SYSCALLS=y")
        )

    stats = _read("/proc/sys/kernel/bpf_stats_enabled")
    results.append(Check("BPF stats", "info", f"kernel.bpf_stats_enabled = {stats} (make bench turns it on for its run)"))
    results.append(Check("libbpf", "info", f"linked libbpf {libbpf_version().lstrip('v')}"))
    results.extend(_try_loading(btf and not missing))
    return results


def _try_loading(possible: bool) -> list[Check]:
    """Loads and attaches the real program, once per kernel feature it may use
    (the first load is the default counter's), and says how each part works here."""
    name = "tp_btf/sched_process_exec"
    if not possible:
        return [Check(name, "info", "not tried: see the failures above")]
    results: list[Check] = []
    # The default counter first: if it loads, pyexec runs here.
    for feature in sorted(FEATURES, key=lambda name: FEATURES[name].used_by != {"key": "resolved"}):
        serves = FEATURES[feature].serves
        try:
            with ExecCounter(max_entries=1, **FEATURES[feature].used_by) as counter:
                present = counter.features_used[feature]
        except BpfPermissionError as error:
            return [*results, Check(name, "fail", str(error), "see the permission and lockdown rows", EXIT_NO_PERMISSION)]
        except UnsupportedKernelError as error:
            if results:  # the default counter runs: only this part of pyexec cannot
                results.append(Check(serves, "warn", str(error), "a kernel with the syscall tracepoints"))
                continue
            return [Check(name, "fail", str(error), "a kernel with BTF and this tracepoint", EXIT_UNSUPPORTED)]
        except PyexecError as error:
            return [*results, Check(name, "fail", str(error), "run pyexec run --verbose for libbpf's log", 1)]
        if not results:
            results.append(Check(name, "pass", "the counter loads and attaches"))
        results.append(Check(serves, "pass" if present else "info", describe(feature, present)))
    return results


def table(results: list[Check]):
    """The checks, one block each: its status, then its name, detail and fix on
    lines of their own, which wrap between words at any width (a grid of four
    columns left a few letters a line at 40). Every text in it is data, never markup."""
    from rich.table import Table
    from rich.text import Text

    from .report import printable

    styles = {"pass": "green", "fail": "bold red", "warn": "yellow", "info": "dim"}
    rendered = Table(box=None, pad_edge=False, show_header=False)
    rendered.add_column(no_wrap=True)
    rendered.add_column(overflow="fold")  # a word wider than the terminal is folded, never cut
    for check in results:
        text = Text(printable(check.name), style="bold")
        for label, value in (("", check.detail), ("fix: ", check.fix)):
            if value:
                text.append("\n" + label + printable(value))
        rendered.add_row(Text(check.status, style=styles[check.status]), text)
    return rendered


def exit_code(results: list[Check]) -> int:
    """0 when pyexec can run; else the code of the first failure."""
    return next((check.exit_code for check in results if check.status == "fail"), 0)
