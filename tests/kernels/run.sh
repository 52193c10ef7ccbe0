#!/usr/bin/env bash
# make test-kernels: boots each kernel of tests/kernels/manifest in qemu, with
# this host's file system shared (virtme-ng), and runs the kernel matrix's
# tests (pytest -m kernels) inside it against the one build users install:
# the wheel in dist/, installed by tests/installed.sh.
# qemu emulates (TCG): this host's KVM cannot boot Debian's kernels.
# Usage: run.sh [NAME...]   (all the manifest's kernels, or these)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
VIRTME_NG_VERSION=1.42
# Per kernel: boot, then the tests; a guest that takes longer is stopped.
KERNEL_TIMEOUT=${KERNEL_TIMEOUT:-1200}

# qemu; udev names the guest's virtio ports (without it its output is lost);
# kmod's depmod indexes the modules of a kernel unpacked from its package.
"$root/scripts/deps.sh" qemu-system-x86 udev kmod busybox-static
vng_venv=$build/virtme-ng
if [ ! -x "$vng_venv/bin/vng" ]; then
	python3 -m venv "$vng_venv"
	"$vng_venv/bin/pip" install -q "virtme-ng==$VIRTME_NG_VERSION"
fi
# shellcheck source=guest.sh
. "$root/tests/kernels/guest.sh"

"$root/tests/installed.sh" prepare
installed=$build/installed
wheel=$(ls -t "$root"/dist/pyexec_ebpf-*.whl | head -n1)
mapfile -t kernels < <("$root/tests/kernels/fetch.sh" "$build/kernels" "$@")
results=() failed=0
for line in "${kernels[@]}"; do
	read -r name vmlinuz <<<"$line"
	echo "kernels: Linux $name: booting $vmlinuz" >&2
	start=$SECONDS
	# Through cat: the guest's console reopens our stdout, which would truncate a file.
	set +e
	boot_guest "$KERNEL_TIMEOUT" "$vmlinuz" "$installed" \
		"CI='${CI:-}' PYEXEC_KERNEL='$name' PYEXEC_INSTALLED='$wheel' venv/bin/python -m pytest -m kernels -q -p no:cacheprovider ${PYTEST_ARGS:-}" \
		2>&1 | cat
	status=${PIPESTATUS[0]}
	set -e
	took=$((SECONDS - start))
	if [ $status -eq 0 ]; then
		results+=("Linux $name: passed in $took s")
	else
		# (Not $([ ... ] && echo ...): under set -e, its false test would end this script unheard.)
		over=''
		[ "$status" -ne 124 ] || over=", over $KERNEL_TIMEOUT s"
		results+=("Linux $name: FAILED (exit $status$over) in $took s")
		failed=$((failed + 1))
	fi
done
printf 'kernels: %s\n' "${results[@]}"
[ $failed -eq 0 ]
