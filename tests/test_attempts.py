"""--mode attempts: every exec call with its outcome, against the real kernel."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from pyexec import ExecCounter
from pyexec.report import rows_from_records

from .conftest import bpf, copy_true
from .workload import exec_in_child

pytestmark = bpf

RUNS = 3


@pytest.mark.kernels
@pytest.mark.parametrize("key", ["invoked", "resolved"])
def test_path_searches_show_their_enoent_attempts_beside_the_success(workdir: Path, key: str) -> None:
    empty = [workdir / "empty1", workdir / "empty2"]
    for directory in empty:
        directory.mkdir()
    bin_dir = os.path.dirname(shutil.which("sh"))
    env = {"PATH": ":".join([*map(str, empty), bin_dir, "/bin"])}
    with ExecCounter(mode="attempts", key=key) as counter:
        for _ in range(RUNS):
            # Python looks for sh by trying execve in each PATH directory; the
            # shell itself looks nosuchcmd up with stat (no exec) and runs its
            # builtin true.
            subprocess.run(["sh", "-c", "nosuchcmd; true"], env=env, stderr=subprocess.DEVNULL)
            # `exec` in a shell does search by exec.
            subprocess.run(["/bin/sh", "-c", "exec true"], env=env)
        records, stats = counter.records(), counter.stats()
    outcomes = {row["path"]: row["outcomes"] for row in rows_from_records(records, ("path",), "attempts")}
    for directory in empty:
        assert outcomes[f"{directory}/sh"] == {"ENOENT": RUNS}
        assert outcomes[f"{directory}/true"] == {"ENOENT": RUNS}
    resolve = os.path.realpath if key == "resolved" else (lambda path: path)
    shells = Counter([resolve(f"{bin_dir}/sh"), resolve("/bin/sh")])
    for shell, times in shells.items():
        assert outcomes[shell] == {"ok": times * RUNS}
    assert outcomes[resolve(f"{bin_dir}/true")] == {"ok": RUNS}
    assert not [path for path in outcomes if "nosuchcmd" in path]
    assert stats.errors == 0


@pytest.mark.kernels
def test_eacces_and_success_of_one_path(workdir: Path) -> None:
    binary = copy_true(workdir / "flaky")
    with ExecCounter(mode="attempts", key="invoked") as counter:
        os.chmod(binary, 0o644)
        assert exec_in_child(lambda: os.execv(binary, [binary])) == 100 + errno.EACCES
        os.chmod(binary, 0o755)
        assert exec_in_child(lambda: os.execv(binary, [binary])) == 0
        records = counter.records()
    ours = sorted((record.outcome, record.count) for record in records if record.path == str(binary))
    assert ours == [(0, 1), (errno.EACCES, 1)]


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
