"""pyexec serve: the counts as Prometheus metrics."""

import signal
import threading
from typing import Annotated, Any

import typer

from ..errors import PyexecError
from ..settings import PIN_DIRECTORY, Settings
from .app import app, say
from .options import PinDirOption, counting, stop_requests


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, or [IPV6]:PORT."""
    host, _, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9435", param_hint="'--listen'")
    return host, int(port)


@app.command(epilog="Examples: sudo pyexec serve · sudo pyexec serve --listen 0.0.0.0:9435 --max-series 1000")
@counting
def serve(
    listen: Annotated[str, typer.Option(help="Where to serve /metrics: HOST:PORT (loopback unless you say otherwise).")]
    = "127.0.0.1:9435",
    max_series: Annotated[int, typer.Option(min=1, help="Export the N biggest keys; the rest are summed under "
                                            "other=\"true\".")] = 500,
    pin_dir: PinDirOption = PIN_DIRECTORY,
    settings: Settings = None,  # type: ignore[assignment]  # its own counter's, when none is pinned
) -> None:
    """Serve the counts as Prometheus metrics: those of the pinned counter (pyexec start) if
    there is one, else of a counter of its own (the counting options), detached on exit.
    A pinned counter is followed: stopped, scrapes answer 503; started anew, they read the new one.
    SIGHUP looks user and cgroup names up again."""
    import ipaddress

    from .. import pinned
    from ..counter import ExecCounter
    from ..exporter import PinnedCounter, serve as serve_metrics

    host, port = parse_listen(listen)
    try:
        if not ipaddress.ip_address(host).is_loopback:
            say(f"warning: serving on {host}, beyond this host: anyone who reaches it reads what this host runs; "
                "bind the address that Prometheus scrapes (or 127.0.0.1), and firewall the port")
    except ValueError:  # a host name
        pass
    source: Any
    if pinned.is_running(pin_dir):
        source = PinnedCounter(pin_dir)
        source.current()  # refused now, not at the first scrape, if it cannot be read
        what = f"the counter pinned at {pin_dir}"
    else:
        source, what = ExecCounter(settings), "a counter of its own"
    reload = threading.Event()
    previous_hup = signal.signal(signal.SIGHUP, lambda signum, frame: reload.set())
    try:
        with stop_requests((signal.SIGINT, signal.SIGTERM)) as stop, source:
            try:
                serve_metrics(source, host, port, max_series, stop, reload=reload,
                              ready=lambda: say(f"serving {what} at http://{listen}/metrics (Ctrl-C or SIGTERM stops)"))
            except OSError as error:
                raise PyexecError(f"cannot serve at {listen}: {error.strerror}") from None
    finally:
        signal.signal(signal.SIGHUP, previous_hup)
