#!/bin/bash
# tests/bench/tls-resume.sh - connection set-up time, fresh vs resumed TLS handshake.
# SPDX-License-Identifier: ISC
#
# Standalone (as root): tests/bench/tls-resume.sh [BUILD_DIR]  (default build/san; the
# lead hooks it into `make bench`). Uses tests/integ/lib.sh: one network namespace, sites
# A and B (Prosody + quickfed each, CA-signed certificates). Each round restarts
# quickfed A twice: once with its client session store deleted (the next connection to
# B makes a full handshake) and once with it kept (the connection resumes with B's
# ticket). The set-up time of A's s2s-out connection is read from A's own log, from
# "connected to" (TCP up) to "ready" (stream, STARTTLS, TLS, SASL EXTERNAL, restart), and
# "show tls" confirms each round resumed or not. Prints the medians and
#   tls_resume.ratio=R   (median resumed / median fresh; below 1 means resumption helps)
# On loopback there is no network delay: TLS 1.3 resumption saves no round trip, so the
# ratio shows what it does save (certificate signing/verification, bytes). Environment:
# BENCH_N rounds (default 5), QF_KEEP=1 keeps the temporary directory.
set -eu
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export QF_TOP=$TOP QF_BUILD=${1:-${QF_BUILD:-build/san}}
export PYTHONDONTWRITEBYTECODE=1
. "$TOP/tests/integ/lib.sh"
N=${BENCH_N:-5}

need_quickfed
setup_ns
sites_ab
# quieter logs: less time spent writing them
sed -i 's/^log_level debug/log_level info/' "$TMP/A-qf.conf" "$TMP/B-qf.conf"
restart_quickfed qfB

# setup_ms LOGFILE: milliseconds from the s2s-out "connected to" line to its "ready".
setup_ms() {
	awk '
	function t(s,   a) { split(substr(s, 12, 12), a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
	/ s2s-out local=a.example remote=b.example connected to / && !c { c = t($1) }
	/ s2s-out local=a.example remote=b.example ready / && c && !r { r = t($1) }
	END { if (c && r) printf "%.1f\n", r - c; else exit 1 }' "$1"
}
s2s_ready() { grep -q ' s2s-out local=a.example remote=b.example ready ' "$TMP/qfA.log"; }

# one_round MODE ROUND: restart A (MODE fresh: without its saved sessions), send one
# message, append the set-up time of the connection it opened to $TMP/MODE.ms.
one_round() {
	local ms
	if [ "$1" = fresh ]; then
		# stop, drop the store, start: restart_quickfed does stop + start
		rm -f "$TMP/A-qf/state/tls-sessions.db"
		restart_quickfed qfA
		rm -f "$TMP/A-qf/state/tls-sessions.db"
		restart_quickfed qfA
	else
		restart_quickfed qfA
	fi
	client "alice-$1-$2" alice@a.example pass-a 127.0.1.2 send bob@b.example "round $2" \
		>/dev/null || fail "alice could not send (round $2)"
	wait_for 50 s2s_ready || fail "no s2s-out connection became ready (round $2)"
	ms=$(setup_ms "$TMP/qfA.log") || fail "no set-up time in the log (round $2)"
	local res
	res=$(tls_val qfA tls.handshakes.resumed.client)
	if [ "$1" = fresh ] && [ "$res" != 0 ]; then fail "round $2: fresh run resumed"; fi
	if [ "$1" = resumed ] && [ "$res" = 0 ]; then fail "round $2: resumed run did not resume"; fi
	echo "$ms" >>"$TMP/$1.ms"
	log "round $2 $1: set-up ${ms} ms"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# warm up: the first connection ever also fills DNS caches and B's ticket keys
one_round fresh 0
: >"$TMP/fresh.ms"
: >"$TMP/resumed.ms"
for i in $(seq 1 "$N"); do
	one_round fresh "$i"
	one_round resumed "$i"
done
f=$(median <"$TMP/fresh.ms")
r=$(median <"$TMP/resumed.ms")
echo "tls_resume.rounds=$N"
echo "tls_resume.fresh_ms=$f   ($(tr '\n' ' ' <"$TMP/fresh.ms"))"
echo "tls_resume.resumed_ms=$r   ($(tr '\n' ' ' <"$TMP/resumed.ms"))"
awk -v f="$f" -v r="$r" 'BEGIN { printf "tls_resume.ratio=%.2f\n", (f > 0 ? r / f : 0) }'
exit 0
