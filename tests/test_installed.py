"""What users install: the wheel, in a venv of its own (make test-wheel runs the
whole suite there; these tests only mean something there)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyexec
from pyexec import _shim

from .conftest import bpf, copy_true

WHEEL = os.environ.get("PYEXEC_INSTALLED", "")
pytestmark = pytest.mark.skipif(not WHEEL, reason="tests the installed wheel: make test-wheel")


def test_the_suite_imports_the_installed_package() -> None:
    site = Path(sys.prefix).resolve()
    assert Path(pyexec.__file__).resolve().is_relative_to(site)
    assert Path(_shim.__file__).name == "_shim.abi3.so"


def test_one_wheel_for_every_cpython_from_3_10_and_glibc_from_2_28() -> None:
    assert WHEEL.endswith("-cp310-abi3-manylinux_2_28_x86_64.whl"), WHEEL


def test_the_extension_needs_nothing_but_glibc() -> None:
    ldd = subprocess.run(["ldd", _shim.__file__], capture_output=True, text=True, check=True).stdout
    needed = {line.split()[0] for line in ldd.splitlines() if line.strip()}
    assert needed <= {"linux-vdso.so.1", "libc.so.6", "/lib64/ld-linux-x86-64.so.2"}, needed
    symbols = subprocess.run(["nm", "-D", "--defined-only", _shim.__file__], capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [name for name in symbols if name.startswith(("bpf_", "libbpf_", "elf_", "gelf_", "deflate", "inflate"))]


def test_the_wheel_carries_the_licenses_of_all_it_bundles() -> None:
    distribution = importlib.metadata.distribution("pyexec-ebpf")
    licenses = {str(path) for path in distribution.files or [] if "/licenses/" in str(path)}
    for bundled in ("LICENSE", "GPL-2.0-only.txt", "libbpf/LICENSE.BSD-2-Clause", "elfutils/COPYING-GPLV2",
                    "zlib/LICENSE"):
        assert any(path.endswith(bundled) for path in licenses), (bundled, licenses)
    expression = distribution.metadata["License-Expression"]
    assert all(name in expression for name in ("BSD-2-Clause", "GPL-2.0-only", "Zlib")), expression


@bpf
def test_the_installed_command_counts_with_nothing_but_its_venv_on_path(workdir: Path) -> None:
    binary = copy_true(workdir / "true")
    command = Path(sys.prefix) / "bin" / "pyexec"
    # No compiler, no bpftool, no system tools at all: only the venv's own programs.
    process = subprocess.Popen([str(command), "run", "--duration", "3", "--format", "json",
                                "--path-prefix", str(workdir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PATH": str(command.parent), "HOME": "/nonexistent"})
    assert "counting" in process.stderr.readline()  # said once attached
    for _ in range(5):
        subprocess.run([binary], check=True)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert f'"counts": [{{"path": "{binary}", "truncated": false, "count": 5}}]' in stdout
