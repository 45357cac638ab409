#!/bin/bash
# tests/bench/synth.sh - `make bench-synth`: quickfed's own cost between synthetic local servers.
# SPDX-License-Identifier: ISC
#
# Run by `make bench-synth` as `tests/bench/synth.sh BUILD_DIR` (the optimized build).
# No Prosody in the quickfed stages: tests/bench/synthsrv.c plays the local servers of both
# sites in one process (side A writes, side B reads), so Prosody's own ceiling does not hide
# quickfed's cost (the Prosody column, below, measures Prosody in quickfed's place).
# Path: synthsrv A -> quickfed A (local listener, dialback on loopback) ==TLS==> quickfed B
# -> synthsrv B (dialback on loopback, verified at quickfed B's local listener); the
# baseline for latency is synthsrv A -> synthsrv B directly (the same dialback, no quickfed),
# and its floor two trivial TCP relays in quickfed's place (tests/bench/tcprelay.c).
# Pair k is a<k>.a.example -> b<k>.b.example; every b<k> has its own address
# (127.2.x.y, all local on lo), so every pair is its own internet link (no multiplexing
# across remote servers) and N pairs = N remote servers = N links.
# Everything runs in one network namespace the script creates (loopback only, no delay),
# nsd serves the zone in it; every process is stopped by PID and the namespace removed on exit.
#
# Then the Prosody column (SYNTH_PROSODY=1): Debian's Prosody in quickfed's place. Prosody A
# serves the a<k>.a.example and Prosody B the b<k>.b.example as XEP-0114 components, to
# which synthsrv --component connects one stream per domain; Prosody A -> Prosody B is
# plain s2s (TLS, the same CA and wildcard certificates), one link per pair. The same plan
# (stages SYNTH_PROSODY_STAGES), plus latency at quickfed's rates where Prosody carries
# them, and a direct synthsrv run at Prosody's own half-load rates for the baseline.
#
# Environment: SYNTH_STAGES (pair counts, increasing, default "1 100 1000 10000"),
# SYNTH_SECONDS (per load, default 2), SYNTH_WINDOW (stanzas in flight at full speed, 500),
# SYNTH_SETUP_WINDOW (pairs being set up at once; default all of a stage's new pairs),
# SYNTH_TIMEOUT (bound on each wait of synthsrv, s, 300), SYNTH_LOG (quickfed log_level,
# info), SYNTH_LAT_RATE (stanzas/s for every stage's latency figures instead of half the
# stage's 200 B msg/s), SYNTH_PROSODY (1: run the Prosody column, 0: skip it),
# SYNTH_PROSODY_STAGES (its pair counts, "1 100"), PROSODY_LOG_LEVEL (info), BENCH_KEEP=1.

set -eu

# shellcheck source=tests/bench/run.sh
. "$(dirname "${BASH_SOURCE[0]}")/run.sh"	# log, die, track, stop_pids, cleanup, wait_for

STAGES=${SYNTH_STAGES:-1 100 1000 10000}
SECS=${SYNTH_SECONDS:-2}
WINDOW=${SYNTH_WINDOW:-500}
SETUP_WINDOW=${SYNTH_SETUP_WINDOW:-}
STEP_TIMEOUT=${SYNTH_TIMEOUT:-300}
QF_LOG=${SYNTH_LOG:-info}
PR_ON=${SYNTH_PROSODY:-1}
PR_STAGES=${SYNTH_PROSODY_STAGES:-1 100}
NS="qfs$$"
NS_A=$NS
NS_B=$NS
Q_A=127.0.1.1			# quickfed A: local listener :5270, internet :5369
S_A=127.0.1.2			# synthsrv side A (local server A) :5271
Q_B=127.0.2.1			# quickfed B: local listener :5270; internet 0.0.0.0:5269
S_B=127.0.2.2			# synthsrv side B (local server B) :5271
PR_A=127.0.1.3			# Prosody A: components :5347 (its s2s: quickfed A's 127.0.1.1:5369)
PR_B=127.0.2.3			# Prosody B: components :5347 (its s2s: 0.0.0.0:5269, as quickfed B)
MAXN=${STAGES##* }
SETUP_WINDOW=${SETUP_WINDOW:-$MAXN}	# default: each stage's new pairs all at once
PR_MAXN=0
[ "$PR_ON" = 1 ] && PR_MAXN=${PR_STAGES##* }
ZONE_N=$((MAXN > PR_MAXN ? MAXN : PR_MAXN))	# b<k> records in the zone

# b_addr K: the address of b<K>.b.example (127.2.x.y, y in 1..250)
b_addr() { echo "127.2.$(($1 / 250)).$(($1 % 250 + 1))"; }
# (backgrounded commands run `ip netns exec` directly, so that $! is the daemon's PID)
nsx() { ip netns exec "$NS" "$@"; }

check_synth_env() {
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
	local t
	for t in ip cc nsd nsd-checkzone drill openssl; do
		command -v "$t" >/dev/null 2>&1 || die "tool '$t' not found (make deps)"
	done
	if [ ! -x "$BUILD/quickfed" ] || [ ! -x "$BUILD/quickfedctl" ]; then die "no $BUILD/quickfed (make)"; fi
	case " $STAGES " in *" 1 "*) ;; *) die "SYNTH_STAGES must contain 1 (the memory baseline)" ;; esac
	case $PR_ON in 0) return 0 ;; 1) ;; *) die "SYNTH_PROSODY must be 0 or 1" ;; esac
	command -v prosody >/dev/null 2>&1 || die "tool 'prosody' not found (make deps; SYNTH_PROSODY=0 skips it)"
	case " $PR_STAGES " in *" 1 "*) ;; *) die "SYNTH_PROSODY_STAGES must contain 1 (the memory baseline)" ;; esac
	[[ $PR_MAXN =~ ^[0-9]+$ ]] || die "bad SYNTH_PROSODY_STAGES '$PR_STAGES'"
}

# raise_nofile: each quickfed holds one socket per link plus its local connections; each
# Prosody (and synthsrv --component) two sockets per pair (s2s link, component stream).
raise_nofile() {
	local hard need=$((MAXN > 2 * PR_MAXN ? MAXN + 1000 : 2 * PR_MAXN + 1000))
	hard=$(ulimit -Hn)
	[ "$hard" = unlimited ] && hard=1048576
	[ "$hard" -ge "$need" ] ||
		die "RLIMIT_NOFILE hard limit $hard < $need needed for $MAXN pairs (lower SYNTH_STAGES or SYNTH_PROSODY_STAGES)"
	ulimit -n "$hard" || die "cannot raise the soft fd limit to $hard"
	NOFILE=$hard
}

build_synthsrv() {
	mkdir -p "$BUILD/bench"
	cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -O2 -g -o "$BUILD/bench/synthsrv" "$TOP/tests/bench/synthsrv.c" ||
		die "cannot build synthsrv"
	cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -O2 -g -o "$BUILD/bench/tcprelay" "$TOP/tests/bench/tcprelay.c" ||
		die "cannot build tcprelay"
}

# make_namespace: the namespace; /etc/netns/NS/resolv.conf (removed by cleanup, as in
# run.sh) points Prosody's libunbound, which reads resolv.conf, at the namespace's nsd.
make_namespace() {
	ip netns add "$NS" || die "cannot create namespace $NS"
	NS_MADE="$NS_MADE $NS"
	nsx ip link set lo up
	if [ "$PR_ON" = 1 ]; then
		mkdir -p "/etc/netns/$NS"
		echo "nameserver $DNS_IP" >"/etc/netns/$NS/resolv.conf"
		printf '127.0.0.1 localhost\n' >"/etc/netns/$NS/hosts"
	fi
}

# make_pki: a CA and one wildcard certificate per site (*.a.example, *.b.example).
make_synth_pki() {
	local p=$TMP/pki n
	mkdir -p "$p"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$p/ca.key" -out "$p/ca.crt" -days 2 -subj "/CN=quickfed synth CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >"$p/openssl.log" 2>&1 ||
		die "CA generation failed"
	for n in a b; do
		printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyAgreement" \
			"extendedKeyUsage=serverAuth,clientAuth" \
			"subjectAltName=DNS:*.$n.example,DNS:$n.example" >"$p/$n.ext"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$p/$n.key" -out "$p/$n.csr" -subj "/CN=$n.example" >>"$p/openssl.log" 2>&1 ||
			die "key for $n failed"
		openssl x509 -req -in "$p/$n.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
			-CAcreateserial -days 2 -out "$p/$n.crt" -extfile "$p/$n.ext" \
			>>"$p/openssl.log" 2>&1 || die "certificate for $n failed"
	done
}

# start_synth_dns: nsd on 127.0.0.53 in the namespace: *.a.example -> quickfed A's
# internet listener (SRV port 5369); b<k>.b.example -> its own 127.2.x.y, SRV port 5269.
start_synth_dns() {
	local d=$TMP/dns
	mkdir -p "$d"
	{
		cat <<EOF
\$ORIGIN example.
\$TTL 3600
@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60
@ IN NS ns.example.
ns IN A $DNS_IP
xmpp.a IN A $Q_A
*.a IN A $Q_A
*.a IN SRV 0 0 5369 xmpp.a.example.
EOF
		awk -v n="$ZONE_N" 'BEGIN {
			for (k = 1; k <= n; k++) {
				printf "_xmpp-server._tcp.b%d.b IN SRV 0 0 5269 b%d.b.example.\n", k, k
				printf "b%d.b IN A 127.2.%d.%d\n", k, int(k / 250), k % 250 + 1
			}
		}'
	} >"$d/example.zone"
	nsd-checkzone example. "$d/example.zone" >"$d/checkzone.log" 2>&1 || die "zone does not load"
	{
		nsd_conf_server "$d" "$d" "$DNS_IP" 53 "$TMP/nsd.log"
		nsd_conf_zones example. "$d/example.zone"
	} >"$d/nsd.conf"
	ip netns exec "$NS" nsd -d -c "$d/nsd.conf" >"$TMP/nsd.out.log" 2>&1 7>&- 8>&- &
	track $!
	DNS_READY_NAME=_xmpp-server._tcp.b1.b.example
	wait_for 100 dns_ready "$NS" || die "nsd does not answer"
}

# synth_qf_conf SITE: quickfed's configuration (one domain block per pair on its side).
# timeouts { auth } outlasts the run: quickfed ends a loopback verification connection
# (synthsrv's db:verify connection to its local listener) at that timeout whatever it
# carries, and synthsrv, unlike Prosody, does not reopen one with requests outstanding.
# The certificate paths go through the short symlink PKI_LINK: it keeps 10,000 domain
# blocks small (quickfed read at most 1 MiB of configuration when this was written;
# 16 MiB since).
synth_qf_conf() {
	local s=$1 d=$TMP/qf-$1 p=$PKI_LINK inet lip sip
	if [ "$s" = a ]; then inet="$Q_A;5369" lip=$Q_A sip=$S_A; else inet="0.0.0.0;5269" lip=$Q_B sip=$S_B; fi
	cat <<EOF
# generated by tests/bench/synth.sh: site $s
log_level $QF_LOG
state_dir $d/state
status_socket $d/quickfed.sock
ca_file $p/ca.crt
listener internet {
	address ${inet%;*}
	port ${inet#*;}
	connections $((MAXN + 1000))
}
listener local {
	address $lip
	port 5270
}
local_server {
	address $sip
	port 5271
	tls off
}
resolver {
	forwarder $DNS_IP
	timeout 10s
}
timeouts {
	connect 10s
	tls 60s
	auth $((STEP_TIMEOUT * 4 + 600))s
	setup 120s
	idle 60m
}
limits {
	connections $((MAXN + 1000))
	connections_per_address $((MAXN + 1000))
}
EOF
	awk -v s="$s" -v n="$MAXN" -v crt="$p/$s.crt" -v key="$p/$s.key" 'BEGIN {
		for (k = 1; k <= n; k++)
			printf "domain %s%d.%s.example {\n\tcertificate %s\n\tkey %s\n}\n", s, k, s, crt, key
	}'
}

start_synth_quickfed() {
	local s=$1 d=$TMP/qf-$1 t0=$SECONDS
	mkdir -p "$d/state"
	synth_qf_conf "$s" >"$d/quickfed.conf"
	ip netns exec "$NS" "$BUILD/quickfed" -c "$d/quickfed.conf" >>"$TMP/quickfed-$s.log" 2>&1 7>&- 8>&- &
	QF_PID[$s]=$!
	track $!
	# start-up loads one TLS context per domain: allow a minute for 10,000 of them
	wait_for 600 nsx "$BUILD/quickfedctl" -s "$d/quickfed.sock" help ||
		die "quickfed $s did not answer on its status socket"
	log "quickfed $s (pid ${QF_PID[$s]}) up in $((SECONDS - t0)) s with $MAXN domains," \
		"RSS $(awk '/^VmRSS/ { print $2, $3 }' "/proc/${QF_PID[$s]}/status")"
}

# write_phase_hook: $TMP/phase-hook.sh, which synthsrv --phase-hook runs before and after
# each latency run ("begin|end LABEL N"): it appends each quickfed's event loop counters
# (show stats loop.*, core/loopwatch.c) to $TMP/loop.out as
# "LOOP begin|end LABEL N SITE TURNS BUSY_US OVER_1MS OVER_10MS RUNQ_WAIT_NS", the last the
# time that quickfed was ready to run but waited for a CPU (/proc/PID/schedstat, field 2).
# Written once the quickfeds run (their PIDs are in it).
write_phase_hook() {
	cat >"$TMP/phase-hook.sh" <<EOF
#!/bin/bash
set -eu
declare -A pid=([a]=${QF_PID[a]} [b]=${QF_PID[b]})
for s in a b; do
	st=\$("$BUILD/quickfedctl" -s "$TMP/qf-\$s/quickfed.sock" show stats)
	v() { echo "\$st" | awk -F= -v k="\$1" '\$1 == k { print \$2; f = 1 } END { if (!f) print "?" }'; }
	w=\$(awk '{ print \$2 }' "/proc/\${pid[\$s]}/schedstat")
	echo "LOOP \$1 \$2 \$3 \$s \$(v loop.turns) \$(v loop.busy_us) \$(v loop.turns_over_1ms) \$(v loop.turns_over_10ms) \$w"
done >>"$TMP/loop.out"
EOF
	chmod +x "$TMP/phase-hook.sh"
}

# floor_run RATES...: the latency runs again with two tcprelays (tests/bench/tcprelay.c) in
# quickfed's place, synthsrv A -> relay A (Q_A:5282) -> relay B (Q_B:5282) -> synthsrv B:
# two more processes and loopback hops, nothing parsed, no TLS. Lines in $TMP/floor.out.
floor_run() {
	local ra rb
	ip netns exec "$NS" "$BUILD/bench/tcprelay" "$Q_A:5282" "$Q_B:5282" 3600 >"$TMP/relay-a.out" 2>&1 7>&- 8>&- &
	ra=$!
	track "$ra"
	ip netns exec "$NS" "$BUILD/bench/tcprelay" "$Q_B:5282" "$S_B:5283" 3600 >"$TMP/relay-b.out" 2>&1 7>&- 8>&- &
	rb=$!
	track "$rb"
	wait_for 100 grep -q ready "$TMP/relay-a.out" || die "tcprelay A did not start: $(cat "$TMP/relay-a.out")"
	wait_for 100 grep -q ready "$TMP/relay-b.out" || die "tcprelay B did not start: $(cat "$TMP/relay-b.out")"
	run_synthsrv "$TMP/floor.out" "$STAGES" --a-listen "$S_A:5283" --a-peer "$Q_A:5282" \
		--b-listen "$S_B:5283" --b-peer "$S_A:5283" --no-cpu "$@"
	stop_pids "$ra" "$rb"
}

# run_synthsrv OUT STAGES ARGS...: synthsrv in the namespace, bounded, its lines in OUT.
run_synthsrv() {
	local out=$1 stages=$2 rc=0 bound
	shift 2
	# every wait inside is bounded by SYNTH_TIMEOUT; this bounds the whole run
	bound=$((STEP_TIMEOUT * 4 + 600))
	ip netns exec "$NS" timeout "$bound" "$BUILD/bench/synthsrv" "$@" --seconds "$SECS" --window "$WINDOW" \
		--setup-window "$SETUP_WINDOW" --timeout "$STEP_TIMEOUT" --stages "$stages" \
		>"$out" 2>&1 7>&- 8>&- &
	SYN_PID=$!
	track "$SYN_PID"
	tail -f --pid="$SYN_PID" "$out" 2>/dev/null | sed -u 's/^/    /' >&2 &
	wait "$SYN_PID" || rc=$?
	wait $! 2>/dev/null || true
	[ "$rc" = 0 ] || die "synthsrv failed (exit $rc): $(grep -m1 '^FAIL' "$out" || tail -n 1 "$out")"
	grep -q '^DONE' "$out" || die "synthsrv did not finish its plan"
}

# synth_prosody_conf SITE: Prosody SITE's configuration on stdout: prosody_cfg_global's
# text as run.sh's direct Prosody has it (s2s over TLS required, s2s_secure_auth off, the
# throw-away CA trusted, the site's wildcard certificate), then one external component
# (XEP-0114) per pair on its side, each with its own secret, listening on PR_X:5347.
# Prosody A's s2s listens where the zone sends *.a.example (127.0.1.1:5369, quickfed A's
# internet listener, free by then), Prosody B's on 0.0.0.0:5269 (every b<k>'s address).
synth_prosody_conf() {
	local s=$1 d=$TMP/prosody-$1 cip s2sip s2sport
	if [ "$s" = a ]; then cip=$PR_A s2sip=$Q_A s2sport=5369; else cip=$PR_B s2sip="*" s2sport=5269; fi
	echo "-- generated by tests/bench/synth.sh: Prosody $s, one component per synthetic domain"
	# s2s_timeout: up to SYNTH_SETUP_WINDOW links are set up at once, 10 s is short for that
	prosody_cfg_global "$d" "$TMP/prosody-$s.log" "${PROSODY_LOG_LEVEL:-info}" "$cip" \
		"$s2sip" "$s2sport" "$TMP/pki" "$s" direct | sed 's/^s2s_timeout = .*/s2s_timeout = 60/'
	cat <<EOF
component_ports = { 5347 }
component_interfaces = { "$cip" }
EOF
	# Prosody refuses to start without a VirtualHost: the site's bare domain (unused)
	prosody_cfg_vhost "$s.example" "$TMP/pki" "$s"
	echo
	awk -v s="$s" -v n="$PR_MAXN" -v sec="$PR_SECRET" 'BEGIN {
		for (k = 1; k <= n; k++)
			printf "Component \"%s%d.%s.example\"\n\tcomponent_secret = \"%s-%s%d.%s.example\"\n",
				s, k, s, sec, s, k, s
	}'
}

# pr_listening PID IP PORT: IP:PORT accepts a connection in the namespace, or PID is gone
# (the caller checks which).
pr_listening() { ! kill -0 "$1" 2>/dev/null || port_open "$NS" "$2" "$3"; }

# pr_answers PID IP DOMAIN: Prosody's component port at IP answers a component stream
# header for DOMAIN with its own within 0.5 s (its event loop runs: start-up is over), or
# PID is gone. The connection is then dropped without a handshake.
pr_answers() {
	# shellcheck disable=SC2016  # (the inner shell expands them)
	! kill -0 "$1" 2>/dev/null || ip netns exec "$NS" bash -c 'exec 3<>"/dev/tcp/$1/5347" &&
		printf "<stream:stream xmlns=\"jabber:component:accept\" xmlns:stream=\"%s\" to=\"%s\">" \
			http://etherx.jabber.org/streams "$2" >&3 && read -r -t 0.5 -n 5 x <&3 && [ "$x" = "<?xml" ]' \
		_ "$2" "$3"
}

# start_synth_prosody SITE: Prosody SITE in the namespace, started as run.sh starts it;
# up when its component port and s2s port accept connections and lua-unbound is loaded.
start_synth_prosody() {
	local s=$1 d=$TMP/prosody-$1 f cip s2sip s2sport t0=$SECONDS
	if [ "$s" = a ]; then cip=$PR_A s2sip=$Q_A s2sport=5369; else cip=$PR_B s2sip=$(b_addr 1) s2sport=5269; fi
	mkdir -p "$d/data" "$d/certs"
	f=$d/prosody.cfg.lua
	synth_prosody_conf "$s" >"$f"
	ip netns exec "$NS" prosody --config "$f" >>"$TMP/prosody-$s.out.log" 2>&1 7>&- 8>&- &
	PR_PID[$s]=$!
	track $!
	wait_for 600 pr_answers "${PR_PID[$s]}" "$cip" "${s}1.$s.example" ||
		die "prosody $s: no answer on its component port $cip:5347"
	kill -0 "${PR_PID[$s]}" 2>/dev/null ||
		die "prosody $s exited at start-up: $(tail -n 2 "$TMP/prosody-$s.log" | tr '\n' ' ')"
	wait_for 100 pr_listening "${PR_PID[$s]}" "$s2sip" "$s2sport" || die "prosody $s: no s2s on $s2sip:$s2sport"
	prosody_resolver_check "${PR_PID[$s]}" "$s"
	log "prosody $s (pid ${PR_PID[$s]}) up in $((SECONDS - t0)) s with $PR_MAXN components," \
		"RSS $(awk '/^VmRSS/ { print $2, $3 }' "/proc/${PR_PID[$s]}/status")"
}

# prosody_auth_summary: how Prosody B authenticated Prosody A's links, from its log
# (info level): SASL EXTERNAL (certificates) or dialback.
prosody_auth_summary() {
	local f=$TMP/prosody-b.log ext db
	ext=$(grep -c 'Accepting SASL EXTERNAL identity' "$f" 2>/dev/null) || ext=0
	db=$(grep -ci 'dialback.*valid\|verified dialback' "$f" 2>/dev/null) || db=0
	echo "links authenticated by SASL EXTERNAL: $ext, by dialback: $db (Prosody B's log)"
}

# synth_prosody_run: the Prosody column. Both Prosodys with PR_MAXN components each;
# synthsrv --component over SYNTH_PROSODY_STAGES, latency also at quickfed's half-load
# rate of the same pair count where Prosody's full-speed 200 B msg/s reaches it; then
# the direct baseline (synthsrv A -> synthsrv B) at Prosody's own half-load rates.
synth_prosody_run() {
	local srates="" prates="" n r
	PR_SECRET=$(openssl rand -hex 16) || die "openssl rand failed"
	PR_VERSION=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo '?')
	start_synth_prosody a
	start_synth_prosody b
	while read -r n r; do
		srates="$srates --lat-if-sustained $n:$r"
	done < <(awk '$1 == "LAT" { print $2, $3 }' "$TMP/proxied.out")
	log "prosody: synthsrv A =component=> Prosody A ==TLS==> Prosody B =component=> synthsrv B," \
		"stages: $PR_STAGES"
	# shellcheck disable=SC2086
	run_synthsrv "$TMP/prosody.out" "$PR_STAGES" --component --secret "$PR_SECRET" \
		--a-peer "$PR_A:5347" --b-peer "$PR_B:5347" --pid-a "${PR_PID[a]}" --pid-b "${PR_PID[b]}" \
		$srates
	stop_pids "${PR_PID[a]}" "${PR_PID[b]}"
	PR_AUTH=$(prosody_auth_summary)
	log "prosody: $PR_AUTH"
	while read -r n r; do
		prates="$prates --lat-rate $n:$r"
	done < <(awk '$1 == "LAT" { print $2, $3 }' "$TMP/prosody.out")
	log "direct: synthsrv A -> synthsrv B at Prosody's half-load rates"
	# shellcheck disable=SC2086
	run_synthsrv "$TMP/direct-prosody.out" "$PR_STAGES" --a-listen "$S_A:5291" --a-peer "$S_B:5291" \
		--b-listen "$S_B:5291" --b-peer "$S_A:5291" --no-cpu $prates
}

synth_report() {
	echo
	echo "quickfed synthetic load: two quickfeds ($BUILD/quickfed) between synthetic local servers"
	echo "(tests/bench/synthsrv.c), one namespace, loopback, no delay; log_level $QF_LOG;"
	echo "$SECS s of load per figure, at most $WINDOW stanzas in flight; fd limit $NOFILE (ulimit -n)"
	echo "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $LOAD0 (the box is shared)"
	python3 - "$TMP/proxied.out" "$TMP/direct.out" "$TMP/floor.out" "$TMP/loop.out" <<'EOF'
import os, sys
def lines(f):
    d = {}
    for ln in open(f):
        p = ln.split()
        if p and p[0] in ("UP", "RSS", "CPU", "LAT"):
            d.setdefault(p[0], []).append(p[1:])
    return d
q, r = lines(sys.argv[1]), lines(sys.argv[2])
up = {int(p[0]): float(p[1]) for p in q.get("UP", [])}
rss = {int(p[0]): (int(p[1]), int(p[2])) for p in q.get("RSS", [])}
cpu = {(int(p[0]), int(p[1])): p for p in q.get("CPU", [])}
lat = {int(p[0]): p for p in q.get("LAT", [])}
dlat = {int(p[0]): p for p in r.get("LAT", [])}
ns = sorted(up)
print()
print("%-7s %9s %21s %21s %9s %9s   %s" % ("pairs", "set-up s", "200 B us/st A / B",
      "2 KiB us/st A / B", "msg/s", "2K msg/s", "idle RSS MiB A / B"))
for n in ns:
    c2, c20 = cpu.get((n, 200)), cpu.get((n, 2048))
    f = lambda c: "%9s / %-9s" % (c[4], c[5]) if c else "%21s" % "-"
    print("%-7d %9.1f %21s %21s %9s %9s   %.1f / %.1f" % (n, up[n], f(c2), f(c20),
          c2[6] if c2 else "-", c20[6] if c20 else "-", rss[n][0] / 1024, rss[n][1] / 1024))
print()
print("memory per idle link (KiB; RSS growth / links added, from the previous stage):")
prev = None
for n in ns:
    if prev is not None and n - prev >= 50:
        a = (rss[n][0] - rss[prev][0]) / (n - prev)
        b = (rss[n][1] - rss[prev][1]) / (n - prev)
        print("  %5d -> %-5d  quickfed A (initiator) %6.1f   quickfed B (receiver) %6.1f" % (prev, n, a, b))
    prev = n
print()
print("latency at half load (200 B, paced at half the msg/s of the 200 B run; us, write at")
print("synthetic A to parse at synthetic B; direct = synthetic A -> synthetic B, no quickfed):")
print("%-7s %9s %9s %9s %9s %9s %11s %11s" % ("pairs", "rate/s", "p50", "p99", "direct p50",
      "direct p99", "added p50", "added p99"))
for n in ns:
    if n in lat:
        l, d = lat[n], dlat.get(n)
        p50, p99 = float(l[3]), float(l[4])
        if d:
            print("%-7d %9s %9.1f %9.1f %10.1f %10.1f %11.1f %11.1f" % (n, l[1], p50, p99,
                  float(d[3]), float(d[4]), p50 - float(d[3]), p99 - float(d[4])))
        else:
            print("%-7d %9s %9.1f %9.1f %10s %10s" % (n, l[1], p50, p99, "-", "-"))
print()
fl = {int(p[0]): p for p in lines(sys.argv[3]).get("LAT", [])} if os.path.exists(sys.argv[3]) else {}
loop = {}
if os.path.exists(sys.argv[4]):
    for ln in open(sys.argv[4]):
        p = ln.split()
        if len(p) == 10 and p[0] == "LOOP" and p[2] == "LAT" and "?" not in p:
            loop[(p[1], int(p[3]), p[4])] = [int(x) for x in p[5:10]]
print("the floor under the added latency: the same latency runs with two trivial TCP relays")
print("(tests/bench/tcprelay.c) in quickfed's place: two more processes and loopback hops, no")
print("parsing, no TLS. quickfed's own event loop over its latency run (show stats loop.*):")
print("turns of 1 ms / 10 ms or more, its mean work per turn, and the time it was ready to run")
print("but waited for a CPU (/proc/PID/schedstat), A / B:")
print("%-7s %9s %9s %9s %11s %11s %13s %13s %11s %13s" % ("pairs", "rate/s", "floor p50", "floor p99",
      "floor+ p50", "floor+ p99", "turns >=1ms", "turns >=10ms", "us/turn", "CPU wait ms"))
for n in ns:
    if n not in lat or n not in fl:
        continue
    l, f, d = lat[n], fl[n], dlat.get(n)
    fa = ("%11.1f %11.1f" % (float(f[3]) - float(d[3]), float(f[4]) - float(d[4]))) if d else "%11s %11s" % ("-", "-")
    lw = []
    for k in (2, 3):
        v = []
        for site in ("a", "b"):
            b, e = loop.get(("begin", n, site)), loop.get(("end", n, site))
            v.append(str(e[k] - b[k]) if b and e else "-")
        lw.append(" / ".join(v))
    v = []
    for site in ("a", "b"):
        b, e = loop.get(("begin", n, site)), loop.get(("end", n, site))
        v.append("%.0f" % ((e[1] - b[1]) / (e[0] - b[0])) if b and e and e[0] > b[0] else "-")
    w = []
    for site in ("a", "b"):
        b, e = loop.get(("begin", n, site)), loop.get(("end", n, site))
        w.append("%.0f" % ((e[4] - b[4]) / 1e6) if b and e else "-")
    print("%-7d %9s %9.1f %9.1f %s %13s %13s %11s %13s" % (n, l[1], float(f[3]), float(f[4]), fa,
          lw[0], lw[1], " / ".join(v), " / ".join(w)))
print("floor+: the floor's p50/p99 less the direct run's (what two extra processes cost here);")
print("quickfed's added latency above it is its own work, or its waiting for a CPU.")
print()
print("us/st: on-CPU time of all threads of that quickfed (/proc/PID/task/*/schedstat) over")
print("the load, divided by the stanzas (round robin over the pairs, each pair its own TLS link).")
print("set-up s: time to bring the stage's new pairs up (db:result, verification, link, one probe).")
print("Idle RSS: VmRSS 2 s after the set-up, before the stage's loads; it includes heap the")
print("previous stage's loads left, which new links may reuse.")
EOF
}

# synth_prosody_report: the Prosody table (as the quickfed one) and quickfed / Prosody
# ratios for the pair counts both measured.
synth_prosody_report() {
	echo
	echo "Prosody column: Debian's Prosody $PR_VERSION in quickfed's place, same namespace, PKI"
	echo "and zone: synthsrv --component A -> Prosody A (XEP-0114 component per a<k>.a.example)"
	echo "==s2s TLS==> Prosody B -> synthsrv --component B (component per b<k>.b.example), one"
	echo "s2s link per pair; $PR_AUTH."
	echo "Resolver (checked in /proc/PID/maps): $PROSODY_RESOLVER; log level ${PROSODY_LOG_LEVEL:-info}"
	python3 - "$TMP/proxied.out" "$TMP/direct.out" "$TMP/prosody.out" "$TMP/direct-prosody.out" <<'EOF'
import sys
def lines(f):
    d = {}
    for ln in open(f):
        p = ln.split()
        if p:
            d.setdefault(p[0], []).append(p[1:])
    return d
q, qd, p, pd = (lines(f) for f in sys.argv[1:5])
def table(d):
    return ({int(x[0]): float(x[1]) for x in d.get("UP", [])},
            {int(x[0]): (int(x[1]), int(x[2])) for x in d.get("RSS", [])},
            {(int(x[0]), int(x[1])): x for x in d.get("CPU", [])},
            {int(x[0]): x for x in d.get("LAT", [])})
qup, qrss, qcpu, qlat = table(q)
pup, prss, pcpu, plat = table(p)
qdlat = {int(x[0]): x for x in qd.get("LAT", [])}
pdlat = {int(x[0]): x for x in pd.get("LAT", [])}
plats = {int(x[0]): x for x in p.get("LATS", [])}
pskip = {int(x[0]): x for x in p.get("LATS_SKIP", [])}
ns = sorted(pup)
print()
print("%-7s %9s %21s %21s %9s %9s   %s" % ("pairs", "set-up s", "200 B us/st A / B",
      "2 KiB us/st A / B", "msg/s", "2K msg/s", "idle RSS MiB A / B"))
for n in ns:
    c2, c20 = pcpu.get((n, 200)), pcpu.get((n, 2048))
    f = lambda c: "%9s / %-9s" % (c[4], c[5]) if c else "%21s" % "-"
    print("%-7d %9.1f %21s %21s %9s %9s   %.1f / %.1f" % (n, pup[n], f(c2), f(c20),
          c2[6] if c2 else "-", c20[6] if c20 else "-", prss[n][0] / 1024, prss[n][1] / 1024))
print()
print("memory per idle pair (KiB; RSS growth / pairs added, from the previous stage; a pair is")
print("one s2s link and one component stream on each Prosody):")
prev = None
for n in ns:
    if prev is not None:
        a = (prss[n][0] - prss[prev][0]) / (n - prev)
        b = (prss[n][1] - prss[prev][1]) / (n - prev)
        print("  %5d -> %-5d  Prosody A (initiator) %6.1f   Prosody B (receiver) %6.1f" % (prev, n, a, b))
    prev = n
def added(l, d):
    if l is None or d is None:
        return None
    return (float(l[3]) - float(d[3]), float(l[4]) - float(d[4]))
print()
print("latency (200 B; us, write at synthetic A to parse at synthetic B; direct = synthetic A ->")
print("synthetic B, no server, at the same rate): at half Prosody's own 200 B msg/s, and at")
print("quickfed's half-load rate for that pair count when Prosody's full-speed 200 B msg/s")
print("reaches it:")
print("%-7s %-10s %9s %9s %9s %9s %9s %11s %11s" % ("pairs", "rate of", "rate/s", "p50", "p99",
      "direct p50", "direct p99", "added p50", "added p99"))
for n in ns:
    for what, l, d in (("Prosody", plat.get(n), pdlat.get(n)), ("quickfed", plats.get(n), qdlat.get(n))):
        if l is None:
            if what == "quickfed" and n in pskip:
                print("%-7d %-10s %9s   not run: Prosody's full-speed 200 B msg/s was %s" %
                      (n, what, pskip[n][1], pskip[n][2]))
            continue
        a = added(l, d)
        print("%-7d %-10s %9s %9.1f %9.1f %10s %10s %11s %11s" % (n, what, l[1], float(l[3]),
              float(l[4]), d[3] if d else "-", d[4] if d else "-",
              "%.1f" % a[0] if a else "-", "%.1f" % a[1] if a else "-"))
both = [n for n in ns if n in qup]
if not both:
    print()
    print("no pair count measured with both quickfed and Prosody: no ratios")
    sys.exit(0)
def r(x, y):
    if x is None or y is None or x <= 0 or y <= 0:
        return "-"
    v = x / y
    return "%.3f" % v if v < 0.1 else "%.2f" % v
def cpu(c, n, size, i):
    x = c.get((n, size))
    return float(x[i]) if x else None
def kib(rss, n, i):
    if n == 1 or 1 not in rss or n not in rss:
        return None
    return (rss[n][i] - rss[1][i]) / (n - 1)
print()
print("quickfed / Prosody (quickfed's figure divided by Prosody's, same pair count; below 1:")
print("quickfed uses less CPU / memory or adds less latency; msg/s above 1: quickfed carries more):")
print("%-7s %7s %7s %7s %7s %8s %8s %7s %7s %8s %8s %8s %8s" % ("pairs", "200B A", "200B B",
      "2KiB A", "2KiB B", "KiB/p A", "KiB/p B", "msg/s", "2K m/s", "+p50 h", "+p99 h", "+p50 s", "+p99 s"))
for n in both:
    qa, pa = added(qlat.get(n), qdlat.get(n)), added(plat.get(n), pdlat.get(n))
    sa = added(plats.get(n), qdlat.get(n))
    row = [r(cpu(qcpu, n, 200, 4), cpu(pcpu, n, 200, 4)), r(cpu(qcpu, n, 200, 5), cpu(pcpu, n, 200, 5)),
           r(cpu(qcpu, n, 2048, 4), cpu(pcpu, n, 2048, 4)), r(cpu(qcpu, n, 2048, 5), cpu(pcpu, n, 2048, 5)),
           r(kib(qrss, n, 0), kib(prss, n, 0)), r(kib(qrss, n, 1), kib(prss, n, 1)),
           r(cpu(qcpu, n, 200, 6), cpu(pcpu, n, 200, 6)), r(cpu(qcpu, n, 2048, 6), cpu(pcpu, n, 2048, 6)),
           r(qa[0] if qa else None, pa[0] if pa else None), r(qa[1] if qa else None, pa[1] if pa else None),
           r(qa[0] if qa else None, sa[0] if sa else None), r(qa[1] if qa else None, sa[1] if sa else None)]
    print("%-7d %7s %7s %7s %7s %8s %8s %7s %7s %8s %8s %8s %8s" % tuple([n] + row))
print()
print("200B/2KiB A, B: CPU us per stanza of quickfed A / Prosody A, quickfed B / Prosody B.")
print("KiB/p: RSS growth per pair from the 1-pair stage (quickfed: per link; Prosody: per s2s")
print("link plus one component stream). msg/s, 2K m/s: full-speed rates at 200 B and 2 KiB.")
print("+p50/+p99 h: added latency, each at half its own 200 B msg/s; s: at the same rate")
print("(quickfed's), '-' where Prosody could not carry it. '-' also where a figure is <= 0.")
EOF
}

PKI_LINK=""
synth_cleanup() {
	local rc=$?
	set +e			# (exit 1) below must not end the trap under set -e
	[ -n "$PKI_LINK" ] && rm -f "$PKI_LINK"
	(exit "$rc")		# cleanup reads the exit status from $?
	cleanup
}

synth_main() {
	check_synth_env
	exec 7>&1 8>&2
	trap synth_cleanup EXIT
	trap 'exit 1' INT TERM
	TMP=$(mktemp -d /tmp/qfsynth.XXXXXX)
	local start=$SECONDS rates="" n r
	LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
	raise_nofile
	log "fd limit raised to $NOFILE (ulimit -n, soft = hard) for up to $MAXN links per quickfed"
	build_synthsrv
	make_namespace
	make_synth_pki
	PKI_LINK=/tmp/qfs$$
	ln -sfn "$TMP/pki" "$PKI_LINK" || die "cannot make $PKI_LINK"
	start_synth_dns
	start_synth_quickfed a
	start_synth_quickfed b
	write_phase_hook
	log "proxied: synthsrv A -> quickfed A ==TLS==> quickfed B -> synthsrv B, stages: $STAGES"
	# SYNTH_LAT_RATE: every stage's latency at that rate instead of half its 200 B msg/s
	for n in $STAGES; do
		[ -n "${SYNTH_LAT_RATE:-}" ] && rates="$rates --lat-rate $n:$SYNTH_LAT_RATE"
	done
	# shellcheck disable=SC2086
	run_synthsrv "$TMP/proxied.out" "$STAGES" --a-listen "$S_A:5271" --a-peer "$Q_A:5270" \
		--b-listen "$S_B:5271" --b-peer "$Q_B:5270" --pid-a "${QF_PID[a]}" --pid-b "${QF_PID[b]}" \
		--phase-hook "$TMP/phase-hook.sh" $rates
	rates=""
	stop_pids "${QF_PID[a]}" "${QF_PID[b]}"
	while read -r n r; do
		rates="$rates --lat-rate $n:$r"
	done < <(awk '$1 == "LAT" { print $2, $3 }' "$TMP/proxied.out")
	log "direct: synthsrv A -> synthsrv B at the same rates"
	# shellcheck disable=SC2086
	run_synthsrv "$TMP/direct.out" "$STAGES" --a-listen "$S_A:5281" --a-peer "$S_B:5281" \
		--b-listen "$S_B:5281" --b-peer "$S_A:5281" --no-cpu $rates
	log "floor: synthsrv A -> tcprelay -> tcprelay -> synthsrv B at the same rates"
	# shellcheck disable=SC2086
	floor_run $rates
	if [ "$PR_ON" = 1 ]; then
		synth_prosody_run
	else
		log "Prosody column skipped (SYNTH_PROSODY=0)"
	fi
	{
		synth_report
		if [ "$PR_ON" = 1 ]; then synth_prosody_report; fi
	} | tee "$TMP/synth.txt"
	mkdir -p "$BUILD/bench"
	cp "$TMP/synth.txt" "$BUILD/bench/synth.txt"
	log "done in $((SECONDS - start)) s; report also in $BUILD/bench/synth.txt"
}

synth_main
