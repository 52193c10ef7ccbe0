#!/usr/bin/env bash
# Installs the Debian packages named as arguments that are not installed yet;
# silent when all are there. With --check, only says which are missing (for a
# build that pip runs, which should not install system packages on its own).
# Usage: deps.sh [--check] PACKAGE...
set -euo pipefail
check=false
[ "${1:-}" = --check ] && { check=true; shift; }
command -v dpkg-query >/dev/null || exit 0 # not Debian: the build says what it lacks
missing=()
for package in "$@"; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if $check || [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update once, then retry.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
