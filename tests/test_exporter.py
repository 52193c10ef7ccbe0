"""pyexec serve against the real kernel, scraped by a real Prometheus (Debian's
package, started here on loopback) and read back through its HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyexec.exporter import OTHER
from pyexec.report import printable

from .conftest import IN_CI, bpf, copy_true
from .test_cli import PYEXEC
from .test_pinned import pyexec
from .workload import exec_in_child, posix_spawn_many

pytestmark = bpf


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serving() -> Iterator:
    """A function: pyexec serve ARGS on a free loopback port, once it says it serves ->
    (its process, its URL). Whatever it started is killed afterwards."""
    processes = []

    def start(*args: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        process = subprocess.Popen([*PYEXEC, "serve", "--listen", f"127.0.0.1:{port}", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        line = process.stderr.readline()
        assert "serving" in line, line + process.stderr.read()
        return process, f"http://127.0.0.1:{port}/metrics"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def scraped(url: str) -> dict[tuple, float]:
    """{(name, labels...): value} of a scrape, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, *sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def stopped(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator:
    """Starts Prometheus on loopback scraping a target every second; yields a function
    (target URL) -> query function (PromQL) -> value."""
    binary = shutil.which("prometheus")
    if binary is None:
        if not IN_CI and os.geteuid() != 0:
            pytest.skip("needs Debian's prometheus package (make test installs it, as root)")
        pytest.fail("prometheus is not installed: make test installs it (apt-get install prometheus)")
    processes = []

    def start(target: str):
        parts = urllib.parse.urlsplit(target)
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "pyexec", "metrics_path": parts.path,
                                "static_configs": [{"targets": [parts.netloc]}]}],
        }))
        processes.append(subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
             f"--storage.tsdb.path={tmp_path / 'data'}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def query(promql: str, expected: float) -> float:
            """The value of promql once it is expected, or the last one after 60 s."""
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
            value, deadline = None, time.monotonic() + 60
            while value != expected and time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        result = json.load(response)["data"]["result"]
                    value = float(result[0]["value"][1]) if result else None
                except OSError:  # not up yet
                    continue
            return value

        return query

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def test_prometheus_scrapes_the_exact_count(workdir: Path, prometheus, serving) -> None:
    binary = copy_true(workdir / "true")
    serve, url = serving("--path-prefix", str(workdir))
    try:
        posix_spawn_many(binary, 7)
        query = prometheus(url)
        assert query(f'pyexec_executions_total{{path="{binary}"}}', 7.0) == 7.0
        assert query("pyexec_dropped_total", 0.0) == 0.0
    finally:
        stopped(serve)


def test_the_keys_beyond_max_series_are_summed_under_other(workdir: Path, prometheus, serving) -> None:
    binaries = [copy_true(workdir / f"true{i}") for i in range(1, 6)]
    serve, url = serving("--path-prefix", str(workdir), "--max-series", "3")
    try:
        for times, binary in enumerate(binaries, start=1):
            posix_spawn_many(binary, times)
        query = prometheus(url)
        assert query("sum(pyexec_executions_total)", 15.0) == 15.0
        assert query('pyexec_executions_total{path="__other__"}', 3.0) == 3.0  # 1 + 2: the two smallest
        assert query("count(pyexec_executions_total)", 4.0) == 4.0
    finally:
        stopped(serve)


def test_any_bytes_in_a_path_make_a_valid_label(workdir: Path, serving) -> None:
    binary = copy_true(os.fsencode(workdir) + b'/a"b\\c\nd\xff{e}')
    serve, url = serving("--path-prefix", str(workdir))
    try:
        posix_spawn_many(binary, 2)
        samples = scraped(url)
    finally:
        stopped(serve)
    assert samples[("pyexec_executions_total", ("path", printable(os.fsdecode(binary))))] == 2.0


def test_a_killed_exporter_loses_nothing_of_a_pinned_counter(workdir: Path, pin_dir: str, serving) -> None:
    binary = copy_true(workdir / "true")
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir), "--key", "invoked")
    try:
        first, url = serving("--pin-dir", pin_dir)
        posix_spawn_many(binary, 4)
        assert scraped(url)[("pyexec_executions_total", ("path", str(binary)))] == 4.0
        first.kill()
        first.wait()
        posix_spawn_many(binary, 3)  # while no exporter runs
        second, url = serving("--pin-dir", pin_dir)
        assert scraped(url)[("pyexec_executions_total", ("path", str(binary)))] == 7.0
        stopped(second)
    finally:
        pyexec("stop", "--pin-dir", pin_dir)


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:0", "127.0.0.1:99999", ":9435"])
def test_a_bad_listen_address_is_a_usage_error(listen: str) -> None:
    result = subprocess.run([*PYEXEC, "serve", "--listen", listen], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "'--listen'" in result.stderr


def test_breakdown_and_outcome_labels_and_other_keep_the_sums(workdir: Path) -> None:
    from pyexec import ExecCounter
    from pyexec.exporter import Exporter
    from prometheus_client.parser import text_string_to_metric_families

    binaries = [copy_true(workdir / f"true{i}") for i in range(3)]
    missing = workdir / "missing"
    with ExecCounter(mode="attempts", by=("path", "uid"), path_prefix=str(workdir)) as counter:
        for times, binary in enumerate(binaries, start=1):
            posix_spawn_many(binary, times)
        for _ in range(4):
            assert exec_in_child(lambda: os.execv(missing, [str(missing)])) != 0
        text = Exporter(counter, max_series=2).render().decode()
    samples = {tuple(sorted(sample.labels.items())): sample.value
               for family in text_string_to_metric_families(text) if family.name == "pyexec_executions"
               for sample in family.samples}
    assert samples[(("outcome", "ENOENT"), ("path", str(missing)), ("user", "root"))] == 4.0
    assert samples[(("outcome", "ok"), ("path", str(binaries[2])), ("user", "root"))] == 3.0
    assert samples[(("outcome", OTHER), ("path", OTHER), ("user", OTHER))] == 3.0  # 1 + 2
    assert sum(samples.values()) == 10.0


def test_a_scrape_after_stop_still_gets_a_clean_answer(workdir: Path, pin_dir: str, serving) -> None:
    binary = copy_true(workdir / "true")
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir), "--key", "invoked")
    server, url = serving("--pin-dir", pin_dir)
    posix_spawn_many(binary, 2)
    pyexec("stop", "--pin-dir", pin_dir)
    # The exporter still holds the maps: its last counts, not an error page.
    assert scraped(url)[("pyexec_executions_total", ("path", str(binary)))] == 2.0
    stopped(server)


def test_the_bpf_programs_own_cost_is_exported_while_the_kernel_keeps_it(workdir: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from pyexec import ExecCounter
    from pyexec.exporter import Exporter

    binary = copy_true(workdir / "true")
    switch = Path("/proc/sys/kernel/bpf_stats_enabled")
    before = switch.read_text()
    with ExecCounter(path_prefix=str(workdir)) as counter:
        exporter = Exporter(counter, max_series=10)
        switch.write_text("0")
        assert "pyexec_bpf_runs" not in exporter.render().decode()
        try:
            switch.write_text("1")
            posix_spawn_many(binary, 5)
            text = exporter.render().decode()
        finally:
            switch.write_text(before)
    samples = {sample.name: sample.value for family in text_string_to_metric_families(text) for sample in family.samples}
    assert samples["pyexec_bpf_runs_total"] >= 5 and samples["pyexec_bpf_run_seconds_total"] > 0
