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
#   m4  MEM_M4_LINKS (1000) idle federated links from quickfed A to a second quickfed B
#       (one remote domain, SRV target and address each: nothing multiplexed), opened by
#       Prosody A for tests/bench/linkload.py; KiB per link on A (local-in + s2s-out)
#       and on B (s2s-in), then again after MEM_M4_BURST (20) messages of
#       MEM_M4_BURST_SIZE (2000) bytes on every link (the fd limit is raised to the hard
#       limit for it: quickfed A holds 2 fds per link).
#   m5  MEM_M5_DOMAINS (500) configured domains more, each with its certificate and key,
#       trusting the system CA bundle (/etc/ssl/certs/ca-certificates.crt, Debian's
#       default ca_file): KiB per domain and the start-up time (until the status socket
#       answers), against a quickfed with one domain and the same CA file. Every domain's
#       TLS contexts share one CA store, so a domain must cost far less than a copy of the
#       bundle (about 330 KiB with wolfSSL).
# The table goes to stdout and BUILD_DIR/bench/memory.txt; the details (smaps_rollup, show
# stats, show peers counted) to BUILD_DIR/bench/memory-details.txt. Every process started
# is stopped by PID and the namespace is deleted (lib.sh cleanup). Unlike an integration
# test a bench that cannot run is an error (exit 1), not a skip; a missed target is
# reported in the table and is not an error.
#
# Environment: MEM_SCENARIOS ("m1 m2 m3 m4"), the counts above, MEM_MALLOC_STATS=1 (glibc's
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
N4=${MEM_M4_LINKS:-1000}
W4=${MEM_M4_WARM:-16}		# m4: warm-up links, in the baseline
BURST4=${MEM_M4_BURST:-20}
BURST4_SIZE=${MEM_M4_BURST_SIZE:-2000}
N5=${MEM_M5_DOMAINS:-500}
SCENARIOS=${MEM_SCENARIOS:-m1 m2 m3 m4 m5}
FLOOD_N=2000			# m1: messages each hostile stream tries to write ...
FLOOD_SIZE=1000			# ... of this many padding bytes (2 MB, far over the held budget)
SWARM=$TOP/tests/bench/s2sswarm.py
ROWS=""				# table rows, one "label|base|peak|unit|count|target_kib|target_kind" per line
NOTES=""			# lines printed under the table
DETAILS=""			# $TMP/details.txt once setup_ns ran

# ---------------------------------------------------------------- measuring

# rss PID: VmRSS of PID in KiB.
rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# cpu_ms PID: CPU time (user + system, all threads) PID has used so far, in ms.
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"
}

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

# m4: idle federated links. Prosody A (through quickfed A) writes one message to
# x@d<i>.b.example for each i; quickfed A opens one link per domain to quickfed B (each
# d<i> has its own SRV target h<i>.b.example with its own address 127.2.x.y, so nothing
# is multiplexed; B serves every d<i> with one *.b.example certificate, on 0.0.0.0:5299).
# The messages are of type error: B cannot deliver them (no local server) and sends
# nothing back. Measured once N links are ready on both sides: quickfed A (one local-in
# stream from Prosody + one s2s-out per link) and quickfed B (one s2s-in per link).
# Then MEM_M4_BURST messages of MEM_M4_BURST_SIZE bytes go over every link and both are
# measured again once idle: buffers must shrink back after a burst. The warm-up opens
# MEM_M4_WARM (16) links first: Debian's wolfSSL (FP_ECC) keeps a per-process cache of
# 15 precomputed ECC points tables (257 points of 3 KB each, ~12 MB) that the first 15
# handshakes fill; it does not grow with links, so it belongs in the baseline.
m4_dns() {
	local i
	for i in $(seq 1 $((W4 + N4))); do
		dns_srv "d$i.b.example" 5299 "h$i.b.example"
		dns_a "h$i.b.example" "127.2.$((i / 250)).$((i % 250 + 1))"
	done
}

# m4_links NAME DIR SIDE: connections of quickfed NAME with that direction and side
# that are up (show peers: state READY for an initiator, OPEN for a receiver).
m4_links() {
	qfctl "$1" show peers | awk -F'=' -v d="$2" -v s="$3" '
		$1 ~ /^peer\.[0-9]+\.(direction|side|state)$/ {
			split($1, k, "."); v[k[2], k[3]] = $2; id[k[2]] = 1 }
		END { for (i in id) n += v[i, "direction"] == d && v[i, "side"] == s &&
			(v[i, "state"] == "READY" || v[i, "state"] == "OPEN"); print n + 0 }'
}
m4_links_ge() { [ "$(m4_links "$1" "$2" "$3")" -ge "$4" ]; }

# m4_send NAME FIRST N COUNT SIZE: alice writes COUNT messages of SIZE bytes to each
# of x@dFIRST..dFIRST+N-1.b.example (tests/bench/linkload.py).
m4_send() {
	nsx "$PYTHON" "$TOP/tests/bench/linkload.py" alice@a.example pass-a 127.0.1.2 \
		--domain 'd{i}.b.example' --first "$2" --n "$3" --count "$4" --size "$5" \
		>"$TMP/linkload-$1.log" 2>&1 || fail "m4 $1: $(tail -n 1 "$TMP/linkload-$1.log")"
	log "m4 $1: $(tail -n 1 "$TMP/linkload-$1.log")"
}

scen_m4() {
	local base_a base_b peak_a peak_b after_a after_b t0 i blocks="" bconf=$TMP/m4b-qf.conf zp_a zp_b
	local qfa qfa_pid in0 ht_a cpu_a cpu_b
	log "m4: $N4 idle federated links"
	qf_up m4
	qfa=$QF qfa_pid=$QF_PID
	[ -f "$TMP/pki/B.crt" ] || issue_leaf ca B b.example "DNS:*.b.example" "$TMP/pki/B.crt"
	for i in $(seq 2 $((W4 + N4))); do
		blocks="$blocks$(domain_block "d$i.b.example" B)
"
	done
	write_quickfed_conf "$bconf" m4b d1.b.example B 127.0.2.1 127.0.2.2 "$blocks
limits {
	connections_per_address 100000	# every link comes from 127.0.0.1
}"
	sed -i 's/^log_level debug$/log_level info/' "$bconf"
	# the internet listener (the first one) on 0.0.0.0:5299, the local one on 127.0.2.1
	sed -i '0,/address 127.0.2.1/s//address 0.0.0.0/; 0,/port 5269/s//port 5299/' "$bconf"
	conf_set "$bconf" auth 120s
	conf_set "$bconf" setup 120s
	start_quickfed qfm4b "$bconf"
	eval "QFB_PID=\$QF_PID_qfm4b"
	# warm-up: W4 links (d1..dW4), then the baseline of both
	m4_send warm 1 "$W4" 1 10
	wait_for 300 m4_links_ge "$qfa" out internet "$W4" || fail "m4 warm-up: links A -> B missing"
	wait_for 100 m4_links_ge qfm4b in internet "$W4" || fail "m4 warm-up: links on B missing"
	base_a=$(rss_settled "$qfa_pid")
	base_b=$(rss_settled "$QFB_PID")
	detail "m4 baseline (quickfed A, one link up)"
	B_USE=$MS_USE B_SYS=$MS_SYS
	profile
	ht_a=${HEAPTRACK_PID:-}
	[ -z "${MEM_HEAPTRACK:-}" ] || { QF=qfm4b QF_PID=$QFB_PID profile; QF=$qfa QF_PID=$qfa_pid; }
	t0=$SECONDS
	cpu_a=$(cpu_ms "$qfa_pid") cpu_b=$(cpu_ms "$QFB_PID")
	m4_send load $((W4 + 1)) "$N4" 1 10
	wait_for 1800 m4_links_ge "$qfa" out internet $((W4 + N4)) ||
		fail "m4: $(m4_links "$qfa" out internet) of $((W4 + N4)) links ready on A"
	wait_for 100 m4_links_ge qfm4b in internet $((W4 + N4)) ||
		fail "m4: $(m4_links qfm4b in internet) of $((W4 + N4)) links ready on B"
	in0=$(m4_links "$qfa" in local)
	cpu_a=$(($(cpu_ms "$qfa_pid") - cpu_a)) cpu_b=$(($(cpu_ms "$QFB_PID") - cpu_b))
	quiet_wait
	wait_settled "$qfa" || fail "m4: quickfed A did not settle and trim its heap"
	wait_settled qfm4b || fail "m4: quickfed B did not settle and trim its heap"
	peak_a=$(rss_settled "$qfa_pid")
	peak_b=$(rss_settled "$QFB_PID")
	zp_a=$("$PYTHON" "$TOP/tests/bench/zeropages.py" "$qfa_pid")
	zp_b=$("$PYTHON" "$TOP/tests/bench/zeropages.py" "$QFB_PID")
	detail "m4 loaded (quickfed A)"
	{ echo "m4 loaded: show peers (A)"; peers_summary; } >>"$DETAILS"
	log "m4: $N4 links in $((SECONDS - t0)) s, RSS A $base_a -> $peak_a KiB," \
		"B $base_b -> $peak_b KiB"
	row "(m4) $N4 idle links, A: local-in + s2s-out" "$base_a" "$peak_a" link "$N4" 48 per
	row "(m4) $N4 idle links, B: s2s-in" "$base_b" "$peak_b" link "$N4" 48 per
	malloc_note "m4 A" "$N4" link
	note "(m4) A: $(m4_links "$qfa" out internet) s2s-out and $in0 local-in streams ready," \
		"conns.open=$(stat_of conns.open); B: $(m4_links qfm4b in internet) s2s-in ready;"
	note "     CPU while the $N4 links were set up: A $cpu_a ms ($((cpu_a * 1000 / N4)) us/link)," \
		"B $cpu_b ms ($((cpu_b * 1000 / N4)) us/link)"
	note "     resident heap pages holding only zeros (tests/bench/zeropages.py): A ${zp_a#* } of" \
		"${zp_a% *} KiB, B ${zp_b#* } of ${zp_b% *} KiB"
	if [ -n "${MEM_HEAPTRACK:-}" ] && [ "${MEM_M4_PROFILE_AT:-idle}" = idle ]; then
		# what the idle links hold: both killed now, so that heaptrack's "leaked" are
		# the allocations live at this point (a TERM would free them all first)
		kill -KILL "$qfa_pid" "$QFB_PID"
		wait "$ht_a" "$HEAPTRACK_PID" 2>/dev/null || true	# they end with their target
		HEAPTRACK_PID=""
		note "(m4) MEM_HEAPTRACK: A and B killed at the loaded point (no burst);" \
			"heaptrack_print -f $MEM_HEAPTRACK/heaptrack.qfm4*.zst lists what they held"
		BURST4=0
	fi
	if [ "$BURST4" -gt 0 ]; then
		m4_send burst $((W4 + 1)) "$N4" "$BURST4" "$BURST4_SIZE"
		# idle again: every message passed B (its stanzas in count) and nothing is queued
		wait_for 600 m4_b_took $((N4 * BURST4 + N4 + W4)) ||
			fail "m4 burst: B took $(m4_b_in) of $((N4 * BURST4 + N4 + W4)) stanzas"
		# every connection quiet again (2 s without input; the last <a/> comes up to
		# ACK_LATE, 2 s, after the last stanza) and the heap trimmed since they all
		# went quiet (a second later: core/main.c)
		quiet_wait
		wait_settled "$qfa" || fail "m4 burst: quickfed A did not settle and trim its heap"
		wait_settled qfm4b || fail "m4 burst: quickfed B did not settle and trim its heap"
		after_a=$(rss_settled "$qfa_pid")
		after_b=$(rss_settled "$QFB_PID")
		detail "m4 after the burst (quickfed A)"
		malloc_note "m4 after the burst, A" "$N4" link
		if [ -n "${MEM_HEAPTRACK:-}" ]; then	# MEM_M4_PROFILE_AT=burst: live after it
			kill -KILL "$qfa_pid" "$QFB_PID"
			wait "$ht_a" "$HEAPTRACK_PID" 2>/dev/null || true
			HEAPTRACK_PID=""
		fi
		row "(m4) after $BURST4 x $BURST4_SIZE B per link, A" "$base_a" "$after_a" link "$N4" 48 per
		row "(m4) after $BURST4 x $BURST4_SIZE B per link, B" "$base_b" "$after_b" link "$N4" 48 per
	fi
	kill_pid "$QFB_PID"
	qf_down
}

# m5_up NAME NDOM: quickfed NAME (idle, log level info) with a.example and NDOM more
# domains d<i>.example (A's certificate and key: a context does not check the name), all
# trusting the system CA bundle; sets QF, QF_PID and M5_MS (ms until the status socket
# answered; lib.sh's start_quickfed, which waits up to 10 s).
m5_up() {
	local name=$1 n=$2 conf=$TMP/$1-qf.conf i t0
	write_quickfed_conf "$conf" "$name" a.example A 127.0.1.1 127.0.1.2
	sed -i 's/^log_level debug$/log_level info/' "$conf"
	sed -i "s|^ca_file .*|ca_file $M5_BUNDLE|" "$conf"
	for i in $(seq 1 "$n"); do
		printf 'domain d%d.example {\n\tcertificate %s\n\tkey %s\n}\n' "$i" \
			"$TMP/pki/A.crt" "$TMP/pki/A.key"
	done >>"$conf"
	t0=$(date +%s%N)
	start_quickfed "qf$name" "$conf"
	M5_MS=$((($(date +%s%N) - t0) / 1000000))
	QF=qf$name
	eval "QF_PID=\$QF_PID_$QF"
}

# m5: configured domains, all trusting the system CA bundle.
scen_m5() {
	local base peak ms1 msn
	M5_BUNDLE=/etc/ssl/certs/ca-certificates.crt
	[ -s "$M5_BUNDLE" ] || fail "m5: no $M5_BUNDLE (package ca-certificates)"
	log "m5: $N5 configured domains more, ca_file $M5_BUNDLE"
	m5_up m5base 0
	ms1=$M5_MS
	base=$(rss_settled "$QF_PID")
	detail "m5 one domain"
	qf_down
	m5_up m5many "$N5"
	msn=$M5_MS
	peak=$(rss_settled "$QF_PID")
	detail "m5 $N5 domains more"
	log "m5: RSS $base -> $peak KiB, start-up $ms1 -> $msn ms"
	row "(m5) $N5 configured domains more" "$base" "$peak" domain "$N5" 64 per
	note "(m5) ca_file $M5_BUNDLE ($(grep -c 'BEGIN CERTIFICATE' "$M5_BUNDLE") CAs):" \
		"start-up until the status socket answered: $ms1 ms with 1 domain, $msn ms" \
		"with $((N5 + 1))"
	qf_down
}

# quiet_wait: links idle from now on are "quiet" after 2 s without input (s2s/conn.h
# CONN_QUIET_S), found by a sweep every 1 s; quickfed then releases their XML parsers.
# Idle memory is measured after that (a fixed wait: nothing to poll for).
quiet_wait() { sleep 3.5; }

# m4_b_in: stanzas quickfed B received on its s2s-in links (show peers stanzas_in).
m4_b_in() {
	qfctl qfm4b show peers | awk -F'=' '$1 ~ /\.stanzas_in$/ { n += $2 } END { print n + 0 }'
}
m4_b_took() { [ "$(m4_b_in)" -ge "$1" ]; }

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
	case " $SCENARIOS " in *" m4 "*)
		m4_dns
		# m4: quickfed A holds 2 fds per link, B and Prosody 1 (hard limit here: 20000)
		ulimit -n "$(ulimit -Hn)" ;;
	esac
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
