#!/usr/bin/env bash
# The test suite against what users install: dist's wheel (make wheel) in a
# fresh venv at build/installed, beside a copy of the tests, so that nothing
# is imported from the source tree. The kernel matrix's guests use it too.
# Usage: installed.sh prepare          (re)installs it when the wheel is newer
#        installed.sh test [PYTEST...] prepares, then runs the suite there
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/build/installed
wheel=$(ls -t "$root"/dist/pyexec_ebpf-*.whl 2>/dev/null | head -n1 || true)
[ -n "$wheel" ] || { echo "installed: no wheel in $root/dist: run make wheel" >&2; exit 1; }

if [ ! -e "$dir/.installed" ] || [ "$wheel" -nt "$dir/.installed" ] || [ -n "$(find "$root/tests" "$root/contrib" "$root/scripts" -newer "$dir/.installed" -print -quit)" ]; then
	rm -rf "$dir" && mkdir -p "$dir/build/tests"
	python3 -m venv "$dir/venv"
	"$dir/venv/bin/pip" install -q "$wheel" "pytest>=8" pyyaml
	# The tests, the README, contrib/ and scripts/ they check, and pytest's settings (pyproject.toml), not the package.
	cp -r "$root/tests" "$root/contrib" "$root/scripts" "$root/README.md" "$root/pyproject.toml" "$dir/"
	find "$dir/tests" -name __pycache__ -prune -exec rm -rf {} +
	# The static sleeper the tests exec, built by make on the host (no compiler is needed here).
	cp "$root/build/tests/sleeper" "$dir/build/tests/"
	touch "$dir/.installed"
fi
[ "${1:-}" = test ] || exit 0
shift
cd "$dir"
exec env PYEXEC_INSTALLED="$wheel" venv/bin/python -m pytest -p no:cacheprovider "$@"
