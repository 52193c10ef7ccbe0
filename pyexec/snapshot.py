"""Saved results (pyexec run --save) and the differences between two of them."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, fields
from typing import Any

from . import outfile
from .errors import PyexecError
from .model import BREAKDOWNS, SHOWN, ExecLosses, shown_fields
from .report import Report, to_json, write_csv

FORMAT = "pyexec-snapshot"
VERSION = 1
# Read no further: a full map of 2^20 entries, every path escaped at its longest, stays below.
LARGEST = 1 << 30


class SnapshotError(PyexecError):
    """A file that is not a snapshot pyexec can read."""


# The fields a snapshot must have, and their JSON types. "stats" holds the losses
# (ExecLosses), under the name version 1 gave them.
_FIELDS: dict[str, Any] = {
    "counts": list, "stats": dict, "duration_s": (int, float), "by": list, "mode": str, "key": str,
    "started_at": (int, float), "filters": dict, "host": str,
}
_KIND_NAMES = {list: "a list", dict: "an object", str: "a string", (int, float): "a number"}
# The JSON types of a row's fields, and what each must be.
_ROW_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "count": ((int,), "a whole number"), **{name: (shown.types, shown.what) for name, shown in SHOWN.items()}}


def _bad_field(row: dict[str, Any], needed: tuple[str, ...]) -> str | None:
    """The first field of row that is missing or of the wrong type, with why."""
    for name in needed:
        if name not in row:
            return f"lacks {name!r}"
        kinds, what = _ROW_FIELDS[name]
        value = row[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return f"has {name!r} that is not {what}"
    outcomes = row.get("outcomes")
    if "outcomes" in row and not (isinstance(outcomes, dict) and all(
            isinstance(count, int) and not isinstance(count, bool) for count in outcomes.values())):
        return "has 'outcomes' that is not an object of counts"
    return None


def save(report: Report, path: str) -> None:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "kernel": os.uname().release,
        "started_at": report.started_at,
        "stats": asdict(report.losses),
        **report.document(),
    }
    outfile.write(path, (to_json(document) + "\n").encode())


def load(path: str) -> tuple[Report, dict[str, Any]]:
    """The report saved at path, and its metadata (host, kernel, start, end)."""
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer before it is refused.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as snapshot:
            if not stat.S_ISREG(os.fstat(snapshot.fileno()).st_mode):
                raise SnapshotError(f"{path} is not a regular file: give a snapshot saved with pyexec run --save")
            data = snapshot.read(LARGEST + 1)
        if len(data) > LARGEST:
            raise SnapshotError(f"{path} is over {LARGEST >> 20} MiB: too large to be a pyexec snapshot")
        document = json.loads(data)
    except OSError as error:
        raise SnapshotError(f"cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise SnapshotError(f"{path} is not a pyexec snapshot (not JSON, or cut short)") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a pyexec snapshot (save one with pyexec run --save)")
    if document.get("version") != VERSION:
        raise SnapshotError(
            f"{path} is a snapshot of version {document.get('version')!r}; this pyexec reads version {VERSION}"
        )
    for field, kind in _FIELDS.items():
        if not isinstance(document.get(field), kind) or isinstance(document.get(field), bool):
            raise SnapshotError(f"{path} is a damaged pyexec snapshot: {field!r} is missing or not {_KIND_NAMES[kind]}")
    stats, by = document["stats"], tuple(document["by"])
    for name in fields(ExecLosses):
        if not isinstance(stats.get(name.name, name.default), int):
            raise SnapshotError(f"{path} is a damaged pyexec snapshot: 'stats' lacks the count {name.name!r}")
    if not all(name in BREAKDOWNS for name in by):
        raise SnapshotError(f"{path} is a damaged pyexec snapshot: 'by' names a field other than {', '.join(BREAKDOWNS)}")
    needed = ("count", *shown_fields(by))
    for number, row in enumerate(document["counts"], start=1):
        problem = _bad_field(row, needed) if isinstance(row, dict) else "is not an object"
        if problem:
            raise SnapshotError(f"{path} is a damaged pyexec snapshot: count {number} {problem}")
    report = Report(
        rows=document["counts"],
        losses=ExecLosses(**{name.name: stats.get(name.name, name.default) for name in fields(ExecLosses)}),
        duration_s=float(document["duration_s"]),
        by=by,
        mode=document["mode"],
        key=document["key"],
        started_at=float(document["started_at"]),
        filters=document["filters"],
        host=document["host"],
    )
    metadata = {name: document.get(name) for name in ("host", "kernel", "start", "end")}
    return report, metadata


@dataclass(frozen=True)
class Diff:
    """What changed from one snapshot to another: new, gone and changed keys."""

    old: Report
    new: Report
    old_meta: dict[str, Any]
    new_meta: dict[str, Any]

    def __post_init__(self) -> None:
        if (self.old.by, self.old.mode, self.old.key) != (self.new.by, self.new.mode, self.new.key):
            raise SnapshotError(
                "the snapshots count different things (key, mode or breakdown): "
                "compare snapshots saved with the same options"
            )

    def warnings(self) -> list[str]:
        """Why the two may not compare, though they count the same thing."""
        found = []
        if self.old.host != self.new.host:
            found.append(f"the snapshots are of different hosts ({self.old.host!r}, then {self.new.host!r})")
        if self.old.filters != self.new.filters:
            changed = [name for name in {**self.old.filters, **self.new.filters}
                       if self.old.filters.get(name) != self.new.filters.get(name)]
            found.append(f"the snapshots were taken with different filters ({', '.join(changed)}): a key that "
                         "one of them left out shows as new or gone")
        return found

    def changes(self) -> list[dict[str, Any]]:
        """One row per key whose count changed: new keys, biggest increases, then gone keys."""
        old = {self.old.identity(row): row["count"] for row in self.old.rows}
        new = {self.new.identity(row): row for row in self.new.rows}
        rows = []
        for identity, row in new.items():
            before = old.get(identity)
            if before == row["count"]:
                continue
            change = "new" if before is None else ("up" if row["count"] > before else "down")
            rows.append(self._row(change, before or 0, row))
        for row in self.old.rows:
            if self.old.identity(row) not in new:
                rows.append(self._row("gone", row["count"], {**row, "count": 0}))
        order = {"new": 0, "up": 1, "down": 1, "gone": 2}
        return sorted(rows, key=lambda row: (order[row["change"]], -abs(row["delta"]), str(row.get("path"))))

    def _row(self, change: str, old: int, row: dict[str, Any]) -> dict[str, Any]:
        fields = {name: row[name] for name in self.new.fields if name != "outcomes"}
        return {"change": change, "old": old, "new": row["count"], "delta": row["count"] - old, **fields}

    def columns(self, table: bool = False) -> list[str]:
        fields = [name for name in self.new.middle_fields(table) if name != "outcomes"]
        return ["change", "old", "new", "delta", *fields, *(["path"] if "path" in self.new.by else [])]

    def document(self, top: int | None = None) -> dict[str, Any]:
        return {"old": {**self.old_meta, **self.old.settings()}, "new": {**self.new_meta, **self.new.settings()},
                "warnings": self.warnings(), "changes": self.changes()[:top]}

    def write_csv(self, out, top: int | None = None) -> None:
        columns = self.columns()
        write_csv(out, [columns, *([row[name] for name in columns] for row in self.changes()[:top])])

    def table(self, top: int | None = None):
        from rich.table import Table

        from .report import data

        table = Table(box=None, pad_edge=False)
        for name in self.columns(table=True):
            table.add_column(name.upper(), justify="right" if name in ("old", "new", "delta") or (name in SHOWN and SHOWN[name].numeric)
                             else "left")
        styles = {"new": "green", "up": "green", "down": "yellow", "gone": "red"}
        for row in self.changes()[:top]:
            cells = [data(row[name]) for name in self.columns(table=True)]
            cells[0].stylize(styles[row["change"]])
            table.add_row(*cells)
        return table
