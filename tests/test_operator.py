"""The operator's commands: top, intervals, snapshots and diff, maps, doctor, debug-log."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pyexec import ExecCounter
from pyexec.kernel import FEATURES, describe
from pyexec._shim import ffi
from pyexec.report import Report
from pyexec.snapshot import save

from .conftest import bpf, copy_true, report_of
from .test_cli import PYEXEC, finish, run_around, start_run
from .workload import posix_spawn_many

ANSI = re.compile(rb"\x1b\[[0-9;?]*[a-zA-Z]|\x1b[()][0-9A-Z]|\x1b[=>]")


def read_until(fd: int, pattern: re.Pattern, timeout: float = 15.0) -> bytes:
    """Reads a pty until its text (escape codes removed) matches pattern."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if pattern.search(ANSI.sub(b"", seen)):
                return seen
    raise AssertionError(f"never saw {pattern.pattern!r} in {ANSI.sub(b'', seen)[-2000:]!r}")


@bpf
@pytest.mark.parametrize("way_out", ["q", signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["q", "INT", "TERM", "HUP"])
def test_top_in_a_terminal_shows_the_exact_count_and_quits_cleanly(true_binary: Path, way_out) -> None:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    before = termios.tcgetattr(slave)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "250", "LINES": "50"}
    process = subprocess.Popen(
        [*PYEXEC, "top", "--interval", "0.3"], stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True, env=env,
    )
    try:
        read_until(master, re.compile(rb"pyexec top"))
        posix_spawn_many(true_binary, 5)
        row = re.compile(rb"(?m)^\s*5\s+\d+\s+[\d.]+\s+\d+%.*" + re.escape(os.fsencode(true_binary)))
        read_until(master, row)
        if way_out == "q":
            os.write(master, b"q")
        else:
            process.send_signal(way_out)
        rest = b""  # read on, or top blocks writing to a full terminal
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                rest += os.read(master, 65536)
        assert process.wait(timeout=1) == 0
        while select.select([master], [], [], 0.2)[0]:
            rest += os.read(master, 65536)
        after = termios.tcgetattr(slave)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
        os.close(slave)
    assert after[3] & (termios.ECHO | termios.ICANON) == before[3] & (termios.ECHO | termios.ICANON)
    assert b"\x1b[?1049l" in rest and b"\x1b[?25h" in rest  # left the alternate screen, cursor shown


@bpf
def test_top_once_in_a_pipe_prints_one_plain_frame(true_binary: Path) -> None:
    process = subprocess.Popen([*PYEXEC, "top", "--once", "--interval", "2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert b"watching executions" in process.stderr.readline()  # attached: the frame comes 2 s later
    posix_spawn_many(true_binary, 3)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    assert b"\x1b[" not in stdout
    lines = stdout.decode().splitlines()
    assert lines[0].startswith("pyexec top — key resolved")
    assert [line.split()[:2] for line in lines if line.endswith(str(true_binary))] == [["3", "3"]]


@bpf
def test_interval_deltas_add_up_to_the_total_and_the_workload(true_binary: Path) -> None:
    process = start_run("--interval", "1", "--count", "3", "--format", "ndjson")
    posix_spawn_many(true_binary, 7)
    time.sleep(1.2)
    posix_spawn_many(true_binary, 4)
    lines = [json.loads(line) for line in finish(process).splitlines()]
    intervals, (summary,) = lines[:-1], lines[-1:]
    assert [line["interval"]["index"] for line in intervals] == [1, 2, 3]
    assert "summary" in summary

    def ours(document) -> int:
        return sum(row["count"] for row in document["counts"] if row["path"] == str(true_binary))

    assert sum(ours(line) for line in intervals) == ours(summary) == 11
    assert sum(line["total"] for line in intervals) == summary["total"]


@bpf
def test_output_is_written_whole_to_the_file(true_binary: Path, workdir: Path) -> None:
    target = workdir / "result.json"
    stdout = run_around(lambda: posix_spawn_many(true_binary, 2), "--duration", "1.5", "-f", "json",
                        "--output", str(target))
    assert stdout == b""
    counts = {row["path"]: row["count"] for row in json.loads(target.read_text())["counts"]}
    assert counts[str(true_binary)] == 2
    assert sorted(os.listdir(workdir)) == ["result.json", "true"]  # no temporary file left


@bpf
def test_diff_of_two_snapshots_reports_the_workload_between_them(workdir: Path) -> None:
    again, fresh = copy_true(workdir / "again"), copy_true(workdir / "fresh")
    before, after = workdir / "before.json", workdir / "after.json"
    with ExecCounter() as counter:
        posix_spawn_many(again, 2)
        save(Report.of(counter), str(before))
        posix_spawn_many(again, 3)
        posix_spawn_many(fresh, 4)
        save(Report.of(counter), str(after))
    result = subprocess.run([*PYEXEC, "diff", str(before), str(after), "-f", "json"],
                            capture_output=True, text=True, check=True)
    changes = {row["path"]: row for row in json.loads(result.stdout)["changes"]}
    assert changes[str(fresh)] == {"change": "new", "old": 0, "new": 4, "delta": 4, "truncated": False, "path": str(fresh)}
    assert changes[str(again)] == {"change": "up", "old": 2, "new": 5, "delta": 3, "truncated": False, "path": str(again)}


def test_diff_warns_when_the_snapshots_were_filtered_differently(workdir: Path) -> None:
    old, new = workdir / "old.json", workdir / "new.json"
    save(replace(report_of({"/usr/bin/ls": 1}), filters={"comm": "ls", "uids": []}), str(old))
    save(replace(report_of({"/usr/bin/ls": 3}), filters={"comm": None, "uids": []}), str(new))
    result = subprocess.run([*PYEXEC, "diff", str(old), str(new), "-f", "json"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stderr.startswith("pyexec: warning: the snapshots were taken with different filters (comm)")
    document = json.loads(result.stdout)
    assert len(document["warnings"]) == 1 and document["old"]["filters"]["comm"] == "ls"
    assert [row["delta"] for row in document["changes"]] == [2]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"hello": "world"}', "is not a pyexec snapshot"),
        (b'{"format": "pyexec-snapshot", "version": 1, "cou', "not JSON, or cut short"),
        (b'{"format": "pyexec-snapshot", "version": 99}', "of version 99"),
        (b'{"format": "pyexec-snapshot", "version": 1}', "damaged pyexec snapshot: 'counts' is missing"),
        (b'{"format": "pyexec-snapshot", "version": 1, "counts": [{"path": "/x"}], "stats": {"dropped": 0, '
         b'"truncated": 0, "errors": 0}, "duration_s": 1, "by": ["path"], "mode": "exec", "key": "resolved", '
         b'"started_at": 0, "filters": {}, "host": "h"}', "count 1 lacks 'count'"),
        (b'{"format": "pyexec-snapshot", "version": 1, "counts": [], "stats": {"dropped": 0}, "duration_s": 1, '
         b'"by": ["path"], "mode": "exec", "key": "resolved", "started_at": 0, "filters": {}, "host": "h"}',
         "'stats' lacks the count 'truncated'"),
        (b'{"format": "pyexec-snapshot", "version": 1, "counts": [], "stats": {}, "duration_s": 1, '
         b'"by": ["path"], "mode": "exec", "key": "resolved", "started_at": 0, "filters": []}',
         "'filters' is missing or not an object"),
        *[(b'{"format": "pyexec-snapshot", "version": 1, "counts": [' + row + b'], "stats": {"dropped": 0, '
           b'"truncated": 0, "errors": 0}, "duration_s": 1, "by": ["path"], "mode": "' + mode + b'", '
           b'"key": "resolved", "started_at": 0, "filters": {}, "host": "h"}', says)
          for row, mode, says in [
              (b'{"count": 1, "path": ["/x"], "truncated": false}', b"exec", "count 1 has 'path' that is not a string"),
              (b'{"count": 1, "path": "/x", "truncated": "no"}', b"exec", "'truncated' that is not true or false"),
              (b'{"count": true, "path": "/x", "truncated": false}', b"exec", "'count' that is not a whole number"),
              (b'{"count": 1, "path": "/x", "truncated": false, "outcomes": [1]}', b"attempts",
               "'outcomes' that is not an object of counts"),
          ]],
    ],
)
def test_diff_refuses_files_that_are_not_snapshots(workdir: Path, content: bytes, says: str) -> None:
    bad = workdir / "bad.json"
    bad.write_bytes(content)
    result = subprocess.run([*PYEXEC, "diff", str(bad), str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert says in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_snapshot_saved_before_missed_was_counted_still_diffs(workdir: Path) -> None:
    # Its "stats" has dropped, truncated and errors alone: missed, counted since, is 0 there.
    old = workdir / "old.json"
    old.write_bytes(b'{"format": "pyexec-snapshot", "version": 1, "counts": [{"path": "/x", "truncated": false, '
                    b'"count": 2}], "stats": {"dropped": 0, "truncated": 0, "errors": 0}, "duration_s": 1, '
                    b'"by": ["path"], "mode": "exec", "key": "resolved", "started_at": 0, "filters": {}, "host": "h"}')
    result = subprocess.run([*PYEXEC, "diff", str(old), str(old), "--format", "json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changes"] == []


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "huge"])
def test_diff_reads_no_more_than_a_snapshot_can_be(workdir: Path, source: str, monkeypatch) -> None:
    from pyexec import snapshot

    path = source
    if source == "fifo":
        path = str(workdir / "fifo")
        os.mkfifo(path)
    if source == "huge":
        path = str(workdir / "huge.json")
        Path(path).write_bytes(b" " * 4096)
        monkeypatch.setattr(snapshot, "LARGEST", 1024)
    with pytest.raises(snapshot.SnapshotError, match="not a regular file|too large"):
        snapshot.load(path)


@bpf
def test_maps_lists_a_running_counter_with_its_fill(workdir: Path) -> None:
    binaries = [copy_true(workdir / f"t{i}") for i in range(5)]
    with ExecCounter(max_entries=1000, path_prefix=str(workdir)) as counter:
        for binary in binaries:
            posix_spawn_many(binary, 1)
        result = subprocess.run([*PYEXEC, "maps", "-f", "json"], capture_output=True, text=True, check=True)
        assert len(counter.counts()) == 5
    ours = [info for info in json.loads(result.stdout) if info["name"] == "exec_count" and info["max_entries"] == 1000]
    assert len(ours) == 1
    assert ours[0]["type"] == "hash" and ours[0]["entries"] == 5 and ours[0]["fill"] == 0.005
    assert ours[0]["key_size"] == ffi.sizeof("struct exec_count_key") and ours[0]["value_size"] == 8 and ours[0]["memlock"] > 0


@bpf
def test_doctor_passes_here() -> None:
    result = subprocess.run([*PYEXEC, "doctor", "-f", "json"], capture_output=True, text=True)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], report
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses["permission"] == statuses["BTF"] == statuses["tp_btf/sched_process_exec"] == "pass"
    # How each part of pyexec works on this kernel: with the feature (pass) or its fallback (info).
    details = {check["name"]: check["detail"] for check in report["checks"]}
    for name, feature in FEATURES.items():
        assert statuses[feature.serves] in ("pass", "info")
        assert details[feature.serves] in (describe(name, True), describe(name, False))


def test_doctor_without_capabilities_names_them_and_exits_77() -> None:
    drop_all = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"] if os.geteuid() == 0 else []
    result = subprocess.run([*drop_all, *PYEXEC, "doctor", "-f", "json"], capture_output=True, text=True)
    assert result.returncode == 77
    (permission,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "permission"]
    assert permission["status"] == "fail" and "CAP_BPF and CAP_PERFMON" in permission["detail"]


@bpf
def test_debug_prints_each_key_to_the_trace_pipe(true_binary: Path) -> None:
    reader = subprocess.Popen([*PYEXEC, "debug-log"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"reading" in reader.stderr.readline()  # the pipe is open: what comes next is ours
        run_around(lambda: posix_spawn_many(true_binary, 2), "--duration", "1", "--debug")
        line = read_until(reader.stdout.fileno(), re.compile(b"pyexec: counted " + re.escape(os.fsencode(true_binary))))
        assert line.count(b"pyexec: counted " + os.fsencode(true_binary)) >= 1
    finally:
        reader.send_signal(signal.SIGINT)
        assert reader.wait(timeout=10) == 0


def test_every_command_shows_an_example_in_its_help() -> None:
    for command in ("run", "top", "diff", "maps", "doctor", "debug-log", "version"):
        result = subprocess.run([*PYEXEC, command, "--help"], capture_output=True, text=True, check=True)
        assert "Example" in result.stdout, command


def test_count_without_interval_is_a_usage_error() -> None:
    result = subprocess.run([*PYEXEC, "run", "--count", "3"], capture_output=True, text=True)
    assert result.returncode == 2 and "--count needs --interval" in result.stderr


@bpf
def test_the_status_line_shows_on_a_terminal_only(true_binary: Path) -> None:
    master, slave = os.openpty()
    process = subprocess.Popen([*PYEXEC, "run", "--duration", "2.5", "-f", "json"],
                               stdout=subprocess.PIPE, stderr=slave)
    try:
        read_until(master, re.compile(rb"counting"))
        posix_spawn_many(true_binary, 4)
        read_until(master, re.compile(rb"\d+ s \xc2\xb7 \d+ executions? \xc2\xb7 \d+ binar(y|ies) \xc2\xb7 dropped 0"))
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(master)
        os.close(slave)
    assert process.returncode == 0 and json.loads(stdout)["total"] >= 4
    # In a pipe there is none: finish() checks that for every other run.


def test_shell_completion_scripts() -> None:
    result = subprocess.run([*PYEXEC, "--show-completion", "bash"], capture_output=True, text=True, check=True)
    assert "_PYEXEC_COMPLETE" in result.stdout and "complete" in result.stdout


@bpf
@pytest.mark.parametrize("output_format", ["table", "json", "csv", "ndjson"])
def test_intervals_in_every_format_to_a_file(true_binary: Path, workdir: Path, output_format: str) -> None:
    target = workdir / "result"
    stdout = run_around(lambda: posix_spawn_many(true_binary, 3), "--interval", "1", "--count", "2",
                        "-f", output_format, "--output", str(target))
    assert stdout == b""
    text = target.read_bytes()
    if output_format == "json":
        document = json.loads(text)
        assert len(document["intervals"]) == 2
        assert {row["path"]: row["count"] for row in document["counts"]}[str(true_binary)] == 3
    elif output_format == "ndjson":
        lines = [json.loads(line) for line in text.splitlines()]
        assert [("interval" in line, "summary" in line) for line in lines] == [(True, False)] * 2 + [(False, True)]
    elif output_format == "csv":
        rows = text.decode().splitlines()
        assert rows[0] == "interval,count,truncated,path"
        assert f"total,3,false,{true_binary}" in rows
        assert sum(int(row.split(",")[1]) for row in rows[1:] if row.endswith(f",{true_binary}") and not row.startswith("total")) == 3
    else:
        lines = text.decode().splitlines()
        assert [line.split(" · ")[0] for line in lines if line.startswith("──")] == ["── interval 1", "── interval 2", "── total"]
        assert f"3  {true_binary}" in [line.strip() for line in lines]


@pytest.mark.parametrize("width", [40, 80])
def test_a_top_frame_fits_a_narrow_terminal_numbers_whole_paths_cut_at_the_start(width: int) -> None:
    from rich.console import Console

    from pyexec.top import TopView

    long_path = "/tmp/pytest-of-root/pytest-1/test_narrow/pyexec-0123456789ab/true"
    report = report_of({long_path: 3, "/usr/bin/ls": 12345})
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(TopView(ExecCounter(), "rate", 30).frame(report, report))
    lines = console.file.getvalue().splitlines()
    assert all(len(line) <= width for line in lines)
    rows_shown = [line.split() for line in lines if line.rstrip().endswith(("ls", "rue"))]
    assert [cells[:3] for cells in rows_shown] == [["12345", "12345", "12345.0"], ["3", "3", "3.0"]]
    assert rows_shown[1][-1].startswith("…") and long_path.endswith(rows_shown[1][-1][1:])


def drawn(renderable, width: int) -> list[str]:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    console.print(renderable)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


@pytest.mark.parametrize("width", [40, 80])
def test_doctor_fits_a_narrow_terminal_words_whole(width: int) -> None:
    from pyexec.doctor import Check, table

    checks = [Check("tracefs", "pass", "mounted at /sys/kernel/tracing"),
              Check("unprivileged_bpf_disabled", "info", "kernel.unprivileged_bpf_disabled = 2",
                    "pyexec needs CAP_BPF whatever it is")]
    lines = drawn(table(checks), width)
    assert all(len(line) <= width for line in lines)
    words = " ".join(lines).split()
    for check in checks:
        assert all(word in words for word in f"{check.name} {check.detail} {check.fix}".split())
    assert words[:2] == ["pass", "tracefs"] and "fix:" in words


@pytest.mark.parametrize("width", [40, 80])
def test_maps_fit_a_narrow_terminal_numbers_whole(width: int) -> None:
    from pyexec.maps import MapInfo, table

    info = MapInfo(id=23400, name="exec_count", type="hash", key_size=312, value_size=8, max_entries=1048576,
                   flags=0, btf_id=10853, memlock=402653184, entries=524288)
    lines = drawn(table([info]), width)
    assert all(len(line) <= width for line in lines)
    assert lines[0] == "23400: hash  name exec_count"
    items = "  ".join(line.strip() for line in lines[1:]).split("  ")
    assert items == ["key 312B", "value 8B", "max_entries 1048576", "memlock 402653184B", "btf_id 10853",
                     "entries 524288 (50.0% full)"]
