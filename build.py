"""cffi builder for pyexec._shim: the C in csrc/ (the shared part and each
BPF program's loader) plus the BPF skeletons; and pyexec/_contract.py, the
constants of the contract headers for the Python that does not load the
extension.

The Makefile produces what this reads (build/*.skel.h, the vendored libbpf);
`make artifacts` is run first so `pip install .` works on its own.
"""

import os
import pathlib
import re
import shlex
import subprocess

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent
CSRC = ROOT / "csrc"
BUILD = ROOT / "build"


# The BPF programs, as the Makefile's PROGRAMS names them (build/programs.h, which make artifacts writes).
PROGRAMS_HEADER = BUILD / "programs.h"
STRING_DEFINE = re.compile(r'#define (\w+) ("[^"]*")')
MACRO_DEFINE = re.compile(r"#define \w+\(")  # a function-like macro, which C reads and cffi cannot
INTEGER_DEFINE = re.compile(r"#define (\w+) (\d+)\b")
ENUMERATOR = re.compile(r"^\s*(\w+) = (\d+),")


def cdef_text(*headers: str) -> str:
    """The headers as cffi reads them: declarations and integer #define constants only."""
    lines = []
    for header in headers:
        for line in (CSRC / header).read_text().splitlines():
            if not line.startswith("#") or (line.startswith("#define") and not STRING_DEFINE.match(line)
                                            and not MACRO_DEFINE.match(line)):
                lines.append(line)
    return "\n".join(lines)


def write_contract(path: pathlib.Path, *headers: str) -> None:
    """The constants of the headers as a Python module (rewritten only when they change)."""
    lines = ['"""The constants of csrc/' + ", csrc/".join(headers) + ', written by build.py: do not edit."""', ""]
    for header in headers:
        for line in (CSRC / header).read_text().splitlines():
            found = STRING_DEFINE.match(line) or INTEGER_DEFINE.match(line) or ENUMERATOR.match(line)
            if found:
                lines.append(f"{found.group(1)} = {found.group(2)}")
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


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

programs = re.findall(r"X\((\w+)\)", PROGRAMS_HEADER.read_text())
# What Python sees of the C: the contracts (what the kernel shares), then each loader's API:
# csrc/NAME.h and csrc/NAME_api.h of each program.
contracts = ("contract.h", *(f"{name}.h" for name in programs))
apis = ("program.h", *(f"{name}_api.h" for name in programs))
write_contract(ROOT / "pyexec" / "_contract.py", *contracts)

ffibuilder = FFI()
ffibuilder.cdef(cdef_text(*contracts, *apis))
ffibuilder.cdef('extern "Python+C" void pyexec_libbpf_log(int level, const char *message);')
flags = libbpf_flags()
ffibuilder.set_source(
    "pyexec._shim",
    "".join(f'#include "{header}"\n' for header in apis),
    # setuptools wants them relative to setup.py
    sources=sorted(str(source.relative_to(ROOT)) for source in CSRC.glob("*.c") if not source.name.endswith(".bpf.c")),
    include_dirs=[str(CSRC), str(BUILD), *flags.pop("include_dirs", [])],
    libraries=flags.pop("libraries", []),
    **flags,
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(BUILD / "cffi"), verbose=True)
