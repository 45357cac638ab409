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
# the route and sent them on a new link (show stats sm.requeued, sm.lost=0). Without
# stream management the 50 were freed when written and never arrive.
. "$(dirname "$0")/lib.sh"

need_quickfed
need nft
setup_ns
sites_ab

client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm" --timeout 20
client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
client_wait bob0

# the A->B link and its stream management state
link_field() {
	qfctl qfA show peers | awk -F'[.=]' -v f="$1" '$3 == "direction" { dir[$2] = $4 }
		$3 == "side" { side[$2] = $4 } $3 == "purpose" { pur[$2] = $4 } $3 == f { v[$2] = $4 }
		END { for (i in dir) if (dir[i] == "out" && side[i] == "internet" &&
			pur[i] == "relay") print v[i] }'
}
[ "$(link_field sm)" = on ] || fail "stream management is not on for A's link to B (sm=$(link_field sm))"
log "A->B link up with stream management"

nsx nft -f - <<'EOF' || fail "nft rules failed"
table inet qflinkloss {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.2.1 tcp dport 5269 drop
		ip saddr 127.0.2.1 tcp sport 5269 drop
	}
}
EOF
log "A<->B:5269 silently dropped"

client_bg bob --resource c bob@b.example pass-b 127.0.2.2 \
	expect-count alice@a.example 50 --timeout 60
client s alice@a.example pass-a 127.0.1.2 send-count bob@b.example 50 ||
	fail "alice could not send"
unacked_50() { [ "$(link_field unacked)" = 50 ]; }
wait_for 100 unacked_50 || fail "quickfed A did not hold 50 unacknowledged stanzas (unacked=$(link_field unacked))"
log "50 stanzas written on the dead link, unacknowledged"

out=$(qfctl qfA close link b.example) || fail "close link failed: $out"
echo "$out" | grep -qx 'closed=1' || fail "close link: $out"
nsx nft delete table inet qflinkloss || fail "nft delete failed"
log "link reset, path open again"

client_wait bob
show_qf qfA
assert_stat_ge qfA sm.requeued 50
[ "$(qf_stat qfA sm.lost)" = 0 ] || fail "quickfed A lost $(qf_stat qfA sm.lost) stanza(s)"
pass
