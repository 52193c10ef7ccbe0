"""Names any user can choose (file names, commands, cgroups) are shown as data in
every table: never rich markup, never raw control characters."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pyexec import ExecCounter
from pyexec.doctor import Check, table as doctor_table
from pyexec.snapshot import Diff
from pyexec.top import TopView

from .conftest import report_of

MARKUP = ["/tmp/x[/]", "/tmp/[reverse blink]EVIL", "/tmp/[white on white]hidden", "/tmp/[link=http://x]y[/link]"]
CONTROL = "/tmp/clear\x1b[2J\x07bell"
# What the markup above would turn into, were it parsed.
STYLES = ["\x1b[5m", "\x1b[7m", "\x1b[37;47m", "\x1b]8;"]


def rendered(renderable) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=400)
    console.print(renderable)
    return console.file.getvalue()


def assert_shown_as_data(output: str) -> None:
    for path in MARKUP:
        assert path in output
    assert not any(style in output for style in STYLES), output
    assert "\x1b[2J" not in output and "\x07" not in output
    assert "\\x1b[2J\\x07bell" in output


HOSTILE = report_of([*MARKUP, CONTROL])


def test_the_run_table() -> None:
    assert_shown_as_data(rendered(HOSTILE.table()))


def test_the_top_frame_and_its_header() -> None:
    view = TopView(ExecCounter(comm="[blink]x", path_prefix="/tmp/[reverse]"), "rate", 30)
    output = rendered(view.frame(HOSTILE, HOSTILE))
    assert_shown_as_data(output)
    assert "[blink]x" in output and "[reverse]" in output


def test_the_diff_table() -> None:
    assert_shown_as_data(rendered(Diff(report_of([]), HOSTILE, {}, {}).table()))


@pytest.mark.parametrize("field", ["name", "detail", "fix"])
def test_the_doctor_table(field: str) -> None:
    checks = [Check(**{"name": "check", "status": "info", "detail": "", "fix": "", field: text})
              for text in [*MARKUP, CONTROL]]
    assert_shown_as_data(rendered(doctor_table(checks)))
