"""The Typer application every command of pyexec's is registered on."""

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_PERMISSION, EXIT_OK, EXIT_UNSUPPORTED, EXIT_USAGE

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
