"""Report renderings, on made-up counts (no kernel needed)."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import pickle
import subprocess
import sys
import time

import pytest

from pyexec import ExecLosses, ExecRecord
from pyexec.report import printable, to_json

from .conftest import report_of

ODD = os.fsdecode(b'/opt/a,b "c"\nd\xff')
REPORT = report_of({"/usr/bin/ls": 3, ODD: 3, "/usr/bin/cat": 9}, ExecLosses(dropped=1, truncated=2, errors=0),
                   duration_s=1.23456)


def test_ranked_is_most_executed_first_then_by_path() -> None:
    ranked = [(row["path"], row["count"]) for row in REPORT.ranked()]
    assert ranked == [("/usr/bin/cat", 9), (ODD, 3), ("/usr/bin/ls", 3)]
    assert REPORT.ranked(top=1) == [{"path": "/usr/bin/cat", "truncated": False, "count": 9}]


def test_json_schema_and_totals() -> None:
    document = json.loads(to_json(REPORT.document(top=2)))
    assert document == {
        "host": "",
        "key": "resolved",
        "mode": "exec",
        "by": ["path"],
        "filters": {},
        "start": "1970-01-01T00:00:00.000+00:00",
        "end": "1970-01-01T00:00:01.234+00:00",
        "counts": [{"path": "/usr/bin/cat", "truncated": False, "count": 9},
                   {"path": ODD, "truncated": False, "count": 3}],
        "total": 15,
        "distinct": 3,
        "dropped": 1,
        "truncated": 2,
        "errors": 0,
        "missed": 0,
        "collisions": 0,
        "duration_s": 1.235,
    }


def test_csv_round_trips_the_exact_path_bytes() -> None:
    out = io.BytesIO()
    REPORT.write_csv(out)
    rows = list(csv.reader(io.StringIO(os.fsdecode(out.getvalue()), newline="")))
    assert rows == [["count", "truncated", "path"], ["9", "false", "/usr/bin/cat"], ["3", "false", ODD],
                    ["3", "false", "/usr/bin/ls"]]
    assert os.fsencode(rows[2][2]) == b'/opt/a,b "c"\nd\xff'


def test_csv_round_trips_every_byte_a_path_may_hold() -> None:
    paths = [os.fsdecode(b"/x/" + bytes([byte]) + b"y") for byte in range(1, 256) if byte != ord("/")]
    paths += [os.fsdecode(b"/x/a\rb"), os.fsdecode(b"/x/a\r\nb"), os.fsdecode(b'/x/"\r')]
    out = io.BytesIO()
    report_of(paths).write_csv(out)
    rows = list(csv.reader(io.StringIO(os.fsdecode(out.getvalue()), newline="")))
    assert rows[0] == ["count", "truncated", "path"]
    assert sorted(row[2] for row in rows[1:]) == sorted(paths)


def test_printable_escapes_control_characters_and_undecodable_bytes() -> None:
    assert printable(ODD) == '/opt/a,b "c"\\nd\\xff'
    assert printable("/usr/bin/[ls]") == "/usr/bin/[ls]"


def test_summary_names_every_kind_of_loss() -> None:
    assert REPORT.summary().plain == (
        "15 executions of 3 binaries in 1.2 s · dropped 1 · truncated 2 · errors 0 · missed 0 · collisions 0"
    )


def test_summary_says_one_in_the_singular() -> None:
    one = report_of(["/usr/bin/ls"], duration_s=2.0)
    assert one.summary().plain.startswith("1 execution of 1 binary in 2.0 s ·")


def test_a_record_reads_as_its_fields_and_stays_as_made() -> None:
    record = ExecRecord(3, {"path": "/bin/true", "uid": 0}, truncated=True)
    assert (record.count, record.path, record.uid, record.comm, record.outcome, record.truncated) == (
        3, "/bin/true", 0, None, 0, True)
    assert ExecRecord.rows([(3, {"path": "/bin/true", "uid": 0}, 0, True)]) == [record]
    assert pickle.loads(pickle.dumps(record)) == record and copy.copy(record) == record
    assert repr(record) == "ExecRecord(count=3, values={'path': '/bin/true', 'uid': 0}, outcome=0, truncated=True)"
    with pytest.raises(AttributeError):
        record.count = 4  # type: ignore[misc]
    with pytest.raises(AttributeError):
        record.nonesuch  # noqa: B018


def test_losses_subtract_field_by_field() -> None:
    assert ExecLosses(dropped=5, truncated=3, errors=1) - ExecLosses(2, 3, 0) == ExecLosses(3, 0, 1)


def test_a_table_of_100k_rows_prints_in_about_the_time_json_does(tmp_path) -> None:
    from pyexec.cli.options import OutputFormat
    from pyexec.cli.output import Output, render

    report = report_of({f"/usr/lib/some/dir/binary{i}": i % 97 + 1 for i in range(100_000)})
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


def test_no_two_names_are_shown_alike_in_a_table() -> None:
    # A newline and a backslash-n; the byte 0xff and the four characters \xff; a tab and \t.
    names = ["/tmp/a\nb", "/tmp/a\\nb", os.fsdecode(b"/tmp/\xff"), "/tmp/\\xff", "/tmp/\t", "/tmp/\\t", "/tmp/\\"]
    shown = [printable(name) for name in names]
    assert len(set(shown)) == len(names), shown
    assert all(text.isprintable() for text in shown)
    table = report_of(names).table().plain
    assert all(text in table for text in shown)


def test_report_snapshot_and_diff_need_no_compiled_extension(tmp_path) -> None:
    # A finder that refuses the extension: importing it raises.
    script = '''
import sys

class NoExtension:
    def find_spec(self, name, path=None, target=None):
        if name == "pyexec._shim":
            raise ImportError("the compiled extension is out of reach in this test")

sys.meta_path.insert(0, NoExtension())
from pyexec.model import NO_LOSSES
from pyexec.report import Report
from pyexec.settings import Settings
from pyexec.snapshot import save

before, after = sys.argv[1:3]
save(Report([{"path": "/usr/bin/ls", "truncated": False, "count": 2}], NO_LOSSES, 1.0), before)
save(Report([{"path": "/usr/bin/ls", "truncated": False, "count": 5}], NO_LOSSES, 1.0), after)
assert Settings(by=("uid", "path")).by == ("path", "uid")
from pyexec.cli import main

main(["diff", before, after, "--format", "json"])
'''
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.json"), str(tmp_path / "b.json")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    (change,) = json.loads(result.stdout)["changes"]
    assert (change["path"], change["old"], change["new"]) == ("/usr/bin/ls", 2, 5)
    assert "pyexec._shim" not in result.stderr
