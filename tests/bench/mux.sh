#!/bin/bash
# tests/bench/mux.sh - `make bench-mux`: connections opened for 3 x 3 domains over the emulated path.
# SPDX-License-Identifier: ISC
#
# Run by `make bench-mux` (and last in `make bench`) as `tests/bench/mux.sh
# BUILD_DIR`. It sources tests/bench/run.sh for the network (two namespaces joined by
# delaylink, BENCH_RTT_MS), the process handling and Prosody/quickfed start-up, and
# replaces the per-site pieces so that each site serves three domains: site A a.example,
# conference.a.example, upload.a.example (all three Prosody VirtualHosts, no components),
# site B the same under b.example, each with its own SRV record pointing at its site.
# One user u@DOMAIN per domain (tests/bench/muxclient.py): every A user sends one message
# to every B user and every B user answers each one (18 directed domain pairs). Counted
# per scenario with nftables counters in each namespace (output hook, so every packet
# is seen once): TCP SYNs without ACK leaving over the delay link's TUN device (internet
# connections opened, per direction) and over lo to port 5270 or 5271 (the loopback legs
# between Prosody and quickfed; c2s on 5222 is not counted).
# Each site also serves a fourth domain, new.a.example / new.b.example (VirtualHost,
# quickfed domain block, SRV record, in the site certificate), that the exchange never
# uses. After the exchange, on the links it left up, u@new.a.example writes one message
# to u@b.example, a pair not seen yet on the same remote server: the time from its send
# to its arrival (ms and measured RTTs) and the connections opened meanwhile are reported
# in a second table, "new pair on a warm link"; the 18-pair counts are read before it.
#
# Environment: MUX_SCENARIOS (default "c b d d2 b2"), MUX_N (runs per scenario, default 3),
# MUX_MODE (echo: B's users answer each message on receipt, the default; both: B's users
# send their 9 messages at the same moment as A's), MUX_PROSODY_LOG (info), BENCH_RTT_MS
# (50), BENCH_KEEP=1 keeps the temporary directory.
#
# Scenarios (one function scen_X_up each, all sites started from scratch per run):
#   c   Prosody <-> Prosody direct
#   b   Prosody -> quickfed <=> quickfed -> Prosody (pipelining off, as run.sh's (b))
#   d   Prosody -> quickfed <=> plain Prosody B
#   d2  as d with mod_s2s_bidi loaded on Prosody B
#   b2  as b with mod_s2s_bidi loaded on both Prosodys (the local servers)
#   bp  as b with pipelining on (quickfed's default): a new pair's stanza follows its
#       piggybacked db:result without waiting for the verdict

set -eu

# shellcheck source=tests/bench/run.sh
. "$(dirname "${BASH_SOURCE[0]}")/run.sh"

SCENARIOS=${MUX_SCENARIOS:-c b d d2 b2 bp}
N=${MUX_N:-3}
MODE=${MUX_MODE:-echo}		# echo: B answers each message; both: B's users send at the same time
NS_A="qfm$$-a"
NS_B="qfm$$-b"
DOMS_a="a.example conference.a.example upload.a.example"
DOMS_b="b.example conference.b.example upload.b.example"
NEW_a=new.a.example		# each site's fourth domain, only for the new-pair measurement
NEW_b=new.b.example
NEW_TO=u@${DOMS_b%% *}		# whom u@$NEW_a writes to: a remote domain the links already serve
BIDI_SITES=""			# sites whose Prosody loads mod_s2s_bidi (d2: "b", b2: "a b")
MUX_PIPE=off			# quickfed's policy { pipelining } (bp: on)

declare -A MUX_LABEL=(
	[c]="(c) prosody-prosody direct"
	[b]="(b) quickfed-quickfed"
	[d]="(d) quickfed-prosody"
	[d2]="(d2) quickfed-prosody, s2s_bidi on B"
	[b2]="(b2) quickfed-quickfed, s2s_bidi A+B"
	[bp]="(bp) quickfed-quickfed, pipelining"
)

# doms SITE: the three domains of the exchange; alldoms SITE: those and the fourth.
doms() { if [ "$1" = a ]; then echo "$DOMS_a"; else echo "$DOMS_b"; fi; }
alldoms() { if [ "$1" = a ]; then echo "$DOMS_a $NEW_a"; else echo "$DOMS_b $NEW_b"; fi; }

# ---------------------------------------------------------------- sites (replacing run.sh's)

# make_pki: the CA and one certificate per site valid for its four domains.
make_pki() {
	local p=$TMP/pki n d san
	mkdir -p "$p"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$p/ca.key" -out "$p/ca.crt" -days 2 -subj "/CN=quickfed bench CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >"$p/openssl.log" 2>&1 ||
		die "CA generation failed"
	for n in a b; do
		san=""
		for d in $(alldoms $n); do san="$san${san:+,}DNS:$d"; done
		printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyAgreement" \
			"extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=$san" >"$p/$n.ext"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$p/$n.key" -out "$p/$n.csr" -subj "/CN=$n.example" >>"$p/openssl.log" 2>&1 ||
			die "key for site $n failed"
		openssl x509 -req -in "$p/$n.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" \
			-CAcreateserial -days 2 -out "$p/$n.crt" -extfile "$p/$n.ext" \
			>>"$p/openssl.log" 2>&1 || die "certificate for site $n failed"
	done
}

DNS_READY_NAME=_xmpp-server._tcp.upload.b.example	# run.sh's dns_ready asks this

# zone_records: what run.sh's start_dns puts in the zone here: an SRV record for each
# of the eight domains, to its site's address.
zone_records() {
	local dom
	echo "xmpp.a IN A $NET_A"
	echo "xmpp.b IN A $NET_B"
	for dom in $(alldoms a); do echo "_xmpp-server._tcp.$dom. IN SRV 0 0 5269 xmpp.a.example."; done
	for dom in $(alldoms b); do echo "_xmpp-server._tcp.$dom. IN SRV 0 0 5269 xmpp.b.example."; done
}

# prosody_conf SITE MODE: run.sh's global part, one VirtualHost per domain of the site;
# a site listed in BIDI_SITES loads mod_s2s_bidi (prosody-conf.sh disables it by default).
prosody_conf() {
	local s=$1 mode=$2 pip qip netip s2sif s2sport=5269 dom
	local f=$TMP/prosody-$s-$mode.cfg.lua
	if [ "$s" = a ]; then pip=$P_A qip=$Q_A netip=$NET_A; else pip=$P_B qip=$Q_B netip=$NET_B; fi
	s2sif=$netip
	if [ "$mode" = proxied ]; then
		s2sif=$pip s2sport=5271
	fi
	mkdir -p "$TMP/prosody-$s/data" "$TMP/prosody-$s/certs"
	{
		echo "-- generated by tests/bench/mux.sh: site $s ($mode)"
		prosody_cfg_global "$TMP/prosody-$s" "$TMP/prosody-$s-$mode.log" "${MUX_PROSODY_LOG:-info}" "$pip" \
			"$s2sif" "$s2sport" "$TMP/pki" "$s" "$mode" "$qip" 5270 |
			if [[ " $BIDI_SITES " = *" $s "* ]]; then
				prosody_cfg_bidi
			else
				cat
			fi
		for dom in $(alldoms "$s"); do
			prosody_cfg_vhost "$dom" "$TMP/pki" "$s"
		done
	} >"$f"
	echo "$f"
}

register_users() {
	local s f dom
	for s in a b; do
		f=$(prosody_conf "$s" direct)
		for dom in $(alldoms $s); do
			prosodyctl --config "$f" register u "$dom" "$PASS" \
				>>"$TMP/prosodyctl.log" 2>&1 || die "cannot register u@$dom"
		done
	done
}

# start_quickfed SITE: as run.sh's with one domain block per domain (pipelining off, on in bp).
start_quickfed() {
	local d=$TMP/qf-$1
	rm -rf "$d/state"
	mkdir -p "$d/state"
	qf_conf "$1" "$MUX_PIPE" "$(alldoms "$1")" >"$d/quickfed.conf"
	qf_launch "$1"
}

scen_c_up() { start_prosody a direct; start_prosody b direct; }
scen_b_up() {
	start_quickfed a; start_quickfed b
	start_prosody a proxied; start_prosody b proxied
}
scen_d_up() { start_quickfed a; start_prosody a proxied; start_prosody b direct; }
scen_d2_up() { BIDI_SITES="b"; scen_d_up; BIDI_SITES=""; }
scen_b2_up() { BIDI_SITES="a b"; scen_b_up; BIDI_SITES=""; }
scen_bp_up() { MUX_PIPE=on; scen_b_up; MUX_PIPE=off; }

# ---------------------------------------------------------------- counting

# counters_reset: (re)create table inet qfmux in both namespaces with zeroed counters.
# Hook output sees each locally sent packet once (a loopback packet is not counted again
# on input); a SYN without ACK is one connection attempt.
counters_reset() {
	local ns
	for ns in "$NS_A" "$NS_B"; do
		ip netns exec "$ns" nft delete table inet qfmux 2>/dev/null || true
		ip netns exec "$ns" nft -f - <<'EOF' || die "nft: cannot create the counters in $ns"
table inet qfmux {
	counter inet_syn { }
	counter lo_5270 { }
	counter lo_5271 { }
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "qfdl*" tcp flags & (syn | ack) == syn counter name "inet_syn"
		oifname "lo" tcp dport 5270 tcp flags & (syn | ack) == syn counter name "lo_5270"
		oifname "lo" tcp dport 5271 tcp flags & (syn | ack) == syn counter name "lo_5271"
	}
}
EOF
	done
	RT0_A=$(syn_retrans "$NS_A")
	RT0_B=$(syn_retrans "$NS_B")
}

# counter NS NAME: packets counted so far.
counter() {
	ip netns exec "$1" nft list counter inet qfmux "$2" |
		awk '$1 == "packets" { print $2; exit }'
}

# syn_retrans NS: TCP SYN retransmissions in NS since it was made (nstat -as: absolute
# values of the namespace's counters; the shared history file is neither read nor written).
syn_retrans() {
	local v
	v=$(ip netns exec "$1" nstat -asz TcpExtTCPSynRetrans 2>/dev/null | awk '$1 == "TcpExtTCPSynRetrans" { print $2 }')
	echo "${v:-0}"
}

# ---------------------------------------------------------------- one run

# counters_sum: "INTERNET_A INTERNET_B LOOPBACK_A LOOPBACK_B", the SYNs counted so far
# in each namespace (internet: leaving it; loopback: to 5270 or 5271).
counters_sum() {
	echo "$(counter "$NS_A" inet_syn) $(counter "$NS_B" inet_syn)" \
		"$(($(counter "$NS_A" lo_5270) + $(counter "$NS_A" lo_5271)))" \
		"$(($(counter "$NS_B" lo_5270) + $(counter "$NS_B" lo_5271)))"
}

# newpair_run SCEN I: on the links the exchange left up, u@$NEW_a writes one message to
# $NEW_TO (local domain new, remote server already linked). u@b.example logs in again
# (its exchange client has left), both sessions idle for GAP (3*RTT+100 ms, as run.sh's
# warm samples), then the message is sent. Appends "SCEN I MS INTERNET_A INTERNET_B
# LOOPBACK_A LOOPBACK_B" to $TMP/newpair: send to arrival (-1 if it did not arrive) and
# the SYNs counted between the send and the arrival (as counters_sum).
newpair_run() {
	local sc=$1 i=$2 tag=new-$1-$2 out ia0 ib0 la0 lb0 ia1 ib1 la1 lb1 spid rpid rc=0 ms
	out=$TMP/mux-$tag.txt
	rm -f "$TMP/go-$tag" "$TMP/ready-$tag-a" "$TMP/ready-$tag-b"
	: >"$out"
	ip netns exec "$NS_B" python3 "$TOP/tests/bench/muxclient.py" "$NEW_TO" "$PASS" "$P_B" \
		--out "$out" --ready "$TMP/ready-$tag-b" --count 1 \
		--timeout 30 >"$TMP/client-$tag-b.log" 2>&1 7>&- 8>&- &
	rpid=$!
	track $!
	ip netns exec "$NS_A" python3 "$TOP/tests/bench/muxclient.py" "u@$NEW_a" "$PASS" "$P_A" \
		--out "$out" --ready "$TMP/ready-$tag-a" --count 0 --send-to "$NEW_TO" \
		--go "$TMP/go-$tag" --timeout 30 >"$TMP/client-$tag-a.log" 2>&1 7>&- 8>&- &
	spid=$!
	track $!
	wait_for 150 test -f "$TMP/ready-$tag-b" ||
		die "user $NEW_TO did not log in: $(tail -n 1 "$TMP/client-$tag-b.log")"
	wait_for 150 test -f "$TMP/ready-$tag-a" ||
		die "user u@$NEW_a did not log in: $(tail -n 1 "$TMP/client-$tag-a.log")"
	sleep "$GAP"
	read -r ia0 ib0 la0 lb0 <<<"$(counters_sum)"
	: >"$TMP/go-$tag"
	wait "$spid" || rc=1
	wait "$rpid" || rc=1
	read -r ia1 ib1 la1 lb1 <<<"$(counters_sum)"
	[ "$rc" = 0 ] || log "    run $i: new pair not delivered: $(cat "$TMP"/client-"$tag"-*.log | grep FAIL | head -n 2 | tr '\n' ' ')"
	ms=$(awk -v f="${NEW_a}" -v t="${NEW_TO#*@}" '
		$2 == f && $3 == t && $1 == "SENT" { s = $4 }
		$2 == f && $3 == t && $1 == "RECV" { r = $4 }
		END { if (s != "" && r != "") printf "%.1f", (r - s) / 1e6; else print -1 }' "$out")
	echo "$sc $i $ms $((ia1 - ia0)) $((ib1 - ib0)) $((la1 - la0)) $((lb1 - lb0))" | tee -a "$TMP/newpair" |
		awk -v rtt="$RTT_MEASURED" '{ printf "    run %s: new pair %.1f ms (%.2f RTT), internet %d (A->B %d, B->A %d), loopback %d (A %d, B %d)\n",
			$2, $3, $3 / rtt, $4 + $5, $4, $5, $6 + $7, $6, $7 }' >&2
}

# mux_run SCEN I: start the sites, log the six users in, A's users each send to the three
# B users, B's users answer each message; wait for all 18 (bounded), count, then the new
# pair on the links left up (newpair_run), stop.
mux_run() {
	local sc=$1 i=$2 tag=$1-$2 s dom peers peers_a pids="" pid rc=0 out ok
	"scen_${sc}_up"
	out=$TMP/mux-$tag.txt
	rm -f "$out" "$TMP/go-$tag"
	: >"$out"
	counters_reset
	peers=""
	for dom in $DOMS_b; do peers="$peers${peers:+,}u@$dom"; done
	peers_a=""
	for dom in $DOMS_a; do peers_a="$peers_a${peers_a:+,}u@$dom"; done
	for s in b a; do
		for dom in $(doms $s); do
			if [ "$s" = a ]; then
				ip netns exec "$NS_A" python3 "$TOP/tests/bench/muxclient.py" "u@$dom" "$PASS" "$P_A" \
					--out "$out" --ready "$TMP/ready-$tag-$dom" --count 3 --send-to "$peers" \
					--go "$TMP/go-$tag" --timeout 30 >"$TMP/client-$tag-$dom.log" 2>&1 7>&- 8>&- &
			elif [ "$MODE" = both ]; then
				ip netns exec "$NS_B" python3 "$TOP/tests/bench/muxclient.py" "u@$dom" "$PASS" "$P_B" \
					--out "$out" --ready "$TMP/ready-$tag-$dom" --count 3 --send-to "$peers_a" \
					--go "$TMP/go-$tag" --timeout 30 >"$TMP/client-$tag-$dom.log" 2>&1 7>&- 8>&- &
			else
				ip netns exec "$NS_B" python3 "$TOP/tests/bench/muxclient.py" "u@$dom" "$PASS" "$P_B" \
					--out "$out" --ready "$TMP/ready-$tag-$dom" --count 3 --echo \
					--timeout 30 >"$TMP/client-$tag-$dom.log" 2>&1 7>&- 8>&- &
			fi
			track $!
			pids="$pids $!"
		done
	done
	for dom in $DOMS_a $DOMS_b; do
		wait_for 150 test -f "$TMP/ready-$tag-$dom" ||
			die "user u@$dom did not log in: $(tail -n 1 "$TMP/client-$tag-$dom.log")"
	done
	: >"$TMP/go-$tag"
	for pid in $pids; do
		wait "$pid" || rc=1
	done
	ok=$(awk '$1 == "RECV" { p[$2 " " $3] = 1 } END { print length(p) }' "$out")
	if [ "$rc" != 0 ]; then
		log "    run $i: not all delivered: $(cat "$TMP"/client-"$tag"-*.log | grep FAIL | head -n 3 | tr '\n' ' ')"
	fi
	# "SCEN I internet_a internet_b loopback_a loopback_b pairs ms synretrans
	#  to5270_a to5271_a to5270_b to5271_b"
	local a0 a1 b0 b1
	a0=$(counter "$NS_A" lo_5270) a1=$(counter "$NS_A" lo_5271)
	b0=$(counter "$NS_B" lo_5270) b1=$(counter "$NS_B" lo_5271)
	awk -v sc="$sc" -v i="$i" -v ia="$(counter "$NS_A" inet_syn)" -v ib="$(counter "$NS_B" inet_syn)" \
		-v la="$((a0 + a1))" -v lb="$((b0 + b1))" -v ok="$ok" -v ports="$a0 $a1 $b0 $b1" \
		-v rt="$(($(syn_retrans "$NS_A") - RT0_A + $(syn_retrans "$NS_B") - RT0_B))" '
		$1 == "SENT" && (t0 == "" || $4 < t0) { t0 = $4 }
		$1 == "RECV" && $4 > t1 { t1 = $4 }
		END { printf "%s %s %d %d %d %d %d %.1f %d %s\n", sc, i, ia, ib, la, lb, ok,
			(ok == 18 ? (t1 - t0) / 1e6 : -1), rt, ports }' "$out" | tee -a "$TMP/mux" |
		awk '{ printf "    run %s: internet %d (A->B %d, B->A %d), loopback %d (A %d, B %d), %d/18 pairs, %.1f ms\n",
			$2, $3 + $4, $3, $4, $5 + $6, $5, $6, $7, $8 }' >&2
	newpair_run "$sc" "$i"
	sites_down
}

mux_report() {
	echo
	echo "multiplexing: 3 x 3 domains, 18 directed pairs, emulated RTT $RTT ms (measured $RTT_MEASURED ms), $N runs per scenario$( [ "$MODE" = both ] && echo ", both directions sent at once")"
	echo "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	python3 - "$TMP/mux" "$SCENARIOS" "$MODE" "$TMP/newpair" "$RTT_MEASURED" "u@$NEW_a" "$NEW_TO" "$GAP" <<'EOF'
import statistics, sys
labels = {"c": "(c) prosody-prosody direct", "b": "(b) quickfed-quickfed",
          "d": "(d) quickfed-prosody", "d2": "(d2) quickfed-prosody, s2s_bidi on B",
          "b2": "(b2) quickfed-quickfed, s2s_bidi A+B",
          "bp": "(bp) quickfed-quickfed, pipelining"}
rows = {}
for ln in open(sys.argv[1]):
    p = ln.split()
    rows.setdefault(p[0], []).append([int(x) for x in p[2:7]] + [float(p[7]), int(p[8])] +
                                     [int(x) for x in p[9:13]])
def span(v):
    v = sorted(v)
    return "%d" % v[0] if v[0] == v[-1] else "%d-%d" % (v[0], v[-1])
print()
print("%-38s %15s %15s %14s %18s" % ("scenario", "internet conns", "loopback conns",
      "all delivered", "time to last (ms)"))
for sc in sys.argv[2].split():
    r = rows.get(sc)
    if not r:
        continue
    inet = span([x[0] + x[1] for x in r])
    loop = span([x[2] + x[3] for x in r])
    good = [x[5] for x in r if x[4] == 18]
    t = "%.0f" % statistics.median(good) if good else "-"
    print("%-38s %15s %15s %14s %18s" % (labels.get(sc, sc), inet, loop,
          "%d/%d runs" % (len(good), len(r)), t))
print()
print("per direction (median over the runs):")
for sc in sys.argv[2].split():
    r = rows.get(sc)
    if not r:
        continue
    m = [statistics.median([x[k] for x in r]) for k in range(4)]
    q = [statistics.median([x[k] for x in r]) for k in range(7, 11)]
    rt = sum(x[6] for x in r)
    print("  %-4s internet A->B %g, B->A %g; loopback in A %g (to 5270 %g, to 5271 %g), in B %g (%g, %g)%s" %
          (sc, m[0], m[1], m[2], q[0], q[1], m[3], q[2], q[3],
           "; %d SYN retransmissions (counted above)" % rt if rt else ""))
print("internet conns: TCP SYNs (no ACK) sent on the delay link's TUN device, both namespaces")
print("(nftables output-hook counter); loopback conns: the same on lo to port 5270 (quickfed's")
print("local listener) or 5271 (Prosody's s2s port behind quickfed, including quickfed's")
print("dialback verify connections to Prosody); c2s is not counted.")
print("A range is min-max over the runs. time to last: from the first A user's send to the")
print("arrival of the 18th directed pair's message (%s)." %
      ("B's users send theirs at the same moment" if sys.argv[3] == "both" else
       "B answers each A message on receipt"))
rtt, frm, to = float(sys.argv[5]), sys.argv[6], sys.argv[7]
npr = {}
try:
    for ln in open(sys.argv[4]):
        p = ln.split()
        ia, ib, la, lb = (int(x) for x in p[3:7])
        npr.setdefault(p[0], []).append((float(p[2]), ia + ib, la + lb, ia, ib, la, lb))
except FileNotFoundError:
    pass
if npr:
    print()
    print("new pair on a warm link: after the exchange, %s -> %s (a new pair)" % (frm, to))
    print("%-38s %9s %13s %6s %15s %15s %10s" % ("scenario", "median ms", "min-max ms", "RTTs",
          "internet conns", "loopback conns", "delivered"))
    for sc in sys.argv[2].split():
        r = npr.get(sc)
        if not r:
            continue
        good = sorted(x[0] for x in r if x[0] >= 0)
        if good:
            m = statistics.median(good)
            ms, mm, rt = "%.1f" % m, "%.0f-%.0f" % (good[0], good[-1]), "%.2f" % (m / rtt)
        else:
            ms = mm = rt = "-"
        print("%-38s %9s %13s %6s %15s %15s %10s" % (labels.get(sc, sc), ms, mm, rt,
              span([x[1] for x in r]), span([x[2] for x in r]), "%d/%d runs" % (len(good), len(r))))
    print()
    print("new pair, per direction (median over the runs):")
    for sc in sys.argv[2].split():
        if sc in npr:
            m = [statistics.median([x[k] for x in npr[sc]]) for k in range(3, 7)]
            print("  %-4s internet A->B %g, B->A %g; loopback in A %g, in B %g" % (sc, *m))
    print("From the send (c2s write on A) to the arrival (c2s read on B), on the links the exchange")
    print("left up, after %.0f ms idle; RTTs = median / the measured RTT (%.1f ms). Conns: SYNs" %
          (float(sys.argv[8]) * 1000, rtt))
    print("counted as above between that send and the arrival, not included in the table above.")
EOF
}

mux_main() {
	check_env
	command -v nft >/dev/null 2>&1 || die "tool 'nft' not found (make deps: nftables)"
	command -v nstat >/dev/null 2>&1 || die "tool 'nstat' not found (make deps: iproute2)"
	exec 7>&1 8>&2		# cleanup's stdout/stderr; daemons get them closed (7>&- 8>&-)
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	TMP=$(mktemp -d /tmp/qfmux.XXXXXX)
	local start=$SECONDS sc i
	for sc in $SCENARIOS; do
		declare -F "scen_${sc}_up" >/dev/null || die "unknown scenario '$sc'"
	done
	case $MODE in echo | both) ;; *) die "MUX_MODE must be echo or both" ;; esac
	build_delaylink
	probe_quickfed
	make_namespaces
	RTT_MEASURED=$(measure_rtt)
	log "measured RTT (TCP SYN/RST): $RTT_MEASURED ms"
	make_pki
	start_dns
	register_users
	: >"$TMP/mux"
	: >"$TMP/newpair"
	for sc in $SCENARIOS; do
		log "scenario ${MUX_LABEL[$sc]}"
		for i in $(seq 1 "$N"); do
			mux_run "$sc" "$i"
		done
	done
	mux_report | tee "$TMP/mux-report.txt"
	mkdir -p "$BUILD/bench"
	cp "$TMP/mux-report.txt" "$BUILD/bench/mux.txt"
	log "done in $((SECONDS - start)) s; report also in $BUILD/bench/mux.txt"
}

mux_main
