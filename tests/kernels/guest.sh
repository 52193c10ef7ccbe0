# Sourced: boot_guest, the guest every kernel of tests/kernels/manifest is booted
# in: qemu, emulated (TCG: this host's KVM cannot boot Debian's kernels), 2 CPUs
# and 2 GiB, with this host's file system shared and this tree writable
# (virtme-ng, installed by tests/kernels/run.sh under build/).
# Usage: boot_guest SECONDS VMLINUZ DIR COMMAND   (COMMAND run in DIR, stopped after SECONDS)
boot_guest() {
	local limit=$1 vmlinuz=$2 dir=$3 command=$4 tree
	tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	# mitigations=off: emulated page-table isolation and retpolines only slow the guest down.
	PATH=$tree/build/virtme-ng/bin:$PATH timeout "$limit" vng --run "$vmlinuz" --disable-kvm --cpus 2 --memory 2G \
		--append mitigations=off --rwdir "$tree" --cwd "$dir" -- "$command" </dev/null
}
