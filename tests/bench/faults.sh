#!/bin/bash
# tests/bench/faults.sh - `make faults`: numbered messages through faults, delivered / duplicated / bounced / lost.
# SPDX-License-Identifier: ISC
#
# Run by `make faults` as `tests/bench/faults.sh BUILD_DIR` (root). It sources
# tests/bench/run.sh for the network (two namespaces joined by delaylink, BENCH_RTT_MS),
# nsd, the PKI, the process handling and Prosody start-up, and replaces start_quickfed
# (short liveness timeouts, state kept across a restart). Per scenario and system, all
# servers start from scratch; usera@a.example (tests/integ/xmppc.py, c2s on Prosody A)
# sends FAULTS_N numbered messages to userb@b.example at FAULTS_RATE per second
# (send-paced) and collects the bounces (collect-until); userb's client collects the
# deliveries (collect-until; a new client logs in when Prosody B was restarted, the
# offline store gives it what came meanwhile). Once a third of the messages arrived the
# fault is made, and healed after its duration. The run ends when every number is
# delivered or bounced, or FAULTS_QUIET seconds after the heal with nothing new, or
# FAULTS_MAX seconds after the heal. Systems: qf (Prosody A -> quickfed A <=> quickfed
# B -> Prosody B), pr (Prosody A <-> Prosody B direct) and sm (the same with mod_smacks
# loaded, as Debian's default prosody.cfg.lua has it; SASL EXTERNAL between the two, so
# their s2s streams enable XEP-0198).
#
# Faults (one function fault_X each; the nftables rules live in table inet qffault of a
# namespace and are deleted at the heal; FAULTS_* times in seconds):
#   none       nothing
#   kill-qfb   kill -9 of quickfed B, down FAULTS_DOWN, restarted (same state_dir)
#   kill-prb   kill -9 of Prosody B, down FAULTS_DOWN, restarted, userb logs in again
#   term-qfa   SIGTERM of quickfed A (waited for), down FAULTS_DOWN, restarted
#   drop-short every packet from or to port 5269 on the delay link dropped in both
#              namespaces for FAULTS_DROP_SHORT (below quickfed's dead deadline)
#   drop-long  the same for FAULTS_DROP_LONG (above it)
#   blackhole  everything A sends to B's port 5269 dropped for FAULTS_HOLE
#   refuse     B answers every packet to its port 5269 with a TCP reset for
#              FAULTS_REFUSE; SYNs from A to B:5269 are counted (attempts per minute)
#
# Environment: FAULTS_N (300), FAULTS_RATE (100 messages/s), FAULTS_SCENARIOS (all of
# the above), FAULTS_SYSTEMS ("qf pr sm"), FAULTS_KEEPALIVE (1s) and FAULTS_DEAD (3s)
# (quickfed's timeouts { keepalive; dead }), FAULTS_RETRY (90s), FAULTS_DOWN (2),
# FAULTS_DROP_SHORT (1), FAULTS_DROP_LONG (6), FAULTS_HOLE (30), FAULTS_REFUSE (30),
# FAULTS_QUIET (35), FAULTS_MAX (150), BENCH_RTT_MS (50), BENCH_KEEP=1.

set -eu

# shellcheck source=tests/bench/run.sh
. "$(dirname "${BASH_SOURCE[0]}")/run.sh"

FN=${FAULTS_N:-300}
RATE=${FAULTS_RATE:-100}
SCENARIOS=${FAULTS_SCENARIOS:-none kill-qfb kill-prb term-qfa drop-short drop-long blackhole refuse}
SYSTEMS=${FAULTS_SYSTEMS:-qf pr sm}
KEEPALIVE=${FAULTS_KEEPALIVE:-1s}
DEAD=${FAULTS_DEAD:-3s}
RETRY=${FAULTS_RETRY:-90s}
DOWN=${FAULTS_DOWN:-2}
DROP_SHORT=${FAULTS_DROP_SHORT:-1}
DROP_LONG=${FAULTS_DROP_LONG:-6}
HOLE=${FAULTS_HOLE:-30}
REFUSE=${FAULTS_REFUSE:-30}
QUIET=${FAULTS_QUIET:-35}
MAXWAIT=${FAULTS_MAX:-150}
NS_A="qff$$-a"
NS_B="qff$$-b"
GAP_MS=$(awk -v r="$RATE" 'BEGIN { printf "%.3f", 1000 / r }')

declare -A FAULT_LABEL=(
	[none]="none"
	[kill-qfb]="kill -9 quickfed B, restart"
	[kill-prb]="kill -9 Prosody B, restart"
	[term-qfa]="SIGTERM quickfed A, restart"
	[drop-short]="link dropped ${DROP_SHORT} s (< dead ${DEAD})"
	[drop-long]="link dropped ${DROP_LONG} s (> dead ${DEAD})"
	[blackhole]="B blackholed ${HOLE} s"
	[refuse]="B refusing ${REFUSE} s (TCP reset)"
)

RUN=""				# tag of the running scenario/system
NRECV=0				# receiver clients started in this run
RECV_PID=""
SEND_PID=""
ATTEMPTS=-			# SYNs A -> B:5269 per minute during the refuse fault

# ---------------------------------------------------------------- processes

# forget_pid PID: a process that is gone (killed and waited for) leaves PIDS and
# SITE_PIDS, so that cleanup never signals a reused number.
forget_pid() {
	PIDS=$(echo " $PIDS " | sed "s/ $1 / /g")
	SITE_PIDS=$(echo " $SITE_PIDS " | sed "s/ $1 / /g")
}

# kill_wait SIG PID: send SIG and wait for the process to end (bounded: 10 s, then KILL).
kill_wait() {
	local sig=$1 pid=$2
	{
		kill "-$sig" "$pid" || true
		wait_for 100 bash -c "! kill -0 $pid" || {
			log "pid $pid did not end on $sig, sending KILL"
			kill -KILL "$pid" || true
		}
		wait "$pid" || true
	} 2>/dev/null	# not bash's "Killed" job notice
	forget_pid "$pid"
}

# ---------------------------------------------------------------- sites

# start_quickfed SITE KEEP: as run.sh's (pipelining off), with short liveness timeouts;
# KEEP=1 keeps the state_dir (a restart), 0 empties it.
start_quickfed() {
	local d=$TMP/qf-$1
	[ "$2" = 0 ] && rm -rf "$d/state"
	mkdir -p "$d/state"
	qf_conf "$1" off "$1.example" "	retry $RETRY
	keepalive $KEEPALIVE
	dead $DEAD" "	stream_management on" >"$d/quickfed.conf"
	qf_launch "$1"
}

# sites_up SYSTEM: both sites from scratch; Prosody B's offline store emptied (numbers
# left there by an earlier run would be counted again).
sites_up() {
	rm -rf "$TMP"/prosody-b/data/*/offline "$TMP"/prosody-a/data/*/offline
	if [ "$1" = qf ]; then
		start_quickfed a 0
		start_quickfed b 0
		start_prosody a proxied
		start_prosody b proxied
	else
		start_prosody a "$(prosody_mode)"
		start_prosody b "$(prosody_mode)"
	fi
}

prosody_mode() {
	case $SYS in
	qf) echo proxied ;;
	sm) echo smacks ;;
	*) echo direct ;;
	esac
}

# ---------------------------------------------------------------- clients

# recv_start: one more receiver client (userb, collect-until the stop file).
recv_start() {
	NRECV=$((NRECV + 1))
	local out=$TMP/$RUN-recv-$NRECV.out
	rm -f "$TMP/$RUN-recv.ready"
	nsb python3 "$TOP/tests/integ/xmppc.py" --ready "$TMP/$RUN-recv.ready" --resource r$NRECV \
		--login-timeout 20 userb@b.example "$PASS" "$P_B" \
		collect-until "$TMP/$RUN-stop" --timeout 900 >"$out" 2>&1 7>&- 8>&- &
	RECV_PID=$!
	track $!
	wait_for 250 test -f "$TMP/$RUN-recv.ready" || die "receiver $NRECV did not log in: $(tail -n 1 "$out")"
}

send_start() {
	nsa python3 "$TOP/tests/integ/xmppc.py" --ready "$TMP/$RUN-send.ready" --resource s \
		usera@a.example "$PASS" "$P_A" send-paced userb@b.example "$FN" "$GAP_MS" \
		collect-until "$TMP/$RUN-stop" --timeout 900 >"$TMP/$RUN-send.out" 2>&1 7>&- 8>&- &
	SEND_PID=$!
	track $!
}

# delivered / accounted: distinct numbers delivered (all receivers), delivered or bounced.
delivered() {
	cat "$TMP/$RUN"-recv-*.out 2>/dev/null | awk '$1 == "delivered" { print $2 }' | sort -un | wc -l
}
accounted() {
	cat "$TMP/$RUN"-recv-*.out "$TMP/$RUN-send.out" 2>/dev/null |
		awk '$1 == "delivered" || $1 == "bounced" { print $2 }' | sort -un | wc -l
}
lines() { cat "$TMP/$RUN"-recv-*.out "$TMP/$RUN-send.out" 2>/dev/null | wc -l; }
third_in() { [ "$(delivered)" -ge $((FN / 3)) ]; }
sent_all() { grep -q '^sent ' "$TMP/$RUN-send.out"; }

# ---------------------------------------------------------------- faults

# nft_fault NS RULES...: table inet qffault in NS with one chain per hook given as
# "in RULE" or "out RULE".
nft_fault() {
	local ns=$1 r hook body_in="" body_out=""
	shift
	for r in "$@"; do
		hook=${r%% *}
		if [ "$hook" = in ]; then body_in="$body_in	${r#in }"$'\n'; else body_out="$body_out	${r#out }"$'\n'; fi
	done
	ip netns exec "$ns" nft -f - <<EOF || die "nft: cannot install the fault in $ns"
table inet qffault {
	chain in {
		type filter hook input priority -10; policy accept;
$body_in	}
	chain out {
		type filter hook output priority -10; policy accept;
$body_out	}
}
EOF
}

heal_nft() {
	local ns
	for ns in "$NS_A" "$NS_B"; do
		ip netns exec "$ns" nft delete table inet qffault 2>/dev/null || true
	done
}

# syn_count: SYNs (no ACK) A has sent to B's port 5269 (table inet qffcount in A).
syn_count() {
	ip netns exec "$NS_A" nft list counter inet qffcount syn_ab | awk '$1 == "packets" { print $2; exit }'
}

counter_setup() {
	ip netns exec "$NS_A" nft -f - <<EOF || die "nft: cannot create the SYN counter"
table inet qffcount {
	counter syn_ab { }
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "qfdl*" ip daddr $NET_B tcp dport 5269 tcp flags & (syn | ack) == syn counter name "syn_ab"
	}
}
EOF
}

# restart_prosody_b: after kill-prb, Prosody B again and a new receiver (the old
# client's connection died with it).
restart_prosody_b() {
	start_prosody b "$(prosody_mode)"
	if ! kill -0 "$RECV_PID" 2>/dev/null; then
		wait "$RECV_PID" 2>/dev/null || true
		forget_pid "$RECV_PID"
		recv_start
	fi
}

fault_none() { :; }
fault_kill-qfb() {
	kill_wait KILL "${QF_PID[b]}"
	sleep "$DOWN"
	start_quickfed b 1
}
fault_kill-prb() {
	kill_wait KILL "${PR_PID[b]}"
	sleep "$DOWN"
	restart_prosody_b
}
fault_term-qfa() {
	kill_wait TERM "${QF_PID[a]}"
	sleep "$DOWN"
	start_quickfed a 1
}
link_drop() {
	local ns
	for ns in "$NS_A" "$NS_B"; do
		nft_fault "$ns" 'out oifname "qfdl*" tcp dport 5269 drop' 'out oifname "qfdl*" tcp sport 5269 drop' \
			'in iifname "qfdl*" tcp dport 5269 drop' 'in iifname "qfdl*" tcp sport 5269 drop'
	done
	sleep "$1"
	heal_nft
}
fault_drop-short() { link_drop "$DROP_SHORT"; }
fault_drop-long() { link_drop "$DROP_LONG"; }
fault_blackhole() {
	nft_fault "$NS_A" "out oifname \"qfdl*\" ip daddr $NET_B tcp dport 5269 drop"
	sleep "$HOLE"
	heal_nft
}
fault_refuse() {
	local c0 c1
	c0=$(syn_count)
	nft_fault "$NS_B" 'in iifname "qfdl*" tcp dport 5269 reject with tcp reset'
	sleep "$REFUSE"
	c1=$(syn_count)
	heal_nft
	ATTEMPTS=$(awk -v n="$((c1 - c0))" -v t="$REFUSE" 'BEGIN { printf "%.1f", n * 60 / t }')
	log "    $((c1 - c0)) connection attempt(s) A -> B:5269 in $REFUSE s = $ATTEMPTS per minute"
}

applies() {
	case $1/$2 in
	pr/kill-qfb | pr/term-qfa | sm/kill-qfb | sm/term-qfa) return 1 ;;
	esac
	return 0
}

# ---------------------------------------------------------------- one run

# fault_run SYS SCEN: sites up, clients, fault at a third, wait, count, sites down.
# Appends "SCEN SYS D U B L BOTH ATTEMPTS SECONDS CONDITION:COUNT,..." to $TMP/faults.
fault_run() {
	SYS=$1
	local sc=$2 t0=$SECONDS theal last n0 n1 d u b l both pid conds
	RUN=$sc-$SYS NRECV=0 ATTEMPTS=-
	log "  ${FAULT_LABEL[$sc]}: $(case $SYS in qf) echo quickfed ;; sm) echo Prosody direct + mod_smacks ;; *) echo Prosody direct ;; esac)"
	heal_nft
	sites_up "$SYS"
	recv_start
	send_start
	wait_for 250 test -f "$TMP/$RUN-send.ready" || die "sender did not log in: $(tail -n 1 "$TMP/$RUN-send.out")"
	if ! wait_for $((FN * 10 / RATE + 300)) third_in; then
		log "    only $(delivered) of $FN arrived before the fault (expected $((FN / 3)))"
	fi
	[ "$sc" = none ] || log "    fault after $(delivered) delivered"
	"fault_$sc"
	theal=$SECONDS
	[ "$sc" = none ] || log "    healed; $(accounted) accounted for"
	# Wait: all accounted, or QUIET s after the heal without a new line, or MAXWAIT.
	n0=$(lines) last=$SECONDS
	while :; do
		[ "$(accounted)" -ge "$FN" ] && break
		n1=$(lines)
		if [ "$n1" != "$n0" ]; then n0=$n1 last=$SECONDS; fi
		if sent_all && [ $((SECONDS - last)) -ge "$QUIET" ] && [ $((SECONDS - theal)) -ge "$QUIET" ]; then
			break
		fi
		[ $((SECONDS - theal)) -ge "$MAXWAIT" ] && break
		sleep 0.2
	done
	sent_all || log "    the sender did not finish: $(tail -n 1 "$TMP/$RUN-send.out")"
	: >"$TMP/$RUN-stop"
	for pid in $RECV_PID $SEND_PID; do
		wait_for 50 bash -c "! kill -0 $pid" || kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		forget_pid "$pid"
	done
	sites_down
	# D distinct delivered; U further copies (within and across receivers); B bounced and
	# never delivered; L = N - D - B; BOTH delivered and bounced.
	read -r d u b l both <<<"$(cat "$TMP/$RUN"-recv-*.out "$TMP/$RUN-send.out" | awk -v n="$FN" '
		$1 == "delivered" { c[$2]++ }
		$1 == "duplicate" { c[$2]++ }
		$1 == "bounced" { bo[$2] = 1 }
		END {
			for (k in c) { d++; u += c[k] - 1; if (k in bo) both++ }
			for (k in bo) if (!(k in c)) b++
			printf "%d %d %d %d %d\n", d, u, b, n - d - b, both
		}')"
	conds=$(awk '$1 == "bounced" { c[$3 == "" ? "?" : $3]++ }
		END { for (k in c) printf "%s%s:%d", (n++ ? "," : ""), k, c[k]; if (!n) printf "-" }' "$TMP/$RUN-send.out")
	echo "$sc $SYS $d $u $b $l $both $ATTEMPTS $((SECONDS - t0)) $conds" >>"$TMP/faults"
	log "    $d delivered, $u duplicated, $b bounced, $l lost ($both both delivered and bounced), $((SECONDS - t0)) s"
}

faults_report() {
	echo
	echo "faults: $FN numbered messages at $RATE/s from usera@a.example (c2s, Prosody A) to userb@b.example"
	echo "(c2s, Prosody B), fault once a third arrived; emulated RTT $RTT ms (measured $RTT_MEASURED ms);"
	echo "quickfed timeouts { keepalive $KEEPALIVE; dead $DEAD; retry $RETRY }, stream_management on"
	echo "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	for sc in $SCENARIOS; do printf '%s\t%s\n' "$sc" "${FAULT_LABEL[$sc]}"; done >"$TMP/labels"
	python3 - "$TMP/faults" "$TMP/labels" "$SYSTEMS" "$QUIET" "$MAXWAIT" <<'EOF'
import sys
rows = {}
for ln in open(sys.argv[1]):
    p = ln.split()
    rows[(p[0], p[1])] = p
order = [ln.rstrip("\n").split("\t", 1) for ln in open(sys.argv[2])]
systems = sys.argv[3].split()
names = {"qf": "quickfed", "pr": "Prosody direct", "sm": "Prosody direct + mod_smacks"}
def cell(sc, sy):
    r = rows.get((sc, sy))
    if r is None:
        return "(no quickfed)" if sy in ("pr", "sm") and sc in ("kill-qfb", "term-qfa") else "-"
    return "%s delivered, %s duplicated, %s bounced, %s lost" % tuple(r[2:6])
print()
print(("%-34s" % "scenario" + "".join("  %-48s" % names[s] for s in systems)).rstrip())
for sc, label in order:
    print(("%-34s" % label + "".join("  %-48s" % cell(sc, s) for s in systems)).rstrip())
att = [(names[s], rows[("refuse", s)][7]) for s in systems if ("refuse", s) in rows]
if att:
    print()
    print("refusing: connection attempts A -> B:5269 per minute during the fault: " +
          ", ".join("%s %s" % a for a in att))
both = ["%s/%s %s" % (r[0], r[1], r[6]) for r in rows.values() if r[6] != "0"]
if both:
    print()
    print("delivered and also bounced (counted as delivered above): " + ", ".join(both))
conds = ["%s/%s %s" % (r[0], r[1], r[9]) for r in rows.values() if r[9] != "-"]
if conds:
    print("error conditions of all bounces: " + ", ".join(conds))
print()
print("delivered: distinct numbers userb received (all its clients); duplicated: further copies;")
print("bounced: numbers usera got an error for and userb never received; lost: neither (silently).")
print("A run ends when every number is delivered or bounced, else %s s after the heal with nothing" % sys.argv[4])
print("new, or %s s after it. Seconds per run:" % sys.argv[5], ", ".join(
    "%s/%s %s" % (r[0], r[1], r[8]) for r in rows.values()))
EOF
}

faults_main() {
	check_env
	command -v nft >/dev/null 2>&1 || die "tool 'nft' not found (make deps: nftables)"
	exec 7>&1 8>&2		# cleanup's stdout/stderr; daemons get them closed (7>&- 8>&-)
	trap cleanup EXIT
	trap 'exit 1' INT TERM
	TMP=$(mktemp -d /tmp/qffaults.XXXXXX)
	local start=$SECONDS sc sy
	for sc in $SCENARIOS; do
		[ -n "${FAULT_LABEL[$sc]:-}" ] || die "unknown scenario '$sc'"
	done
	build_delaylink
	probe_quickfed
	make_namespaces
	RTT_MEASURED=$(measure_rtt)
	log "measured RTT (TCP SYN/RST): $RTT_MEASURED ms"
	make_pki
	start_dns
	register_users
	counter_setup
	: >"$TMP/faults"
	for sc in $SCENARIOS; do
		log "scenario ${FAULT_LABEL[$sc]}"
		for sy in $SYSTEMS; do
			applies "$sy" "$sc" && fault_run "$sy" "$sc"
		done
	done
	faults_report | tee "$TMP/faults-report.txt"
	mkdir -p "$BUILD/bench"
	cp "$TMP/faults-report.txt" "$BUILD/bench/faults.txt"
	log "done in $((SECONDS - start)) s; report also in $BUILD/bench/faults.txt"
}

faults_main
