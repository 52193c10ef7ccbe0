"""Fixtures for tests against the real kernel: they load pyexec's BPF program."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyexec.model import NO_LOSSES, ExecLosses
from pyexec.kernel import KEY_FEATURES
from pyexec.names import cgroup2_root
from pyexec.report import Report

IN_CI = os.environ.get("CI") == "true"
# In make test-kernels' emulated guests an exec takes 70 to 200 ms: workloads there are smaller.
EMULATED = bool(os.environ.get("PYEXEC_KERNEL"))
STORM = 100 if EMULATED else 1000  # execs per worker in a storm
NOBODY = 65534
# Uids of this test session's alone, with no passwd entry: a workload run as one of
# them is this session's, even while another session of the suite runs beside it.
OWN_UIDS = range(1_000_000 + os.getpid() * 4, 1_000_000 + os.getpid() * 4 + 4)

# BPF tests need root; they skip without it, except in CI, where they must run.
bpf = pytest.mark.skipif(
    os.geteuid() != 0 and not IN_CI, reason="loading BPF needs root (runs in CI)"
)


def report_of(counts: dict[str, int] | list[str], losses: ExecLosses = NO_LOSSES,
              duration_s: float = 1.0) -> Report:
    """A report by path of made-up counts, none of them cut (a list: each path once)."""
    if isinstance(counts, list):
        counts = dict.fromkeys(counts, 1)
    rows = [{"path": path, "truncated": False, "count": count} for path, count in counts.items()]
    return Report(rows=rows, losses=losses, duration_s=duration_s)


#: (key, avoid) for ExecCounter: each key read with its kernel feature, and
#: with the fallback (which must count the same).
READERS = [
    pytest.param(key, avoid, id=f"{key}-without-{feature}" if avoid else key)
    for key, feature in KEY_FEATURES.items()
    for avoid in ((), (feature,))
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with a unique name, so no other process execs our binaries' paths."""
    path = tmp_path / f"pyexec-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


@pytest.fixture
def short_workdir() -> Iterator[Path]:
    """A directory of a name short enough that its files' names are kept whole
    in a slot (EXEC_SLOT_NAME_WORDS), and as unique as workdir's."""
    path = Path(tempfile.mkdtemp(prefix="px-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def true_binary(workdir: Path) -> Path:
    """A private copy of /bin/true: every exec of it is one of ours."""
    return copy_true(workdir / "true")


#: How deep the bounded walk of kernels without open-coded iterators goes
#: (WALK_BOUNDED_STEPS in csrc/exec.bpf.h): a deeper resolved path is cut there.
BOUNDED_WALK_LEVELS = 64


@pytest.fixture
def nested_directory(workdir: Path) -> Iterator[Callable[[int], Path]]:
    """Makes a directory that many levels below workdir, each level named "d";
    removes it after the test, level by level (pytest's clean-up recurses, once
    a level, and a tree deeper than Python's recursion limit would break it)."""
    made: list[Path] = []

    def make(levels: int) -> Path:
        directory = workdir
        for _ in range(levels):  # Path.mkdir(parents=True) recurses too
            directory /= "d"
            directory.mkdir()
        made.append(directory)
        return directory

    yield make
    if made:  # rm walks a tree of any depth
        subprocess.run(["rm", "-rf", "--", str(workdir / "d")], check=True)


def path_of_length(workdir: Path, length: int) -> bytes:
    """A copy of true whose absolute path is exactly length bytes long."""
    directory = os.fsencode(workdir)
    while len(directory) + 1 + 200 < length:
        directory += b"/" + b"d" * 200
        os.makedirs(directory, exist_ok=True)
    name = b"t" * (length - len(directory) - 1)
    return copy_true(directory + b"/" + name)


def copy_true(destination: Path | bytes) -> Path | bytes:
    shutil.copy2(shutil.which("true") or "/bin/true", destination)
    os.chmod(destination, 0o755)
    return destination


@pytest.fixture
def public_true() -> Iterator[Path]:
    """A copy of true that any user may run (pytest's own temp dirs are private)."""
    directory = tempfile.mkdtemp(prefix="pyexec-public-")
    os.chmod(directory, 0o755)
    yield copy_true(Path(directory) / "true")
    shutil.rmtree(directory)


@pytest.fixture
def cgroup2() -> Iterator[str]:
    """The cgroup v2 hierarchy's root: where it is mounted, or mounted here for the test."""
    root = cgroup2_root()
    if root is not None:
        yield root
        return
    root = tempfile.mkdtemp(prefix="pyexec-cgroup2-")
    os.system(f"mount -t cgroup2 none {root}")
    yield root
    os.system(f"umount {root}")
    os.rmdir(root)


@pytest.fixture
def pin_dir() -> Iterator[str]:
    """A pin directory of the test's own on bpffs (not the real one), gone afterwards."""
    from pyexec import pinned
    from pyexec.system import BPFFS

    directory = f"{BPFFS}/pyexec-test-{uuid.uuid4().hex[:8]}"
    yield directory
    if os.path.isdir(directory):
        pinned.unpin(directory)


@pytest.fixture(scope="session")
def sleeper_build() -> Path:
    """tests/sleeper.c, built static by make (the kernel matrix's guests and the
    installed wheel's tests reuse the host's build)."""
    binary = Path(__file__).parents[1] / "build" / "tests" / "sleeper"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run make build/tests/sleeper (make test does)")
    return binary


@pytest.fixture
def sleeper(workdir: Path, sleeper_build: Path) -> Path:
    """A private copy of the static sleeper."""
    binary = workdir / "sleeper"
    shutil.copy2(sleeper_build, binary)
    return binary
