"""pyexec serve: the counts as Prometheus metrics, read from the kernel at each scrape.

The series are the kernel's own counters, never reset by pyexec reset: they
only climb, as Prometheus counters must, and survive the exporter's restarts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .counter import ExecCounter, ExecRecord
from .names import cgroup_names, user_name
from .report import outcome_name, printable

OTHER = "__other__"  # the series the keys beyond --max-series are folded into
# What each breakdown is labelled by, as in the JSON output.
LABELS = {"path": "path", "uid": "user", "comm": "comm", "parent": "parent", "cgroup": "cgroup"}


class ExecCollector:
    """A prometheus_client collector of one counter: loaded here, or pinned."""

    def __init__(self, counter: ExecCounter, max_series: int) -> None:
        self.counter, self.max_series = counter, max_series

    def labels(self) -> list[str]:
        names = [LABELS[field] for field in self.counter.by]
        return names + (["outcome"] if self.counter.mode == "attempts" else [])

    def series(self, records: list[ExecRecord]) -> list[tuple[list[str], int]]:
        """(label values, count) of the max_series biggest keys, the rest summed in one
        series labelled OTHER, so that sums over any label stay right."""
        cgroups = cgroup_names() if "cgroup" in self.counter.by else None
        ranked = sorted(records, key=lambda record: -record.count)
        kept, rest = ranked[: self.max_series], ranked[self.max_series :]
        series = [(self.values(record, cgroups), record.count) for record in kept]
        if rest:
            series.append(([OTHER] * len(self.labels()), sum(record.count for record in rest)))
        return series

    def values(self, record: ExecRecord, cgroups: Any) -> list[str]:
        values = []
        for field in self.counter.by:
            value: Any = getattr(record, field)
            if field == "uid":
                value = user_name(value)
            elif field == "cgroup":
                value = cgroups.path(value or 0) or str(value)
            values.append(printable(str(value)))  # label values are text: bytes and controls escaped
        if self.counter.mode == "attempts":
            values.append(outcome_name(record.outcome))
        return values

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        records, stats = self.counter.records(), self.counter.stats()
        what = "exec calls, by outcome" if self.counter.mode == "attempts" else "successful executions"
        executions = CounterMetricFamily("pyexec_executions", f"Program {what}, counted in the kernel",
                                         labels=self.labels())
        for values, count in self.series(records):
            executions.add_metric(values, count)
        yield executions
        for name, value, meaning in (
            ("dropped", stats.dropped, "Executions not counted: the kernel refused to insert their key"),
            ("truncated", stats.truncated, "Executions counted under a path cut to fit"),
            ("errors", stats.errors, "Executions not counted: their file name could not be read"),
        ):
            yield CounterMetricFamily(f"pyexec_{name}", meaning, value=value)
        yield GaugeMetricFamily("pyexec_map_entries", "Keys in the exec_count map", value=len(records))
        yield GaugeMetricFamily("pyexec_map_capacity", "Keys the exec_count map can hold",
                                value=self.counter.max_entries)
        run = self.counter.program_stats()
        if run is not None:  # kernel.bpf_stats_enabled = 1
            yield CounterMetricFamily("pyexec_bpf_run_seconds", "Time the BPF programs ran",
                                      value=run[0] / 1e9)
            yield CounterMetricFamily("pyexec_bpf_runs", "Times the BPF programs ran", value=run[1])


def serve(counter: ExecCounter, host: str, port: int, max_series: int, stop: Any, ready: Any) -> None:
    """Serves /metrics on host:port until stop (a threading.Event) is set; calls
    ready() once the port is bound."""
    from prometheus_client import start_http_server
    from prometheus_client.core import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExecCollector(counter, max_series))
    server, thread = start_http_server(port, host, registry=registry)
    ready()
    try:
        stop.wait()
    finally:
        server.shutdown()
        thread.join()
