"""What pyexec needs from the kernel, and the newer features it uses where present.

The one place for kernel minimums: errors, doctor and the README's table say
what this module says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: What every part of pyexec needs: BTF-typed tracepoints (tp_btf) and the
#: kernel's BTF, which libbpf relocates the program against.
MINIMUM = "Linux 5.5"
MINIMUM_FIX = f"pyexec needs {MINIMUM} or newer (BTF-typed tracepoints), built with CONFIG_DEBUG_INFO_BTF=y"
#: The oldest kernel the tests run in (make test-kernels; tests/kernels/manifest
#: is checked against it): between MINIMUM and it, pyexec is expected to work, untested.
TESTED = "Linux 5.10"
SUPPORT = f"tested on {TESTED} and newer; expected to work from {MINIMUM}"


@dataclass(frozen=True)
class Feature:
    """A kernel feature with a fallback: the same counts either way."""

    kernel: str  # the first upstream release that has it
    what: str  # the kernel feature, as its documentation names it
    serves: str  # which part of pyexec uses it
    with_it: str  # how that part works where the kernel has it...
    without_it: str  # ...and where it does not
    used_by: dict[str, Any] = field(default_factory=dict)  # the ExecCounter options whose program uses it


#: How deep a resolved path is walked with neither iterators nor bpf_loop
#: (WALK_BOUNDED_STEPS, csrc/exec.bpf.h).
WALK_BOUNDED_LEVELS = 64

#: One row per field of struct exec_features (csrc/execcount.h), in its order.
FEATURES = {
    "task_btf": Feature(
        "Linux 5.11", "bpf_get_current_task_btf", "failed exec calls (--mode attempts)",
        "reads the failed call's task by plain loads", "reads the task with bpf_probe_read_kernel",
        {"mode": "attempts"},
    ),
    "iterators": Feature(
        "Linux 6.4", "open-coded iterators and bpf_rdonly_cast", "resolved paths (--key resolved)",
        "walks the dentries by plain loads in an open-coded iterator, up to PATH_MAX",
        "walks the dentries with bpf_probe_read_kernel (with bpf_loop where the kernel has it)",
        {"key": "resolved"},
    ),
    "name_loads": Feature(
        "Linux 6.17", "plain loads through a char * of a BTF-typed struct", "invoked names (--key invoked)",
        "reads the name a word at a time by plain loads", "reads the name with bpf_probe_read_kernel_str",
        {"key": "invoked"},
    ),
    "ancestor_cgroup": Feature(
        "Linux 5.14", "bpf_get_current_ancestor_cgroup_id in tracing programs", "the cgroup filter (--cgroup)",
        "asks bpf_get_current_ancestor_cgroup_id", "reads the ancestor's id from the task's cgroup",
        {"cgroup": "/"},
    ),
    "loop": Feature(
        "Linux 5.17", "bpf_loop", "resolved paths without iterators (--key resolved --avoid iterators)",
        "walks the dentries in bpf_loop, up to PATH_MAX",
        f"walks the dentries in a bounded loop, {WALK_BOUNDED_LEVELS} levels: a deeper path keeps its end, cut",
        {"key": "resolved", "avoid": ("iterators",)},
    ),
}


#: The feature each key's path is read with, where the kernel has it (and
#: which has a fallback of its own, like bpf_loop's for iterators, is not).
KEY_FEATURES = {feature.used_by["key"]: name for name, feature in FEATURES.items()
                if "key" in feature.used_by and "avoid" not in feature.used_by}


def describe(name: str, present: bool) -> str:
    """How the part of pyexec that uses this feature works on a kernel with or without it."""
    feature = FEATURES[name]
    if present:
        return feature.with_it
    return f"{feature.without_it} (no {feature.what}: {feature.kernel})"
