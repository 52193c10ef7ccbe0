#!/usr/bin/env bash
# Fetches libbpf's upstream source tarball (Debian's .orig.tar.gz) into OUT
# and checks it against the manifest. Uses a private apt state under WORK, so
# the machine's apt configuration is left as it is.
# Usage: fetch.sh OUT WORK
set -euo pipefail
out=$1
work=$(realpath -m "$2") # apt reads relative Dir:: paths from /etc/apt
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=manifest
. "$here/manifest"

die() { echo "libbpf: $*" >&2; exit 1; }

verify() {
	local sum
	sum=$(sha256sum "$1" | cut -d' ' -f1)
	[ "$sum" = "$LIBBPF_SHA256" ] ||
		die "$1 has sha256 $sum, the manifest pins $LIBBPF_SHA256: delete it and run make again"
}

if [ -f "$out" ]; then verify "$out"; exit 0; fi
command -v apt-get >/dev/null || die "apt-get not found: put libbpf-$LIBBPF_VERSION's source tarball at $out, or build with LIBBPF=system"

# shellcheck source=../../scripts/private-apt.sh
. "$here/../../scripts/private-apt.sh"
echo "libbpf: fetching the source of libbpf $LIBBPF_VERSION from Debian's $LIBBPF_DEBIAN_SUITE" >&2
private_apt "$work" "deb-src @MIRROR@ $LIBBPF_DEBIAN_SUITE main"
mkdir -p "$work/download"
# Any Debian revision of the pinned upstream version: [epoch:]VERSION-revision.
version=$(apt-cache "${apt_opts[@]}" showsrc libbpf | sed -n 's/^Version: //p' |
	grep -E "^([0-9]+:)?${LIBBPF_VERSION//./\\.}-" | head -n1 || true)
[ -n "$version" ] || die "no source package of libbpf $LIBBPF_VERSION in $LIBBPF_DEBIAN_SUITE"
(cd "$work/download" && apt-get "${apt_opts[@]}" source --download-only "libbpf=$version" >&2) ||
	die "apt-get source libbpf=$version failed"
tarball=$(ls "$work"/download/libbpf_"$LIBBPF_VERSION".orig.tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || die "libbpf=$version came without an upstream tarball"
verify "$tarball"
mkdir -p "$(dirname "$out")"
mv "$tarball" "$out"
rm -rf "$work/download"
