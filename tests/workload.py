"""Exec workloads whose exact number of executions the tests know."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time


def posix_spawn_many(path: os.PathLike | bytes, times: int) -> None:
    for _ in range(times):
        pid = os.posix_spawn(path, [path], {})
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def fork_exec_many(path: os.PathLike | bytes, times: int) -> None:
    for _ in range(times):
        pid = os.fork()
        if pid == 0:
            try:
                os.execv(path, [path])
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def run_concurrently(*jobs: tuple) -> None:
    """Runs (function, *args) jobs in parallel processes; fails if any failed."""
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=job[0], args=job[1:]) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [worker.exitcode for worker in workers] == [0] * len(workers)


def exec_in_child(exec_call) -> int:
    """Forks; the child calls exec_call() (which should exec). Returns the child's exit code."""
    pid = os.fork()
    if pid == 0:
        try:
            exec_call()
        except OSError as error:
            os._exit(100 + error.errno)
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def exe_of_exec(exec_call, stdin: int | None = None, timeout: float = 10.0) -> str:
    """Forks a child that calls exec_call() to exec a program that waits; returns
    what /proc/PID/exe shows once the exec is done, then kills the child.

    /proc/PID/exe changes in the middle of exec, before sched_process_exec fires:
    done is when the new program sleeps (state S), back from exec in user space."""
    before = os.readlink("/proc/self/exe")
    pid = os.fork()
    if pid == 0:
        try:
            if stdin is not None:
                os.dup2(stdin, 0)
            exec_call()
        finally:
            os._exit(127)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
                with open(f"/proc/{pid}/stat", "rb") as stat:
                    state = stat.read().rsplit(b")", 1)[1].split()[0]
            except FileNotFoundError:  # mid-exec from another thread, the leader has no mm
                continue
            if exe != before and state == b"S":
                return exe
            time.sleep(0.005)
        raise AssertionError(f"child {pid} did not exec within {timeout} s")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def fork_exec_after(prepare, path: os.PathLike | bytes, times: int) -> None:
    """Like fork_exec_many, each child first calling prepare() (to change its user,
    its cgroup...)."""
    for _ in range(times):
        pid = os.fork()
        if pid == 0:
            try:
                prepare()
                os.execv(path, [path])
            finally:
                os._exit(127)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def become(uid: int):
    return lambda: (os.setgid(uid), os.setuid(uid))


def join_cgroup(directory: str):
    def join() -> None:
        with open(os.path.join(directory, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))

    return join
