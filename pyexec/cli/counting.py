"""pyexec run and pyexec top: count while pyexec runs."""

import time
from typing import Annotated, Optional

import typer

from ..settings import Settings
from .app import app, say
from .options import (ExcludeSelfOption, FormatOption, OutputFormat, Sort, TopOption, check_output_path, counting,
                      seconds, stop_requests)
from .output import Output, StatusLine, render, render_interval

# What only the output needs (pyexec.report, rich, json) is imported once counting
# has begun: start-up, from launch to attached, is what a user waits through.


def seconds_until(*moments: Optional[float], tick: Optional[float] = None) -> Optional[float]:
    """How long to wait for the first of these monotonic moments, or one tick; None: forever."""
    waits = [moment - time.monotonic() for moment in moments if moment is not None]
    if tick is not None:
        waits.append(tick)
    return max(min(waits), 0.0) if waits else None


@app.command(
    epilog="Examples: sudo pyexec run --duration 60 --top 20 --format json · "
    "sudo pyexec run --interval 10 --format ndjson · sudo pyexec run --by uid,path --save before.json"
)
@counting
def run(
    duration: Annotated[
        Optional[float],
        typer.Option(min=0, callback=seconds, help="Stop after this many seconds instead of at Ctrl-C or SIGTERM."),
    ] = None,
    interval: Annotated[
        Optional[float],
        typer.Option(min=0.1, callback=seconds, help="Also print what ran in each interval of this many seconds."),
    ] = None,
    count: Annotated[
        Optional[int], typer.Option(min=1, help="With --interval: stop after this many intervals.")
    ] = None,
    top: TopOption = None,
    output_format: FormatOption = OutputFormat.table,
    output: Annotated[
        Optional[str],
        typer.Option(help="Write the result to this file instead of stdout: a regular file is replaced "
                     "atomically, keeping its mode; a device or FIFO is written to; - is stdout."),
    ] = None,
    save: Annotated[
        Optional[str], typer.Option(help="Also save the result as a snapshot, for pyexec diff.")
    ] = None,
    exclude_self: ExcludeSelfOption = True,
    settings: Settings = None,  # type: ignore[assignment]  # from the counting options
) -> None:
    """Count every successful program execution until stopped, then print the counts, most executed first."""
    from ..counter import ExecCounter

    if count is not None and interval is None:
        raise typer.BadParameter("--count needs --interval", param_hint="'--count'")
    check_output_path("--output", output)
    check_output_path("--save", save)
    out, status = Output(output), StatusLine()
    with stop_requests() as stop, ExecCounter(settings) as counter:
        clock = time.monotonic()
        if duration is not None:
            say(f"counting executions for {duration:g} s (Ctrl-C stops sooner)")
        elif count is not None:
            say(f"counting executions for {count} intervals of {interval:g} s (Ctrl-C stops sooner)")
        else:
            say("counting executions until Ctrl-C or SIGTERM")
        from ..report import Report

        intervals: list[Report] = []
        previous = Report.empty(counter)
        end = clock + duration if duration is not None else None
        tick = min(1.0, interval or 1.0) if status.shown else interval
        next_interval = clock + interval if interval else None
        while True:
            stopped = stop.wait(seconds_until(end, next_interval, tick=tick))
            current = Report.of(counter)
            now = time.monotonic()
            if interval and next_interval is not None and (now >= next_interval or stopped or (end and now >= end)):
                status.clear()
                intervals.append(current.since(previous))
                render_interval(len(intervals), intervals[-1], output_format, out, top)
                previous, next_interval = current, next_interval + interval
            if stopped or (end is not None and now >= end) or (count and len(intervals) >= count):
                break
            status.show(current)
    status.clear()
    render(current, output_format, out, top, intervals)
    out.close()
    if save:
        from ..snapshot import save as save_snapshot

        save_snapshot(current, save)


@app.command(epilog="Example: sudo pyexec top --interval 2 --by comm,path --sort total")
@counting
def top(
    interval: Annotated[float, typer.Option(min=0.1, callback=seconds, help="Seconds between refreshes.")] = 1.0,
    sort: Annotated[Sort, typer.Option(help="Order rows by rate (last interval), total or path.")] = Sort.rate,
    rows: Annotated[int, typer.Option(min=1, help="How many rows to show.")] = 30,
    once: Annotated[bool, typer.Option(help="Print one frame, after one interval, and exit.")] = False,
    exclude_self: ExcludeSelfOption = True,
    settings: Settings = None,  # type: ignore[assignment]  # from the counting options
) -> None:
    """Show what runs, live: totals, the last interval, rates and shares. q or Ctrl-C quits."""
    from ..counter import ExecCounter
    from ..top import TopView, run_top

    with stop_requests() as stop, ExecCounter(settings) as counter:
        say("watching executions (q or Ctrl-C quits)")
        run_top(counter, TopView(counter, sort.value, rows), interval, once, stop)
