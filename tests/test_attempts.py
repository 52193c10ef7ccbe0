"""--mode attempts: every exec call with its outcome, against the real kernel."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pyexec import ExecCounter
from pyexec.report import rows_from_records

from .conftest import OWN_UIDS, bpf, copy_true
from .workload import exec_in_child

pytestmark = bpf

RUNS = 3
STORM_UID = OWN_UIDS[1]  # no process but the test's runs as it


@pytest.mark.kernels
@pytest.mark.parametrize("key", ["invoked", "resolved"])
def test_path_searches_show_their_enoent_attempts_beside_the_success(workdir: Path, key: str) -> None:
    empty = [workdir / "empty1", workdir / "empty2"]
    for directory in empty:
        directory.mkdir()
    # A shell and a true of the test's own: the host runs the system's meanwhile.
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    shell = bin_dir / "sh"
    shutil.copy2(os.path.realpath(shutil.which("sh") or "/bin/sh"), shell)
    copy_true(bin_dir / "true")
    env = {"PATH": ":".join(map(str, [*empty, bin_dir]))}
    with ExecCounter(mode="attempts", key=key, path_prefix=f"{workdir}/") as counter:
        for _ in range(RUNS):
            # Python looks for sh by trying execve in each PATH directory; the
            # shell itself looks nosuchcmd up with stat (no exec) and runs its
            # builtin true.
            subprocess.run(["sh", "-c", "nosuchcmd; true"], env=env, stderr=subprocess.DEVNULL)
            # `exec` in a shell does search by exec.
            subprocess.run([shell, "-c", "exec true"], env=env)
        records = counter.records()
    outcomes = {row["path"]: row["outcomes"] for row in rows_from_records(records, ("path",), "attempts")}
    assert outcomes == {
        **{f"{directory}/{name}": {"ENOENT": RUNS} for directory in empty for name in ("sh", "true")},
        str(shell): {"ok": 2 * RUNS},
        str(bin_dir / "true"): {"ok": RUNS},
    }


def test_exec_calls_under_way_when_counting_starts_are_not_counted_as_errors(workdir: Path) -> None:
    # Failed exec calls by a uid of the test's own, one after another, while
    # counters attach: a call that entered before its counter attached has no
    # name remembered at its exit, and must not count at all (it was once an error).
    missing = os.fsencode(workdir / "missing")
    storm = os.fork()
    if storm == 0:
        try:
            os.setgid(STORM_UID)
            os.setuid(STORM_UID)
            while True:
                try:
                    os.execv(missing, [missing])
                except OSError:
                    pass
        finally:
            os._exit(1)
    try:
        for _ in range(10):
            with ExecCounter(mode="attempts", key="invoked", uids=[STORM_UID]) as counter:
                time.sleep(0.05)
                failed, stats = sum(record.count for record in counter.records()), counter.losses()
            assert failed > 0 and stats.errors == 0, (failed, stats)
    finally:
        os.kill(storm, signal.SIGKILL)
        os.waitpid(storm, 0)


@pytest.mark.kernels
@pytest.mark.parametrize("key", ["resolved", "invoked"])
def test_eacces_and_success_of_one_path(workdir: Path, key: str) -> None:
    # Successes after the first count in their CPU's slot, whose key is the
    # path's alone: they join the success's row, never the failure's.
    binary = copy_true(workdir / "flaky")
    with ExecCounter(mode="attempts", key=key) as counter:
        os.chmod(binary, 0o644)
        assert exec_in_child(lambda: os.execv(binary, [binary])) == 100 + errno.EACCES
        os.chmod(binary, 0o755)
        for _ in range(4):
            assert exec_in_child(lambda: os.execv(binary, [binary])) == 0
        records = counter.records()
    ours = sorted((record.outcome, record.count) for record in records if record.path == str(binary))
    assert ours == [(0, 4), (errno.EACCES, 1)]


def test_exec_mode_counts_no_failed_calls(workdir: Path) -> None:
    missing = workdir / "missing"
    with ExecCounter(mode="exec") as counter:
        assert exec_in_child(lambda: os.execv(missing, [missing])) == 100 + errno.ENOENT
        records = counter.records()
    assert all(record.outcome == 0 for record in records)
    assert str(missing) not in {record.path for record in records}


def test_attempts_mount_tracefs_when_it_is_missing(workdir: Path) -> None:
    if os.path.isdir("/sys/kernel/debug/tracing/events"):
        pytest.skip("debugfs offers tracefs too: this machine cannot show a missing tracefs")
    if os.path.isdir("/sys/kernel/tracing/events"):
        subprocess.run(["umount", "/sys/kernel/tracing"], check=True)
    missing = workdir / "missing"
    with ExecCounter(mode="attempts", key="invoked") as counter:
        exec_in_child(lambda: os.execv(missing, [missing]))
        records = counter.records()
    assert os.path.isdir("/sys/kernel/tracing/events")
    assert [(r.outcome, r.count) for r in records if r.path == str(missing)] == [(errno.ENOENT, 1)]
