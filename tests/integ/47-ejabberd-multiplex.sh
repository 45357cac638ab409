#!/bin/bash
# tests/integ/47-ejabberd-multiplex.sh - quickfed multiplexing against ejabberd 23.01 as remote peer.
# SPDX-License-Identifier: ISC
#
# Site A: Prosody 127.0.1.2 serving a.example, x.a.example and y.a.example behind quickfed
# 127.0.1.1 (one certificate for all three). E: ejabberd 23.01 (Debian 12) on 127.0.6.1
# serving e.example and x.e.example with one certificate from the test CA. a.example,
# x.a.example, e.example and x.e.example have SRV records of their own; y.a.example has
# no DNS at all (nobody can connect to it, it can only send).
# What ejabberd 23.01 does, found by this test and asserted below:
#  - It takes piggybacked <db:result/>s (XEP-0220) for any of its hosts on the stream
#    quickfed authenticated with SASL EXTERNAL, but not on the certificate alone (no
#    XEP-0344 shortcut): for each one it opens a new connection to the claimed domain,
#    authenticates it with SASL EXTERNAL, sends one <db:verify/> and closes it; then it
#    answers type='valid'. Four pairs A->E: ONE internet connection from quickfed A.
#  - When it cannot verify (y.a.example does not resolve) it answers <db:result
#    type='error'> (remote-server-not-found) and keeps the shared stream. quickfed opens
#    a connection of its own for that pair and the message arrives; the other pairs
#    keep riding the shared link.
#  - It has no XEP-0288 bidi: it offers none (features under TLS: SASL EXTERNAL and
#    dialback; after authentication: dialback) and does not ask for the bidi quickfed
#    offers it.
#  - As sender it never multiplexes: four pairs E->A are four connections, one per
#    pair, each authenticated with SASL EXTERNAL (plus the three verification ones:
#    seven connections to quickfed A in all).
# Connections are counted from quickfed A's log ("s2s-out ... ready auth=" out, "s2s-in
# accepted" in) and `show routes`/`show peers`; messages by the receiving c2s clients.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"
. "$(dirname "$0")/lib-ejabberd.sh"

need_quickfed
need_ejabberd
setup_ns
make_ca
make_cert_multi A a.example x.a.example y.a.example
make_cert_multi E e.example x.e.example
for d in a.example x.a.example; do dns_xmpp "$d" 127.0.1.1; done
for d in e.example x.e.example; do dns_xmpp "$d" 127.0.6.1; done
start_dns
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 \
	"$(domain_block x.a.example A; domain_block y.a.example A)"
start_quickfed qfA "$TMP/A-qf.conf"
start_prosody_proxied A 127.0.1.2 127.0.1.1 A a.example x.a.example y.a.example
start_ejabberd E e.example 127.0.6.1 E x.e.example
register A alice a.example pass
register A xa x.a.example pass
register A ya y.a.example pass
ejabberd_register E erin e.example pass
ejabberd_register E xe x.e.example pass

A_USERS="alice@a.example xa@x.a.example"
E_USERS="erin@e.example xe@x.e.example"
L=$TMP/qfA.log
EL=$TMP/E-ej/ejabberd.log

# assert_shared CONN: the four pairs A->E are on CONN, three of them riding it.
assert_shared() {
	local l r n=0 c
	for l in a.example x.a.example; do
		for r in e.example x.e.example; do
			c=$(qf_route qfA out "$l" "$r" conn)
			[ "$c" = "$1" ] || fail "route $l -> $r is on conn=$c, expected the shared conn=$1"
			[ "$(qf_route qfA out "$l" "$r" riding)" = 1 ] && n=$((n + 1))
		done
	done
	[ "$n" = 3 ] || fail "quickfed A: $n of the 4 routes to E ride conn=$1, expected 3"
}

# ---- 1: four pairs A->E over one connection, the other three piggybacked
exchange m1 127.0.1.2 127.0.6.1 "$A_USERS" "$E_USERS"
qfctl qfA show routes
[ "$(ready_out qfA)" = 1 ] ||
	fail "quickfed A set up $(ready_out qfA) internet connections for 4 pairs to E, expected 1"
SHARED=$(qf_route qfA out a.example e.example conn)
[ "$(qf_route qfA out a.example e.example riding)" = 0 ] ||
	fail "route a.example -> e.example rides; it should own the link"
assert_shared "$SHARED"
qfctl qfA show peers | grep -qx "peer.$SHARED.riders=3" ||
	fail "quickfed A: the link conn=$SHARED does not carry 3 riders"
n=$(grep -c "conn=$SHARED s2s-out .* authenticated on the stream of local=a.example remote=e.example (piggybacked dialback)" "$L" || true)
[ "$n" = 3 ] || fail "ejabberd accepted $n piggybacked db:results, expected 3"
assert_stat_ge qfA pairs.piggybacked 3
# ejabberd verified each by dialback over a connection of its own: 3 in, all db:verify
if [ "$(log_in_conns "$L")" != 3 ] || [ "$(log_verify_conns "$L")" != 3 ]; then
	fail "ejabberd opened $(log_in_conns "$L") connections to A ($(log_verify_conns "$L") verifying), expected 3 (3)"
fi
# (ejabberd's logger writes on its own schedule: its lines are waited for, bounded)
accepted_3() { [ "$(grep -c 'Accepted inbound s2s dialback authentication' "$EL")" -ge 3 ]; }
wait_for 50 accepted_3 || true
n=$(grep -c 'Accepted inbound s2s dialback authentication' "$EL" || true)
[ "$n" = 3 ] || fail "ejabberd's log shows $n dialback authentications, expected 3"
log "4 pairs A->E over 1 connection; ejabberd verified the 3 piggybacked ones by db:verify"

# ---- 2: four pairs E->A: one connection per pair, no bidi either way
exchange m2 127.0.6.1 127.0.1.2 "$E_USERS" "$A_USERS"
show_qf qfA
qfctl qfA show peercaps
[ "$(ready_out qfA)" = 1 ] || fail "quickfed A set up $(ready_out qfA) internet connections, expected 1"
[ "$(log_in_conns "$L")" = 7 ] || fail "ejabberd opened $(log_in_conns "$L") connections to A in all, expected 7"
[ "$(log_verify_conns "$L")" = 3 ] || fail "$(log_verify_conns "$L") of them verified, expected 3"
qfctl qfA show peers | awk -F= '
	$1 ~ /\.direction$/ { split($1, k, "."); dir[k[2]] = $2 }
	$1 ~ /\.side$/ { split($1, k, "."); side[k[2]] = $2 }
	$1 ~ /\.local$/ { split($1, k, "."); loc[k[2]] = $2 }
	$1 ~ /\.remote$/ { split($1, k, "."); rem[k[2]] = $2 }
	END { for (i in dir) if (dir[i] == "in" && side[i] == "internet") print loc[i] "|" rem[i] }' |
	sort -u >"$TMP/in-pairs"
cat "$TMP/in-pairs"
[ "$(wc -l <"$TMP/in-pairs")" = 4 ] ||
	fail "quickfed A holds $(wc -l <"$TMP/in-pairs") distinct inbound pairs from E, expected 4"
[ "$(grep -c 'authenticated method=external' "$L")" -ge 7 ] ||
	fail "not every connection from ejabberd authenticated with SASL EXTERNAL"
wait_for 50 grep -q "Received XML on stream = .*<bidi xmlns='urn:xmpp:features:bidi'/>" "$EL" ||
	fail "quickfed A never offered bidi to ejabberd"
if grep -E "Send XML on stream = .*urn:xmpp:(features:)?bidi" "$EL"; then
	fail "ejabberd offered or asked for bidi"
fi
peercaps_has qfA e.example 'bidi:0' || fail "quickfed A did not record e.example as without bidi"
[ "$(qf_stat qfA bidi.streams)" = 0 ] || fail "quickfed A: bidi.streams=$(qf_stat qfA bidi.streams), expected 0"
if grep 'bidi requested' "$L"; then fail "ejabberd asked quickfed A for bidi"; fi
if qfctl qfA show peers | grep -E '^peer\.[0-9]+\.bidi=1$'; then fail "a stream with bidi"; fi
log "4 pairs E->A over 4 connections from ejabberd (plus 3 for verification); no bidi"

# ---- 3: ejabberd cannot verify y.a.example (no DNS): quickfed connects on its own
client_bg ry --resource ry erin@e.example pass 127.0.6.1 expect-message ya@y.a.example m3 --timeout 25
client s3 ya@y.a.example pass 127.0.1.2 send erin@e.example m3 || fail "ya could not send"
client_wait ry
grep "conn=$SHARED s2s-out local=y.a.example remote=e.example piggybacked dialback refused (type=error)" "$L" ||
	fail "no log line of ejabberd refusing y.a.example's piggybacked db:result"
grep "route out local=y.a.example remote=e.example: conn=$SHARED will not carry the pair .*connecting on its own" "$L" ||
	fail "no log line of the route falling back to a connection of its own"
# ejabberd's logger writes on its own schedule: wait for the line (bounded)
wait_for 50 grep -qE 'Failed inbound s2s dialback authentication y.a.example -> e.example' "$EL" ||
	fail "ejabberd's log does not show the failed verification"
[ "$(ready_out qfA)" = 2 ] || fail "quickfed A: $(ready_out qfA) connections, expected 2 (y.a.example on its own)"
c=$(qf_route qfA out y.a.example e.example conn)
if [ -z "$c" ] || [ "$c" = "$SHARED" ] || [ "$(qf_route qfA out y.a.example e.example riding)" != 0 ]; then
	fail "route y.a.example -> e.example: conn=$c riding=$(qf_route qfA out y.a.example e.example riding)"
fi
log "y.a.example: refused (type=error) on the shared link, own connection conn=$c, delivered"

# ---- 4: the refusal left the shared link up: the four pairs still ride it
exchange m4 127.0.1.2 127.0.6.1 "$A_USERS" "$E_USERS"
[ "$(ready_out qfA)" = 2 ] || fail "quickfed A: $(ready_out qfA) connections, expected still 2"
assert_shared "$SHARED"
show_qf qfA
stop_ejabberd E
pass
