"""The pyexec command line."""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import pwd
import signal
import sys
import threading
import time
from typing import Annotated, Iterator, Optional

import typer

from . import __version__
from .counter import BREAKDOWNS, DEFAULT_MAX_ENTRIES, KEYS, MODES, ExecCounter, libbpf_version
from .errors import BpfPermissionError, PyexecError, UnsupportedKernelError
from .report import Report, rows_from_records

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_UNSUPPORTED = 69  # EX_UNAVAILABLE: the kernel lacks BTF or the tracepoint
EXIT_NO_PERMISSION = 77  # EX_NOPERM: not root, nor CAP_BPF + CAP_PERFMON

EXIT_CODES_HELP = (
    f"Exit codes: {EXIT_OK} ok, {EXIT_USAGE} usage error, {EXIT_UNSUPPORTED} unsupported kernel "
    f"(no BTF, missing tracepoint), {EXIT_NO_PERMISSION} no permission (not root, nor CAP_BPF + "
    f"CAP_PERFMON), {EXIT_ERROR} any other error."
)

app = typer.Typer(
    help="Count how many times each binary is executed on this host, with eBPF.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def say(message: str) -> None:
    """A diagnostic line on stderr (results go to stdout)."""
    print(f"pyexec: {message}", file=sys.stderr, flush=True)


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


Key = enum.Enum("Key", {key: key for key in KEYS}, type=str)
Mode = enum.Enum("Mode", {mode: mode for mode in MODES}, type=str)


def parse_uid(value: str) -> int:
    """A uid, given as a number or a user name."""
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise typer.BadParameter(f"no such user: {value!r}", param_hint="'--uid'") from None


def parse_by(value: str) -> tuple[str, ...]:
    fields = tuple(field.strip() for field in value.split(",") if field.strip())
    unknown = [field for field in fields if field not in BREAKDOWNS]
    if unknown or not fields:
        raise typer.BadParameter(
            f"{value!r}: give one or more of {','.join(BREAKDOWNS)}, separated by commas"
        )
    return fields


@contextlib.contextmanager
def stop_requests() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM, from before loading until the counts are read,
    so a stop at any moment still prints them."""
    stop = threading.Event()
    handler = lambda signum, frame: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@app.command(epilog="Example: sudo pyexec run --duration 60 --top 20 --format json")
def run(
    duration: Annotated[
        Optional[float],
        typer.Option(min=0, help="Stop after this many seconds instead of at Ctrl-C or SIGTERM."),
    ] = None,
    top: Annotated[
        Optional[int], typer.Option(min=1, help="Show only the N most executed binaries.")
    ] = None,
    key: Annotated[
        Key,
        typer.Option(
            help="resolved: the file executed, symlinks and mounts resolved (a script counts as "
            "its interpreter); invoked: the name given to exec, as given."
        ),
    ] = Key.resolved,
    mode: Annotated[
        Mode,
        typer.Option(
            help="exec: successful executions; attempts: every execve/execveat call with its "
            "outcome (a failed one under the name it was given)."
        ),
    ] = Mode.exec,
    by: Annotated[
        str,
        typer.Option(
            metavar="FIELDS",
            help=f"Count by these fields, comma-separated: {','.join(BREAKDOWNS)}.",
        ),
    ] = "path",
    uid: Annotated[
        Optional[list[str]],
        typer.Option(help="Count only executions by this user (name or uid); repeatable."),
    ] = None,
    cgroup: Annotated[
        Optional[str],
        typer.Option(help="Count only executions in this cgroup v2 (e.g. /system.slice/cron.service) and below."),
    ] = None,
    comm: Annotated[
        Optional[str], typer.Option(help="Count only executions whose command name (after exec) is this.")
    ] = None,
    path_prefix: Annotated[
        Optional[str], typer.Option(help="Count only paths (as --key gives them) that start so.")
    ] = None,
    exclude_self: Annotated[
        bool,
        typer.Option(
            "--exclude-self/--include-self",
            help="Leave out executions by pyexec itself and its child processes.",
        ),
    ] = True,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How to print the counts.")
    ] = OutputFormat.table,
    max_entries: Annotated[
        int,
        typer.Option(
            min=1,
            max=2**31 - 1,
            help="Distinct binaries the kernel map holds; executions of more are counted as dropped.",
        ),
    ] = DEFAULT_MAX_ENTRIES,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show libbpf's log on stderr.")] = False,
) -> None:
    """Count every successful program execution until stopped, then print the counts, most executed first."""
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    fields = parse_by(by)
    try:
        counter = ExecCounter(
            max_entries=max_entries,
            key=key.value,
            mode=mode.value,
            by=fields,
            uids=[parse_uid(value) for value in uid or ()],
            cgroup=cgroup,
            comm=comm,
            path_prefix=path_prefix,
            exclude_self=exclude_self,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    with stop_requests() as stop, counter:
        started = time.monotonic()
        if duration is None:
            say("counting executions until Ctrl-C or SIGTERM")
        else:
            say(f"counting executions for {duration:g} s (Ctrl-C stops sooner)")
        stop.wait(duration)
        records, stats = counter.records(), counter.stats()
        rows = rows_from_records(records, fields, mode.value)
        report = Report(rows, stats, time.monotonic() - started, fields, mode.value)
    if output_format is OutputFormat.json:
        print(report.to_json(top))
    elif output_format is OutputFormat.csv:
        sys.stdout.flush()
        report.write_csv(sys.stdout.buffer, top)
    else:
        from rich.console import Console

        # In a pipe, long paths stay on one line rather than fold at 80 columns.
        width = None if sys.stdout.isatty() else 1 << 16
        stdout = Console(highlight=False, soft_wrap=True, width=width)
        stdout.print(report.table(top))
        stdout.print(report.summary())


@app.command(epilog="Example: pyexec version")
def version() -> None:
    """Show the versions of pyexec, the libbpf linked into it, and the running kernel."""
    print(f"pyexec {__version__}")
    print(f"libbpf {libbpf_version().lstrip('v')}")
    print(f"kernel {os.uname().release}")


# Typer may bundle its own click: find click's base exception through Typer's.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors become one line on stderr and a documented exit code."""
    try:
        code = typer.main.get_command(app).main(
            args=argv, prog_name="pyexec", standalone_mode=False
        )
    except _ClickException as error:
        command = getattr(getattr(error, "ctx", None), "command_path", "pyexec")
        say(f"{error.format_message()} (see '{command} --help')")
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
    except typer.Abort:
        code = EXIT_ERROR
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def fail(error: BaseException, code: int) -> int:
    say(f"error: {error}")
    return code
