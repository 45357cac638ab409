#!/bin/bash
# tests/integ/17-local-tls.sh - `local_server { tls on }`: the loopback leg to Prosody
# uses STARTTLS too (for a local server that is not on the same host's loopback).
# SPDX-License-Identifier: ISC
#
# Site B delivers inbound to Prosody B over TLS (TLSv1.3 in show peers for the local-out
# stream); A <-> B messages flow both ways as in 10-relay-ab.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
make_ca
site_proxied_prepare A a.example 127.0.1.1
site_proxied_prepare B b.example 127.0.2.1
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2
write_quickfed_conf "$TMP/B-qf.conf" B b.example B 127.0.2.1 127.0.2.2
sed -i '/^local_server {/,/^}/ s/^\ttls off$/\ttls on/' "$TMP/B-qf.conf"
grep -A4 '^local_server' "$TMP/B-qf.conf" | grep -q 'tls on' || fail "could not switch the local leg to TLS"
start_quickfed qfB "$TMP/B-qf.conf"
start_prosody B b.example 127.0.2.2 proxied 127.0.2.1 5270
register A alice a.example pass-a
register B bob b.example pass-b

client_bg bob bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "over a TLS local leg" --timeout 20
client alice alice@a.example pass-a 127.0.1.2 send bob@b.example "over a TLS local leg" ||
	fail "alice could not send"
client_wait bob
qfctl qfB show peers >"$TMP/peersB.txt"
cat "$TMP/peersB.txt" >&2
ids=$(awk -F'[.=]' '/\.side=local$/ { side[$2] = 1 } /\.direction=out$/ { out[$2] = 1 }
	/\.purpose=relay$/ { relay[$2] = 1 }
	END { for (i in side) if (out[i] && relay[i]) print i }' "$TMP/peersB.txt")
[ -n "$ids" ] || fail "no local-out relay stream on quickfed B"
for id in $ids; do
	grep -q "^peer\.$id\.tls=TLSv1\.[23]$" "$TMP/peersB.txt" ||
		fail "local-out stream $id to Prosody B is not on TLS"
done
log "local-out stream(s) $ids to Prosody B use TLS"
pass
