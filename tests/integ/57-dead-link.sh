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
. "$(dirname "$0")/lib.sh"

need_quickfed
need nft
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
site_proxied_prepare B b.example 127.0.2.1
start_dns
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2
conf_in_block "$TMP/A-qf.conf" timeouts "keepalive 1s"
conf_in_block "$TMP/A-qf.conf" timeouts "dead 2s"
conf_set "$TMP/A-qf.conf" retry 30s   # the first new attempt may meet the drop rules
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270
site_proxied_start B b.example 127.0.2.1 127.0.2.2
register A alice a.example pass-a
register B bob b.example pass-b

client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm" --timeout 20
client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
client_wait bob0

nsx nft -f - <<'NFT' || fail "nft rules failed"
table inet qfdead {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.2.1 tcp dport 5269 drop
		ip saddr 127.0.2.1 tcp sport 5269 drop
	}
}
NFT
t0=$(date +%s.%N)
log "A<->B:5269 silently dropped"

client_bg bob --resource c bob@b.example pass-b 127.0.2.2 \
	expect-count alice@a.example 20 --timeout 60
client s alice@a.example pass-a 127.0.1.2 send-count bob@b.example 20 ||
	fail "alice could not send"
requeued_20() { [ "$(qf_stat qfA sm.requeued)" -ge 20 ]; }
wait_for 100 requeued_20 || fail "quickfed A did not give the dead link up (sm.requeued=$(qf_stat qfA sm.requeued))"
t1=$(date +%s.%N)
nsx nft delete table inet qfdead || fail "nft delete failed"
log "dead link noticed after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; path open again"

client_wait bob
show_qf qfA
[ "$(qf_stat qfA sm.lost)" = 0 ] || fail "quickfed A lost $(qf_stat qfA sm.lost) stanza(s)"
grep -q 'no answer to <r/>\|closed reason=\(read-error\|peer-unresponsive\)' "$TMP/qfA.log" ||
	fail "no log line saying why the link was given up"
pass
