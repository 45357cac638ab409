# tests/integ/lib-ejabberd.sh - run Debian's ejabberd (23.01) as a test peer, sourced after lib.sh.
# SPDX-License-Identifier: ISC
#
# Used by tests/integ/45-ejabberd.sh, 47 (ejabberd as remote peer) and 49 (start_ejabberd_proxied
# and start_ej_dns: ejabberd as the local server behind quickfed). ejabberd runs
# as root straight from erl (not through ejabberdctl, which would su to the ejabberd user
# and lose our PID) with its config, spool, log and Erlang cookie under $TMP/NAME-ej, a
# private epmd in the test namespace, both tracked by PID; ejabberd_ctl runs ejabberdctl
# commands (register, stop, ...) through the same ejabberd_ctl module ejabberdctl uses.
# shellcheck shell=bash disable=SC2034

EJ_LIBDIR=${EJ_LIBDIR:-/usr/lib/x86_64-linux-gnu}

# need_ejabberd: SKIP (77) unless ejabberd and Erlang are installed.
need_ejabberd() {
	if ! command -v erl >/dev/null 2>&1 || ! command -v epmd >/dev/null 2>&1 ||
	    ! ls -d "$EJ_LIBDIR"/ejabberd-*/ebin >/dev/null 2>&1; then
		skip "$TEST_NAME: ejabberd not installed (apt-get install ejabberd)"
	fi
}

# ej_env NAME: the environment ejabberdctl would give the Erlang VM of instance NAME.
ej_env() {
	local d=$TMP/$1-ej
	echo "HOME=$d" "ERL_LIBS=$EJ_LIBDIR" "ERL_INETRC=$d/inetrc" \
		"EJABBERD_CONFIG_PATH=$d/ejabberd.yml" "EJABBERD_LOG_PATH=$d/ejabberd.log" \
		"CONTRIB_MODULES_CONF_DIR=$d/modules.d" "ERL_CRASH_DUMP=$d/erl_crash.dump" \
		"ERL_CRASH_DUMP_BYTES=0" "ERL_EPMD_ADDRESS=127.0.0.1"
}

# ejabberd_ctl NAME ARGS...: an ejabberdctl command against instance NAME (output on stdout).
ejabberd_ctl() {
	local name=$1 cookie node
	shift
	eval "cookie=\$EJ_COOKIE_$name; node=\$EJ_NODE_$name"
	# shellcheck disable=SC2046
	nsx env $(ej_env "$name") erl -sname "ctl$$-$RANDOM@localhost" -setcookie "$cookie" \
		-start_epmd false -hidden -noinput -s ejabberd_ctl -extra "$node" "$@"
}

ej_started() { ejabberd_ctl "$1" status | grep -q 'is started'; }

# start_ejabberd NAME DOMAIN IP [CERT [HOST...]]: ejabberd serving DOMAIN (and every
# extra HOST), c2s on IP:5222 (STARTTLS required, PLAIN allowed) and s2s on IP:5269
# (STARTTLS required, SASL EXTERNAL with certificates from the test CA, dialback),
# certificate $TMP/pki/CERT.{crt,key} (default NAME; it must cover every host). Logs
# at debug level to $TMP/NAME-ej/ejabberd.log.
start_ejabberd() {
	local name=$1 domain=$2 ip=$3 cert=${4:-$1}
	shift $(($# < 4 ? $# : 4))
	ej_write "$name" "$domain" "$ip" "$cert" 5269 required "" "" "$@"
	ej_launch "$name" "$ip" 5269
	log "ejabberd $name ($domain${*:+ $*}) up on $ip (pid $EJ_LAST_PID)"
}

# start_ejabberd_proxied NAME DOMAIN IP DNS_IP DNS_PORT [CERT]: ejabberd as the LOCAL
# server behind quickfed (the README's "ejabberd recipe"): s2s on IP:5271 without TLS
# (s2s_use_starttls: false; dialback only), and its Erlang resolver (inet_res, which
# makes the SRV lookups of outgoing s2s) asks only DNS_IP:DNS_PORT (start_ej_dns),
# while host names are looked up with the system's resolver (lookup file, native).
# c2s as in start_ejabberd.
start_ejabberd_proxied() {
	local name=$1 domain=$2 ip=$3 dnsip=$4 dnsport=$5 cert=${6:-$1}
	ej_write "$name" "$domain" "$ip" "$cert" 5271 false "$dnsip" "$dnsport"
	ej_launch "$name" "$ip" 5271
	log "ejabberd $name ($domain, proxied) up on $ip, SRV lookups at $dnsip:$dnsport (pid $EJ_LAST_PID)"
}

# start_ej_dns NAME IP DNS_PORT TARGET PORT: a second nsd on IP:DNS_PORT serving the
# root zone with one wildcard record, "* SRV 0 0 PORT TARGET.": every
# _xmpp-server._tcp.DOMAIN points at TARGET:PORT (quickfed's local listener). TARGET
# must resolve through the system's resolver (add it to the hosts file). Only
# ejabberd's inet_res asks this server.
start_ej_dns() {
	need nsd drill
	local name=$1 ip=$2 dnsport=$3 target=$4 port=$5 d=$TMP/$1-dns
	mkdir -p "$d"
	cat >"$d/root.zone" <<EOF
\$ORIGIN .
\$TTL 300
@ IN SOA ns. hostmaster.invalid. 1 3600 600 86400 60
@ IN NS ns.
ns IN A $ip
* IN SRV 0 0 $port $target.
EOF
	{
		nsd_conf_server "$d" "$d" "$ip" "$dnsport" "$TMP/$name-nsd.log"
		nsd_conf_zones . "$d/root.zone"
	} >"$d/nsd.conf"
	nsd-checkzone . "$d/root.zone" >"$d/checkzone.out" 2>&1 ||
		fail "root zone does not load: $(cat "$d/checkzone.out")"
	bg "$name-nsd-stdout" nsd -d -c "$d/nsd.conf"
	wait_for 50 ej_dns_ready "$ip" "$dnsport" || fail "nsd $name did not answer on $ip:$dnsport"
	log "nsd $name up on $ip:$dnsport: every _xmpp-server SRV -> $target:$port"
}

ej_dns_ready() { nsx drill -p "$2" @"$1" _xmpp-server._tcp.probe.invalid SRV | grep -q 'rcode: NOERROR'; }

# ej_write NAME DOMAIN IP CERT S2S_PORT STARTTLS DNS_IP DNS_PORT [HOST...]: the config,
# inetrc and certificate of instance NAME under $TMP/NAME-ej (STARTTLS:
# s2s_use_starttls; DNS_IP empty: the namespace's resolv.conf for everything). $EJ_EXTRA_YML, if set, is
# appended to ejabberd.yml (top-level options).
ej_write() {
	local name=$1 domain=$2 ip=$3 cert=$4 s2sport=$5 starttls=$6 dnsip=$7 dnsport=$8 host
	local d=$TMP/$1-ej p=$TMP/pki
	shift 8
	mkdir -p "$d/spool" "$d/modules.d"
	cat "$p/$cert.crt" "$p/$cert.key" >"$d/$cert.pem"
	chmod 600 "$d/$cert.pem"
	if [ -n "$dnsip" ]; then
		cat >"$d/inetrc" <<EOF
{lookup, ["file", "native"]}.
{host, {127,0,0,1}, ["localhost"]}.
{resolv_conf, ""}.
{nameserver, {${dnsip//./,}}, $dnsport}.
EOF
	else
		cat >"$d/inetrc" <<EOF
{lookup,["file","dns"]}.
{host,{127,0,0,1}, ["localhost"]}.
{file, resolv, "/etc/resolv.conf"}.
EOF
	fi
	cat >"$d/ejabberd.yml" <<EOF
# generated by tests/integ/lib-ejabberd.sh for $name
loglevel: debug
log_rotate_count: 0
hosts:
  - $domain
$(for host in "$@"; do echo "  - $host"; done)
certfiles:
  - "$d/$cert.pem"
ca_file: "$p/ca.crt"
listen:
  -
    port: 5222
    ip: "$ip"
    module: ejabberd_c2s
    starttls_required: true
  -
    port: $s2sport
    ip: "$ip"
    module: ejabberd_s2s_in
s2s_use_starttls: $starttls
s2s_access: all
auth_method: internal
auth_password_format: plain
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  c2s:
    allow: all
  local:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_s2s_dialback: {}
${EJ_EXTRA_YML:-}
EOF
}

# ej_launch NAME IP S2S_PORT: start epmd and the VM of instance NAME (written by
# ej_write) and wait until it listens and says it is started; sets EJ_LAST_PID.
ej_launch() {
	need_ejabberd
	local name=$1 ip=$2 s2sport=$3 d=$TMP/$1-ej cookie pid
	cookie="qfej$$$RANDOM$RANDOM"
	eval "EJ_COOKIE_$name=\$cookie"
	eval "EJ_NODE_$name=ejabberd-$name@localhost"
	# epmd first, in the foreground (no -daemon) so that its PID is ours.
	ip netns exec "$NS" env ERL_EPMD_ADDRESS=127.0.0.1 epmd >"$TMP/$name-epmd.log" 2>&1 &
	track_pid $!
	eval "EJ_EPMD_PID_$name=$!"
	wait_for 50 port_open 127.0.0.1 4369 || fail "epmd for $name did not listen"
	# erl execs erlexec, which execs beam.smp: $! is the VM's PID. It goes first in
	# PIDS so that cleanup stops it before its epmd.
	# shellcheck disable=SC2046
	ip netns exec "$NS" env $(ej_env "$name") erl -sname "ejabberd-$name@localhost" \
		-setcookie "$cookie" -start_epmd false +K true -noinput \
		-mnesia dir "\"$d/spool\"" -s ejabberd >"$TMP/$name-ej-stdout.log" 2>&1 &
	pid=$!
	PIDS="$pid $PIDS"
	eval "EJ_PID_$name=$pid"
	EJ_LAST_PID=$pid
	wait_for 150 port_open "$ip" "$s2sport" || fail "ejabberd $name did not listen on $ip:$s2sport"
	wait_for 50 port_open "$ip" 5222 || fail "ejabberd $name did not listen on $ip:5222"
	wait_for 10 ej_started "$name" || fail "ejabberd $name: ejabberdctl status never said started"
}

# ejabberd_register NAME USER DOMAIN PASS: create a c2s account on ejabberd NAME.
ejabberd_register() {
	ejabberd_ctl "$1" register "$2" "$3" "$4" >>"$TMP/$1-ejabberdctl.log" 2>&1 ||
		fail "ejabberdctl register $2@$3 failed: $(tail -n 3 "$TMP/$1-ejabberdctl.log")"
}

# stop_ejabberd NAME: `ejabberdctl stop`, wait (bounded) for the VM to exit, then stop it
# and its epmd by PID.
stop_ejabberd() {
	local name=$1 pid epmd i
	eval "pid=\${EJ_PID_$name:-}; epmd=\${EJ_EPMD_PID_$name:-}"
	[ -n "$pid" ] || fail "stop_ejabberd: no PID recorded for $name"
	ejabberd_ctl "$name" stop >>"$TMP/$name-ejabberdctl.log" 2>&1 || true
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill_pid "$pid"
	[ -z "$epmd" ] || kill_pid "$epmd"
	log "ejabberd $name (pid $pid) and its epmd (pid $epmd) stopped"
}
