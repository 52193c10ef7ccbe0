"""Where results go and how each output is rendered: one renderer per format
(table, JSON, CSV, NDJSON), for a whole run and for its intervals."""

import io
import sys
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Optional, cast

from .. import outfile
from ..errors import PyexecError
from .options import OutputFormat

if TYPE_CHECKING:
    from rich.text import Text

    from ..report import Report

stdout_closed = False  # set by main: results cannot go to stdout


class StatusLine:
    """Executions so far on stderr, rewritten in place; only on a terminal."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def show(self, report: "Report") -> None:
        if self.shown:
            sys.stderr.write(
                f"\r\x1b[K{report.duration_s:.0f} s · {report.total_text()} · "
                f"{report.rows_text()} · dropped {report.losses.dropped}"
            )
            sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


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

    def __init__(self, path: Optional[str]) -> None:
        self.path = None if path == outfile.STDOUT else path
        if self.path is None and stdout_closed:
            raise PyexecError("standard output is closed: give --output FILE, or run with stdout open")
        self._kept = io.BytesIO()  # what goes to the file, when there is one
        self.stream: BinaryIO = self._kept if self.path else sys.stdout.buffer
        self._console: Any = None

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def console(self) -> Any:
        """A rich console onto the same place, made once (its text layer owns the stream)."""
        if self._console is None:
            from rich.console import Console

            terminal = self.path is None and sys.stdout.isatty()
            text = io.TextIOWrapper(self.stream, encoding="utf-8", write_through=True) if self.path else sys.stdout
            # In a pipe or a file, long paths stay on one line rather than fold at 80 columns,
            # and lines end without the padding that aligns a table's last column.
            self._console = Console(
                file=text if terminal else cast(IO[str], TrimmedLines(text)),
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

    def document(self, document: Any) -> None:
        """A JSON document, on a line of its own."""
        from ..report import to_json

        self.write((to_json(document) + "\n").encode())

    def close(self) -> None:
        if self.path:
            outfile.write(self.path, self._kept.getvalue())


def render(report: "Report", output_format: Any, out: Output, top: Optional[int],
           intervals: "list[Report]") -> None:
    """The final result, with the intervals for the formats that carry them whole."""
    from ..report import timestamp

    if output_format is OutputFormat.json:
        document = report.document(top)
        if intervals:
            document["intervals"] = [
                interval.interval_document(index, top) for index, interval in enumerate(intervals, start=1)
            ]
        out.document(document)
    elif output_format is OutputFormat.ndjson:
        out.document({"summary": report.span(), **report.document(top)})
    elif output_format is OutputFormat.csv:
        if intervals:
            from ..report import write_csv

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


def render_interval(index: int, interval: "Report", output_format: Any, out: Output, top: Optional[int]) -> None:
    """One interval, for the formats that stream them."""
    from ..report import timestamp

    if output_format is OutputFormat.ndjson:
        out.document(interval.interval_document(index, top))
    elif output_format is OutputFormat.table:
        console = out.console()
        console.print(f"── interval {index} · {timestamp(interval.started_at)} – {timestamp(interval.ended_at)}")
        console.print(interval.table(top))
        console.print(interval.summary())
