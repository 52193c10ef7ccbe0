"""The pyexec command line."""

# No `from __future__ import annotations` here: Typer would have to evaluate
# every parameter's annotation from its string at each start-up (about 10 ms).
import contextlib
import enum
import functools
import inspect
import io
import logging
import math
import os
import pwd
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Iterator, Optional

import typer

if TYPE_CHECKING:
    from rich.text import Text

    from .report import Report

from . import __version__, outfile
from .counter import BREAKDOWNS, DEFAULT_MAX_ENTRIES, PIN_DIRECTORY, ExecCounter, libbpf_version
from .errors import (
    EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_PERMISSION, EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE,
    ArgumentError, BpfPermissionError, PyexecError, UnsupportedKernelError,
)
from .kernel import FEATURES

# What only the output needs (pyexec.report, rich, json) is imported once counting
# has begun: start-up, from launch to attached, is what a user waits through.

EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} ok, {EXIT_USAGE} usage error, {EXIT_UNSUPPORTED} unsupported kernel "
    f"(no BTF, missing tracepoint, a program the kernel rejects), {EXIT_NO_PERMISSION} no permission "
    f"(not root, nor CAP_BPF + CAP_PERFMON), {EXIT_INTERRUPTED} interrupted before counting began, "
    f"{EXIT_ERROR} any other error."
)

app = typer.Typer(
    help="Count how many times each binary is executed on this host, with eBPF.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show_version(wanted: bool) -> None:
    if wanted:
        print(f"pyexec {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool, typer.Option("--version", callback=show_version, is_eager=True, help="Show pyexec's version and exit.")
    ] = False,
) -> None:
    """Count how many times each binary is executed on this host, with eBPF."""


def say(message: str) -> None:
    """A diagnostic line on stderr (results go to stdout)."""
    print(f"pyexec: {message}", file=sys.stderr, flush=True)


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"
    ndjson = "ndjson"


class DocumentFormat(str, enum.Enum):
    table = "table"
    json = "json"


class Key(str, enum.Enum):  # counter.KEYS, as Typer choices
    resolved = "resolved"
    invoked = "invoked"


class Mode(str, enum.Enum):  # counter.MODES, as Typer choices
    exec = "exec"
    attempts = "attempts"


# pyexec.kernel.FEATURES, as Typer choices.
Feature = enum.Enum("Feature", {name: name for name in FEATURES}, type=str)  # type: ignore[misc]


class Sort(str, enum.Enum):
    rate = "rate"
    total = "total"
    path = "path"


def parse_uid(value: str) -> int:
    """A uid, given as a number or a user name."""
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise typer.BadParameter(f"no such user: {value!r}", param_hint="'--uid'") from None


# The longest wait pyexec takes: threading's waits refuse longer ones (PY_TIMEOUT_MAX).
LONGEST_SECONDS = 10**9


def seconds(value: float | None) -> float | None:
    """A duration or interval: a finite number of seconds (nan and inf are not)."""
    if value is not None and not (math.isfinite(value) and value <= LONGEST_SECONDS):
        raise typer.BadParameter(f"{value} is not a number of seconds up to {LONGEST_SECONDS}")
    return value


def parse_by(value: str) -> tuple[str, ...]:
    fields = tuple(field.strip() for field in value.split(",") if field.strip())
    unknown = [field for field in fields if field not in BREAKDOWNS]
    if unknown or not fields:
        raise typer.BadParameter(
            f"{value!r}: give one or more of {','.join(BREAKDOWNS)}, separated by commas",
            param_hint="'--by'",
        )
    return fields


# The options of the commands that count (run, top), declared once.
COUNTING = "What to count"
KeyOption = Annotated[
    Key,
    typer.Option(
        help="resolved: the file executed, symlinks and mounts resolved (a script counts as its "
        "interpreter); invoked: the name given to exec, as given.",
        rich_help_panel=COUNTING,
    ),
]
ModeOption = Annotated[
    Mode,
    typer.Option(
        help="exec: successful executions; attempts: every execve/execveat call with its outcome "
        "(a failed one under the name it was given).",
        rich_help_panel=COUNTING,
    ),
]
ByOption = Annotated[
    str,
    typer.Option(
        metavar="FIELDS",
        help=f"Count by these fields, comma-separated: {', '.join(BREAKDOWNS)}.",
        rich_help_panel=COUNTING,
    ),
]
UidOption = Annotated[
    Optional[list[str]],
    typer.Option(help="Only executions by this user (name or uid); repeatable.", rich_help_panel=COUNTING),
]
CgroupOption = Annotated[
    Optional[str],
    typer.Option(
        help="Only executions in this cgroup v2 (e.g. /system.slice/cron.service) and below.",
        rich_help_panel=COUNTING,
    ),
]
CommOption = Annotated[
    Optional[str],
    typer.Option(help="Only executions whose command name (after exec) is this.", rich_help_panel=COUNTING),
]
PathPrefixOption = Annotated[
    Optional[str],
    typer.Option(help="Only paths (as --key gives them) that start so.", rich_help_panel=COUNTING),
]
ExcludeSelfOption = Annotated[
    bool,
    typer.Option(
        "--exclude-self/--include-self",
        help="Leave out executions by pyexec itself and its child processes.",
        rich_help_panel=COUNTING,
    ),
]
MaxEntriesOption = Annotated[
    int,
    typer.Option(
        min=1,
        max=2**31 - 1,
        help="Distinct keys the kernel map holds; executions of more are counted as dropped.",
        rich_help_panel=COUNTING,
    ),
]
DebugOption = Annotated[
    bool, typer.Option(help="bpf_printk every key counted; read it with pyexec trace-pipe.")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show libbpf's log on stderr.")]
AvoidOption = Annotated[
    Optional[list[Feature]],
    typer.Option(
        metavar="FEATURE",
        help="Do not use this kernel feature even where the kernel has it, but its fallback "
        "(pyexec doctor lists them); repeatable.",
    ),
]


def make_counter(
    *, key: Key, mode: Mode, by: str, uid: list[str] | None, cgroup: str | None, comm: str | None,
    path_prefix: str | None, exclude_self: bool, max_entries: int, debug: bool, verbose: bool,
    avoid: list[Feature] | None,
) -> ExecCounter:
    """The counter the options ask for; bad values are usage errors, before anything loads."""
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        return ExecCounter(
            max_entries=max_entries,
            key=key.value,
            mode=mode.value,
            by=parse_by(by),
            uids=[parse_uid(value) for value in uid or ()],
            cgroup=cgroup,
            comm=comm,
            path_prefix=path_prefix,
            exclude_self=exclude_self,
            debug=debug,
            avoid=[feature.value for feature in avoid or ()],
        )
    except ArgumentError as error:  # named as the option that carries it
        raise typer.BadParameter(str(error), param_hint=f"'--{error.argument.replace('_', '-')}'") from None


def _counting_options(
    key: KeyOption = Key.resolved,
    mode: ModeOption = Mode.exec,
    by: ByOption = "path",
    uid: UidOption = None,
    cgroup: CgroupOption = None,
    comm: CommOption = None,
    path_prefix: PathPrefixOption = None,
    max_entries: MaxEntriesOption = DEFAULT_MAX_ENTRIES,
    debug: DebugOption = False,
    verbose: VerboseOption = False,
    avoid: AvoidOption = None,
) -> None:
    """The counting options of run, top, start and serve: declared once, here."""


def counting(command: Any) -> Any:
    """Gives a command the counting options; it gets the ExecCounter they ask for
    (not started) as its `counter` argument. --exclude-self goes into it too where the
    command has that option (run and top: a process of theirs stays to be left out)."""
    own = inspect.signature(command)
    shared = inspect.signature(_counting_options).parameters

    @functools.wraps(command)
    def with_counter(**options: Any) -> Any:
        counting = {name: options.pop(name) for name in shared}
        exclude_self = options.pop("exclude_self") if "exclude_self" in own.parameters else False
        counter = make_counter(**counting, exclude_self=exclude_self)
        return command(counter=counter, **options)

    parameters = [parameter for name, parameter in own.parameters.items() if name != "counter"]
    with_counter.__signature__ = own.replace(parameters=[*parameters, *shared.values()])  # type: ignore[attr-defined]
    return with_counter


@contextlib.contextmanager
def stop_requests(
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP),
) -> Iterator[threading.Event]:
    """An event set by Ctrl-C, SIGTERM or SIGHUP (the terminal went away), from before
    loading until the counts are read, so a stop at any moment still prints them."""
    stop = threading.Event()
    handler = lambda signum, frame: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class StatusLine:
    """Executions so far on stderr, rewritten in place; only on a terminal."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def show(self, report: "Report") -> None:
        if self.shown:
            sys.stderr.write(
                f"\r\x1b[K{report.duration_s:.0f} s · {report.total_text()} · "
                f"{report.rows_text()} · dropped {report.stats.dropped}"
            )
            sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


stdout_closed = False  # set by main: results cannot go to stdout


class TrimmedLines(io.TextIOBase):
    """Writes text on to another stream with the spaces at the end of each line removed."""

    def __init__(self, out: Any) -> None:
        self.out, self.pending = out, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.out.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self.out.flush()


class Output:
    """Where results go: stdout as they come, or a file written whole at the end."""

    def __init__(self, path: str | None) -> None:
        self.path = None if path == outfile.STDOUT else path
        if self.path is None and stdout_closed:
            raise PyexecError("standard output is closed: give --output FILE, or run with stdout open")
        self._kept = io.BytesIO()  # what goes to the file, when there is one
        self.stream: BinaryIO = self._kept if self.path else sys.stdout.buffer
        self._console = None

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def console(self):
        """A rich console onto the same place, made once (its text layer owns the stream)."""
        if self._console is None:
            from rich.console import Console

            terminal = self.path is None and sys.stdout.isatty()
            text = io.TextIOWrapper(self.stream, encoding="utf-8", write_through=True) if self.path else sys.stdout
            # In a pipe or a file, long paths stay on one line rather than fold at 80 columns,
            # and lines end without the padding that aligns a table's last column.
            self._console = Console(
                file=text if terminal else TrimmedLines(text),
                highlight=False, soft_wrap=True, width=None if terminal else 1 << 16,
                force_terminal=False if not terminal else None,
            )
        return self._console

    def show(self, text: "Text") -> None:
        """Text styled on a terminal; elsewhere its characters, written at once (rich
        takes a second to lay out 100k lines that need no layout)."""
        console = self.console()
        if console.is_terminal:
            console.print(text)
        else:
            console.file.write(text.plain + "\n")

    def close(self) -> None:
        if self.path:
            outfile.write(self.path, self._kept.getvalue())


def render(report: "Report", output_format: OutputFormat, out: Output, top: int | None,
           intervals: "list[Report]") -> None:
    """The final result, with the intervals for the formats that carry them whole."""
    from .report import timestamp, to_json

    if output_format is OutputFormat.json:
        document = report.document(top)
        if intervals:
            document["intervals"] = [
                interval.interval_document(index, top) for index, interval in enumerate(intervals, start=1)
            ]
        out.write((to_json(document) + "\n").encode())
    elif output_format is OutputFormat.ndjson:
        out.write((to_json({"summary": report.span(), **report.document(top)}) + "\n").encode())
    elif output_format is OutputFormat.csv:
        if intervals:
            from .report import write_csv

            write_csv(out.stream, [report.csv_header(interval=True)])
            for index, interval in enumerate(intervals, start=1):
                interval.write_csv(out.stream, top, interval=str(index))
            report.write_csv(out.stream, top, interval="total")
        else:
            report.write_csv(out.stream, top)
    else:
        console = out.console()
        if intervals:
            console.print(f"── total · {timestamp(report.started_at)} – {timestamp(report.ended_at)}")
        out.show(report.table(top))
        console.print(report.summary())


def render_interval(index: int, interval: "Report", output_format: OutputFormat, out: Output,
                    top: int | None) -> None:
    """One interval, for the formats that stream them."""
    from .report import timestamp, to_json

    if output_format is OutputFormat.ndjson:
        out.write((to_json(interval.interval_document(index, top)) + "\n").encode())
    elif output_format is OutputFormat.table:
        console = out.console()
        console.print(f"── interval {index} · {timestamp(interval.started_at)} – {timestamp(interval.ended_at)}")
        console.print(interval.table(top))
        console.print(interval.summary())


def seconds_until(*moments: float | None, tick: float | None = None) -> float | None:
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
    top: Annotated[Optional[int], typer.Option(min=1, help="Show only the N most executed.")] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How to print the counts.")
    ] = OutputFormat.table,
    output: Annotated[
        Optional[str],
        typer.Option(help="Write the result to this file instead of stdout: a regular file is replaced "
                     "atomically, keeping its mode; a device or FIFO is written to; - is stdout."),
    ] = None,
    save: Annotated[
        Optional[str], typer.Option(help="Also save the result as a snapshot, for pyexec diff.")
    ] = None,
    exclude_self: ExcludeSelfOption = True,
    counter: ExecCounter = None,  # from the counting options
) -> None:
    """Count every successful program execution until stopped, then print the counts, most executed first."""
    if count is not None and interval is None:
        raise typer.BadParameter("--count needs --interval", param_hint="'--count'")
    for option, path in (("--output", output), ("--save", save)):
        try:
            if path is not None:
                outfile.check(path)
        except outfile.OutputPathError as error:
            raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None
    out, status = Output(output), StatusLine()
    with stop_requests() as stop, counter:
        clock = time.monotonic()
        if duration is not None:
            say(f"counting executions for {duration:g} s (Ctrl-C stops sooner)")
        elif count is not None:
            say(f"counting executions for {count} intervals of {interval:g} s (Ctrl-C stops sooner)")
        else:
            say("counting executions until Ctrl-C or SIGTERM")
        from .report import Report

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
        from .snapshot import save as save_snapshot

        save_snapshot(current, save)


@app.command(epilog="Example: sudo pyexec top --interval 2 --by comm,path --sort total")
@counting
def top(
    interval: Annotated[float, typer.Option(min=0.1, callback=seconds, help="Seconds between refreshes.")] = 1.0,
    sort: Annotated[Sort, typer.Option(help="Order rows by rate (last interval), total or path.")] = Sort.rate,
    rows: Annotated[int, typer.Option(min=1, help="How many rows to show.")] = 30,
    once: Annotated[bool, typer.Option(help="Print one frame, after one interval, and exit.")] = False,
    exclude_self: ExcludeSelfOption = True,
    counter: ExecCounter = None,  # from the counting options
) -> None:
    """Show what runs, live: totals, the last interval, rates and shares. q or Ctrl-C quits."""
    from .top import TopView, run_top

    with stop_requests() as stop, counter:
        say("watching executions (q or Ctrl-C quits)")
        run_top(counter, TopView(counter, sort.value, rows), interval, once, stop)


PinDirOption = Annotated[str, typer.Option(help="Where the counter is pinned, on bpffs.")]
TopOption = Annotated[Optional[int], typer.Option(min=1, help="Show only the N most executed.")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="How to print the counts.")]


@app.command(epilog="Example: sudo pyexec start --by uid,path, then sudo pyexec show --top 20")
@counting  # no --exclude-self: no process of ours stays to be left out
def start(pin_dir: PinDirOption = PIN_DIRECTORY, counter: ExecCounter = None) -> None:
    """Start counting in the kernel and return: the counter is pinned, and counts with no pyexec running."""
    from . import pinned

    pinned.start(counter, pin_dir)
    say(f"counting executions, pinned at {pin_dir}: pyexec show prints the counts, pyexec stop ends it")


@app.command(epilog="Example: sudo pyexec show --top 20 --format json")
def show(
    top: TopOption = None,
    output_format: FormatOption = OutputFormat.table,
    output: Annotated[Optional[str], typer.Option(help="Write the counts to this file instead of stdout.")] = None,
    pin_dir: PinDirOption = PIN_DIRECTORY,
) -> None:
    """Print what the pinned counter (pyexec start) counted, since the start or the last reset."""
    from . import pinned

    if output is not None:
        try:
            outfile.check(output)
        except outfile.OutputPathError as error:
            raise typer.BadParameter(str(error), param_hint="'--output'") from None
    with ExecCounter.open_pinned(pin_dir) as counter:
        current = pinned.report(counter, pin_dir)
    out = Output(output)
    render(current, output_format, out, top, [])
    out.close()


@app.command(epilog="Example: sudo pyexec status --format json")
def status(
    output_format: Annotated[DocumentFormat, typer.Option("--format", "-f")] = DocumentFormat.table,
    pin_dir: PinDirOption = PIN_DIRECTORY,
) -> None:
    """Say whether a pinned counter runs, since when, with which options, and how full its map is."""
    from . import pinned
    from .report import to_json

    found = pinned.status(pin_dir)
    if output_format is DocumentFormat.json:
        print(to_json(found))
        return
    if not found["running"]:
        say(f"no counter is pinned at {pin_dir} (pyexec start starts one)")
        return
    from rich.table import Table

    from .report import data

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
    from . import pinned

    before = pinned.reset(pin_dir)
    say(f"reset: {before.total_text()} of {before.rows_text()} since {before.span()['start']} set aside")


@app.command(epilog="Example: sudo pyexec stop --format json > final.json")
def stop(
    top: TopOption = None,
    output_format: FormatOption = OutputFormat.table,
    pin_dir: PinDirOption = PIN_DIRECTORY,
) -> None:
    """Print the pinned counter's final counts, then detach it and free its maps."""
    from . import pinned

    if pinned.remove_partial(pin_dir):
        say(f"removed {pin_dir}: a counter that never finished starting (it had counted nothing)")
        return
    final = pinned.final(pin_dir)
    out = Output(None)
    render(final, output_format, out, top, [])  # printed first: whatever unpinning then meets
    out.close()
    pinned.unpin(pin_dir)


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, or [IPV6]:PORT."""
    host, _, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9435", param_hint="'--listen'")
    return host, int(port)


@app.command(epilog="Examples: sudo pyexec serve · sudo pyexec serve --listen 0.0.0.0:9435 --max-series 1000")
@counting
def serve(
    listen: Annotated[str, typer.Option(help="Where to serve /metrics: HOST:PORT (loopback unless you say otherwise).")]
    = "127.0.0.1:9435",
    max_series: Annotated[int, typer.Option(min=1, help="Export the N biggest keys; the rest are summed under "
                                            "path=\"__other__\".")] = 500,
    pin_dir: PinDirOption = PIN_DIRECTORY,
    counter: ExecCounter = None,  # its own, from the counting options, when none is pinned
) -> None:
    """Serve the counts as Prometheus metrics: those of the pinned counter (pyexec start) if
    there is one, else of a counter of its own (the counting options), detached on exit.
    A pinned counter is followed: stopped, scrapes answer 503; started anew, they read the new one.
    SIGHUP looks user and cgroup names up again."""
    import ipaddress

    from . import pinned
    from .exporter import PinnedCounter, serve as serve_metrics

    host, port = parse_listen(listen)
    try:
        if not ipaddress.ip_address(host).is_loopback:
            say(f"warning: serving on {host}, beyond this host: anyone who reaches it reads what this host runs; "
                "bind the address that Prometheus scrapes (or 127.0.0.1), and firewall the port")
    except ValueError:  # a host name
        pass
    source: Any = counter
    if pinned.is_running(pin_dir):
        source = PinnedCounter(pin_dir)
        source.current()  # refused now, not at the first scrape, if it cannot be read
        what = f"the counter pinned at {pin_dir}"
    else:
        what = "a counter of its own"
    reload = threading.Event()
    previous_hup = signal.signal(signal.SIGHUP, lambda signum, frame: reload.set())
    try:
        with stop_requests((signal.SIGINT, signal.SIGTERM)) as stop, source:
            try:
                serve_metrics(source, host, port, max_series, stop, reload=reload,
                              ready=lambda: say(f"serving {what} at http://{listen}/metrics (Ctrl-C or SIGTERM stops)"))
            except OSError as error:
                raise PyexecError(f"cannot serve at {listen}: {error.strerror}") from None
    finally:
        signal.signal(signal.SIGHUP, previous_hup)


@app.command(epilog="Example: pyexec diff before.json after.json --format json")
def diff(
    old: Annotated[str, typer.Argument(help="The earlier snapshot (pyexec run --save).")],
    new: Annotated[str, typer.Argument(help="The later snapshot.")],
    top: Annotated[Optional[int], typer.Option(min=1, help="Show only the first N changes.")] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How to print the changes (ndjson: as json).")
    ] = OutputFormat.table,
) -> None:
    """Show what changed between two snapshots: new binaries, gone ones, biggest changes."""
    from .report import to_json
    from .snapshot import Diff, SnapshotError, load

    try:
        (old_report, old_meta), (new_report, new_meta) = load(old), load(new)
        difference = Diff(old_report, new_report, old_meta, new_meta)
    except SnapshotError as error:
        raise typer.BadParameter(str(error)) from None
    for warning in difference.warnings():
        say(f"warning: {warning}")
    if output_format in (OutputFormat.json, OutputFormat.ndjson):
        print(to_json(difference.document(top)))
    elif output_format is OutputFormat.csv:
        sys.stdout.flush()
        difference.write_csv(sys.stdout.buffer, top)
    else:
        Output(None).console().print(difference.table(top))


@app.command(epilog="Example: sudo pyexec maps --format json")
def maps(
    output_format: Annotated[DocumentFormat, typer.Option("--format", "-f")] = DocumentFormat.table,
) -> None:
    """List the BPF maps of the pyexec counters loaded on this host, with how full they are."""
    from .maps import list_maps, table

    found = list_maps()
    if output_format is DocumentFormat.json:
        import json

        print(json.dumps([{**vars(info), "fill": info.fill} for info in found]))
        return
    if not found:
        say("no pyexec counter is loaded (start one with pyexec run)")
        return
    Output(None).console().print(table(found))


@app.command(epilog="Example: sudo pyexec doctor --format json")
def doctor(
    output_format: Annotated[DocumentFormat, typer.Option("--format", "-f")] = DocumentFormat.table,
) -> None:
    """Check that pyexec can run here, and say how to fix what stops it."""
    from .doctor import checks, exit_code, table

    results = checks()
    code = exit_code(results)
    if output_format is DocumentFormat.json:
        import json

        print(json.dumps({"ok": code == 0, "exit_code": code, "checks": [vars(check) for check in results]}))
    else:
        Output(None).console().print(table(results))
    raise typer.Exit(code)


@app.command("trace-pipe", epilog="Example: sudo pyexec trace-pipe (beside sudo pyexec run --debug)")
def trace_pipe() -> None:
    """Print the kernel's trace pipe, where pyexec run --debug writes, until Ctrl-C."""
    from .system import TRACEFS, ensure_tracefs

    ensure_tracefs()
    path = f"{TRACEFS}/trace_pipe" if os.path.isdir(f"{TRACEFS}/events") else "/sys/kernel/debug/tracing/trace_pipe"
    with stop_requests() as stop, open(path, "rb", buffering=0) as pipe:
        import select

        say(f"reading {path} (Ctrl-C stops)")
        while not stop.is_set():
            if select.select([pipe], [], [], 0.2)[0]:
                sys.stdout.buffer.write(pipe.read(65536))
                sys.stdout.buffer.flush()


@app.command(epilog="Example: pyexec version")
def version() -> None:
    """Show the versions of pyexec, the libbpf linked into it, and the running kernel."""
    print(f"pyexec {__version__}")
    print(f"libbpf {libbpf_version().lstrip('v')}")
    print(f"kernel {os.uname().release}")


HELP_WIDTH_IN_A_PIPE = 120

# Typer may bundle its own click: find click's base exception through Typer's.
_ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors become one line on stderr and a documented exit code."""
    global stdout_closed
    # Started with stdout or stderr closed (>&-): Python made them None.
    stdout_closed = sys.stdout is None
    sys.stdout = sys.stdout or open(os.devnull, "w")
    sys.stderr = sys.stderr or open(os.devnull, "w")
    for stream in (sys.stdout, sys.stderr):  # an ASCII-only locale shows the rest escaped
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    import warnings

    from .errors import PyexecWarning

    if not sys.stdout.isatty() and not os.environ.get("TERMINAL_WIDTH") and not os.environ.get("COLUMNS"):
        # Read by Typer's help (imported only for help): not rich's 80, which cuts option texts.
        os.environ["TERMINAL_WIDTH"] = str(HELP_WIDTH_IN_A_PIPE)
    warnings.showwarning = lambda message, category, *rest: say(
        f"warning: {message}" if issubclass(category, PyexecWarning) else f"{category.__name__}: {message}")
    try:
        code = typer.main.get_command(app).main(args=argv, prog_name="pyexec", standalone_mode=False)
    except _ClickException as error:
        command = getattr(getattr(error, "ctx", None), "command_path", "pyexec")
        message = error.format_message()
        if message:  # bare pyexec: the help is printed, and no empty error line after it
            say(f"{message} (see '{command} --help')")
        code = error.exit_code
    except BpfPermissionError as error:
        code = fail(error, EXIT_NO_PERMISSION)
    except UnsupportedKernelError as error:
        code = fail(error, EXIT_UNSUPPORTED)
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        sys.stdout = open(os.devnull, "w")
        code = EXIT_ERROR
    except (PyexecError, OSError) as error:
        code = fail(error, EXIT_ERROR)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C before counting began
        code = EXIT_INTERRUPTED
    except Exception as error:  # a bug of ours: still one line, and a way to report it
        code = fail(f"internal error: {error!r}; please report it with the command that caused it", EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def fail(error: BaseException | str, code: int) -> int:
    say(f"error: {error}")
    return code
