#!/bin/bash
# tests/integ/62-notify.sh - quickfed started the way contrib/systemd/quickfed.service does.
# SPDX-License-Identifier: ISC
#
# Where systemd cannot run the unit: the config from `make install`, a temp root with
# var/lib/quickfed (0700) and run/quickfed (0750) owned by an unused uid, quickfed run
# as that uid and gid with no groups and no_new_privs (setpriv), cwd the state
# directory, NOTIFY_SOCKET pointing at a datagram socket a python3 listener reads with
# the sender's credentials. Asserts: READY=1 comes once, from quickfed's pid and uid, and
# when it arrives the status socket answers and both listeners accept; the state and the
# status socket belong to the uid; every command of `quickfedctl help` is documented in
# man/quickfedctl.8; quickfedctl reload (the unit's ExecReload) gives RELOADING=1, then
# READY=1 again; SIGTERM gives STOPPING=1, then a clean exit. A second run under
# strace checks the order without a race (every listen() before READY=1) and the socket
# families against the unit's RestrictAddressFamilies.
. "$(dirname "$0")/lib.sh"

need_quickfed
need setpriv make getent pgrep
setup_ns
chmod 0755 "$TMP"

# an unused uid/gid: not in passwd or group, and owning no process
U=""
for u in $(seq 64101 64199); do
	if ! getent passwd "$u" >/dev/null && ! getent group "$u" >/dev/null &&
	    ! pgrep -u "$u" >/dev/null; then U=$u; break; fi
done
[ -n "$U" ] || skip "no unused uid in 64101..64199"
log "running quickfed as uid/gid $U"

R=$TMP/root
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$QF_TOP" --no-print-directory install \
	DESTDIR="$R" PREFIX=/usr/local >"$TMP/install.log" 2>&1 || fail "make install failed"
install -d -m 0755 "$R/var/lib" "$R/run"
install -d -m 0700 -o "$U" -g "$U" "$R/var/lib/quickfed"   # StateDirectoryMode=0700
install -d -m 0750 -o "$U" -g "$U" "$R/run/quickfed"       # RuntimeDirectoryMode=0750
conf=$TMP/quickfed.conf
sed "s|^state_dir /var/lib/quickfed$|state_dir $R/var/lib/quickfed|; s|^status_socket /run/quickfed/|status_socket $R/run/quickfed/|" \
	"$R/etc/quickfed/quickfed.conf" >"$conf"
if ! grep -q "^state_dir $R/var/lib/quickfed$" "$conf" ||
    ! grep -q "^status_socket $R/run/quickfed/quickfed.sock$" "$conf"; then
	fail "could not adapt the installed config"
fi
chmod 0644 "$conf"
SOCK=$R/run/quickfed/quickfed.sock

# The service manager's end: records each datagram with the sender's credentials and,
# at READY=1, what already works.
cat >"$TMP/notifyd.py" <<'PY'
import os, socket, struct, sys, time
path, sock_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chmod(path, 0o666)
s.settimeout(120)
def status_answers():
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(sock_path)
        c.sendall(b"help\n")
        data = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            data += d
        return b"show stats" in data
    except OSError as e:
        return False
def accepts(ip, port):
    try:
        socket.create_connection((ip, port), timeout=2).close()
        return True
    except OSError:
        return False
with open(out, "a", buffering=1) as f:
    f.write("listening\n")
    while True:
        data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = uid = -1
        for level, typ, cd in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid, uid, gid = struct.unpack("3i", cd[:12])
        msg = data.decode().replace("\n", "|")
        if "READY=1" in data.decode().split("\n"):
            st = status_answers()
            l5269 = accepts("127.0.0.1", 5269)
            l5270 = accepts("127.0.0.1", 5270)
            f.write("READY pid=%d uid=%d status=%s internet=%s local=%s msg=%s\n"
                    % (pid, uid, st, l5269, l5270, msg))
        elif "STOPPING=1" in data.decode().split("\n"):
            f.write("STOPPING pid=%d uid=%d msg=%s\n" % (pid, uid, msg))
            break
        else:
            f.write("OTHER pid=%d uid=%d msg=%s\n" % (pid, uid, msg))
PY
bg notifyd "$PYTHON" "$TMP/notifyd.py" "$TMP/notify.sock" "$SOCK" "$TMP/notify.out"
NOTIFYD=$LAST_PID
wait_for 50 grep -q '^listening' "$TMP/notify.out" || fail "notify listener did not start"

# quickfed as the unit runs it (ExecStart, DynamicUser, WorkingDirectory, NoNewPrivileges)
ip netns exec "$NS" env -C "$R/var/lib/quickfed" NOTIFY_SOCKET="$TMP/notify.sock" \
	setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs -- \
	"$QF_BUILD/quickfed" -c "$conf" >"$TMP/qf.log" 2>&1 &
QF=$!
track_pid $QF
QF_LOGS="$QF_LOGS $TMP/qf.log"

wait_for 100 grep -q '^READY' "$TMP/notify.out" || fail "no READY=1 from quickfed"
ready=$(grep '^READY' "$TMP/notify.out")
log "notify: $ready"
case $ready in
*"pid=$QF uid=$U status=True internet=True local=True msg=READY=1|STATUS=listening") ;;
*) fail "READY=1 not from quickfed ($QF, uid $U) with status socket and listeners up: $ready" ;;
esac
[ "$(grep -c '^READY' "$TMP/notify.out")" = 1 ] || fail "READY=1 sent more than once"

# runs as that user, and what it created is that user's
quid=$(awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$QF/status")
[ "$quid" = "$U,$U,$U,$U" ] || fail "quickfed uids are $quid, not $U"
qgroups=$(awk '/^Groups:/ { print $2 }' "/proc/$QF/status")
[ -z "$qgroups" ] || fail "quickfed kept supplementary groups: $qgroups"
[ "$(stat -c '%u %a %F' "$SOCK")" = "$U 600 socket" ] || fail "status socket: $(stat -c '%u %a %F' "$SOCK")"
[ "$(stat -c %u "$R/var/lib/quickfed/dialback.secret")" = "$U" ] || fail "dialback.secret not owned by $U"
notmine=$(find "$R/var/lib/quickfed" "$R/run/quickfed" ! -uid "$U")
[ -z "$notmine" ] || fail "not owned by $U: $notmine"

# every status command is in quickfedctl(8); help gives each once, as its synopsis
# ("close link DOMAIN") and what it does: the command is the synopsis without its
# arguments (upper case or bracketed)
nsx "$QF_BUILD/quickfedctl" -s "$SOCK" help >"$TMP/help.txt" || fail "quickfedctl help failed"
n=0
while IFS=$'\t' read -r syn desc; do
	n=$((n + 1))
	cmd=$(sed 's/ [A-Z[(].*//' <<<"$syn")
	grep -q "^\.B $cmd\( \|$\)" "$QF_TOP/man/quickfedctl.8" ||
		fail "status command '$cmd' is not documented in man/quickfedctl.8 (.B $cmd)"
	case $desc in
	"$cmd"[:\ ]*) fail "help repeats the command '$cmd' in its description: $desc" ;;
	esac
done < <(awk -F '  +' 'NF > 1 { d = $0; sub(/^[^ ]+( [^ ]+)*  +/, "", d); print $1 "\t" d }' "$TMP/help.txt")
[ "$n" -ge 9 ] || fail "quickfedctl help listed only $n commands"
log "quickfedctl help: $n commands, all in quickfedctl.8"

# show config: the effective values (defaults too), never the dialback secret; retry
# answers with the routes it woke, and refuses anything but one domain
nsx "$QF_BUILD/quickfedctl" -s "$SOCK" show config >"$TMP/config.txt" || fail "show config failed"
for want in "state_dir=$R/var/lib/quickfed" "timeouts.retry=" "limits.queue_bytes=" \
    "listener.0=" "domain.0=" "dialback_secret="; do
	grep -q "^$want" "$TMP/config.txt" || fail "show config has no $want: $(cat "$TMP/config.txt")"
done
secret=$(head -c 64 "$R/var/lib/quickfed/dialback.secret" | od -An -tx1 | tr -d ' \n')
! od -An -tx1 "$TMP/config.txt" | tr -d ' \n' | grep -q "$secret" ||
	fail "show config gives the dialback secret away"
[ "$(nsx "$QF_BUILD/quickfedctl" -s "$SOCK" retry nowhere.example)" = "retried=0" ] ||
	fail "retry of a domain nothing waits for did not answer retried=0"
rc=0
nsx "$QF_BUILD/quickfedctl" -s "$SOCK" retry >"$TMP/retry.txt" || rc=$?
[ "$rc" = 1 ] && grep -q '^error: usage: retry DOMAIN' "$TMP/retry.txt" ||
	fail "retry without a domain: exit $rc, $(cat "$TMP/retry.txt")"
nsx "$QF_BUILD/quickfedctl" -s "$SOCK" show queues | grep -q '^queues=0$' ||
	fail "show queues of an idle daemon is not queues=0"
log "show config: $(wc -l <"$TMP/config.txt") values, no secret; retry and show queues answer"

# reload (what the unit's ExecReload does): RELOADING=1, then READY=1 again
ans=$(nsx "$QF_BUILD/quickfedctl" -s "$SOCK" reload) || fail "quickfedctl reload failed: $ans"
[ "$(head -n 1 <<<"$ans")" = "reload=ok" ] || fail "quickfedctl reload answered: $ans"
ready_twice() { [ "$(grep -c '^READY' "$TMP/notify.out")" -ge 2 ]; }
wait_for 50 ready_twice || fail "no READY=1 after the reload: $(cat "$TMP/notify.out")"
grep -q "^OTHER pid=$QF uid=$U msg=RELOADING=1|MONOTONIC_USEC=[0-9]*$" "$TMP/notify.out" ||
	fail "no RELOADING=1 from quickfed: $(cat "$TMP/notify.out")"
[ "$(grep -E '^(OTHER|READY)' "$TMP/notify.out" | cut -c1-5 | tr '\n' ' ')" = "READY OTHER READY " ] ||
	fail "notifications out of order: $(cat "$TMP/notify.out")"
log "reload: RELOADING=1 then READY=1"

# SIGTERM: STOPPING=1, then exit 0
kill -TERM "$QF"
wait_for 50 grep -q '^STOPPING' "$TMP/notify.out" || fail "no STOPPING=1 after SIGTERM"
grep -q "^STOPPING pid=$QF uid=$U msg=STOPPING=1$" "$TMP/notify.out" || fail "bad STOPPING: $(grep ^STOPPING "$TMP/notify.out")"
rc=0
wait "$QF" || rc=$?
[ "$rc" = 0 ] || fail "quickfed exited $rc after SIGTERM"
[ ! -e "$SOCK" ] || fail "status socket left behind"
grep -q 'quickfed stopped' "$TMP/qf.log" || fail "no 'quickfed stopped' line"
wait "$NOTIFYD" 2>/dev/null || true

# The same start under strace, where the order is not a race: every listen() (status
# socket, internet and local listeners) comes before the READY=1 datagram, and the only
# socket families used are those the unit allows (RestrictAddressFamilies).
if command -v strace >/dev/null 2>&1; then
	bg notifyd2 "$PYTHON" "$TMP/notifyd.py" "$TMP/notify2.sock" "$SOCK" "$TMP/notify2.out"
	NOTIFYD2=$LAST_PID
	wait_for 50 grep -q '^listening' "$TMP/notify2.out" || fail "notify listener 2 did not start"
	# LeakSanitizer cannot run under ptrace; the first run checked for leaks.
	ip netns exec "$NS" env -C "$R/var/lib/quickfed" NOTIFY_SOCKET="$TMP/notify2.sock" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -s 64 -e trace=socket,listen,sendto,sendmsg -o "$TMP/strace.txt" \
		setpriv --reuid="$U" --regid="$U" --clear-groups --no-new-privs -- \
		"$QF_BUILD/quickfed" -c "$conf" >"$TMP/qf2.log" 2>&1 &
	ST=$!
	track_pid $ST
	QF_LOGS="$QF_LOGS $TMP/qf2.log"
	wait_for 150 grep -q '^READY' "$TMP/notify2.out" || fail "no READY=1 under strace"
	qf2=$(sed -n 's/^READY pid=\([0-9]*\) .*/\1/p' "$TMP/notify2.out")
	[ -n "$qf2" ] && [ "$qf2" != "$ST" ] || fail "READY under strace from pid '$qf2'"
	kill -TERM "$qf2"
	wait_for 50 grep -q '^STOPPING' "$TMP/notify2.out" || fail "no STOPPING=1 under strace"
	wait "$ST" || fail "strace/quickfed exited non-zero"
	ready_at=$(grep -n 'READY=1' "$TMP/strace.txt" | head -1 | cut -d: -f1)
	last_listen=$(grep -n '^[0-9]* *listen(' "$TMP/strace.txt" | tail -1 | cut -d: -f1)
	nlisten=$(grep -c '^[0-9]* *listen(' "$TMP/strace.txt" || true)
	[ -n "$ready_at" ] || fail "no READY=1 datagram in the strace log"
	[ "$nlisten" -ge 3 ] || fail "only $nlisten listen() calls under strace"
	[ "$last_listen" -lt "$ready_at" ] || fail "a listen() came after READY=1 (lines $last_listen, $ready_at)"
	fams=$(grep -o 'socket(AF_[A-Z0-9]*' "$TMP/strace.txt" | sed 's/socket(//' | sort -u | tr '\n' ' ')
	for f in $fams; do
		case $f in AF_UNIX|AF_INET|AF_INET6) ;; *) fail "quickfed opened a $f socket (the unit does not allow it)" ;; esac
	done
	log "strace: $nlisten listen() before READY=1; socket families: $fams"
	wait "$NOTIFYD2" 2>/dev/null || true
else
	log "strace not installed: syscall order not checked"
fi
pass
