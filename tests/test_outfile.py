"""--output and --save: what may be at the path, and what pyexec does with it."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
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
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    outfile.write(str(fifo), b"counts\n")
    reader.join(timeout=10)
    assert received == [b"counts\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


@root
def test_a_regular_file_is_replaced_keeping_its_mode_and_owner(tmp_path: Path) -> None:
    existing = tmp_path / "result.json"
    existing.write_text("old")
    os.chmod(existing, 0o640)
    os.chown(existing, 65534, 65534)
    outfile.write(str(existing), b"new")
    after = os.stat(existing)
    assert existing.read_bytes() == b"new"
    assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (0o640, 65534, 65534)
    assert [path.name for path in tmp_path.iterdir()] == ["result.json"]  # no temporary left


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
