"""pyexec start, show, status, reset and stop: a counter pinned in the kernel,
counting with no pyexec running."""

from typing import Annotated, Optional

import typer

from ..settings import PIN_DIRECTORY, Settings
from .app import app, say
from .options import DocumentFormat, DocumentFormatOption, FormatOption, OutputFormat, PinDirOption, TopOption, \
    check_output_path, counting
from .output import Output, render


@app.command(epilog="Example: sudo pyexec start --by uid,path, then sudo pyexec show --top 20")
@counting  # no --exclude-self: no process of ours stays to be left out
def start(pin_dir: PinDirOption = PIN_DIRECTORY,
          settings: Settings = None) -> None:  # type: ignore[assignment]  # from the counting options
    """Start counting in the kernel and return: the counter is pinned, and counts with no pyexec running."""
    from .. import pinned
    from ..counter import ExecCounter

    pinned.start(ExecCounter(settings), pin_dir)
    say(f"counting executions, pinned at {pin_dir}: pyexec show prints the counts, pyexec stop ends it")


@app.command(epilog="Example: sudo pyexec show --top 20 --format json")
def show(
    top: TopOption = None,
    output_format: FormatOption = OutputFormat.table,
    output: Annotated[Optional[str], typer.Option(help="Write the counts to this file instead of stdout.")] = None,
    pin_dir: PinDirOption = PIN_DIRECTORY,
) -> None:
    """Print what the pinned counter (pyexec start) counted, since the start or the last reset."""
    from .. import pinned
    from ..counter import ExecCounter

    check_output_path("--output", output)
    with ExecCounter.open_pinned(pin_dir) as counter:
        current = pinned.report(counter, pin_dir)
    out = Output(output)
    render(current, output_format, out, top, [])
    out.close()


@app.command(epilog="Example: sudo pyexec status --format json")
def status(
    output_format: DocumentFormatOption = DocumentFormat.table,
    pin_dir: PinDirOption = PIN_DIRECTORY,
) -> None:
    """Say whether a pinned counter runs, since when, with which options, and how full its map is."""
    from .. import pinned

    found = pinned.status(pin_dir)
    if output_format is DocumentFormat.json:
        Output(None).document(found)
        return
    if not found["running"]:
        say(f"no counter is pinned at {pin_dir} (pyexec start starts one)")
        return
    from rich.table import Table

    from ..report import data

    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in found.items():
        shown = ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, [], False)) if isinstance(value, dict) else value
        table.add_row(name, data(",".join(value) if isinstance(value, list) else shown))
    Output(None).console().print(table)


@app.command(epilog="Example: sudo pyexec reset")
def reset(pin_dir: PinDirOption = PIN_DIRECTORY) -> None:
    """Count from now on in pyexec show, without detaching and without losing an execution."""
    from .. import pinned

    before = pinned.reset(pin_dir)
    say(f"reset: {before.total_text()} of {before.rows_text()} since {before.span()['start']} set aside")


@app.command(epilog="Example: sudo pyexec stop --format json > final.json")
def stop(
    top: TopOption = None,
    output_format: FormatOption = OutputFormat.table,
    pin_dir: PinDirOption = PIN_DIRECTORY,
) -> None:
    """Print the pinned counter's final counts, then detach it and free its maps."""
    from .. import pinned

    if pinned.remove_partial(pin_dir):
        say(f"removed {pin_dir}: a counter that never finished starting (it had counted nothing)")
        return
    final = pinned.final(pin_dir)
    out = Output(None)
    render(final, output_format, out, top, [])  # printed first: whatever unpinning then meets
    out.close()
    pinned.unpin(pin_dir)
