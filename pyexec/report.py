"""The result of a counting run, and its renderings: table, JSON and CSV."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from .counter import ExecRecord, ExecStats
from .names import CgroupNames, container, user_name

if TYPE_CHECKING:  # rich costs 40 ms to import: only done when a table is drawn
    from rich.table import Table
    from rich.text import Text

# The fields each breakdown shows: its value, and what people read for it.
FIELDS = {
    "path": ("path",),
    "uid": ("uid", "user"),
    "comm": ("comm",),
    "parent": ("parent",),
    "cgroup": ("cgroup", "container"),
}


def outcome_name(outcome: int) -> str:
    return "ok" if outcome == 0 else errno.errorcode.get(outcome, str(outcome))


def rows_from_records(
    records: list[ExecRecord], by: tuple[str, ...], mode: str = "exec"
) -> list[dict[str, Any]]:
    """One row per combination of the fields of `by` (with names resolved) and its
    count; in attempts mode, the count of each outcome too."""
    cgroups = CgroupNames() if "cgroup" in by else None
    rows: dict[tuple, dict[str, Any]] = {}
    for record in records:
        fields = tuple(getattr(record, name) for name in by)
        if fields in rows:  # the same fields with another outcome
            row = rows[fields]
            row["count"] += record.count
            outcome = outcome_name(record.outcome)
            row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + record.count
            continue
        row = rows[fields] = {}
        if "path" in by:
            row["path"] = record.path
        if "uid" in by:
            row["uid"], row["user"] = record.uid, user_name(record.uid)
        if "comm" in by:
            row["comm"] = record.comm
        if "parent" in by:
            row["parent"] = record.parent
        if cgroups is not None:
            path = cgroups.path(record.cgroup)
            row["cgroup"] = path if path is not None else str(record.cgroup)
            row["container"] = container(path)
        row["count"] = record.count
        if mode == "attempts":
            row["outcomes"] = {outcome_name(record.outcome): record.count}
    return list(rows.values())


@dataclass(frozen=True)
class Report:
    rows: list[dict[str, Any]]  # each with "count" and the fields of `by`
    stats: ExecStats
    duration_s: float
    by: tuple[str, ...] = ("path",)
    mode: str = "exec"
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        fields = [name for breakdown in self.by for name in FIELDS[breakdown]]
        if self.mode == "attempts":
            fields.append("outcomes")
        object.__setattr__(self, "fields", tuple(fields))

    @property
    def total(self) -> int:
        return sum(row["count"] for row in self.rows)

    def ranked(self, top: int | None = None) -> list[dict[str, Any]]:
        """Most executed first; ties in the order of their fields."""
        rows = sorted(
            self.rows, key=lambda row: (-row["count"], [str(row[name]) for name in self.fields])
        )
        return rows[:top] if top is not None else rows

    def to_json(self, top: int | None = None) -> str:
        # ensure_ascii keeps undecodable bytes as \udcXX escapes: json.loads
        # then os.fsencode gives back the exact path bytes.
        return json.dumps(
            {
                "counts": self.ranked(top),
                "total": self.total,
                "distinct": len(self.rows),
                "dropped": self.stats.dropped,
                "truncated": self.stats.truncated,
                "errors": self.stats.errors,
                "duration_s": round(self.duration_s, 3),
            },
            ensure_ascii=True,
        )

    def _columns(self) -> list[str]:
        """count first, the path (long) last."""
        return ["count", *(name for name in self.fields if name != "path"), *(("path",) if "path" in self.by else ())]

    def write_csv(self, out: BinaryIO, top: int | None = None) -> None:
        """Rows quoted as needed; paths written as their exact bytes."""
        columns = self._columns()
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(row[name]) for name in columns] for row in self.ranked(top))
        out.write(os.fsencode(text.getvalue()))

    def table(self, top: int | None = None) -> Table:
        from rich.table import Table
        from rich.text import Text

        columns = self._columns()
        table = Table(box=None, pad_edge=False)
        for name in columns:
            table.add_column(name.upper(), justify="right" if name in ("count", "uid") else "left",
                             style="bold" if name == "count" else None,
                             overflow="fold" if name == "path" else "ellipsis")
        for row in self.ranked(top):
            table.add_row(*(Text(printable(_text(row[name]) or "-")) for name in columns))
        return table

    def summary(self) -> Text:
        """The footer: totals, and what was lost, in red when anything was."""
        from rich.text import Text

        what = "binaries" if self.by == ("path",) else "keys"
        counted = "exec calls" if self.mode == "attempts" else "executions"
        text = Text(f"{self.total} {counted} of {len(self.rows)} {what} in {self.duration_s:.1f} s")
        for name in ("dropped", "truncated", "errors"):
            value = getattr(self.stats, name)
            text.append(" · ")
            text.append(f"{name} {value}", style="bold red" if value else "")
        return text


def _text(value: Any) -> str:
    if isinstance(value, dict):  # outcomes: "ok=3;ENOENT=2", most frequent first
        return ";".join(f"{name}={count}" for name, count in sorted(value.items(), key=lambda item: -item[1]))
    return "" if value is None else str(value)


def printable(text: str) -> str:
    """Text as a terminal can show it: undecodable bytes and control characters escaped."""
    shown = os.fsencode(text).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
