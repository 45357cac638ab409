#!/bin/bash
# tests/integ/21-dns-targets.sh - target selection: XEP-0368 mix, A fallback, Happy Eyeballs.
# SPDX-License-Identifier: ISC
#
# Prosody B (127.0.3.1, s2s on 5269 only) serves mix.sec, fb.sec and he.sec, all in the
# signed zone sec. mix.sec has _xmpps-server targets at priorities 0 (port 5270, closed)
# and 10 (port 5271) and an _xmpp-server one at priority 5 (5269): the priority-0 target
# may be tried (direct TLS), the priority-10 one never, and the message arrives.
# fb.sec has no SRV at all, only an A record: quickfed falls back to A:5269. he.sec's
# first SRV target is a SYN hole (synhole.py: connect() hangs) and the second is B:
# with attempt_delay 300ms and a connect timeout of 8s quickfed starts the second
# attempt 0.3 s after the first, it wins, the hanging one is closed, and the message
# arrives long before the first attempt could have timed out.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
zone_add sec signed
site_dnssec_prepare A a.sec 127.0.1.1 sec
make_cert_multi B mix.sec fb.sec he.sec
zone_rr sec "_xmpps-server._tcp.mix.sec. 300 IN SRV 0 0 5270 xmpp.mix.sec."
zone_rr sec "_xmpps-server._tcp.mix.sec. 300 IN SRV 10 0 5271 xmpp.mix.sec."
zone_rr sec "_xmpp-server._tcp.mix.sec. 300 IN SRV 5 0 5269 xmpp.mix.sec."
zone_rr sec "xmpp.mix.sec. 300 IN A 127.0.3.1"
zone_rr sec "fb.sec. 300 IN A 127.0.3.1"
zone_rr sec "_xmpp-server._tcp.he.sec. 300 IN SRV 0 0 5269 hole.he.sec."
zone_rr sec "_xmpp-server._tcp.he.sec. 300 IN SRV 10 0 5269 xmpp.he.sec."
zone_rr sec "hole.he.sec. 300 IN A 127.0.6.1"
zone_rr sec "xmpp.he.sec. 300 IN A 127.0.3.1"
start_dns_zones

bg synhole "$PYTHON" "$QF_TOP/tests/integ/synhole.py" --host 127.0.6.1 --port 5269 --seconds 50
wait_for 25 grep -q 'SYNs dropped' "$TMP/synhole.log" || fail "synhole did not start"

site_dnssec_write A a.sec 127.0.1.1 127.0.1.2
conf_set "$TMP/A-qf.conf" connect 8s
conf_set "$TMP/A-qf.conf" setup 20s
conf_set "$TMP/A-qf.conf" auth 10s
conf_in_block "$TMP/A-qf.conf" timeouts "attempt_delay 300ms"
# the three domains live on one server with one certificate: multiplexing would put
# fb.sec and he.sec on mix.sec's link (46-multiplex.sh); here each must pick its targets
conf_in_block "$TMP/A-qf.conf" policy "multiplex off"
site_dnssec_start A a.sec 127.0.1.1 127.0.1.2
start_prosody_hosts B 127.0.3.1 B mix.sec fb.sec he.sec
register A alice a.sec pass-a
register B mia mix.sec pass-m
register B fred fb.sec pass-f
register B hank he.sec pass-h

client_bg mia mia@mix.sec pass-m 127.0.3.1 expect-message alice@a.sec "mixed hello" --timeout 20
client_bg fred fred@fb.sec pass-f 127.0.3.1 expect-message alice@a.sec "fallback hello" --timeout 20
client_bg hank hank@he.sec pass-h 127.0.3.1 expect-message alice@a.sec "eyeballs hello" --timeout 6
t0=$(date +%s.%N)
client alice alice@a.sec pass-a 127.0.1.2 \
	send mia@mix.sec "mixed hello" \
	send fred@fb.sec "fallback hello" \
	send hank@he.sec "eyeballs hello" \
	expect-nothing --timeout 1 || fail "alice got an error back"
client_wait hank
t1=$(date +%s.%N)
client_wait mia
client_wait fred

show_qf qfA
L=$TMP/qfA.log
# XEP-0368: the priority-10 xmpps target is never needed; 5270 (if tried) came first
grep -q 'attempt [0-9]* to 127.0.3.1:5271 ' "$L" && fail "mix.sec: priority-10 target attempted"
m69=$(grep -n 'attempt [0-9]* to 127.0.3.1:5269 (xmpp.mix.sec)' "$L" | head -n 1 | cut -d: -f1)
[ -n "$m69" ] || fail "mix.sec: no attempt to the _xmpp-server target"
m70=$(grep -n 'attempt [0-9]* to 127.0.3.1:5270 (xmpp.mix.sec)' "$L" | head -n 1 | cut -d: -f1)
if [ -n "$m70" ]; then
	[ "$m70" -lt "$m69" ] || fail "mix.sec: priority order not kept"
	log "mix.sec: direct TLS target (prio 0) tried first, then xmpp (prio 5)"
else
	log "mix.sec: direct TLS target not attempted (not enabled in the connector yet)"
fi
# A fallback
grep -q 'attempt [0-9]* to 127.0.3.1:5269 (fb.sec)' "$L" || fail "fb.sec: no A-record fallback attempt"
# Happy Eyeballs
grep -q 'attempt [0-9]* to 127.0.6.1:5269 (hole.he.sec)' "$L" || fail "he.sec: hole not tried first"
grep -q 'connect: 127.0.3.1:5269 (xmpp.he.sec) won the race against 1 other' "$L" ||
	fail "he.sec: no race won by xmpp.he.sec"
grep -q 'remote=he.sec addr=127.0.6.1:5269 closed reason=happy-eyeballs-lost' "$L" ||
	fail "he.sec: the hanging attempt was not closed as the loser"
ta=$(grep 'attempt [0-9]* to 127.0.6.1:5269 (hole.he.sec)' "$L" | head -n 1 | awk '{ print $1 }')
tb=$(grep 'attempt [0-9]* to 127.0.3.1:5269 (xmpp.he.sec)' "$L" | head -n 1 | awk '{ print $1 }')
gap=$("$PYTHON" - "$ta" "$tb" <<'PY'
import sys, datetime
f = lambda s: datetime.datetime.strptime(s.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
print("%.3f" % (f(sys.argv[2]) - f(sys.argv[1])).total_seconds())
PY
)
el=$(echo "$t1 - $t0" | bc)
log "he.sec: second attempt started ${gap}s after the first (attempt_delay 300ms); delivered in ${el}s (connect timeout 8s)"
awk -v g="$gap" 'BEGIN { exit !(g >= 0.29 && g < 1.5) }' || fail "attempt gap ${gap}s not ~0.3s"
awk -v e="$el" 'BEGIN { exit !(e < 6) }' || fail "delivery took ${el}s"
pass
