#!/bin/bash
# tests/integ/40-pipelining-flights.sh - quickfed <-> quickfed set-up pipelined (XEP-0305).
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab. Message 1 goes out cold (b.example unknown); A learns
# that B pipelines and keeps it in state_dir/peercaps. A is restarted (qfA2) and message
# 2 must go out pipelined: qfA2's first write to B holds header + <starttls/> + ClientHello,
# its second holds header + <bidi/> + <auth/> + restarted header + the message; qfB's first answer
# holds header + features + proceed + ServerHello. With TCP Fast Open allowed in the
# namespace, a third instance (qfA3) must put its first flight in the SYN.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

need_quickfed
setup_ns
tfo_enable
sites_ab

# send_and_expect N: alice sends "message N" to bob, bob must get it.
send_and_expect() {
	client_bg bob$1 bob@b.example pass-b 127.0.2.2 \
		expect-message alice@a.example "message $1" --timeout 15
	client alice$1 alice@a.example pass-a 127.0.1.2 send bob@b.example "message $1" ||
		fail "alice could not send message $1"
	client_wait bob$1
}

log "message 1: cold, b.example unknown to quickfed A"
send_and_expect 1
wait_for 25 peercaps_has qfA b.example 'pipelining:1' ||
	fail "quickfed A did not learn that b.example pipelines: $(qfctl qfA show peercaps)"
qfctl qfA show peercaps
grep 'remote=b.example ready' "$TMP/qfA.log" || true

stop_quickfed qfA
[ -s "$TMP/A-qf/state/peercaps" ] || fail "no peercaps file in quickfed A's state_dir"
bline=$(wc -l <"$TMP/qfB.log")
start_quickfed qfA2 "$TMP/A-qf.conf"
qfctl qfA2 show peercaps | grep 'b.example' ||
	fail "qfA2 did not load b.example's capabilities from the peercaps file"

log "message 2: b.example known to pipeline"
send_and_expect 2
show_qf qfA2

L=$TMP/qfA2.log
ids=$(qf_conn_ids "$L" a.example b.example)
[ -n "$ids" ] || fail "qfA2 made no connection to b.example"
ok1=0 ok2=0
for id in $ids; do
	qf_flights "$L" "$id"
	qf_flights "$L" "$id" | grep -q 'flight=1 out .*clear=\[stream:stream,starttls\] tls=\[hs:ClientHello\]' && ok1=1
	# <bidi/> (XEP-0288) rides before <auth/>: B offered it on the first connection
	qf_flights "$L" "$id" | grep -q 'flight=2 out .*inner=\[stream:stream,bidi,auth,stream:stream,.*message' && ok2=1
done
[ $ok1 = 1 ] || fail "qfA2's first flight to b.example was not header+starttls+ClientHello"
[ $ok2 = 1 ] || fail "qfA2's second flight did not carry header+bidi+auth+header+message"
log "qfA2 flights: header+starttls+ClientHello, then header+auth+header+message ok"

tail -n +"$((bline + 1))" "$TMP/qfB.log" | grep -E 'flight=1 in .*clear=\[stream:stream,stream:features,.*proceed\] tls=\[hs:ServerHello' ||
	fail "qfB's answer was not header+features+proceed+ServerHello in one flight"
log "qfB flight: header+features+proceed+ServerHello ok"

ready=$(grep -E 's2s-out local=a.example remote=b.example ready' "$L" | head -n 1)
[ -n "$ready" ] || fail "no ready line for a.example -> b.example in qfA2's log"
echo "$ready"
rt=$(echo "$ready" | sed -n 's/.* round_trips=\([0-9]*\) .*/\1/p')
[ -n "$rt" ] && [ "$rt" -le 3 ] || fail "pipelined set-up took round_trips=$rt, expected <= 3"
assert_stat_ge qfA2 rtt.saved 1
qfctl qfA2 show peers | grep -q 'pipelining=used' || fail "qfA2 show peers: no pipelining=used"

if [ "$TFO_OK" != 1 ]; then
	log "SKIP tcp fast open sub-test: net.ipv4.tcp_fastopen cannot be set in the namespace"
	pass
fi
# qfA2's connection fetched a TFO cookie from qfB (SYN with a cookie request); a new
# instance's first flight to B can now ride in the SYN.
qfctl qfA2 show peers | grep 'tcp_fastopen=' || true
stop_quickfed qfA2
start_quickfed qfA3 "$TMP/A-qf.conf"
log "message 3: b.example known, TFO cookie cached by the kernel"
send_and_expect 3
show_qf qfA3
grep -E 's2s-out local=a.example remote=b.example ready' "$TMP/qfA3.log" || true
qfctl qfA3 show peers | grep 'tcp_fastopen=' || true
tfo=$(qf_stat qfA3 tcp_fastopen.used)
if [ "$tfo" -lt 1 ]; then
	nsx ip tcp_metrics show 2>/dev/null || true
	fail "TCP Fast Open allowed in the namespace but qfA3 tcp_fastopen.used=$tfo"
fi
log "qfA3: tcp_fastopen.used=$tfo ok"
pass
