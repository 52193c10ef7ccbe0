"""Adds the licenses of what a wheel's extension bundles to its .dist-info.

Usage: wheel_licenses.py WHEEL EXPRESSION NAME=FILE...
Each FILE goes to .dist-info/licenses/bundled/NAME/, is named by a License-File
line of METADATA, and EXPRESSION (SPDX) is added to its License-Expression.
The wheel is rewritten in place (`wheel unpack` and `wheel pack`, which
writes RECORD anew).
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile


def main(wheel: str, expression: str, *licenses: str) -> None:
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "wheel", "unpack", "-d", work, wheel], check=True, stdout=subprocess.DEVNULL)
        (tree,) = pathlib.Path(work).iterdir()
        (dist_info,) = tree.glob("*.dist-info")
        added = []
        for pair in licenses:
            name, _, source = pair.partition("=")
            target = dist_info / "licenses" / "bundled" / name / pathlib.Path(source).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            added.append(f"License-File: {target.relative_to(dist_info / 'licenses')}")
        metadata = dist_info / "METADATA"
        headers, _, body = metadata.read_text().partition("\n\n")
        lines = headers.splitlines()
        at = max(number for number, line in enumerate(lines) if line.startswith("License-File: "))
        lines[at + 1 : at + 1] = added
        lines = [f"{line} AND {expression}" if line.startswith("License-Expression: ") else line for line in lines]
        metadata.write_text("\n".join(lines) + "\n\n" + body)
        subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", str(pathlib.Path(wheel).parent), str(tree)],
                       check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main(*sys.argv[1:])
