#!/usr/bin/env bash
# make daemonset: DIST/daemonset.yaml, which installs the wheel in DIST and the
# packages it needs, each pinned by version and sha256, for the Python of the
# DaemonSet's image (read from its image: line).
# Usage: daemonset.sh DIST
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dist=$(realpath "$1")
template=$root/contrib/kubernetes/daemonset.yaml
downloads=$root/build/daemonset
venv=$root/build/wheel/venv # make wheel's tools, whose pip is new enough for --platform
wheel=$(ls -t "$dist"/pyexec_ebpf-*-manylinux_*_x86_64.whl | head -n1)
python=$(sed -n 's/^ *image: python:\([0-9]*\.[0-9]*\)-.*/\1/p' "$template")
[ -n "$python" ] || { echo "daemonset: no python:X.Y image in $template" >&2; exit 1; }
rm -rf "$downloads" && mkdir -p "$downloads"
"$venv/bin/pip" download -q --dest "$downloads" --only-binary=:all: --implementation cp \
	--python-version "$python" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
	--platform manylinux_2_17_x86_64 --platform linux_x86_64 "$wheel"
"$venv/bin/python" "$root/scripts/daemonset.py" "$template" "$downloads" "$dist/daemonset.yaml"
echo "daemonset: $dist/daemonset.yaml pins $(grep -c -- '--hash=sha256:' "$dist/daemonset.yaml") packages, $(basename "$wheel") among them" >&2
