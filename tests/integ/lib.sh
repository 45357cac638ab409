# tests/integ/lib.sh - shared harness for the integration tests (namespace, DNS, PKI, sites).
# SPDX-License-Identifier: ISC
#
# Sourced by every tests/integ/NN-*.sh. It gives each test run one private network
# namespace with its own resolver (nsd on 127.0.0.53), a throw-away PKI made with the
# openssl CLI, and functions that start Prosody and quickfed sites inside it. Every
# process started is recorded with track_pid and killed by PID in cleanup; exit codes
# are pass 0, fail 1, skip 77 ("SKIP reason" on stdout).

set -eu

QF_TOP=${QF_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
QF_BUILD=${QF_BUILD:-build/san}
PYTHON=${PYTHON:-python3}
case $QF_BUILD in /*) ;; *) QF_BUILD=$QF_TOP/$QF_BUILD ;; esac
export QF_TOP QF_BUILD
# shellcheck source=tests/integ/prosody-conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/prosody-conf.sh"
# shellcheck source=tests/integ/nsd-conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/nsd-conf.sh"

TEST_NAME=$(basename "$0" .sh)
TMP=""
NS=""
PIDS=""
QF_LOGS=""
RESULT_SKIP=0

log() { printf '%s %s: %s\n' "$(date +%H:%M:%S)" "$TEST_NAME" "$*" >&2; }

skip() {
	echo "SKIP $*"
	RESULT_SKIP=1
	exit 77
}

fail() {
	echo "FAIL $TEST_NAME: $*"
	exit 1
}

pass() {
	echo "PASS $TEST_NAME"
	exit 0
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$TEST_NAME: tool '$c' not found"
	done
}

need_quickfed() {
	[ -x "$QF_BUILD/quickfed" ] || skip "quickfed not built ($QF_BUILD/quickfed missing)"
	[ -x "$QF_BUILD/quickfedctl" ] || skip "quickfed not built ($QF_BUILD/quickfedctl missing)"
}

track_pid() { PIDS="$PIDS $1"; }

# kill_pid PID: TERM, wait up to 3 s, then KILL. Only ever called with PIDs we started.
kill_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop on TERM, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid f
	set +e
	for pid in $PIDS; do
		kill_pid "$pid"
	done
	if [ -n "$NS" ]; then
		# Anything still inside our private namespace was started by this test.
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			log "stray pid $pid in $NS: $(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null)"
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$NS" 2>/dev/null
		rm -rf "/etc/netns/$NS"
	fi
	# A sanitizer report from a quickfed we ran fails an otherwise passing test.
	for f in $QF_LOGS; do
		if [ "$rc" = 0 ] && grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$f"; then
			echo "FAIL $TEST_NAME: sanitizer report in $f"
			rc=1
		fi
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$TMP" ] && [ -d "$TMP" ]; then
		echo "==== $TEST_NAME failed (exit $rc); logs from $TMP ====" >&2
		for f in $(find "$TMP" -name '*.log' | sort); do
			echo "==== $f ====" >&2
			tail -n "${QF_LOG_LINES:-200}" "$f" >&2
		done
	fi
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${QF_KEEP:-0}" = 1 ]; then
			echo "kept $TMP" >&2
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_for TRIES CMD...: run CMD every 0.2 s until it succeeds, at most TRIES times.
wait_for() {
	local tries=$1 i
	shift
	for i in $(seq 1 "$tries"); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# nsx CMD...: run CMD inside the test's namespace.
nsx() { ip netns exec "$NS" "$@"; }

# bg NAME CMD...: start CMD in the namespace in the background, output to $TMP/NAME.log.
bg() {
	local name=$1
	shift
	ip netns exec "$NS" "$@" >"$TMP/$name.log" 2>&1 &
	track_pid $!
	LAST_PID=$!
}

setup_ns() {
	[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
	need ip openssl "$PYTHON"
	TMP=$(mktemp -d "/tmp/qfinteg.$TEST_NAME.XXXXXX")
	local ns="qf$$-${TEST_NAME%%-*}"
	ip netns add "$ns" 2>/dev/null || skip "cannot create network namespace"
	NS=$ns
	ip netns exec "$NS" ip link set lo up || fail "cannot bring lo up in $NS"
	mkdir -p "/etc/netns/$NS"
	echo "nameserver 127.0.0.53" >"/etc/netns/$NS/resolv.conf"
	printf '127.0.0.1 localhost\n' >"/etc/netns/$NS/hosts"
	log "namespace $NS, tmp $TMP"
}

# ---------------------------------------------------------------- DNS

ZONE_RECORDS=""

# dns_rr LINE: add a raw zone file line (names relative to example.).
dns_rr() { ZONE_RECORDS="$ZONE_RECORDS$1
"; }
dns_a() { dns_rr "$1. 300 IN A $2"; }
# dns_srv DOMAIN PORT TARGET [PRIO WEIGHT]: _xmpp-server._tcp SRV record.
dns_srv() { dns_rr "_xmpp-server._tcp.$1. 300 IN SRV ${4:-0} ${5:-0} $2 $3."; }
# dns_xmpp DOMAIN IP [PORT]: SRV to xmpp.DOMAIN plus its A record.
dns_xmpp() {
	dns_srv "$1" "${3:-5269}" "xmpp.$1"
	dns_a "xmpp.$1" "$2"
}

# port_open IP PORT: true when something accepts TCP on IP:PORT in the namespace.
port_open() { nsx bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

dns_ready() { nsx drill @127.0.0.53 example SOA | grep -q 'rcode: NOERROR'; }

start_dns() {
	need nsd drill
	local d=$TMP/dns
	mkdir -p "$d"
	cat >"$d/example.zone" <<EOF
\$ORIGIN example.
\$TTL 300
@ IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60
@ IN NS ns.example.
ns IN A 127.0.0.53
$ZONE_RECORDS
EOF
	{
		nsd_conf_server "$d" "$d" 127.0.0.53 53 "$TMP/nsd.log"
		nsd_conf_zones example. "$d/example.zone"
	} >"$d/nsd.conf"
	nsd-checkzone example. "$d/example.zone" >"$d/checkzone.out" 2>&1 ||
		fail "zone does not load: $(cat "$d/checkzone.out")"
	bg nsd-stdout nsd -d -c "$d/nsd.conf"
	wait_for 50 dns_ready ||
		fail "nsd did not answer on 127.0.0.53"
	log "nsd up"
}

# ---------------------------------------------------------------- PKI

# make_ca: test CA in $TMP/pki/ca.{crt,key}
make_ca() { new_ca ca "quickfed test CA"; }

# new_ca NAME CN: a self-signed CA in $TMP/pki/NAME.{crt,key} with subject CN.
new_ca() {
	local p=$TMP/pki name=$1
	mkdir -p "$p"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$p/$name.key" -out "$p/$name.crt" -days 30 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >"$p/$name.out" 2>&1 ||
		fail "CA $name generation failed: $(cat "$p/$name.out")"
}

# make_cert NAME SAN_DOMAIN: CA-signed leaf in $TMP/pki/NAME.{crt,key}
make_cert() {
	[ -f "$TMP/pki/ca.crt" ] || make_ca
	issue_leaf ca "$1" "$2" "DNS:$2" "$TMP/pki/$1.crt"
}

# issue_leaf CA NAME CN SAN CRTFILE: a new key $TMP/pki/NAME.key and a leaf certificate
# for it (subject CN, subjectAltName SAN, server and client use) signed by
# $TMP/pki/CA.{crt,key}, written to CRTFILE.
issue_leaf() {
	local p=$TMP/pki ca=$1 name=$2 cn=$3 san=$4 crt=$5
	cat >"$p/$name.ext" <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$p/$name.key" -out "$p/$name.csr" -subj "/CN=$cn" >"$p/$name.out" 2>&1 &&
	openssl x509 -req -in "$p/$name.csr" -CA "$p/$ca.crt" -CAkey "$p/$ca.key" \
		-CAcreateserial -days 30 -out "$crt" -extfile "$p/$name.ext" >>"$p/$name.out" 2>&1 ||
		fail "cert $name generation failed: $(cat "$p/$name.out")"
}

# make_selfsigned NAME SAN_DOMAIN: self-signed leaf (not from the CA).
make_selfsigned() {
	local p=$TMP/pki name=$1 dom=$2
	mkdir -p "$p"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$p/$name.key" -out "$p/$name.crt" -days 30 -subj "/CN=$dom" \
		-addext "subjectAltName=DNS:$dom" \
		-addext "extendedKeyUsage=serverAuth,clientAuth" >"$p/$name.out" 2>&1 ||
		fail "self-signed cert $name generation failed: $(cat "$p/$name.out")"
}

# ---------------------------------------------------------------- Prosody

# start_prosody NAME DOMAIN IP [proxied QF_IP QF_PORT | direct] [cert NAME]
#   proxied: s2s on IP:5271 only, mod_quickfed -> QF_IP:QF_PORT, no encryption required.
#   direct:  s2s on IP:5269, federation via DNS, encryption required, trusts the test CA.
#   cert NAME: use $TMP/pki/NAME.{crt,key} (default: NAME).
start_prosody() {
	need prosody prosodyctl
	local name=$1 domain=$2 ip=$3 mode=direct qfip="" qfport="" cert=$1
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		proxied) mode=proxied; qfip=$2; qfport=$3; shift 3 ;;
		direct) mode=direct; shift ;;
		cert) cert=$2; shift 2 ;;
		*) fail "start_prosody: unknown option $1" ;;
		esac
	done
	local d=$TMP/$name p=$TMP/pki s2sport=5269
	[ "$mode" = proxied ] && s2sport=5271
	mkdir -p "$d/data"
	{
		echo "-- generated by tests/integ/lib.sh for $name ($mode)"
		prosody_cfg_global "$d" "$TMP/$name.log" debug "$ip" "$ip" "$s2sport" "$p" \
			"$cert" "$mode" "$qfip" "$qfport"
		prosody_cfg_vhost "$domain" "$p" "$cert"
	} >"$d/prosody.cfg.lua"
	mkdir -p "$d/certs"
	prosody_launch "$name" "$ip" "$s2sport"
	log "prosody $name ($domain, $mode) up on $ip"
}

# prosody_launch NAME IP S2S_PORT: run Prosody NAME on $TMP/NAME/prosody.cfg.lua in the
# namespace and wait until it listens on IP:5222 and IP:S2S_PORT; sets PROSODY_PID_NAME,
# PROSODY_CFG_NAME and PROSODY_IP_NAME.
prosody_launch() {
	local name=$1 ip=$2 s2sport=$3 cfg=$TMP/$1/prosody.cfg.lua
	ip netns exec "$NS" prosody --config "$cfg" -F >"$TMP/$name-stdout.log" 2>&1 &
	track_pid $!
	eval "PROSODY_PID_$name=$!"
	wait_for 75 port_open "$ip" 5222 ||
		fail "prosody $name did not listen on $ip:5222"
	wait_for 25 port_open "$ip" "$s2sport" ||
		fail "prosody $name did not listen on $ip:$s2sport"
	eval "PROSODY_CFG_$name=\$cfg"
	eval "PROSODY_IP_$name=$ip"
}

# register NAME USER DOMAIN PASS: create a c2s account on Prosody NAME.
register() {
	local cfg
	eval "cfg=\$PROSODY_CFG_$1"
	prosodyctl --config "$cfg" register "$2" "$3" "$4" >>"$TMP/$1-prosodyctl.log" 2>&1 ||
		fail "prosodyctl register $2@$3 failed"
}

# ---------------------------------------------------------------- quickfed

# write_quickfed_conf FILE NAME DOMAIN CERT QF_IP PROSODY_IP [EXTRA_TEXT]
write_quickfed_conf() {
	local f=$1 name=$2 domain=$3 cert=$4 qfip=$5 pip=$6 extra=${7:-}
	local d=$TMP/$name-qf p=$TMP/pki
	mkdir -p "$d/state"
	cat >"$f" <<EOF
# generated by tests/integ/lib.sh for $name
log_level debug
state_dir $d/state
status_socket $d/quickfed.sock
ca_file $p/ca.crt

listener internet {
	address $qfip
	port 5269
}

listener local {
	address $qfip
	port 5270
}

local_server {
	address $pip
	port 5271
	tls off
}

domain $domain {
	certificate $p/$cert.crt
	key $p/$cert.key
}

resolver {
	forwarder 127.0.0.53
	timeout 3s
}

timeouts {
	connect 2s
	tls 5s
	auth 5s
	setup 4s
	idle 10m
	shutdown 3s
	retry 0s	# a failed set-up bounces at once (what most tests expect; 57 and 58 retry)
}

policy {
	starttls required
	secure_auth off
	dialback on
	sasl_external on
}
$extra
EOF
}

# start_quickfed NAME CONFFILE: run quickfed in the namespace, wait for its status socket.
start_quickfed() {
	need_quickfed
	local name=$1 conf=$2 sock
	sock=$(awk '$1 == "status_socket" { print $2 }' "$conf")
	[ -n "$sock" ] || fail "no status_socket in $conf"
	eval "QF_SOCK_$name=\$sock"
	ip netns exec "$NS" "$QF_BUILD/quickfed" -c "$conf" >"$TMP/$name.log" 2>&1 &
	track_pid $!
	QF_LOGS="$QF_LOGS $TMP/$name.log"
	eval "QF_PID_$name=$!"
	if ! wait_for 50 nsx "$QF_BUILD/quickfedctl" -s "$sock" help; then
		fail "quickfed $name did not answer on $sock"
	fi
	log "quickfed $name up"
}

# qfctl NAME CMD...: quickfedctl against instance NAME.
qfctl() {
	local sock
	eval "sock=\$QF_SOCK_$1"
	shift
	nsx "$QF_BUILD/quickfedctl" -s "$sock" "$@"
}

# qf_stat NAME KEY: print the value of KEY from `show stats` (0 when absent).
qf_stat() {
	local v
	v=$(qfctl "$1" show stats | awk -F= -v k="$2" '$1 == k { print $2; exit }')
	echo "${v:-0}"
}

# wait_settled NAME: wait (at most a minute) until quickfed NAME is idle: no connection
# went quiet for 3 s (2 s without input, checked every second: s2s/conn.h) and the heap
# was trimmed since the last traffic (core/main.c). conns.quieted, heap.trims and
# heap.trim_due of show stats move for a few seconds after the last stanza.
wait_settled() {
	local q0 q1 i
	for i in $(seq 1 20); do
		q0=$(qf_stat "$1" conns.quieted)
		sleep 3
		q1=$(qf_stat "$1" conns.quieted)
		[ "$q0" = "$q1" ] && [ "$(qf_stat "$1" heap.trim_due)" = 0 ] && return 0
	done
	return 1
}

# stat_ge NAME KEY MIN: true when show stats KEY of quickfed NAME is at least MIN.
stat_ge() {
	[ "$(qf_stat "$1" "$2")" -ge "$3" ] 2>/dev/null
}

# wait_stat_ge NAME KEY MIN SECONDS: wait (polling the status socket) until KEY >= MIN.
wait_stat_ge() {
	wait_for $(($4 * 5)) stat_ge "$1" "$2" "$3"
}

# assert_stat_ge NAME KEY MIN
assert_stat_ge() {
	local v
	v=$(qf_stat "$1" "$2")
	[ "$v" -ge "$3" ] 2>/dev/null || fail "quickfed $1: $2=$v, expected >= $3"
	log "quickfed $1: $2=$v (>= $3) ok"
}

# show_qf NAME: print show peers and show stats of instance NAME (goes to the test log).
show_qf() {
	echo "---- quickfed $1: show peers ----"
	qfctl "$1" show peers || true
	echo "---- quickfed $1: show stats ----"
	qfctl "$1" show stats || true
}

# ---------------------------------------------------------------- sites

# site_proxied NAME DOMAIN QF_IP PROSODY_IP [EXTRA_QF_CONF]: Prosody + quickfed,
# with a CA cert for DOMAIN and DNS for DOMAIN -> QF_IP (call before start_dns).
site_proxied_prepare() {
	make_cert "$1" "$2"
	dns_xmpp "$2" "$3"
}
site_proxied_start() {
	local name=$1 domain=$2 qfip=$3 pip=$4 extra=${5:-}
	write_quickfed_conf "$TMP/$name-qf.conf" "$name" "$domain" "$name" "$qfip" "$pip" "$extra"
	start_quickfed "qf$name" "$TMP/$name-qf.conf"
	start_prosody "$name" "$domain" "$pip" proxied "$qfip" 5270
}

# sites_ab [TWEAK]: the test CA and sites A (Prosody 127.0.1.2 + quickfed 127.0.1.1,
# user alice@a.example pass-a) and B (Prosody 127.0.2.2 + quickfed 127.0.2.1,
# bob@b.example pass-b), both with CA-signed certificates, DNS included. With TWEAK (a
# function) quickfed A's configuration ($TMP/A-qf.conf) is written first and TWEAK is
# called with its path before quickfed A starts (conf_set, conf_in_block).
sites_ab() {
	make_ca
	site_proxied_prepare A a.example 127.0.1.1
	site_proxied_prepare B b.example 127.0.2.1
	start_dns
	if [ -n "${1:-}" ]; then
		write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2
		"$1" "$TMP/A-qf.conf"
		start_quickfed qfA "$TMP/A-qf.conf"
		start_prosody A a.example 127.0.1.2 proxied 127.0.1.1 5270
	else
		site_proxied_start A a.example 127.0.1.1 127.0.1.2
	fi
	site_proxied_start B b.example 127.0.2.1 127.0.2.2
	register A alice a.example pass-a
	register B bob b.example pass-b
}

# warm_ab: alice sends bob "warm" and bob receives it (the A -> B link is up).
warm_ab() {
	client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
		expect-message alice@a.example "warm" --timeout 20
	client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
	client_wait bob0
}

# sites_ac CERT: the test CA, site A as in sites_ab, and a plain Prosody C (c.example on
# 127.0.3.1, s2s 5269, user carol@c.example pass-c) whose certificate is self-signed
# (CERT selfsigned) or CA-signed (CERT ca), DNS included.
sites_ac() {
	make_ca
	site_proxied_prepare A a.example 127.0.1.1
	case $1 in
	selfsigned) make_selfsigned C c.example ;;
	ca) make_cert C c.example ;;
	*) fail "sites_ac: unknown certificate kind $1" ;;
	esac
	dns_xmpp c.example 127.0.3.1
	start_dns
	site_proxied_start A a.example 127.0.1.1 127.0.1.2
	start_prosody C c.example 127.0.3.1 direct
	register A alice a.example pass-a
	register C carol c.example pass-c
}

# site_a_tarpit: the test CA, site A as in sites_ab, and slow.example (127.0.4.1:5269)
# served by tests/integ/tarpit.py, which accepts and never answers.
site_a_tarpit() {
	make_ca
	site_proxied_prepare A a.example 127.0.1.1
	dns_xmpp slow.example 127.0.4.1
	start_dns
	bg tarpit "$PYTHON" "$QF_TOP/tests/integ/tarpit.py" --host 127.0.4.1 --port 5269 --seconds 60
	wait_for 25 port_open 127.0.4.1 5269 || fail "tarpit did not listen"
	site_proxied_start A a.example 127.0.1.1 127.0.1.2
	register A alice a.example pass-a
}

# ---------------------------------------------------------------- links and paths

# qf_out_link QF FIELD: FIELD of quickfed QF's outgoing internet relay link, from show
# peers (e.g. sm, unacked); empty when there is none.
qf_out_link() {
	qfctl "$1" show peers | awk -F'[.=]' -v f="$2" '$3 == "direction" { dir[$2] = $4 }
		$3 == "side" { side[$2] = $4 } $3 == "purpose" { pur[$2] = $4 } $3 == f { v[$2] = $4 }
		END { for (i in dir) if (dir[i] == "out" && side[i] == "internet" &&
			pur[i] == "relay") print v[i] }'
}

# path_drop IP: silently drop every packet to and from IP's port 5269 in the test's
# namespace (nftables table inet qfdrop), until path_open.
path_drop() {
	nsx nft -f - <<EOF || fail "nft rules failed"
table inet qfdrop {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr $1 tcp dport 5269 drop
		ip saddr $1 tcp sport 5269 drop
	}
}
EOF
	log "$1:5269 silently dropped"
}
path_open() { nsx nft delete table inet qfdrop || fail "nft delete failed"; }

# ---------------------------------------------------------------- clients

XMPPC="$QF_TOP/tests/integ/xmppc.py"

# client NAME JID PASS SERVER_IP ACTIONS...: run xmppc in the foreground.
client() {
	local name=$1
	shift
	nsx "$PYTHON" "$XMPPC" --log "$TMP/client-$name.log" "$@"
}

# client_start NAME JID PASS SERVER_IP ACTIONS...: run xmppc in the background; once
# it has logged in, $TMP/client-NAME.ready exists. client_wait NAME collects the result.
client_start() {
	local name=$1
	shift
	ip netns exec "$NS" "$PYTHON" "$XMPPC" --log "$TMP/client-$name.log" \
		--ready "$TMP/client-$name.ready" "$@" >"$TMP/client-$name.out" 2>&1 &
	track_pid $!
	eval "CLIENT_PID_$name=$!"
}

# client_bg NAME JID PASS SERVER_IP ACTIONS...: client_start, then wait until logged in.
client_bg() {
	client_start "$@"
	wait_for 75 test -f "$TMP/client-$1.ready" || {
		cat "$TMP/client-$1.out" >&2
		fail "client $1 did not log in"
	}
}

# client_wait NAME: wait for the background client; fail with its output if it failed.
client_wait() {
	local pid rc=0
	eval "pid=\$CLIENT_PID_$1"
	wait "$pid" || rc=$?
	cat "$TMP/client-$1.out"
	if [ "$rc" != 0 ]; then
		fail "client $1 failed (exit $rc): $(tail -n 1 "$TMP/client-$1.out")"
	fi
	log "client $1 ok"
}

# ---------------------------------------------------------------- DNSSEC zones (issue 4)
# For the 2N-*.sh tests: several zones in one nsd, signed at test time with ldns, and a
# control socket so a test can count the queries the server received.

DNSSEC_ZONES=""
ZONE_TTL=${ZONE_TTL:-300}

# zone_add ZONE MODE: declare ZONE (no trailing dot); MODE is signed, unsigned or
# expired (signed with signatures that expired yesterday).
zone_add() {
	DNSSEC_ZONES="$DNSSEC_ZONES $1:$2"
	: >"$TMP/zone-$1.rr"
}
# zone_rr ZONE LINE: one zone file line (absolute names, with the trailing dot).
zone_rr() { printf '%s\n' "$2" >>"$TMP/zone-$1.rr"; }
# zone_xmpp ZONE DOMAIN IP [PORT]: _xmpp-server SRV for DOMAIN to xmpp.DOMAIN + its A.
zone_xmpp() {
	zone_rr "$1" "_xmpp-server._tcp.$2. $ZONE_TTL IN SRV 0 0 ${4:-5269} xmpp.$2."
	zone_rr "$1" "xmpp.$2. $ZONE_TTL IN A $3"
}
# zone_tamper ZONE OLD NEW: after signing, replace the text OLD by NEW (sed, | as
# delimiter) in the signed zone file: the signature over that RRset no longer matches.
zone_tamper() { printf 's|%s|%s|\n' "$2" "$3" >>"$TMP/zone-$1.sed"; }

# start_dns_zones: write, sign and serve every declared zone on 127.0.0.53; the trust
# anchors (DS of every signed zone) go to $TMP/dns/trust-anchors. nsd-control talks to
# $TMP/dns/nsd.sock (nsd_queries).
start_dns_zones() {
	need nsd nsd-control ldns-keygen ldns-signzone drill
	local d=$TMP/dns spec z mode zf key inc exp
	mkdir -p "$d"
	: >"$d/trust-anchors"
	{
		nsd_conf_server "$d" "$d" 127.0.0.53 53 "$TMP/nsd.log"
		cat <<EOF2
	statistics: 0
remote-control:
	control-enable: yes
	control-interface: "$d/nsd.sock"
EOF2
	} >"$d/nsd.conf"
	for spec in $DNSSEC_ZONES; do
		z=${spec%%:*}
		mode=${spec#*:}
		zf=$d/$z.zone
		{
			echo "\$ORIGIN $z."
			echo "\$TTL $ZONE_TTL"
			echo "@ IN SOA ns.$z. hostmaster.$z. 1 3600 600 86400 $ZONE_TTL"
			echo "@ IN NS ns.$z."
			echo "ns IN A 127.0.0.53"
			cat "$TMP/zone-$z.rr"
		} >"$zf"
		if [ "$mode" != unsigned ]; then
			key=$(cd "$d" && ldns-keygen -a ECDSAP256SHA256 -k "$z.") ||
				fail "ldns-keygen for $z failed"
			cat "$d/$key.ds" >>"$d/trust-anchors"
			if [ "$mode" = expired ]; then
				inc=$(date -u -d '-10 days' +%Y%m%d%H%M%S)
				exp=$(date -u -d '-1 day' +%Y%m%d%H%M%S)
				ldns-signzone -i "$inc" -e "$exp" -f "$zf.signed" "$zf" "$d/$key" \
					>"$d/$z.sign.out" 2>&1 || fail "signing $z failed: $(cat "$d/$z.sign.out")"
			else
				ldns-signzone -f "$zf.signed" "$zf" "$d/$key" >"$d/$z.sign.out" 2>&1 ||
					fail "signing $z failed: $(cat "$d/$z.sign.out")"
			fi
			if [ -f "$TMP/zone-$z.sed" ]; then
				sed -i -f "$TMP/zone-$z.sed" "$zf.signed"
			fi
			zf=$zf.signed
		fi
		nsd-checkzone "$z." "$zf" >"$d/$z.check.out" 2>&1 ||
			fail "zone $z does not load: $(cat "$d/$z.check.out")"
		printf 'zone:\n\tname: "%s."\n\tzonefile: "%s"\n' "$z" "$zf" >>"$d/nsd.conf"
	done
	bg nsd-stdout nsd -d -c "$d/nsd.conf"
	NSD_PID=$LAST_PID
	z=${DNSSEC_ZONES# }
	z=${z%%:*}
	wait_for 50 dns_zone_ready "$z" || fail "nsd did not answer on 127.0.0.53"
	log "nsd up (zones:$DNSSEC_ZONES)"
}

dns_zone_ready() { nsx drill @127.0.0.53 "$1" SOA | grep -q 'rcode: NOERROR'; }

# nsd_queries: the number of queries nsd received so far (counted at the server).
nsd_queries() {
	local v
	v=$(nsd-control -c "$TMP/dns/nsd.conf" stats_noreset 2>/dev/null |
		awk -F= '$1 == "num.queries" { print $2; exit }')
	[ -n "$v" ] || fail "nsd-control stats_noreset gave no num.queries"
	echo "$v"
}

# stop_dns: stop the nsd started by start_dns_zones (by PID).
stop_dns() {
	kill_pid "$NSD_PID"
	log "nsd stopped"
}

# conf_in_block FILE BLOCK LINE: add LINE right after the line "BLOCK {" of FILE.
conf_in_block() {
	local f=$1 b=$2 l=$3
	grep -q "^$b {\$" "$f" || fail "conf_in_block: no '$b {' in $f"
	sed -i "/^$b {\$/a\\
	$l" "$f"
}

# conf_set FILE KEY VALUE: replace the value of the (tab-indented) KEY line in FILE.
conf_set() { sed -i "s|^\t$2 .*|\t$2 $3|" "$1"; }

# site_dnssec_prepare NAME DOMAIN QF_IP ZONE: CA cert for DOMAIN and its SRV in ZONE.
site_dnssec_prepare() {
	make_cert "$1" "$2"
	zone_xmpp "$4" "$2" "$3"
}
# site_dnssec_write NAME DOMAIN QF_IP PROSODY_IP: quickfed config that validates with the
# zones' trust anchors (in $TMP/NAME-qf.conf); adjust it with conf_in_block / conf_set.
site_dnssec_write() {
	write_quickfed_conf "$TMP/$1-qf.conf" "$1" "$2" "$1" "$3" "$4"
	conf_in_block "$TMP/$1-qf.conf" resolver "dnssec on"
	conf_in_block "$TMP/$1-qf.conf" resolver "trust_anchor_file $TMP/dns/trust-anchors"
}
# site_dnssec_start NAME DOMAIN QF_IP PROSODY_IP: start quickfed and the proxied Prosody.
site_dnssec_start() {
	start_quickfed "qf$1" "$TMP/$1-qf.conf"
	start_prosody "$1" "$2" "$4" proxied "$3" 5270
}

# make_cert_multi NAME DOMAIN...: CA-signed leaf valid for every DOMAIN.
make_cert_multi() {
	local p=$TMP/pki name=$1 san="" dom
	shift
	[ -f "$p/ca.crt" ] || make_ca
	for dom in "$@"; do
		san="$san${san:+,}DNS:$dom"
	done
	issue_leaf ca "$name" "$1" "$san" "$p/$name.crt"
}

# start_prosody_hosts [--bidi] NAME IP CERT DOMAIN...: a plain (direct) Prosody serving
# several domains on IP (s2s on 5269, encryption required, trusts the test CA), all with
# the certificate $TMP/pki/CERT.{crt,key}; --bidi loads mod_s2s_bidi (XEP-0288, off
# otherwise). register NAME ... works for each domain. Started again under the same NAME
# (after stop_prosody), it keeps its data (accounts) and appends to $TMP/NAME.log.
start_prosody_hosts() {
	need prosody prosodyctl
	local filter=cat
	if [ "$1" = --bidi ]; then
		filter=prosody_cfg_bidi
		shift
	fi
	local name=$1 ip=$2 cert=$3 dom
	shift 3
	local d=$TMP/$name p=$TMP/pki
	mkdir -p "$d/data" "$d/certs"
	{
		echo "-- generated by tests/integ/lib.sh for $name (direct, several hosts)"
		prosody_cfg_global "$d" "$TMP/$name.log" debug "$ip" "$ip" 5269 "$p" "$cert" direct |
			$filter
		for dom in "$@"; do
			prosody_cfg_vhost "$dom" "$p" "$cert"
		done
	} >"$d/prosody.cfg.lua"
	prosody_launch "$name" "$ip" 5269
	log "prosody $name ($*$( [ "$filter" = cat ] || echo ', s2s_bidi')) up on $ip"
}

# start_prosody_proxied NAME IP QF_IP CERT DOMAIN...: a Prosody behind quickfed QF_IP
# (s2s on IP:5271, mod_quickfed -> QF_IP:5270) serving every DOMAIN with the certificate
# $TMP/pki/CERT.{crt,key}. register NAME ... works for each domain.
start_prosody_proxied() {
	need prosody prosodyctl
	local name=$1 ip=$2 qfip=$3 cert=$4 dom d
	shift 4
	d=$TMP/$name
	mkdir -p "$d/data" "$d/certs"
	{
		echo "-- generated by tests/integ/lib.sh for $name (proxied, several hosts)"
		prosody_cfg_global "$d" "$TMP/$name.log" debug "$ip" "$ip" 5271 "$TMP/pki" \
			"$cert" proxied "$qfip" 5270
		for dom in "$@"; do prosody_cfg_vhost "$dom" "$TMP/pki" "$cert"; done
	} >"$d/prosody.cfg.lua"
	prosody_launch "$name" "$ip" 5271
	log "prosody $name ($*, proxied) up on $ip"
}

# domain_block DOMAIN CERT: a domain { } block for write_quickfed_conf's extra text.
domain_block() {
	printf 'domain %s {\n\tcertificate %s\n\tkey %s\n}\n' "$1" "$TMP/pki/$2.crt" "$TMP/pki/$2.key"
}

# qf_route NAME DIR LOCAL REMOTE FIELD: FIELD of quickfed NAME's route (show routes).
qf_route() {
	qfctl "$1" show routes | awk -F= -v k="route.$2.$3.$4.$5" '$1 == k { print $2 }'
}

# log_in_conns LOG: connections a quickfed accepted on its internet side (its log).
log_in_conns() { grep -c 's2s-in accepted from' "$1" || true; }

# log_verify_conns LOG: of those, the ones that carried a <db:verify/> (dialback
# verification by the peer).
log_verify_conns() {
	local id n=0
	for id in $(sed -n 's/.* conn=\([0-9]*\) s2s-in accepted from .*/\1/p' "$1"); do
		if grep -q " conn=$id answered db:verify " "$1"; then n=$((n + 1)); fi
	done
	echo "$n"
}

# ready_out NAME: internet connections quickfed NAME set up so far (its log, all runs).
ready_out() {
	cat "$TMP/$1"*.log 2>/dev/null | grep -c 's2s-out local=.* ready auth=' || true
}

# exchange TAG FROM_SITE_IP TO_SITE_IP FROM_USERS TO_USERS: every FROM user (password
# "pass") writes "TAG-user" to every TO user; one receiving client per (receiver,
# sender), so no expectation consumes another's message. Fails unless all arrive.
exchange() {
	local tag=$1 fip=$2 tip=$3 from=$4 to=$5 f t n=0 names=""
	for t in $to; do
		for f in $from; do
			n=$((n + 1))
			client_bg "r$tag$n" --resource "r$tag$n" "$t" pass "$tip" expect-message "$f" "$tag-${f%%@*}" --timeout 20
			names="$names r$tag$n"
		done
	done
	for f in $from; do
		local args=()
		for t in $to; do args+=(send "$t" "$tag-${f%%@*}"); done
		client "s$tag-${f%%@*}" --resource "s$tag" "$f" pass "$fip" "${args[@]}" || fail "$f could not send"
	done
	for n in $names; do client_wait "$n"; done
}

# restart_quickfed NAME: stop quickfed NAME by PID (graceful, TERM) and start it again
# on the same configuration; its log continues in $TMP/NAME-2.log.
restart_quickfed() {
	local name=$1 pid conf
	eval "pid=\$QF_PID_$name"
	conf=$(tr '\0' '\n' </proc/"$pid"/cmdline | tail -n 1)
	kill_pid "$pid"
	mv "$TMP/$name.log" "$TMP/$name-1.log"
	QF_LOGS="$QF_LOGS $TMP/$name-1.log"
	start_quickfed "$name" "$conf"
}

# ---------------------------------------------------------------- DANE (issue 5)
# For the 3N-*.sh tests: a second, untrusted CA, certificates chained to it, and the
# TLSA association data of a certificate.

# make_ca_other NAME: a CA quickfed does not trust, in $TMP/pki/NAME.{crt,key}.
make_ca_other() { new_ca "$1" "quickfed other CA $1"; }

# make_cert_chain CA NAME DOMAIN: leaf for DOMAIN signed by $TMP/pki/CA, written as
# $TMP/pki/NAME.crt holding the leaf followed by the CA certificate (a chain a server
# presents whole, as DANE-TA needs), and NAME.key.
make_cert_chain() {
	local p=$TMP/pki ca=$1 name=$2 dom=$3
	issue_leaf "$ca" "$name" "$dom" "DNS:$dom" "$p/$name.leaf.crt"
	cat "$p/$name.leaf.crt" "$p/$ca.crt" >"$p/$name.crt"
}

# tlsa_spki_sha256 CERTFILE: hex SHA-256 of the (first) certificate's public key
# (TLSA selector 1, matching type 1).
tlsa_spki_sha256() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -r | cut -d' ' -f1
}

# tlsa_cert_sha256 CERTFILE: hex SHA-256 of the (first) certificate (selector 0, type 1).
tlsa_cert_sha256() {
	openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1
}

# zone_tlsa ZONE HOST USAGE SELECTOR MTYPE HEX [PORT]: TLSA at _PORT._tcp.HOST.
zone_tlsa() {
	zone_rr "$1" "_${7:-5269}._tcp.$2. $ZONE_TTL IN TLSA $3 $4 $5 $6"
}

# tls_val NAME KEY: a value from "show tls" of quickfed NAME (0 when absent).
tls_val() {
	local v
	v=$(qfctl "$1" show tls | awk -F= -v k="$2" '$1 == k { print $2; exit }')
	echo "${v:-0}"
}

# peer_field NAME DIRECTION FIELD: FIELD (from "show peers") of quickfed NAME's first
# internet peer in DIRECTION (in|out) that has it, or nothing.
peer_field() {
	qfctl "$1" show peers | awk -F'[.=]' -v d="$2" -v f="$3" '
		$3 == "direction" && $4 == d { dir[$2] = 1 }
		$3 == "side" && $4 == "internet" { inet[$2] = 1 }
		$3 == f { val[$2] = $4 }
		END { for (id in dir) if (inet[id] && (id in val)) { print val[id]; exit } }'
}

# assert_tls NAME KEY OP VALUE: a "show tls" value compared with test(1)'s OP (-ge, -eq)
assert_tls() {
	local v
	v=$(tls_val "$1" "$2")
	[ "$v" "$3" "$4" ] 2>/dev/null || {
		qfctl "$1" show tls >&2 || true
		fail "quickfed $1: $2=$v, expected $3 $4"
	}
	log "quickfed $1: $2=$v ($3 $4) ok"
}
