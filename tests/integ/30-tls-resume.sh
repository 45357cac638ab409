#!/bin/bash
# tests/integ/30-tls-resume.sh - TLS session resumption between two quickfeds (issue 5).
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab.sh (CA-signed certificates, SASL EXTERNAL). The first
# message A -> B costs a full handshake. Restarting quickfed A forces a new connection:
# A offers the session it kept on disk (client store) and resumes. Restarting quickfed B
# next: B opens A's ticket with the ticket keys it kept on disk and resumes again, and
# because B recorded the peer identity with the ticket the resumed link still
# authenticates with SASL EXTERNAL. Every assertion reads "show tls", "show peers" and
# "show stats"; the resumption rate each side reports is printed.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
sites_ab

# one_message N: alice sends message N to bob, who must receive it.
one_message() {
	client_bg "bob$1" bob@b.example pass-b 127.0.2.2 \
		expect-message alice@a.example "hello $1" --timeout 20
	client "alice$1" alice@a.example pass-a 127.0.1.2 send bob@b.example "hello $1" ||
		fail "alice could not send message $1"
	client_wait "bob$1"
}

# 1. first contact: full handshakes on both sides, SASL EXTERNAL
one_message 1
assert_tls qfA tls.handshakes.full.client -ge 1
assert_tls qfA tls.handshakes.resumed.client -eq 0
assert_tls qfB tls.handshakes.full.server -ge 1
assert_stat_ge qfA auth.external 1
assert_tls qfA tls.store.entries -ge 1
[ -s "$TMP/A-qf/state/tls-sessions.db" ] || fail "A kept no client session on disk"
[ -s "$TMP/B-qf/state/ticket.keys" ] || fail "B kept no ticket keys on disk"

# 2. restart the initiating quickfed: the saved session resumes
restart_quickfed qfA
one_message 2
show_qf qfA
qfctl qfA show tls
assert_tls qfA tls.handshakes.resumed.client -ge 1
assert_tls qfA tls.handshakes.full.client -eq 0
assert_tls qfB tls.handshakes.resumed.server -ge 1
assert_stat_ge qfA auth.external 1
[ "$(peer_field qfA out tls_resumed)" = 1 ] || fail "show peers on A: tls_resumed is not 1"
[ "$(peer_field qfA out auth)" = external ] ||
	fail "show peers on A: the resumed link did not use SASL EXTERNAL"
log "A restarted: resumption_rate A=$(tls_val qfA tls.resumption_rate)% B=$(tls_val qfB tls.resumption_rate)%"

# 3. restart the receiving quickfed: its ticket keys and the identities bound to its
# tickets come from disk; the link resumes and still authenticates with SASL EXTERNAL
[ -s "$TMP/B-qf/state/ticket.keys.peers" ] || fail "B recorded no peer identity for its tickets"
ext_before=$(qf_stat qfA auth.external)
restart_quickfed qfB
one_message 3
show_qf qfA
show_qf qfB
qfctl qfB show tls
assert_tls qfB tls.handshakes.resumed.server -ge 1
assert_tls qfB tls.handshakes.full.server -eq 0
assert_tls qfA tls.handshakes.resumed.client -ge 2
assert_stat_ge qfA auth.external $((ext_before + 1))
assert_stat_ge qfB auth.external 1
[ "$(peer_field qfB in tls_resumed)" = 1 ] || fail "show peers on B: tls_resumed is not 1"
[ "$(peer_field qfB in auth)" = external ] ||
	fail "show peers on B: the resumed link fell back from SASL EXTERNAL"
grep -q "SASL EXTERNAL as a.example refused" "$TMP/qfB.log" &&
	fail "B refused SASL EXTERNAL on the resumed session"
echo "resumption_rate A=$(tls_val qfA tls.resumption_rate)% B=$(tls_val qfB tls.resumption_rate)%"
log "B restarted: resumption_rate A=$(tls_val qfA tls.resumption_rate)% B=$(tls_val qfB tls.resumption_rate)%"
pass
