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
from pyexec.kernel import FEATURES

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
@dataclass(frozen=True)
class Way:
    """A way pyexec counts: its options, where it runs, and the BPF time it should keep to."""

    key: str
    avoid: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    kernels: str = "the newest"
    most: float = 0.35  # × bpftrace

    @property
    def name(self) -> str:
        return "-".join(["pyexec", self.key, *(f"by-{'-'.join(self.by)}" for _ in self.by[:1]),
                         *(f"without-{feature}" for feature in self.avoid)])

    @property
    def options(self) -> str:
        return " ".join([f"--key {self.key}", *(f"--by {','.join(self.by)}" for _ in self.by[:1]),
                         *(f"--avoid {feature}" for feature in self.avoid)])


#: The default, each fallback older kernels take (forced here with --avoid), and
#: every breakdown at once.
PYEXEC_WAYS = [
    Way("resolved"),
    Way("resolved", ("iterators",), kernels="5.17 to 6.3 (6.1)", most=0.5),
    Way("resolved", ("iterators", "loop"), kernels="5.10 to 5.16", most=0.5),
    Way("invoked"),
    Way("invoked", ("name_loads",), kernels="6.4 to 6.16 (6.12)", most=0.5),
    Way("invoked", ("name_loads", "iterators", "loop"), kernels="5.10 to 5.16", most=0.5),
    Way("resolved", by=("uid", "comm", "parent", "cgroup", "path"), most=0.5),
]
FLOOR_MOST = 1.6  # --key resolved, × the floor


def pyexec_tool(way: Way = PYEXEC_WAYS[0]) -> Tool:
    return Tool(way.name, [*PYEXEC, *way.options.split()], b"pyexec: counting", signal.SIGTERM)


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
    makers = [functools.partial(pyexec_tool, way) for way in PYEXEC_WAYS] + [bpftrace_tool, floor_tool]
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
                counted = sum(e["count"] for e in json.loads(output)["counts"] if e["path"] == str(binary))
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


def measure_map_read(workdir: Path, rounds: int, entries: int = 40000) -> dict:
    """A counter pinned by pyexec start, filled with real execs of distinct hard
    links, read every way: in C, into a dict, as records, by pyexec show, and by
    bpftool map dump; and the kernel memory of a default counter."""
    with ExecCounter() as default:
        memory = default.memory()
    original = workdir / "true"
    links = []
    for i in range(entries):
        link = workdir / f"t{i:05}"
        os.link(original, link)
        links.append(str(link))
    listing = workdir / "links.txt"
    listing.write_text("\n".join(links) + "\n")
    command = Path(sys.executable).parent / "pyexec"
    pin_dir = f"/sys/fs/bpf/pyexec-bench-read-{os.getpid()}"
    subprocess.run([command, "start", "--pin-dir", pin_dir, "--max-entries", str(entries + entries // 8)], check=True,
                   stderr=subprocess.DEVNULL)
    try:
        subprocess.run([str(LOADGEN), "2", str(entries // 2), f"@{listing}"], check=True)
        counter = ExecCounter.open_pinned(pin_dir)
        with counter:
            counts = counter.counts()
            columns = counter._columns.struct  # the C read alone, into the same buffers
            timings = {"batch_in_c": median_ms(lambda: lib.pyexec_count_reader_read(counter._reader, columns), rounds)}
            timings["batch"] = median_ms(counter.counts, rounds)
            timings["records"] = median_ms(counter.records, rounds)
            timings["scrape"] = median_ms(scraper(counter, entries), rounds)
            lib.pyexec_count_reader_use_per_key_reads(counter._reader)
            timings["per_key"] = median_ms(counter.counts, rounds)
        show = [command, "show", "--pin-dir", pin_dir]
        timings["show_json"] = median_ms(lambda: subprocess.run([*show, "--format", "json"], check=True,
                                                                stdout=subprocess.DEVNULL), rounds)
        timings["show_table"] = median_ms(lambda: subprocess.run([*show, "--format", "table"], check=True,
                                                                 stdout=subprocess.DEVNULL), rounds)
        dump = ["bpftool", "map", "dump", "pinned", f"{pin_dir}/exec_count"]
        timings["bpftool"] = median_ms(lambda: subprocess.run(dump, check=True, stdout=subprocess.DEVNULL), rounds)
    finally:
        subprocess.run([command, "stop", "--pin-dir", pin_dir], check=True, stdout=subprocess.DEVNULL)
    return {"entries": len([path for path in counts if path.startswith(str(workdir))]),
            "memory": sum(memory.values()), "maps": memory, **timings}


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


def way_text(way: Way) -> str:
    """How this way reads the path: each feature it uses, or does without."""
    used = [name for name, feature in FEATURES.items()
            if "key" in feature.used_by and feature.used_by["key"] == way.key and name not in way.avoid]
    return "; ".join([*(FEATURES[name].without_it for name in way.avoid), *(FEATURES[name].with_it for name in used[:1])])


def write_report(path: Path, args, startup, storm_result, map_read) -> None:
    resolved, invoked = storm_result[PYEXEC_WAYS[0].name], storm_result[PYEXEC_WAYS[3].name]
    bpftrace, floor = storm_result["bpftrace"], storm_result["floor"]
    startup_ratio = startup["pyexec"] / startup["bpftrace"]
    rss_ratio = resolved["peak_rss_mib"] / bpftrace["peak_rss_mib"]
    read_ratio = map_read["per_key"] / map_read["batch"]
    lost = max(storm_result[way.name]["lost"] for way in PYEXEC_WAYS)
    ways = "\n".join(
        f"| `{way.options}` | {way.kernels}: {way_text(way)} | {result['ns_per_exec']:.0f} ns "
        f"| {result['ratio']:.2f}× | ≤ {way.most}× ({verdict(result['ratio'] <= way.most)}) "
        f"| {result['floor_ratio']:.1f}× | {result['lost']} |"
        for way in PYEXEC_WAYS
        for result in [storm_result[way.name]]
    )
    maps = ", ".join(f"`{name}` {size / 2**20:.2f}" for name, size in map_read["maps"].items() if size >= 2**16)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Benchmarks

Written by `make bench` ({now}) on {machine()}; pyexec with libbpf
{lib_version()}, against {bpftrace_version()} running the one-liner

    {BPFTRACE_ONE_LINER}

pyexec (the default, each fallback that older kernels take, forced with `--avoid`, and
every breakdown at once), bpftrace and the floor (a program at pyexec's hook that only
adds one to a global, atomically) each count an exec storm of their own, alone:
`bench/loadgen`, {args.workers} workers × {args.spawns} `posix_spawn`s of one binary
({storm_result['expected']} executions), {storm_result['rounds']} rounds with the tools in turn. The machine is shared and noisy, so the figures that
matter are the ratios: taken within each round, their median is shown; the times
are medians too.

| measure | pyexec | bpftrace | ratio | target |
| --- | ---: | ---: | ---: | --- |
| BPF time per exec, `--key resolved` (`run_time_ns / run_cnt`) | {resolved['ns_per_exec']:.0f} ns | {bpftrace['ns_per_exec']:.0f} ns | {resolved['ratio']:.2f}× | ≤ 0.35× ({verdict(resolved['ratio'] <= 0.35)}) |
| the same, against the floor ({floor['ns_per_exec']:.0f} ns) | | | {resolved['floor_ratio']:.2f}× the floor | ≤ {FLOOR_MOST}× ({verdict(resolved['floor_ratio'] <= FLOOR_MOST)}) |
| BPF time per exec, `--key invoked` | {invoked['ns_per_exec']:.0f} ns | {bpftrace['ns_per_exec']:.0f} ns | {invoked['ratio']:.2f}× | ≤ 0.35× ({verdict(invoked['ratio'] <= 0.35)}) |
| executions lost in a storm, at worst (every way below) | {lost} | {bpftrace['lost']} | | pyexec 0 ({verdict(lost == 0)}) |
| start-up, launch to attached (median of {args.rounds}) | {startup['pyexec'] * 1000:.0f} ms | {startup['bpftrace'] * 1000:.0f} ms | {startup_ratio:.2f}× | ≤ 0.3× ({verdict(startup_ratio <= 0.3)}) |
| peak RSS | {resolved['peak_rss_mib']:.0f} MiB | {bpftrace['peak_rss_mib']:.0f} MiB | {rss_ratio:.2f}× | |
| kernel memory of a default counter (16384 binaries; `ExecCounter.memory()`, as `bpftool` shows it) | {map_read['memory'] / 2**20:.1f} MiB | | | ≤ 8 MB ({verdict(map_read['memory'] <= 8 * 2**20)}) |

The kernel memory by map, in MiB: {maps}.

Each way pyexec counts, against bpftrace's {bpftrace['ns_per_exec']:.0f} ns and the floor's {floor['ns_per_exec']:.0f} ns:

| options | kernels, and how | BPF time per exec | × bpftrace | target | × floor | lost |
| --- | --- | ---: | ---: | --- | ---: | ---: |
{ways}
| the floor | one atomic add to a global at `tp_btf/sched_process_exec` (`bench/floor.py`) | {floor['ns_per_exec']:.0f} ns | {floor['ratio']:.2f}× | | 1.0× | |

Reading a counter pinned by `pyexec start` with {map_read['entries']} distinct binaries counted (median of {args.rounds}):

| read | time | target |
| --- | ---: | --- |
| `counts()` into a dict (`bpf_map_lookup_batch`, counts and paths joined in C) | {map_read['batch']:.1f} ms | |
| of which the C read (syscalls, copies and the join) | {map_read['batch_in_c']:.1f} ms | the dict ≤ 1.5× it ({verdict(map_read['batch'] <= 1.5 * map_read['batch_in_c'])}) |
| `records()` | {map_read['records']:.1f} ms | ≤ 2× `counts()` ({verdict(map_read['records'] <= 2 * map_read['batch'])}) |
| per key (`get_next_key` + lookup) | {map_read['per_key']:.1f} ms | batch is {read_ratio:.1f}× faster |
| a scrape of `pyexec serve` (read, and every key rendered as a series) | {map_read['scrape']:.1f} ms | |
| `pyexec show --format json`, launch to exit | {map_read['show_json']:.0f} ms | ≤ `bpftool` ({verdict(map_read['show_json'] <= map_read['bpftool'])}) |
| `pyexec show` (the table), launch to exit | {map_read['show_table']:.0f} ms | ≤ `bpftool` ({verdict(map_read['show_table'] <= map_read['bpftool'])}) |
| `bpftool map dump` of its `exec_count` (ids, no paths) | {map_read['bpftool']:.0f} ms | |

Start-up of `pyexec show` against a counter pinned by `pyexec start` (launch to exit,
the whole read and print included), beside `run`'s launch to attached: {startup['show'] * 1000:.0f} ms
against {startup['pyexec'] * 1000:.0f} ms ({startup['show'] / startup['pyexec']:.2f}×). `show` loads nothing (no BTF to parse, no program
to verify) but reads and prints the map; both pay the interpreter and Typer's import (below).

Notes:
- bpftrace's program runs at `sys_enter_execve`, for every call, failed ones too, and
  reads the name from user memory; pyexec's runs at `sched_process_exec`, once per
  successful exec, and reads it from kernel memory.
- `--key resolved` with the path alone (the default) counts a file this CPU executed
  before in its slot of the file cache: a few loads, no walk, no hash. The storm runs
  one binary, so after the first execution on each CPU every one takes that way. With
  more fields, the slot gives the path's id and the key is looked up in `exec_count`;
  `--key invoked` reads the name at each execution and counts it in its CPU's slot,
  where a name of up to 56 bytes (the storm's) is kept and compared, unhashed.
- Start-up: a bare `python -c 'print()'` takes {startup['python'] * 1000:.0f} ms from launch to
  its output here ({startup['python'] / startup['bpftrace']:.2f}× bpftrace's start-up), and one that
  imports Typer first {startup['python+typer'] * 1000:.0f} ms ({startup['python+typer'] / startup['bpftrace']:.2f}×): the floor of a Typer CLI.
  Importing pyexec and loading the program (libbpf parses the kernel's BTF, relocates
  and the kernel verifies) come on top.
- The BPF time comes from the kernel's own statistics (`kernel.bpf_stats_enabled`,
  switched on for the run and restored after). It includes the kernel's cost of
  running any program there and timing it, the same for every tool. Each tool is
  measured alone: the first program at a tracepoint pays for bringing the kernel's
  code and data into the caches after each exec, so one that runs after another there
  would look a few hundred ns cheaper than it is on its own.
- The load time in each kernel of the matrix, against the program before the small
  key: [load-times.md](load-times.md) (`make load-times`, which boots each kernel).
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
