#!/bin/bash
# tests/integ/18-spoof-held.sh - a held stanza is released only by its own pair's verdict.
# SPDX-License-Identifier: ISC
#
# Issue 9 §1 (sender spoofing). The attacker owns evil.example and runs its authoritative
# server (a quickfed for evil.example whose dialback secret the attacker knows). On one
# TLS stream to quickfed A, without a client certificate, it pipelines
#   db:result from=evil.example (a key evil.example's server confirms),
#   db:result from=c.example    (garbage; c.example's server is a tarpit, so its
#                                verdict comes late, by timeout),
#   <message from='mallory@c.example' to='alice@a.example'>spoof</message>,
#   <message from='eve@evil.example'  to='alice@a.example'>own</message>.
# evil.example's valid verdict must release its own message only: alice (real Prosody
# behind quickfed A) receives "own" and never "spoof"; c.example's verdict (invalid,
# timeout) discards the held spoof, counted in show stats held.discarded, and ends the
# stream with not-authorized.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_selfsigned E evil.example
dns_xmpp evil.example 127.0.4.1
dns_xmpp c.example 127.0.3.1
start_dns
SECRET=attacker-controlled-dialback-secret
# evil.example's authoritative server: answers db:verify with SECRET's keys.
write_quickfed_conf "$TMP/E-qf.conf" E evil.example E 127.0.4.1 127.0.4.2 \
	"dialback_secret $SECRET"
start_quickfed qfE "$TMP/E-qf.conf"
# c.example's server accepts and never answers: its verification hangs.
bg tarpit "$PYTHON" "$QF_TOP/tests/integ/tarpit.py" --host 127.0.3.1 --port 5269 --seconds 60
wait_for 25 port_open 127.0.3.1 5269 || fail "tarpit did not listen"
site_proxied_start A a.example 127.0.1.1 127.0.1.2
register A alice a.example pass-a

client_bg alice alice@a.example pass-a 127.0.1.2 expect-message eve@evil.example own --timeout 30

nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from evil.example --to a.example --sasl none --log "$TMP/attacker.xml.log" \
	--db-result "evil.example=$SECRET" --db-result "c.example=-garbage" \
	--send "<message from='mallory@c.example' to='alice@a.example' type='chat'><body>spoof</body></message>" \
	--send "<message from='eve@evil.example' to='alice@a.example' type='chat'><body>own</body></message>" \
	--wait 30 --expect-stream-error not-authorized >"$TMP/attacker.log" 2>&1 || {
	cat "$TMP/attacker.log"
	fail "the stream did not end with not-authorized after c.example's verdict"
}
cat "$TMP/attacker.log"
grep -q 'to="evil.example" type="valid"' \
	"$TMP/attacker.log" || fail "evil.example was never verified (test set-up broken)"
client_wait alice
show_qf qfA
if grep -q 'spoof' "$TMP/client-alice.log"; then
	fail "alice received the message spoofed as mallory@c.example"
fi
assert_stat_ge qfA held.released 1
assert_stat_ge qfA held.discarded 1
assert_stat_ge qfA stream_errors.sent.not-authorized 1
pass
