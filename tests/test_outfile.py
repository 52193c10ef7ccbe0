"""--output and --save: what may be at the path, and what pyexec does with it."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from pyexec import outfile

from .test_cli import PYEXEC

root = pytest.mark.skipif(os.geteuid() != 0, reason="makes a device node and chowns: needs root")


@root
def test_a_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    outfile.write(str(null), b"counts\n")
    assert stat.S_ISCHR(os.stat(null).st_mode)


def test_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader there before the write, as `cat fifo`
    try:
        outfile.write(str(fifo), b"counts\n")
        assert os.read(reader, 100) == b"counts\n" and stat.S_ISFIFO(os.stat(fifo).st_mode)
    finally:
        os.close(reader)


@root
def test_a_regular_file_is_replaced_keeping_its_mode_and_group(tmp_path: Path) -> None:
    existing = tmp_path / "result.json"
    existing.write_text("old")
    os.chmod(existing, 0o640)
    os.chown(existing, -1, 65534)
    outfile.write(str(existing), b"new")
    after = os.stat(existing)
    assert existing.read_bytes() == b"new"
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (0o640, os.geteuid(), 65534)
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]  # no temporary left


@pytest.fixture
def shared_directory(tmp_path: Path) -> Path:
    """A directory like /tmp: anyone may make files in it (sticky)."""
    tmp_path.chmod(0o1777)
    return tmp_path


@root
@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_another_users_file_or_fifo_in_a_shared_directory_is_refused(shared_directory: Path, kind: str) -> None:
    planted = shared_directory / "report.json"
    if kind == "file":
        planted.write_text("")
        planted.chmod(0o666)
    else:
        os.mkfifo(planted, 0o666)
    os.chown(planted, 65534, 65534)  # as nobody would have made it
    for call in (lambda: outfile.check(str(planted)), lambda: outfile.write(str(planted), b"secret")):
        with pytest.raises(outfile.OutputPathError, match="belongs to uid 65534"):
            call()
    assert os.stat(planted).st_uid == 65534
    if kind == "file":
        assert planted.read_bytes() == b""


def test_a_fifo_nobody_reads_is_an_error_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(outfile.OutputPathError, match="no process reads"):
        outfile.write(str(fifo), b"counts\n")
    assert time.monotonic() - started < 1


def test_a_fifo_whose_reader_stops_reading_is_an_error_not_a_wait_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, and never read
    monkeypatch.setattr(outfile, "WRITE_SECONDS", 0.5)
    try:
        started = time.monotonic()
        with pytest.raises(outfile.OutputPathError, match="read nothing"):
            outfile.write(str(fifo), b"x" * (1 << 20))  # more than a pipe holds
        assert time.monotonic() - started < 5
    finally:
        os.close(reader)


def test_a_new_file_gets_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        outfile.write(str(tmp_path / "new.json"), b"{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o640


@pytest.mark.parametrize("make", ["symlink", "dangling", "directory", "no directory", "empty"])
def test_paths_it_refuses(tmp_path: Path, make: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = {
        "symlink": tmp_path / "link", "dangling": tmp_path / "dangling", "directory": tmp_path,
        "no directory": tmp_path / "missing" / "out.json", "empty": "",
    }[make]
    if make == "symlink":
        os.symlink(victim, path)
    if make == "dangling":
        os.symlink(tmp_path / "nothing", path)
    with pytest.raises(outfile.OutputPathError):
        outfile.check(str(path))
    with pytest.raises(outfile.OutputPathError):
        outfile.write(str(path), b"x")
    assert victim.read_text() == "precious"


def test_dash_is_stdout(capfdbinary) -> None:
    outfile.write("-", b"to stdout\n")
    assert capfdbinary.readouterr().out == b"to stdout\n"


def test_the_cli_refuses_a_symlinked_output_before_counting(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "link").symlink_to(victim)
    result = subprocess.run([*PYEXEC, "run", "--duration", "0", "--output", str(tmp_path / "link")],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "--output" in result.stderr and "symbolic link" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert victim.read_text() == "precious"


@root
def test_dev_stdout_under_sudo_is_written_though_the_pipe_is_the_invoking_users() -> None:
    reader, writer = os.pipe()
    os.fchown(writer, 65534, 65534)  # as the shell of the user who ran sudo made it
    try:
        outfile.write(f"/proc/self/fd/{writer}", b"counts\n")
        assert os.read(reader, 100) == b"counts\n"
    finally:
        os.close(reader)
        os.close(writer)
