"""make daemonset: contrib/kubernetes/daemonset.yaml with its requirements filled
in: every wheel in DOWNLOADS (the one make wheel built, and those pip downloaded
for the image's Python), each as name==version --hash=sha256:...

Usage: daemonset.py TEMPLATE DOWNLOADS OUT
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

PLACEHOLDER = "# @REQUIREMENTS@"
# A wheel's file name: name-version(-build)?-python-abi-platform.whl, name with _ for -.
WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.*\.whl$")


def requirement(wheel: Path) -> str:
    match = WHEEL.match(wheel.name)
    if match is None:
        raise SystemExit(f"daemonset: {wheel.name} is not a wheel's file name")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"{match['name'].replace('_', '-').lower()}=={match['version']} --hash=sha256:{digest}"


def fill(template: str, wheels: list[Path]) -> str:
    lines = template.splitlines(keepends=True)
    (at,) = [number for number, line in enumerate(lines) if line.strip().startswith(PLACEHOLDER)]
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines[at : at + 1] = [f"{indent}{requirement(wheel)}\n" for wheel in sorted(wheels)]
    return "".join(lines)


def main(template: str, downloads: str, out: str) -> None:
    wheels = sorted(Path(downloads).glob("*.whl"))
    if not any(wheel.name.startswith("pyexec_ebpf-") for wheel in wheels):
        raise SystemExit(f"daemonset: no pyexec_ebpf wheel in {downloads}")
    Path(out).write_text(fill(Path(template).read_text(), wheels))


if __name__ == "__main__":
    main(*sys.argv[1:])
