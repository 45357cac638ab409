#!/bin/bash
# tests/integ/13-abuse.sh - quickfed A refuses spoofed senders and open relaying.
# SPDX-License-Identifier: ISC
#
# An attacker holding B's real cert authenticates as b.example (SASL EXTERNAL) to quickfed
# A's internet listener. A stanza from c.example on that stream must end it with
# invalid-from; a stanza to a domain A does not serve must end it with host-unknown.
# Neither may be delivered: quickfed A's counters say that it routed nothing
# (stanzas.in=0) once both attackers got their stream errors, and only then do the
# users' clients stop listening.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert B b.example
dns_xmpp b.example 127.0.2.1
make_selfsigned C c.example
dns_xmpp c.example 127.0.3.1
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2
start_prosody C c.example 127.0.3.1 direct
register A alice a.example pass-a
register C carol c.example pass-c

P=$TMP/pki
DONE=$TMP/attacks-done
client_bg alice alice@a.example pass-a 127.0.1.2 expect-nothing-until "$DONE" --timeout 90
client_bg carol carol@c.example pass-c 127.0.3.1 expect-nothing-until "$DONE" --timeout 90

nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--log "$TMP/s2sraw-spoof.log" --wait 5 \
	--send "<message from='x@c.example' to='alice@a.example' type='chat'><body>spoofed</body></message>" \
	--expect-stream-error invalid-from ||
	fail "spoofed from c.example was not refused with invalid-from"

nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--log "$TMP/s2sraw-relay.log" --wait 5 \
	--send "<message from='x@b.example' to='carol@c.example' type='chat'><body>relayed</body></message>" \
	--expect-stream-error host-unknown ||
	fail "open relay to c.example was not refused with host-unknown"

show_qf qfA
v=$(qf_stat qfA stanzas.in)
[ "$v" = 0 ] || fail "quickfed A: stanzas.in=$v, expected 0 (something was routed)"
log "quickfed A: stanzas.in=0 ok"
touch "$DONE"
client_wait alice
client_wait carol
assert_stat_ge qfA stream_errors.sent.invalid-from 1
assert_stat_ge qfA stream_errors.sent.host-unknown 1

# New names without end: 300 messages each with a namespace of its own (2 KB each, 600 KB
# of names) on one authenticated stream. quickfed's XML parser keeps every name it saw;
# past 64 KiB it is renewed between stanzas (xml.dict_renewals) instead of growing, and
# the stream is not ended for it: every message is relayed (to a user who does not exist;
# Prosody answers with errors, which go nowhere).
in0=$(qf_stat qfA stanzas.in)
nsx "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--log "$TMP/s2sraw-names.log" --wait 3 \
	--flood 300 --flood-ns --flood-size 2000 --flood-to nobody@a.example \
	--flood-from x@b.example ||
	fail "the stream with new names in every message failed"
grep -q "stream:error" "$TMP/s2sraw-names.log" && fail "new names ended the stream"
wait_stat_ge qfA stanzas.in $((in0 + 300)) 30 ||
	fail "not every message with a namespace of its own was relayed: $(qf_stat qfA stanzas.in) in"
assert_stat_ge qfA xml.dict_renewals 5
pass
