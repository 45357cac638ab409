#!/bin/bash
# tests/integ/43-prosody-partial-pipelining.sh - quickfed and a real Prosody, both roles.
# SPDX-License-Identifier: ISC
#
# Site A (behind quickfed) and plain Prosody C (self-signed, so dialback) as in
# 11-relay-ac. Messages go both ways; quickfed A learns that c.example does not pipeline
# but offered STARTTLS. After a restart (qfA2, same state_dir) the only pipelining
# quickfed may use towards Prosody is header + <starttls/> in one write, never a
# ClientHello behind it; message 2 must still arrive.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

need_quickfed
setup_ns
sites_ac selfsigned

log "message 1 both ways: quickfed A as initiator and as receiver against Prosody C"
client_bg carol carol@c.example pass-c 127.0.3.1 \
	expect-message alice@a.example "message 1 from A" --timeout 20
client_bg alice alice@a.example pass-a 127.0.1.2 \
	send carol@c.example "message 1 from A" \
	expect-message carol@c.example "message 1 from C" --timeout 20
client_wait carol
client carol2 carol@c.example pass-c 127.0.3.1 send alice@a.example "message 1 from C" ||
	fail "carol could not send"
client_wait alice
show_qf qfA
assert_stat_ge qfA stanzas.out 1
assert_stat_ge qfA stanzas.in 1
grep -E 's2s-out local=a.example remote=c.example ready' "$TMP/qfA.log" ||
	fail "quickfed A never got ready towards c.example"
# What quickfed A answered to Prosody's (unpipelined) set-up, for the record.
grep -E 'flight=[0-9]+ in ' "$TMP/qfA.log" | head -n 6 || true
wait_for 25 peercaps_has qfA c.example 'pipelining:0' ||
	fail "quickfed A did not record c.example as non-pipelining: $(qfctl qfA show peercaps)"
qfctl qfA show peercaps

stop_quickfed qfA
start_quickfed qfA2 "$TMP/A-qf.conf"
qfctl qfA2 show peercaps | grep 'c.example' ||
	fail "qfA2 did not load c.example's capabilities from the peercaps file"

log "message 2: c.example known not to pipeline"
client_bg carol3 carol@c.example pass-c 127.0.3.1 \
	expect-message alice@a.example "message 2 from A" --timeout 20
client alice2 alice@a.example pass-a 127.0.1.2 send carol@c.example "message 2 from A" ||
	fail "alice could not send message 2"
client_wait carol3
show_qf qfA2

L=$TMP/qfA2.log
ids=$(qf_conn_ids "$L" a.example c.example)
[ -n "$ids" ] || fail "qfA2 made no connection to c.example"
ok=0
for id in $ids; do
	qf_flights "$L" "$id"
	if qf_flights "$L" "$id" | grep -q 'flight=1 out .*clear=\[stream:stream,starttls\] tls=\[\]'; then
		ok=1
	fi
	if qf_flights "$L" "$id" | grep -q 'flight=1 out .*tls=\[hs:'; then
		fail "qfA2 sent a ClientHello in its first flight to Prosody (not known to pipeline)"
	fi
done
[ $ok = 1 ] || fail "qfA2's first flight to c.example was not header+starttls (without ClientHello)"
grep -q 'peercaps c.example forgotten' "$L" &&
	fail "header+starttls in one write made the Prosody set-up fail (peercaps forgotten)"
grep -E 's2s-out local=a.example remote=c.example ready' "$L" ||
	fail "qfA2 never got ready towards c.example"
pass
