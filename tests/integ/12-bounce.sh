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
site_a_tarpit

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
