#!/bin/bash
# tests/integ/52-hostile-verify.sh - dialback verifications are capped, shared and cancelled.
# SPDX-License-Identifier: ISC
#
# Issue 9 §2. Hostile peers send db:results for domains whose servers hang (d1..d5
# .hang.example all point at a tarpit that accepts and never answers), with quickfed A
# configured with limits { verifications 6; held 16k }:
#  - A1 asks for d1..d4 and pipelines 100 x 500-byte stanzas behind d1: 4 jobs in 4
#    sessions; reading A1 pauses at the held budget (held.paused).
#  - A2 asks for d1 and d2: its jobs share A1's sessions (6 jobs, still 4 sessions, so
#    still 4 connections to the tarpit).
#  - A3 asks for d5: the cap is reached, it gets a dialback error (verify.refused) and
#    no session starts.
#  - A1 goes away: its jobs are cancelled, the sessions only it needed (d3, d4) end and
#    their connections close; its held stanzas are discarded (held.discarded). Then A2
#    goes: nothing is left pending, no verify connection stays open.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
dns_rr "*.hang.example. 300 IN A 127.0.4.1"
start_dns
bg tarpit "$PYTHON" "$QF_TOP/tests/integ/tarpit.py" --host 127.0.4.1 --port 5269 --seconds 90
wait_for 25 port_open 127.0.4.1 5269 || fail "tarpit did not listen"
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 \
	"limits {
	verifications 6
	held 16k
}"
conf_set "$TMP/A-qf.conf" auth 60s     # the verifications hang; nothing times out here
conf_set "$TMP/A-qf.conf" connect 60s
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270

# attacker NAME ARGS...: a raw stream from evil.example without a certificate.
attacker() {
	local name=$1
	shift
	ip netns exec "$NS" "$PYTHON" "$QF_TOP/tests/integ/s2sraw.py" --host 127.0.1.1 \
		--port 5269 --from evil.example --to a.example --sasl none --wait 80 \
		--log "$TMP/$name.xml.log" "$@" >"$TMP/$name.log" 2>&1 &
	track_pid $!
	eval "PID_$name=$!"
}
stat_is() { [ "$(qf_stat qfA "$1")" = "$2" ]; }
stat_ge() { [ "$(qf_stat qfA "$1")" -ge "$2" ]; }
verify_conns() { qfctl qfA show peers | grep -c '\.purpose=verify$' || true; }
verify_conns_are() { [ "$(verify_conns)" = "$1" ]; }

attacker A1 --db-result d1.hang.example=-k1 --db-result d2.hang.example=-k2 \
	--db-result d3.hang.example=-k3 --db-result d4.hang.example=-k4 \
	--flood 100 --flood-size 500 --flood-from x@d1.hang.example --flood-to alice@a.example
wait_for 100 stat_is verify.pending 4 || fail "A1's 4 verifications did not start"
wait_for 50 stat_is verify.sessions 4 || fail "not 4 sessions for A1"
wait_for 50 stat_ge held.paused 1 || fail "A1 was not paused at the held budget"
wait_for 50 verify_conns_are 4 || fail "not 4 verify connections: $(verify_conns)"

attacker A2 --db-result d1.hang.example=-k5 --db-result d2.hang.example=-k6
wait_for 100 stat_is verify.pending 6 || fail "A2's verifications did not start"
stat_is verify.sessions 4 || fail "A2's jobs did not share the sessions: $(qf_stat qfA verify.sessions)"
verify_conns_are 4 || fail "A2's jobs opened connections of their own: $(verify_conns)"

attacker A3 --db-result d5.hang.example=-k7
wait_for 100 stat_ge verify.refused 1 || fail "the verification cap did not refuse A3"
stat_is verify.pending 6 || fail "more than the cap pending: $(qf_stat qfA verify.pending)"
wait_for 50 grep -q "type=\"error\"" "$TMP/A3.log" ||
	fail "A3 got no dialback error: $(cat "$TMP/A3.log")"
show_qf qfA

kill_pid "$PID_A1"
wait_for 100 stat_is verify.pending 2 || fail "A1's verifications were not cancelled"
wait_for 50 stat_is verify.sessions 2 || fail "the sessions only A1 needed did not end"
wait_for 50 verify_conns_are 2 || fail "their connections stayed open: $(verify_conns)"
stat_ge held.discarded 1 || fail "A1's held stanzas were not discarded"

kill_pid "$PID_A2"
wait_for 100 stat_is verify.pending 0 || fail "A2's verifications were not cancelled"
wait_for 50 stat_is verify.sessions 0 || fail "sessions left after every asker left"
wait_for 50 verify_conns_are 0 || fail "verify connections left open: $(verify_conns)"
show_qf qfA
pass
