#!/bin/bash
# tests/integ/66-kill-receiver.sh - kill -9 of the receiving quickfed loses nothing it acknowledged.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab, both quickfeds with timeouts { retry 60s } (what an
# operator runs; the other tests bounce at once). The A->B link has stream management.
# Prosody B is stopped, then alice sends 20 numbered messages: quickfed B takes them
# from the link and queues them for Prosody B, which is down. Under XEP-0198 quickfed B
# acknowledges a stanza only once it has passed it on (the next hop's TCP has it, or it
# was bounced), so quickfed A still holds all 20 unacknowledged (show peers unacked=20;
# before issue 11 B acknowledged on receipt and A had freed them). quickfed B is then
# killed with SIGKILL (its queue dies with it), Prosody B and quickfed B start again,
# and quickfed A, whose link broke, sends the 20 again on a new one (sm.requeued):
# bob must receive all 20; none is bounced or lost (duplicates would be allowed and
# are counted; this path makes none).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

need_quickfed
setup_ns
sites_ab
for s in A B; do
	conf_set "$TMP/$s-qf.conf" retry 60s
	restart_quickfed "qf$s"
done

client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm" --timeout 30
client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
client_wait bob0

link_field() { qf_out_link qfA "$1"; }
[ "$(link_field sm)" = on ] || fail "stream management is not on for A's link to B (sm=$(link_field sm))"
all_acked() { [ "$(link_field unacked)" = 0 ]; }
wait_for 50 all_acked || fail "warm was never acknowledged (unacked=$(link_field unacked))"

stop_prosody B
client s alice@a.example pass-a 127.0.1.2 send-count bob@b.example 20 ||
	fail "alice could not send"
b_took_20() { [ "$(qf_stat qfB stanzas.in)" -ge 21 ]; }
wait_for 100 b_took_20 || fail "quickfed B did not receive the 20 (stanzas.in=$(qf_stat qfB stanzas.in))"
unacked_20() { [ "$(link_field unacked)" = 20 ]; }
wait_for 25 unacked_20 ||
	fail "quickfed B acknowledged stanzas it had not passed on (A's unacked=$(link_field unacked), want 20)"
assert_stat_ge qfB sm.acks_deferred 1
log "quickfed B holds the 20 for Prosody B, unacknowledged; killing it"

eval "pidB=\$QF_PID_qfB"
kill -KILL "$pidB"
wait "$pidB" 2>/dev/null || true
mv "$TMP/qfB.log" "$TMP/qfB-1.log"
QF_LOGS="$QF_LOGS $TMP/qfB-1.log"
start_prosody B b.example 127.0.2.2 proxied 127.0.2.1 5270
start_quickfed qfB "$TMP/B-qf.conf"

rm -f "$TMP/collected"
client_bg bob --resource c bob@b.example pass-b 127.0.2.2 collect-until "$TMP/collected" --timeout 120
bob_has_20() { [ "$(grep -c '^delivered ' "$TMP/client-bob.out")" -ge 20 ]; }
wait_for 400 bob_has_20 || fail "bob got $(grep -c '^delivered ' "$TMP/client-bob.out") of 20"
touch "$TMP/collected"
client_wait bob
show_qf qfA
assert_stat_ge qfA sm.requeued 20
[ "$(qf_stat qfA sm.lost)" = 0 ] || fail "quickfed A lost $(qf_stat qfA sm.lost) stanza(s)"
[ "$(qf_stat qfA bounces)" = 0 ] || fail "quickfed A bounced $(qf_stat qfA bounces) stanza(s)"
log "bob: $(grep '^duplicates=' "$TMP/client-bob.out")"
pass
