#!/bin/bash
# tests/integ/14-wrong-cert.sh - a peer presenting a valid cert for the wrong name is refused.
# SPDX-License-Identifier: ISC
#
# wrong.example (127.0.5.1) runs a plain Prosody whose CA-signed certificate names
# other.example. quickfed A has `peer wrong.example { secure_auth on }`, so it must not
# fall back to dialback: the message bounces and A's log says why (the certificate).
# walter listens until the bounce is back and no stream of A to wrong.example ever got
# ready (show stats bounces, A's ready lines): then the message cannot arrive any more.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert WRONG other.example
dns_xmpp wrong.example 127.0.5.1
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2 "
peer wrong.example {
	secure_auth on
}"
start_prosody W wrong.example 127.0.5.1 direct cert WRONG
register A alice a.example pass-a
register W walter wrong.example pass-w

DONE=$TMP/bounced
client_bg walter walter@wrong.example pass-w 127.0.5.1 expect-nothing-until "$DONE" --timeout 90
client alice alice@a.example pass-a 127.0.1.2 \
	send walter@wrong.example "must not arrive" \
	expect-error wrong.example remote-server-not-found --timeout 15 ||
	fail "no remote-server-not-found bounce for wrong.example"
assert_stat_ge qfA bounces 1
! grep -q 's2s-out local=a.example remote=wrong.example ready' "$TMP/qfA.log" ||
	fail "quickfed A authenticated a stream to wrong.example"
touch "$DONE"
client_wait walter
# Strip our tmp dir (its name contains "wrong-cert") before looking for the reason.
sed "s|$TMP|TMP|g" "$TMP/qfA.log" | grep -i 'wrong\.example' | grep -qi 'certificate' ||
	fail "quickfed A's log does not mention the certificate of wrong.example"
sed "s|$TMP|TMP|g" "$TMP/qfA.log" | grep -i 'wrong\.example' | grep -i 'certificate' | head -n 3
show_qf qfA
pass
