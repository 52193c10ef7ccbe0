"""cffi builder for pyexec._shim: the shim in csrc/ plus the BPF skeleton.

The Makefile produces what this reads (build/execcount.skel.h, the vendored
libbpf); `make artifacts` is run first so `pip install .` works on its own.
"""

import os
import pathlib
import shlex
import subprocess

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
BUILD = ROOT / "build"


def cdef_text(*headers: str) -> str:
    """The headers as cffi reads them: declarations and #define constants only."""
    lines = []
    for header in headers:
        for line in (CSRC / header).read_text().splitlines():
            if not line.startswith("#") or line.startswith("#define"):
                lines.append(line)
    return "\n".join(lines)


def libbpf_flags() -> dict:
    if static_deps:
        prefix = pathlib.Path(static_deps)
        return {
            "include_dirs": [str(prefix / "include")],
            "extra_objects": [str(prefix / "lib" / name) for name in ("libbpf.a", "libelf.a", "libz.a")],
            # None of their symbols leave the extension; no debug info in it.
            "extra_link_args": ["-Wl,--exclude-libs,ALL", "-Wl,--strip-all"],
        }
    if os.environ.get("LIBBPF", "vendored") == "system":
        pkg = ["pkg-config", "libbpf"]
        cflags = subprocess.check_output([*pkg, "--cflags"], text=True)
        libs = subprocess.check_output([*pkg, "--libs"], text=True)
        return {"extra_compile_args": shlex.split(cflags), "extra_link_args": shlex.split(libs)}
    prefix = BUILD / "libbpf"
    return {
        "include_dirs": [str(prefix / "include")],
        "extra_objects": [str(prefix / "lib" / "libbpf.a")],
        # libbpf is linked in whole but none of its symbols leave the extension.
        "extra_link_args": ["-Wl,--exclude-libs,ALL"],
        "libraries": ["elf", "z"],
    }


static_deps = os.environ.get("STATIC_DEPS")  # make wheel: libbpf, libelf and zlib built for the wheel
make_settings = ["LIBBPF=prebuilt", f"LIBBPF_PREFIX={static_deps}"] if static_deps else []
subprocess.run(["make", "-s", "-C", str(ROOT), "check-deps", "artifacts", *make_settings], check=True)

ffibuilder = FFI()
ffibuilder.cdef(cdef_text("execcount.h", "shim.h"))
ffibuilder.cdef('extern "Python+C" void pyexec_libbpf_log(int level, const char *message);')
flags = libbpf_flags()
ffibuilder.set_source(
    "pyexec._shim",
    '#include "shim.h"',
    sources=["csrc/shim.c"],  # setuptools wants it relative to setup.py
    include_dirs=[str(CSRC), str(BUILD), *flags.pop("include_dirs", [])],
    libraries=flags.pop("libraries", []),
    **flags,
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(BUILD / "cffi"), verbose=True)
