# Sourced by the scripts that fetch from Debian's archive (libbpf's source,
# the test kernels): apt and apt-cache with a state of their own under a
# work directory, so the machine's apt configuration is left as it is.
#
# private_apt WORK LINE...  writes WORK/sources.list from the LINEs (with
#                           @MIRROR@ and @SECURITY@ for this machine's Debian
#                           mirrors), updates, and sets the array apt_opts.
#                           Where the archive cannot be reached it stops with
#                           a line that ends with $PRIVATE_APT_OFFLINE, if set.

# This machine's Debian mirror and security mirror, from its apt sources.
debian_mirrors() {
	local uris
	uris=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
		/etc/apt/sources.list.d/*.list | grep -v '\[.*\]' | grep -oE 'https?://[^ ]*/debian(-security)?/?' || true)
	mirror=$(grep -v -e '-security' <<<"$uris" | head -n1 || true)
	mirror=${mirror:-${DEBIAN_MIRROR:-}}
	[ -n "$mirror" ] || { echo "$0: no Debian mirror found in /etc/apt/sources*: set DEBIAN_MIRROR=http://deb.debian.org/debian" >&2; exit 1; }
	security=$(grep -e '-security' <<<"$uris" | head -n1 || true)
	security=${security:-${mirror%/}-security}
}

private_apt() {
	local work=$1 line
	shift
	debian_mirrors
	mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
	: >"$work/sources.list"
	for line in "$@"; do
		line=${line//@MIRROR@/$mirror}
		echo "${line//@SECURITY@/$security}" >>"$work/sources.list"
	done
	apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
		-o Debug::NoLocking=1 -o Acquire::Languages=none -o APT::Sandbox::User="$(id -un)" -qq)
	# Offline, apt-get update warns and may still succeed: what tells is a list fetched.
	if ! apt-get "${apt_opts[@]}" update >&2 ||
		{ ! compgen -G "$work/lists/*_Sources*" >/dev/null && ! compgen -G "$work/lists/*_Packages*" >/dev/null; }; then
		echo "$0: cannot reach Debian's archive ($(grep -oE 'https?://[^ ]+ [^ ]+' "$work/sources.list" |
			tr '\n' ';' | sed 's/;$//'))${PRIVATE_APT_OFFLINE:+: $PRIVATE_APT_OFFLINE}" >&2
		exit 1
	fi
}
