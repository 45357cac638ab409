#!/bin/bash
# tests/integ/44-direct-tls.sh - federation over XEP-0368 direct TLS.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab; quickfed B also has a `listener direct_tls` and
# b.example publishes _xmpps-server._tcp at priority 0 next to _xmpp-server._tcp at
# priority 10. Quickfed A must pick the direct TLS target: its `show peers` has the
# b.example connection with direct_tls=1, and quickfed B logs the accept as direct-tls.
# (Port 5275, not 5270: write_quickfed_conf puts B's local listener on 127.0.2.1:5270.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-pipe.sh"

DTLS_PORT=5275

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert B b.example
dns_srv b.example 5269 xmpp.b.example 10 0
dns_a xmpp.b.example 127.0.2.1
dns_rr "_xmpps-server._tcp.b.example. 300 IN SRV 0 0 $DTLS_PORT xmpp.b.example."
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2
site_proxied_start B b.example 127.0.2.1 127.0.2.2 "
listener direct_tls {
	address 127.0.2.1
	port $DTLS_PORT
}"
register A alice a.example pass-a
register B bob b.example pass-b

client_bg bob bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "over direct TLS" --timeout 15
client alice alice@a.example pass-a 127.0.1.2 send bob@b.example "over direct TLS" ||
	fail "alice could not send"
client_wait bob
show_qf qfA
show_qf qfB

# peer.N.remote=b.example and peer.N.direct_tls=1 on the same N, outgoing.
peers=$(qfctl qfA show peers)
n=$(echo "$peers" | awk -F'[.=]' '
	$1 == "peer" && $3 == "remote" && $0 ~ /=b\.example$/ { r[$2] = 1 }
	$1 == "peer" && $3 == "direct_tls" && $4 == "1" { d[$2] = 1 }
	END { for (k in r) if (k in d) { print k; exit } }')
[ -n "$n" ] || fail "quickfed A has no b.example connection with direct_tls=1"
echo "$peers" | grep "^peer\.$n\."
log "quickfed A peer.$n: remote=b.example direct_tls=1 ok"
# The direct TLS accept must be the connection that authenticated a.example.
ok=0
for id in $(grep -E 'accepted from .* direct-tls' "$TMP/qfB.log" | sed -n 's/.* conn=\([0-9]*\) .*/\1/p'); do
	grep -E "conn=$id (s2s-in accepted|.*remote=a.example authenticated)" "$TMP/qfB.log" &&
		grep -qE "conn=$id .*remote=a.example authenticated" "$TMP/qfB.log" && ok=1
done
[ $ok = 1 ] || fail "quickfed B did not authenticate a.example on a direct-tls accept"
L=$TMP/qfA.log
for id in $(qf_conn_ids "$L" a.example b.example); do
	qf_flights "$L" "$id"
done
grep -E "s2s-out local=a.example remote=b.example (connecting to|ready)" "$L" || true
grep -qE "s2s-out local=a.example remote=b.example connecting to 127.0.2.1:$DTLS_PORT" "$L" ||
	fail "quickfed A did not connect to the _xmpps-server target first"
pass
