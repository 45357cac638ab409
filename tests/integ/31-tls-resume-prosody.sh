#!/bin/bash
# tests/integ/31-tls-resume-prosody.sh - quickfed's TLS resumption against real Prosody.
# SPDX-License-Identifier: ISC
#
# Site A behind quickfed, plain Prosody C as the receiver (as in 11-relay-ac.sh, but C
# holds a CA-signed certificate). Prosody 0.12 (LuaSec/OpenSSL) sends TLS 1.3 session
# tickets; this test records what then happens when quickfed A restarts and reconnects
# with the saved session, reading "show tls" only. Observed (Debian 12, Prosody 0.12.3):
# quickfed stores the ticket and offers it, Prosody answers with a full handshake (it
# requests a client certificate and OpenSSL does not resume such sessions without a
# session id context, which Prosody does not set), and quickfed carries on without an
# error. If this starts to resume, Prosody changed: update the assertion below.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
sites_ac ca

one_message() {
	client_bg "carol$1" carol@c.example pass-c 127.0.3.1 \
		expect-message alice@a.example "hello $1" --timeout 20
	client "alice$1" alice@a.example pass-a 127.0.1.2 send carol@c.example "hello $1" ||
		fail "alice could not send message $1"
	client_wait "carol$1"
}

one_message 1
qfctl qfA show tls
[ "$(tls_val qfA tls.handshakes.full.client)" -ge 1 ] || fail "no full client handshake on A"
# Prosody's ticket arrived with its stream header and was kept
[ "$(tls_val qfA tls.store.entries)" -ge 1 ] || fail "A kept no session from Prosody's ticket"

restart_quickfed qfA
one_message 2
qfctl qfA show tls
full=$(tls_val qfA tls.handshakes.full.client)
resumed=$(tls_val qfA tls.handshakes.resumed.client)
echo "against Prosody after restarting A: full=$full resumed=$resumed rate=$(tls_val qfA tls.resumption_rate)%"
[ "$full" -ge 1 ] && [ "$resumed" = 0 ] ||
	fail "expected a full handshake with Prosody (full=$full resumed=$resumed)"
[ "$(tls_val qfA tls.store.rejected)" = 0 ] || fail "A rejected its saved session"
pass
