"""Which path an execution is counted under, for both keys, case by case.

Known answers: "invoked" is the name given to exec; "resolved" is what
readlink /proc/PID/exe shows from here while the program runs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
import subprocess
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from pyexec import CUT, ExecCounter, ExecLosses

from pyexec.kernel import KEY_FEATURES
from pyexec.model import NO_LOSSES

from .conftest import BOUNDED_WALK_LEVELS, OWN_UIDS, STORM, bpf
from .workload import exe_of_exec, fork_exec_many, posix_spawn_many, run_concurrently

pytestmark = bpf

SYS_EXECVEAT = {"x86_64": 322, "aarch64": 281}.get(platform.machine())
AT_EMPTY_PATH = 0x1000
FD = 917  # an fd number nobody else is likely to fexecve meanwhile


@contextmanager
def both_keys(**filters):
    """Counters of each key: one that reads it with the newer kernel feature
    where the kernel has it, one with its fallback; all must agree."""
    with ExitStack() as stack:
        yield tuple(
            [stack.enter_context(ExecCounter(key=key, avoid=avoid, **filters)) for avoid in ((), (feature,))]
            for key, feature in KEY_FEATURES.items()
        )


def assert_counted(counters, exec_call, invoked_name: str, stdin: int | None = None) -> str:
    """Runs one exec; checks it was counted once under each key. Returns the resolved path."""
    resolved, invoked = counters
    exe = exe_of_exec(exec_call, stdin=stdin)
    for counter in resolved:
        assert counter.counts().get(exe) == 1, (exe, counter.features_used, counter.counts())
    for counter in invoked:
        assert counter.counts().get(invoked_name) == 1, (invoked_name, counter.features_used, counter.counts())
    # Whole, not cut (the host's own executions may be cut meanwhile).
    for counter, name in [*((counter, exe) for counter in resolved), *((counter, invoked_name) for counter in invoked)]:
        assert [record.truncated for record in counter.records() if record.path == name] == [False]
    return exe


@pytest.mark.kernels
def test_symlink_and_symlink_chain(sleeper: Path) -> None:
    link, chain = sleeper.with_name("link"), sleeper.with_name("chain")
    link.symlink_to(sleeper)
    chain.symlink_to(link)
    with both_keys() as counters:
        exe = assert_counted(counters, lambda: os.execv(link, [link]), str(link))
        assert exe == str(sleeper)
    with both_keys() as counters:
        exe = assert_counted(counters, lambda: os.execv(chain, [chain]), str(chain))
        assert exe == str(sleeper)


def test_relative_path_from_another_cwd(sleeper: Path) -> None:
    def relative() -> None:
        os.chdir(sleeper.parent)
        os.execv("./sleeper", ["./sleeper"])

    with both_keys() as counters:
        assert assert_counted(counters, relative, "./sleeper") == str(sleeper)


@pytest.mark.kernels
def test_bind_mount_is_named_by_its_mount_point(sleeper: Path, workdir: Path) -> None:
    mount_point = workdir / "bound"
    mount_point.mkdir()
    subprocess.run(["mount", "--bind", str(sleeper.parent), str(mount_point)], check=True)
    try:
        through_mount = mount_point / sleeper.name
        with both_keys() as counters:
            exe = assert_counted(counters, lambda: os.execv(through_mount, [through_mount]), str(through_mount))
        assert exe == str(through_mount)
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.kernels
def test_a_binary_deleted_before_its_exec(sleeper: Path) -> None:
    fd = os.open(sleeper, os.O_RDONLY)
    os.dup2(fd, FD)
    os.close(fd)
    sleeper.unlink()
    try:
        with both_keys() as counters:
            exe = assert_counted(counters, lambda: os.execve(FD, ["sleeper"], {}), f"/dev/fd/{FD}")
        assert exe == f"{sleeper} (deleted)"
    finally:
        os.close(FD)


@pytest.mark.kernels
def test_memfd_and_fexecve(sleeper_build: Path) -> None:
    memfd = os.memfd_create("pyexec-test")
    os.write(memfd, sleeper_build.read_bytes())
    os.dup2(memfd, FD)
    os.close(memfd)
    try:
        with both_keys() as counters:
            exe = assert_counted(counters, lambda: os.execve(FD, ["memfd"], {}), f"/dev/fd/{FD}")
        assert exe == "/memfd:pyexec-test (deleted)"
    finally:
        os.close(FD)


def test_a_script_counts_as_its_interpreter_when_resolved(workdir: Path) -> None:
    interpreter = workdir / "sh"  # the test's own: the host runs the system's meanwhile
    shutil.copy2(os.path.realpath("/bin/sh"), interpreter)
    script = workdir / "script.sh"
    script.write_text(f"#!{interpreter}\nread line\n")  # waits on stdin, no other exec
    script.chmod(0o755)
    reader, writer = os.pipe()
    try:
        with both_keys() as counters:
            exe = assert_counted(counters, lambda: os.execv(script, [script]), str(script), stdin=reader)
        assert exe == str(interpreter)
    finally:
        os.close(reader)
        os.close(writer)


def test_exec_from_a_thread_that_is_not_the_main_one(sleeper: Path) -> None:
    def from_a_thread() -> None:
        thread = threading.Thread(target=os.execv, args=(sleeper, [sleeper]))
        thread.start()
        thread.join()

    with both_keys() as counters:
        assert assert_counted(counters, from_a_thread, str(sleeper)) == str(sleeper)


@pytest.mark.kernels
def test_exec_inside_a_chroot_is_resolved_from_the_host(sleeper: Path) -> None:
    def chrooted() -> None:
        os.chroot(sleeper.parent)
        os.chdir("/")
        os.execv("/sleeper", ["/sleeper"])

    with both_keys() as counters:
        assert assert_counted(counters, chrooted, "/sleeper") == str(sleeper)


@pytest.mark.skipif(SYS_EXECVEAT is None, reason="execveat's number is known for x86_64 and aarch64")
def test_execveat_with_at_empty_path(sleeper: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)

    def execveat_empty_path() -> None:
        os.dup2(os.open(sleeper, os.O_RDONLY), FD)
        argv = (ctypes.c_char_p * 2)(b"sleeper", None)
        envp = (ctypes.c_char_p * 1)(None)
        libc.syscall(SYS_EXECVEAT, FD, b"", argv, envp, AT_EMPTY_PATH)

    with both_keys() as counters:
        assert assert_counted(counters, execveat_empty_path, f"/dev/fd/{FD}") == str(sleeper)


def exec_sleeper_at(directory: Path, sleeper_build: Path) -> tuple[Path, str]:
    """A copy of the sleeper in directory, executed once: it, and /proc/PID/exe of that exec."""
    binary = directory / "sleeper"
    binary.write_bytes(sleeper_build.read_bytes())
    binary.chmod(0o755)
    return binary, exe_of_exec(lambda: os.execv(binary, [binary]))


@pytest.mark.kernels
def test_a_resolved_path_1024_directories_deep_is_counted_whole(sleeper_build: Path, nested_directory) -> None:
    with ExecCounter(key="resolved", comm="sleeper") as resolved:  # the test's alone
        if not (resolved.features_used["iterators"] or resolved.features_used["loop"]):
            pytest.skip("a walk this deep needs open-coded iterators (Linux 6.4) or bpf_loop (5.17)")
        binary, exe = exec_sleeper_at(nested_directory(1024), sleeper_build)
        counts, stats = resolved.counts(), resolved.losses()
    assert exe == str(binary)
    assert counts == {exe: 1}
    assert stats == NO_LOSSES


@pytest.mark.kernels
def test_a_resolved_path_deeper_than_the_bounded_walk_keeps_its_end_and_counts_truncated(
    sleeper_build: Path, nested_directory
) -> None:
    # Where neither iterators nor bpf_loop may be used, the walk stops after 64 levels.
    with ExecCounter(key="resolved", avoid=("iterators", "loop"), comm="sleeper") as resolved:
        binary, exe = exec_sleeper_at(nested_directory(BOUNDED_WALK_LEVELS + 36), sleeper_build)
        counts, stats = resolved.counts(), resolved.losses()
    assert exe == str(binary)
    # Marked where its start was lost: a resolved path otherwise always starts with "/".
    (kept,) = counts
    assert kept.startswith(CUT + "/") and exe.endswith(kept.removeprefix(CUT))
    assert kept.removeprefix(CUT).count("/") == BOUNDED_WALK_LEVELS
    assert counts[kept] == 1
    assert stats.truncated == 1


@pytest.mark.kernels
def test_a_storm_through_a_symlink_is_exact_under_both_keys(true_binary: Path) -> None:
    link = true_binary.with_name("link")
    link.symlink_to(true_binary)
    per_worker = STORM // 2
    with both_keys(comm="link") as (resolved, invoked):  # the command name: the test's own executions
        run_concurrently((posix_spawn_many, link, per_worker), (fork_exec_many, link, per_worker))
        for counter in resolved:
            assert counter.counts()[str(true_binary)] == 2 * per_worker, counter.features_used
            assert str(link) not in counter.counts()
        for counter in invoked:
            assert counter.counts()[str(link)] == 2 * per_worker, counter.features_used
        assert all(counter.losses() == ExecLosses(0, 0, 0) for counter in (*resolved, *invoked))


ATTACKER = OWN_UIDS[2]  # a uid of the test's alone


def test_a_bind_mount_in_a_users_own_namespace_never_passes_for_a_host_path(public_true: Path) -> None:
    # Any user may make a user and mount namespace, bind a file of theirs over a
    # system binary there and run it: it is marked as that namespace's path.
    mine = public_true.with_name("mine")
    mine.write_bytes(Path(shutil.which("false") or "/bin/false").read_bytes())
    mine.chmod(0o755)
    script = f"mount --bind {mine} /usr/bin/true && /usr/bin/true; readlink /proc/self/ns/mnt"
    with ExecCounter(uids=[ATTACKER]) as counter:
        attack = subprocess.run(["setpriv", f"--reuid={ATTACKER}", f"--regid={ATTACKER}", "--clear-groups",
                                 "unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=30)
        counts = counter.counts()
    namespace = attack.stdout.strip()  # mnt:[4026532xxx], the attacker's namespace
    assert namespace.startswith("mnt:[") and namespace != os.readlink("/proc/self/ns/mnt"), attack.stderr
    assert counts[f"{namespace}/usr/bin/true"] == 1
    assert "/usr/bin/true" not in counts  # never a host path
    assert all(path.startswith("mnt:[") for path in counts if path.endswith("/usr/bin/true"))
