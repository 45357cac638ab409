#!/bin/bash
# tests/integ/16-garbage.sh - hostile bytes on both listeners: stream errors, no crash.
# SPDX-License-Identifier: ISC
#
# garbage.py sends random bytes, a TLS record instead of XML, DTDs, billion laughs,
# entity references, comments, PIs, 5000-deep nesting, a 2 MiB attribute, 500 attributes,
# a wrong namespace, an unknown host, invalid UTF-8, a stanza before authentication and
# a truncated header, to quickfed A's internet and local listeners. Each must end with the
# right stream error (or a plain close), quickfed must stay up and serve a real message
# afterwards, and its log must hold no sanitizer report (checked by lib.sh at exit).
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
site_proxied_prepare B b.example 127.0.2.1
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2
site_proxied_start B b.example 127.0.2.1 127.0.2.2
register A alice a.example pass-a
register B bob b.example pass-b

expect_case() {   # FILE CASE CONDITION...
	local f=$1 c=$2 got
	shift 2
	got=$(awk -v c="$c" '$1 == c { print $2 }' "$f")
	for want in "$@"; do
		[ "$got" = "$want" ] && return 0
	done
	fail "$c on $(basename "$f"): got '$got', wanted one of: $*"
}

nsx "$PYTHON" "$QF_TOP/tests/integ/garbage.py" --host 127.0.1.1 --port 5269 \
	--to a.example --from b.example >"$TMP/internet.out" 2>&1 || fail "garbage.py failed (internet)"
cat "$TMP/internet.out" >&2
nsx "$PYTHON" "$QF_TOP/tests/integ/garbage.py" --host 127.0.1.1 --port 5270 \
	--to b.example --from a.example >"$TMP/local.out" 2>&1 || fail "garbage.py failed (local)"
cat "$TMP/local.out" >&2

for f in "$TMP/internet.out" "$TMP/local.out"; do
	expect_case "$f" random-bytes not-well-formed
	expect_case "$f" tls-record-first not-well-formed
	expect_case "$f" doctype restricted-xml
	expect_case "$f" billion-laughs restricted-xml
	expect_case "$f" entity-ref restricted-xml
	expect_case "$f" comment restricted-xml
	expect_case "$f" pi restricted-xml
	expect_case "$f" deep policy-violation
	expect_case "$f" huge-attribute policy-violation
	expect_case "$f" many-attributes policy-violation
	expect_case "$f" bad-namespace invalid-namespace
	expect_case "$f" bad-utf8 not-well-formed
done
expect_case "$TMP/internet.out" unknown-host host-unknown
expect_case "$TMP/internet.out" stanza-before-auth policy-violation
# on the local listener `to` is the remote domain: any non-local one is fine
expect_case "$TMP/local.out" unknown-host none
expect_case "$TMP/local.out" stanza-before-auth invalid-from

qfctl qfA help >/dev/null || fail "quickfed A stopped answering"
client_bg bob bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "still alive" --timeout 20
client alice alice@a.example pass-a 127.0.1.2 send bob@b.example "still alive" ||
	fail "alice could not send after the garbage"
client_wait bob
assert_stat_ge qfA stream_errors.sent.total 20
show_qf qfA
pass
