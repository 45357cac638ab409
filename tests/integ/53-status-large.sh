#!/bin/bash
# tests/integ/53-status-large.sh - `show peers` with thousands of peers comes out whole.
# SPDX-License-Identifier: ISC
#
# 4,000 connections to quickfed A's internet listener each open a stream and stay
# (the auth deadline is raised to 2 minutes). `quickfedctl show peers` is then several
# times larger than the 1 MiB a one-shot status answer may take: it must be streamed
# and arrive complete (every connection listed once, no "answer truncated"), twice, and
# quickfed must stay clean under the sanitizers.
. "$(dirname "$0")/lib.sh"

N=4000
need_quickfed
setup_ns
make_ca
make_cert A a.example
# all from one address: lift the per-address limit (19-conn-limits tests it)
write_quickfed_conf "$TMP/A-qf.conf" A a.example A 127.0.1.1 127.0.1.2 \
	"limits {
	connections_per_address $((N + 100))
}"
conf_set "$TMP/A-qf.conf" auth 2m
sed -i 's/^log_level .*/log_level warn/' "$TMP/A-qf.conf"
ulimit -n 8192 || skip "cannot raise the open-files limit to 8192"
start_quickfed qfA "$TMP/A-qf.conf"

cat >"$TMP/hold.py" <<'EOF'
import socket, sys, time
n, ready = int(sys.argv[1]), sys.argv[2]
hdr = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
       "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' "
       "from='b.example' to='a.example'>").encode()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.1.1", 5269), timeout=10)
    s.sendall(hdr)
    socks.append(s)
for s in socks:   # every stream answered: all accepted and open
    got = b""
    while b"</stream:features>" not in got:
        d = s.recv(4096)
        if not d:
            sys.exit("closed early")
        got += d
open(ready, "w").write("%d\n" % n)
time.sleep(600)
EOF
bg hold bash -c "ulimit -n 8192 && exec $PYTHON $TMP/hold.py $N $TMP/hold.ready"
wait_for 600 test -s "$TMP/hold.ready" || fail "the $N connections did not get their features"
log "$N streams open"

for round in 1 2; do
	qfctl qfA show peers >"$TMP/peers-$round.out" || fail "show peers failed (round $round)"
	size=$(stat -c %s "$TMP/peers-$round.out")
	count=$(sed -n 's/^peers=//p' "$TMP/peers-$round.out")
	listed=$(grep -c '^peer\.[0-9]*\.direction=' "$TMP/peers-$round.out")
	unique=$(grep '^peer\.[0-9]*\.direction=' "$TMP/peers-$round.out" | sort -u | wc -l)
	log "round $round: $size bytes, peers=$count, listed=$listed"
	! grep -q 'error' "$TMP/peers-$round.out" || fail "error in the answer: $(grep error "$TMP/peers-$round.out")"
	[ "$size" -gt $((1024 * 1024)) ] || fail "answer only $size bytes: not past the old 1 MiB cap"
	[ "$count" -ge "$N" ] || fail "peers=$count, want >= $N"
	[ "$listed" = "$count" ] || fail "$listed connections listed, peers=$count"
	[ "$unique" = "$listed" ] || fail "a connection was listed twice"
	tail -n 1 "$TMP/peers-$round.out" | grep -q '^peer\.[0-9]*\.stanzas_out=0$' ||
		fail "the answer does not end with a whole record"
done
qfctl qfA help >/dev/null || fail "quickfed A stopped answering"
pass
