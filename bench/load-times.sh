#!/usr/bin/env bash
# make load-times: the time to load and attach the counter (bench/load_time.py)
# in each kernel of tests/kernels/manifest, booted in qemu as the kernel matrix
# boots them, for this tree and for a baseline commit (built in a worktree
# under build/), side by side; writes docs/load-times.md.
# Usage: load-times.sh BASELINE [NAME...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
baseline=$(git -C "$root" rev-parse --short "$1")
shift
baseline_tree=$build/baseline-$baseline
[ -x "$build/virtme-ng/bin/vng" ] || { echo "load-times: no virtme-ng: make test-kernels installs it" >&2; exit 1; }
# shellcheck source=../tests/kernels/guest.sh
. "$root/tests/kernels/guest.sh"
if [ ! -x "$baseline_tree/.venv/bin/python" ]; then
	git -C "$root" worktree add -f "$baseline_tree" "$baseline" >/dev/null
	make -C "$baseline_tree" build >/dev/null
fi
rows=()
mapfile -t kernels < <("$root/tests/kernels/fetch.sh" "$build/kernels" "$@")
for line in "${kernels[@]}"; do
	read -r name vmlinuz <<<"$line"
	echo "load-times: Linux $name" >&2
	# The guest shares this host's file system: each tree's own venv runs there.
	out=$(boot_guest 900 "$vmlinuz" "$root" \
		"$baseline_tree/.venv/bin/python bench/load_time.py && $root/.venv/bin/python bench/load_time.py" \
		2>/dev/null | grep '^{' | tr -d '\r')
	read -r before after <<<"$(echo "$out" | tr '\n' ' ')"
	rows+=("$name $before $after")
done
printf '%s\n' "${rows[@]}" | "$root/.venv/bin/python" -c '
import json, sys
baseline, lines = sys.argv[1], sys.stdin.read().split("\n")
print("# Load time in each kernel\n")
print("Written by `make load-times`: the time from `ExecCounter()` to counting (the program loaded,")
print("verified and attached), the median of 5, in each kernel of the matrix booted in qemu (TCG:")
print("emulated, so several times slower than on hardware; the ratios are what compare), for this")
print(f"tree and for {baseline} (BASELINE; by default the last commit before the small key).\n")
print("| Linux | key | before | now | now / before | target |")
print("| --- | --- | ---: | ---: | ---: | --- |")
for line in filter(None, lines):
    name, before, after = line.split(" ", 2)
    before = json.loads(before)
    after = json.loads(after)
    for key in before:
        ratio = after[key] / before[key]
        verdict = "met" if ratio <= 1.5 else "**missed**"
        print(f"| {name} | {key} | {before[key]:.2f} s | {after[key]:.2f} s | {ratio:.2f}x | up by at most half ({verdict}) |")
' "$baseline" > "$root/docs/load-times.md"
cat "$root/docs/load-times.md"
