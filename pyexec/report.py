"""The result of a counting run, and its renderings: table, JSON and CSV."""

from __future__ import annotations

import csv
import datetime
import errno
import io
import json
import operator
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO

from .model import BREAKDOWNS, NO_LOSSES, SHOWN, ExecLosses, ExecRecord, shown_fields

if TYPE_CHECKING:  # rich costs 40 ms to import: only done when a table is drawn
    from rich.text import Text

    from .counter import ExecCounter


def outcome_name(outcome: int) -> str:
    return "ok" if outcome == 0 else errno.errorcode.get(outcome, str(outcome))


def rows_from_records(
    records: list[ExecRecord], by: tuple[str, ...], mode: str = "exec"
) -> list[dict[str, Any]]:
    """One row per combination of the fields of `by` (with names resolved) and its
    count; in attempts mode, the count of each outcome too."""
    shows = [(tuple(shown.name for shown in BREAKDOWNS[name].shown), BREAKDOWNS[name].show) for name in by]
    rows: dict[tuple, dict[str, Any]] = {}
    for record in records:
        fields = tuple(map(record.values.get, by))
        row = rows.get(fields)
        if row is not None:  # the same fields with another outcome
            row["count"] += record.count
            outcome = outcome_name(record.outcome)
            row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + record.count
            continue
        row = rows[fields] = {}
        for (names, show), value in zip(shows, fields):
            row.update(zip(names, show(value, record)))
        row["count"] = record.count
        if mode == "attempts":
            row["outcomes"] = {outcome_name(record.outcome): record.count}
    return list(rows.values())


@dataclass(frozen=True)
class Report:
    rows: list[dict[str, Any]]  # each with "count" and the fields of `by`
    losses: ExecLosses
    duration_s: float
    by: tuple[str, ...] = ("path",)
    mode: str = "exec"
    key: str = "resolved"
    started_at: float = 0.0  # wall clock, seconds since the epoch
    filters: dict[str, Any] = field(default_factory=dict)  # Settings.filters()
    host: str = ""
    fields: tuple[str, ...] = field(init=False)

    @classmethod
    def of(cls, counter: ExecCounter) -> Report:
        """What a started counter has counted so far."""
        records, losses, settings = counter.records(), counter.losses(), counter.settings
        return cls(
            rows_from_records(records, settings.by, settings.mode),
            losses,
            time.time() - counter.started_at,
            settings.by,
            settings.mode,
            settings.key,
            counter.started_at,
            settings.filters(),
            socket.gethostname(),
        )

    @classmethod
    def empty(cls, counter: ExecCounter) -> Report:
        """Nothing yet: where a counter starts."""
        settings = counter.settings
        return cls([], NO_LOSSES, 0.0, settings.by, settings.mode, settings.key, counter.started_at,
                   settings.filters(), socket.gethostname())

    def __post_init__(self) -> None:
        fields = list(shown_fields(self.by))
        if self.mode == "attempts":
            fields.append("outcomes")
        object.__setattr__(self, "fields", tuple(fields))

    @property
    def total(self) -> int:
        return sum(row["count"] for row in self.rows)

    @property
    def ended_at(self) -> float:
        return self.started_at + self.duration_s

    def identity(self, row: dict[str, Any]) -> tuple:
        """What tells one row from another: its fields, not its counts."""
        return tuple(row[name] for name in self.fields if name != "outcomes")

    def since(self, earlier: Report) -> Report:
        """What was counted between `earlier` (of the same counter) and this report.
        Deltas of cumulative counts: the kernel's counters are never reset."""
        before = {self.identity(row): row for row in earlier.rows}
        rows = []
        for row in self.rows:
            old = before.get(self.identity(row), {"count": 0, "outcomes": {}})
            if row["count"] == old["count"]:
                continue
            delta = {**row, "count": row["count"] - old["count"]}
            if "outcomes" in row:
                delta["outcomes"] = {
                    name: count - old["outcomes"].get(name, 0)
                    for name, count in row["outcomes"].items()
                    if count != old["outcomes"].get(name, 0)
                }
            rows.append(delta)
        return replace(
            self,
            rows=rows,
            losses=self.losses - earlier.losses,
            duration_s=self.ended_at - earlier.ended_at,
            started_at=earlier.ended_at,
        )

    def settings(self) -> dict[str, Any]:
        """What was counted, where and how: what tells whether two results compare."""
        return {"host": self.host, "key": self.key, "mode": self.mode, "by": list(self.by), "filters": self.filters}

    def document(self, top: int | None = None) -> dict[str, Any]:
        """The JSON document: what was counted and when, the counts (most executed
        first), and the totals."""
        return {
            **self.settings(),
            **self.span(),
            "counts": self.ranked(top),
            "total": self.total,
            "distinct": len(self.rows),
            **asdict(self.losses),
            "duration_s": round(self.duration_s, 3),
        }

    def span(self) -> dict[str, str]:
        return {"start": timestamp(self.started_at), "end": timestamp(self.ended_at)}

    def interval_document(self, index: int, top: int | None = None) -> dict[str, Any]:
        """The JSON document of a run's index-th interval, numbered from 1."""
        return {"interval": {"index": index, **self.span()}, **self.document(top)}

    def ranked(self, top: int | None = None) -> list[dict[str, Any]]:
        """Most executed first; ties in the order of their fields."""
        get = operator.itemgetter(*self.fields)
        fields = get if len(self.fields) > 1 else lambda row: (get(row),)
        rows = sorted(self.rows, key=lambda row: (-row["count"], *map(str, fields(row))))
        return rows[:top] if top is not None else rows

    def middle_fields(self, table: bool) -> list[str]:
        """The fields shown between the counts and the path (long, so last). A
        table shows a cut path by its CUT mark alone, not a truncated column."""
        return [name for name in self.fields if name != "path" and not (table and name == "truncated")]

    def _columns(self, table: bool = False) -> list[str]:
        return ["count", *self.middle_fields(table), *(("path",) if "path" in self.by else ())]

    def write_csv(self, out: BinaryIO, top: int | None = None, interval: str | None = None) -> None:
        """Rows quoted as needed; paths written as their exact bytes. With
        `interval`, a first column names the interval and no header is written."""
        columns = self._columns()
        rows = [[row[name] for name in columns] for row in self.ranked(top)]
        if interval is None:
            write_csv(out, [columns, *rows])
        else:
            write_csv(out, [[interval, *row] for row in rows])

    def csv_header(self, interval: bool = False) -> list[str]:
        return (["interval"] if interval else []) + self._columns()

    def table(self, top: int | None = None) -> Text:
        """The counts in aligned columns, count first and the path last. Built as one
        Text rather than a rich Table: 100k rows print in a second, not twenty."""
        from rich.cells import cell_len
        from rich.text import Text

        columns = self._columns(table=True)
        rows = [[name.upper() for name in columns]]
        rows += [[printable(cell_text(row[name]) or "-") for name in columns] for row in self.ranked(top)]
        def width(cell: str) -> int:
            return len(cell) if cell.isascii() else cell_len(cell)  # the same, and quicker

        widths = [max(width(row[at]) for row in rows) for at in range(len(columns))]
        right = [name == "count" or (name in SHOWN and SHOWN[name].numeric) for name in columns]

        def line(cells: list[str]) -> str:
            padded = (" " * (room - width(cell)) + cell if flush_right else cell + " " * (room - width(cell))
                      for cell, room, flush_right in zip(cells, widths, right))
            return "  ".join(padded).rstrip()

        table = Text("\n".join(line(cells) for cells in rows))
        table.stylize("bold", 0, len(line(rows[0])))
        return table

    def total_text(self) -> str:
        """'15 executions', or in attempts mode '1 exec call'."""
        if self.mode == "attempts":
            return quantity(self.total, "exec call", "exec calls")
        return quantity(self.total, "execution", "executions")

    def rows_text(self) -> str:
        """'3 binaries' when counting by path alone, else '3 keys'."""
        if self.by == ("path",):
            return quantity(len(self.rows), "binary", "binaries")
        return quantity(len(self.rows), "key", "keys")

    def summary(self) -> Text:
        """The footer: totals, and what was lost, in red when anything was."""
        from rich.text import Text

        text = Text(f"{self.total_text()} of {self.rows_text()} in {self.duration_s:.1f} s")
        text.append_text(self.losses_text())
        return text

    def losses_text(self) -> Text:
        """' · dropped 0 · truncated 0 · errors 0', each in red when it is not 0."""
        from rich.text import Text

        text = Text()
        for name, value in asdict(self.losses).items():
            text.append(" · ")
            text.append(f"{name} {value}", style="bold red" if value else "")
        return text


def quantity(number: int, one: str, many: str) -> str:
    """'1 binary', '2 binaries'."""
    return f"{number} {one if number == 1 else many}"


def timestamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="milliseconds")


def to_json(document: Any) -> str:
    # ensure_ascii keeps undecodable bytes as \udcXX escapes: json.loads then
    # os.fsencode gives back the exact path bytes.
    return json.dumps(document, ensure_ascii=True)


# What makes a spreadsheet read a cell as a formula, and the quote that starts a
# cell which had one of them (or a quote) first: a spreadsheet then shows it as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: numbers as they are, text that a spreadsheet would
    run as a formula with a quote before it (one-to-one: a cell that starts with
    a quote had one added)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = cell_text(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(out: BinaryIO, rows: list[list[Any]]) -> None:
    """Rows quoted as needed (each value as csv_cell writes it), text written back
    to the exact bytes it came from."""
    rows = [[csv_cell(cell) for cell in row] for row in rows]
    text = io.StringIO(newline="")
    minimal = csv.writer(text, lineterminator="\n")
    # csv quotes a field for the line terminator's characters only: a lone \r would split the row.
    quoted = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if any("\r" in str(cell) for cell in row) else minimal).writerow(row)
    out.write(text.getvalue().encode("utf-8", "surrogateescape"))  # as os.fsencode, in any locale


def cell_text(value: Any) -> str:
    """A value as a table or CSV cell shows it."""
    if isinstance(value, dict):  # outcomes: "ok=3;ENOENT=2", most frequent first
        return ";".join(f"{name}={count}" for name, count in sorted(value.items(), key=lambda item: -item[1]))
    if isinstance(value, bool):  # as JSON writes it
        return "true" if value else "false"
    return "" if value is None else str(value)


def data(value: Any) -> Text:
    """A value as a rich cell shows it: plain text, never markup, with control
    characters and undecodable bytes escaped; "-" when empty."""
    from rich.text import Text

    return Text(printable(cell_text(value) or "-"))


def printable(text: str) -> str:
    """Text as a terminal can show it: undecodable bytes and control characters
    escaped, and every backslash doubled, so that no two texts look alike (a
    newline shows as \\n, a backslash and an n as \\\\n; the byte 0xff as
    \\xff, those four characters as \\\\xff)."""
    if text.isprintable() and "\\" not in text and text.isascii():  # nearly always: one C call or two
        return text
    # As os.fsencode under UTF-8; under an ASCII locale that could not encode a snapshot's UTF-8 text.
    shown = text.replace("\\", "\\\\").encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
