"""pyexec serve: the counts as Prometheus metrics, read from the kernel at each scrape.

The series are the kernel's own counters, never reset by pyexec reset: they
only climb, as Prometheus counters must, and survive the exporter's restarts.

pyexec_executions_total, one series per key (up to 16384 and more), is written
here in the text format: through prometheus_client's metric objects a scrape
of 16384 keys took 175 ms, this way it takes a fraction of it. The few other
metrics go through prometheus_client.

Any two distinct keys give two distinct series: label values are text as
tables show it (every backslash doubled, control characters and bytes that are
not UTF-8 escaped, so no two names give one text), a uid is labelled by its
number (its name beside it), a cgroup by its id (its path beside it), and the
keys beyond --max-series are summed in a series of labels of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .counter import ExecCounter, pinned_map_id
from .model import BREAKDOWNS, ExecLosses
from .names import user_name
from .report import outcome_name, printable

#: The labels of the series the keys beyond --max-series are summed in: no key's series has them.
OTHER = {"other": "true"}
EXECUTIONS = "pyexec_executions_total"


def label_value(text: str) -> str:
    """A label value in the text format: the text as tables show it (one-to-one),
    then the format's own escapes of backslash and quote."""
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
        names = [name for field in self.counter.settings.by for name in BREAKDOWNS[field].labels]
        return names + (["outcome"] if self.counter.settings.mode == "attempts" else [])

    def render(self) -> bytes:
        """The whole of /metrics."""
        from prometheus_client import generate_latest

        return self.executions().encode() + generate_latest(self._others)

    def executions(self) -> str:
        """The max_series biggest keys, one series each; the rest summed in one series
        labelled OTHER, so that sums over any label stay right."""
        columns = self.counter.columns()
        counts = columns["count"]
        fields = [columns[field] for field in self.counter.settings.by]
        outcomes = columns.get("outcome")
        keys = list(zip(*fields, *([outcomes] if outcomes is not None else []))) if fields else []
        self._entries = len(counts)
        if len(self._labels) > 2 * len(counts) + 1024:  # keys gone since: forget them
            self._labels.clear()
        order = sorted(range(len(counts)), key=counts.__getitem__, reverse=True)
        what = "exec calls, by outcome" if self.counter.settings.mode == "attempts" else "successful executions"
        lines = [f"# HELP {EXECUTIONS} Program {what}, counted in the kernel", f"# TYPE {EXECUTIONS} counter"]
        for row in order[: self.max_series]:
            labels = self._labels.get(keys[row])
            if labels is None:
                labels = self._labels[keys[row]] = self.labels_of(keys[row])
            lines.append(f"{EXECUTIONS}{{{labels}}} {counts[row]}")
        if len(order) > self.max_series:
            other = ",".join(f'{name}="{value}"' for name, value in OTHER.items())
            lines.append(f"{EXECUTIONS}{{{other}}} {sum(counts[row] for row in order[self.max_series:])}")
        return "\n".join(lines) + "\n"

    def labels_of(self, key: tuple) -> str:
        values = [label for field, value in zip(self.counter.settings.by, key) for label in BREAKDOWNS[field].label(value)]
        if self.counter.settings.mode == "attempts":
            values.append(outcome_name(key[-1]))
        return ",".join(f'{name}="{label_value(value)}"' for name, value in zip(self.label_names(), values))

    def collect(self) -> Iterator[Any]:
        """The other metrics, for prometheus_client (after executions(), which counts the entries)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        losses = self.counter.losses()
        for name, meaning in ExecLosses.meanings().items():
            yield CounterMetricFamily(f"pyexec_{name}", meaning, value=getattr(losses, name))
        yield GaugeMetricFamily("pyexec_map_entries", "Keys in the exec_count map", value=self._entries)
        yield GaugeMetricFamily("pyexec_map_capacity", "Keys the exec_count map can hold",
                                value=self.counter.settings.max_entries)
        run = self.counter.run_time()
        if run is not None:  # kernel.bpf_stats_enabled = 1
            yield CounterMetricFamily("pyexec_bpf_run_seconds", "Time the BPF programs ran", value=run[0] / 1e9)
            yield CounterMetricFamily("pyexec_bpf_runs", "Times the BPF programs ran", value=run[1])


class PinnedCounter:
    """The counter pinned at a directory as it is at each scrape: let go of once it
    is stopped (so the kernel can free it), and the new one read once another is
    pinned there. None while none is."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.counter: ExecCounter | None = None
        self.map_id: int | None = None  # the opened counter's: it does not change while open

    def current(self) -> ExecCounter | None:
        pinned_id = pinned_map_id(self.directory)
        if self.counter is not None and pinned_id != self.map_id:
            self.counter.close()
            self.counter = None
        if self.counter is None and pinned_id is not None:
            self.counter = ExecCounter.open_pinned(self.directory)
            self.map_id = self.counter.map_id
        return self.counter

    def close(self) -> None:
        if self.counter is not None:
            self.counter.close()

    def __enter__(self) -> PinnedCounter:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


class Metrics:
    """What a scrape answers: (status, body). One at a time: they share the label cache."""

    def __init__(self, counter: ExecCounter | PinnedCounter, max_series: int) -> None:
        self.source, self.max_series = counter, max_series
        self.exporter: Exporter | None = None
        self.lock = threading.Lock()

    def scrape(self) -> tuple[int, bytes]:
        with self.lock:
            try:
                source = self.source
                counter = source.current() if isinstance(source, PinnedCounter) else source
                if counter is None:
                    assert isinstance(source, PinnedCounter)
                    return 503, f"no counter is pinned at {source.directory} (pyexec start starts one)\n".encode()
                if self.exporter is None or self.exporter.counter is not counter:
                    self.exporter = Exporter(counter, self.max_series)
                return 200, self.exporter.render()
            except Exception as error:  # e.g. the pinned counter stopped meanwhile
                return 503, f"cannot read the counter: {error}\n".encode()

    def forget(self) -> None:
        """Names looked up again at the next scrape (SIGHUP: users or cgroups renamed)."""
        with self.lock:
            self.exporter = None
            user_name.cache_clear()


# What one client may take: a request's head, the time to send it, how many
# connections may be open at once (the longest idle is closed to make room).
MAX_REQUEST_BYTES = 8192
REQUEST_SECONDS = 10.0
WRITE_SECONDS = 30.0
MAX_CONNECTIONS = 256
STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
               431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class _Connections:
    """The open connections, and when each began waiting for a request (None: busy).
    A connection is accepted only while there is room: else the one idle longest
    is closed first, so a client holding many keeps no scrape out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting: dict[asyncio.StreamWriter, float | None] = {}
        self.starting = 0  # accepted, not yet in waiting: between accepted() and added() or dropped()
        self.closing: set[asyncio.StreamWriter] = set()  # closed to make room, not yet gone

    def room(self) -> bool:
        """Whether one more may be accepted now; if not, makes room for the next
        call when one is idle. False and nothing done: every one is busy."""
        if self.starting + len(self.waiting) - len(self.closing) < self.limit:
            return True
        idle = [(since, id(writer), writer) for writer, since in self.waiting.items()
                if since is not None and writer not in self.closing]
        if idle:
            writer = min(idle)[2]
            self.closing.add(writer)
            writer.transport.abort()
        return False

    def accepted(self) -> None:
        self.starting += 1

    def dropped(self) -> None:
        """An accepted connection that failed before it could wait for a request."""
        self.starting -= 1

    def added(self, writer: asyncio.StreamWriter) -> None:
        self.starting -= 1
        self.waiting[writer] = time.monotonic()

    def remove(self, writer: asyncio.StreamWriter) -> None:
        self.waiting.pop(writer, None)
        self.closing.discard(writer)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, metrics: Metrics,
                  connections: _Connections, render: concurrent.futures.Executor,
                  request_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    connections.added(writer)
    try:
        while True:
            connections.waiting[writer] = time.monotonic()
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), request_seconds)
            except asyncio.LimitOverrunError:
                await _respond(writer, 431, b"a request's head is at most 8 KiB\n", head_only=False, keep=False)
                return
            except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                return
            connections.waiting[writer] = None
            lines = head.decode("latin-1").split("\r\n")
            request = lines[0].split(" ")
            headers = {line.partition(":")[0].strip().lower(): line.partition(":")[2].strip() for line in lines[1:]}
            if len(request) != 3 or not request[2].startswith("HTTP/1."):
                await _respond(writer, 400, b"not an HTTP/1 request\n", head_only=False, keep=False)
                return
            method, target, version = request
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            if method not in ("GET", "HEAD"):
                await _respond(writer, 405, b"pyexec serves GET and HEAD\n", head_only=False, keep=False,
                               extra={"Allow": "GET, HEAD"})
                return
            if target.split("?")[0] != "/metrics":
                status, body = 404, b"pyexec serves /metrics\n"
            else:
                status, body = await loop.run_in_executor(render, metrics.scrape)
            await _respond(writer, status, body, head_only=method == "HEAD", keep=keep)
            if not keep:
                return
    except (ConnectionError, asyncio.TimeoutError):
        pass
    finally:
        connections.remove(writer)
        writer.close()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, *, head_only: bool, keep: bool,
                   extra: dict[str, str] | None = None) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST

    content_type = CONTENT_TYPE_LATEST if status == 200 else "text/plain; charset=utf-8"
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)),
               "Connection": "keep-alive" if keep else "close", **(extra or {})}
    head = f"HTTP/1.1 {status} {STATUS_TEXT[status]}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n" + (b"" if head_only else body))
    await asyncio.wait_for(writer.drain(), WRITE_SECONDS)


def connection_limit() -> int:
    """MAX_CONNECTIONS, or fewer where the file descriptor limit is lower."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(8, min(MAX_CONNECTIONS, soft - 64)) if soft != resource.RLIM_INFINITY else MAX_CONNECTIONS


def serve(counter: ExecCounter | PinnedCounter, host: str, port: int, max_series: int, stop: threading.Event,
          ready: Callable[[], None], reload: threading.Event | None = None,
          request_seconds: float = REQUEST_SECONDS) -> None:
    """Serves /metrics on host:port until stop is set; calls ready() once the port
    is bound; a set reload makes names be looked up again. One thread answers
    every client (a client that holds a connection costs a few kilobytes, not a
    thread), another reads the kernel, one scrape at a time."""
    metrics = Metrics(counter, max_series)
    connections = _Connections(connection_limit())
    render = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyexec-scrape")

    listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=128)
    listener.setblocking(False)

    async def connection(client: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=client, limit=MAX_REQUEST_BYTES)
        except OSError:
            connections.dropped()
            client.close()
            return
        await _answer(reader, writer, metrics, connections, render, request_seconds)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: None)  # a client's fault is not news
        tasks: set[asyncio.Task] = set()

        def pause() -> None:
            loop.remove_reader(listener.fileno())
            loop.call_later(0.05, loop.add_reader, listener.fileno(), accept)

        def accept() -> None:
            # One at a time, and only with room: at the descriptor limit an accept loop spins.
            if not connections.room():
                if not connections.closing:  # every connection busy: none to close for room
                    pause()
                return
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:  # EMFILE, ENFILE, ENOBUFS: wait for descriptors to be given back
                pause()
                return
            client.setblocking(False)
            connections.accepted()
            task = loop.create_task(connection(client))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_reader(listener.fileno(), accept)
        ready()
        try:
            while not stop.is_set():
                if reload is not None and reload.is_set():
                    reload.clear()
                    metrics.forget()
                await asyncio.sleep(0.1)
        finally:
            loop.remove_reader(listener.fileno())
            for writer in list(connections.waiting):
                writer.transport.abort()
            for task in list(tasks):
                task.cancel()

    try:
        asyncio.run(main())
    finally:
        listener.close()
        render.shutdown(wait=True)
