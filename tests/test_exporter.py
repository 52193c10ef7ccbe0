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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyexec.exporter import OTHER
from pyexec.report import printable

from .conftest import IN_CI, OWN_UIDS, bpf, copy_true
from .test_cli import PYEXEC
from .test_pinned import kernel_objects, left, pyexec
from .workload import become, exec_in_child, fork_exec_after, posix_spawn_many

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
        for _ in range(5):  # another process may take the free port before serve binds it
            port = free_port()
            process = subprocess.Popen([*PYEXEC, "serve", "--listen", f"127.0.0.1:{port}", *args],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            processes.append(process)
            line = process.stderr.readline()
            if "Address already in use" not in line:
                break
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


def serves_from(port: int, data: str, process: subprocess.Popen) -> bool:
    """Whether the Prometheus at port is this process, keeping its data in data (not
    another that got the port first): waits until it answers, or exits."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status/flags", timeout=5) as response:
                return json.load(response)["data"]["storage.tsdb.path"] == data
        except OSError:  # not up yet
            time.sleep(0.2)
    return False


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
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "pyexec", "metrics_path": parts.path,
                                "static_configs": [{"targets": [parts.netloc]}]}],
        }))
        data = str(tmp_path / "data")
        for _ in range(5):  # another Prometheus (another session's) may take the free port first
            port = free_port()
            processes.append(subprocess.Popen(
                [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                 f"--storage.tsdb.path={data}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            if serves_from(port, data, processes[-1]):
                break
            processes[-1].kill()  # it lets go of the data directory before the next one takes it
            processes[-1].wait()

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
        assert query('pyexec_executions_total{other="true"}', 3.0) == 3.0  # 1 + 2: the two smallest
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
    assert samples[(("outcome", "ENOENT"), ("path", str(missing)), ("uid", "0"), ("user", "root"))] == 4.0
    assert samples[(("outcome", "ok"), ("path", str(binaries[2])), ("uid", "0"), ("user", "root"))] == 3.0
    assert samples[tuple(OTHER.items())] == 3.0  # 1 + 2
    assert sum(samples.values()) == 10.0


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_exporter_follows_the_pinned_counter_through_stop_and_a_new_start(
    workdir: Path, pin_dir: str, serving
) -> None:
    binary = copy_true(workdir / "true")
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir), "--key", "invoked")
    server, url = serving("--pin-dir", pin_dir)
    posix_spawn_many(binary, 10)
    assert scraped(url)[("pyexec_executions_total", ("path", str(binary)))] == 10.0
    objects = kernel_objects(pin_dir)
    pyexec("stop", "--pin-dir", pin_dir)
    # Stopped: no frozen counts (PyexecDown fires), and the old counter's maps let go of.
    assert status_of(url) == 503
    assert left(objects) == []
    pyexec("start", "--pin-dir", pin_dir, "--path-prefix", str(workdir), "--key", "invoked")
    posix_spawn_many(binary, 7)
    assert scraped(url)[("pyexec_executions_total", ("path", str(binary)))] == 7.0  # the new one's
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


HOSTILE_UID = OWN_UIDS[0]  # no user of that uid: nor in the passwd file


def exec_as(uid: int, directory: str, name: bytes, times: int) -> None:
    """Runs name (relative: from directory) as uid, times times."""
    fork_exec_after(lambda: (os.chdir(directory), become(uid)()), name, times)


def test_distinct_keys_are_distinct_series_for_prometheus_and_its_parser(public_true: Path, prometheus,
                                                                          serving) -> None:
    # Names that the escaping once made alike, and one that once was the overflow series' name.
    names = [b"a\nb", b"a\\nb", b"\xff", b"\\xff", b"__other__", b"small"]
    directory = public_true.parent
    for name in names:
        shutil.copy2(public_true, os.fsencode(directory) + b"/" + name)
    serve, url = serving("--key", "invoked", "--uid", str(HOSTILE_UID), "--max-series", str(len(names) - 1))
    try:
        for times, name in enumerate(names, start=2):
            exec_as(HOSTILE_UID, str(directory), name, times)  # "a\nb" twice, ... "small" seven times
        exec_as(HOSTILE_UID, str(directory), b"__other__", 1)  # 6 + 1
        samples = {tuple(labels): value for (metric, *labels), value in scraped(url).items()
                   if metric == "pyexec_executions_total"}
        total = sum(range(2, 2 + len(names))) + 1
        assert sum(samples.values()) == total
        assert len(samples) == len(names)  # five names and the overflow: no two alike
        shown = {dict(labels).get("path"): value for labels, value in samples.items()}
        assert shown[printable("__other__")] == 7.0
        assert samples[tuple(OTHER.items())] == 2.0  # "a\nb", the smallest
        query = prometheus(url)
        assert query("count(pyexec_executions_total)", float(len(names))) == float(len(names))
        assert query("sum(pyexec_executions_total)", float(total)) == float(total)
    finally:
        stopped(serve)


def test_uids_without_a_name_are_distinct_series(public_true: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from pyexec import ExecCounter
    from pyexec.exporter import Exporter

    uids = [HOSTILE_UID, HOSTILE_UID + 1]
    with ExecCounter(by=("uid",), uids=uids) as counter:
        for times, uid in enumerate(uids, start=1):
            fork_exec_after(become(uid), public_true, times)
        text = Exporter(counter, max_series=10).render().decode()
    samples = {tuple(sorted(sample.labels.items())): sample.value
               for family in text_string_to_metric_families(text) if family.name == "pyexec_executions"
               for sample in family.samples}
    assert samples == {(("uid", str(uids[0])), ("user", "")): 1.0, (("uid", str(uids[1])), ("user", "")): 2.0}


@pytest.fixture
def exporter_at(workdir: Path) -> Iterator:
    """serve() of a counter of the test's own in a thread, on a free loopback port,
    a client given request_seconds to send a request: yields (host, port)."""
    import threading

    from pyexec import ExecCounter
    from pyexec.exporter import serve

    port, stop, ready = free_port(), threading.Event(), threading.Event()
    with ExecCounter(path_prefix=str(workdir)) as counter:
        thread = threading.Thread(target=serve, args=(counter, "127.0.0.1", port, 10, stop, ready.set),
                                  kwargs={"request_seconds": 1.0})
        thread.start()
        try:
            assert ready.wait(10)
            yield "127.0.0.1", port
        finally:
            stop.set()
            thread.join(30)
    assert not thread.is_alive()


def raw_request(address: tuple[str, int], request: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as client:
        client.sendall(request)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        return answer


def test_a_scrape_answers_within_a_second_while_hundreds_of_connections_idle(true_binary: Path) -> None:
    # More idle connections than the exporter may have file descriptors (128): at that
    # limit an accept loop once spun, and scrapes timed out.
    port = free_port()
    process = subprocess.Popen(["prlimit", "--nofile=128:128", *PYEXEC, "serve", "--listen", f"127.0.0.1:{port}",
                                "--path-prefix", str(true_binary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    idle = []
    try:
        assert "serving" in process.stderr.readline()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(300)]
        posix_spawn_many(true_binary, 3)
        for _ in range(3):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                body = response.read().decode()
            assert time.monotonic() - started < 1.0
            assert f'pyexec_executions_total{{path="{true_binary}"}} 3' in body
        with open(f"/proc/{process.pid}/stat") as stat:
            before = sum(map(int, stat.read().rsplit(")", 1)[1].split()[11:13]))
        time.sleep(1)
        with open(f"/proc/{process.pid}/stat") as stat:
            after = sum(map(int, stat.read().rsplit(")", 1)[1].split()[11:13]))
        assert after - before < os.sysconf("SC_CLK_TCK") // 4  # idle, not spinning: under 25% of a CPU
    finally:
        for connection in idle:
            connection.close()
        stopped(process)


def test_a_client_that_sends_too_much_or_too_slowly_is_cut_off(exporter_at) -> None:
    assert raw_request(exporter_at, b"GET /metrics HTTP/1.1\r\nX: " + b"x" * 9000 + b"\r\n\r\n").startswith(
        b"HTTP/1.1 431 ")
    with socket.create_connection(exporter_at, timeout=10) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\n")  # and no more
        started = time.monotonic()
        assert slow.recv(100) == b""  # closed by the exporter
        assert time.monotonic() - started < 5


def test_stalled_requests_with_large_heads_take_little_memory(exporter_at) -> None:
    def rss() -> int:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) * 1024

    before = rss()
    stalled = [socket.create_connection(exporter_at, timeout=10) for _ in range(100)]
    try:
        for connection in stalled:
            connection.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"x" * 8000)
        time.sleep(0.5)
        assert rss() - before < 32 << 20
    finally:
        for connection in stalled:
            connection.close()


def test_head_answers_the_headers_of_get_without_the_body(exporter_at) -> None:
    get = raw_request(exporter_at, b"GET /metrics HTTP/1.0\r\n\r\n")
    head = raw_request(exporter_at, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert get.startswith(b"HTTP/1.1 200 ") and get.split(b"\r\n\r\n", 1)[1].startswith(b"# HELP")
    assert raw_request(exporter_at, b"POST /metrics HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 405 ")


@pytest.mark.parametrize("listen", ["127.0.0.1:\u0669\u0664\u0663\u0665", "127.0.0.1:\u00b9\u00b2"])
def test_a_port_in_other_digits_is_a_usage_error(listen: str) -> None:
    result = subprocess.run([*PYEXEC, "serve", "--listen", listen], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "'--listen'" in result.stderr


def test_serving_beyond_loopback_warns_and_sighup_does_not_end_it(workdir: Path) -> None:
    port = free_port()
    process = subprocess.Popen([*PYEXEC, "serve", "--listen", f"0.0.0.0:{port}", "--path-prefix", str(workdir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        warning = process.stderr.readline()
        assert "warning: serving on 0.0.0.0" in warning and "serving" in process.stderr.readline()
        process.send_signal(signal.SIGHUP)  # a reload: names looked up again
        time.sleep(0.5)
        assert process.poll() is None
        assert status_of(f"http://127.0.0.1:{port}/metrics") == 200
    finally:
        stopped(process)
