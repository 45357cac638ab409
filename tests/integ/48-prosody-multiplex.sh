#!/bin/bash
# tests/integ/48-prosody-multiplex.sh - quickfed multiplexing against Prosody 0.12.3 as remote peer.
# SPDX-License-Identifier: ISC
#
# Site A: Prosody 127.0.1.2 serving a.example and x.a.example behind quickfed 127.0.1.1
# (one certificate for both). C: a plain Debian Prosody 0.12.3 on 127.0.3.1 (s2s 5269)
# serving c.example and x.c.example (one certificate for both). Every domain has an SRV
# record of its own. Each phase: every A user writes to every C user (4 pairs A->C),
# then every C user to every A user (4 pairs C->A).
# What Prosody 0.12.3 does, found by this test and asserted below:
#  1. Without mod_s2s_bidi (prosody-conf.sh's default):
#     - It takes quickfed A's three piggybacked <db:result/>s on quickfed's one stream
#       (four pairs A->C: ONE internet connection from quickfed A, three routes riding).
#     - It verifies each over a new connection of its own in the reverse direction
#       (from the claimed receiver x.c.example/c.example to the claimed sender,
#       authenticated with SASL EXTERNAL, one <db:verify/>), and keeps it.
#     - As sender it never multiplexes: the four pairs C->A travel on four connections,
#       one per pair: the three verification connections carry their pair's messages,
#       and one more is opened for c.example -> a.example. No bidi either way.
#  2. With mod_s2s_bidi (Prosody C and quickfed A restarted, fresh links): it offers
#     bidi and quickfed A asks for it on its stream (a.example -> c.example); Prosody
#     sends the stream's own pair back on it only: c.example -> a.example arrives on
#     quickfed A's link, the other three pairs C->A on the three verification
#     connections, which Prosody now opens asking quickfed for bidi. Three connections
#     from C to A instead of four.
# Connections are counted from quickfed A's log ("s2s-out ... ready auth=" out, "s2s-in
# accepted" in) and `show routes`/`show peers`; messages by the receiving c2s clients.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

need_quickfed
setup_ns
make_ca
make_cert_multi A a.example x.a.example
make_cert_multi C c.example x.c.example
for d in a.example x.a.example; do dns_xmpp "$d" 127.0.1.1; done
for d in c.example x.c.example; do dns_xmpp "$d" 127.0.3.1; done
start_dns
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 "$(domain_block x.a.example A)"
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody_proxied A 127.0.1.2 127.0.1.1 A a.example x.a.example
start_prosody_hosts C 127.0.3.1 C c.example x.c.example
register A alice a.example pass
register A xa x.a.example pass
register C carol c.example pass
register C xc x.c.example pass

A_USERS="alice@a.example xa@x.a.example"
C_USERS="carol@c.example xc@x.c.example"
L=$TMP/qfA.log			# the current quickfed A's log (restart_quickfed moves it)

# peer_val ID FIELD: FIELD of quickfed A's connection ID in `show peers`.
peer_val() {
	qfctl qfA show peers | awk -F= -v k="peer.$1.$2" '$1 == k { print $2 }'
}

# in_links: quickfed A's inbound internet relay streams, one line each:
# "LOCAL REMOTE auth=AUTH bidi=B stanzas_in=N", sorted.
in_links() {
	qfctl qfA show peers | awk -F= '
		{ split($1, k, "."); if (k[1] != "peer" || k[3] == "") next; v[k[2], k[3]] = $2; id[k[2]] = 1 }
		END { for (i in id) if (v[i, "direction"] == "in" && v[i, "side"] == "internet" &&
		    v[i, "purpose"] == "relay")
			print v[i, "local"], v[i, "remote"], "auth=" v[i, "auth"], "bidi=" v[i, "bidi"],
			    "stanzas_in=" v[i, "stanzas_in"] }' | sort
}

# assert_shared: the four pairs A->C are on one connection of quickfed A, which
# a.example -> c.example owns and the three others ride; sets SHARED to its id.
assert_shared() {
	local l r n=0 c shared
	shared=$(qf_route qfA out a.example c.example conn)
	[ -n "$shared" ] || fail "quickfed A has no route a.example -> c.example"
	[ "$(qf_route qfA out a.example c.example riding)" = 0 ] ||
		fail "route a.example -> c.example rides; it should own the link"
	for l in a.example x.a.example; do
		for r in c.example x.c.example; do
			c=$(qf_route qfA out "$l" "$r" conn)
			[ "$c" = "$shared" ] || fail "route $l -> $r is on conn=$c, expected the shared conn=$shared"
			[ "$(qf_route qfA out "$l" "$r" riding)" = 1 ] && n=$((n + 1))
		done
	done
	[ "$n" = 3 ] || fail "quickfed A: $n of the 4 routes to C ride conn=$shared, expected 3"
	[ "$(peer_val "$shared" riders)" = 3 ] ||
		fail "quickfed A: the link conn=$shared carries $(peer_val "$shared" riders) riders, expected 3"
	n=$(grep -c "conn=$shared s2s-out .* authenticated on the stream of local=a.example remote=c.example (piggybacked dialback)" "$L" || true)
	[ "$n" = 3 ] || fail "Prosody C accepted $n piggybacked db:results, expected 3"
	SHARED=$shared
}

# assert_in_pairs EXPECTED: quickfed A's inbound internet streams are exactly EXPECTED
# (lines "LOCAL REMOTE", sorted), each authenticated with SASL EXTERNAL and carrying
# one message; BIDI is the bidi= they must all show.
assert_in_pairs() {
	local expected=$1 bidi=$2 links
	links=$(in_links)
	echo "$links"
	[ "$(echo "$links" | awk '{ print $1, $2 }')" = "$expected" ] ||
		fail "quickfed A's inbound pairs from C: $(echo "$links" | awk '{ print $1 "<-" $2 }' | tr '\n' ' '), expected $(echo "$expected" | tr '\n' ',')"
	if echo "$links" | grep -v " auth=external bidi=$bidi stanzas_in=1\$"; then
		fail "an inbound stream from C is not auth=external bidi=$bidi stanzas_in=1"
	fi
}

ALL_PAIRS="a.example c.example
a.example x.c.example
x.a.example c.example
x.a.example x.c.example"
REVERSED_RIDERS=$(echo "$ALL_PAIRS" | grep -vx 'a.example c.example')

# ---- 1: Prosody C without bidi
exchange m1 127.0.1.2 127.0.3.1 "$A_USERS" "$C_USERS"
qfctl qfA show routes
[ "$(ready_out qfA)" = 1 ] ||
	fail "quickfed A set up $(ready_out qfA) internet connections for 4 pairs to C, expected 1"
assert_shared
assert_stat_ge qfA pairs.piggybacked 3
assert_stat_ge qfA pairs.riding 3
if [ "$(log_in_conns "$L")" != 3 ] || [ "$(log_verify_conns "$L")" != 3 ]; then
	fail "Prosody C opened $(log_in_conns "$L") connections to A ($(log_verify_conns "$L") verifying), expected 3 (3)"
fi
log "4 pairs A->C over conn=$SHARED; Prosody C verified the 3 piggybacked ones over 3 connections of its own"

exchange m2 127.0.3.1 127.0.1.2 "$C_USERS" "$A_USERS"
show_qf qfA
qfctl qfA show peercaps
[ "$(ready_out qfA)" = 1 ] || fail "quickfed A set up $(ready_out qfA) internet connections, expected 1"
[ "$(log_in_conns "$L")" = 4 ] || fail "Prosody C opened $(log_in_conns "$L") connections to A in all, expected 4"
assert_in_pairs "$ALL_PAIRS" 0
[ "$(peer_val "$SHARED" bidi)" = 0 ] || fail "quickfed A's link conn=$SHARED has bidi"
[ "$(peer_val "$SHARED" stanzas_in)" = 0 ] ||
	fail "quickfed A's link conn=$SHARED carried $(peer_val "$SHARED" stanzas_in) stanzas back, expected 0"
[ "$(qf_stat qfA bidi.streams)" = 0 ] || fail "quickfed A: bidi.streams=$(qf_stat qfA bidi.streams), expected 0"
peercaps_has qfA c.example 'bidi:0' || fail "quickfed A did not record c.example as without bidi"
if grep -i 'bidi' "$TMP/C.log"; then fail "Prosody C without mod_s2s_bidi logged bidi"; fi
log "phase 1: 4 pairs C->A over 4 connections from Prosody C, one per pair; no bidi"

# ---- 2: Prosody C with mod_s2s_bidi; both restarted, so every link starts fresh
stop_prosody C
mv "$TMP/C.log" "$TMP/C-1.log"
restart_quickfed qfA
start_prosody_hosts --bidi C 127.0.3.1 C c.example x.c.example

exchange m3 127.0.1.2 127.0.3.1 "$A_USERS" "$C_USERS"
qfctl qfA show routes
[ "$(grep -c 's2s-out local=.* ready auth=' "$L" || true)" = 1 ] ||
	fail "quickfed A (restarted) set up $(grep -c 's2s-out local=.* ready auth=' "$L") internet connections, expected 1"
assert_shared
[ "$(peer_val "$SHARED" bidi)" = 1 ] || fail "quickfed A did not ask for bidi on conn=$SHARED"
grep -q 'Requested bidirectional stream' "$TMP/C.log" || fail "Prosody C's log shows no bidi request"
if [ "$(log_in_conns "$L")" != 3 ] || [ "$(log_verify_conns "$L")" != 3 ]; then
	fail "Prosody C opened $(log_in_conns "$L") connections to A ($(log_verify_conns "$L") verifying), expected 3 (3)"
fi

exchange m4 127.0.3.1 127.0.1.2 "$C_USERS" "$A_USERS"
show_qf qfA
qfctl qfA show peercaps
[ "$(log_in_conns "$L")" = 3 ] || fail "Prosody C opened $(log_in_conns "$L") connections to A in all, expected 3"
assert_in_pairs "$REVERSED_RIDERS" 1
[ "$(peer_val "$SHARED" stanzas_in)" = 1 ] ||
	fail "quickfed A's link conn=$SHARED carried $(peer_val "$SHARED" stanzas_in) stanzas back, expected 1 (c.example -> a.example)"
n=$(grep -c 's2s-in remote=.* bidi requested' "$L" || true)
[ "$n" = 3 ] || fail "Prosody C asked quickfed A for bidi on $n streams, expected 3"
assert_stat_ge qfA bidi.streams 4
peercaps_has qfA c.example 'bidi:1' || fail "quickfed A did not record c.example as with bidi"
log "phase 2: c.example -> a.example back on quickfed A's conn=$SHARED (bidi), 3 other pairs on 3 connections from C"
pass
