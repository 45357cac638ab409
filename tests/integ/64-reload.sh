#!/bin/bash
# tests/integ/64-reload.sh - reload without drops: new certificates, listeners, limits; bad configs refused.
# SPDX-License-Identifier: ISC
#
# Sites A and B as in 10-relay-ab. While alice sends 300 numbered messages to bob (10 ms
# apart) over the link quickfed A opened to quickfed B, b.example's certificate and key
# are replaced on disk (as a Let's Encrypt renewal does) and quickfed B reloads, once by
# SIGHUP and once by "quickfedctl reload". A new TLS connection (openssl s_client,
# STARTTLS for xmpp-server) must see each new certificate, while the link that was up
# goes on with its old one: all 300 messages delivered, none bounced, and the
# connection quickfed B accepted before is the same (show peers) afterwards.
# Then: a config with an unknown keyword and a key that does not match its certificate
# are refused ("FILE:LINE:" in the answer and the log) and the running config stays
# (show config unchanged, the old certificate still served, messages still flow); a
# reload that moves the internet listener from port 5269 to 5279 opens 5279, closes
# 5269 and keeps the link accepted on 5269; a new log level and listener limit show in
# show config and show listeners, and a changed state_dir is kept with a warning.
. "$(dirname "$0")/lib.sh"

need_quickfed
setup_ns
sites_ab
confB=$TMP/B-qf.conf
pki=$TMP/pki

# serial_seen PORT: the serial of the certificate quickfed B presents for b.example to
# a new STARTTLS connection on 127.0.2.1:PORT.
serial_seen() {
	nsx timeout 10 openssl s_client -connect "127.0.2.1:$1" -starttls xmpp-server \
		-xmpphost b.example -servername b.example </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}
serial_of() { openssl x509 -noout -serial -in "$1" | sed 's/^serial=//'; }
# renew NAME: a new key and certificate for b.example, moved over B.crt/B.key.
renew() {
	issue_leaf ca "$1" b.example DNS:b.example "$pki/$1.crt"
	cp "$pki/$1.crt" "$pki/B.crt.new" && mv "$pki/B.crt.new" "$pki/B.crt"
	cp "$pki/$1.key" "$pki/B.key.new" && mv "$pki/B.key.new" "$pki/B.key"
}
# in_ids: ids of the internet connections quickfed B accepted (show peers).
in_ids() {
	qfctl qfB show peers | awk -F'[.=]' '$3 == "direction" && $4 == "in" { d[$2] = 1 }
		$3 == "side" && $4 == "internet" { i[$2] = 1 }
		END { for (k in d) if (k in i) print k }' | sort -n
}
peer_val() { qfctl qfB show peers | awk -F= -v k="peer.$1.$2" '$1 == k { print $2 }'; }
reloads_logged() { [ "$(grep -c 'reload: done' "$TMP/qfB.log")" -ge "$1" ]; }

# the link A -> B up
client_bg bob0 --resource w bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "warm" --timeout 20
client w alice@a.example pass-a 127.0.1.2 send bob@b.example warm || fail "alice could not send"
client_wait bob0
ids_before=$(in_ids)
[ -n "$ids_before" ] || fail "quickfed B shows no accepted internet connection"
serial0=$(serial_of "$pki/B.crt")
[ "$(serial_seen 5269)" = "$serial0" ] || fail "before reload: serial $(serial_seen 5269), expected $serial0"
log "link(s) accepted by B: $(echo $ids_before); certificate serial $serial0"

# (1) certificate renewals under a flow of 300 messages
stop="$TMP/stop"
client_bg bob --resource c bob@b.example pass-b 127.0.2.2 collect-until "$stop" --timeout 120
client_bg alice --resource s alice@a.example pass-a 127.0.1.2 \
	send-paced bob@b.example 300 10 collect-until "$stop" --timeout 120
delivered_n() { grep -c '^delivered ' "$TMP/client-bob.out" || true; }
at_least() { [ "$(delivered_n)" -ge "$1" ]; }
wait_for 150 at_least 40 || fail "the flow did not start (delivered $(delivered_n))"

renew B2
serial2=$(serial_of "$pki/B.crt")
[ "$serial2" != "$serial0" ] || fail "the renewed certificate has the old serial"
log "SIGHUP to quickfed B after $(delivered_n) delivered"
kill -HUP "$QF_PID_qfB"
wait_for 50 reloads_logged 1 || fail "quickfed B did not log a reload after SIGHUP"
seen=$(serial_seen 5269)
[ "$seen" = "$serial2" ] || fail "after SIGHUP a new connection sees serial $seen, expected $serial2"
log "after SIGHUP: new connections see serial $seen"

wait_for 150 at_least 150 || fail "the flow stalled after SIGHUP (delivered $(delivered_n))"
renew B3
serial3=$(serial_of "$pki/B.crt")
ans=$(qfctl qfB reload) || fail "quickfedctl reload failed: $ans"
echo "$ans" | grep -qx 'reload=ok' || fail "reload answer: $ans"
echo "$ans" | grep -qx 'reloads=2' || fail "reload answer: $ans"
seen=$(serial_seen 5269)
[ "$seen" = "$serial3" ] || fail "after quickfedctl reload a new connection sees serial $seen, expected $serial3"
log "after quickfedctl reload ($(delivered_n) delivered): new connections see serial $seen"

wait_for 300 at_least 300 || log "not all 300 delivered within 60 s"
touch "$stop"
client_wait bob
client_wait alice
delivered=$(sed -n 's/^delivered=\([^ ]*\) .*/\1/p' "$TMP/client-bob.out")
bounced=$(sed -n 's/.* bounced=\(.*\)$/\1/p' "$TMP/client-alice.out")
read -r nd nb miss <<<"$(python3 - "$delivered" "$bounced" <<'PY'
import sys
d = {int(x) for x in sys.argv[1].split(",") if x}
b = {int(x) for x in sys.argv[2].split(",") if x}
print(len(d), len(b), ",".join(str(i) for i in range(1, 301) if i not in d) or "none")
PY
)"
log "delivered $nd of 300, bounced $nb, missing: $miss"
[ "$nd" = 300 ] && [ "$nb" = 0 ] || fail "messages lost across the reloads: delivered $nd, bounced $nb, missing $miss"
for id in $ids_before; do
	[ "$(peer_val "$id" state)" != "" ] ||
		fail "connection $id accepted before the reloads is gone: $(qfctl qfB show peers)"
done
id1=$(echo "$ids_before" | head -n 1)
sin=$(peer_val "$id1" stanzas_in)
[ "${sin:-0}" -ge 300 ] || fail "connection $id1 carried ${sin:-0} stanzas, not the 300 (a new link took them?)"
log "connection $id1 (accepted before the reloads) still up, carried $sin stanza(s)"

# (2) refused reloads: the config in effect stays
cfg_before=$(qfctl qfB show config)
cp "$confB" "$TMP/B-qf.conf.good"
printf 'limits {\n\tstanza_size 64k\n\tno_such_limit 3\n}\n' >>"$confB"
badline=$(grep -n 'no_such_limit' "$confB" | cut -d: -f1)
rc=0
ans=$(qfctl qfB reload) || rc=$?
[ "$rc" = 1 ] || fail "a config with an error: quickfedctl reload exited $rc, expected 1: $ans"
echo "$ans" | grep -q "^$confB:$badline: " || fail "no $confB:$badline: in the answer: $ans"
grep -q "reload refused: $confB:$badline: " "$TMP/qfB.log" || fail "no $confB:$badline: in the log"
[ "$(qfctl qfB show config)" = "$cfg_before" ] || fail "show config changed by a refused reload"
log "refused: $(echo "$ans" | grep "^$confB:")"
cp "$TMP/B-qf.conf.good" "$confB"

cp "$pki/B.key" "$pki/B.key.good"
issue_leaf ca B4 b.example DNS:b.example "$pki/B4.crt"
cp "$pki/B4.key" "$pki/B.key"     # a key that does not belong to B.crt
domline=$(grep -n '^domain b.example' "$confB" | cut -d: -f1)
rc=0
ans=$(qfctl qfB reload) || rc=$?
[ "$rc" = 1 ] || fail "a mismatched key: quickfedctl reload exited $rc, expected 1: $ans"
echo "$ans" | grep -q "^$confB:$domline: domain b.example: .*key-does-not-match-certificate" ||
	fail "no $confB:$domline: ... key-does-not-match-certificate in the answer: $ans"
seen=$(serial_seen 5269)
[ "$seen" = "$serial3" ] || fail "after a refused reload a new connection sees serial $seen, expected $serial3"
[ "$(qfctl qfB show config)" = "$cfg_before" ] || fail "show config changed by a refused reload"
cp "$pki/B.key.good" "$pki/B.key"
client_bg bob1 --resource x bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "after refusal" --timeout 20
client y alice@a.example pass-a 127.0.1.2 send bob@b.example "after refusal" ||
	fail "alice could not send"
client_wait bob1

# (3) listeners: internet moves from 5269 to 5279; (4) log level, a limit, state_dir
sed -i '/^listener internet {$/,/^}$/ s/^\tport 5269$/\tport 5279\n\tconnections 7/' "$confB"
sed -i 's/^log_level debug$/log_level info/' "$confB"
sed -i "s|^state_dir .*|state_dir $TMP/elsewhere|" "$confB"
grep -q 'port 5279' "$confB" || fail "test bug: the listener edit did not apply"
ans=$(qfctl qfB reload) || fail "reload with new listeners refused: $ans"
echo "$ans" | grep -qx 'reload=ok' || fail "reload answer: $ans"
echo "$ans" | grep -q "^warning: $confB: state_dir changed: takes effect at the next restart" ||
	fail "no state_dir warning in the answer: $ans"
port_open 127.0.2.1 5279 || fail "the listener added by reload (5279) does not accept"
! port_open 127.0.2.1 5269 || fail "the listener removed by reload (5269) still accepts"
seen=$(serial_seen 5279)
[ "$seen" = "$serial3" ] || fail "the new listener serves serial $seen, expected $serial3"
cfg=$(qfctl qfB show config)
echo "$cfg" | grep -qx 'log_level=info' || fail "show config: $(echo "$cfg" | grep log_level)"
echo "$cfg" | grep -qx 'listener.0.port=5279' || fail "show config: $(echo "$cfg" | grep 'listener.0')"
echo "$cfg" | grep -qx 'listener.0.connections=7' || fail "show config: $(echo "$cfg" | grep 'listener.0')"
echo "$cfg" | grep -qx "state_dir=$TMP/B-qf/state" || fail "state_dir not kept: $(echo "$cfg" | grep state_dir)"
lst=$(qfctl qfB show listeners)
echo "$lst" | grep -qx 'listener.0.name=internet:127.0.2.1:5279' || fail "show listeners: $lst"
echo "$lst" | grep -qx 'listener.0.limit=7' || fail "show listeners: $lst"
# the level took effect: the next message leaves no debug line behind
mark=$(wc -l <"$TMP/qfB.log")
client_bg bob2 --resource z bob@b.example pass-b 127.0.2.2 \
	expect-message alice@a.example "through the closed listener's link" --timeout 20
client v alice@a.example pass-a 127.0.1.2 send bob@b.example "through the closed listener's link" ||
	fail "alice could not send"
client_wait bob2
sin2=$(peer_val "$id1" stanzas_in)
[ "${sin2:-0}" -gt "$sin" ] || fail "connection $id1 (accepted on the removed 5269) carried nothing after the reload ($sin2)"
ndebug=$(tail -n +"$((mark + 1))" "$TMP/qfB.log" | grep -c ' debug' || true)
[ "$ndebug" = 0 ] || fail "log_level info: $ndebug debug line(s) after the reload"
log "5279 open, 5269 closed, connection $id1 carried on ($sin -> $sin2 stanzas); log_level info, limit 7"
pass
