"""The kernel features pyexec uses, against the README's table of kernels tested."""

from __future__ import annotations

import errno
import io
import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from pyexec import ExecCounter, PyexecError, UnsupportedKernelError
from pyexec.doctor import checks, exit_code
from pyexec.errors import LOAD, Action, check
from pyexec.kernel import FEATURES, describe
from pyexec.report import Report
from pyexec.top import TopView

from .conftest import IN_CI, bpf
from .workload import posix_spawn_many

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_kernels() -> dict[str, dict[str, bool]]:
    """The README's table of kernels tested: {"6.1": {"iterators": False, ...}}."""
    text = README.read_text()
    table = text[text.index("<!-- kernels -->") : text.index("<!-- /kernels -->")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    header, body = rows[0], rows[2:]
    columns = {name: next(i for i, cell in enumerate(header) if f"`{name}`" in cell) for name in FEATURES}
    return {row[0]: {name: row[i].startswith("yes") for name, i in columns.items()} for row in body}


def test_features_in_the_header_are_in_the_table() -> None:
    kernels = readme_kernels()
    assert {"5.10", "6.1", "6.12"} <= kernels.keys()
    assert all(set(row) == set(FEATURES) for row in kernels.values())


def test_each_feature_says_how_pyexec_works_with_and_without_it() -> None:
    for name, feature in FEATURES.items():
        assert describe(name, True) == feature.with_it
        assert feature.kernel in describe(name, False) and feature.without_it in describe(name, False)


@bpf
@pytest.mark.kernels
def test_this_kernel_uses_the_features_the_readme_table_says() -> None:
    series = ".".join(re.findall(r"\d+", os.uname().release)[:2])
    expected = readme_kernels().get(series)
    if expected is None:
        if IN_CI or os.environ.get("PYEXEC_KERNEL"):
            pytest.fail(f"Linux {series} is tested here but missing from the README's table of kernels")
        pytest.skip(f"Linux {series} is not in the README's table of kernels tested")
    used = {}
    for name, feature in FEATURES.items():
        with ExecCounter(max_entries=1, **feature.used_by) as counter:
            used[name] = counter.features_used[name]
    assert used == expected


@bpf
def test_an_avoided_feature_is_not_used() -> None:
    for name, feature in FEATURES.items():
        options = {**feature.used_by, "avoid": [*feature.used_by.get("avoid", ()), name]}
        with ExecCounter(max_entries=1, **options) as counter:
            assert counter.features_used[name] is False


def test_avoid_takes_only_known_features() -> None:
    with pytest.raises(ValueError, match="avoid takes kernel features"):
        ExecCounter(avoid=["warp_drive"])


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EACCES])
def test_a_program_the_kernel_rejects_is_an_unsupported_kernel(code: int) -> None:
    with pytest.raises(UnsupportedKernelError, match=r"this kernel \(Linux .*\) rejected it.*pyexec doctor"):
        check(-code, LOAD)
    with pytest.raises(PyexecError) as other:  # the same errno elsewhere is not the verifier's verdict
        check(-code, Action("read the exec_count map"))
    assert not isinstance(other.value, UnsupportedKernelError)


@bpf
@pytest.mark.kernels
def test_doctor_passes_and_says_how_each_part_works() -> None:
    # In-process: the CLI's own doctor test runs it as a subprocess, on the host.
    results = checks()
    assert exit_code(results) == 0, [vars(check) for check in results if check.status == "fail"]
    rows = {check.name: check for check in results}
    for name, feature in FEATURES.items():
        assert rows[feature.serves].detail in (describe(name, True), describe(name, False))


@bpf
@pytest.mark.kernels
def test_a_top_frame_shows_what_ran_since_the_last(true_binary: Path) -> None:
    with ExecCounter() as counter:
        view, first = TopView(counter, "rate", 30), Report.of(counter)
        posix_spawn_many(true_binary, 3)
        current = Report.of(counter)
        console = Console(file=io.StringIO(), width=400)
        console.print(view.frame(current, current.since(first)))
    shown = [line.split() for line in console.file.getvalue().splitlines() if line.endswith(str(true_binary))]
    assert [cells[:2] for cells in shown] == [["3", "3"]]
