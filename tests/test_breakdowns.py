"""Counting by uid, comm, parent and cgroup, against the real kernel."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from pathlib import Path

import pytest

from pyexec import ExecCounter
from pyexec.report import rows_from_records

from .conftest import NOBODY, bpf
from .workload import become, fork_exec_after, join_cgroup, posix_spawn_many

pytestmark = bpf

def counts_by(records, *fields: str) -> Counter:
    return Counter({tuple(getattr(r, f) for f in fields): r.count for r in records})


@pytest.mark.kernels
def test_by_uid_splits_executions_between_users(public_true: Path) -> None:
    with ExecCounter(by=("path", "uid")) as counter:
        fork_exec_after(become(0), public_true, 3)
        fork_exec_after(become(NOBODY), public_true, 5)
        records = counter.records()
    counts = counts_by(records, "path", "uid")
    assert counts[(str(public_true), 0)] == 3
    assert counts[(str(public_true), NOBODY)] == 5
    rows = [row for row in rows_from_records(records, ("path", "uid")) if row["path"] == str(public_true)]
    assert {(row["uid"], row["user"], row["count"]) for row in rows} == {(0, "root", 3), (NOBODY, "nobody", 5)}


def test_by_uid_alone_sums_over_paths(public_true: Path) -> None:
    with ExecCounter(by=("uid",)) as counter:
        fork_exec_after(become(NOBODY), public_true, 4)
        records = counter.records()
    assert all(record.path is None for record in records)
    assert counts_by(records, "uid")[(NOBODY,)] >= 4  # anything else nobody ran counts too


@pytest.mark.kernels
def test_by_comm_and_parent(true_binary: Path) -> None:
    with open("/proc/self/comm") as comm:
        own_comm = comm.read().strip()
    renamed = true_binary.with_name("a-rather-long-command-name")
    true_binary.rename(renamed)
    with ExecCounter(by=("path", "comm", "parent")) as counter:
        posix_spawn_many(renamed, 2)
        records = counter.records()
    counts = counts_by(records, "path", "comm", "parent")
    # The command name after exec is the file's name, cut to 15 bytes by the kernel.
    assert counts[(str(renamed), "a-rather-long-c", own_comm)] == 2


def spawn_named(names: list[str], binary: Path) -> None:
    """In a child that takes each command name in turn, one posix_spawn of binary."""
    pid = os.fork()
    if pid == 0:
        try:
            for name in names:
                with open("/proc/self/comm", "w") as comm:
                    comm.write(name)
            posix_spawn_many(binary, 1)
            os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.kernels
def test_a_parent_named_anew_is_one_key_whatever_its_name_was_before(true_binary: Path) -> None:
    # A shorter name may leave a longer one's bytes after its NUL in the
    # kernel (Linux 5.10 does): the key holds the name alone.
    with ExecCounter(by=("path", "parent")) as counter:
        spawn_named(["a" * 15, "short"], true_binary)
        spawn_named(["b" * 15, "short"], true_binary)
        records = counter.records()
    assert counts_by(records, "path", "parent")[(str(true_binary), "short")] == 2


@pytest.mark.kernels
def test_by_cgroup_names_the_cgroup_path(true_binary: Path, cgroup2: str) -> None:
    name = f"pyexec-test-{uuid.uuid4().hex[:8]}"
    directory = os.path.join(cgroup2, name)
    os.mkdir(directory)
    try:
        with ExecCounter(by=("path", "cgroup")) as counter:
            fork_exec_after(join_cgroup(directory), true_binary, 1)
            records = counter.records()
        rows = rows_from_records(records, ("path", "cgroup"))
        ours = [row for row in rows if row["path"] == str(true_binary)]
        assert ours == [{"path": str(true_binary), "truncated": False, "cgroup": f"/{name}", "container": None, "count": 1}]
        assert os.stat(directory).st_ino in {record.cgroup for record in records}
    finally:
        os.rmdir(directory)
