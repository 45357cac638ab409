#!/bin/bash
# tests/integ/65-multi-node.sh - two quickfed nodes of one domain behind one SRV RRset (issue 12 §8).
# SPDX-License-Identifier: ISC
#
# b.example is served by node B1 (127.0.2.1, SRV priority 0) and node B2 (127.0.2.3,
# priority 10): the same configuration, the same certificate, one shared ticket key file
# (and the .peers file beside it) and one dialback secret, each with its own state_dir.
# Both relay to the same Prosody B, whose mod_quickfed points at B2, so B2 also answers
# Prosody's db:verify for the keys B1 presents (the shared secret at work). Site A
# (Prosody + quickfed) sends alice -> bob:
#   1. to B1: full TLS handshake, SASL EXTERNAL, the ticket seals a's identity;
#   2. B1 is stopped (by PID); the next link goes to B2, RESUMES A's session and still
#      authenticates with SASL EXTERNAL (the identity came with the ticket, the chain
#      from the shared .peers file), no dialback;
#   3. B2 is replaced by B3 at the same address with its OWN ticket key file: the
#      ticket is not resumed, a full handshake follows, still SASL EXTERNAL.
# Every message must reach bob. Assertions read show tls / show peers / show stats.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
make_cert B b.example
dns_srv b.example 5269 node1.b.example 0 0
dns_srv b.example 5269 node2.b.example 10 0
dns_a node1.b.example 127.0.2.1
dns_a node2.b.example 127.0.2.3
start_dns

site_proxied_start A a.example 127.0.1.1 127.0.1.2
register A alice a.example pass-a

shared=$TMP/B-shared
mkdir -p "$shared"
chmod 700 "$shared"
b_extra="dialback_secret multi-node-test-secret-0123456789
tls {
	ticket_key_file $shared/ticket.keys
}"
write_quickfed_conf "$TMP/B1-qf.conf" B1 b.example B 127.0.2.1 127.0.2.2 "$b_extra"
write_quickfed_conf "$TMP/B2-qf.conf" B2 b.example B 127.0.2.3 127.0.2.2 "$b_extra"
start_quickfed qfB1 "$TMP/B1-qf.conf"
start_quickfed qfB2 "$TMP/B2-qf.conf"
start_prosody B b.example 127.0.2.2 proxied 127.0.2.3 5270
register B bob b.example pass-b

# one_message N: alice sends message N to bob, who must receive it.
one_message() {
	client_bg "bob$1" bob@b.example pass-b 127.0.2.2 \
		expect-message alice@a.example "hello $1" --timeout 25
	client "alice$1" alice@a.example pass-a 127.0.1.2 send bob@b.example "hello $1" ||
		fail "alice could not send message $1"
	client_wait "bob$1" || fail "bob did not receive message $1"
}

# no_out_link: quickfed A holds no internet link any more
no_out_link() { [ -z "$(peer_field qfA out auth)" ]; }

# 1. first contact goes to node 1 (priority 0): full handshake, SASL EXTERNAL
one_message 1
show_qf qfB1
assert_tls qfB1 tls.handshakes.full.server -ge 1
assert_tls qfA tls.handshakes.full.client -ge 1
assert_stat_ge qfB1 auth.external 1
[ "$(peer_field qfB1 in auth)" = external ] || fail "show peers on B1: not SASL EXTERNAL"
[ "$(tls_val qfB2 tls.handshakes.full.server)" = 0 ] || fail "node 2 was used first"
[ -s "$shared/ticket.keys.peers" ] || fail "B1 kept no peer chain beside the shared keys"
# Prosody B checked the dialback key node 1 gave it on the local leg by asking node 2
grep -q 'answered db:verify from=b.example to=a.example valid=1' "$TMP/qfB2.log" ||
	fail "node 2 did not verify node 1's dialback key (shared dialback_secret)"
grep -q 'answered db:verify .* valid=0' "$TMP/qfB2.log" && fail "node 2 refused a key"

# 2. node 1 dies: A's next link goes to node 2, resumes and authenticates with EXTERNAL
kill_pid "$QF_PID_qfB1"
log "node 1 stopped (pid $QF_PID_qfB1)"
wait_for 100 no_out_link || fail "quickfed A still holds a link to the stopped node"
one_message 2
show_qf qfA
show_qf qfB2
qfctl qfB2 show tls
assert_tls qfB2 tls.handshakes.resumed.server -ge 1
assert_tls qfB2 tls.handshakes.full.server -eq 0
assert_tls qfA tls.handshakes.resumed.client -ge 1
assert_stat_ge qfB2 auth.external 1
grep -q 's2s-in local=b.example remote=a.example authenticated method=external' \
	"$TMP/qfB2.log" || fail "node 2 logged no SASL EXTERNAL for a.example"
grep -q 's2s-in local=b.example remote=a.example authenticated method=dialback' \
	"$TMP/qfB2.log" && fail "node 2 fell back to dialback for a.example"
[ "$(peer_field qfB2 in tls_resumed)" = 1 ] || fail "show peers on B2: tls_resumed is not 1"
[ "$(peer_field qfB2 in auth)" = external ] ||
	fail "show peers on B2: the resumed link did not use SASL EXTERNAL"
grep -q "peer-identity-unknown-here" "$TMP/qfB2.log" &&
	fail "node 2 did not find the identity node 1 sealed"
echo "node 2: resumed=$(tls_val qfB2 tls.handshakes.resumed.server) auth.external=$(qf_stat qfB2 auth.external)"

# 3. a node with its own ticket key file: no resumption, full handshake, still EXTERNAL
kill_pid "$QF_PID_qfB2"
wait_for 100 no_out_link || fail "quickfed A still holds a link to node 2"
write_quickfed_conf "$TMP/B3-qf.conf" B3 b.example B 127.0.2.3 127.0.2.2 \
	"dialback_secret multi-node-test-secret-0123456789"
start_quickfed qfB3 "$TMP/B3-qf.conf"
resumed_a=$(tls_val qfA tls.handshakes.resumed.client)
one_message 3
show_qf qfB3
assert_tls qfB3 tls.handshakes.resumed.server -eq 0
assert_tls qfB3 tls.handshakes.full.server -ge 1
assert_tls qfA tls.handshakes.resumed.client -eq "$resumed_a"
assert_stat_ge qfB3 auth.external 1
[ "$(peer_field qfB3 in auth)" = external ] || fail "show peers on B3: not SASL EXTERNAL"
echo "node3 full=$(tls_val qfB3 tls.handshakes.full.server) resumed=$(tls_val qfB3 tls.handshakes.resumed.server)"
pass
