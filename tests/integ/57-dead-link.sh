#!/bin/bash
# tests/integ/57-dead-link.sh - a silently dead link is noticed in seconds; nothing is lost.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab, quickfed A with timeouts { keepalive 1s; dead 2s }.
# After a first message the A->B link is up with stream management. nftables in the
# test's namespace then drops every packet to and from quickfed B's port 5269: the path
# is dead and nothing tells quickfed A. alice sends 20 numbered messages; quickfed A
# writes them and asks for an ack that never comes. Within about `dead` (the unanswered
# <r/>, or TCP_USER_TIMEOUT on the unacknowledged data, whichever first) quickfed A
# gives the link up and puts the 20 back on their route (sm.requeued); the test then
# opens the path again and bob must receive all 20 on the new link. Before issue 11
# such a link absorbed traffic until TCP gave up, about 15 minutes later.
# Then without stream management (quickfed A restarted with policy
# { stream_management off }, as with ejabberd 23.01): no <r/> can go unanswered, but
# TCP_USER_TIMEOUT (= dead) ends the link once its data stays unacknowledged for 2 s;
# the 20 written on it were never acknowledged by B's TCP, so each is bounced to alice
# (stanzas.unproven_bounced=20), none reaches bob, none is lost silently.
. "$(dirname "$0")/lib.sh"

need_quickfed
need nft
setup_ns
a_conf() {
	conf_in_block "$1" timeouts "keepalive 1s"
	conf_in_block "$1" timeouts "dead 2s"
	conf_set "$1" retry 30s   # the first new attempt may meet the drop rules
}
sites_ab a_conf
warm_ab

path_drop 127.0.2.1
t0=$(date +%s.%N)

client_bg bob --resource c bob@b.example pass-b 127.0.2.2 \
	expect-count alice@a.example 20 --timeout 60
client s alice@a.example pass-a 127.0.1.2 send-count bob@b.example 20 ||
	fail "alice could not send"
requeued_20() { [ "$(qf_stat qfA sm.requeued)" -ge 20 ]; }
wait_for 100 requeued_20 || fail "quickfed A did not give the dead link up (sm.requeued=$(qf_stat qfA sm.requeued))"
t1=$(date +%s.%N)
path_open
log "dead link noticed after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; path open again"

client_wait bob
show_qf qfA
[ "$(qf_stat qfA sm.lost)" = 0 ] || fail "quickfed A lost $(qf_stat qfA sm.lost) stanza(s)"
grep -q 'no answer to <r/>\|closed reason=\(read-error\|peer-unresponsive\)' "$TMP/qfA.log" ||
	fail "no log line saying why the link was given up"

# ---- without stream management
conf_in_block "$TMP/A-qf.conf" policy "stream_management off"
conf_set "$TMP/A-qf.conf" retry 0s
restart_quickfed qfA
client_bg bob1 --resource w2 bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm2" --timeout 30
client w2 alice@a.example pass-a 127.0.1.2 send bob@b.example warm2 || fail "alice could not send"
client_wait bob1
proven() { [ "$(qf_stat qfA tcp.proven)" -ge 1 ]; }
wait_for 50 proven || fail "B's TCP never acknowledged warm2"
path_drop 127.0.2.1
t0=$(date +%s.%N)
rm -f "$TMP/collected"
client_bg bob2 --resource c2 bob@b.example pass-b 127.0.2.2 collect-until "$TMP/collected" --timeout 90
client_bg alice2 --resource s2 alice@a.example pass-a 127.0.1.2 \
	send-count bob@b.example 20 collect-until "$TMP/collected" --timeout 90
bounced_20() { [ "$(qf_stat qfA stanzas.unproven_bounced)" -ge 20 ]; }
wait_for 150 bounced_20 ||
	fail "quickfed A did not give the dead link up with 20 unproven (unproven_bounced=$(qf_stat qfA stanzas.unproven_bounced))"
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
log "dead link without stream management noticed after $secs s"
awk -v s="$secs" 'BEGIN { exit !(s < 15) }' || fail "the dead link took $secs s to notice"
path_open
alice_has_20() { [ "$(grep -c '^bounced ' "$TMP/client-alice2.out")" -ge 20 ]; }
wait_for 100 alice_has_20 || fail "alice got $(grep -c '^bounced ' "$TMP/client-alice2.out") of 20 bounces"
touch "$TMP/collected"
client_wait alice2
client_wait bob2
delivered=$(grep -c '^delivered ' "$TMP/client-bob2.out" || true)
[ "$delivered" = 0 ] || fail "bob received $delivered of the bounced stanzas"
pass
