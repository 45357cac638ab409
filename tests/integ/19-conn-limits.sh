#!/bin/bash
# tests/integ/19-conn-limits.sh - connection limits: per listener, per address, shedding.
# SPDX-License-Identifier: ISC
#
# Site A (Prosody 127.0.1.2 + quickfed 127.0.1.1) with small limits: internet listener
# connections 20, limits { connections 30; connections_per_address 10 }, local listener
# connections 8. A raw s2s stream authenticated as b.example (SASL EXTERNAL, B's real
# certificate) is open first. Then tests/integ/flood.py opens 4 x 12 idle connections
# to the internet listener from 127.0.9.1-4, one source after the other: each source
# gets 10 and its 11th and 12th are refused at accept (conns.refused_per_address); once
# the listener holds 20, each newcomer sheds the oldest unauthenticated flood connection
# with <connection-timeout/> "shed under load" (conns.shed). While the internet listener
# is full, the local listener still accepts (a raw probe gets a stream header, and a
# message to a domain without DNS comes back as a bounce through the local leg; amy
# sends it, as a second login of alice would take over her session). Afterwards the
# authenticated stream, never shed, delivers a message to alice. Last, a flood of the
# local listener up to its own limit pauses it (conns.paused), nothing is shed there,
# and the internet listener answers meanwhile.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert B b.example
start_dns
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 "
limits {
	connections 30
	connections_per_address 10
}"
conf_in_block "$TMP/A-qf.conf" "listener internet" "connections 20"
conf_in_block "$TMP/A-qf.conf" "listener local" "connections 8"
# unauthenticated flood connections must outlive the checks below (connect + auth)
conf_set "$TMP/A-qf.conf" auth 25s
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270
register A alice a.example pass-a
register A amy a.example pass-amy

listeners=$(qfctl qfA show listeners)
echo "$listeners"
echo "$listeners" | grep -qx 'listener.0.limit=20' || fail "internet listener limit is not 20"
echo "$listeners" | grep -qx 'listener.1.kind=local' || fail "listener 1 is not the local one"
echo "$listeners" | grep -qx 'listener.1.limit=8' || fail "local listener limit is not 8"
echo "$listeners" | grep -qx 'internet.per_address_limit=10' || fail "per-address limit is not 10"

# Alice waits for the message the authenticated stream sends after the flood.
client_bg alice alice@a.example pass-a 127.0.1.2 \
	expect-message x@b.example "still authenticated" --timeout 45

P=$TMP/pki
ip netns exec "$NS" "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 \
	--port 5269 --from b.example --to a.example --cert "$P/B.crt" --key "$P/B.key" \
	--log "$TMP/s2sraw-auth.log" --wait 40 --send-after "$TMP/flood.released" \
	--send "<message from='x@b.example' to='alice@a.example' type='chat'><body>still authenticated</body></message>" \
	>"$TMP/s2sraw-auth.out" 2>&1 &
RAW_PID=$!
track_pid $RAW_PID
wait_for 50 grep -q AUTHENTICATED-AND-SENT "$TMP/s2sraw-auth.out" || {
	cat "$TMP/s2sraw-auth.out"
	fail "the b.example stream did not authenticate"
}
assert_stat_ge qfA auth.external 1

# The flood: 48 idle connections from 4 sources, held until released (at most 40 s).
bg flood "$PYTHON" "$QF_TOP/tests/integ/flood.py" --host 127.0.1.1 --port 5269 \
	--sources 127.0.9.1,127.0.9.2,127.0.9.3,127.0.9.4 --per-source 12 --settle 1.5 \
	--hold 40 --report "$TMP/flood.report" --ready "$TMP/flood.ready" \
	--release "$TMP/flood.released"
FLOOD_PID=$LAST_PID
flood_ready() { [ -f "$TMP/flood.ready" ] || { kill -0 "$FLOOD_PID" && false; }; }
wait_for 100 flood_ready && [ -f "$TMP/flood.ready" ] || fail "flood.py did not settle"
cat "$TMP/flood.report"
flood_val() { awk -F= -v k="$1" '$1 == k { print $2 }' "$TMP/flood.report"; }

show_qf qfA
# refused: the 11th and 12th of each source (8); shed: every newcomer once the listener
# holds 20 (the stream of b.example and 19 flood connections): 1 + 10 + 10 = 21
assert_stat_ge qfA conns.refused_per_address 8
assert_stat_ge qfA conns.shed 21
[ "$(flood_val refused)" -ge 8 ] || fail "flood saw $(flood_val refused) refusals, want >= 8"
[ "$(flood_val shed)" -ge 21 ] || fail "flood saw $(flood_val shed) 'shed under load', want >= 21"
[ "$(flood_val alive)" -eq 19 ] || fail "flood holds $(flood_val alive) connections, want 19"
grep -q 'refused a connection from 127.0.9.1: it holds 10' "$TMP/qfA.log" ||
	fail "no per-address refusal line for 127.0.9.1"
[ "$(grep -c 'refused a connection from 127.0.9.1' "$TMP/qfA.log")" -eq 1 ] ||
	fail "more than one refusal line for 127.0.9.1 within 10 s"
[ "$(grep -c 'internet:127.0.1.1:5269: full .*: shedding the oldest unauthenticated' \
	"$TMP/qfA.log")" -eq 1 ] || fail "not exactly one shedding line within 10 s"
listeners=$(qfctl qfA show listeners)
echo "$listeners"
echo "$listeners" | grep -qx 'listener.0.connections=20' || fail "internet listener not full"

# The local listener is not affected: a raw connect gets a stream header ...
nsx "$PYTHON" "$QF_TOP/tests/integ/flood.py" --probe --host 127.0.1.1 --port 5270 \
	--from a.example --to probe.example ||
	fail "the local listener did not answer while the internet listener was full"
# ... and Prosody reaches quickfed through it (a new s2s connection for nx.example)
client amy amy@a.example pass-amy 127.0.1.2 \
	send x@nx.example "to nowhere" \
	expect-error nx.example remote-server-not-found --timeout 15 ||
	fail "no bounce through the local listener while the internet listener was full"

listeners=$(qfctl qfA show listeners)
echo "$listeners" | grep -qx 'listener.0.connections=20' ||
	fail "the internet listener was no longer full during the local checks"
echo "$listeners" | grep -q '^listener\.1\.connections=[1-8]$' ||
	fail "Prosody's connection to the local listener is not counted there"
[ "$(grep -c 'local-in accepted' "$TMP/qfA.log")" -ge 2 ] ||
	fail "the probe and Prosody were not both accepted on the local listener"

# The authenticated stream was never shed: it still carries a message.
qfctl qfA show peers | grep -q '^peer\.[0-9]*\.auth=external$' ||
	fail "the authenticated stream is gone"
touch "$TMP/flood.released"
client_wait alice
wait "$RAW_PID" || { cat "$TMP/s2sraw-auth.out"; fail "the b.example stream failed"; }
grep -q "SENT-AFTER" "$TMP/s2sraw-auth.out" || fail "s2sraw did not send after the flood"

# The other way round: 10 idle connections to the local listener (limit 8, Prosody's
# own included): it stops accepting at 8 - nothing is shed there, the rest wait in
# the kernel's backlog - while the internet listener accepts.
bg flood-local "$PYTHON" "$QF_TOP/tests/integ/flood.py" --host 127.0.1.1 --port 5270 \
	--sources 127.0.8.1 --per-source 10 --settle 1.5 --hold 20 \
	--report "$TMP/flood-local.report" --ready "$TMP/flood-local.ready" \
	--release "$TMP/flood-local.released"
FLOOD_PID=$LAST_PID
flood_local_ready() { [ -f "$TMP/flood-local.ready" ] || { kill -0 "$FLOOD_PID" && false; }; }
wait_for 100 flood_local_ready && [ -f "$TMP/flood-local.ready" ] ||
	fail "flood.py (local) did not settle"
cat "$TMP/flood-local.report"
local_full() { qfctl qfA show listeners | grep -qx 'listener.1.connections=8'; }
wait_for 25 local_full || fail "the local listener does not hold its 8 connections"
assert_stat_ge qfA conns.paused 1
grep -q 'listener local:127.0.1.1:5270: not accepting for 1s: connection limit reached' \
	"$TMP/qfA.log" || fail "no pause line for the local listener"
nsx "$PYTHON" "$QF_TOP/tests/integ/flood.py" --probe --host 127.0.1.1 --port 5269 \
	--from b.example --to a.example ||
	fail "the internet listener did not answer while the local listener was full"
[ "$(awk -F= '$1 == "refused" || $1 == "shed" { n += $2 } END { print n + 0 }' \
	"$TMP/flood-local.report")" -eq 0 ] || fail "the local listener refused or shed"
touch "$TMP/flood-local.released"
local_room() { qfctl qfA show listeners | grep -q '^listener\.1\.connections=[0-7]$'; }
wait_for 50 local_room || fail "the local listener did not recover"
show_qf qfA
pass
