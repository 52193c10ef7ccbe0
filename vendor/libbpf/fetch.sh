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

# The Debian mirror this machine already uses, for a deb-src entry of our own.
mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list |
	grep -v -e security -e '\[.*\]' | grep -oE 'https?://[^ ]*/debian/?' | head -n1 || true)
mirror=${mirror:-${LIBBPF_MIRROR:-}}
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources*: set LIBBPF_MIRROR=http://deb.debian.org/debian"

mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/download"
echo "deb-src $mirror $LIBBPF_DEBIAN_SUITE main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
	-o APT::Sandbox::User="$(id -un)" -qq)
echo "libbpf: fetching the source of libbpf $LIBBPF_VERSION from $mirror ($LIBBPF_DEBIAN_SUITE)" >&2
apt-get "${apt_opts[@]}" update >&2 || die "apt-get update of $mirror $LIBBPF_DEBIAN_SUITE failed"
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
