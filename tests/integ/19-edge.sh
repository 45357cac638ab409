#!/bin/bash
# tests/integ/19-edge.sh - edge cases of hostile input get their answer at once.
# SPDX-License-Identifier: ISC
#
# garbage.py --set edge against quickfed A (no Prosody needed):
# - a failed TLS handshake (<starttls/> twice, garbage instead of a ClientHello) still
#   gets the header, the features, <proceed/> and the TLS alert before the close;
# - a header followed by EOF gets the header, the features and </stream:stream>, and a
#   stream error followed by EOF is still sent;
# - overlong UTF-8, a sequence split across two writes, a surrogate and a control
#   character end the stream with not-well-formed as the bytes arrive;
# - 10 MB of whitespace and element-dense XML end it with policy-violation;
# - a full JID in the header or in db:result/db:verify gets improper-addressing;
# - a nested <stream:stream> gets unsupported-stanza-type;
# - a peer with a non-loopback address on the local listener is closed unanswered and
#   logged.
# "At once" is checked as: within 1 s of our last byte (the auth deadline here is 5 s).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
make_cert A a.example
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2
start_quickfed qfA "$TMP/A-qf.conf"

# expect_edge FILE CASE COND [KEY=VALUE...]: the case's line has COND, each KEY=VALUE,
# and (for a stream error or a close) t below 1 s.
expect_edge() {
	local f=$1 c=$2 cond=$3 line kv t
	shift 3
	line=$(awk -v c="$c" '$1 == c' "$f")
	[ -n "$line" ] || fail "$c on $(basename "$f"): no result"
	set -- "cond=$cond" "$@"
	for kv in "$@"; do
		case $kv in
		cond=*) [ "$(echo "$line" | awk '{ print $2 }')" = "${kv#cond=}" ] ||
			fail "$c on $(basename "$f"): wanted condition ${kv#cond=}, got: $line" ;;
		*) echo " $line " | grep -q " $kv " ||
			fail "$c on $(basename "$f"): wanted $kv, got: $line" ;;
		esac
	done
	t=$(echo "$line" | sed -n 's/.* t=\([0-9.]*\).*/\1/p')
	awk -v t="$t" 'BEGIN { exit !(t < 1.0) }' ||
		fail "$c on $(basename "$f"): answered after ${t}s, wanted < 1s: $line"
}

log "internet listener"
nsx "$PYTHON" "$QF_TOP/tests/integ/garbage.py" --set edge --wait 3 --host 127.0.1.1 \
	--port 5269 --to a.example --from b.example \
	--cases starttls-twice,starttls-garbage,header-eof,garbage-eof,overlong-utf8,split-utf8,surrogate,control-char,whitespace-flood,element-dense,full-jid-from,full-jid-to,nested-stream \
	>"$TMP/internet.out" 2>&1 || fail "garbage.py failed (internet): $(cat "$TMP/internet.out")"
cat "$TMP/internet.out" >&2
f=$TMP/internet.out
expect_edge "$f" starttls-twice none header=1 features=1 proceed=1 alert=1 closed=1
# (no alert here: wolfSSL sends none for a record header it cannot parse)
expect_edge "$f" starttls-garbage none header=1 features=1 proceed=1 closed=1
expect_edge "$f" header-eof none header=1 features=1 end=1 closed=1
expect_edge "$f" garbage-eof not-well-formed header=1 end=1 closed=1
expect_edge "$f" overlong-utf8 not-well-formed closed=1
expect_edge "$f" split-utf8 not-well-formed closed=1
expect_edge "$f" surrogate not-well-formed closed=1
expect_edge "$f" control-char not-well-formed closed=1
expect_edge "$f" whitespace-flood policy-violation
expect_edge "$f" element-dense policy-violation
expect_edge "$f" full-jid-from improper-addressing features=0 closed=1
expect_edge "$f" full-jid-to improper-addressing features=0 closed=1
expect_edge "$f" nested-stream unsupported-stanza-type closed=1
grep -q 'reason=tls-handshake-failed' "$TMP/qfA.log" ||
	fail "no close with reason=tls-handshake-failed in the log"
grep -q 'stream-error=policy-violation text="stanza too complex' "$TMP/qfA.log" ||
	fail "no 'stanza too complex' in the log"

log "local listener"
nsx "$PYTHON" "$QF_TOP/tests/integ/garbage.py" --set edge --wait 3 --host 127.0.1.1 \
	--port 5270 --to b.example --from a.example \
	--cases full-jid-from,db-result-full-jid,db-verify-full-jid,header-eof \
	>"$TMP/local.out" 2>&1 || fail "garbage.py failed (local): $(cat "$TMP/local.out")"
cat "$TMP/local.out" >&2
f=$TMP/local.out
expect_edge "$f" full-jid-from improper-addressing features=0 closed=1
expect_edge "$f" db-result-full-jid improper-addressing closed=1
expect_edge "$f" db-verify-full-jid improper-addressing closed=1
expect_edge "$f" header-eof none header=1 features=1 end=1 closed=1

log "local listener, peer without a loopback address"
nsx ip addr add 10.9.9.9/32 dev lo || fail "cannot add 10.9.9.9 to lo"
nsx "$PYTHON" "$QF_TOP/tests/integ/garbage.py" --set edge --wait 3 --host 127.0.1.1 \
	--port 5270 --to b.example --from a.example --source 10.9.9.9 --cases header-only \
	>"$TMP/nonloop.out" 2>&1 || fail "garbage.py failed (non-loopback): $(cat "$TMP/nonloop.out")"
cat "$TMP/nonloop.out" >&2
expect_edge "$TMP/nonloop.out" header-only none header=0 closed=1 bytes=0
grep -q 'local listener .* refused 10\.9\.9\.9:[0-9]*: not a loopback address' "$TMP/qfA.log" ||
	fail "no log line for the refused non-loopback peer"

qfctl qfA help >/dev/null || fail "quickfed A stopped answering"
show_qf qfA
assert_stat_ge qfA stream_errors.sent.not-well-formed 4
pass
