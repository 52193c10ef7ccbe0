"""Names resolved in user space (no kernel needed)."""

from __future__ import annotations

import pytest

from pyexec.names import container, user_name

ID = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("cgroup_path", "expected"),
    [
        (f"/system.slice/docker-{ID}.scope", "docker:0123456789ab"),
        (f"/docker/{ID}", "docker:0123456789ab"),
        (f"/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope", "containerd:0123456789ab"),
        (f"/kubepods/besteffort/pod1/{ID}", "containerd:0123456789ab"),
        (f"/machine.slice/libpod-{ID}.scope", "podman:0123456789ab"),
        (f"/kubepods.slice/crio-{ID}.scope", "cri-o:0123456789ab"),
        ("/system.slice/nginx.service", "systemd:nginx.service"),
        ("/user.slice/user-1000.slice/session-2.scope", "systemd:session-2.scope"),
        ("/", None),
        (None, None),
    ],
)
def test_container_names(cgroup_path, expected) -> None:
    assert container(cgroup_path) == expected


def test_user_names() -> None:
    assert user_name(0) == "root"
    assert user_name(2**31 - 7) is None


def test_the_cli_offers_the_library_choices() -> None:
    from pyexec.cli.options import Key, Mode
    from pyexec.model import KEYS, MODES

    assert tuple(key.value for key in Key) == tuple(KEYS)
    assert tuple(mode.value for mode in Mode) == tuple(MODES)
