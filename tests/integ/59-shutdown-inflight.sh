#!/bin/bash
# tests/integ/59-shutdown-inflight.sh - SIGTERM in the middle of a burst: every stanza is delivered or bounced.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab. alice sends 300 numbered messages to bob, 5 ms apart;
# once quickfed
# A has taken 30 of them from Prosody A, it gets SIGTERM. Each message must end up
# delivered to bob or bounced to alice (by quickfed A while it shuts down, or by
# Prosody A once quickfed A's local listener is gone): none may vanish. What made them
# vanish before (issue 11: "2 lost, loopback race at shutdown"): quickfed ended the
# local server's stream with a stream error and dropped whatever the local server had
# already written behind it. Now each stream ends our direction with </stream:stream>
# and is read until the peer closes its side; a link with stream management waits for
# the acks of what it sent. A message both delivered and bounced is allowed (at least
# once), none missing.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
sites_ab

client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm" --timeout 20
client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
client_wait bob0

stop="$TMP/stop"
client_bg bob --resource c bob@b.example pass-b 127.0.2.2 collect-until "$stop" --timeout 90
client_bg alice --resource s alice@a.example pass-a 127.0.1.2 \
	send-paced bob@b.example 300 5 collect-until "$stop" --timeout 90
taken_30() { [ "$(qf_stat qfA stanzas.out)" -ge 31 ]; }
wait_for 100 taken_30 || fail "quickfed A did not take the burst (stanzas.out=$(qf_stat qfA stanzas.out))"
log "quickfed A took $(qf_stat qfA stanzas.out) stanza(s): SIGTERM"
kill -TERM "$QF_PID_qfA"
rc=0
wait "$QF_PID_qfA" || rc=$?
[ "$rc" = 0 ] || fail "quickfed A exited with $rc after SIGTERM"
log "quickfed A stopped"

# Every number accounted for: delivered to bob or bounced to alice (each client prints
# a line per new number as it comes).
accounted() {
	[ "$(cat "$TMP/client-bob.out" "$TMP/client-alice.out" 2>/dev/null |
		awk '$1 == "delivered" || $1 == "bounced" { print $2 }' | sort -un | wc -l)" -ge 300 ]
}
wait_for 300 accounted || log "not every message accounted for within 60 s"
touch "$stop"
client_wait bob
client_wait alice
delivered=$(sed -n 's/^delivered=\([^ ]*\) .*/\1/p' "$TMP/client-bob.out")
bounced=$(sed -n 's/.* bounced=\(.*\)$/\1/p' "$TMP/client-alice.out")
missing=$(python3 - "$delivered" "$bounced" <<'PY'
import sys
d = {int(x) for x in sys.argv[1].split(",") if x}
b = {int(x) for x in sys.argv[2].split(",") if x}
print(len(d), len(b), len(d & b), ",".join(str(i) for i in range(1, 301) if i not in d | b))
PY
)
read -r nd nb nboth miss <<<"$missing"
log "delivered $nd, bounced $nb (both: $nboth), missing: ${miss:-none}"
[ -z "$miss" ] || fail "message(s) neither delivered nor bounced: $miss"
pass
