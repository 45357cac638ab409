#!/bin/bash
# tests/integ/50-backpressure.sh - a full route pauses its sender; nothing is bounced or lost.
# SPDX-License-Identifier: ISC
#
# Issue 9 §3 and §4. An authenticated peer (b.example, SASL EXTERNAL) floods alice on
# site A (real Prosody behind quickfed A, limits { queue_bytes 64k }).
#  1. Prosody A is stopped (SIGSTOP) while 5,000 messages arrive: the route to it cannot
#     drain, so quickfed stops reading the peer (show stats reads.paused) instead of
#     bouncing (the old code bounced everything past 1,000 queued). After SIGCONT all
#     5,000 reach alice, none bounced, none twice.
#  2. 60 stanzas of 200 KB each: more than the connection's output buffer; the queue
#     drains as the output drains (the old code delivered 6 and stalled forever).
#  3. quickfed restarted with limits { memory 1m; queue_bytes 1g }: the same stopped
#     local server; now the global budget pauses the sender (reads.paused_memory) and
#     the queue stays near 1 MiB; after SIGCONT all 5,000 arrive.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert B b.example
start_dns
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 \
	"limits {
	queue_bytes 64k
}"
# Prosody is stopped for a while in phase 1: the set-up must not time out meanwhile.
conf_set "$TMP/A-qf.conf" setup 60s
conf_set "$TMP/A-qf.conf" auth 60s
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270
register A alice a.example pass-a
P=$TMP/pki
N=5000

# two resources (a chat to the bare JID reaches both): the floods of phases 1 and 2
# interleave at quickfed (two senders woken in turn), and one client counting them in
# turn would skip what came early
client_bg alice alice@a.example pass-a 127.0.1.2 \
	expect-count flood@b.example $N --timeout 90
client_bg alice2 --resource big alice@a.example pass-a 127.0.1.2 \
	expect-count big@b.example 60 --timeout 150

paused() { [ "$(qf_stat qfA reads.paused)" -ge 1 ]; }

# phase 1: the local server does not read
kill -STOP "$PROSODY_PID_A"
nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--flood $N --flood-size 200 --flood-to alice@a.example --wait 60 \
	>"$TMP/flood.log" 2>&1 &
FLOOD=$!
track_pid $FLOOD
if ! wait_for 150 paused; then
	kill -CONT "$PROSODY_PID_A"
	fail "quickfed never paused the sender while the route was full"
fi
show_qf qfA
queued=$(qfctl qfA show routes | awk -F= '/^route.in.a.example.b.example.queued_bytes=/ { print $2 }')
log "paused with ${queued:-?} bytes queued for a.example"
[ "${queued:-0}" -le $((64 * 1024 + 4096)) ] ||
	fail "queue grew past its budget while paused: $queued bytes"
kill -CONT "$PROSODY_PID_A"

# phase 2: stanzas larger than the output buffer, many of them
big_sent() { grep -q FLOODED "$TMP/big.log"; }
nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--flood 60 --flood-size 200000 --flood-from big@b.example \
	--flood-to alice@a.example --wait 60 >"$TMP/big.log" 2>&1 &
BIG=$!
track_pid $BIG

client_wait alice
client_wait alice2
show_qf qfA
[ "$(qf_stat qfA bounces)" = 0 ] || fail "stanzas were bounced"
alive_zero() { [ "$(qf_stat qfA stanzas.alive)" = 0 ]; }
wait_for 50 alive_zero || fail "stanzas still held in quickfed after delivery"
kill_pid $FLOOD
kill_pid $BIG

# phase 3: the global budget
sed -i 's/^\tqueue_bytes 64k$/\tqueue_bytes 1g\n\tmemory 1m/' "$TMP/A-qf.conf"
grep -q '^.memory 1m$' "$TMP/A-qf.conf" || fail "could not set limits { memory }"
restart_quickfed qfA
client_bg alice3 alice@a.example pass-a 127.0.1.2 expect-count mem@b.example $N --timeout 120
kill -STOP "$PROSODY_PID_A"
mem_paused() { [ "$(qf_stat qfA reads.paused_memory)" -ge 1 ]; }
nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--flood $N --flood-size 200 --flood-from mem@b.example \
	--flood-to alice@a.example --wait 60 >"$TMP/mem.log" 2>&1 &
MEM=$!
track_pid $MEM
if ! wait_for 150 mem_paused; then
	kill -CONT "$PROSODY_PID_A"
	fail "quickfed never paused the sender at the global budget"
fi
alive=$(qf_stat qfA stanzas.alive_bytes)
log "paused at the global budget with $alive stanza bytes alive"
[ "$alive" -le $((1024 * 1024 + 4096)) ] || fail "stanza bytes grew past limits { memory }: $alive"
[ "$(qf_stat qfA reads.paused)" = 0 ] || fail "the route budget (1g) paused instead"
kill -CONT "$PROSODY_PID_A"
client_wait alice3
show_qf qfA
[ "$(qf_stat qfA bounces)" = 0 ] || fail "stanzas were bounced"
kill_pid $MEM
pass
