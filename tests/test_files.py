"""What files do between executions: links, renames, replacements. Each path
is counted as /proc/PID/exe names it at each execution, whatever happened to
the file before; one path is one row, whichever file is there."""

from __future__ import annotations

import functools
import multiprocessing
import os
from pathlib import Path

import pytest

from pyexec import ExecCounter
from pyexec import _contract as C
from pyexec.model import NO_LOSSES

from .conftest import bpf, copy_true
from .workload import posix_spawn_many

pytestmark = bpf


#: The resolved walk's ways: plain loads in iterators, bpf_loop, a bounded loop.
WALKS = [pytest.param(avoid, id="-".join(avoid) or "newest") for avoid in ((), ("iterators",), ("iterators", "loop"))]


@functools.cache
def walk_features() -> dict[str, bool]:
    """Which of the walk's features this kernel has (as the counter reports using them)."""
    with ExecCounter(max_entries=1) as newest, ExecCounter(max_entries=1, avoid=("iterators",)) as looped:
        return {"iterators": newest.features_used["iterators"], "loop": looped.features_used["loop"]}


def counted(workdir: Path, avoid: tuple[str, ...], steps, by: tuple[str, ...] = ("path",)) -> dict[str, int]:
    """Runs each step (a callable) in turn under one resolved counter; its counts under workdir."""
    if avoid and not walk_features()[avoid[-1]]:  # this kernel walks so with one feature fewer avoided
        pytest.skip(f"this kernel lacks {avoid[-1]}: the walk is the one without it")
    with ExecCounter(avoid=avoid, by=by, path_prefix=f"{workdir}/") as counter:
        for step in steps:
            step()
        counts, losses = counter.counts(), counter.losses()
    assert losses == NO_LOSSES
    return counts


@pytest.mark.kernels
@pytest.mark.parametrize("avoid", WALKS)
def test_two_hard_links_of_one_file_are_each_their_own_name(workdir: Path, avoid: tuple[str, ...]) -> None:
    first = copy_true(workdir / "first")
    second = workdir / "second"
    os.link(first, second)
    counts = counted(workdir, avoid, [lambda: posix_spawn_many(first, 2), lambda: posix_spawn_many(second, 3)])
    assert counts == {str(first): 2, str(second): 3}


@pytest.mark.kernels
@pytest.mark.parametrize("avoid", WALKS)
def test_a_file_renamed_after_its_first_execution_counts_under_its_new_name(workdir: Path, avoid: tuple[str, ...]) -> None:
    old, new = copy_true(workdir / "old"), workdir / "new"
    counts = counted(workdir, avoid, [lambda: posix_spawn_many(old, 2), lambda: old.rename(new),
                                      lambda: posix_spawn_many(new, 3)])
    assert counts == {str(old): 2, str(new): 3}


@pytest.mark.kernels
@pytest.mark.parametrize("avoid", WALKS)
def test_a_file_whose_directory_is_renamed_counts_under_its_new_path(workdir: Path, avoid: tuple[str, ...]) -> None:
    (workdir / "before").mkdir()
    binary = copy_true(workdir / "before" / "tool")
    moved = workdir / "after" / "tool"
    counts = counted(workdir, avoid, [lambda: posix_spawn_many(binary, 2), lambda: binary.parent.rename(moved.parent),
                                      lambda: posix_spawn_many(moved, 3)])
    assert counts == {str(binary): 2, str(moved): 3}


@pytest.mark.kernels
def test_a_key_of_more_fields_takes_the_new_path_of_a_renamed_directory(workdir: Path) -> None:
    # There the slot gives the path's id and the key is counted in exec_count.
    (workdir / "before").mkdir()
    binary = copy_true(workdir / "before" / "tool")
    moved = workdir / "after" / "tool"
    counts = counted(workdir, (), [lambda: posix_spawn_many(binary, 2), lambda: binary.parent.rename(moved.parent),
                                   lambda: posix_spawn_many(moved, 3)], by=("path", "uid"))
    assert counts == {str(binary): 2, str(moved): 3}


@pytest.mark.kernels
@pytest.mark.parametrize("avoid", WALKS)
def test_a_binary_deleted_and_made_again_is_one_row_for_its_path(workdir: Path, avoid: tuple[str, ...]) -> None:
    # ext4 hands a freed inode number out again at once: the new file may well
    # have the old one's number; the row is the path's either way.
    binary = copy_true(workdir / "tool")
    inodes = [binary.stat().st_ino]

    def make_again() -> None:
        binary.unlink()
        copy_true(binary)
        inodes.append(binary.stat().st_ino)

    counts = counted(workdir, avoid, [lambda: posix_spawn_many(binary, 2), make_again, lambda: posix_spawn_many(binary, 3)])
    assert counts == {str(binary): 5}, inodes


@pytest.mark.kernels
@pytest.mark.parametrize("avoid", WALKS)
def test_a_binary_replaced_as_a_package_upgrade_does_is_one_row(workdir: Path, avoid: tuple[str, ...]) -> None:
    # dpkg writes the new file beside the old one and renames it over the old.
    binary = copy_true(workdir / "tool")
    staged = workdir / "tool.dpkg-new"

    def upgrade() -> None:
        copy_true(staged)
        staged.rename(binary)

    counts = counted(workdir, avoid, [lambda: posix_spawn_many(binary, 2), upgrade, lambda: posix_spawn_many(binary, 3)])
    assert counts == {str(binary): 5}


@pytest.mark.kernels
def test_a_path_and_its_deleted_self_are_two_rows(workdir: Path) -> None:
    binary = copy_true(workdir / "tool")
    descriptor = os.open(binary, os.O_RDONLY)
    try:
        counts = counted(workdir, (), [lambda: posix_spawn_many(binary, 1), binary.unlink,
                                       lambda: posix_spawn_many(Path(f"/proc/self/fd/{descriptor}"), 2)])
    finally:
        os.close(descriptor)
    assert counts == {str(binary): 1, f"{binary} (deleted)": 2}


def spawn_each(binaries: list[Path], rounds: int) -> None:
    for _ in range(rounds):
        for binary in binaries:
            posix_spawn_many(binary, 1)


# In each kernel of the matrix, the file cache alone (a minute there): the
# names' slots are told apart there by the test of names of every length.
@pytest.mark.parametrize("settings", [
    pytest.param({"key": "resolved"}, id="resolved", marks=pytest.mark.kernels),
    pytest.param({"key": "invoked"}, id="invoked"),
    pytest.param({"key": "resolved", "by": ("path", "uid")}, id="key-cache"),
])
def test_counts_read_while_files_take_each_others_slots_never_go_back(short_workdir: Path, settings: dict) -> None:
    # Files (or names, short enough to be kept in their slots; or keys of more
    # fields than the path, in the key cache) that take each other's slots: a
    # slot is a hash's, so of the 100 or more of these one of two CPUs runs,
    # some share one (all differ only about once in 10**4: the birthday bound
    # over 512). Each slot's count moves to exec_count while the reads go on:
    # no read may see a count twice or miss one; each count only grows, and
    # ends exact.
    workdir = short_workdir
    assert len(str(workdir / "t199")) <= C.EXEC_SLOT_NAME_WORDS * 8
    original = copy_true(workdir / "t0")
    binaries = [original]
    for i in range(1, 200):
        binaries.append(workdir / f"t{i}")
        os.link(original, binaries[-1])
    rounds = 2
    seen: dict[str, int] = {}
    with ExecCounter(**settings, path_prefix=f"{workdir}/") as counter:
        storm = multiprocessing.get_context("fork").Process(target=spawn_each, args=(binaries, rounds))
        storm.start()
        while storm.is_alive():
            for path, count in counter.counts().items():
                assert count >= seen.get(path, 0), path
                seen[path] = count
        storm.join()
        counts, losses = counter.counts(), counter.losses()
    assert storm.exitcode == 0
    assert counts == {str(binary): rounds for binary in binaries}
    assert losses == NO_LOSSES
