#!/bin/bash
# tests/integ/12-bounce.sh - undeliverable stanzas come back to the sender as errors.
# SPDX-License-Identifier: ISC
#
# nx.example has no DNS at all (remote-server-not-found); slow.example points at a
# tarpit that accepts TCP and never answers, so quickfed A's 4 s setup timeout fires
# (remote-server-timeout).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
dns_xmpp slow.example 127.0.4.1
start_dns
bg tarpit "$PYTHON" "$QF_TOP/tests/integ/tarpit.py" --host 127.0.4.1 --port 5269 --seconds 60
wait_for 25 port_open 127.0.4.1 5269 || fail "tarpit did not listen"
site_proxied_start A a.example 127.0.1.1 127.0.1.2
register A alice a.example pass-a

client alice alice@a.example pass-a 127.0.1.2 \
	send x@nx.example "to nowhere" \
	expect-error nx.example remote-server-not-found --timeout 15 ||
	fail "no remote-server-not-found bounce for nx.example"
client alice2 alice@a.example pass-a 127.0.1.2 \
	send x@slow.example "to the tarpit" \
	expect-error slow.example remote-server-timeout --timeout 20 ||
	fail "no remote-server-timeout bounce for slow.example"

show_qf qfA
assert_stat_ge qfA bounces 2
pass
