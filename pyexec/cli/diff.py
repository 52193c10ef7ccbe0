"""pyexec diff: what changed between two saved snapshots. It needs no BPF, nor
the compiled extension."""

from typing import Annotated, Optional

import typer

from .app import app, say
from .options import OutputFormat
from .output import Output


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
    from ..snapshot import Diff, SnapshotError, load

    try:
        (old_report, old_meta), (new_report, new_meta) = load(old), load(new)
        difference = Diff(old_report, new_report, old_meta, new_meta)
    except SnapshotError as error:
        raise typer.BadParameter(str(error)) from None
    for warning in difference.warnings():
        say(f"warning: {warning}")
    out = Output(None)
    if output_format in (OutputFormat.json, OutputFormat.ndjson):
        out.document(difference.document(top))
    elif output_format is OutputFormat.csv:
        difference.write_csv(out.stream, top)
    else:
        out.console().print(difference.table(top))
