"""The commands that look at pyexec and this host: maps, doctor, debug-log, version."""

import os
import sys

import typer

from .. import __version__
from .app import app, say
from .options import DocumentFormat, DocumentFormatOption, stop_requests
from .output import Output


@app.command(epilog="Example: sudo pyexec maps --format json")
def maps(output_format: DocumentFormatOption = DocumentFormat.table) -> None:
    """List the BPF maps of the pyexec programs loaded on this host, with how full they are."""
    from ..maps import list_maps, table

    found = list_maps()
    if output_format is DocumentFormat.json:
        Output(None).document([{**vars(info), "fill": info.fill} for info in found])
        return
    if not found:
        say("no pyexec counter is loaded (start one with pyexec run)")
        return
    Output(None).console().print(table(found))


@app.command(epilog="Example: sudo pyexec doctor --format json")
def doctor(output_format: DocumentFormatOption = DocumentFormat.table) -> None:
    """Check that pyexec can run here, and say how to fix what stops it."""
    from ..doctor import checks, exit_code, table

    results = checks()
    code = exit_code(results)
    if output_format is DocumentFormat.json:
        Output(None).document({"ok": code == 0, "exit_code": code, "checks": [vars(check) for check in results]})
    else:
        Output(None).console().print(table(results))
    raise typer.Exit(code)


@app.command("debug-log", epilog="Example: sudo pyexec debug-log (beside sudo pyexec run --debug)")
def debug_log() -> None:
    """Print what pyexec run --debug writes (the kernel's trace pipe), until Ctrl-C."""
    from ..system import ensure_tracefs

    path = f"{ensure_tracefs()}/trace_pipe"
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
    from ..program import libbpf_version

    print(f"pyexec {__version__}")
    print(f"libbpf {libbpf_version().lstrip('v')}")
    print(f"kernel {os.uname().release}")
