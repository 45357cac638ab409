#!/bin/bash
# tests/integ/11-relay-ac.sh - site A (behind quickfed) and plain Prosody C talk both ways.
# SPDX-License-Identifier: ISC
#
# C (c.example, 127.0.3.1:5269) has a self-signed cert, so quickfed A must fall back to
# dialback, both as initiator (A -> C) and as receiver (C -> A).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
sites_ac selfsigned

client_bg carol carol@c.example pass-c 127.0.3.1 \
	expect-message alice@a.example "hello from A" --timeout 20
client_bg alice alice@a.example pass-a 127.0.1.2 \
	send carol@c.example "hello from A" \
	expect-message carol@c.example "hello from C" --timeout 20
client_wait carol
client carol2 carol@c.example pass-c 127.0.3.1 send alice@a.example "hello from C" ||
	fail "carol could not send"
client_wait alice

show_qf qfA
assert_stat_ge qfA stanzas.out 1
assert_stat_ge qfA stanzas.in 1
assert_stat_ge qfA auth.dialback 1
pass
