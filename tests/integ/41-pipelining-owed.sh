#!/bin/bash
# tests/integ/41-pipelining-owed.sh - a refused pipelined STARTTLS still gets our close, at once.
# SPDX-License-Identifier: ISC
#
# Quickfed A learns that b.example pipelines (message 1 through quickfed B). Then B's
# address is taken by tests/integ/nostarttls.py, a peer whose features offer no
# STARTTLS. A's next attempt sends header + <starttls/> + ClientHello in one write; the
# features refuse it ("pipelined-starttls-refused"). The TLS session never started (no
# <proceed/>), so what A owes the peer, its </stream:stream>, must go out in the clear
# and the connection must close at once: not be dropped, not held for a TLS that cannot
# start (which kept the close, and the retry behind it, waiting timeouts { shutdown }).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

need_quickfed
setup_ns
sites_ab

pipe_learn_b

log "replacing site B with a peer that offers no STARTTLS on 127.0.2.1:5269"
pipe_drop_b
aline=$(wc -l <"$TMP/qfA.log")
bg nostarttls "$PYTHON" "$QF_TOP/tests/integ/nostarttls.py" --host 127.0.2.1 \
	--domain b.example --seconds 60
wait_for 50 grep -q listening "$TMP/nostarttls.log" || fail "nostarttls.py did not start"

log "message 2: b.example cached as pipelining, now refuses STARTTLS"
client alice2 alice@a.example pass-a 127.0.1.2 send bob@b.example "message 2" ||
	fail "alice could not send message 2"
wait_for 100 grep -q '^conn=1 ' "$TMP/nostarttls.log" ||
	fail "the pipelined connection to the no-STARTTLS peer did not end"
cat "$TMP/nostarttls.log"
L=$TMP/qfA-after.log
tail -n +"$((aline + 1))" "$TMP/qfA.log" >"$L"
first=$(qf_conn_ids "$L" a.example b.example | head -n 1)
qf_flights "$L" "$first"
qf_flights "$L" "$first" | grep -q 'flight=1 out .*clear=\[stream:stream,starttls\] tls=\[hs:ClientHello\]' ||
	fail "quickfed A's attempt was not pipelined (conn=$first)"
grep -q "conn=$first .*reason=pipelined-starttls-refused" "$L" ||
	fail "quickfed A did not close conn=$first with reason pipelined-starttls-refused"
line=$(grep '^conn=1 ' "$TMP/nostarttls.log")
case $line in
*'ends=</stream:stream>'*) log "the refused attempt sent its </stream:stream>" ;;
*) fail "the refused attempt did not end with </stream:stream> in the clear: $line" ;;
esac
after=$(echo "$line" | sed 's/.*eof_after=\([0-9.]*\).*/\1/')
awk -v a="$after" 'BEGIN { exit !(a < 1.0) }' ||
	fail "quickfed A closed ${after}s after the features (timeouts { shutdown } is 3s)"
log "closed ${after}s after the refusing features"
grep 'peercaps b.example forgotten' "$L" ||
	fail "quickfed A did not forget that b.example pipelines"
pass
