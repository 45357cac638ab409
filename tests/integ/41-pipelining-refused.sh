#!/bin/bash
# tests/integ/41-pipelining-refused.sh - pipelined set-up with bad credentials delivers nothing.
# SPDX-License-Identifier: ISC
#
# pipeclient.py plays a pipelining b.example against quickfed A's internet listener:
# header + <starttls/> + ClientHello in one write, then the pipelined authentication and a
# message to alice in one TLS write. Case 1 presents a CA-signed cert for wrong.example
# but asks SASL EXTERNAL for b.example: <failure/>, a stream error, nothing delivered.
# Case 2 (no client cert) pipelines a db:result with a wrong key and the message: A asks
# b.example's authoritative server (quickfed B), gets invalid, discards the message; what
# that verify connection showed about b.example's server is remembered (show peercaps).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert B b.example
dns_xmpp b.example 127.0.2.1
make_cert WRONG wrong.example
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2
# b.example's authoritative server: only its quickfed is needed to answer db:verify.
write_quickfed_conf "$TMP/B-qf.conf" B b.example B 127.0.2.1 127.0.2.2
start_quickfed qfB "$TMP/B-qf.conf"
register A alice a.example pass-a

P=$TMP/pki
PIPE="$QF_TOP/tests/integ/pipeclient.py"
MSG1="<message from='mallory@b.example' to='alice@a.example' type='chat' id='p1'><body>pipelined bad cert</body></message>"
MSG2="<message from='mallory@b.example' to='alice@a.example' type='chat' id='p2'><body>pipelined bad key</body></message>"

# alice listens until quickfed A's counters showed that nothing was routed to her.
DONE=$TMP/cases-done
client_bg alice alice@a.example pass-a 127.0.1.2 expect-nothing-until "$DONE" --timeout 90

log "case 1: cert for wrong.example, SASL EXTERNAL as b.example, message pipelined"
nsx "$PYTHON" "$PIPE" --host 127.0.1.1 --from b.example --to a.example --mode external \
	--cert "$P/WRONG.crt" --key "$P/WRONG.key" --log "$TMP/pipe-badcert.log" --wait 5 \
	--send "$MSG1" --expect sasl-failure --expect stream-error:not-authorized \
	--forbid sasl-success >"$TMP/pipe-badcert.out" 2>&1 || {
	cat "$TMP/pipe-badcert.out"
	fail "case 1: pipelined EXTERNAL with the wrong certificate was not refused"
}
cat "$TMP/pipe-badcert.out"
grep -q '^flight=1 out .*clear=\[stream:stream,starttls\] tls=\[hs:ClientHello\]' \
	"$TMP/pipe-badcert.out" || fail "case 1: flight 1 was not header+starttls+ClientHello"
grep -q '^flight=[0-9]* out .*inner=\[stream:stream,auth,stream:stream,message' \
	"$TMP/pipe-badcert.out" || fail "case 1: auth, restart and message did not leave in one flight"
# On the wire: quickfed's answer to flight 1 is header + features + proceed + ServerHello.
grep -q '^answer=1 in .*clear=\[stream:stream,stream:features,.*proceed\] tls=\[hs:ServerHello' \
	"$TMP/pipe-badcert.out" || fail "case 1: quickfed's first answer was not features+proceed+ServerHello"

log "case 2: no client cert, wrong dialback key for b.example, message pipelined"
nsx "$PYTHON" "$PIPE" --host 127.0.1.1 --from b.example --to a.example --mode dialback \
	--dbkey 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
	--log "$TMP/pipe-badkey.log" --wait 6 --send "$MSG2" \
	--expect db-invalid --forbid db-valid >"$TMP/pipe-badkey.out" 2>&1 || {
	cat "$TMP/pipe-badkey.out"
	fail "case 2: pipelined dialback with a wrong key was not refused"
}
cat "$TMP/pipe-badkey.out"
grep -q '^flight=[0-9]* out .*inner=\[stream:stream,db:result,message' \
	"$TMP/pipe-badkey.out" || fail "case 2: db:result and message did not leave in one flight"

show_qf qfA
show_qf qfB
wait_for 20 grep -q 'pipelined stanza(s) discarded' "$TMP/qfA.log" ||
	fail "quickfed A did not log the discarded pipelined stanza"
grep 'pipelined stanza(s) discarded' "$TMP/qfA.log"
grep -q 'remote=b.example .*dialback key invalid' "$TMP/qfA.log" ||
	fail "quickfed A did not log the invalid dialback key of b.example"
v=$(qf_stat qfA stanzas.in)
[ "$v" = 0 ] || fail "quickfed A: stanzas.in=$v, expected 0 (something was delivered)"
log "quickfed A: stanzas.in=0 ok"
touch "$DONE"
client_wait alice
assert_stat_ge qfA auth.failures 2
assert_stat_ge qfB dialback.verify_answered 1
# quickfed A's only connection to b.example's server was the verify connection: what it
# showed (STARTTLS, TLS 1.3 in one round trip) is remembered, no SASL or dialback claimed
qfctl qfA show peercaps
qfctl qfA show peercaps | grep -q '^peercaps.b.example=.*external:0,dialback:0,tls_rounds:1,' ||
	fail "quickfed A did not remember b.example from its verify connection"
pass
