#!/bin/bash
# tests/integ/22-dns-restart.sh - a restarted quickfed reaches a known peer without DNS.
# SPDX-License-Identifier: ISC
#
# quickfed A resolves b.sec (signed zone, validated) and delivers a message to Prosody B.
# It is then stopped (TERM, by PID) and started again on the same state directory: its
# disk cache is loaded, `show dns` lists b.sec's answers as secure, and a second message
# reaches B while nsd - counting at the server with nsd-control - receives no query at
# all. The query counts before and after are logged.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
zone_add sec signed
site_dnssec_prepare A a.sec 127.0.1.1 sec
make_cert B b.sec
zone_xmpp sec b.sec 127.0.3.1
start_dns_zones
q_start=$(nsd_queries)

site_dnssec_write A a.sec 127.0.1.1 127.0.1.2
site_dnssec_start A a.sec 127.0.1.1 127.0.1.2
start_prosody_hosts B 127.0.3.1 B b.sec
register A alice a.sec pass-a
register B bob b.sec pass-b

client_bg bob bob@b.sec pass-b 127.0.3.1 expect-message alice@a.sec "before restart" --timeout 20
client alice alice@a.sec pass-a 127.0.1.2 send bob@b.sec "before restart" \
	expect-nothing --timeout 1 || fail "alice got an error back"
client_wait bob
q_first=$(nsd_queries)
[ "$q_first" -gt "$q_start" ] || fail "the first delivery made no DNS query ($q_start -> $q_first)"
log "first delivery: nsd received $((q_first - q_start)) queries"

restart_quickfed qfA
qfctl qfA show dns >"$TMP/dns-after-restart.txt"
cat "$TMP/dns-after-restart.txt"
grep -q '^dns.entry._xmpp-server._tcp.b.sec.SRV.security=secure$' "$TMP/dns-after-restart.txt" ||
	fail "b.sec SRV not loaded from the disk cache (or not secure)"
grep -q '^dns.entry.xmpp.b.sec.A.stale=0$' "$TMP/dns-after-restart.txt" ||
	fail "xmpp.b.sec A not loaded fresh from the disk cache"

client_bg bob2 bob@b.sec pass-b 127.0.3.1 expect-message alice@a.sec "after restart" --timeout 20
client alice2 alice@a.sec pass-a 127.0.1.2 send bob@b.sec "after restart" \
	expect-nothing --timeout 1 || fail "alice got an error back after the restart"
client_wait bob2
q_second=$(nsd_queries)
show_qf qfA
qfctl qfA show dns | grep -E '^dns\.(hits|misses|queries_sent|entries)='
log "nsd queries: start=$q_start after-first=$q_first after-restart-delivery=$q_second"
[ "$q_second" = "$q_first" ] ||
	fail "nsd received $((q_second - q_first)) queries after the restart (expected 0)"
v=$(qfctl qfA show dns | awk -F= '$1 == "dns.queries_sent" { print $2 }')
[ "${v:-x}" = 0 ] || fail "restarted quickfed says it sent $v queries"
pass
