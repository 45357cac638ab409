#!/bin/bash
# tests/bench/aesni.sh - `make bench-aesni`: quickfed's CPU per stanza with Debian's wolfSSL vs AES-NI.
# SPDX-License-Identifier: ISC
#
# Run by `make bench-aesni` as `tests/bench/aesni.sh DEBIAN_BUILD AESNI_BUILD` (build and
# build/aesni: the same quickfed linked against Debian's libwolfssl and against the one
# `make wolfssl-aesni` built from Debian's source with --enable-aesni --enable-intelasm).
# It checks which libwolfssl each binary loads, runs wolfCrypt's own benchmark for AES-GCM
# against both libraries (compiled from the fetched source, if build/wolfssl-src has it),
# then runs tests/bench/run.sh's scenario (b) (Prosody -> quickfed => quickfed -> Prosody
# over the 50 ms emulated path) once per build, size and round, alternating which build
# goes first, and reports the burst's CPU per stanza of both quickfeds together
# (schedstat, all threads) as min/median/max and the ratio of the medians.
#
# Environment: AESNI_ROUNDS (runs per build and size, default 3), AESNI_SIZES (bytes per
# <message>, default "200 2048"), BENCH_BURST (messages per burst, default 2000 here),
# AESNI_SRC (the unpacked wolfSSL source, default build/wolfssl-src/wolfssl-*).
# Needs root (run.sh's namespaces). The table is copied to build/bench/aesni.txt.

set -eu

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEB=${1:?usage: aesni.sh DEBIAN_BUILD AESNI_BUILD}
NI=${2:?usage: aesni.sh DEBIAN_BUILD AESNI_BUILD}
case $DEB in /*) ;; *) DEB=$TOP/$DEB ;; esac
case $NI in /*) ;; *) NI=$TOP/$NI ;; esac
ROUNDS=${AESNI_ROUNDS:-3}
SIZES=${AESNI_SIZES:-200 2048}
export BENCH_BURST=${BENCH_BURST:-2000}
PREFIX=$TOP/build/wolfssl-aesni

log() { printf '%s aesni: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

TMP=$(mktemp -d /tmp/qfaesni.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# wolfssl_of BIN: the libwolfssl the dynamic loader picks for BIN.
wolfssl_of() { ldd "$1" | awk '$1 ~ /^libwolfssl/ { print $3 }'; }

for b in "$DEB" "$NI"; do
	[ -x "$b/quickfed" ] || die "no $b/quickfed (make; make WOLFSSL=aesni)"
done
lib_deb=$(wolfssl_of "$DEB/quickfed")
lib_ni=$(wolfssl_of "$NI/quickfed")
case $lib_ni in "$PREFIX"/lib/*) ;; *) die "$NI/quickfed loads $lib_ni, not $PREFIX/lib's" ;; esac
case $lib_deb in "$PREFIX"/*) die "$DEB/quickfed loads $lib_deb: not Debian's" ;; esac
grep -q WOLFSSL_AESNI /usr/include/wolfssl/options.h && log "note: Debian's wolfSSL has WOLFSSL_AESNI now"
CPUFLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'aes|pclmulqdq|avx|avx2' | paste -sd' ' -)

# wolfCrypt's benchmark, compiled once against each library's headers (their structs differ).
SRC=${AESNI_SRC:-$(find "$TOP/build/wolfssl-src" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' 2>/dev/null | head -n 1)}
: >"$TMP/wc"
if [ -n "$SRC" ] && [ -f "$SRC/wolfcrypt/benchmark/benchmark.c" ]; then
	for v in debian aesni; do
		if [ "$v" = debian ]; then inc=/usr/include lib=$(dirname "$lib_deb"); else inc=$PREFIX/include lib=$PREFIX/lib; fi
		cc -O2 -I"$inc" -I"$SRC" -include wolfssl/options.h -w -o "$TMP/wcbench-$v" \
			"$SRC/wolfcrypt/benchmark/benchmark.c" -L"$lib" -Wl,-rpath,"$lib" -lwolfssl -lm -lpthread ||
			die "cannot build wolfCrypt's benchmark against $v"
		"$TMP/wcbench-$v" -aes-gcm >"$TMP/wcbench-$v.out" 2>&1 || die "wolfCrypt benchmark ($v) failed"
		awk -v v="$v" '/^AES-128-GCM-(enc|dec)/ { for (i = 1; i <= NF; i++) if ($i == "MiB/s") print v, $1, $(i - 1) }' \
			"$TMP/wcbench-$v.out" >>"$TMP/wc"
	done
else
	log "no wolfSSL source under build/wolfssl-src (make wolfssl-aesni): wolfCrypt benchmark skipped"
fi

# One run.sh (b) per build, size and round; the burst line gives msg/s and CPU per stanza.
for r in $(seq 1 "$ROUNDS"); do
	for size in $SIZES; do
		if [ $((r % 2)) = 1 ]; then order="debian aesni"; else order="aesni debian"; fi
		for v in $order; do
			if [ "$v" = debian ]; then b=$DEB; else b=$NI; fi
			out=$TMP/run-$v-$size-$r.log
			BENCH_SCENARIOS=b BENCH_N=1 BENCH_WARM=0 BENCH_STANZA_BYTES=$size \
				"$TOP/tests/bench/run.sh" "$b" >"$out" 2>&1 || { tail -n 20 "$out" >&2; die "run.sh $b failed"; }
			line=$(grep 'burst:' "$out") || die "no burst line in run.sh's output ($v, $size B)"
			log "round $r, $size B, $v:$line"
			echo "$line" | awk -v v="$v" -v s="$size" \
				'{ for (i = 1; i <= NF; i++) { if ($i == "msg/s,") r = $(i - 1); if ($i == "quickfed") q = $(i + 1) } print v, s, r, q }' \
				>>"$TMP/runs"
		done
	done
done

mkdir -p "$TOP/build/bench"
{
	echo
	echo "aesni bench: quickfed with Debian's libwolfssl vs wolfSSL built with --enable-aesni --enable-intelasm"
	echo "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); CPU flags: $CPUFLAGS"
	echo "debian: $DEB/quickfed -> $lib_deb"
	echo "aesni:  $NI/quickfed -> $lib_ni"
	python3 - "$TMP/wc" "$TMP/runs" "$ROUNDS" "$BENCH_BURST" <<'EOF'
import statistics, sys
wc, runs, rounds, burst = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
w = {}
for ln in open(wc):
    v, what, mibs = ln.split()
    w[(v, what)] = float(mibs)
if w:
    print()
    print("wolfCrypt benchmark (wolfcrypt/benchmark/benchmark.c -aes-gcm, one thread):")
    for what in ("AES-128-GCM-enc", "AES-128-GCM-dec"):
        d, n = w.get(("debian", what)), w.get(("aesni", what))
        if d and n:
            print("  %-16s debian %8.1f MiB/s   aesni %8.1f MiB/s   x%.1f" % (what, d, n, n / d))
r = {}
for ln in open(runs):
    v, size, rate, q = ln.split()
    r.setdefault((v, int(size)), []).append((float(q), float(rate)))
print()
print("quickfed CPU per stanza, both quickfeds of run.sh (b), burst of %s messages, %s rounds:" % (burst, rounds))
print("%-10s %26s %26s %12s %20s" % ("stanza", "debian us/st min/med/max", "aesni us/st min/med/max",
      "aesni/debian", "msg/s debian/aesni"))
for size in sorted({s for _, s in r}):
    d, n = r.get(("debian", size), []), r.get(("aesni", size), [])
    if not d or not n:
        continue
    fd = [q for q, _ in d]
    fn = [q for q, _ in n]
    md, mn = statistics.median(fd), statistics.median(fn)
    print("%-10s %26s %26s %12.2f %20s" % ("%d B" % size,
          "%.1f/%.1f/%.1f" % (min(fd), md, max(fd)), "%.1f/%.1f/%.1f" % (min(fn), mn, max(fn)),
          mn / md, "%.0f/%.0f" % (statistics.median([x for _, x in d]), statistics.median([x for _, x in n]))))
print()
print("us/st: CPU time of both quickfed processes (all threads, schedstat) during the burst / messages;")
print("stanza: bytes of each <message> as the sending client writes it (BENCH_STANZA_BYTES).")
EOF
} | tee "$TOP/build/bench/aesni.txt"
