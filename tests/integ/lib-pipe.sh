# tests/integ/lib-pipe.sh - helpers for the pipelining tests (40-49), sourced after lib.sh.
# SPDX-License-Identifier: ISC
#
# Used by tests/integ/4N-*.sh: stopping and restarting one quickfed by its recorded PID
# (so the peercaps file in its state_dir persists into the next instance), TCP Fast
# Open set-up inside the namespace, and picking lines of one connection out of a
# quickfed debug log.
# shellcheck shell=bash disable=SC2034

# stop_quickfed NAME: TERM (then KILL) the quickfed started as NAME, by its PID.
stop_quickfed() {
	local pid
	eval "pid=\${QF_PID_$1:-}"
	[ -n "$pid" ] || fail "stop_quickfed: no PID recorded for $1"
	kill_pid "$pid"
	log "quickfed $1 (pid $pid) stopped"
}

# stop_prosody NAME: TERM (then KILL) the Prosody started as NAME, by its PID.
stop_prosody() {
	local pid
	eval "pid=\${PROSODY_PID_$1:-}"
	[ -n "$pid" ] || fail "stop_prosody: no PID recorded for $1"
	kill_pid "$pid"
	log "prosody $1 (pid $pid) stopped"
}

# tfo_enable: allow TCP Fast Open client+server in the test's namespace (per-netns
# sysctl). Sets TFO_OK=1 on success, TFO_OK=0 (and says why) otherwise.
tfo_enable() {
	TFO_OK=0
	if nsx sysctl -q -w net.ipv4.tcp_fastopen=3 >"$TMP/tfo-sysctl.out" 2>&1 &&
	    [ "$(nsx sysctl -n net.ipv4.tcp_fastopen 2>/dev/null)" = 3 ]; then
		TFO_OK=1
		log "TCP Fast Open enabled in $NS (net.ipv4.tcp_fastopen=3)"
	else
		log "cannot set net.ipv4.tcp_fastopen in $NS: $(cat "$TMP/tfo-sysctl.out")"
	fi
}

# qf_conn_ids LOGFILE LOCAL REMOTE: ids of the s2s-out connections LOCAL -> REMOTE.
qf_conn_ids() {
	grep -o "conn=[0-9]* s2s-out local=$2 remote=$3 " "$1" |
		awk '{ sub("conn=", "", $1); print $1 }' | sort -un
}

# qf_flights LOGFILE CONN_ID: the flight lines of one connection.
qf_flights() {
	grep -E "conn=$2 flight=[0-9]+ " "$1" || true
}

# peercaps_has NAME DOMAIN PATTERN: `show peercaps` of NAME has DOMAIN matching PATTERN.
peercaps_has() {
	qfctl "$1" show peercaps | grep "^peercaps\.$2=" | grep -q "$3"
}

# pipe_learn_b: after sites_ab, message 1 from alice to bob through quickfed B, which
# pipelines, until quickfed A's peercaps say so (42, 41-pipelining-owed).
pipe_learn_b() {
	log "message 1: through quickfed B, which pipelines"
	client_bg bob1 bob@b.example pass-b 127.0.2.2 \
		expect-message alice@a.example "message 1" --timeout 15
	client alice1 alice@a.example pass-a 127.0.1.2 send bob@b.example "message 1" ||
		fail "alice could not send message 1"
	client_wait bob1
	wait_for 25 peercaps_has qfA b.example 'pipelining:1' ||
		fail "quickfed A did not learn that b.example pipelines: $(qfctl qfA show peercaps)"
	qfctl qfA show peercaps
}

# pipe_drop_b: stop quickfed B and Prosody B, so another peer can take 127.0.2.1:5269.
pipe_drop_b() {
	stop_quickfed qfB
	stop_prosody B
	# quickfed B's shutdown ends A's connection to it (system-shutdown); A's loopback
	# stream from Prosody A for b.example stays, so count only connections to B's address.
	b_gone() { ! qfctl qfA show peers | grep -q '^peer\.[0-9]*\.address=127\.0\.2\.1:'; }
	wait_for 25 b_gone || log "note: quickfed A still shows a connection to 127.0.2.1"
}
