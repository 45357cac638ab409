#!/bin/bash
# tests/integ/32-dane.sh - DANE on outgoing connections (issue 5, RFC 6698/7671/7673).
# SPDX-License-Identifier: ISC
#
# nsd serves sec. (signed) and plain. (unsigned); quickfed A validates with sec.'s DS.
# Receivers are real Prosody servers:
#   E (127.0.4.1) ee.sec: a self-signed certificate, TLSA 3 1 1 (DANE-EE, SPKI SHA-256).
#     A has "peer ee.sec { secure_auth on }": only DANE can authenticate E -> delivered.
#   T (127.0.5.1) ta.sec: a certificate from a CA nobody trusts, sent with its chain,
#     TLSA 2 0 1 of that CA (DANE-TA), secure_auth on as well -> delivered.
#   P (127.0.3.1, CA-signed for all three names):
#     p.plain: TLSA that matches nothing in an unsigned zone -> ignored, PKIX -> delivered.
#     nomatch.sec: secure TLSA matching nothing -> refused: remote-server-not-found
#       and the log line "DANE: no TLSA record matched", although PKIX would pass.
#     bog.sec: TLSA changed after signing (bogus) -> refused: remote-server-not-found.
# Incoming: E sends to A; E's self-signed certificate is accepted by its own secure
# TLSA (incoming DANE, as Prosody's mod_s2s_auth_dane_in) and SASL EXTERNAL succeeds.
# Assertions read show tls (tls.dane.matched / tls.dane.failed) and show peers
# (peer.N.dane=matched, peer.N.auth=external).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
make_ca_other otherca
zone_add sec signed
zone_add plain unsigned
site_dnssec_prepare A a.sec 127.0.1.1 sec

make_selfsigned E ee.sec
make_cert_chain otherca T ta.sec
make_cert_multi P p.plain nomatch.sec bog.sec
zero=0000000000000000000000000000000000000000000000000000000000000000
bogus_hex=1111111111111111111111111111111111111111111111111111111111111111

zone_xmpp sec ee.sec 127.0.4.1
zone_tlsa sec xmpp.ee.sec 3 1 1 "$(tlsa_spki_sha256 "$TMP/pki/E.crt")"
zone_xmpp sec ta.sec 127.0.5.1
zone_tlsa sec xmpp.ta.sec 2 0 1 "$(tlsa_cert_sha256 "$TMP/pki/otherca.crt")"
zone_xmpp plain p.plain 127.0.3.1
zone_tlsa plain xmpp.p.plain 3 1 1 "$zero"
zone_xmpp sec nomatch.sec 127.0.3.1
zone_tlsa sec xmpp.nomatch.sec 3 1 1 "$zero"
zone_xmpp sec bog.sec 127.0.3.1
zone_tlsa sec xmpp.bog.sec 3 1 1 "$(tlsa_spki_sha256 "$TMP/pki/P.crt")"
zone_tamper sec "$(tlsa_spki_sha256 "$TMP/pki/P.crt")" "$bogus_hex"
start_dns_zones
grep -q "$bogus_hex" "$TMP/dns/sec.zone.signed" || fail "tampering the TLSA did not apply"

site_dnssec_write A a.sec 127.0.1.1 127.0.1.2
cat >>"$TMP/A-qf.conf" <<EOF
peer ee.sec {
	secure_auth on
}
peer ta.sec {
	secure_auth on
}
EOF
site_dnssec_start A a.sec 127.0.1.1 127.0.1.2
start_prosody E ee.sec 127.0.4.1 direct
start_prosody T ta.sec 127.0.5.1 direct
start_prosody_hosts P 127.0.3.1 P p.plain nomatch.sec bog.sec
register A alice a.sec pass-a
register E eve ee.sec pass-e
register T tom ta.sec pass-t
register P pete p.plain pass-p

client_bg eve eve@ee.sec pass-e 127.0.4.1 expect-message alice@a.sec "to DANE-EE" --timeout 20
client_bg tom tom@ta.sec pass-t 127.0.5.1 expect-message alice@a.sec "to DANE-TA" --timeout 20
client_bg pete pete@p.plain pass-p 127.0.3.1 \
	expect-message alice@a.sec "to unsigned TLSA" --timeout 20
client alice alice@a.sec pass-a 127.0.1.2 \
	send eve@ee.sec "to DANE-EE" \
	send tom@ta.sec "to DANE-TA" \
	send pete@p.plain "to unsigned TLSA" \
	send x@nomatch.sec "to a TLSA that matches nothing" \
	expect-error nomatch.sec remote-server-not-found --timeout 10 \
	send x@bog.sec "to a bogus TLSA" \
	expect-error bog.sec remote-server-not-found --timeout 10 ||
	fail "a bounce was missing"
client_wait eve
client_wait tom
client_wait pete

show_qf qfA
qfctl qfA show tls
# EE and TA matched; nomatch failed (possibly once per attempt); bog failed
assert_tls qfA tls.dane.matched -ge 2
assert_tls qfA tls.dane.failed -ge 2
grep -q 'to=nomatch.sec .*DANE: no TLSA record matched' "$TMP/qfA.log" ||
	fail "no log line for the TLSA that matched nothing"
grep -q 'to=bog.sec .*DANE: TLSA records are bogus' "$TMP/qfA.log" ||
	fail "no log line for the bogus TLSA"
grep -q 'route out local=a.sec remote=nomatch.sec failed: dane-failed' "$TMP/qfA.log" ||
	fail "the nomatch.sec route did not fail with dane-failed"
grep -q "from='x@bog.sec'.*<remote-server-not-found .*>dane-failed</text>" \
	"$TMP/client-alice.log" || fail "the bounce for bog.sec does not say dane-failed"
# the unsigned zone's TLSA was never used: p.plain got PKIX, no DANE outcome
grep -q 'to=p.plain .*dane=none verdict="ok"' "$TMP/qfA.log" ||
	fail "p.plain was not verified by PKIX alone"
# the links to E and T are up and say how they were authenticated
matched=$(qfctl qfA show peers | grep -c '^peer\.[0-9]*\.dane=matched$' || true)
[ "$matched" -ge 2 ] || fail "show peers: $matched links with dane=matched, expected 2"
grep -q 'to=ee.sec .*dane=matched verdict="ok (DANE-EE)"' "$TMP/qfA.log" ||
	fail "ee.sec was not authenticated by DANE-EE"
grep -q 'to=ta.sec .*dane=matched verdict="ok (DANE-TA)"' "$TMP/qfA.log" ||
	fail "ta.sec was not authenticated by DANE-TA"

# Incoming DANE: E (self-signed) sends to A. Its certificate does not chain to a CA,
# A has secure_auth on for ee.sec (no dialback on a bad certificate), so the message
# arrives only because A found ee.sec's secure TLSA, matched E's certificate and
# offered SASL EXTERNAL.
matched_before=$(tls_val qfA tls.dane.matched)
client_bg alice2 alice@a.sec pass-a 127.0.1.2 \
	expect-message eve@ee.sec "from DANE-EE" --timeout 20
client eve2 eve@ee.sec pass-e 127.0.4.1 send alice@a.sec "from DANE-EE" ||
	fail "eve could not send"
client_wait alice2
show_qf qfA
[ "$(qfctl qfA show peers | awk -F'[.=]' '
	$3 == "direction" && $4 == "in" { d[$2] = 1 }
	$3 == "side" && $4 == "internet" { n[$2] = 1 }
	$3 == "remote" && $4 == "ee" { r[$2] = 1 }
	$3 == "auth" { a[$2] = $4 }
	END { for (i in d) if (r[i] && n[i]) print a[i] }' | head -n 1)" = external ] ||
	fail "the incoming link from ee.sec was not authenticated by SASL EXTERNAL"
assert_tls qfA tls.dane.matched -ge $((matched_before + 1))
grep -q 'remote=ee.sec incoming DANE: certificate matched' "$TMP/qfA.log" ||
	fail "no log line for the incoming DANE match"
pass
