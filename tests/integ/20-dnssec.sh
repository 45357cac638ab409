#!/bin/bash
# tests/integ/20-dnssec.sh - DNSSEC-validated resolution end to end (issue 4, item 1).
# SPDX-License-Identifier: ISC
#
# nsd serves sec. (signed), exp. (signed, signatures expired) and plain. (unsigned);
# quickfed A validates with the DS of sec. and exp. as trust anchors. Prosody B
# (127.0.3.1) serves b.sec (secure) and p.plain (insecure: PKIX only): both get the
# message. bad.sec's A record is changed after signing (bogus), x.exp has expired
# signatures (bogus): both bounce remote-server-not-found, the log names the domain
# and unbound's why_bogus, and the tarpit they point to never sees a connection.
# nx.sec does not exist (NXDOMAIN) and none.sec has SRV target "." : both bounce.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
zone_add sec signed
zone_add exp expired
zone_add plain unsigned
site_dnssec_prepare A a.sec 127.0.1.1 sec
make_cert_multi B b.sec p.plain
zone_xmpp sec b.sec 127.0.3.1
zone_xmpp plain p.plain 127.0.3.1
zone_xmpp sec bad.sec 127.0.5.9
zone_tamper sec "xmpp.bad.sec.	$ZONE_TTL	IN	A	127.0.5.9" "xmpp.bad.sec.	$ZONE_TTL	IN	A	127.0.5.1"
zone_xmpp exp x.exp 127.0.5.1
zone_rr sec "_xmpp-server._tcp.none.sec. $ZONE_TTL IN SRV 0 0 0 ."
start_dns_zones
grep -q "127.0.5.1" "$TMP/dns/sec.zone.signed" || fail "tampering did not apply"

bg tarpit "$PYTHON" "$QF_TOP/tests/integ/tarpit.py" --host 127.0.5.1 --port 5269 --seconds 50
wait_for 25 port_open 127.0.5.1 5269 || fail "tarpit did not listen"
sleep 0.3
n0=$(grep -c '^accepted' "$TMP/tarpit.log" || true)   # port_open's own probe

site_dnssec_write A a.sec 127.0.1.1 127.0.1.2
site_dnssec_start A a.sec 127.0.1.1 127.0.1.2
start_prosody_hosts B 127.0.3.1 B b.sec p.plain
register A alice a.sec pass-a
register B bob b.sec pass-b
register B pete p.plain pass-p

client_bg bob bob@b.sec pass-b 127.0.3.1 expect-message alice@a.sec "secure hello" --timeout 20
client_bg pete pete@p.plain pass-p 127.0.3.1 expect-message alice@a.sec "insecure hello" --timeout 20
client alice alice@a.sec pass-a 127.0.1.2 \
	send bob@b.sec "secure hello" \
	send pete@p.plain "insecure hello" \
	send x@bad.sec "to a tampered record" \
	expect-error bad.sec remote-server-not-found --timeout 10 \
	send x@x.exp "to expired signatures" \
	expect-error x.exp remote-server-not-found --timeout 10 \
	send x@nx.sec "to nowhere" \
	expect-error nx.sec remote-server-not-found --timeout 10 \
	send x@none.sec "to no service" \
	expect-error none.sec remote-server-not-found --timeout 10 ||
	fail "a bounce was missing"
client_wait bob
client_wait pete

show_qf qfA
qfctl qfA show dns
L=$TMP/qfA.log
# security of the answers used
qfctl qfA show dns | grep -q '^dns.entry._xmpp-server._tcp.b.sec.SRV.security=secure$' ||
	fail "b.sec SRV not secure in show dns"
qfctl qfA show dns | grep -q '^dns.entry._xmpp-server._tcp.p.plain.SRV.security=insecure$' ||
	fail "p.plain SRV not insecure in show dns"
# bogus: domain and why_bogus in the log, no connection, counted
grep -E 'remote=bad.sec resolution failed: bogus: .*(signature|crypto|validation|bogus)' "$L" ||
	fail "no bogus log line with why_bogus for bad.sec"
grep -E 'remote=x.exp resolution failed: bogus: .*(expired|signature|bogus)' "$L" ||
	fail "no bogus log line with why_bogus for x.exp"
grep -E 'remote=nx.sec resolution failed: notfound' "$L" || fail "no NXDOMAIN failure logged for nx.sec"
grep -E 'remote=none.sec resolution failed: noservice' "$L" ||
	fail "no SRV-target-. failure logged for none.sec"
n1=$(grep -c '^accepted' "$TMP/tarpit.log" || true)
[ "$n1" = "$n0" ] || fail "bogus domains led to $((n1 - n0)) connection(s) to the tarpit"
grep -q 'connecting to 127.0.5' "$L" && fail "quickfed tried to connect to a bogus target"
v=$(qfctl qfA show dns | awk -F= '$1 == "dns.bogus" { print $2 }')
[ "${v:-0}" -ge 2 ] || fail "dns.bogus=$v, expected >= 2"
assert_stat_ge qfA bounces 4
log "bogus=$v, tarpit connections from bogus domains: $((n1 - n0))"
pass
