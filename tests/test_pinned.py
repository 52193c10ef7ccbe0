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
from pyexec._contract import EXEC_PIN_LINK_PREFIX

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


def kernel_memory(pin_dir: str) -> dict[str, int]:
    """The bytes of kernel memory of each map pinned there but the settings, as bpftool says."""
    shown = {}
    for name in os.listdir(pin_dir):
        if not name.startswith(EXEC_PIN_LINK_PREFIX) and name != "settings":
            listing = subprocess.run(["bpftool", "map", "show", "pinned", f"{pin_dir}/{name}", "--json"],
                                     capture_output=True, check=True)
            shown[name] = json.loads(listing.stdout)["bytes_memlock"]
    return shown


def kernel_objects(pin_dir: str) -> list[tuple[str, int]]:
    """The ids of the pinned maps, links and the programs of the links, from the kernel."""
    ids = []
    for name in os.listdir(pin_dir):
        kind = "link" if name.startswith(EXEC_PIN_LINK_PREFIX) else "map"
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
    assert status["memory"] == kernel_memory(pin_dir) and status["memory"]["exec_count"] > 16384 * 8
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
        assert counter.counts() == {str(binary): 3}
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
        settings = counter.settings
        assert (settings.key, settings.by, settings.path_prefix) == ("invoked", ("path", "comm"), str(workdir))
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
                        ("exec_losses", "type percpu_array key 4 value 32 entries 1"),
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


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Reset records of the test's own (not /run/pyexec), for pinned.* in this process."""
    directory = tmp_path / "records"
    monkeypatch.setattr(pinned, "BASELINES", str(directory))
    return directory


def count_of(report, binary: Path) -> int:
    return sum(row["count"] for row in report.rows if row["path"] == str(binary))


def shown_here(pin_dir: str, binary: Path) -> int:
    with ExecCounter.open_pinned(pin_dir) as counter:
        return count_of(pinned.report(counter, pin_dir), binary)


def test_a_damaged_reset_record_is_replaced_by_reset_and_does_not_stop_stop(
    workdir: Path, pin_dir: str, records: Path
) -> None:
    binary = copy_true(workdir / "true")
    pinned.start(ExecCounter(path_prefix=str(workdir)), pin_dir)
    posix_spawn_many(binary, 3)
    pinned.reset(pin_dir)
    Path(pinned.baseline_path(pin_dir)).write_text("{damaged")
    with pytest.raises(pinned.DamagedRecordError, match="pyexec reset makes a new one"):
        shown_here(pin_dir, binary)
    with pytest.warns(UserWarning, match="damaged"):
        assert count_of(pinned.reset(pin_dir), binary) == 3  # since the start: the record was lost
    posix_spawn_many(binary, 2)
    assert shown_here(pin_dir, binary) == 2
    Path(pinned.baseline_path(pin_dir)).write_text("{damaged")
    with pytest.warns(UserWarning, match="since the start"):
        assert count_of(pinned.stop(pin_dir), binary) == 5
    assert not os.path.exists(pin_dir) and not os.path.exists(pinned.baseline_path(pin_dir))


@pytest.mark.parametrize("make", ["group-writable", "another user's", "a symbolic link"])
def test_a_record_directory_that_is_not_roots_alone_is_not_trusted(
    workdir: Path, pin_dir: str, records: Path, make: str
) -> None:
    binary = copy_true(workdir / "true")
    pinned.start(ExecCounter(path_prefix=str(workdir)), pin_dir)
    posix_spawn_many(binary, 3)
    pinned.reset(pin_dir)  # a record that says 3 were set aside
    if make == "group-writable":
        records.chmod(0o770)
    elif make == "another user's":
        os.chown(records, 65534, 65534)
    else:
        planted = records.with_name("planted")
        records.rename(planted)
        records.symlink_to(planted)
    with pytest.raises(pinned.RecordError, match="cannot be trusted"):
        shown_here(pin_dir, binary)
    with pytest.warns(UserWarning, match="cannot be trusted"):
        assert count_of(pinned.stop(pin_dir), binary) == 3  # stop still ends it, with the counts since the start
    assert not os.path.exists(pin_dir)


def test_records_are_kept_by_the_whole_pin_directory_not_its_last_name(
    workdir: Path, pin_dir: str, records: Path
) -> None:
    binary = copy_true(workdir / "true")
    first, second = f"{pin_dir}/a/same", f"{pin_dir}/b/same"
    for directory in (first, second):
        os.makedirs(os.path.dirname(directory), 0o700)
        pinned.start(ExecCounter(path_prefix=str(workdir)), directory)
    try:
        posix_spawn_many(binary, 3)
        pinned.reset(first)
        posix_spawn_many(binary, 2)
        pinned.reset(second)  # once undid the reset of the first
        assert (shown_here(first, binary), shown_here(second, binary)) == (2, 0)
        assert pinned.baseline_path(first) != pinned.baseline_path(second)
        assert pinned.baseline_path(PIN_DIR_NAMED_PYEXEC) != pinned.baseline_path(pinned.PIN_DIRECTORY)
    finally:
        for directory in (first, second):
            pinned.stop(directory)
            os.rmdir(os.path.dirname(directory))
    assert not os.listdir(records)  # each record gone with its counter


PIN_DIR_NAMED_PYEXEC = "/sys/fs/bpf/elsewhere/pyexec"


def test_show_never_counts_below_zero_while_resets_race_with_it(workdir: Path, pin_dir: str, records: Path) -> None:
    binary = copy_true(workdir / "true")
    pinned.start(ExecCounter(path_prefix=str(workdir)), pin_dir)
    storm = multiprocessing.get_context("fork").Process(target=fork_exec_many, args=(binary, STORM))
    resetting = multiprocessing.get_context("fork").Process(
        target=lambda: [pinned.reset(pin_dir) for _ in range(200)])
    storm.start()
    resetting.start()
    seen = []
    with ExecCounter.open_pinned(pin_dir) as counter:
        while resetting.is_alive() or storm.is_alive():
            seen += [row["count"] for row in pinned.report(counter, pin_dir).rows]
    storm.join()
    resetting.join()
    pinned.stop(pin_dir)
    assert (storm.exitcode, resetting.exitcode) == (0, 0)
    assert len(seen) > 50 and min(seen) >= 0


def test_a_start_killed_half_way_leaves_nothing_that_blocks_the_next(pin_dir: str) -> None:
    # What a start killed between mkdir and the last pin leaves: pins but no link.
    abandoned = f"{pin_dir}{pinned.STARTING}{2**22 + 12345}"  # a pid above pid_max: not alive
    os.mkdir(abandoned, 0o700)
    subprocess.run(["bpftool", "map", "create", f"{abandoned}/exec_count", "type", "hash", "key", "8", "value", "8",
                    "entries", "4", "name", "exec_count"], check=True)
    pyexec("start", "--pin-dir", pin_dir)
    assert not os.path.exists(abandoned) and pinned.is_running(pin_dir)
    pyexec("stop", "--pin-dir", pin_dir)
    # An older pyexec pinned in place: a directory of maps and no link, which stop removes.
    os.mkdir(pin_dir, 0o700)
    subprocess.run(["bpftool", "map", "create", f"{pin_dir}/exec_count", "type", "hash", "key", "8", "value", "8",
                    "entries", "4", "name", "exec_count"], check=True)
    assert "never finished starting" in pyexec("start", "--pin-dir", pin_dir, code=1).stderr
    assert "never finished starting" in pyexec("stop", "--pin-dir", pin_dir).stderr
    assert not os.path.exists(pin_dir)


def test_a_pin_directory_reached_through_a_symbolic_link_is_the_same_counter(
    workdir: Path, pin_dir: str, tmp_path: Path
) -> None:
    binary = copy_true(workdir / "true")
    link = tmp_path / "link"
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir))
    link.symlink_to(pin_dir)
    posix_spawn_many(binary, 3)
    pyexec("reset", "--pin-dir", str(link))
    posix_spawn_many(binary, 2)
    assert shown(pin_dir, binary) == 2 and shown(str(link), binary) == 2
    assert shown(str(link), binary, "stop") == 2
    assert not os.path.exists(pin_dir)


def as_nobody(*args: str, capabilities: bool) -> subprocess.CompletedProcess:
    """pyexec ARGS as uid 65534, with CAP_BPF and CAP_PERFMON or with no capability."""
    caps = ["--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"] if capabilities else []
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *caps, *PYEXEC, *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": "/"})


def test_without_the_capabilities_every_pinned_command_says_so_and_exits_77(pin_dir: str) -> None:
    pyexec("start", "--pin-dir", pin_dir)
    try:
        for command in ("show", "status", "reset", "stop", "serve"):
            result = as_nobody(command, "--pin-dir", pin_dir, capabilities=False)
            assert result.returncode == 77, (command, result.stderr)
            assert result.stderr.count("\n") == 1 and "Errno" not in result.stderr, result.stderr
        assert "cannot tell whether a counter is pinned" in as_nobody("status", "--pin-dir", pin_dir,
                                                                       capabilities=False).stderr
        assert pinned.is_running(pin_dir)
    finally:
        pyexec("stop", "--pin-dir", pin_dir)


def test_with_only_cap_bpf_and_cap_perfmon_stop_prints_the_counts_and_reset_says_why_not(
    workdir: Path, pin_dir: str
) -> None:
    binary = copy_true(workdir / "true")
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir))
    for path in (pin_dir, *(os.path.join(pin_dir, name) for name in os.listdir(pin_dir))):
        os.chown(path, 65534, 65534)  # a counter that user may read (bpffs checks its modes)
    posix_spawn_many(binary, 3)
    reset = as_nobody("reset", "--pin-dir", pin_dir, capabilities=True)
    assert reset.returncode == 77 and "run pyexec reset as root" in reset.stderr, reset.stderr
    stop = as_nobody("stop", "--pin-dir", pin_dir, "--format", "json", capabilities=True)
    assert stop.returncode == 0, stop.stderr
    assert [row["count"] for row in json.loads(stop.stdout)["counts"] if row["path"] == str(binary)] == [3]
    assert not os.path.exists(pin_dir)
