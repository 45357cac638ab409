#!/bin/bash
# tests/integ/05-prosody-direct.sh - validate the harness: two plain Prosodies federate via the namespace DNS.
# SPDX-License-Identifier: ISC
#
# No quickfed involved. Site C (c.example, self-signed cert, so links to it use dialback)
# and site D (d.example, CA-signed cert) find each other through nsd's SRV records and
# exchange one message in each direction.
. "$(dirname "$0")/lib.sh"

setup_ns
make_ca
make_selfsigned C c.example
make_cert D d.example
dns_xmpp c.example 127.0.3.1
dns_xmpp d.example 127.0.6.1
start_dns
start_prosody C c.example 127.0.3.1 direct
start_prosody D d.example 127.0.6.1 direct
register C carol c.example pass-c
register D dave d.example pass-d

client_bg dave dave@d.example pass-d 127.0.6.1 \
	expect-message carol@c.example "hello from C" --timeout 20
client_bg carol carol@c.example pass-c 127.0.3.1 \
	send dave@d.example "hello from C" \
	expect-message dave@d.example "hello from D" --timeout 20
client_wait dave
client dave2 dave@d.example pass-d 127.0.6.1 send carol@c.example "hello from D" ||
	fail "dave could not send"
client_wait carol
# Show how the links were authenticated (C's cert is self-signed: dialback expected).
grep -h 'authenticated' "$TMP/C.log" "$TMP/D.log" | grep -i 's2s\|dialback\|external' | head -n 6 || true
pass
