"""What people read in place of kernel ids: user names, cgroup paths, containers."""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Iterator
from functools import lru_cache, cache


@cache
def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def cgroup2_root() -> str | None:
    """Where the cgroup v2 hierarchy is mounted, if it is."""
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] == "cgroup2":
                return fields[4]
    return None


class CgroupNames:
    """Cgroup v2 ids to paths: a cgroup's id is the inode number of its directory."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {}
        self._root = cgroup2_root()

    def path(self, cgroup_id: int) -> str | None:
        if cgroup_id not in self._paths and self._root:
            self._paths = dict(self._walk())  # cgroups come and go: look again
        return self._paths.get(cgroup_id)

    def relative(self, path: str) -> str | None:
        """path within the hierarchy: as given, or made so if it names a place under the mount."""
        if not self._root:
            return None
        if os.path.commonpath([self._root, os.path.abspath(path)]) == self._root:
            return "/" + os.path.relpath(os.path.abspath(path), self._root).removeprefix(".")
        return path

    def id_of(self, path: str) -> int | None:
        """The id of the cgroup at path (as /proc/PID/cgroup writes it), if it exists."""
        if not self._root:
            return None
        try:
            return os.stat(os.path.join(self._root, path.lstrip("/"))).st_ino
        except OSError:
            return None

    def _walk(self) -> Iterator[tuple[int, str]]:
        root = self._root
        if root is None:
            return
        for directory, _, _ in os.walk(root):
            try:
                inode = os.stat(directory).st_ino
            except OSError:  # gone meanwhile
                continue
            yield inode, "/" + os.path.relpath(directory, root).removeprefix(".")


@lru_cache(maxsize=1)
def cgroup_names() -> CgroupNames:
    """One map for the process: every refresh of top or run reuses what it walked."""
    return CgroupNames()


# What container managers name their cgroups, most specific first.
_CONTAINERS = [
    (re.compile(r"docker-([0-9a-f]{64})\.scope$|/docker/([0-9a-f]{64})$"), "docker"),
    (re.compile(r"cri-containerd-([0-9a-f]{64})\.scope$"), "containerd"),
    (re.compile(r"crio-([0-9a-f]{64})\.scope$"), "cri-o"),
    (re.compile(r"libpod-([0-9a-f]{64})\.scope$"), "podman"),
    (re.compile(r"/kubepods[^ ]*/([0-9a-f]{64})$"), "containerd"),
]
_SYSTEMD_UNIT = re.compile(r"/([^/]+\.(?:service|scope))$")


def container(cgroup_path: str | None) -> str | None:
    """The container (manager:short id) or systemd unit a cgroup path names, if any."""
    if not cgroup_path:
        return None
    for pattern, manager in _CONTAINERS:
        match = pattern.search(cgroup_path)
        if match:
            return f"{manager}:{next(group for group in match.groups() if group)[:12]}"
    match = _SYSTEMD_UNIT.search(cgroup_path)
    return f"systemd:{match.group(1)}" if match else None
