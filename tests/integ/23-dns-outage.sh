#!/bin/bash
# tests/integ/23-dns-outage.sh - serve-stale: the DNS server goes away, known peers still work.
# SPDX-License-Identifier: ISC
#
# The signed zone has 2 s TTLs and quickfed A keeps answers for at least 1 s
# (cache_min_ttl 1s) and closes idle streams after 1 s. After a first delivery to b.sec
# nsd is stopped (by PID); once `show dns` shows b.sec's answers expired and the route
# idle, a second message still reaches Prosody B from the stale answers, and `show dns`
# counts stale_served. A name never seen before (new.sec) bounces cleanly with
# remote-server-timeout once the resolver timeout (1 s) expires.
. "$(dirname "$0")/lib.sh"

ZONE_TTL=2
need_quickfed
setup_ns
make_ca
zone_add sec signed
site_dnssec_prepare A a.sec 127.0.1.1 sec
make_cert B b.sec
zone_xmpp sec b.sec 127.0.3.1
zone_xmpp sec new.sec 127.0.3.1
start_dns_zones

site_dnssec_write A a.sec 127.0.1.1 127.0.1.2
conf_in_block "$TMP/A-qf.conf" resolver "cache_min_ttl 1s"
conf_set "$TMP/A-qf.conf" timeout 1s
conf_set "$TMP/A-qf.conf" idle 1s
site_dnssec_start A a.sec 127.0.1.1 127.0.1.2
start_prosody_hosts B 127.0.3.1 B b.sec
register A alice a.sec pass-a
register B bob b.sec pass-b

client_bg bob bob@b.sec pass-b 127.0.3.1 expect-message alice@a.sec "before outage" --timeout 20
client alice alice@a.sec pass-a 127.0.1.2 send bob@b.sec "before outage" \
	expect-nothing --timeout 1 || fail "alice got an error back"
client_wait bob
T_ANSWER=$(date +%s)    # b.sec was resolved just before this

stop_dns
port_open 127.0.0.53 53 && fail "nsd still answers"
srv_stale() { qfctl qfA show dns | grep -q '^dns.entry._xmpp-server._tcp.b.sec.SRV.stale=1$'; }
addr_stale() { qfctl qfA show dns | grep -q '^dns.entry.xmpp.b.sec.A.stale=1$'; }
# idle: its stream closed (an idle, empty route is freed, so it may be gone entirely)
route_idle() {
	local r
	r=$(qfctl qfA show routes) || return 1
	! printf '%s\n' "$r" | grep -q '^route.out.a.sec.b.sec.state=\(ready\|connecting\|resolving\)$'
}
wait_for 40 srv_stale || fail "b.sec SRV never went stale in show dns"
wait_for 40 addr_stale || fail "xmpp.b.sec A never went stale in show dns"
wait_for 40 route_idle || fail "route a.sec -> b.sec did not go idle"
# libunbound keeps its own copy of the answers with whole-second expiry: only past the
# TTL (2 s) plus that second is the next lookup sure to miss it and be served stale.
past_ttl() { [ "$(date +%s)" -ge $((T_ANSWER + ZONE_TTL + 2)) ]; }
wait_for 40 past_ttl || fail "clock did not advance"
qfctl qfA show dns | grep 'b.sec'

client_bg bob2 bob@b.sec pass-b 127.0.3.1 expect-message alice@a.sec "during outage" --timeout 20
client alice2 alice@a.sec pass-a 127.0.1.2 send bob@b.sec "during outage" \
	expect-nothing --timeout 1 || fail "alice got an error back during the outage"
client_wait bob2
v=$(qfctl qfA show dns | awk -F= '$1 == "dns.stale_served" { print $2 }')
[ "${v:-0}" -ge 1 ] || fail "dns.stale_served=$v, expected >= 1"
grep -E 'dns .*(b\.sec|xmpp\.b\.sec).*stale' "$TMP/qfA.log" | tail -n 5 || true
grep -q 'dns lookup domain=b.sec status=ok targets=[0-9]* stale=1' "$TMP/qfA.log" ||
	fail "the second lookup of b.sec was not answered from stale data"

# a name never seen: with the server gone the query times out (resolver timeout 1s) and
# the stanza is bounced with remote-server-timeout
client alice3 alice@a.sec pass-a 127.0.1.2 send x@new.sec "to a new name" \
	expect-error new.sec remote-server-timeout --timeout 10 ||
	fail "no clean bounce for new.sec"
grep -q 'remote=new.sec resolution failed: timeout' "$TMP/qfA.log" ||
	fail "new.sec: no resolution failure logged"
grep 'remote=new.sec' "$TMP/qfA.log" | grep -E 'failed' | head -n 3
show_qf qfA
log "stale_served=$v"
pass
