#!/bin/bash
# tests/integ/46-multiplex.sh - many domain pairs, both directions, one internet connection.
# SPDX-License-Identifier: ISC
#
# Issue 10 §2 on real parts. Site A: Prosody 127.0.1.2 serving a.example and x.a.example
# behind quickfed 127.0.1.1 (one certificate for both). Site B: Prosody 127.0.2.2 serving
# b.example, x.b.example and other.b.example behind quickfed 127.0.2.1; b.example and
# x.b.example share a certificate, other.b.example has one of its own. Every domain has
# its own SRV record and target host name; all of a site's point at its quickfed.
#  1. Each A user writes to each of the two covered B users (4 pairs): quickfed A opens
#     ONE internet connection; the other three pairs ride it with piggybacked db:results
#     (pairs.piggybacked), which quickfed B accepts by the certificate alone (XEP-0344,
#     auth.dialback_cert, no verification connection).
#  2. Each B user answers each A user (4 pairs back): they travel on that same connection
#     (XEP-0288 bidi, both quickfeds): quickfed B opens no internet connection at all.
#  3. alice writes to other.b.example: same server, but the certificate B shows on the
#     shared link does not cover it, so that pair gets a connection of its own.
#  4. quickfed B restarts (the shared link dies); all four pairs deliver again in both
#     directions, again over one new connection from A.
# Connections are counted from quickfed's "s2s-out ... ready" log lines and
# `show peers`/`show routes`; messages by the receiving c2s clients.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
make_cert_multi A a.example x.a.example
make_cert_multi B b.example x.b.example
make_cert_multi O other.b.example
for d in a.example x.a.example; do dns_xmpp "$d" 127.0.1.1; done
for d in b.example x.b.example other.b.example; do dns_xmpp "$d" 127.0.2.1; done
start_dns

write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 \
	"$(domain_block x.a.example A)"
write_quickfed_conf "$TMP/B-qf.conf" B b.example B 127.0.2.1 127.0.2.2 \
	"$(domain_block x.b.example B; domain_block other.b.example O)"
start_quickfed qfA "$TMP/A-qf.conf"
start_quickfed qfB "$TMP/B-qf.conf"
start_prosody_proxied A 127.0.1.2 127.0.1.1 A a.example x.a.example
start_prosody_proxied B 127.0.2.2 127.0.2.1 B b.example x.b.example other.b.example
register A alice a.example pass
register A xa x.a.example pass
register B bob b.example pass
register B xb x.b.example pass
register B ob other.b.example pass

A_USERS="alice@a.example xa@x.a.example"
B_USERS="bob@b.example xb@x.b.example"

# ---- 1 + 2: four pairs out, four back
exchange m1 127.0.1.2 127.0.2.2 "$A_USERS" "$B_USERS"
exchange m2 127.0.2.2 127.0.1.2 "$B_USERS" "$A_USERS"
show_qf qfA
show_qf qfB
qfctl qfA show routes
qfctl qfB show routes
[ "$(ready_out qfA)" = 1 ] || fail "quickfed A set up $(ready_out qfA) internet connections for 4 pairs, expected 1"
[ "$(ready_out qfB)" = 0 ] || fail "quickfed B set up $(ready_out qfB) internet connections, expected 0 (bidi)"
log "4 pairs out and 4 back over 1 internet connection"
assert_stat_ge qfA pairs.piggybacked 3
assert_stat_ge qfA pairs.riding 3
assert_stat_ge qfB auth.dialback_cert 3
assert_stat_ge qfA bidi.streams 1
assert_stat_ge qfB bidi.streams 1
# B's routes back to A ride the link A opened (riding=1 on every out route of B)
rb=$(qfctl qfB show routes | grep -c '^route\.out\..*\.riding=1$' || true)
[ "$rb" = 4 ] || fail "quickfed B: $rb out routes ride the incoming bidi link, expected 4"
# no verification leg on B: nothing but A's link on B's internet side
# (the loopback verification connection to Prosody B is another matter: not counted)
vb=$(qfctl qfB show peers | awk -F'[.=]' '$3 == "side" { side[$2] = $4 }
	$3 == "purpose" { purpose[$2] = $4 }
	END { n = 0; for (i in side) if (side[i] == "internet" && purpose[i] == "verify") n++; print n }')
[ "$vb" = 0 ] || fail "quickfed B opened $vb internet verify connection(s), expected 0 (XEP-0344)"
# the loopback leg: quickfed A delivered B's answers for the 4 pairs to Prosody A on
# one local-out stream (Prosody takes piggybacked pairs) and verified Prosody A's 4
# streams over one verification connection
lo=$(grep -c 'local-out local=.* ready auth=dialback' "$TMP/qfA.log" || true)
[ "$lo" = 1 ] || fail "quickfed A opened $lo loopback relay streams to Prosody A, expected 1"
lv=$(grep -c 'local-out local=.* ready auth=none' "$TMP/qfA.log" || true)
[ "$lv" = 1 ] || fail "quickfed A opened $lv loopback verification connections, expected 1"

# ---- 3: a domain on the same server the shared link's certificate does not cover
client_bg rob ob@other.b.example pass 127.0.2.2 expect-message alice@a.example "m3" --timeout 20
client s3 alice@a.example pass 127.0.1.2 send ob@other.b.example m3 || fail "alice could not send"
client_wait rob
[ "$(ready_out qfA)" = 2 ] || fail "quickfed A: $(ready_out qfA) connections, expected 2 (other.b.example on its own)"
grep -q 'remote=other.b.example.*certificate does not cover remote=other.b.example' "$TMP/qfA.log" ||
	fail "no log line saying why other.b.example did not ride"
log "other.b.example: not covered by the shared link's certificate, own connection"

# ---- 4: the shared link dies with quickfed B; everything delivers again
restart_quickfed qfB
link_gone() { ! qfctl qfA show routes | grep -q '^route\.out\.a\.example\.b\.example\.state=ready$'; }
wait_for 25 link_gone || fail "quickfed A did not notice the link's end"
exchange m4 127.0.1.2 127.0.2.2 "$A_USERS" "$B_USERS"
exchange m5 127.0.2.2 127.0.1.2 "$B_USERS" "$A_USERS"
[ "$(ready_out qfA)" = 3 ] || fail "quickfed A: $(ready_out qfA) connections after B's restart, expected 3"
[ "$(ready_out qfB)" = 0 ] || fail "quickfed B: $(ready_out qfB) connections after its restart, expected 0 (bidi asked for in the pipelined set-up)"
show_qf qfA
pass
