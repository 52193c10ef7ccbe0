"""Filters applied in the kernel: what they leave out is never counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from pyexec import CUT, ExecCounter

from .conftest import BOUNDED_WALK_LEVELS, NOBODY, bpf, copy_true
from .workload import become, fork_exec_after, join_cgroup, posix_spawn_many

pytestmark = bpf


@pytest.mark.kernels
def test_uid_keeps_only_that_user(public_true: Path) -> None:
    with ExecCounter(uids=[NOBODY]) as counter:
        fork_exec_after(become(0), public_true, 3)
        fork_exec_after(become(NOBODY), public_true, 5)
        counts = counter.counts()
    assert counts[str(public_true)] == 5  # root's 3 would make 8


@pytest.mark.kernels
@pytest.mark.parametrize("avoid", [(), ("ancestor_cgroup",)], ids=["helper", "read"])
def test_cgroup_keeps_that_cgroup_and_those_below(true_binary: Path, cgroup2: str, avoid: tuple[str, ...]) -> None:
    name = f"pyexec-test-{uuid.uuid4().hex[:8]}"
    parent = os.path.join(cgroup2, name)
    child = os.path.join(parent, "inner")
    os.makedirs(child)

    try:
        with ExecCounter(cgroup=f"/{name}", avoid=avoid) as counter:
            posix_spawn_many(true_binary, 3)  # in our own cgroup: left out
            fork_exec_after(join_cgroup(parent), true_binary, 2)
            fork_exec_after(join_cgroup(child), true_binary, 4)
            counts = counter.counts()
        assert counts == {str(true_binary): 6}
    finally:
        os.rmdir(child)
        os.rmdir(parent)


@pytest.mark.kernels
def test_comm_keeps_that_command_name(workdir: Path) -> None:
    wanted, other = copy_true(workdir / "wanted-one"), copy_true(workdir / "other-one")
    with ExecCounter(comm="wanted-one") as counter:
        posix_spawn_many(wanted, 2)
        posix_spawn_many(other, 3)
        counts = counter.counts()
    assert counts == {str(wanted): 2}


@pytest.mark.kernels
@pytest.mark.parametrize("key", ["resolved", "invoked"])
def test_path_prefix_applies_to_the_chosen_key(workdir: Path, key: str) -> None:
    binary = copy_true(workdir / "true")
    link = workdir.parent / f"link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(binary)
    with ExecCounter(key=key, path_prefix=str(workdir)) as counter:
        posix_spawn_many(link, 2)
        posix_spawn_many(binary, 3)
        counts = counter.counts()
    # Resolved, the link is the binary (inside the prefix); invoked, it is outside it.
    assert counts == ({str(binary): 5} if key == "resolved" else {str(binary): 3})


def test_a_resolved_path_too_deep_to_check_against_the_prefix_is_counted_as_truncated(
    workdir: Path, nested_directory
) -> None:
    # Where the walk is bounded (neither iterators nor bpf_loop), a deeper path keeps its end.
    binary = copy_true(nested_directory(BOUNDED_WALK_LEVELS + 10) / "true")
    with ExecCounter(avoid=("iterators", "loop"), path_prefix=f"{workdir}/") as counter:
        posix_spawn_many(binary, 3)
        counts, stats = counter.counts(), counter.losses()
    assert sum(counts.values()) == 3 and stats.truncated == 3
    (path,) = counts
    assert path.startswith(CUT) and str(binary).endswith(path.removeprefix(CUT))


def test_path_prefix_without_counting_by_path(workdir: Path) -> None:
    binary = copy_true(workdir / "true")
    with ExecCounter(by=("comm",), path_prefix=str(workdir)) as counter:
        posix_spawn_many(binary, 2)
        records = counter.records()
    assert [(record.path, record.comm, record.count) for record in records] == [(None, "true", 2)]


@pytest.mark.kernels
def test_exclude_self_leaves_out_this_process_and_its_children(true_binary: Path) -> None:
    shell = true_binary.with_name("sh")  # the test's own: the host runs the system's meanwhile
    shutil.copy2(os.path.realpath("/bin/sh"), shell)
    with ExecCounter(exclude_self=True) as counter:
        posix_spawn_many(true_binary, 3)  # children of this process: left out
        subprocess.run([shell, "-c", f"{true_binary}; exit 0"], check=True)  # a grandchild: counted
        counts = counter.counts()
    assert counts.get(str(true_binary)) == 1
    assert str(shell) not in counts

