"""pyexec top: a live view of what runs, refreshed every interval."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import threading
import time
import tty
from typing import Any
from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, Group
from rich.measure import Measurement
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .counter import ExecCounter
from .report import Report, data, printable

BAR_WIDTH = 20


class TopView:
    def __init__(self, counter: ExecCounter, sort: str, rows: int) -> None:
        self.watched = counter.settings.describe()
        self.sort = sort
        self.rows = rows

    def frame(self, current: Report, last: Report) -> Group:
        """The header, then one row per key: total, last interval, rate, share, bar."""
        interval = max(last.duration_s, 1e-9)
        recent = {last.identity(row): row["count"] for row in last.rows}
        total = max(current.total, 1)
        entries = []
        for row in current.rows:
            delta = recent.get(current.identity(row), 0)
            entries.append((row, delta, delta / interval))
        if self.sort == "path":
            entries.sort(key=lambda entry: str(entry[0].get("path")))
        elif self.sort == "total":
            entries.sort(key=lambda entry: (-entry[0]["count"], -entry[2]))
        else:
            entries.sort(key=lambda entry: (-entry[2], -entry[0]["count"]))
        return Group(self._header(current, last), self._table(current, entries[: self.rows], total))

    def _header(self, current: Report, last: Report) -> Text:
        rate = last.total / max(last.duration_s, 1e-9)
        header = Text("pyexec top", style="bold")
        header.append(f" — {printable(self.watched)}\n")
        header.append(
            f"{current.total_text()} of {current.rows_text()} in {current.duration_s:.0f} s"
            f" · {rate:.1f}/s now"
        )
        header.append_text(current.losses_text())
        return header

    def _table(self, current: Report, entries: list[tuple[dict[str, Any], int, float]], total: int) -> Table:
        fields = [name for name in current.middle_fields(table=True) if name != "outcomes"]
        table = Table(box=None, pad_edge=False, expand=False)
        # Numbers are never cut (no_wrap: rich narrows the other columns first); the bar
        # is cropped, and names lose their start to an ellipsis, on a narrow terminal.
        for name in ("total", "last", "rate/s", "share"):
            table.add_column(name.upper(), justify="right", no_wrap=True)
        table.add_column("", overflow="crop")
        for name in fields:
            table.add_column(name.upper())
        if "path" in current.by:
            table.add_column("PATH")
        for row, delta, rate in entries:
            share = row["count"] / total
            cells = [str(row["count"]), str(delta), f"{rate:.1f}", f"{share:.0%}", "█" * round(share * BAR_WIDTH)]
            cells += [EndKept(data(row[name])) for name in fields]
            if "path" in current.by:
                cells.append(EndKept(data(row["path"])))
            table.add_row(*cells)
        return table


class EndKept:
    """Text in a column narrower than it: its start replaced by an ellipsis, so the
    end of a path (the binary's name) stays on one line."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(2, self.text.cell_len), self.text.cell_len)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        room = max(options.max_width, 2)
        shown = self.text
        if shown.cell_len > room:
            shown = Text("…") + shown[len(shown) - (room - 1):]  # cells of a wide character may not add up
        shown.no_wrap, shown.overflow = True, "crop"
        yield shown


@contextlib.contextmanager
def keys_without_echo() -> Iterator[int | None]:
    """stdin, when it is a terminal, in cbreak mode (keys arrive one by one; Ctrl-C
    still signals); its settings come back however this ends."""
    if not sys.stdin.isatty():
        yield None
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def wait_for_key_or_stop(fd: int | None, stop: threading.Event, timeout: float) -> bool:
    """Waits up to timeout; True when q was pressed or a stop was asked for."""
    if fd is None:
        return stop.wait(timeout)
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0 and not stop.is_set():
        readable, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if readable and os.read(fd, 1) in (b"q", b"Q"):
            return True
    return stop.is_set()


def run_top(counter: ExecCounter, view: TopView, interval: float, once: bool, stop: threading.Event) -> None:
    live_screen = sys.stdout.isatty() and not once
    console = Console(highlight=False) if live_screen else Console(highlight=False, width=1 << 16)
    previous = Report.empty(counter)
    with keys_without_echo() as fd, contextlib.ExitStack() as stack:
        live = stack.enter_context(Live(console=console, screen=True, auto_refresh=False)) if live_screen else None
        while True:
            quit_asked = wait_for_key_or_stop(fd if live_screen else None, stop, interval)
            current = Report.of(counter)
            frame = view.frame(current, current.since(previous))
            previous = current
            if live is not None:
                live.update(frame, refresh=True)
            else:
                console.print(frame)
                console.print()
            if quit_asked or once:
                return
