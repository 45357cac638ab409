#!/bin/bash
# tests/integ/56-link-loss.sh - a link that dies with stanzas in flight loses none (XEP-0198).
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab (CA certificates: SASL EXTERNAL, then quickfed B offers
# stream management and quickfed A enables it). After a first message the A->B link is
# up with sm=on. nftables in the test's namespace then drops every packet to and from
# quickfed B's port 5269 (only A's link uses it), so the link is silently
# dead: alice sends 50 numbered messages, quickfed A writes all 50 on the link and
# holds them unacknowledged (show peers unacked=50). `quickfedctl close link b.example`
# resets the link (TCP RST: whatever the kernel still held for it is discarded, as on a
# path that died), the drop rules go, and bob must receive all 50 (distinct; a
# duplicate would be allowed, none is lost): quickfed A put the 50 back at the front of
# the route and sent them on a new link (show stats sm.requeued, sm.lost=0).
# Then the same without stream management (quickfed A restarted with policy
# { stream_management off }, as with a peer that does not offer it: ejabberd 23.01):
# quickfed A keeps each stanza until the peer's TCP has acknowledged it; the 50 written
# on the dead link never are, so the reset bounces each of them to alice
# (remote-server-timeout, a log line each, stanzas.unproven_bounced=50), none is lost
# silently and none reaches bob. Before issue 11 they were freed when written and
# vanished without a trace.
. "$(dirname "$0")/lib.sh"

need_quickfed
need nft
setup_ns
sites_ab

client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm" --timeout 20
client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
client_wait bob0

link_field() { qf_out_link qfA "$1"; }
[ "$(link_field sm)" = on ] || fail "stream management is not on for A's link to B (sm=$(link_field sm))"
# quickfed B acknowledges "warm" once Prosody B's TCP has it: not before the drop
all_acked() { [ "$(link_field unacked)" = 0 ]; }
wait_for 50 all_acked || fail "quickfed B did not acknowledge warm (unacked=$(link_field unacked))"
log "A->B link up with stream management"

path_drop 127.0.2.1

client_bg bob --resource c bob@b.example pass-b 127.0.2.2 \
	expect-count alice@a.example 50 --timeout 60
client s alice@a.example pass-a 127.0.1.2 send-count bob@b.example 50 ||
	fail "alice could not send"
unacked_50() { [ "$(link_field unacked)" = 50 ]; }
wait_for 100 unacked_50 || fail "quickfed A did not hold 50 unacknowledged stanzas (unacked=$(link_field unacked))"
log "50 stanzas written on the dead link, unacknowledged"

out=$(qfctl qfA close link b.example) || fail "close link failed: $out"
echo "$out" | grep -qx 'closed=1' || fail "close link: $out"
path_open
log "link reset, path open again"

client_wait bob
show_qf qfA
assert_stat_ge qfA sm.requeued 50
[ "$(qf_stat qfA sm.lost)" = 0 ] || fail "quickfed A lost $(qf_stat qfA sm.lost) stanza(s)"

# ---- without stream management: unproven stanzas are bounced, not lost
conf_in_block "$TMP/A-qf.conf" policy "stream_management off"
restart_quickfed qfA
client_bg bob1 --resource w2 bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm2" --timeout 30
client w2 alice@a.example pass-a 127.0.1.2 send bob@b.example warm2 || fail "alice could not send"
client_wait bob1
[ "$(link_field sm)" = off ] || fail "stream management is on for A's link to B (sm=$(link_field sm))"
wait_for 50 all_acked || fail "B's TCP did not acknowledge warm2 (unacked=$(link_field unacked))"
assert_stat_ge qfA tcp.proven 1   # warm2, proven by B's TCP
log "A->B link up without stream management"

path_drop 127.0.2.1
rm -f "$TMP/collected"
client_bg bob2 --resource c2 bob@b.example pass-b 127.0.2.2 \
	collect-until "$TMP/collected" --timeout 90
client_bg alice2 --resource s2 alice@a.example pass-a 127.0.1.2 \
	send-count bob@b.example 50 collect-until "$TMP/collected" --timeout 90
wait_for 100 unacked_50 || fail "quickfed A did not keep 50 unproven stanzas (unacked=$(link_field unacked))"
log "50 stanzas written on the dead link, not acknowledged by TCP"
out=$(qfctl qfA close link b.example) || fail "close link failed: $out"
echo "$out" | grep -qx 'closed=1' || fail "close link: $out"
bounced_50() { [ "$(qf_stat qfA stanzas.unproven_bounced)" -ge 50 ]; }
wait_for 100 bounced_50 || fail "quickfed A bounced $(qf_stat qfA stanzas.unproven_bounced) of the 50"
path_open
# the bounces travel to alice through Prosody A: wait until she has them all
alice_has_50() { [ "$(grep -c '^bounced ' "$TMP/client-alice2.out")" -ge 50 ]; }
wait_for 100 alice_has_50 || fail "alice got $(grep -c '^bounced ' "$TMP/client-alice2.out") of 50 bounces"
touch "$TMP/collected"
client_wait alice2
client_wait bob2
show_qf qfA
grep -q '^bounced 1 remote-server-timeout$' "$TMP/client-alice2.out" ||
	fail "the bounce does not say remote-server-timeout: $(grep -m1 '^bounced' "$TMP/client-alice2.out")"
delivered=$(grep -c '^delivered ' "$TMP/client-bob2.out" || true)
[ "$delivered" = 0 ] || fail "bob received $delivered of the bounced stanzas"
[ "$(grep -c 'link died before the peer acknowledged it' "$TMP/qfA.log")" = 50 ] ||
	fail "no log line per bounced stanza"
pass
