#!/bin/sh
# tools/wolfssl-aesni.sh - build Debian's own wolfSSL source with AES-NI into a private prefix.
# SPDX-License-Identifier: ISC
# Called by `make wolfssl-aesni` (and by `make WOLFSSL=aesni` when the prefix is missing).
# Debian 12's libwolfssl is configured without AES-NI/PCLMUL, so AES-GCM runs in portable C.
# This fetches the source package of the libwolfssl-dev installed here (apt-get source),
# configures it with Debian's flags (debian/rules, dpkg-buildflags with hardening=+all) plus
# --enable-aesni --enable-intelasm, and installs it into PREFIX only: nothing system-wide.
# wolfSSL checks CPUID at run time and falls back to C on a CPU without AES-NI or AVX.
# As root it installs what it lacks (autoconf automake libtool dpkg-dev) and, if no deb-src
# line names bookworm, adds /etc/apt/sources.list.d/quickfed-deb-src.sources. Idempotent:
# a second run with the same source version finds PREFIX/.quickfed-stamp and does nothing.
# Usage: tools/wolfssl-aesni.sh PREFIX SRCDIR   (absolute PREFIX; SRCDIR is scratch space)
set -eu
prefix=$1 srcdir=$2
case $prefix in /*) ;; *) echo "wolfssl-aesni: PREFIX must be absolute: $prefix" >&2; exit 2;; esac

case $(uname -m) in
x86_64) ;;
*) echo "wolfssl-aesni: AES-NI is x86-64 only; this machine is $(uname -m)" >&2; exit 1;;
esac

# Debian's configure flags (debian/rules, override_dh_auto_configure) and ours.
debian_flags="--enable-distro --enable-pkcs11 --disable-examples --disable-silent-rules"
our_flags="--enable-aesni --enable-intelasm"

as_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "wolfssl-aesni: $1: run as root (or do it by hand, see README, Faster AES)" >&2
		exit 1
	fi
}

version=$(dpkg-query -W -f='${source:Version}' libwolfssl-dev 2>/dev/null) || {
	echo "wolfssl-aesni: libwolfssl-dev is not installed (make deps)" >&2; exit 1; }
stamp="wolfssl $version: $debian_flags $our_flags"
if [ -f "$prefix/lib/libwolfssl.so" ] && [ "$(cat "$prefix/.quickfed-stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi

missing=""
for p in autoconf automake libtool dpkg-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	as_root "missing packages:$missing"
	echo "wolfssl-aesni: installing$missing"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The source of exactly the installed version (security updates included).
if ! apt-get source --print-uris "wolfssl=$version" >/dev/null 2>&1; then
	as_root "no deb-src for wolfssl $version"
	list=/etc/apt/sources.list.d/quickfed-deb-src.sources
	if [ ! -e $list ]; then
		echo "wolfssl-aesni: adding $list (Debian 12 source packages)"
		cat >$list <<'EOF'
# Added by quickfed's `make wolfssl-aesni` (tools/wolfssl-aesni.sh): Debian 12 source
# packages, for `apt-get source wolfssl`. Remove this file to undo.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	fi
	apt-get update -qq
	apt-get source --print-uris "wolfssl=$version" >/dev/null || {
		echo "wolfssl-aesni: apt-get source cannot find wolfssl=$version" >&2; exit 1; }
fi

rm -rf "$srcdir"
mkdir -p "$srcdir"
echo "wolfssl-aesni: apt-get source wolfssl=$version (into $srcdir)"
# apt's download sandbox user cannot write into a root-owned build dir: download as ourselves.
(cd "$srcdir" && apt-get source -qq -o APT::Sandbox::User="$(id -un)" "wolfssl=$version" >/dev/null)
top=$(find "$srcdir" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' | head -n 1)
if [ -z "$top" ] || [ ! -f "$top/debian/rules" ]; then
	echo "wolfssl-aesni: no unpacked source in $srcdir" >&2; exit 1
fi
# Refuse to build if Debian changed its configure flags: ours would no longer be Debian's plus AES-NI.
for f in $debian_flags; do
	grep -q -- "$f" "$top/debian/rules" || {
		echo "wolfssl-aesni: $top/debian/rules no longer passes $f; update tools/wolfssl-aesni.sh" >&2; exit 1; }
done

log=$srcdir/build.log
echo "wolfssl-aesni: configure $debian_flags $our_flags; make (log: $log; a few minutes)"
(
	cd "$top"
	eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
	autoreconf -fi
	# shellcheck disable=SC2086
	./configure --prefix="$prefix" --libdir="$prefix/lib" --disable-dependency-tracking \
		--disable-maintainer-mode $debian_flags $our_flags
	make -j"$(nproc)"
	# wolfCrypt's known-answer tests, AES-GCM among them, on this CPU's accelerated paths.
	wolfcrypt/test/testwolfcrypt
	rm -rf "$prefix"
	make install
	# As debian/libwolfssl-dev.install does (a distro build does not install options.h).
	install -m 0644 wolfssl/options.h "$prefix/include/wolfssl/options.h"
	install -m 0644 cyassl/options.h "$prefix/include/cyassl/options.h"
) >"$log" 2>&1 || { tail -n 40 "$log"; echo "wolfssl-aesni: build failed, see $log" >&2; exit 1; }
grep -q 'WOLFSSL_AESNI' "$prefix/include/wolfssl/options.h" || {
	echo "wolfssl-aesni: $prefix/include/wolfssl/options.h lacks WOLFSSL_AESNI" >&2; exit 1; }
echo "$stamp" >"$prefix/.quickfed-stamp"
echo "wolfssl-aesni: installed into $prefix"
