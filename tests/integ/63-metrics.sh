#!/bin/bash
# tests/integ/63-metrics.sh - the metrics: listener metrics (HTTP), show metrics, quickfedctl -j.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab.sh; A has `listener metrics { 127.0.0.1 port 5280,
# connections 2 }`. After alice sends N messages to bob through both quickfeds, A's
# metrics are scraped over HTTP (OpenMetrics and 0.0.4) and through quickfedctl show
# metrics, and each is parsed by Debian's python3-prometheus-client; every value of
# `quickfedctl -j show stats` (parsed by python3's json) must equal its metric, and the
# per-remote gauges must show b.example. Then the listener's answers to hostile
# requests, its client limit and read timeout, and the config check of the address.
. "$(dirname "$0")/lib.sh"

need_quickfed
PROM_PY=${PROM_PY:-/usr/bin/python3}
"$PROM_PY" -c 'import prometheus_client.openmetrics.parser' 2>/dev/null ||
	skip "python3-prometheus-client missing (tools/deps.sh installs it)"
setup_ns
CHECK="$PROM_PY $QF_TOP/tests/integ/metrics_check.py"
N=7
METRICS_CONF='listener metrics {
	address 127.0.0.1
	port 5280
	connections 2
}'

make_ca
site_proxied_prepare A a.example 127.0.1.1
site_proxied_prepare B b.example 127.0.2.1
start_dns
site_proxied_start A a.example 127.0.1.1 127.0.1.2 "$METRICS_CONF"
site_proxied_start B b.example 127.0.2.1 127.0.2.2
register A alice a.example pass-a
register B bob b.example pass-b

# the config check: a metrics listener off loopback is refused with FILE:LINE
bad=$TMP/bad.conf
sed 's/^\taddress 127.0.0.1$/\taddress 127.0.1.1/; /^listener metrics/,/^}/ s/^\taddress .*/\taddress 192.0.2.1/' \
	"$TMP/A-qf.conf" >"$bad"
line=$(grep -n 'address 192.0.2.1' "$bad" | cut -d: -f1)
if out=$("$QF_BUILD/quickfed" -t -c "$bad" 2>&1); then
	fail "quickfed -t accepted a metrics listener on 192.0.2.1"
fi
echo "$out" | grep -q "^$bad:$line: .*metrics listener must be a loopback address" ||
	fail "quickfed -t: no FILE:LINE error for the metrics address: $out"
log "quickfed -t refused the metrics listener on 192.0.2.1 at line $line"
"$QF_BUILD/quickfed" -t -c "$TMP/A-qf.conf" >/dev/null || fail "quickfed -t refused A's config"

# N messages from alice to bob through A and B
client_bg bob bob@b.example pass-b 127.0.2.2 expect-count alice@a.example $N --timeout 40
client alice alice@a.example pass-a 127.0.1.2 send-count bob@b.example $N ||
	fail "alice could not send"
client_wait bob
wait_for 50 test "$(qf_stat qfA stanzas.out)" -ge $N || fail "qfA stanzas.out below $N"
# the counters hold still once the connections have gone quiet and the heap is trimmed
wait_settled qfA || fail "qfA did not settle (conns.quieted, heap.trim_due)"
show_qf qfA

# the same numbers everywhere: HTTP (both formats), show metrics, show stats -j
nsx $CHECK scrape http://127.0.0.1:5280/metrics openmetrics "$TMP/om.txt" || fail "OpenMetrics scrape"
nsx $CHECK scrape http://127.0.0.1:5280/metrics text "$TMP/text.txt" || fail "0.0.4 scrape"
qfctl qfA show metrics >"$TMP/show-metrics.txt" || fail "show metrics failed"
$CHECK parse "$TMP/show-metrics.txt" openmetrics >"$TMP/show-metrics.parsed" || {
	cat "$TMP/show-metrics.parsed"; fail "show metrics does not parse"; }
tail -n 1 "$TMP/show-metrics.parsed"
qfctl qfA -j show stats >"$TMP/stats.json" || fail "quickfedctl -j show stats failed"
"$PROM_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["stanzas.out"] >= int(sys.argv[2]), d["stanzas.out"]' \
	"$TMP/stats.json" $N || fail "quickfedctl -j show stats: bad JSON or stanzas.out < $N"
# traffic is over: the counters hold still, so each source must agree exactly (but the
# event loop's loop.*, which every request moves: metrics_check.py)
for f in om.txt show-metrics.txt; do
	$CHECK compare "$TMP/$f" "$TMP/stats.json" || fail "$f disagrees with show stats"
done
grep -q "^quickfed_stanzas_out_total $(qf_stat qfA stanzas.out)$" "$TMP/om.txt" ||
	fail "quickfed_stanzas_out_total is not show stats' stanzas.out"
grep -q '^quickfed_stanzas_out_total ' "$TMP/text.txt" && grep -q '^# TYPE quickfed_stanzas_out_total counter$' "$TMP/text.txt" ||
	fail "0.0.4 text without the counter"
tail -n 1 "$TMP/om.txt" | grep -qx '# EOF' || fail "OpenMetrics without # EOF"
# per remote domain: b.example has its route and connection
grep -q '^quickfed_remote_routes{remote="b.example"} [1-9]' "$TMP/om.txt" || fail "no remote_routes for b.example"
grep -q '^quickfed_remote_connections{remote="b.example"} [1-9]' "$TMP/om.txt" || fail "no remote_connections for b.example"
# show dns and show tls are in it too
grep -q '^quickfed_dns_lookups_total [1-9]' "$TMP/om.txt" || fail "no DNS lookups counted"
grep -q '^quickfed_tls_handshakes_by_kind_total{kind="full",role="client"} [1-9]' "$TMP/om.txt" ||
	fail "no TLS client handshakes counted"
log "metrics: $(grep -c '^quickfed_' "$TMP/om.txt") samples, show stats agrees"

# quickfedctl -j: an error answer is {"error": ...} and exit 1; help is text
rc=0
qfctl qfA -j no such command >"$TMP/err.json" || rc=$?
[ "$rc" = 1 ] || fail "quickfedctl -j on an unknown command: exit $rc, want 1"
"$PROM_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert "unknown command" in d["error"], d' \
	"$TMP/err.json" || fail "quickfedctl -j error answer: $(cat "$TMP/err.json")"
for cmd in "help" "show peers" "show routes" "show dns" "show tls" "show config" "show metrics"; do
	# shellcheck disable=SC2086
	qfctl qfA -j $cmd >"$TMP/j.json" || fail "quickfedctl -j $cmd failed"
	"$PROM_PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/j.json" ||
		fail "quickfedctl -j $cmd: not JSON: $(head -c 300 "$TMP/j.json")"
done
log "quickfedctl -j: every command answers JSON"

# the listener under hostile requests, at its client limit, and its read timeout
nsx $CHECK http 127.0.0.1 5280 || fail "hostile requests"
nsx $CHECK limit 127.0.0.1 5280 2 || fail "client limit"
# still serving, and the refusals were logged (rate-limited)
nsx $CHECK scrape http://127.0.0.1:5280/metrics openmetrics "$TMP/om2.txt" || fail "scrape after the abuse"
grep -q 'metrics listener 127.0.0.1 port 5280: client=[0-9]*: 400 Bad Request' "$TMP/qfA.log" ||
	fail "no log line for a refused request"
pass
