#!/bin/bash
# tests/bench/memory.sh - `make bench-memory`: quickfed's RSS per hostile connection, pending verification, route.
# SPDX-License-Identifier: ISC
#
# Run by `make bench-memory` and `make bench` as `tests/bench/memory.sh BUILD_DIR` (as root;
# BUILD_DIR holds the optimized quickfed and quickfedctl). It sources tests/integ/lib.sh for
# its helpers: one private network namespace, nsd on 127.0.0.53 (a.example, and a wildcard
# *.hang.example A 127.0.4.1 where tests/integ/tarpit.py accepts and never answers), a
# throw-away CA, Prosody A (127.0.1.2, user alice) behind quickfed A (127.0.1.1) with
# timeouts { connect, auth, setup } and resolver { timeout } long enough that nothing
# times out during a measurement. Each scenario starts a fresh quickfed, warms it up with
# one round of the same work, takes the baseline (VmRSS of /proc/PID/status), applies the
# load, waits by polling `show stats` (and the tarpit's accept count) until the load is
# in place, and takes the loaded VmRSS once it has settled:
#   m1  MEM_M1_CONNS (40) raw s2s streams from evil.example (tests/bench/s2sswarm.py:
#       STARTTLS, no certificate, no SASL) each pipelining a db:result for d<i>.hang.example
#       and flooding behind it until quickfed holds its limits { held } budget and pauses.
#   m2  MEM_M2_STREAMS (100) such streams with MEM_M2_RESULTS (8) db:results each for
#       d<i>-<k>.hang.example (all distinct), limits { verifications 1000 }; then all are
#       closed and verify.pending / verify.sessions / verify connections must reach 0.
#   m3  alice writes to MEM_M3_ROUTES (300) domains without DNS (nx<i>.example) and
#       receives every remote-server-not-found bounce (tests/bench/nxbounce.py).
# The table goes to stdout and BUILD_DIR/bench/memory.txt; the details (smaps_rollup, show
# stats, show peers counted) to BUILD_DIR/bench/memory-details.txt. Every process started
# is stopped by PID and the namespace is deleted (lib.sh cleanup). Unlike an integration
# test a bench that cannot run is an error (exit 1), not a skip; a missed target is
# reported in the table and is not an error.
#
# Environment: MEM_SCENARIOS ("m1 m2 m3"), the counts above, MEM_MALLOC_STATS=1 (glibc's
# malloc_stats() at each point, through gdb: live heap vs heap size), MEM_HEAPTRACK=DIR
# (heaptrack attached after each baseline; its RSS figures are not the bench's), QF_KEEP=1
# (keep the temporary directory).

set -eu

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
export QF_BUILD=$BUILD
export PYTHONDONTWRITEBYTECODE=1	# no __pycache__ in the source tree
# shellcheck source=tests/integ/lib.sh
. "$TOP/tests/integ/lib.sh"

# A bench that cannot run is an error for `make bench`, not a skip (exit 77).
skip() {
	echo "memory bench: cannot run: $*" >&2
	exit 1
}

N1=${MEM_M1_CONNS:-40}
N2=${MEM_M2_STREAMS:-100}
K2=${MEM_M2_RESULTS:-8}
N3=${MEM_M3_ROUTES:-300}
SCENARIOS=${MEM_SCENARIOS:-m1 m2 m3}
FLOOD_N=2000			# m1: messages each hostile stream tries to write ...
FLOOD_SIZE=1000			# ... of this many padding bytes (2 MB, far over the held budget)
SWARM=$TOP/tests/bench/s2sswarm.py
ROWS=""				# table rows, one "label|base|peak|unit|count|target_kib|target_kind" per line
NOTES=""			# lines printed under the table
DETAILS=""			# $TMP/details.txt once setup_ns ran

# ---------------------------------------------------------------- measuring

# rss PID: VmRSS of PID in KiB.
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# rss_settled PID: VmRSS once two readings 0.5 s apart agree (at most 10 readings).
rss_settled() {
	local prev cur
	prev=$(rss "$1")
	for _ in $(seq 1 10); do
		sleep 0.5
		cur=$(rss "$1")
		[ "$cur" = "$prev" ] && break
		prev=$cur
	done
	echo "$cur"
}

# detail TITLE: append TITLE, smaps_rollup and show stats of the running quickfed; with
# MEM_MALLOC_STATS=1 also glibc's malloc_stats() (gdb calls it inside quickfed, which
# prints it on its stderr, the log): "in use" is live heap, "system" what the heap holds.
detail() {
	local qlog=$TMP/$QF.log n
	MS_USE="" MS_SYS=""
	{
		echo "==== $1"
		grep -E '^(Rss|Pss_Anon|Pss_File|Anonymous):' "/proc/$QF_PID/smaps_rollup" || true
		grep -E '^(VmRSS|VmHWM|RssAnon|RssFile):' "/proc/$QF_PID/status" || true
		qfctl "$QF" show stats | grep -E '^(conns|routes|stanzas|verify|held|reads|bounces)' || true
		if [ "${MEM_MALLOC_STATS:-0}" = 1 ]; then
			n=$(wc -l <"$qlog")
			gdb -p "$QF_PID" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 ||
				echo "(gdb could not call malloc_stats)"
			tail -n +"$((n + 1))" "$qlog" | grep -E 'Arena|bytes|Total|mmap' >"$TMP/mstats" || true
			cat "$TMP/mstats"
			MS_SYS=$(awk '/^Total/ { t = 1 } t && /system bytes/ { print $NF; exit }' "$TMP/mstats")
			MS_USE=$(awk '/^Total/ { t = 1 } t && /in use bytes/ { print $NF; exit }' "$TMP/mstats")
		fi
	} >>"$DETAILS"
}

# malloc_note SCEN N UNIT: with MEM_MALLOC_STATS=1, a note comparing malloc_stats() of the
# last detail with the baseline's (B_USE, B_SYS): live heap growth, and what the heap
# holds beyond it (freed but kept by glibc, and counted in RSS when it was touched).
malloc_note() {
	[ -n "$MS_USE" ] && [ -n "${B_USE:-}" ] || return 0
	note "$(awk -v s="$1" -v n="$2" -v u="$3" -v bu="$B_USE" -v bs="$B_SYS" -v lu="$MS_USE" \
		-v ls="$MS_SYS" 'BEGIN {
		printf "(%s) malloc_stats: in use +%d KiB (%.1f KiB/%s live), heap size +%d KiB", s,
		    (lu - bu) / 1024, (lu - bu) / 1024 / n, u, (ls - bs) / 1024 }')"
}

# profile: with MEM_HEAPTRACK=DIR, attach heaptrack to quickfed now (after a baseline); it
# records every allocation from here until quickfed exits, to DIR/heaptrack.qfSCEN.*.zst
# (heaptrack_print --print-peaks ...). For finding what dominates a growth: the RSS
# figures of a profiled run include heaptrack's own memory and are not the bench's.
profile() {
	[ -n "${MEM_HEAPTRACK:-}" ] || return 0
	mkdir -p "$MEM_HEAPTRACK"
	heaptrack -o "$MEM_HEAPTRACK/heaptrack.$QF" -p "$QF_PID" >"$TMP/heaptrack-$QF.log" 2>&1 &
	track_pid $!
	HEAPTRACK_PID=$!
	wait_for 150 grep -q '^injection finished' "$TMP/heaptrack-$QF.log" ||
		fail "heaptrack did not attach: $(tail -n 3 "$TMP/heaptrack-$QF.log")"
}

# peers_summary: the connections of `show peers`, counted by direction, side, purpose,
# stream state and TLS (for the details file, after a measurement: a long answer
# grows quickfed's status buffer).
peers_summary() {
	qfctl "$QF" show peers | awk -F'=' '
		$1 ~ /^peer\.[0-9]+\.(direction|side|purpose|state|tls)$/ {
			split($1, k, "."); v[k[2]] = v[k[2]] " " k[3] "=" $2; next }
		END { for (id in v) n[v[id]]++; for (s in n) printf "  %5d %s\n", n[s], s }' | sort -rn
}

stat_of() { qf_stat "$QF" "$1"; }
stat_is() { [ "$(stat_of "$1")" = "$2" ]; }
stat_ge() { [ "$(stat_of "$1")" -ge "$2" ]; }
verify_conns() { qfctl "$QF" show peers | grep -c '\.purpose=verify$' || true; }
verify_conns_are() { [ "$(verify_conns)" = "$1" ]; }
# tarpit_accepted: connections the tarpit accepted so far (quickfed's verify connections).
tarpit_accepted() { grep -c '^accepted ' "$TMP/tarpit.log" || true; }
tarpit_accepted_ge() { [ "$(tarpit_accepted)" -ge "$1" ]; }

# row LABEL BASE PEAK UNIT COUNT TARGET_KIB KIND: a table row; KIND is "per" (the target
# bounds growth per unit) or "total" (it bounds the whole growth).
row() { ROWS="$ROWS$1|$2|$3|$4|$5|$6|$7
"; }
note() { NOTES="$NOTES$*
"; }

# ---------------------------------------------------------------- processes

# qf_up NAME [LIMITS_LINES]: a fresh quickfed A (its own state_dir and socket) with long
# connect/auth/setup timeouts, so nothing times out while a measurement is taken, and no
# per-address limit (every hostile stream comes from 127.0.0.1); LIMITS_LINES go into its
# limits { } block.
qf_up() {
	local name=$1 conf=$TMP/$1-qf.conf
	write_quickfed_conf "$conf" "$name" a.example A 127.0.1.1 127.0.1.2 "limits {
	connections_per_address 100000
${2:-}
}"
	sed -i 's/^log_level debug$/log_level info/' "$conf"
	conf_set "$conf" connect 120s
	conf_set "$conf" auth 120s
	conf_set "$conf" setup 120s
	conf_set "$conf" timeout 60s	# resolver { timeout }: 800 lookups at once
	start_quickfed "qf$name" "$conf"
	QF=qf$name
	eval "QF_PID=\$QF_PID_$QF"
	[ "$(cat "/proc/$QF_PID/comm")" = quickfed ] || fail "pid $QF_PID is not quickfed"
}

qf_down() {
	kill_pid "$QF_PID"
	if [ -n "${HEAPTRACK_PID:-}" ]; then
		wait "$HEAPTRACK_PID" 2>/dev/null || true
		HEAPTRACK_PID=""
	fi
}

# swarm NAME ARGS...: tests/bench/s2sswarm.py from evil.example in the background; its PID
# in SWARM_PID (stopped with kill_pid, which closes all its streams at once).
swarm() {
	local name=$1
	shift
	bg "swarm-$name" "$PYTHON" "$SWARM" --host 127.0.1.1 --from evil.example \
		--to a.example --sasl none --wait 300 "$@"
	SWARM_PID=$LAST_PID
}

# hostile NAME N DOMAIN_PATTERN RESULTS [FLOOD]: N streams with RESULTS db:results each
# (domains from the pattern, {i} = 1..N, {k} = 1..RESULTS); FLOOD=1 floods alice behind them.
hostile() {
	local name=$1 n=$2 pat=$3 k=$4 fl=${5:-0} extra=""
	[ "$fl" = 1 ] && extra="--flood $FLOOD_N --flood-size $FLOOD_SIZE --flood-to alice@a.example"
	# shellcheck disable=SC2086
	swarm "$name" --streams "$n" --results "$k" --domain "$pat" $extra
}

# wait_closed WHAT: after a swarm ended, wait until nothing is pending any more.
wait_closed() {
	wait_for 150 stat_is verify.pending 0 || fail "$1: verify.pending=$(stat_of verify.pending)"
	wait_for 50 stat_is verify.sessions 0 || fail "$1: verify.sessions=$(stat_of verify.sessions)"
	wait_for 50 verify_conns_are 0 || fail "$1: verify connections left: $(verify_conns)"
}

# ---------------------------------------------------------------- scenarios

# m1: hostile connections, each holding the most quickfed lets it hold. The warm-up
# stream stays open through the measurement: a stream paused with its input buffer full
# does not notice its peer leaving (no read watcher) until a verdict or timeouts { auth },
# so closing it would leave its memory in the baseline anyway, just less predictably.
scen_m1() {
	local base peak paused0 acc0 t0 warm_pid
	log "m1: $N1 hostile connections"
	qf_up m1
	acc0=$(tarpit_accepted)
	hostile m1-warm 1 'warm{i}.hang.example' 1 1
	warm_pid=$SWARM_PID
	wait_for 150 stat_ge held.paused 1 || fail "m1 warm-up: the stream was not paused"
	wait_for 50 stat_is verify.pending 1 || fail "m1 warm-up: no pending verification"
	wait_for 50 tarpit_accepted_ge $((acc0 + 1)) || fail "m1 warm-up: no verify connection"
	base=$(rss_settled "$QF_PID")
	detail "m1 baseline (the warm-up stream open and paused)"
	B_USE=$MS_USE B_SYS=$MS_SYS
	profile
	paused0=$(stat_of held.paused)
	acc0=$(tarpit_accepted)
	t0=$SECONDS
	hostile m1 "$N1" 'd{i}.hang.example' 1 1
	wait_for 300 stat_ge held.paused $((paused0 + N1)) ||
		fail "m1: only $(($(stat_of held.paused) - paused0)) of $N1 streams paused"
	wait_for 100 stat_is verify.pending $((N1 + 1)) ||
		fail "m1: verify.pending=$(stat_of verify.pending), expected $((N1 + 1))"
	wait_for 100 tarpit_accepted_ge $((acc0 + N1)) ||
		fail "m1: $(($(tarpit_accepted) - acc0)) of $N1 verify connections reached the tarpit"
	peak=$(rss_settled "$QF_PID")
	detail "m1 loaded"
	{ echo "m1 loaded: show peers"; peers_summary; } >>"$DETAILS"
	log "m1: loaded in $((SECONDS - t0)) s, RSS $base -> $peak KiB"
	row "(m1) $N1 hostile connections, held max" "$base" "$peak" conn "$N1" 1024 per
	malloc_note m1 "$N1" conn
	note "(m1) held.paused +$(($(stat_of held.paused) - paused0)), verify.pending" \
		"$(stat_of verify.pending) (the warm-up's included), conns.open=$(stat_of conns.open);"
	note "     stanzas held: $(stat_of stanzas.alive), $(stat_of stanzas.alive_bytes) bytes" \
		"(limits { held } 128k per stream)"
	kill_pid "$SWARM_PID"
	kill_pid "$warm_pid"
	qf_down
}

# m2: pending verifications, then all their askers gone.
scen_m2() {
	local base peak acc0 t0 after pend sess vc n=$((N2 * K2))
	log "m2: $N2 streams x $K2 pending verifications"
	qf_up m2 "	verifications 1000"
	acc0=$(tarpit_accepted)
	hostile m2-warm 1 'warm{i}-{k}.hang.example' "$K2"
	wait_for 150 stat_is verify.pending "$K2" || fail "m2 warm-up: verify.pending=$(stat_of verify.pending)"
	wait_for 100 tarpit_accepted_ge $((acc0 + K2)) || fail "m2 warm-up: verify connections missing"
	kill_pid "$SWARM_PID"
	wait_closed "m2 warm-up"
	base=$(rss_settled "$QF_PID")
	detail "m2 baseline"
	B_USE=$MS_USE B_SYS=$MS_SYS
	profile
	acc0=$(tarpit_accepted)
	t0=$SECONDS
	hostile m2 "$N2" 'd{i}-{k}.hang.example' "$K2"
	wait_for 300 stat_is verify.pending "$n" ||
		fail "m2: verify.pending=$(stat_of verify.pending), expected $n"
	wait_for 400 tarpit_accepted_ge $((acc0 + n)) ||
		fail "m2: $(($(tarpit_accepted) - acc0)) of $n verify connections reached the tarpit"
	peak=$(rss_settled "$QF_PID")
	detail "m2 loaded"
	{ echo "m2 loaded: show peers"; peers_summary; } >>"$DETAILS"
	log "m2: loaded in $((SECONDS - t0)) s, RSS $base -> $peak KiB"
	row "(m2) $n pending verifications" "$base" "$peak" verif "$n" 32 per
	malloc_note m2 "$n" verif
	note "(m2) loaded: verify.pending=$(stat_of verify.pending) verify.sessions=$(stat_of verify.sessions)" \
		"verify connections=$(verify_conns) conns.open=$(stat_of conns.open)"
	# all askers go at once: every job, session and verify connection must end
	kill_pid "$SWARM_PID"
	t0=$SECONDS
	for _ in $(seq 1 60); do
		pend=$(stat_of verify.pending)
		sess=$(stat_of verify.sessions)
		vc=$(verify_conns)
		[ "$pend" = 0 ] && [ "$sess" = 0 ] && [ "$vc" = 0 ] && break
		sleep 0.5
	done
	t0=$((SECONDS - t0 + 1))	# whole seconds, rounded up
	after=$(rss_settled "$QF_PID")
	detail "m2 closed"
	note "(m2) within $t0 s after the $N2 streams closed: verify.pending=$pend" \
		"verify.sessions=$sess verify connections=$vc$( [ "$pend$sess$vc" = 000 ] || echo ' (NOT 0)');"
	note "     VmRSS then $after KiB$( [ -z "$MS_USE" ] || awk -v bu="$B_USE" -v lu="$MS_USE" \
		-v bs="$B_SYS" -v ls="$MS_SYS" 'BEGIN { printf ", malloc_stats in use +%d KiB, heap size +%d KiB",
		(lu - bu) / 1024, (ls - bs) / 1024 }')"
	qf_down
}

# m3: routes to nonexistent domains, bounced.
scen_m3() {
	local base peak t0 routes
	log "m3: $N3 routes to nonexistent domains"
	qf_up m3
	client_nx warm 0 1
	base=$(rss_settled "$QF_PID")
	detail "m3 baseline"
	B_USE=$MS_USE B_SYS=$MS_SYS
	profile
	t0=$SECONDS
	client_nx load 1 "$N3"
	# idle routes are freed right after their last stanza: wait for that
	for _ in $(seq 1 25); do
		routes=$(stat_of routes)
		[ "$routes" = 0 ] && break
		sleep 0.2
	done
	peak=$(rss_settled "$QF_PID")
	detail "m3 loaded"
	{ echo "m3 loaded: show peers"; peers_summary; } >>"$DETAILS"
	log "m3: $N3 bounces in $((SECONDS - t0)) s, RSS $base -> $peak KiB"
	row "(m3) $N3 routes to nonexistent domains" "$base" "$peak" route "$N3" 4096 total
	malloc_note m3 "$N3" route
	note "(m3) after the bounces: routes=$(stat_of routes) bounces=$(stat_of bounces)" \
		"conns.open=$(stat_of conns.open) ($(qfctl "$QF" show peers |
			grep -c '\.side=local$' || true) on the local side)"
	qf_down
}

# client_nx NAME FIRST N: alice writes to nxFIRST..nx(FIRST+N-1).example and waits for
# every bounce.
client_nx() {
	nsx "$PYTHON" "$TOP/tests/bench/nxbounce.py" alice@a.example pass-a 127.0.1.2 \
		--first "$2" --count "$3" --timeout 120 --log "$TMP/client-nx-$1.xml.log" \
		>"$TMP/client-nx-$1.log" 2>&1 || fail "m3 $1: $(tail -n 1 "$TMP/client-nx-$1.log")"
	log "m3 $1: $(tail -n 1 "$TMP/client-nx-$1.log")"
}

# ---------------------------------------------------------------- report

report() {
	echo
	echo "memory (quickfed RSS, optimized build; baseline measured in this run)"
	printf '%-42s %12s %10s %12s %19s   %s\n' scenario "baseline KiB" "peak KiB" \
		"growth KiB" "per unit" target
	printf '%s' "$ROWS" | while IFS='|' read -r label base peak unit count tkib kind; do
		awk -v l="$label" -v b="$base" -v p="$peak" -v u="$unit" -v n="$count" \
			-v t="$tkib" -v k="$kind" 'BEGIN {
			g = p - b; per = g / n
			if (k == "per") {
				tgt = sprintf("<= %d KiB/%s", t, u); v = per
			} else {
				tgt = sprintf("<= %d KiB total", t); v = g
			}
			if (v <= t)
				verdict = "ok"
			else
				verdict = sprintf("MISSED by %.1f KiB%s (x%.2f)", v - t,
				    k == "per" ? "/" u : "", v / t)
			printf "%-42s %12d %10d %12d %19s   %s  %s\n", l, b, p, g,
			    sprintf("%.1f KiB/%s", per, u), tgt, verdict
		}'
	done
	echo
	printf '%s' "$NOTES"
	echo "baseline: VmRSS of the scenario's fresh quickfed after one warm-up round of the same"
	echo "work (m1: one hostile stream, left open; m2: one stream x $K2, closed; m3: one bounce);"
	echo "peak: VmRSS once the load is in place and settled; growth = peak - baseline."
	echo "machine: $(uname -r), $(nproc) CPUs; quickfed $(basename "$BUILD")/quickfed"
}

# ---------------------------------------------------------------- main

main() {
	local sc start=$SECONDS
	need_quickfed
	need nsd drill prosody prosodyctl
	for sc in $SCENARIOS; do
		declare -F "scen_$sc" >/dev/null || fail "unknown scenario '$sc'"
	done
	setup_ns
	DETAILS=$TMP/details.txt
	: >"$DETAILS"
	make_ca
	make_cert A a.example
	dns_xmpp a.example 127.0.1.1
	dns_rr "*.hang.example. 300 IN A 127.0.4.1"
	start_dns
	bg tarpit "$PYTHON" "$QF_TOP/tests/integ/tarpit.py" --host 127.0.4.1 --port 5269 \
		--seconds 600
	wait_for 25 port_open 127.0.4.1 5269 || fail "tarpit did not listen"
	# the port probe above was one accepted connection: counts are taken relative
	start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270
	register A alice a.example pass-a
	for sc in $SCENARIOS; do
		"scen_$sc"
	done
	report | tee "$TMP/memory.txt"
	mkdir -p "$BUILD/bench"
	cp "$TMP/memory.txt" "$BUILD/bench/memory.txt"
	cp "$DETAILS" "$BUILD/bench/memory-details.txt"
	log "done in $((SECONDS - start)) s; table in $BUILD/bench/memory.txt," \
		"details in $BUILD/bench/memory-details.txt"
}

main
