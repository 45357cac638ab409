#!/bin/bash
# tests/integ/58-retry.sh - a server that is down: stanzas wait, attempts back off, nothing bounces.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab, quickfed A with timeouts { retry 60s }, quickfed B not
# running yet (its port refuses connections). alice sends 3 numbered messages, then 3
# more once quickfed A has failed three times. Before issue 11 the first failure bounced
# every queued stanza and the next stanza started a new attempt (one per stanza); now the
# route keeps them (show routes: state=waiting), the domain's backoff grows (1 s, 2 s,
# 4 s: show backoff) and the new stanzas join the queue without an attempt of their own.
# Then quickfed B starts: at the next attempt all 6 arrive, in order, and alice got no
# error. The number of attempts is bounded by the backoff, not by the stanzas. Last,
# the failure memory survives a restart of quickfed A (state_dir/backoff).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
site_proxied_prepare B b.example 127.0.2.1
start_dns
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2
conf_set "$TMP/A-qf.conf" retry 60s
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270
write_quickfed_conf "$TMP/B-qf.conf" B b.example B 127.0.2.1 127.0.2.2
start_prosody B b.example 127.0.2.2 proxied 127.0.2.1 5270
register A alice a.example pass-a
register B bob b.example pass-b

touch_when_done="$TMP/done"
client_bg alice --resource r alice@a.example pass-a 127.0.1.2 \
	send bob@b.example "1 of 6" send bob@b.example "2 of 6" send bob@b.example "3 of 6" \
	expect-nothing-until "$touch_when_done" --timeout 90
retries_3() { [ "$(qf_stat qfA routes.retries)" -ge 3 ]; }
wait_for 100 retries_3 || fail "quickfed A did not retry (routes.retries=$(qf_stat qfA routes.retries))"
qfctl qfA show routes | grep -qx 'route.out.a.example.b.example.state=waiting' ||
	fail "the route is not waiting: $(qfctl qfA show routes | grep state)"
qfctl qfA show backoff | grep -q '^backoff.b.example=failures:3' ||
	fail "no backoff for b.example: $(qfctl qfA show backoff)"
[ "$(qf_stat qfA bounces)" = 0 ] || fail "quickfed A bounced $(qf_stat qfA bounces) stanza(s)"
log "3 failed attempts, 3 stanzas kept, nothing bounced"

client s2 --resource s alice@a.example pass-a 127.0.1.2 \
	send bob@b.example "4 of 6" send bob@b.example "5 of 6" send bob@b.example "6 of 6" ||
	fail "alice could not send"
queued_6() { qfctl qfA show routes | grep -qx 'route.out.a.example.b.example.queued=6'; }
wait_for 50 queued_6 || fail "the 3 new stanzas did not join the queue: $(qfctl qfA show routes)"
[ "$(qf_stat qfA routes.retries)" -le 4 ] ||
	fail "new stanzas caused attempts of their own (routes.retries=$(qf_stat qfA routes.retries))"

client_bg bob --resource c bob@b.example pass-b 127.0.2.2 \
	expect-count alice@a.example 6 --timeout 60
start_quickfed qfB "$TMP/B-qf.conf"
client_wait bob
touch "$touch_when_done"
client_wait alice
show_qf qfA
[ "$(qf_stat qfA bounces)" = 0 ] || fail "quickfed A bounced $(qf_stat qfA bounces) stanza(s)"
r=$(qf_stat qfA routes.retries)
[ "$r" -le 6 ] || fail "quickfed A retried $r times for one outage of a few seconds"
log "all 6 delivered after $r failed attempt(s); no bounce"
if qfctl qfA show backoff | grep -q 'b.example'; then
	fail "backoff not forgotten after success"
fi

# The memory survives a restart (state_dir/backoff): quickfed B goes away, a message
# fails once, quickfed A restarts and still knows b.example is failing.
kill_pid "$QF_PID_qfB"
client s3 --resource t alice@a.example pass-a 127.0.1.2 send bob@b.example "7 of 7" ||
	fail "alice could not send"
failed_again() { qfctl qfA show backoff | grep -q '^backoff.b.example=failures:[1-9]'; }
wait_for 50 failed_again || fail "no new failure for b.example: $(qfctl qfA show backoff)"
restart_quickfed qfA
qfctl qfA show backoff | grep -q '^backoff.b.example=failures:[1-9]' ||
	fail "the restarted quickfed A forgot that b.example is failing: $(qfctl qfA show backoff)"
grep -q 'backoff: 1 failing domain(s) remembered' "$TMP/qfA.log" ||
	fail "no log line for the remembered failure"
log "failure memory kept across a restart"
pass
