#!/bin/bash
# tests/bench/run.sh - `make bench`: first-message latency and throughput over an emulated 50 ms path.
# SPDX-License-Identifier: ISC
#
# Run by `make bench` as `tests/bench/run.sh BUILD_DIR` (BUILD_DIR holds quickfed and
# quickfedctl). It builds tests/bench/delaylink.c, creates two network namespaces joined
# by a TUN link delayed by BENCH_RTT_MS (site A 198.18.1.1, site B 198.18.2.1), runs an nsd
# in each namespace for the test zone, a throw-away openssl PKI, and per scenario the
# Prosody/quickfed sites; tests/bench/bclient.py clients measure the time from the
# sender's write of a <message> (c2s on A) to the receiver's read (c2s on B), cold (all
# servers just restarted, so no s2s connection; DNS is local to each namespace) and warm
# (the connection made by the cold message). Everything started is stopped by PID.
#
# Environment: BENCH_N (cold runs per scenario, default 5), BENCH_WARM (warm samples per
# cold run, default 3), BENCH_RTT_MS (default 50), BENCH_BURST (messages in the throughput
# burst, default 1000), BENCH_SCENARIOS (default "c b d"; also "a" and "e" once pipelining
# is in), BENCH_KEEP=1 keeps the temporary directory, QF_LOG_LEVEL (quickfed's log_level,
# default info; debug to trace a run with BENCH_KEEP=1), BENCH_STANZA_BYTES (bytes per burst
# <message> as the sender writes it; default: as small as the body allows, about 90).
#
# Scenarios (one function scen_X_up each; add one by writing it and listing it in SCEN_LABEL):
#   c  Prosody -> Prosody, direct (the baseline)
#   b  Prosody -> quickfed -> quickfed -> Prosody, `policy { pipelining off }`
#   d  Prosody -> quickfed -> plain Prosody
#   a  as b with `pipelining on`                                       (for XEP-0305)
#   e  as a, restarted with the state_dir (disk caches, tickets) kept  (for XEP-0305)

set -eu

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export QF_TOP=$TOP
# shellcheck source=tests/integ/prosody-conf.sh
. "$TOP/tests/integ/prosody-conf.sh"	# prosody_cfg_global, prosody_cfg_vhost
# shellcheck source=tests/integ/nsd-conf.sh
. "$TOP/tests/integ/nsd-conf.sh"	# nsd_conf_server, nsd_conf_zones
export PYTHONDONTWRITEBYTECODE=1	# no __pycache__ in the source tree
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac

N=${BENCH_N:-5}
WARM=${BENCH_WARM:-3}
RTT=${BENCH_RTT_MS:-50}
BURST=${BENCH_BURST:-1000}
STANZA_BYTES=${BENCH_STANZA_BYTES:-0}
SCENARIOS=${BENCH_SCENARIOS:-c b d a e f g}
LIFETIME=1200			# delaylink exits by itself after this many seconds
# Idle time before each warm message: longer than a delayed ACK (40 ms) plus a round
# trip, so a warm sample measures an idle connection, not Nagle waiting for an ACK.
GAP=$(awk -v r="$RTT" 'BEGIN { g = (3 * r + 100) / 1000; printf "%.3f", g }')
PIPELINING_KW=0			# 1 when quickfed accepts `policy { pipelining }`

declare -A SCEN_LABEL=(
	[c]="(c) prosody-prosody direct"
	[b]="(b) quickfed-quickfed"
	[d]="(d) quickfed-prosody"
	[a]="(a) quickfed-quickfed pipelined"
	[e]="(e) (a) after restart, disk caches"
	[f]="(f) (e), resolver 1 RTT away, DNS cache kept"
	[g]="(g) (e), resolver 1 RTT away, DNS cache emptied"
)

NS_A="qfb$$-a"
NS_B="qfb$$-b"
NET_A=198.18.1.1		# site A's internet address (TUN end in NS_A)
NET_B=198.18.2.1
P_A=127.0.1.2			# Prosody A (c2s; s2s 5271 when proxied)
Q_A=127.0.1.1			# quickfed A's local listener
P_B=127.0.2.2
Q_B=127.0.2.1
DNS_IP=127.0.0.53
PASS=benchpass

TMP=""
PIDS=""
NS_MADE=""
SITE_PIDS=""			# daemons of the running scenario
declare -A QF_PID=() PR_PID=()

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# ---------------------------------------------------------------- processes

track() { PIDS="$PIDS $1"; }

# stop_pids PID...: TERM all, wait up to 5 s for each, then KILL. Only our own PIDs.
stop_pids() {
	local pid i
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid did not stop on TERM, sending KILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? ns pid
	set +e
	trap - EXIT INT TERM
	# A signal may arrive inside `cmd >/dev/null 2>&1` of a shell function: talk to the
	# original stdout/stderr again.
	exec 1>&7 2>&8
	# shellcheck disable=SC2086
	[ -n "$PIDS" ] && stop_pids $PIDS
	for ns in $NS_MADE; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			log "stray pid $pid in $ns: $(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)"
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "$rc" != 0 ]; then
			log "failed (exit $rc); last lines of the logs in $TMP:"
			for f in $(find "$TMP" -name '*.log' | sort); do
				echo "==== $f" >&2
				tail -n 30 "$f" >&2
			done
		fi
		if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
			log "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}

# wait_for TRIES CMD...: run CMD every 0.1 s until it succeeds, at most TRIES times.
wait_for() {
	local tries=$1 i
	shift
	for i in $(seq 1 "$tries"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

nsa() { ip netns exec "$NS_A" "$@"; }
nsb() { ip netns exec "$NS_B" "$@"; }
nsof() { [ "$1" = a ] && echo "$NS_A" || echo "$NS_B"; }
port_open() { ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }

# ---------------------------------------------------------------- setup

check_env() {
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, TUN devices)"
	local t
	for t in ip cc nsd drill openssl prosody prosodyctl python3; do
		command -v "$t" >/dev/null 2>&1 || die "tool '$t' not found (make deps)"
	done
	if [ ! -x "$BUILD/quickfed" ] || [ ! -x "$BUILD/quickfedctl" ]; then
		die "no $BUILD/quickfed or quickfedctl (make)"
	fi
	[ -c /dev/net/tun ] || die "no /dev/net/tun"
	[ -f "$TOP/tests/integ/xmppc.py" ] || die "tests/integ/xmppc.py missing"
}

# probe_quickfed: does this quickfed know `policy { pipelining }`? (quickfed -t)
probe_quickfed() {
	local f=$TMP/probe.conf
	printf '%s\n' "state_dir $TMP/probe" "listener local { }" "domain probe.example { }" \
		"policy {" "	pipelining off" "}" >"$f"
	if "$BUILD/quickfed" -t -c "$f" >"$TMP/probe.out" 2>&1; then
		PIPELINING_KW=1
	elif grep -q pipelining "$TMP/probe.out"; then
		PIPELINING_KW=0
		log "this quickfed has no \`policy { pipelining }\`: (b) runs without the line"
	else
		die "quickfed -t fails on a minimal config: $(cat "$TMP/probe.out")"
	fi
}

build_delaylink() {
	mkdir -p "$BUILD/bench"
	cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -Wno-unused-parameter -O2 -g \
		-o "$BUILD/bench/delaylink" "$TOP/tests/bench/delaylink.c" ||
		die "cannot build delaylink"
}

make_namespaces() {
	local ns
	for ns in "$NS_A" "$NS_B"; do
		ip netns add "$ns" || die "cannot create namespace $ns"
		NS_MADE="$NS_MADE $ns"
		ip netns exec "$ns" ip link set lo up
		# TCP Fast Open for clients and servers in this namespace (per-netns sysctl)
		ip netns exec "$ns" sysctl -qw net.ipv4.tcp_fastopen=3 2>/dev/null ||
			log "cannot enable TCP Fast Open in $ns"
		mkdir -p "/etc/netns/$ns"
		echo "nameserver $DNS_IP" >"/etc/netns/$ns/resolv.conf"
		printf '127.0.0.1 localhost\n' >"/etc/netns/$ns/hosts"
	done
	"$BUILD/bench/delaylink" "$NS_A" "$NET_A/24" "$NS_B" "$NET_B/24" "$RTT" "$LIFETIME" \
		>"$TMP/delaylink.out" 2>"$TMP/delaylink.log" 7>&- 8>&- &
	track $!
	wait_for 50 grep -q '^ready' "$TMP/delaylink.out" || die "delaylink did not come up"
	log "namespaces $NS_A ($NET_A) <-> $NS_B ($NET_B), $(cat "$TMP/delaylink.out")"
}

# measure_rtt: time a TCP connect to a closed port (SYN out, RST back = one round trip).
measure_rtt() {
	nsa python3 - "$NET_B" <<'EOF'
import socket, sys, time
v = []
for i in range(5):
    s = socket.socket()
    t = time.monotonic()
    try:
        s.connect((sys.argv[1], 9))
    except OSError:
        pass
    v.append((time.monotonic() - t) * 1000)
    s.close()
v.sort()
print("%.1f" % v[2])
EOF
}

make_pki() {
	local p=$TMP/pki n d
	mkdir -p "$p"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$p/ca.key" -out "$p/ca.crt" -days 2 -subj "/CN=quickfed bench CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >"$p/openssl.log" 2>&1 ||
		die "CA generation failed"
	for n in a b; do
		d=$n.example
		printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyAgreement" \
			"extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:$d" >"$p/$n.ext"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$p/$n.key" -out "$p/$n.csr" -subj "/CN=$d" >>"$p/openssl.log" 2>&1 ||
			die "key for $d failed"
		openssl x509 -req -in "$p/$n.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
			-CAcreateserial -days 2 -out "$p/$n.crt" -extfile "$p/$n.ext" \
			>>"$p/openssl.log" 2>&1 || die "certificate for $d failed"
	done
}

DNS_READY_NAME=_xmpp-server._tcp.b.example	# asked until nsd answers (mux.sh sets its own)
dns_ready() { ip netns exec "$1" drill @"$DNS_IP" "$DNS_READY_NAME" SRV | grep -q 'IN.*SRV'; }

# zone_records: the zone's records below its SOA and NS (tests/bench/mux.sh replaces it).
zone_records() {
	cat <<EOF
_xmpp-server._tcp.a IN SRV 0 0 5269 xmpp.a.example.
_xmpp-server._tcp.b IN SRV 0 0 5269 xmpp.b.example.
xmpp.a IN A $NET_A
xmpp.b IN A $NET_B
a IN A $NET_A
b IN A $NET_B
EOF
}

# start_dns: one nsd per namespace, both authoritative for example., so a lookup costs
# no round trip over the delay link (the "DNS cached" condition of a cold run).
start_dns() {
	local d=$TMP/dns ns
	mkdir -p "$d"
	{
		cat <<EOF
\$ORIGIN example.
\$TTL 300
@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60
@ IN NS ns.example.
ns IN A $DNS_IP
EOF
		zone_records
	} >"$d/example.zone"
	nsd-checkzone example. "$d/example.zone" >"$d/checkzone.log" 2>&1 || die "zone does not load"
	for ns in a b; do
		mkdir -p "$d/$ns"
		{
			nsd_conf_server "$d/$ns" "$d" "$DNS_IP" 53 "$TMP/nsd-$ns.log"
			if [ "$ns" = b ]; then printf '\tip-address: %s\n' "$NET_B"; fi
			nsd_conf_zones example. "$d/example.zone"
		} >"$d/$ns/nsd.conf"
		ip netns exec "$(nsof $ns)" nsd -d -c "$d/$ns/nsd.conf" >"$TMP/nsd-$ns.out.log" 2>&1 7>&- 8>&- &
		track $!
		wait_for 50 dns_ready "$(nsof $ns)" || die "nsd in $(nsof $ns) does not answer"
	done
}

# ---------------------------------------------------------------- sites

# prosody_conf SITE MODE: write $TMP/prosody-SITE-MODE.cfg.lua (MODE direct|proxied).
prosody_conf() {
	local s=$1 mode=$2 pip qip netip s2sif s2sport=5269 gmode=$2 filter=cat
	local f=$TMP/prosody-$s-$mode.cfg.lua
	if [ "$s" = a ]; then pip=$P_A qip=$Q_A netip=$NET_A; else pip=$P_B qip=$Q_B netip=$NET_B; fi
	s2sif=$netip
	if [ "$mode" = proxied ]; then
		s2sif=$pip s2sport=5271
	elif [ "$mode" = smacks ]; then   # direct, with mod_smacks (faults.sh)
		gmode=direct filter=prosody_cfg_smacks
	fi
	mkdir -p "$TMP/prosody-$s/data" "$TMP/prosody-$s/certs"
	{
		echo "-- generated by tests/bench/run.sh: site $s ($mode)"
		prosody_cfg_global "$TMP/prosody-$s" "$TMP/prosody-$s-$mode.log" "${PROSODY_LOG_LEVEL:-info}" "$pip" \
			"$s2sif" "$s2sport" "$TMP/pki" "$s" "$gmode" "$qip" 5270 | $filter
		prosody_cfg_vhost "$s.example" "$TMP/pki" "$s"
	} >"$f"
	echo "$f"
}

# start_prosody SITE MODE
start_prosody() {
	local s=$1 mode=$2 f ns pip port
	f=$(prosody_conf "$s" "$mode")
	ns=$(nsof "$s")
	if [ "$s" = a ]; then pip=$P_A; else pip=$P_B; fi
	ip netns exec "$ns" prosody --config "$f" >>"$TMP/prosody-$s-$mode.out.log" 2>&1 7>&- 8>&- &
	PR_PID[$s]=$!
	track $!
	SITE_PIDS="$SITE_PIDS $!"
	wait_for 100 port_open "$ns" "$pip" 5222 || die "prosody $s did not listen on $pip:5222"
	if [ "$mode" = proxied ]; then
		wait_for 50 port_open "$ns" "$pip" 5271 || die "prosody $s: no s2s on $pip:5271"
	else
		port=$NET_A
		[ "$s" = b ] && port=$NET_B
		wait_for 50 port_open "$ns" "$port" 5269 || die "prosody $s: no s2s on $port:5269"
	fi
	prosody_resolver_check "${PR_PID[$s]}" "$s"
}

# prosody_resolver_check PID SITE: the Prosody every baseline compares against must be the
# one `apt-get install prosody` gives, with its Recommends: lua-unbound. Prosody loads
# lunbound (Debian: lunbound.so -> liblua5.4-unbound.so) at start-up when it can and
# then resolves with net.unbound (libunbound);
# without it, it falls back to its built-in net.dns resolver, which made cold set-ups
# 3-4 times slower here (tests/bench/README). The running process's mappings tell which.
# Sets PROSODY_RESOLVER for the report; a Prosody without it stops the bench.
PROSODY_RESOLVER=""
prosody_resolver_check() {
	local pid=$1 s=$2 maps
	maps=$(cat "/proc/$pid/maps" 2>/dev/null) || die "prosody $s (pid $pid) gone after start-up"
	if grep -Eq '/(lunbound|liblua5\.[0-9]-unbound)\.so' <<<"$maps"; then
		PROSODY_RESOLVER="net.unbound (lua-unbound $(dpkg-query -W -f='${Version}' lua-unbound 2>/dev/null || echo '?'), $(grep -o '/[^ ]*libunbound\.so[^ ]*' <<<"$maps" | head -n 1))"
		return 0
	fi
	PROSODY_RESOLVER="built-in net.dns (lua-unbound not loaded)"
	die "prosody $s (pid $pid) runs without lua-unbound: it resolves with its built-in net.dns" \
		"resolver, not the libunbound one Debian's prosody gets from its Recommends; a ratio" \
		"against that baseline is not a result. Install lua-unbound (make deps) for the Lua" \
		"Prosody runs ($(head -n 1 "$(command -v prosody)" | sed 's/^#! *//'))."
}

register_users() {
	local s f
	for s in a b; do
		f=$(prosody_conf "$s" direct)
		prosodyctl --config "$f" register "user$s" "$s.example" "$PASS" \
			>>"$TMP/prosodyctl.log" 2>&1 || die "cannot register user$s@$s.example"
	done
}

# qf_conf SITE PIPELINING(on|off) "DOMAIN..." [TIMEOUT_LINES [POLICY_LINES]]: quickfed's
# configuration for SITE on stdout, one domain block per DOMAIN (all with the site's
# certificate); the extra lines go inside timeouts { } and policy { } (mux.sh and
# faults.sh use this too).
qf_conf() {
	local s=$1 pipe=$2 doms=$3 tmo=${4:-} pol=${5:-} qip pip netip d=$TMP/qf-$1 p=$TMP/pki dom
	if [ "$s" = a ]; then qip=$Q_A pip=$P_A netip=$NET_A; else qip=$Q_B pip=$P_B netip=$NET_B; fi
	cat <<EOF
# generated by tests/bench/$(basename "$0"): site $s
log_level ${QF_LOG_LEVEL:-info}
state_dir $d/state
status_socket $d/quickfed.sock
ca_file $p/ca.crt
listener internet {
	address $netip
	port 5269
}
listener local {
	address $qip
	port 5270
}
local_server {
	address $pip
	port 5271
	tls off
}
EOF
	for dom in $doms; do
		printf 'domain %s {\n\tcertificate %s\n\tkey %s\n}\n' "$dom" "$p/$s.crt" "$p/$s.key"
	done
	cat <<EOF
resolver {
	forwarder ${QF_FWD:-$DNS_IP}
	timeout 3s
}
timeouts {
	connect 3s
	tls 5s
	auth 5s
	setup 10s
	idle 10m
	shutdown 2s
${tmo:+$tmo
}}
policy {
	starttls required
	dialback on
	sasl_external on
${pol:+$pol
}$( [ "$PIPELINING_KW" = 1 ] && echo "	pipelining $pipe" )
}
EOF
}

# qf_launch SITE: run quickfed SITE on $TMP/qf-SITE/quickfed.conf in its namespace and
# wait for its status socket (QF_PID[SITE], SITE_PIDS).
qf_launch() {
	local s=$1 ns d=$TMP/qf-$1
	ns=$(nsof "$s")
	ip netns exec "$ns" "$BUILD/quickfed" -c "$d/quickfed.conf" >>"$TMP/quickfed-$s.log" 2>&1 7>&- 8>&- &
	QF_PID[$s]=$!
	track $!
	SITE_PIDS="$SITE_PIDS $!"
	wait_for 50 ip netns exec "$ns" "$BUILD/quickfedctl" -s "$d/quickfed.sock" help ||
		die "quickfed $s did not answer on its status socket"
}

# start_quickfed SITE PIPELINING(on|off) KEEP_STATE(0|1)
start_quickfed() {
	local s=$1 pipe=$2 keep=$3 d=$TMP/qf-$1
	[ "$keep" = 0 ] && rm -rf "$d/state"
	# keep=2: a known peer (capability and DNS caches kept) but no TLS resumption
	# keep=3: everything but the DNS answer cache
	[ "$keep" = 3 ] && rm -f "$d/state/dns.cache"
	[ "$keep" = 2 ] && rm -f "$d/state/tls-sessions.db" "$d/state/ticket.keys" \
		"$d/state/ticket.keys.lock" "$d/state"/tls-ident*
	mkdir -p "$d/state"
	qf_conf "$s" "$pipe" "$s.example" >"$d/quickfed.conf"
	qf_launch "$s"
}

sites_down() {
	# shellcheck disable=SC2086
	[ -n "$SITE_PIDS" ] && stop_pids $SITE_PIDS
	SITE_PIDS=""
	QF_PID=()
	PR_PID=()
}

# Scenario set-ups: bring both sites up from scratch (no s2s connection anywhere).
scen_c_up() { start_prosody a direct; start_prosody b direct; }
scen_b_up() {
	start_quickfed a off 0; start_quickfed b off 0
	start_prosody a proxied; start_prosody b proxied
}
scen_d_up() { start_quickfed a off 0; start_prosody a proxied; start_prosody b direct; }
need_pipelining() {
	[ "$PIPELINING_KW" = 1 ] || die "scenario $1 needs \`policy { pipelining }\`, which $BUILD/quickfed does not accept yet"
}
# (a) and (e) are primed by one unmeasured run from an empty state_dir, so that the peer
# is known (state_dir/peercaps): (a) then restarts keeping the capability and DNS caches
# but dropping TLS session tickets (a full handshake every time); (e) keeps everything
# (resumed TLS from the disk session store and ticket keys).
PRIME=0
scen_a_up() {
	need_pipelining a
	local keep=2
	[ "$PRIME" = 1 ] && keep=0
	start_quickfed a on $keep; start_quickfed b on $keep
	start_prosody a proxied; start_prosody b proxied
}
scen_e_up() {
	need_pipelining e
	local keep=1
	[ "$PRIME" = 1 ] && keep=0
	start_quickfed a on $keep; start_quickfed b on $keep
	start_prosody a proxied; start_prosody b proxied
}
# (f)/(g): as (e), but quickfed A's resolver is the DNS server on site B, one emulated
# round trip away; (f) restarts with the DNS answers cached on disk, (g) without them.
scen_f_up() {
	local keep=1
	[ "$PRIME" = 1 ] && keep=0
	QF_FWD=$NET_B start_quickfed a on $keep; start_quickfed b on $keep
	start_prosody a proxied; start_prosody b proxied
}
scen_g_up() {
	local keep=3
	[ "$PRIME" = 1 ] && keep=0
	QF_FWD=$NET_B start_quickfed a on $keep; start_quickfed b on $keep
	start_prosody a proxied; start_prosody b proxied
}

# ---------------------------------------------------------------- measuring

# cpu_ns PID...: CPU time (user+system, on-CPU ns from schedstat) of all threads of the PIDs.
cpu_ns() {
	local pid
	for pid in "$@"; do
		cat /proc/"$pid"/task/*/schedstat 2>/dev/null
	done | awk '{ t += $1 } END { printf "%d\n", t }'
}

# recv_start TAG COUNT: receiver in B's namespace, output $TMP/recv-TAG.txt.
recv_start() {
	local tag=$1 count=$2
	rm -f "$TMP/recv-$tag.txt" "$TMP/recv-$tag.ready"
	nsb python3 "$TOP/tests/bench/bclient.py" recv "userb@b.example" "$PASS" "$P_B" \
		--out "$TMP/recv-$tag.txt" --ready "$TMP/recv-$tag.ready" --count "$count" \
		--timeout 60 >"$TMP/recv-$tag.log" 2>&1 7>&- 8>&- &
	RECV_PID=$!
	track $!
	wait_for 100 test -f "$TMP/recv-$tag.ready" || die "receiver $tag did not log in"
}

recv_wait() {
	local rc=0
	wait "$RECV_PID" || rc=$?
	[ "$rc" = 0 ] || die "receiver failed: $(tail -n 1 "$TMP/recv-$1.log")"
}

# run_cycle SCEN I: one cold message and WARM warm ones; samples go to $TMP/samples.
run_cycle() {
	local sc=$1 i=$2 tag ids k
	tag=$sc$i
	ids="c$tag"
	for k in $(seq 1 "$WARM"); do ids="$ids,w$tag-$k"; done
	recv_start "$tag" $((WARM + 1))
	nsa python3 "$TOP/tests/bench/bclient.py" send "usera@a.example" "$PASS" "$P_A" \
		--to "userb@b.example" --ids "$ids" --sync "$TMP/recv-$tag.txt" --timeout 30 \
		--gap "$GAP" \
		>"$TMP/send-$tag.log" 2>&1 || die "sender failed: $(tail -n 1 "$TMP/send-$tag.log")"
	recv_wait "$tag"
	# SENT id ns / RECV id ns -> "SCEN cold|warm ms"
	awk -v sc="$sc" '
		FNR == NR && $1 == "SENT" { s[$2] = $3; next }
		$1 == "RECV" && ($2 in s) {
			printf "%s %s %.3f\n", sc, (substr($2, 1, 1) == "c" ? "cold" : "warm"), ($3 - s[$2]) / 1e6
		}' "$TMP/send-$tag.log" "$TMP/recv-$tag.txt" | tee -a "$TMP/samples" |
		awk '{ printf "%s %.1f ", $2, $3 } END { print "" }' | sed "s/^/    run $i: /" >&2
}

# run_burst SCEN: BURST pipelined messages over the warm link; throughput and CPU.
run_burst() {
	local sc=$1 tag=${1}burst t0 t1 qf0 qf1 pr0 pr1 qpids ppids pid
	qpids="${QF_PID[*]:-}"
	ppids="${PR_PID[*]}"
	for pid in $qpids $ppids; do
		[ -r "/proc/$pid/comm" ] || die "pid $pid gone before the burst"
		printf '%s ' "$(cat "/proc/$pid/comm")($pid)"
	done | sed 's/^/    burst CPU measured on: /' >&2
	echo >&2
	recv_start "$tag" "$BURST"
	# shellcheck disable=SC2086
	qf0=$(cpu_ns $qpids)
	# shellcheck disable=SC2086
	pr0=$(cpu_ns $ppids)
	nsa python3 "$TOP/tests/bench/bclient.py" burst "usera@a.example" "$PASS" "$P_A" \
		--to "userb@b.example" --count "$BURST" --prefix "$tag" --pad "$STANZA_BYTES" \
		--sync "$TMP/recv-$tag.txt" --timeout 120 >"$TMP/send-$tag.log" 2>&1 ||
		die "burst sender failed: $(tail -n 1 "$TMP/send-$tag.log")"
	recv_wait "$tag"
	# shellcheck disable=SC2086
	qf1=$(cpu_ns $qpids)
	# shellcheck disable=SC2086
	pr1=$(cpu_ns $ppids)
	t0=$(awk '$1 == "BURST_SENT" { print $2 }' "$TMP/send-$tag.log")
	t1=$(awk 'BEGIN { m = 0 } $1 == "RECV" && $3 > m { m = $3 } END { print m }' "$TMP/recv-$tag.txt")
	awk -v sc="$sc" -v n="$BURST" -v t0="$t0" -v t1="$t1" \
		-v q="$((qf1 - qf0))" -v p="$((pr1 - pr0))" -v hasq="${qpids:+1}" 'BEGIN {
		d = (t1 - t0) / 1e9
		printf "%s burst %d %.3f %.1f %s %.1f\n", sc, n, d, n / d,
			(hasq ? sprintf("%.1f", q / n / 1e3) : "-"), p / n / 1e3
	}' | tee -a "$TMP/burst" | awk '{ printf "    burst: %d msgs in %.3f s = %.0f msg/s, cpu us/stanza quickfed %s prosody %s\n", $3, $4, $5, $6, $7 }' >&2
}

# scenario SCEN: N cold cycles; the burst runs on the last cycle's warm link.
scenario() {
	local sc=$1 i
	declare -F "scen_${sc}_up" >/dev/null || die "unknown scenario '$sc'"
	log "scenario ${SCEN_LABEL[$sc]}"
	case $sc in
	a | e | f | g)
		PRIME=1
		"scen_${sc}_up"
		run_cycle "prime-$sc" 0
		sites_down
		PRIME=0
		;;
	esac
	for i in $(seq 1 "$N"); do
		"scen_${sc}_up"
		run_cycle "$sc" "$i"
		[ "$i" = "$N" ] && run_burst "$sc"
		sites_down
	done
}

report() {
	echo
	echo "quickfed bench: RTT ${RTT} ms emulated (measured $RTT_MEASURED ms), N=$N cold runs," \
		"$((N * WARM)) warm samples per scenario, burst $BURST messages$([ "$STANZA_BYTES" = 0 ] || echo " of $STANZA_BYTES bytes")"
	echo "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "Prosody resolver (every Prosody started, checked in /proc/PID/maps): $PROSODY_RESOLVER"
	python3 - "$TMP/samples" "$TMP/burst" "$RTT" "$SCENARIOS" <<'EOF'
import statistics, sys
samples, burst, rtt, order = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split()
labels = {"c": "(c) prosody-prosody direct", "b": "(b) quickfed-quickfed",
          "d": "(d) quickfed-prosody", "a": "(a) quickfed pipelined",
          "e": "(e) (a) restarted, disk caches",
          "f": "(f) (e), DNS 1 RTT away, cached",
          "g": "(g) (e), DNS 1 RTT away, no cache"}
v = {}
for ln in open(samples):
    sc, kind, ms = ln.split()
    v.setdefault((sc, kind), []).append(float(ms))
b = {}
try:
    for ln in open(burst):
        p = ln.split()
        b[p[0]] = p
except FileNotFoundError:
    pass
med = {k: statistics.median(x) for k, x in v.items()}
def ratio(sc, kind):
    if ("c", kind) not in med or (sc, kind) not in med:
        return "-"
    return "%.2f" % (med[(sc, kind)] / med[("c", kind)])
print()
print("%-32s %9s %9s %7s %9s %9s %9s %9s %9s" % ("scenario", "cold ms", "warm ms", "cold/RTT",
      "cold/(c)", "warm/(c)", "msg/s", "qf us/st", "pr us/st"))
for sc in order:
    if (sc, "cold") not in med:
        continue
    cold, warm = med[(sc, "cold")], med.get((sc, "warm"), float("nan"))
    bp = b.get(sc, ["-"] * 7)
    print("%-32s %9.1f %9.1f %7.1f %9s %9s %9s %9s %9s" % (labels.get(sc, sc), cold, warm,
          cold / rtt, ratio(sc, "cold"), ratio(sc, "warm"),
          bp[4] if bp[4] == "-" else "%.0f" % float(bp[4]), bp[5], bp[6]))
print()
for num, den, what in (("a", "b", "pipelined vs unpipelined set-up (a)/(b)"),
                       ("e", "a", "resumed vs full TLS handshake (e)/(a)"),
                       ("f", "g", "restart with vs without the DNS disk cache (f)/(g)")):
    if (num, "cold") in med and (den, "cold") in med:
        print("ratio %-52s %.2f  (%.1f / %.1f ms)" % (what, med[(num, "cold")] / med[(den, "cold")],
              med[(num, "cold")], med[(den, "cold")]))
print()
print("cold/warm ms: median of the first message after a restart of all servers / of the")
print("following messages on the same connection; min-max cold per scenario:")
for sc in order:
    if (sc, "cold") in v:
        print("  %s cold %s  warm %.1f-%.1f" % (sc, " ".join("%.0f" % x for x in v[(sc, "cold")]),
              min(v.get((sc, "warm"), [0])), max(v.get((sc, "warm"), [0]))))
print("msg/s: %s messages written at once by the sender, first write to last receive." %
      (list(b.values())[0][2] if b else "-"))
print("qf/pr us/st: CPU time (all threads, /proc/PID/task/*/schedstat) of the quickfed /")
print("Prosody processes of both sites during that burst, divided by the messages.")
EOF
}

main() {
	check_env
	exec 7>&1 8>&2		# cleanup's stdout/stderr; daemons get them closed (7>&- 8>&-)
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	TMP=$(mktemp -d /tmp/qfbench.XXXXXX)
	local start=$SECONDS sc
	build_delaylink
	probe_quickfed
	for sc in $SCENARIOS; do
		declare -F "scen_${sc}_up" >/dev/null || die "unknown scenario '$sc'"
		case $sc in a | e) need_pipelining "$sc" ;; esac
	done
	make_namespaces
	RTT_MEASURED=$(measure_rtt)
	log "measured RTT (TCP SYN/RST): $RTT_MEASURED ms"
	make_pki
	start_dns
	register_users
	: >"$TMP/samples"
	for sc in $SCENARIOS; do
		scenario "$sc"
	done
	report | tee "$TMP/report.txt"
	mkdir -p "$BUILD/bench"
	cp "$TMP/report.txt" "$BUILD/bench/report.txt"
	log "done in $((SECONDS - start)) s; report also in $BUILD/bench/report.txt"
}

# tests/bench/mux.sh sources this file for its functions and runs its own main.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main
fi
