"""Pinned counting (start, show, status, reset, stop) against the real kernel:
the counts outlive every pyexec process, and stop leaves nothing behind."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import pytest

from pyexec import ExecCounter, UnsupportedKernelError, pinned

from .conftest import STORM, bpf, copy_true
from .test_cli import PYEXEC
from .workload import exec_in_child, fork_exec_many, posix_spawn_many

pytestmark = bpf


def pyexec(*args: str, code: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([*PYEXEC, *args], capture_output=True, text=True)
    assert result.returncode == code, result.stderr
    return result


def shown(pin_dir: str, binary: Path, command: str = "show") -> int:
    """binary's count as pyexec show (or stop) prints it. Only its: a path too deep to be
    checked against the prefix would count too, were another process to exec one meanwhile."""
    document = json.loads(pyexec(command, "--pin-dir", pin_dir, "--format", "json").stdout)
    return sum(row["count"] for row in document["counts"] if row["path"] == str(binary))


def kernel_objects(pin_dir: str) -> list[tuple[str, int]]:
    """The ids of the pinned maps, links and the programs of the links, from the kernel."""
    ids = []
    for name in os.listdir(pin_dir):
        kind = "link" if name.startswith(pinned.LINK_PREFIX) else "map"
        info = json.loads(subprocess.run(["bpftool", kind, "show", "pinned", f"{pin_dir}/{name}", "--json"],
                                         capture_output=True, text=True, check=True).stdout)
        ids.append((kind, info["id"]))
        if kind == "link":
            ids.append(("prog", info["prog_id"]))
    return ids


def exists(kind: str, number: int) -> bool:
    return subprocess.run(["bpftool", kind, "show", "id", str(number)], capture_output=True).returncode == 0


def left(objects: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Those of the objects the kernel still has, once it has had a moment: it frees
    maps and programs after their last reference goes, from a work queue."""
    deadline = time.monotonic() + 5
    while (remaining := [(kind, number) for kind, number in objects if exists(kind, number)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return remaining


def test_a_pinned_counter_counts_with_no_pyexec_running_and_stop_leaves_nothing(workdir: Path, pin_dir: str) -> None:
    binary = copy_true(workdir / "true")
    # --key invoked: every path is checked against the prefix (none is too deep), so only ours count.
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir), "--key", "invoked")  # and returns
    assert oct(os.stat(pin_dir).st_mode & 0o777) == "0o700"
    posix_spawn_many(binary, 3)
    assert shown(pin_dir, binary) == 3
    posix_spawn_many(binary, 2)
    assert shown(pin_dir, binary) == 5
    status = json.loads(pyexec("status", "--pin-dir", pin_dir, "--format", "json").stdout)
    assert (status["running"], status["entries"], status["total"], status["dropped"]) == (True, 1, 5, 0)
    assert status["filters"]["path_prefix"] == str(workdir) and status["capacity"] == 16384
    objects = kernel_objects(pin_dir)
    assert {kind for kind, _ in objects} == {"map", "link", "prog"}
    assert all(exists(kind, number) for kind, number in objects)
    assert shown(pin_dir, binary, "stop") == 5
    assert not os.path.exists(pin_dir)
    assert left(objects) == []
    posix_spawn_many(binary, 1)  # nothing counts it any more
    assert "no counter is pinned" in pyexec("show", "--pin-dir", pin_dir, code=1).stderr


@pytest.mark.kernels
def test_pinned_counting_through_the_library_and_nothing_left_after_stop(workdir: Path, pin_dir: str) -> None:
    # The kernel matrix's variant of the test above: in-process (a pyexec command costs
    # seconds in an emulated guest), with the counter let go of, as the command's end does.
    binary = copy_true(workdir / "true")
    pinned.start(ExecCounter(key="invoked", path_prefix=str(workdir)), pin_dir)
    posix_spawn_many(binary, 3)
    with ExecCounter.open_pinned(pin_dir) as counter:
        assert counter.snapshot() == {str(binary): 3}
    posix_spawn_many(binary, 2)
    objects = kernel_objects(pin_dir)
    assert {kind for kind, _ in objects} == {"map", "link", "prog"}
    final = pinned.stop(pin_dir)
    assert [(row["path"], row["count"]) for row in final.rows] == [(str(binary), 5)]
    assert not os.path.exists(pin_dir) and left(objects) == []


def test_the_library_reads_a_pinned_counter_with_its_settings(workdir: Path, pin_dir: str) -> None:
    binary = copy_true(workdir / "true")
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir), "--by", "comm,path", "--key", "invoked")
    posix_spawn_many(binary, 4)
    with ExecCounter.open_pinned(pin_dir) as counter:
        assert (counter.key, counter.by, counter.path_prefix) == ("invoked", ("path", "comm"), str(workdir))
        assert [(record.path, record.comm, record.count) for record in counter.records()] == [(str(binary), "true", 4)]
    assert pinned.is_running(pin_dir)  # closing a reader leaves the counter counting
    pinned.stop(pin_dir)


def test_start_twice_and_commands_without_a_counter_are_one_clear_line(pin_dir: str) -> None:
    for command in ("show", "stop", "reset"):
        result = pyexec(command, "--pin-dir", pin_dir, code=1)
        assert result.stderr.count("\n") == 1 and "no counter is pinned" in result.stderr, result.stderr
    pyexec("start", "--pin-dir", pin_dir, "--max-entries", "64")
    again = pyexec("start", "--pin-dir", pin_dir, code=1)
    assert "a counter is already pinned at" in again.stderr and "pyexec stop ends it" in again.stderr
    assert json.loads(pyexec("status", "--pin-dir", pin_dir, "-f", "json").stdout)["capacity"] == 64
    pyexec("stop", "--pin-dir", pin_dir)


@pytest.mark.kernels
def test_reset_during_a_storm_loses_nothing(workdir: Path, pin_dir: str) -> None:
    binary = copy_true(workdir / "true")
    pinned.start(ExecCounter(path_prefix=str(workdir)), pin_dir)
    storm = multiprocessing.get_context("fork").Process(target=fork_exec_many, args=(binary, STORM))
    storm.start()
    resets = []
    while storm.is_alive():
        resets.append(sum(row["count"] for row in pinned.reset(pin_dir).rows if row["path"] == str(binary)))
    storm.join()
    assert storm.exitcode == 0
    after = sum(row["count"] for row in pinned.stop(pin_dir).rows if row["path"] == str(binary))
    # Every execution is in exactly one reset's record or in what came after the last.
    assert sum(resets) + after == STORM and len(resets) > 1


def test_start_mounts_bpffs_where_it_is_missing() -> None:
    # In a mount namespace of its own, where /sys/fs/bpf is unmounted first.
    command = " ".join(PYEXEC)
    script = (f"umount /sys/fs/bpf 2>/dev/null; ! grep -q ' /sys/fs/bpf bpf ' /proc/self/mounts && "
              f"{command} start --pin-dir /sys/fs/bpf/pyexec-mounted && grep -q ' /sys/fs/bpf bpf ' /proc/self/mounts && "
              f"{command} stop --pin-dir /sys/fs/bpf/pyexec-mounted --format json")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"] is not None


def test_a_pin_directory_of_another_layout_is_refused_and_left_as_it_is(pin_dir: str) -> None:
    # What another version of pyexec might leave: the same names, other shapes.
    os.mkdir(pin_dir, 0o700)
    for name, shape in (("exec_count", "type hash key 8 value 8 entries 4"),
                        ("exec_stats", "type percpu_array key 4 value 24 entries 1"),
                        ("uid_filter", "type hash key 4 value 1 entries 4"),
                        ("settings", "type array key 4 value 4 entries 1"),
                        ("link_count_exec", "type array key 4 value 4 entries 1")):
        subprocess.run(["bpftool", "map", "create", f"{pin_dir}/{name}", *shape.split(), "name", name[:15]],
                       check=True)
    before = sorted(os.listdir(pin_dir))
    for command in ("show", "stop", "status", "reset", "start"):
        result = pyexec(command, "--pin-dir", pin_dir, code=1)
        assert "pinned by another version of pyexec" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(os.listdir(pin_dir)) == before  # nothing destroyed


@pytest.mark.kernels
def test_pinned_attempts_count_failed_calls_or_say_why_not(workdir: Path, pin_dir: str) -> None:
    missing = workdir / "missing"
    try:
        pinned.start(ExecCounter(mode="attempts", path_prefix=str(workdir)), pin_dir)
    except UnsupportedKernelError as error:  # a kernel whose perf-event links cannot be pinned (5.10)
        assert "cannot pin the links of syscall tracepoints" in str(error) and not os.path.exists(pin_dir)
        return
    for _ in range(3):
        assert exec_in_child(lambda: os.execv(missing, [str(missing)])) != 0
    final = pinned.stop(pin_dir)
    assert [(row["path"], row["outcomes"]) for row in final.rows] == [(str(missing), {"ENOENT": 3})]
