#!/bin/bash
# tests/integ/45-ejabberd.sh - quickfed and a real ejabberd 23.01, both roles, before and after a restart.
# SPDX-License-Identifier: ISC
#
# Site A (Prosody behind quickfed, as in 11-relay-ac) and a plain ejabberd E (e.example
# on 127.0.6.1, certificate from the test CA, so SASL EXTERNAL can work both ways).
# Messages go both ways; quickfed A learns that e.example offers STARTTLS but no
# pipelining. After a restart (qfA2, same state_dir) quickfed writes header + <starttls/>
# in one flight (never a ClientHello behind it) and message 2 must still arrive; the
# log lines that show what ejabberd made of that are printed for the record.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"
. "$(dirname "$0")/lib-ejabberd.sh"

need_quickfed
need_ejabberd
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert E e.example
dns_xmpp e.example 127.0.6.1
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2
start_ejabberd E e.example 127.0.6.1
register A alice a.example pass-a
ejabberd_register E erin e.example pass-e

log "message 1 both ways: quickfed A as initiator and as receiver against ejabberd E"
client_bg erin erin@e.example pass-e 127.0.6.1 \
	expect-message alice@a.example "message 1 from A" --timeout 25
client_bg alice alice@a.example pass-a 127.0.1.2 \
	send erin@e.example "message 1 from A" \
	expect-message erin@e.example "message 1 from E" --timeout 25
client_wait erin
client erin2 erin@e.example pass-e 127.0.6.1 send alice@a.example "message 1 from E" ||
	fail "erin could not send"
client_wait alice
show_qf qfA
assert_stat_ge qfA stanzas.out 1
assert_stat_ge qfA stanzas.in 1
L=$TMP/qfA.log
grep -E 's2s-out local=a.example remote=e.example ready' "$L" ||
	fail "quickfed A never got ready towards e.example"
echo "---- qfA: inbound set-up from ejabberd (for the record) ----"
grep -E 's2s-in .*(ready|auth|dialback)|flight=[0-9]+ in ' "$L" | head -n 12 || true
wait_for 25 peercaps_has qfA e.example 'pipelining:0' ||
	fail "quickfed A did not record e.example as non-pipelining: $(qfctl qfA show peercaps)"
qfctl qfA show peercaps

stop_quickfed qfA
start_quickfed qfA2 "$TMP/A-qf.conf"
qfctl qfA2 show peercaps | grep 'e.example' ||
	fail "qfA2 did not load e.example's capabilities from the peercaps file"

log "message 2: e.example known to offer STARTTLS, not pipelining"
client_bg erin3 erin@e.example pass-e 127.0.6.1 \
	expect-message alice@a.example "message 2 from A" --timeout 25
client alice2 alice@a.example pass-a 127.0.1.2 send erin@e.example "message 2 from A" ||
	fail "alice could not send message 2"
client_wait erin3
log "message 2 back: erin -> alice through qfA2 as receiver"
client_bg alice3 alice@a.example pass-a 127.0.1.2 \
	expect-message erin@e.example "message 2 from E" --timeout 25
client erin4 erin@e.example pass-e 127.0.6.1 send alice@a.example "message 2 from E" ||
	fail "erin could not send message 2"
client_wait alice3
show_qf qfA2

L2=$TMP/qfA2.log
ids=$(qf_conn_ids "$L2" a.example e.example)
[ -n "$ids" ] || fail "qfA2 made no connection to e.example"
ok=0
echo "---- qfA2: flights of the connections to e.example ----"
for id in $ids; do
	qf_flights "$L2" "$id"
	if qf_flights "$L2" "$id" | grep -q 'flight=1 out .*clear=\[stream:stream,starttls\] tls=\[\]'; then
		ok=1
	fi
	if qf_flights "$L2" "$id" | grep -q 'flight=1 out .*tls=\[hs:'; then
		fail "qfA2 sent a ClientHello in its first flight to ejabberd (not known to pipeline)"
	fi
done
echo "---- qfA and qfA2: ready lines towards e.example ----"
grep -h -E 's2s-out local=a.example remote=e.example ready' "$L" "$L2" || true
grep -E 's2s-out local=a.example remote=e.example ready' "$L2" ||
	fail "qfA2 never got ready towards e.example"
if grep -E 'peercaps e.example forgotten' "$L2"; then
	# Message 2 arrived all the same: the unpipelined retry worked.
	log "FINDING: ejabberd refused header+<starttls/> in one write; quickfed fell back"
else
	log "ejabberd accepted header+<starttls/> in one write (no peercaps forgotten)"
fi
[ $ok = 1 ] || fail "qfA2's first flight to e.example was not header+starttls (without ClientHello)"
echo "---- ejabberd E: s2s authentications (both directions, both runs) ----"
grep -h -E 'Accepted (inbound|outbound) s2s|s2s.*(dialback|Dialback).*(valid|verified)' \
	"$TMP/E-ej/ejabberd.log" || true
stop_ejabberd E
pass
