"""pyexec serve: the counts as Prometheus metrics, read from the kernel at each scrape.

The series are the kernel's own counters, never reset by pyexec reset: they
only climb, as Prometheus counters must, and survive the exporter's restarts.

pyexec_executions_total, one series per key (up to 16384 and more), is written
here in the text format: through prometheus_client's metric objects a scrape
of 16384 keys took 175 ms, this way it takes a fraction of it. The few other
metrics go through prometheus_client.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

from .counter import ExecCounter
from .names import cgroup_names, user_name
from .report import outcome_name, printable

OTHER = "__other__"  # the series the keys beyond --max-series are folded into
# What each breakdown is labelled by, as in the JSON output.
LABELS = {"path": "path", "uid": "user", "comm": "comm", "parent": "parent", "cgroup": "cgroup"}
EXECUTIONS = "pyexec_executions_total"


def label_value(text: str) -> str:
    """A label value in the text format: control characters and bytes that are not
    UTF-8 shown escaped (as tables show them), then backslash and quote escaped."""
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')


class Exporter:
    """The metrics of one counter (loaded here, or pinned) as the text format."""

    def __init__(self, counter: ExecCounter, max_series: int) -> None:
        from prometheus_client.core import CollectorRegistry

        self.counter, self.max_series = counter, max_series
        self._labels: dict[tuple, str] = {}  # key -> its labels, written once per key
        self._others = CollectorRegistry(auto_describe=False)
        self._others.register(self)
        self._entries = 0

    def label_names(self) -> list[str]:
        names = [LABELS[field] for field in self.counter.by]
        return names + (["outcome"] if self.counter.mode == "attempts" else [])

    def render(self) -> bytes:
        """The whole of /metrics."""
        from prometheus_client import generate_latest

        return self.executions().encode() + generate_latest(self._others)

    def executions(self) -> str:
        """The max_series biggest keys, one series each; the rest summed in one series
        labelled OTHER, so that sums over any label stay right."""
        columns = self.counter.columns()
        counts = columns["count"]
        fields = [columns[field] for field in self.counter.by]
        outcomes = columns.get("outcome")
        keys = list(zip(*fields, *([outcomes] if outcomes is not None else []))) if fields else []
        self._entries = len(counts)
        if len(self._labels) > 2 * len(counts) + 1024:  # keys gone since: forget them
            self._labels.clear()
        order = sorted(range(len(counts)), key=counts.__getitem__, reverse=True)
        what = "exec calls, by outcome" if self.counter.mode == "attempts" else "successful executions"
        lines = [f"# HELP {EXECUTIONS} Program {what}, counted in the kernel", f"# TYPE {EXECUTIONS} counter"]
        cgroups = None
        for row in order[: self.max_series]:
            labels = self._labels.get(keys[row])
            if labels is None:
                if cgroups is None and "cgroup" in self.counter.by:
                    cgroups = cgroup_names()
                labels = self._labels[keys[row]] = self.labels_of(keys[row], cgroups)
            lines.append(f"{EXECUTIONS}{{{labels}}} {counts[row]}")
        if len(order) > self.max_series:
            other = ",".join(f'{name}="{OTHER}"' for name in self.label_names())
            lines.append(f"{EXECUTIONS}{{{other}}} {sum(counts[row] for row in order[self.max_series:])}")
        return "\n".join(lines) + "\n"

    def labels_of(self, key: tuple, cgroups: Any) -> str:
        values = []
        for field, value in zip(self.counter.by, key):
            if field == "uid":
                value = user_name(value)
            elif field == "cgroup":
                value = cgroups.path(value or 0) or str(value)
            values.append(str(value))
        if self.counter.mode == "attempts":
            values.append(outcome_name(key[-1]))
        return ",".join(f'{name}="{label_value(value)}"' for name, value in zip(self.label_names(), values))

    def collect(self) -> Iterator[Any]:
        """The other metrics, for prometheus_client (after executions(), which counts the entries)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.counter.stats()
        for name, value, meaning in (
            ("dropped", stats.dropped, "Executions not counted: the kernel refused to insert their key"),
            ("truncated", stats.truncated, "Executions counted under a path cut to fit"),
            ("errors", stats.errors, "Executions not counted: their file name could not be read"),
        ):
            yield CounterMetricFamily(f"pyexec_{name}", meaning, value=value)
        yield GaugeMetricFamily("pyexec_map_entries", "Keys in the exec_count map", value=self._entries)
        yield GaugeMetricFamily("pyexec_map_capacity", "Keys the exec_count map can hold",
                                value=self.counter.max_entries)
        run = self.counter.program_stats()
        if run is not None:  # kernel.bpf_stats_enabled = 1
            yield CounterMetricFamily("pyexec_bpf_run_seconds", "Time the BPF programs ran", value=run[0] / 1e9)
            yield CounterMetricFamily("pyexec_bpf_runs", "Times the BPF programs ran", value=run[1])


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(counter: ExecCounter, host: str, port: int, max_series: int, stop: Any, ready: Any) -> None:
    """Serves /metrics on host:port until stop (a threading.Event) is set; calls
    ready() once the port is bound. Scrapes may overlap: the counter takes them in turn."""
    from prometheus_client import CONTENT_TYPE_LATEST

    exporter = Exporter(counter, max_series)
    scrape = threading.Lock()  # one render at a time: they share the label cache

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "pyexec serves /metrics")
                return
            try:
                with scrape:
                    body = exporter.render()
            except Exception as error:  # e.g. the pinned counter stopped meanwhile
                self.send_error(503, f"cannot read the counter: {error}")
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # a scrape every few seconds is not news

    server = (_Server6 if ":" in host else http.server.ThreadingHTTPServer)((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ready()
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
