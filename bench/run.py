"""pyexec next to bpftrace on one exec storm; writes docs/benchmarks.md.

Run as root through `make bench`. Figures are ratios measured in one run,
side by side, since the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pyexec import ExecCounter
from pyexec._shim import lib
from pyexec.kernel import FEATURES, KEY_FEATURES

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "build" / "loadgen"
PYEXEC = [str(Path(sys.executable).parent / "pyexec"), "run", "--format", "json"]
BPFTRACE_ONE_LINER = "tracepoint:syscalls:sys_enter_execve { @[str(args->filename)] = count(); }"
# BEGIN fires once every probe is attached: the moment bpftrace starts counting.
BPFTRACE = ["bpftrace", "-e", 'BEGIN { printf("attached\\n"); } ' + BPFTRACE_ONE_LINER]
TRACEFS = Path("/sys/kernel/tracing")
BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


@dataclass
class Tool:
    """A counting process: started, waited for until attached, stopped, reaped."""

    name: str
    argv: list[str]
    ready_line: bytes  # printed, on stdout or stderr, once the tool counts
    stop_signal: int

    def start(self) -> None:
        programs_before = bpf_program_ids()
        started = time.perf_counter()
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.output: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        ready = threading.Event()
        self.readers = [
            threading.Thread(target=self._collect, args=(stream, ready))
            for stream in self.output
        ]
        for reader in self.readers:
            reader.start()
        if not ready.wait(timeout=60):
            raise SystemExit(f"{self.name} did not attach: {b''.join(self.output['stderr'])!r}")
        self.startup_s = time.perf_counter() - started
        self.programs = bpf_program_ids() - programs_before

    def _collect(self, stream: str, ready: threading.Event) -> None:
        for line in getattr(self.process, stream):
            self.output[stream].append(line)
            if line.startswith(self.ready_line):
                ready.set()

    def stop(self) -> bytes:
        """Stops the tool and returns what it printed on stdout."""
        self.process.send_signal(self.stop_signal)
        _, status, usage = os.wait4(self.process.pid, 0)  # wait4 for the peak RSS
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.peak_rss_mib = usage.ru_maxrss / 1024
        for reader in self.readers:
            reader.join()
        return b"".join(self.output["stdout"])


# Each key read with its newer kernel feature, and with the fallback older kernels take.
PYEXEC_WAYS = [(key, avoid) for key, feature in KEY_FEATURES.items() for avoid in (None, feature)]


def pyexec_tool(key: str = "resolved", avoid: str | None = None) -> Tool:
    name, argv = f"pyexec-{key}", [*PYEXEC, "--key", key]
    if avoid:
        name, argv = f"{name}-without-{avoid}", [*argv, "--avoid", avoid]
    return Tool(name, argv, b"pyexec: counting", signal.SIGTERM)


def bpftrace_tool() -> Tool:
    return Tool("bpftrace", BPFTRACE, b"attached", signal.SIGINT)


def floor_tool() -> Tool:
    """One atomic add per execution at pyexec's hook: what no counter there can beat."""
    return Tool("floor", [sys.executable, str(ROOT / "bench" / "floor.py")], b"floor: counting", signal.SIGTERM)


def bpf_program_ids() -> set[int]:
    listing = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, check=True)
    return {program["id"] for program in json.loads(listing.stdout)}


def bpf_program_stats(ids: set[int]) -> tuple[int, int]:
    """(run_time_ns, run_cnt) summed over the programs, from the kernel's BPF stats."""
    listing = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, check=True)
    # bpftrace's BEGIN is a uprobe (type kprobe): not part of the per-exec cost.
    chosen = [p for p in json.loads(listing.stdout) if p["id"] in ids and p["type"] != "kprobe"]
    return sum(p.get("run_time_ns", 0) for p in chosen), sum(p.get("run_cnt", 0) for p in chosen)


def bpftrace_counts(output: bytes) -> dict[str, int]:
    counts = {}
    for line in output.decode(errors="surrogateescape").splitlines():
        if line.startswith("@[") and "]: " in line:
            path, count = line[2:].rsplit("]: ", 1)
            counts[path] = int(count)
    return counts


def storm(binary: Path, workers: int, spawns: int) -> None:
    subprocess.run([str(LOADGEN), str(workers), str(spawns), str(binary)], check=True)


def measure_startup(make_tool, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        tool = make_tool()
        tool.start()
        times.append(tool.startup_s)
        tool.stop()
    return statistics.median(times)


def measure_storm(binary: Path, workers: int, spawns: int, rounds: int) -> dict:
    """Each tool counts a storm of its own, alone: a program that shares the
    tracepoint with another finds the kernel's code and data warm and looks
    cheaper than it is. Rounds interleave the tools, in turn first."""
    makers = [functools.partial(pyexec_tool, key, avoid) for key, avoid in PYEXEC_WAYS] + [bpftrace_tool, floor_tool]
    expected = workers * spawns
    samples: dict[str, list[dict]] = {}
    for round_ in range(rounds):
        for make_tool in makers[round_ % len(makers):] + makers[: round_ % len(makers)]:
            tool = make_tool()
            tool.start()
            before = bpf_program_stats(tool.programs)
            storm(binary, workers, spawns)
            after = bpf_program_stats(tool.programs)
            output = tool.stop()
            if tool.name == "bpftrace":
                counted = bpftrace_counts(output).get(str(binary), 0)
            elif tool.name == "floor":  # every execution on the host: the storm's, and others
                counted = min(json.loads(output)["executions"], expected)
            else:
                counted = {e["path"]: e["count"] for e in json.loads(output)["counts"]}.get(str(binary), 0)
            runs = after[1] - before[1]
            samples.setdefault(tool.name, []).append({
                "ns_per_exec": (after[0] - before[0]) / runs if runs else float("nan"),
                "lost": expected - counted,
                "peak_rss_mib": tool.peak_rss_mib,
            })
    result: dict = {"expected": expected, "rounds": rounds}
    for name, runs_of_tool in samples.items():
        result[name] = {
            "ns_per_exec": statistics.median(s["ns_per_exec"] for s in runs_of_tool),
            "lost": max(s["lost"] for s in runs_of_tool),
            "peak_rss_mib": max(s["peak_rss_mib"] for s in runs_of_tool),
        }
    # Ratios within a round, then their median: the machine's drift cancels out.
    for name in samples.keys() - {"bpftrace"}:
        for reference, ratio in (("bpftrace", "ratio"), ("floor", "floor_ratio")):
            result[name][ratio] = statistics.median(
                ours["ns_per_exec"] / theirs["ns_per_exec"]
                for ours, theirs in zip(samples[name], samples[reference])
            )
    return result


def measure_map_read(workdir: Path, rounds: int) -> dict:
    """Fills a 16384-entry map with real execs of distinct hard links, then reads it."""
    entries = 16384
    original = workdir / "true"
    links = []
    for i in range(entries):
        link = workdir / f"t{i:05}"
        os.link(original, link)
        links.append(str(link))
    listing = workdir / "links.txt"
    listing.write_text("\n".join(links) + "\n")
    with ExecCounter(max_entries=entries) as counter:
        subprocess.run([str(LOADGEN), "2", str(entries // 2), f"@{listing}"], check=True)
        counts = counter.counts()
        columns = counter._columns.struct  # the C read alone, into the same buffers
        timings = {"batch_in_c": median_ms(lambda: lib.pyexec_count_reader_read(counter._reader, columns), rounds)}
        timings["batch"] = median_ms(counter.counts, rounds)
        timings["scrape"] = median_ms(scraper(counter, entries), rounds)
        lib.pyexec_count_reader_use_per_key_reads(counter._reader)
        timings["per_key"] = median_ms(counter.counts, rounds)
        return {"entries": len(counts), "memory": sum(counter.memory().values()), **timings}


def scraper(counter: ExecCounter, series: int):
    """What pyexec serve does at each scrape of /metrics: read the map, render the text."""
    from pyexec.exporter import Exporter

    return Exporter(counter, series).render


def measure_show_startup(rounds: int) -> float:
    """Launch to exit of pyexec show, reading a counter pinned by pyexec start."""
    command = Path(sys.executable).parent / "pyexec"
    pin_dir = f"/sys/fs/bpf/pyexec-bench-{os.getpid()}"
    subprocess.run([command, "start", "--pin-dir", pin_dir], check=True, stderr=subprocess.DEVNULL)
    try:
        show = [command, "show", "--pin-dir", pin_dir, "--format", "json"]
        return median_ms(lambda: subprocess.run(show, check=True, stdout=subprocess.DEVNULL), rounds) / 1000
    finally:
        subprocess.run([command, "stop", "--pin-dir", pin_dir], check=True, stdout=subprocess.DEVNULL)


def median_ms(call, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def measure_interpreter_startup(rounds: int, code: str = "print()") -> float:
    """Launch to first output of a Python running code: floors under pyexec's start-up."""
    def launch() -> None:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        process.stdout.readline()
        process.wait()

    return median_ms(launch, rounds) / 1000


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.machine(),
    )
    return f"{cpu}, {os.cpu_count()} CPUs, Linux {os.uname().release}"


def bpftrace_version() -> str:
    return subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def write_report(path: Path, args, startup, storm_result, map_read) -> None:
    resolved, invoked = storm_result["pyexec-resolved"], storm_result["pyexec-invoked"]
    bpftrace = storm_result["bpftrace"]
    invoked_ratio, resolved_ratio = invoked["ratio"], resolved["ratio"]
    startup_ratio = startup["pyexec"] / startup["bpftrace"]
    rss_ratio = resolved["peak_rss_mib"] / bpftrace["peak_rss_mib"]
    read_ratio = map_read["per_key"] / map_read["batch"]
    lost = (resolved["lost"], invoked["lost"])
    floor = storm_result["floor"]
    ways = "\n".join(
        f"| `--key {key}` | {FEATURES[feature].without_it if avoid else FEATURES[feature].with_it} "
        f"({'before' if avoid else 'from'} {FEATURES[feature].kernel}) | {way['ns_per_exec']:.0f} ns "
        f"| {way['ratio']:.2f}× | {way['floor_ratio']:.1f}× | {way['lost']} |"
        for key, avoid in PYEXEC_WAYS
        for feature in [KEY_FEATURES[key]]
        for way in [storm_result[pyexec_tool(key, avoid).name]]
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Benchmarks

Written by `make bench` ({now}) on {machine()}; pyexec with libbpf
{lib_version()}, against {bpftrace_version()} running the one-liner

    {BPFTRACE_ONE_LINER}

pyexec (`--key resolved`, the default, and `--key invoked`, each also with the
fallback that older kernels take), bpftrace and the floor (a program at pyexec's hook
that only adds one to a global) each count an exec storm of their own,
alone: `bench/loadgen`, {args.workers} workers × {args.spawns} `posix_spawn`s of one binary
({storm_result['expected']} executions), {storm_result['rounds']} rounds with the tools in turn. The machine is shared and noisy, so the figures that
matter are the ratios: taken within each round, their median is shown; the times
are medians too.

| measure | pyexec | bpftrace | ratio | target |
| --- | ---: | ---: | ---: | --- |
| BPF time per exec, `--key invoked` (`run_time_ns / run_cnt`) | {invoked['ns_per_exec']:.0f} ns | {bpftrace['ns_per_exec']:.0f} ns | {invoked_ratio:.2f}× | ≤ 0.5× ({verdict(invoked_ratio <= 0.5)}) |
| BPF time per exec, `--key resolved` (the path walk) | {resolved['ns_per_exec']:.0f} ns | {bpftrace['ns_per_exec']:.0f} ns | {resolved_ratio:.2f}× | ≤ 0.75× ({verdict(resolved_ratio <= 0.75)}) |
| executions lost in a storm, at worst (resolved, invoked) | {lost[0]}, {lost[1]} | {bpftrace['lost']} | | pyexec 0 ({verdict(lost == (0, 0))}) |
| start-up, launch to attached (median of {args.rounds}) | {startup['pyexec'] * 1000:.0f} ms | {startup['bpftrace'] * 1000:.0f} ms | {startup_ratio:.2f}× | ≤ 0.3× ({verdict(startup_ratio <= 0.3)}) |
| peak RSS | {resolved['peak_rss_mib']:.0f} MiB | {bpftrace['peak_rss_mib']:.0f} MiB | {rss_ratio:.2f}× | |

Each way pyexec reads the path, as the kernels of `make test-kernels` take them (the
fallbacks forced here with `--avoid`), against bpftrace's {bpftrace['ns_per_exec']:.0f} ns:

| key | how, and on which kernels | BPF time per exec | × bpftrace | × floor | lost |
| --- | --- | ---: | ---: | ---: | ---: |
{ways}
| the floor | one atomic add to a global at `tp_btf/sched_process_exec` (`bench/floor.py`) | {floor['ns_per_exec']:.0f} ns | {floor['ratio']:.2f}× | 1.0× | |

Reading a full map of {map_read['entries']} entries into a Python dict
(`ExecCounter.counts()`, median of {args.rounds}):

| read | time | |
| --- | ---: | --- |
| batch (`bpf_map_lookup_batch`) | {map_read['batch']:.1f} ms | ≤ 10 ms ({verdict(map_read['batch'] <= 10)}) |
| of which the C read (syscalls and copies) | {map_read['batch_in_c']:.1f} ms | the rest builds the dict |
| per key (`get_next_key` + lookup) | {map_read['per_key']:.1f} ms | batch is {read_ratio:.1f}× faster; target ≥ 8× ({verdict(read_ratio >= 8)}) |
| a scrape of `pyexec serve` (read, and every key rendered as a series) | {map_read['scrape']:.1f} ms | ≤ 50 ms ({verdict(map_read['scrape'] <= 50)}) |
| the kernel memory of the full map and the others (`ExecCounter.memory()`, as `bpftool` shows it) | {map_read['memory'] / 2**20:.1f} MiB, {map_read['memory'] / map_read['entries']:.0f} bytes an entry | |

Start-up of `pyexec show` against a counter pinned by `pyexec start` (launch to exit,
the whole read and print included), beside `run`'s launch to attached: {startup['show'] * 1000:.0f} ms
against {startup['pyexec'] * 1000:.0f} ms ({startup['show'] / startup['pyexec']:.2f}×). `show` loads nothing (no BTF to parse, no program
to verify) but reads and prints the map; both pay the interpreter and Typer's import (below).

Notes:
- bpftrace's program runs at `sys_enter_execve`, for every call, failed ones too, and
  reads the name from user memory; pyexec's runs at `sched_process_exec`, once per
  successful exec, and reads it from kernel memory.
- Start-up: a bare `python -c 'print()'` takes {startup['python'] * 1000:.0f} ms from launch to
  its output here ({startup['python'] / startup['bpftrace']:.2f}× bpftrace's start-up), and one that
  imports Typer first {startup['python+typer'] * 1000:.0f} ms ({startup['python+typer'] / startup['bpftrace']:.2f}×): the floor of a Typer CLI.
  Importing pyexec and loading the program (libbpf parses the kernel's BTF, relocates
  and the kernel verifies) come on top.
- Map read: the kernel's batch lookup costs about the same per entry whatever the
  batch size; building 16384 `str` keys and a `dict` in Python is the rest. The per-key
  read pays two syscalls an entry.
- The BPF time comes from the kernel's own statistics (`kernel.bpf_stats_enabled`,
  switched on for the run and restored after). It includes the kernel's cost of
  running any program there and timing it, the same for every tool. Each tool is
  measured alone: the first program at a tracepoint pays for bringing the kernel's
  code and data into the caches after each exec, so one that runs after another there
  would look a few hundred ns cheaper than it is on its own.
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)


def lib_version() -> str:
    from pyexec import libbpf_version

    return libbpf_version().lstrip("v")


def prepare() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it loads BPF programs and turns on BPF stats)")
    if shutil.which("bpftrace") is None:
        raise SystemExit("bench: bpftrace is missing: apt-get install bpftrace")
    if not (TRACEFS / "events").is_dir():  # bpftrace finds tracepoints through tracefs
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], check=True)
    LOADGEN.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["cc", "-O2", "-Wall", "-o", str(LOADGEN), str(ROOT / "bench" / "loadgen.c")], check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spawns", type=int, default=10000, help="per worker")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--storm-rounds", type=int, default=3, help="storms per tool")
    args = parser.parse_args()
    prepare()
    stats_before = BPF_STATS.read_text()
    BPF_STATS.write_text("1")
    try:
        with tempfile.TemporaryDirectory(prefix="pyexec-bench-") as workdir:
            binary = Path(workdir) / "true"
            shutil.copy2(shutil.which("true"), binary)
            startup = {
                "pyexec": measure_startup(pyexec_tool, args.rounds),
                "bpftrace": measure_startup(bpftrace_tool, args.rounds),
                "python": measure_interpreter_startup(args.rounds),
                "python+typer": measure_interpreter_startup(args.rounds, "import typer; print()"),
                "show": measure_show_startup(args.rounds),
            }
            storm_result = measure_storm(binary, args.workers, args.spawns, args.storm_rounds)
            map_read = measure_map_read(Path(workdir), args.rounds)
    finally:
        BPF_STATS.write_text(stats_before)
    write_report(args.output, args, startup, storm_result, map_read)


if __name__ == "__main__":
    main()
