"""The options that several commands share, declared once: what to count
(@counting, which gives a command the Settings they ask for), durations,
where a counter is pinned, how results are printed."""

import contextlib
import enum
import functools
import inspect
import logging
import math
import pwd
import signal
import threading
from typing import Annotated, Any, Optional
from collections.abc import Iterator

import typer

from .. import outfile
from ..errors import ArgumentError
from ..kernel import FEATURES
from ..model import BREAKDOWNS, KEYS, MODES
from ..settings import DEFAULT_MAX_ENTRIES, MAX_ENTRIES_LIMIT, Settings


def choices(name: str, values: Any) -> Any:
    """Typer's choices of an option: these names, as an enum of strings."""
    return enum.Enum(name, {value: value for value in values}, type=str)


Key = choices("Key", KEYS)
Mode = choices("Mode", MODES)
Feature = choices("Feature", FEATURES)
OutputFormat = choices("OutputFormat", ("table", "json", "csv", "ndjson"))
DocumentFormat = choices("DocumentFormat", ("table", "json"))
Sort = choices("Sort", ("rate", "total", "path"))


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


def seconds(value: Optional[float]) -> Optional[float]:
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


# The options of the commands that count (run, top, start, serve), declared once.
COUNTING = "What to count"
KeyOption = Annotated[
    Key,  # type: ignore[valid-type]  # an enum made at run time, from the library's choices
    typer.Option(
        help="resolved: the file executed, symlinks and mounts resolved (a script counts as its "
        "interpreter); invoked: the name given to exec, as given.",
        rich_help_panel=COUNTING,
    ),
]
ModeOption = Annotated[
    Mode,  # type: ignore[valid-type]
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
        max=MAX_ENTRIES_LIMIT,
        help="Distinct keys the kernel map holds; executions of more are counted as dropped.",
        rich_help_panel=COUNTING,
    ),
]
DebugOption = Annotated[
    bool, typer.Option(help="bpf_printk every key counted; read it with pyexec debug-log.")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show libbpf's log on stderr.")]
AvoidOption = Annotated[
    Optional[list[Feature]],  # type: ignore[valid-type]
    typer.Option(
        metavar="FEATURE",
        help="Do not use this kernel feature even where the kernel has it, but its fallback "
        "(pyexec doctor lists them); repeatable.",
    ),
]


def make_settings(
    *, key: Any, mode: Any, by: str, uid: Optional[list[str]], cgroup: Optional[str], comm: Optional[str],
    path_prefix: Optional[str], exclude_self: bool, max_entries: int, debug: bool, verbose: bool,
    avoid: Optional[list[Any]],
) -> Settings:
    """The settings the options ask for; bad values are usage errors, before anything loads."""
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        settings = Settings(
            max_entries=max_entries, key=key.value, mode=mode.value, by=parse_by(by),
            uids=tuple(parse_uid(value) for value in uid or ()), cgroup=cgroup, comm=comm,
            path_prefix=path_prefix, exclude_self=exclude_self, debug=debug,
            avoid=frozenset(feature.value for feature in avoid or ()),
        )
        if max_entries > DEFAULT_MAX_ENTRIES:
            from ..counter import check_memory_for

            check_memory_for(max_entries)
        return settings
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
    """Gives a command the counting options; it gets the Settings they ask for as its
    `settings` argument. --exclude-self goes into them too where the command has that
    option (run and top: a process of theirs stays to be left out)."""
    own = inspect.signature(command)
    shared = inspect.signature(_counting_options).parameters

    @functools.wraps(command)
    def with_settings(**options: Any) -> Any:
        counting = {name: options.pop(name) for name in shared}
        exclude_self = options.pop("exclude_self") if "exclude_self" in own.parameters else False
        return command(settings=make_settings(**counting, exclude_self=exclude_self), **options)

    parameters = [parameter for name, parameter in own.parameters.items() if name != "settings"]
    with_settings.__signature__ = own.replace(parameters=[*parameters, *shared.values()])  # type: ignore[attr-defined]
    return with_settings


def check_output_path(option: str, path: Optional[str]) -> None:
    """A file a command will write, refused now (a usage error) rather than after counting."""
    try:
        if path is not None:
            outfile.check(path)
    except outfile.OutputPathError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{option}'") from None


PinDirOption = Annotated[str, typer.Option(help="Where the counter is pinned, on bpffs.")]
TopOption = Annotated[Optional[int], typer.Option(min=1, help="Show only the N most executed.")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="How to print the counts.")]  # type: ignore[valid-type]
DocumentFormatOption = Annotated[DocumentFormat, typer.Option("--format", "-f")]  # type: ignore[valid-type]


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
