"""Report renderings, on made-up counts (no kernel needed)."""

from __future__ import annotations

import csv
import io
import json
import os
import time

from pyexec import ExecStats
from pyexec.report import Report, printable, to_json

ODD = os.fsdecode(b'/opt/a,b "c"\nd\xff')
REPORT = Report(
    rows=[{"path": path, "count": count} for path, count in {"/usr/bin/ls": 3, ODD: 3, "/usr/bin/cat": 9}.items()],
    stats=ExecStats(dropped=1, truncated=2, errors=0),
    duration_s=1.23456,
)


def test_ranked_is_most_executed_first_then_by_path() -> None:
    ranked = [(row["path"], row["count"]) for row in REPORT.ranked()]
    assert ranked == [("/usr/bin/cat", 9), (ODD, 3), ("/usr/bin/ls", 3)]
    assert REPORT.ranked(top=1) == [{"path": "/usr/bin/cat", "count": 9}]


def test_json_schema_and_totals() -> None:
    document = json.loads(to_json(REPORT.document(top=2)))
    assert document == {
        "counts": [{"path": "/usr/bin/cat", "count": 9}, {"path": ODD, "count": 3}],
        "total": 15,
        "distinct": 3,
        "dropped": 1,
        "truncated": 2,
        "errors": 0,
        "duration_s": 1.235,
    }


def test_csv_round_trips_the_exact_path_bytes() -> None:
    out = io.BytesIO()
    REPORT.write_csv(out)
    rows = list(csv.reader(io.StringIO(os.fsdecode(out.getvalue()), newline="")))
    assert rows == [["count", "path"], ["9", "/usr/bin/cat"], ["3", ODD], ["3", "/usr/bin/ls"]]
    assert os.fsencode(rows[2][1]) == b'/opt/a,b "c"\nd\xff'


def test_csv_round_trips_every_byte_a_path_may_hold() -> None:
    paths = [os.fsdecode(b"/x/" + bytes([byte]) + b"y") for byte in range(1, 256) if byte != ord("/")]
    paths += [os.fsdecode(b"/x/a\rb"), os.fsdecode(b"/x/a\r\nb"), os.fsdecode(b'/x/"\r')]
    report = Report(rows=[{"path": path, "count": 1} for path in paths], stats=ExecStats(0, 0, 0), duration_s=1.0)
    out = io.BytesIO()
    report.write_csv(out)
    rows = list(csv.reader(io.StringIO(os.fsdecode(out.getvalue()), newline="")))
    assert rows[0] == ["count", "path"]
    assert sorted(row[1] for row in rows[1:]) == sorted(paths)


def test_printable_escapes_control_characters_and_undecodable_bytes() -> None:
    assert printable(ODD) == '/opt/a,b "c"\\nd\\xff'
    assert printable("/usr/bin/[ls]") == "/usr/bin/[ls]"


def test_summary_names_every_kind_of_loss() -> None:
    assert REPORT.summary().plain == (
        "15 executions of 3 binaries in 1.2 s · dropped 1 · truncated 2 · errors 0"
    )


def test_summary_says_one_in_the_singular() -> None:
    one = Report(rows=[{"path": "/usr/bin/ls", "count": 1}], stats=ExecStats(0, 0, 0), duration_s=2.0)
    assert one.summary().plain.startswith("1 execution of 1 binary in 2.0 s ·")


def test_stats_subtract_field_by_field() -> None:
    assert ExecStats(dropped=5, truncated=3, errors=1) - ExecStats(2, 3, 0) == ExecStats(3, 0, 1)


def test_a_table_of_100k_rows_prints_in_about_the_time_json_does(tmp_path) -> None:
    from pyexec.cli import Output, OutputFormat, render

    rows = [{"path": f"/usr/lib/some/dir/binary{i}", "count": i % 97 + 1} for i in range(100_000)]
    report = Report(rows=rows, stats=ExecStats(0, 0, 0), duration_s=1.0)
    seconds = {}
    for output_format in (OutputFormat.json, OutputFormat.table):
        out = Output(str(tmp_path / output_format.value))
        started = time.perf_counter()
        render(report, output_format, out, None, [])
        out.close()
        seconds[output_format.value] = time.perf_counter() - started
    # A rich Table took some 60 times as long as JSON here; the bound leaves room for a noisy machine.
    assert seconds["table"] < 4 * seconds["json"] + 0.5, seconds
    lines = (tmp_path / "table").read_text().splitlines()
    assert len(lines) == 100_002 and lines[1] == "   97  /usr/lib/some/dir/binary10087"
