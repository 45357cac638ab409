#!/bin/bash
# tests/integ/67-idle-timeout.sh - a link closes once idle for timeouts { idle }, never while it carries stanzas.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 57-dead-link, quickfed A with timeouts { idle 3s; keepalive 1s }.
# After a first message the A->B link is up. alice then sends 7 messages one second
# apart (7 s, more than twice the idle time): bob receives all 7 and they all went on
# that same link (quickfed A's conns.out does not grow). Each stanza moves the link's
# idle deadline; s2s/conn.c leaves a timer that is due earlier than the new deadline as
# it is and arms it again when it fires, so this checks that the lazy re-arming still
# ends a link only when it is idle. Then nothing is sent: within the idle time and a
# second, quickfed A closes the link (reason idle-timeout), its keepalives (every
# second, with stream management an <r/> answered by an <a/>) notwithstanding.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
a_conf() { conf_set "$1" idle 3s; conf_in_block "$1" timeouts "keepalive 1s"; }
sites_ab a_conf
warm_ab
out0=$(qf_stat qfA conns.out)

client_bg bob --resource c bob@b.example pass-b 127.0.2.2 \
	expect-count alice@a.example 7 --timeout 30
client s alice@a.example pass-a 127.0.1.2 send-paced bob@b.example 7 1000 ||
	fail "alice could not send"
client_wait bob
out1=$(qf_stat qfA conns.out)
[ "$out1" = "$out0" ] ||
	fail "quickfed A opened $((out1 - out0)) connection(s) while the link carried a stanza a second (idle 3s)"
grep -q 'reason=idle-timeout' "$TMP/qfA.log" && fail "a link was closed as idle while it carried stanzas"
log "7 messages over 7 s on one link (conns.out=$out1)"

idle_closed() { grep -q 'closed reason=idle-timeout' "$TMP/qfA.log"; }
t0=$(date +%s.%N)
wait_for 50 idle_closed || fail "quickfed A did not close the idle link within 10 s (idle 3s)"
t1=$(date +%s.%N)
log "idle link closed $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s after the last message was received"
show_qf qfA
pass
