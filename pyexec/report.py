"""The result of a counting run, and its renderings: table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .counter import ExecStats

if TYPE_CHECKING:  # rich costs 40 ms to import: only done when a table is drawn
    from rich.table import Table
    from rich.text import Text


@dataclass(frozen=True)
class Report:
    counts: dict[str, int]
    stats: ExecStats
    duration_s: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def ranked(self, top: int | None = None) -> list[tuple[str, int]]:
        """(path, count), most executed first, ties by path."""
        rows = sorted(self.counts.items(), key=lambda row: (-row[1], row[0]))
        return rows[:top] if top is not None else rows

    def to_json(self, top: int | None = None) -> str:
        # ensure_ascii keeps undecodable bytes as \udcXX escapes: json.loads
        # then os.fsencode gives back the exact path bytes.
        return json.dumps(
            {
                "counts": [{"path": path, "count": count} for path, count in self.ranked(top)],
                "total": self.total,
                "distinct": len(self.counts),
                "dropped": self.stats.dropped,
                "truncated": self.stats.truncated,
                "errors": self.stats.errors,
                "duration_s": round(self.duration_s, 3),
            },
            ensure_ascii=True,
        )

    def write_csv(self, out: BinaryIO, top: int | None = None) -> None:
        """count,path rows, quoted as needed; paths written as their exact bytes."""
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["count", "path"])
        writer.writerows((count, path) for path, count in self.ranked(top))
        out.write(os.fsencode(text.getvalue()))

    def table(self, top: int | None = None) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False)
        table.add_column("COUNT", justify="right", style="bold")
        table.add_column("PATH", overflow="fold")
        for path, count in self.ranked(top):
            table.add_row(str(count), Text(printable(path)))
        return table

    def summary(self) -> Text:
        """The footer: totals, and what was lost, in red when anything was."""
        from rich.text import Text

        text = Text(
            f"{self.total} executions of {len(self.counts)} binaries in {self.duration_s:.1f} s"
        )
        for name in ("dropped", "truncated", "errors"):
            value = getattr(self.stats, name)
            text.append(" · ")
            text.append(f"{name} {value}", style="bold red" if value else "")
        return text


def printable(path: str) -> str:
    """A path as a terminal can show it: undecodable bytes and control characters escaped."""
    shown = os.fsencode(path).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)

