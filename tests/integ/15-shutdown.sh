#!/bin/bash
# tests/integ/15-shutdown.sh - SIGTERM: queued stanzas are bounced, streams end cleanly.
# SPDX-License-Identifier: ISC
#
# A message to slow.example (a tarpit: TCP accepted, never answered) sits in quickfed A's
# queue while the set-up hangs. quickfed A gets SIGTERM before its 4 s set-up timeout:
# the sender must receive remote-server-timeout at once (not silence), the bounce must say
# it was the shutdown, and quickfed must exit 0 with no sanitizer report.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
site_a_tarpit

queued() { qfctl qfA show routes | grep -q '^route\.out\.a\.example\.slow\.example\.queued=1$'; }

client_bg alice alice@a.example pass-a 127.0.1.2 \
	send x@slow.example "queued at shutdown" \
	expect-error slow.example remote-server-timeout --timeout 15
wait_for 15 queued || fail "the stanza never showed up queued in show routes"
qfctl qfA show routes >&2
log "stanza queued; sending SIGTERM to quickfed A"
kill -TERM "$QF_PID_qfA"
client_wait alice
rc=0
wait "$QF_PID_qfA" || rc=$?
[ "$rc" = 0 ] || fail "quickfed A exited with $rc after SIGTERM"
grep -q 'remote=slow.example failed: shutting down' "$TMP/qfA.log" ||
	fail "quickfed A's log does not say the slow.example route failed for the shutdown"
grep -q 'bounce message stanza .*error=remote-server-timeout' "$TMP/qfA.log" ||
	fail "quickfed A's log has no bounce line"
grep -q 'quickfed stopped' "$TMP/qfA.log" || fail "quickfed A did not log its stop"
log "quickfed A exited 0 after bouncing the queued stanza"
pass
