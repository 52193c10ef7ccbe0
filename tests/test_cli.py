"""The pyexec command line, run as a user would: in a subprocess."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable

import pytest

from pyexec.cli import main

from .conftest import bpf, copy_true, report_of
from .workload import exec_in_child, posix_spawn_many

PYEXEC = [sys.executable, "-m", "pyexec"]


def start_run(*args: str) -> subprocess.Popen:
    """Starts `pyexec run` and returns once it says it is counting."""
    process = subprocess.Popen(
        [*PYEXEC, "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    line = process.stderr.readline()
    assert b"counting" in line, line + process.stderr.read()
    return process


def finish(process: subprocess.Popen) -> bytes:
    """Waits for `pyexec run` to end, checks it exited 0, and returns its stdout."""
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert b"\r" not in stderr  # no status line in a pipe
    return stdout


def run_around(workload: Callable[[], None], *args: str) -> bytes:
    """Runs workload() while `pyexec run ARGS` counts; returns what it printed."""
    process = start_run(*args)
    workload()
    return finish(process)


@pytest.mark.kernels
@bpf
def test_json_counts_a_workload_started_after_attach(true_binary: Path) -> None:
    stdout = run_around(lambda: posix_spawn_many(true_binary, 7), "--duration", "3", "--format", "json",
                        "--path-prefix", str(true_binary.parent))
    result = json.loads(stdout)
    assert set(result) == {
        "host", "key", "mode", "by", "filters", "start", "end",
        "counts", "total", "distinct", "dropped", "truncated", "errors", "missed", "collisions", "duration_s"
    }
    counts = {entry["path"]: entry["count"] for entry in result["counts"]}
    assert counts[str(true_binary)] == 7
    assert result["total"] == sum(counts.values())
    assert result["distinct"] == len(counts)
    assert (result["dropped"], result["truncated"], result["errors"], result["missed"], result["collisions"]) == (0,) * 5
    assert 2.9 < result["duration_s"] < 10
    ranked = [entry["count"] for entry in result["counts"]]
    assert ranked == sorted(ranked, reverse=True)


@bpf
def test_top_limits_the_rows_but_not_the_totals(workdir: Path) -> None:
    binaries = [copy_true(workdir / f"true{i}") for i in range(3)]

    def workload() -> None:
        for times, binary in enumerate(binaries, start=20):
            posix_spawn_many(binary, times)

    result = json.loads(run_around(workload, "--duration", "2", "--format", "json", "--top", "1",
                                   "--path-prefix", str(workdir)))  # the host's executions apart
    assert result["counts"] == [{"path": str(binaries[-1]), "truncated": False, "count": 22}]
    assert result["total"] == 20 + 21 + 22
    assert result["distinct"] == 3


# A name with everything CSV must quote, and bytes that are not UTF-8.
AWKWARD_NAME = b'a,b "c"\nd\xff'


@bpf
def test_csv_quotes_awkward_paths_and_keeps_their_bytes(workdir: Path) -> None:
    binary = copy_true(os.fsencode(workdir) + b"/" + AWKWARD_NAME)
    stdout = run_around(lambda: posix_spawn_many(binary, 4), "--duration", "2", "--format", "csv")
    rows = list(csv.reader(io.StringIO(os.fsdecode(stdout), newline="")))
    assert rows[0] == ["count", "truncated", "path"]
    counts = {os.fsencode(path): int(count) for count, truncated, path in rows[1:] if truncated == "false"}
    assert counts[binary] == 4


@bpf
def test_json_keeps_the_bytes_of_a_non_utf8_path(workdir: Path) -> None:
    binary = copy_true(os.fsencode(workdir) + b"/" + AWKWARD_NAME)
    stdout = run_around(lambda: posix_spawn_many(binary, 2), "--duration", "2", "--format", "json")
    stdout.decode("ascii")  # the document itself is plain ASCII
    counts = {os.fsencode(e["path"]): e["count"] for e in json.loads(stdout)["counts"]}
    assert counts[binary] == 2


@bpf
def test_table_shows_the_count_and_the_lost_executions(true_binary: Path) -> None:
    stdout = run_around(lambda: posix_spawn_many(true_binary, 5), "--duration", "2")
    lines = stdout.decode().splitlines()
    assert lines[0].split() == ["COUNT", "PATH"]
    assert f"5  {true_binary}" in [line.strip() for line in lines]
    assert "dropped 0 · truncated 0 · errors 0" in lines[-1]


@bpf
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_the_run_and_prints_the_counts(true_binary: Path, stop_signal) -> None:
    process = start_run("--format", "json")
    posix_spawn_many(true_binary, 3)
    process.send_signal(stop_signal)
    counts = {e["path"]: e["count"] for e in json.loads(finish(process))["counts"]}
    assert counts[str(true_binary)] == 3


def test_a_bad_format_is_a_one_line_usage_error() -> None:
    result = subprocess.run([*PYEXEC, "run", "--format", "xml"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "--format" in result.stderr and "'xml'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_map_too_big_for_the_memory_is_a_one_line_usage_error() -> None:
    result = subprocess.run([*PYEXEC, "run", "--max-entries", str(2**31 - 1)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "GiB" in result.stderr and "choose fewer" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    result = subprocess.run([*PYEXEC, "run", "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("pyexec: No such option: --bogus")


def test_without_capabilities_it_exits_77_and_names_them() -> None:
    # As root, drop every capability; any other user has none to start with.
    drop_all = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]
    if os.geteuid() != 0:
        drop_all = []
    result = subprocess.run(
        [*drop_all, *PYEXEC, "run", "--duration", "1"], capture_output=True, text=True
    )
    assert result.returncode == 77, result.stderr
    assert result.stderr.count("\n") == 1
    assert "lacks CAP_BPF and CAP_PERFMON" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_names_pyexec_libbpf_and_the_kernel() -> None:
    result = subprocess.run([*PYEXEC, "version"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pyexec ")
    assert lines[1].startswith("libbpf 1.")
    assert lines[2] == f"kernel {os.uname().release}"


def test_help_documents_the_exit_codes() -> None:
    result = subprocess.run([*PYEXEC, "--help"], capture_output=True, text=True, check=True)
    text = " ".join(result.stdout.split())
    for code in ("0 ok", "2 usage error", "69 unsupported kernel", "77 no permission", "130 interrupted"):
        assert code in text


def test_version_h_and_bare_pyexec(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("pyexec ")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "-h"])
    assert exit_info.value.code == 0 and "Usage: pyexec run" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([])
    output = capsys.readouterr()
    assert "Usage: pyexec" in output.out and output.err == ""  # help, and no empty error line


@bpf
def test_verbose_shows_libbpf_log_on_stderr() -> None:
    result = subprocess.run(
        [*PYEXEC, "run", "--duration", "0", "--verbose", "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    libbpf_lines = [line for line in result.stderr.splitlines() if line.startswith("pyexec.libbpf: ")]
    assert any("sched_process_exec" in line or "count_exec" in line for line in libbpf_lines)
    quiet = subprocess.run([*PYEXEC, "run", "--duration", "0"], capture_output=True, text=True)
    assert "pyexec.libbpf" not in quiet.stderr


@pytest.mark.kernels
def test_a_kernel_without_btf_exits_69(monkeypatch, capsys) -> None:
    monkeypatch.setattr("pyexec.program.KERNEL_BTF", "/nonexistent/btf/vmlinux")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--duration", "0"])
    assert exit_info.value.code == 69
    error = capsys.readouterr().err
    assert error.startswith("pyexec: error: /nonexistent/btf/vmlinux is missing")
    assert "CONFIG_DEBUG_INFO_BTF" in error


@bpf
def test_json_carries_the_breakdown_fields(true_binary: Path) -> None:
    stdout = run_around(
        lambda: posix_spawn_many(true_binary, 3),
        "--duration", "2", "--format", "json", "--by", "path,uid,comm,parent,cgroup",
    )
    (ours,) = [row for row in json.loads(stdout)["counts"] if row["path"] == str(true_binary)]
    assert set(ours) == {"path", "truncated", "uid", "user", "comm", "parent", "cgroup", "container", "count"}
    assert (ours["uid"], ours["user"], ours["comm"], ours["count"]) == (0, "root", "true", 3)


@bpf
def test_a_document_says_what_was_counted_where_and_when(true_binary: Path) -> None:
    before = time.time()
    stdout = run_around(lambda: posix_spawn_many(true_binary, 2), "--duration", "2", "--format", "json",
                        "--key", "invoked", "--comm", "true", "--uid", "0", "--by", "comm,path")
    result = json.loads(stdout)
    assert (result["host"], result["key"], result["mode"], result["by"]) == (os.uname().nodename, "invoked", "exec",
                                                                            ["path", "comm"])
    assert result["filters"] == {"uids": [0], "cgroup": None, "comm": "true", "path_prefix": None,
                                 "exclude_self": True}
    start, end = (datetime.datetime.fromisoformat(result[name]).timestamp() for name in ("start", "end"))
    assert before - 1 < start < end < time.time() + 1 and 1.9 < end - start < 10


def test_an_unknown_breakdown_is_a_usage_error() -> None:
    result = subprocess.run([*PYEXEC, "run", "--by", "path,colour"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "'path,colour'" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--uid", "no-such-user-here", "no such user"),
        ("--cgroup", "/no/such/cgroup", "no such cgroup"),
        ("--path-prefix", "", "a path prefix is 1 to 4095 bytes"),
        ("--comm", "much-too-long-for-a-comm", "a command name is 1 to 15 bytes"),
    ],
)
def test_bad_filter_values_are_usage_errors_before_loading(option: str, value: str, says: str) -> None:
    result = subprocess.run([*PYEXEC, "run", option, value], capture_output=True, text=True)
    assert result.returncode == 2
    assert says in result.stderr and result.stderr.count("\n") == 1
    assert "counting" not in result.stderr


@bpf
def test_attempts_json_has_outcomes_per_entry(workdir: Path) -> None:
    missing = workdir / "missing"

    def workload() -> None:
        for _ in range(2):
            exec_in_child(lambda: os.execv(missing, [missing]))

    stdout = run_around(workload, "--duration", "2", "--format", "json", "--mode", "attempts")
    (ours,) = [row for row in json.loads(stdout)["counts"] if row["path"] == str(missing)]
    assert ours == {"path": str(missing), "truncated": False, "count": 2, "outcomes": {"ENOENT": 2}}


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--duration", "nan"], "--duration"),
        (["--duration", "inf"], "--duration"),
        (["--interval", "1e300"], "--interval"),
        (["--cgroup", ""], "--cgroup"),
        (["--comm", ""], "--comm"),
    ],
)
def test_bad_numbers_and_empty_filters_are_usage_errors_naming_the_option(option: list[str], says: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", *option])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert says in error and "Traceback" not in error


# A user with CAP_BPF and CAP_PERFMON but not root: counting works, what needs more says so.
AS_BPF_USER = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               "--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"]


@bpf
@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to another user needs root")
@pytest.mark.parametrize(
    ("command", "says"),
    [
        # tracefs is root's alone (0700, as the kernel mounts it), or not mounted at all.
        (["run", "--mode", "attempts", "--duration", "0"], r"tracefs is mounted at|mounting it failed \(Operation not permitted"),
        (["maps"], "lacks CAP_SYS_ADMIN"),
    ],
)
def test_what_the_capabilities_do_not_cover_is_a_permission_error(command: list[str], says: str) -> None:
    result = subprocess.run([*AS_BPF_USER, *PYEXEC, *command], capture_output=True, text=True)
    assert result.returncode == 77, result.stderr
    assert re.search(says, result.stderr) and result.stderr.count("\n") == 1


def closing(fd: int) -> Callable[[], None]:
    return lambda: os.close(fd)


@bpf
def test_a_closed_stdout_is_one_clear_line_before_counting() -> None:
    result = subprocess.run([*PYEXEC, "run", "--duration", "0"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=closing(1))
    assert result.returncode == 1
    assert "standard output is closed" in result.stderr and "internal error" not in result.stderr
    assert result.stderr.count("\n") == 1


@bpf
def test_a_closed_stderr_still_gives_the_counts() -> None:
    result = subprocess.run([*PYEXEC, "run", "--duration", "0", "--format", "json"], stdout=subprocess.PIPE,
                            preexec_fn=closing(2))
    assert result.returncode == 0 and json.loads(result.stdout)["total"] >= 0


def test_an_ascii_only_stdout_shows_other_characters_escaped(tmp_path: Path) -> None:
    from pyexec.snapshot import save

    old, new = str(tmp_path / "old.json"), str(tmp_path / "new.json")
    save(report_of([]), old)
    save(report_of({"/opt/tést·": 2}), new)
    for environment in ({"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}):
        result = subprocess.run([*PYEXEC, "diff", old, new], capture_output=True,
                                env={**os.environ, **environment})
        assert result.returncode == 0, result.stderr
        assert b"/opt/t" in result.stdout and b"internal error" not in result.stderr


@bpf
def test_ctrl_c_at_any_moment_of_start_up_is_quiet() -> None:
    for delay in (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3):
        process = subprocess.Popen([*PYEXEC, "run", "--duration", "5", "--format", "json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        if b"init_import_site" in stderr or (b"Traceback" in stderr and b"/pyexec/" not in stderr):
            continue  # still in the interpreter's own start (site, runpy), before any code of ours
        assert b"Traceback" not in stderr and b"internal error" not in stderr, (delay, stderr)
        # Before counting began: 130 (or, before Python's own handler is in place, death by
        # SIGINT, which a shell reports as 130 too) and nothing on stdout; after: the counts, and 0.
        outcomes = ((130, True), (-signal.SIGINT, True), (0, False))
        assert (process.returncode, stdout == b"") in outcomes, (delay, process.returncode, stderr)


def test_a_table_in_a_pipe_has_no_trailing_padding(tmp_path: Path) -> None:
    from pyexec.snapshot import save

    old, new = str(tmp_path / "old.json"), str(tmp_path / "new.json")
    save(report_of([]), old)
    save(report_of({"/a/very/long/path/to/a/binary": 2, "/b": 1}), new)
    result = subprocess.run([*PYEXEC, "diff", old, new], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert any(line.endswith("/b") for line in lines)
    assert all(line == line.rstrip() for line in lines), lines


@pytest.mark.parametrize("command", ["run", "top", "start", "serve", "show", "stop", "status", "diff", "doctor"])
def test_help_in_a_pipe_cuts_no_option_text(command: str) -> None:
    result = subprocess.run([*PYEXEC, command, "--help"], capture_output=True, text=True, env={
        key: value for key, value in os.environ.items() if key not in ("COLUMNS", "TERMINAL_WIDTH")})
    assert result.returncode == 0 and "\u2026" not in result.stdout, result.stdout
    if command == "run":
        assert "cgroup." in result.stdout  # the last of --by's fields, whole


def test_doctors_kernel_row_says_what_is_tested_and_gives_no_fix() -> None:
    from pyexec.doctor import checks
    from pyexec.kernel import MINIMUM, TESTED

    (kernel,) = [check for check in checks() if check.name == "kernel"]
    assert kernel.status == "info" and kernel.fix == ""
    assert f"tested on {TESTED} and newer" in kernel.detail and MINIMUM in kernel.detail


def test_the_oldest_kernel_tested_is_the_manifests_oldest() -> None:
    from pyexec.kernel import TESTED

    manifest = Path(__file__).parent / "kernels" / "manifest"
    versions = [line.split()[0] for line in manifest.read_text().splitlines() if line and not line.startswith("#")]
    oldest = min(versions, key=lambda version: tuple(map(int, version.split("."))))
    assert TESTED == f"Linux {oldest}"


def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(workdir: Path) -> None:
    from pyexec.report import Report

    from pyexec.counter import ExecLosses

    rows = [{"comm": name, "count": 1} for name in ("=1+2", "+cmd", "-x", "@SUM(A1)", "'quoted", "plain")]
    out = io.BytesIO()
    Report(rows, ExecLosses(0, 0, 0), 1.0, by=("comm",)).write_csv(out)
    cells = [row[1] for row in csv.reader(io.StringIO(out.getvalue().decode()))][1:]
    assert sorted(cells) == sorted(["'=1+2", "'+cmd", "'-x", "'@SUM(A1)", "''quoted", "plain"])
