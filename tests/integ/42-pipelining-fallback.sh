#!/bin/bash
# tests/integ/42-pipelining-fallback.sh - a peer that stops pipelining still gets its mail.
# SPDX-License-Identifier: ISC
#
# Quickfed A learns that b.example pipelines (message 1 through quickfed B). Then site B
# is replaced, on the same address, by a plain Prosody for b.example that knows nothing
# of XEP-0305. Message 2 must still arrive: A's pipelined attempt fails, A forgets what
# it knew about b.example ("peercaps b.example forgotten") and retries unpipelined.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

need_quickfed
setup_ns
sites_ab

pipe_learn_b

log "replacing site B with a plain Prosody for b.example on 127.0.2.1:5269"
pipe_drop_b
aline=$(wc -l <"$TMP/qfA.log")
start_prosody B2 b.example 127.0.2.1 direct cert B
register B2 bob b.example pass-b2

log "message 2: b.example cached as pipelining, but no longer does"
client_bg bob2 bob@b.example pass-b2 127.0.2.1 \
	expect-message alice@a.example "message 2" --timeout 20
client alice2 alice@a.example pass-a 127.0.1.2 send bob@b.example "message 2" ||
	fail "alice could not send message 2"
client_wait bob2
show_qf qfA

L=$TMP/qfA-after.log
tail -n +"$((aline + 1))" "$TMP/qfA.log" >"$L"
for id in $(qf_conn_ids "$L" a.example b.example); do
	qf_flights "$L" "$id"
	grep -E "conn=$id .*(close|error|fail|ready)" "$L" | head -n 5
done
ids=$(qf_conn_ids "$L" a.example b.example)
first=$(echo "$ids" | head -n 1)
qf_flights "$L" "$first" | grep -q 'flight=1 out .*clear=\[stream:stream,starttls\] tls=\[hs:ClientHello\]' ||
	fail "quickfed A's first attempt to the new b.example was not pipelined (conn=$first)"
grep 'peercaps b.example forgotten' "$L" ||
	fail "quickfed A did not log 'peercaps b.example forgotten'"
grep -q 's2s-out local=a.example remote=b.example ready' "$L" ||
	fail "quickfed A has no ready connection to the new b.example"
qfctl qfA show peercaps
peercaps_has qfA b.example 'pipelining:0' ||
	log "note: b.example not (yet) re-learned as non-pipelining"
pass
