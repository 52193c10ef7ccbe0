#!/usr/bin/env bash
# Fetches the kernels pinned in tests/kernels/manifest from Debian's archive
# and unpacks each into OUT/NAME, once: a kernel already unpacked is kept.
# Prints NAME VMLINUZ for each.
# Usage: fetch.sh OUT [NAME...]    all the manifest's kernels, or these
#        fetch.sh --newest NAME    the manifest line of NAME's newest version
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/private-apt.sh
. "$here/../../scripts/private-apt.sh"

die() { echo "kernels: $*" >&2; exit 1; }

# The manifest line of NAME: "NAME SUITE VERSION PACKAGE...".
manifest_line() {
	grep -E "^$(sed 's/\./\\./g' <<<"$1") " "$here/manifest" || die "no kernel $1 in $here/manifest"
}

# A private apt state for SUITE (security suites are on their own mirror).
suite_apt() {
	local work=$1 suite=$2 base='@MIRROR@'
	[[ $suite == *-security ]] && base='@SECURITY@'
	private_apt "$work/apt/$suite" "deb $base $suite main"
}

# The newest NAME in its suite: the unsigned image, or (from 7.x) the binary
# and modules packages.
newest() {
	local name=$1 suite work package version best_version=''
	read -r _ suite _ <<<"$(manifest_line "$name")"
	work=$(realpath -m "${OUT:-build/kernels}")
	suite_apt "$work" "$suite"
	while read -r package; do
		version=$(apt-cache "${apt_opts[@]}" show "$package" | sed -n 's/^Version: //p' | head -n1)
		if [ -z "$best_version" ] || dpkg --compare-versions "$version" gt "$best_version"; then
			best_version=$version best=$package
		fi
	done < <(apt-cache "${apt_opts[@]}" search --names-only \
		"^linux-(image|binary)-${name//./\\.}[.-][0-9].*-amd64(-unsigned)?\$" | cut -d' ' -f1 |
		grep -v -e '-cloud-' -e '-rt-' -e '^linux-image-.*[0-9]-amd64$')
	[ -n "$best_version" ] || die "no kernel $name in $suite"
	case $best in
	linux-binary-*) echo "$name $suite $best_version $best ${best/linux-binary-/linux-modules-}" ;;
	*) echo "$name $suite $best_version $best" ;;
	esac
}

if [ "${1:-}" = --newest ]; then
	newest "$2"
	exit 0
fi
out=$(realpath -m "$1")
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(grep -vE '^(#|$)' "$here/manifest" | cut -d' ' -f1)
for name in "${names[@]}"; do
	read -r _ suite version packages <<<"$(manifest_line "$name")"
	dir=$out/$name
	if [ ! -f "$dir/.unpacked-$version" ]; then
		echo "kernels: fetching Linux $name ($version) from Debian's $suite" >&2
		suite_apt "$out" "$suite"
		rm -rf "$dir" "$out/download" && mkdir -p "$dir" "$out/download"
		pins=()
		for package in $packages; do pins+=("$package=$version"); done
		(cd "$out/download" && apt-get "${apt_opts[@]}" download "${pins[@]}" >&2) ||
			die "Debian's $suite no longer has ${pins[*]}: pin the newest with: $0 --newest $name"
		for deb in "$out"/download/*.deb; do dpkg-deb -x "$deb" "$dir"; done
		rm -rf "$out/download"
		touch "$dir/.unpacked-$version"
	fi
	vmlinuz=$(find "$dir" -name 'vmlinuz*' -type f | head -n1)
	[ -n "$vmlinuz" ] || die "no vmlinuz in ${packages}"
	echo "$name $vmlinuz"
done
