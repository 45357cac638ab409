#!/bin/bash
# tests/integ/10-relay-ab.sh - a user on site A and a user on site B talk through two quickfeds.
# SPDX-License-Identifier: ISC
#
# A = Prosody 127.0.1.2 + quickfed 127.0.1.1, B = Prosody 127.0.2.2 + quickfed 127.0.2.1.
# Both quickfeds hold CA-signed certs, so the internet leg must use SASL EXTERNAL. Once
# idle, both give their heap's free pages back to the kernel.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
sites_ab

client_bg bob bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "hello from A" --timeout 20
client_bg alice alice@a.example pass-a 127.0.1.2 \
	send bob@b.example "hello from A" \
	expect-message bob@b.example "hello from B" --timeout 20
client_wait bob
client bob2 bob@b.example pass-b 127.0.2.2 send alice@a.example "hello from B" ||
	fail "bob could not send"
client_wait alice

show_qf qfA
show_qf qfB
assert_stat_ge qfA stanzas.out 1
assert_stat_ge qfA stanzas.in 1
assert_stat_ge qfA auth.external 1
# Once its connections have gone quiet (2 s without input: conns.quieted) and a second
# has passed with no more traffic, each quickfed gives its heap's free pages back
# (core/main.c, core/memtrim.c): heap.trims counts it, heap.trim_due is 0 after it.
for q in qfA qfB; do
	wait_settled $q ||
		fail "$q: not settled: $(qf_stat $q heap.trims) trims, trim_due=$(qf_stat $q heap.trim_due)"
	assert_stat_ge $q conns.quieted 1
	assert_stat_ge $q heap.trims 1
	# the event loop's turns are counted and timed (core/loopwatch.c): it turned and
	# worked, and the slow-turn counts are subsets (>= 10 ms within >= 1 ms within all)
	assert_stat_ge $q loop.turns 1
	assert_stat_ge $q loop.busy_us 1
	assert_stat_ge $q loop.max_us 1
	t=$(qf_stat $q loop.turns) s1=$(qf_stat $q loop.turns_over_1ms) s10=$(qf_stat $q loop.turns_over_10ms)
	[ "$s10" -le "$s1" ] && [ "$s1" -le "$t" ] ||
		fail "$q: loop counts not nested: $t turns, $s1 over 1 ms, $s10 over 10 ms"
done
pass
