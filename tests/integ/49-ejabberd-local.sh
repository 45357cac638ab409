#!/bin/bash
# tests/integ/49-ejabberd-local.sh - ejabberd 23.01 as the LOCAL server behind quickfed.
# SPDX-License-Identifier: ISC
#
# Site A: ejabberd (a.example, 127.0.1.2, s2s on 5271 without TLS) behind quickfed A
# (127.0.1.1), set up as the README's "ejabberd recipe" says: ejabberd's Erlang resolver
# (inet_res, which makes the _xmpp-server SRV lookups of outgoing s2s) asks only a
# private nsd on 127.0.1.3 port 5300 whose root zone has one wildcard SRV record pointing every
# domain at quickfed-local:5270 (quickfed A's local listener; the name is in the hosts
# file), and ejabberd binds its outgoing s2s to 127.0.1.2 (outgoing_s2s_ipv4_address)
# so that its connections can be told apart. Site B: Prosody behind quickfed B as in
# 10-relay-ab. Messages go both ways; quickfed A's stats and logs and an nftables
# counter show that ejabberd's s2s went only to quickfed A's local listener (the
# outgoing stanzas and the db:verify of the inbound dialback) and never to quickfed B.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ejabberd.sh"

need_quickfed
need_ejabberd
need nft
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
site_proxied_prepare B b.example 127.0.2.1
start_dns
echo "127.0.1.1 quickfed-local" >>"/etc/netns/$NS/hosts"
start_ej_dns EA 127.0.1.3 5300 quickfed-local 5270

# Output-hook counters: TCP SYNs (no ACK) from ejabberd's address to quickfed A's local
# listener and to quickfed B's internet listener.
nsx nft -f - <<'EOF' || fail "nft: cannot create the counters"
table inet qf49 {
	counter ej_to_qfa_local { }
	counter ej_to_qfb_inet { }
	counter ej_all { }
	chain out {
		type filter hook output priority 0; policy accept;
		ip saddr 127.0.1.2 tcp flags & (syn | ack) == syn ip daddr 127.0.1.1 tcp dport 5270 counter name ej_to_qfa_local
		ip saddr 127.0.1.2 tcp flags & (syn | ack) == syn ip daddr 127.0.2.1 tcp dport 5269 counter name ej_to_qfb_inet
		ip saddr 127.0.1.2 tcp flags & (syn | ack) == syn counter name ej_all
	}
}
EOF
# syns COUNTER: packets counted so far by COUNTER.
syns() { nsx nft list counter inet qf49 "$1" | awk '$1 == "packets" { print $2; exit }'; }

write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2
start_quickfed qfA "$TMP/A-qf.conf"
site_proxied_start B b.example 127.0.2.1 127.0.2.2
EJ_EXTRA_YML="outgoing_s2s_ipv4_address: 127.0.1.2" \
	start_ejabberd_proxied A a.example 127.0.1.2 127.0.1.3 5300
ejabberd_register A alice a.example pass-a
register B bob b.example pass-b

log "message 1: alice (ejabberd, a.example) -> bob (Prosody, b.example)"
client_bg bob bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "hello from ejabberd" --timeout 25
client_bg alice alice@a.example pass-a 127.0.1.2 \
	send bob@b.example "hello from ejabberd" \
	expect-message bob@b.example "hello from Prosody" --timeout 25
client_wait bob
log "message 2: bob -> alice (quickfed A delivers to ejabberd with dialback)"
client bob2 bob@b.example pass-b 127.0.2.2 send alice@a.example "hello from Prosody" ||
	fail "bob could not send"
client_wait alice

show_qf qfA
show_qf qfB
assert_stat_ge qfA stanzas.out 1
assert_stat_ge qfA stanzas.in 1

LA=$TMP/qfA.log
LB=$TMP/qfB.log
EL=$TMP/A-ej/ejabberd.log
echo "---- quickfed A: connections from and to ejabberd ----"
grep -E 'local-in accepted from|local-out' "$LA" | head -n 20 || true
grep -qE 'local-in accepted from 127\.0\.1\.2' "$LA" ||
	fail "quickfed A's local listener never accepted a connection from ejabberd (127.0.1.2)"
# Dialback on both loopback legs: quickfed A verified ejabberd's key by connecting back
# to ejabberd's s2s port, and answered the db:verify ejabberd sent (on a connection to
# the local listener) for the key quickfed A gave it when delivering bob's message.
grep -qE 'local-in local=a\.example remote=b\.example authenticated method=dialback' "$LA" ||
	fail "quickfed A did not authenticate ejabberd's stream with dialback"
grep -qE 'answered db:verify from=a\.example to=b\.example valid=1' "$LA" ||
	fail "quickfed A never answered ejabberd's db:verify for b.example"
grep -qE 'local-out local=a\.example remote=b\.example ready auth=dialback' "$LA" ||
	fail "quickfed A's delivery stream to ejabberd was not authenticated with dialback"
echo "---- quickfed B: inbound internet connections ----"
grep -E 's2s-in accepted from' "$LB" || true
if grep -E 's2s-in accepted from 127\.0\.1\.2' "$LB"; then
	fail "ejabberd connected to quickfed B's internet listener directly"
fi
echo "---- ejabberd A: s2s set-up (for the record) ----"
grep -h -E 'Accepted (inbound|outbound) s2s|s2s EXTERNAL|Retrying with s2s dialback|(In|Out)bound s2s connection' "$EL" |
	cut -c 1-240 || true
ql=$(syns ej_to_qfa_local)
qb=$(syns ej_to_qfb_inet)
qo=$(syns ej_all)
log "SYNs from ejabberd: to quickfed A local $ql, to quickfed B internet $qb, in all $qo"
[ "$ql" -ge 1 ] || fail "ejabberd opened no connection to quickfed A's local listener"
[ "$qb" = 0 ] || fail "ejabberd opened $qb connection(s) to quickfed B's internet address"
[ "$qo" = "$ql" ] || fail "ejabberd opened connections elsewhere than quickfed A's local listener"
stop_ejabberd A
pass
