#!/usr/bin/env bash
# Fetches the upstream source tarball pinned in DIR/manifest (Debian's
# .orig.tar.* of that upstream version, any Debian revision) into DIR, checks
# it against the manifest's sha256, and prints its path. Fetched once, checked
# every time. A private apt state under WORK leaves the machine's apt as it is.
# Usage: fetch-source.sh DIR WORK      (DIR: vendor/libbpf, vendor/elfutils, ...)
set -euo pipefail
dir=$1
work=$(realpath -m "$2") # apt reads relative Dir:: paths from /etc/apt
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../vendor/libbpf/manifest
. "$dir/manifest"

die() { echo "$PACKAGE: $*" >&2; exit 1; }
offline() {
	echo "to build offline, put ${PACKAGE}_$VERSION.orig.tar.* (sha256 $SHA256) in $dir${OFFLINE_HINT:+, $OFFLINE_HINT}"
}

verify() {
	local sum
	sum=$(sha256sum "$1" | cut -d' ' -f1)
	[ "$sum" = "$SHA256" ] ||
		die "$1 has sha256 $sum, $dir/manifest pins $SHA256: delete it and run make again"
}

for tarball in "$dir/${PACKAGE}_$VERSION".orig.tar.*; do
	[ -f "$tarball" ] && { verify "$tarball"; echo "$tarball"; exit 0; }
done
command -v apt-get >/dev/null || die "apt-get not found: $(offline)"

# shellcheck source=private-apt.sh
. "$here/private-apt.sh"
echo "$PACKAGE: fetching the source of $PACKAGE $VERSION from Debian's $SUITE" >&2
PRIVATE_APT_OFFLINE=$(offline) private_apt "$work" "deb-src @MIRROR@ $SUITE main"
download=$work/download-$PACKAGE
mkdir -p "$download"
# Any Debian revision of the pinned upstream version: [epoch:]VERSION-revision.
version=$(apt-cache "${apt_opts[@]}" showsrc "$PACKAGE" | sed -n 's/^Version: //p' |
	grep -E "^([0-9]+:)?${VERSION//./\\.}-" | head -n1 || true)
[ -n "$version" ] || die "no source package of $PACKAGE $VERSION in $SUITE"
(cd "$download" && apt-get "${apt_opts[@]}" source --download-only "$PACKAGE=$version" >&2) ||
	die "apt-get source $PACKAGE=$version failed"
tarball=$(ls "$download/${PACKAGE}_$VERSION".orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -n1)
[ -n "$tarball" ] || die "$PACKAGE=$version came without an upstream tarball"
verify "$tarball"
mv "$tarball" "$dir/"
rm -rf "$download"
echo "$dir/$(basename "$tarball")"
