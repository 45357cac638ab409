#!/bin/bash
# tests/integ/60-install.sh - make install / make uninstall into a DESTDIR, and what they put.
# SPDX-License-Identifier: ISC
#
# Installs into a temporary DESTDIR with PREFIX=/usr/local and checks every file, its
# mode and nothing more; checks the installed example config with the installed
# quickfed -t (state_dir moved to a temp dir), the systemd unit with systemd-analyze
# verify (ExecStart pointed at the installed binary, MANPATH at the installed pages: no
# output allowed) and security --offline, and that the man pages render without
# warnings, and that every status command registered in the sources is in quickfedctl.8.
# Then uninstall must leave only directories; a modified /etc config survives
# a second install and uninstall; PREFIX=/opt/qf rewrites the unit, pages and recipe.
# Needs no root and no namespace.
. "$(dirname "$0")/lib.sh"

need make sed cmp find stat
[ -x "$QF_TOP/build/quickfed" ] || [ -w "$QF_TOP" ] || skip "build/quickfed missing and tree read-only"
TMP=$(mktemp -d "/tmp/qfinteg.$TEST_NAME.XXXXXX")
D=$TMP/root
P=$D/usr/local

mk() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$QF_TOP" --no-print-directory "$@"
}

# mode and path (DESTDIR-relative) of every file install must put, and nothing else
EXPECT="755 /usr/local/sbin/quickfed
755 /usr/local/bin/quickfedctl
644 /usr/local/share/man/man5/quickfed.conf.5
644 /usr/local/share/man/man8/quickfed.8
644 /usr/local/share/man/man8/quickfedctl.8
644 /usr/local/share/doc/quickfed/examples/quickfed.conf
644 /usr/local/share/quickfed/prosody/mod_quickfed.lua
644 /usr/local/share/quickfed/prosody/prosody.cfg.lua.example
644 /usr/local/lib/systemd/system/quickfed.service
644 /etc/quickfed/quickfed.conf"

files_now() { (cd "$D" && find . ! -type d -printf '%m /%P\n' | sort); }

# -- make help is the header comment of GNUmakefile
mk help >"$TMP/help.txt"
grep -q '^  make install ' "$TMP/help.txt" || fail "make help does not list install"
grep -q '^  make uninstall ' "$TMP/help.txt" || fail "make help does not list uninstall"
grep -q 'ONLY IF it does not exist yet' "$TMP/help.txt" || fail "make help does not say the config is kept"
[ "$(sed -n '/^[^#]/q; s/^# \{0,1\}//p' "$QF_TOP/GNUmakefile")" = "$(cat "$TMP/help.txt")" ] ||
	fail "make help differs from GNUmakefile's header comment"

# -- install
mk install DESTDIR="$D" PREFIX=/usr/local >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "make install failed"; }
got=$(files_now)
[ "$got" = "$(echo "$EXPECT" | sort)" ] || {
	diff <(echo "$EXPECT" | sort) <(echo "$got") || true
	fail "installed files or modes differ from the expected list"
}
bad=$(cd "$D" && find . -type d ! -perm 755 -printf '%m /%P\n')
[ -z "$bad" ] || fail "directories not 0755: $bad"
log "installed: $(echo "$got" | wc -l) files, modes as expected"

# -- the installed config: production paths, otherwise the reference
conf=$D/etc/quickfed/quickfed.conf
cmp -s "$conf" "$P/share/doc/quickfed/examples/quickfed.conf" || fail "/etc config differs from the example"
grep -qx 'state_dir /var/lib/quickfed' "$conf" || fail "installed config: state_dir is not /var/lib/quickfed"
grep -qx 'status_socket /run/quickfed/quickfed.sock' "$conf" || fail "installed config: status_socket is not /run/quickfed/quickfed.sock"
ndiff=$(diff "$QF_TOP/etc/quickfed.conf" "$conf" | grep -c '^[<>]' || true)
[ "$ndiff" = 5 ] || fail "installed config differs from etc/quickfed.conf in more than state_dir, status_socket and one comment ($ndiff lines)"
"$P/sbin/quickfed" -t -c "$conf" >"$TMP/check0.log" 2>&1 || { cat "$TMP/check0.log"; fail "quickfed -t refuses the installed config"; }
sed "s|^state_dir .*|state_dir $TMP/state|; s|^status_socket .*|status_socket $TMP/state/q.sock|" "$conf" >"$TMP/adapted.conf"
out=$("$P/sbin/quickfed" -t -c "$TMP/adapted.conf" 2>&1) || fail "quickfed -t: $out"
[ "$out" = "$TMP/adapted.conf: configuration ok" ] || fail "quickfed -t said: $out"
[ ! -e "$TMP/state" ] || fail "quickfed -t created the state_dir"
"$P/bin/quickfedctl" -h | grep -q /run/quickfed/quickfed.sock || fail "quickfedctl -h does not name /run/quickfed/quickfed.sock"

# -- the systemd unit
unit=$P/lib/systemd/system/quickfed.service
grep -qx 'ExecStart=/usr/local/sbin/quickfed -c /etc/quickfed/quickfed.conf' "$unit" || fail "unit: unexpected ExecStart"
for kv in Type=notify DynamicUser=yes StateDirectory=quickfed RuntimeDirectory=quickfed \
    ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet= \
    SystemCallFilter=@system-service SystemCallArchitectures=native MemoryDenyWriteExecute=yes; do
	grep -qx "$kv" "$unit" || fail "unit: no $kv"
done
grep -qx 'ExecReload=/usr/local/bin/quickfedctl -s /run/quickfed/quickfed.sock reload' "$unit" ||
	fail "unit: unexpected ExecReload: $(grep '^ExecReload' "$unit")"
if command -v systemd-analyze >/dev/null 2>&1; then
	sed -e "s|^ExecStart=/usr/local/sbin/quickfed|ExecStart=$P/sbin/quickfed|" \
	    -e "s|^ExecReload=/usr/local/bin/quickfedctl|ExecReload=$P/bin/quickfedctl|" "$unit" >"$TMP/quickfed.service"
	MANPATH=$P/share/man systemd-analyze verify "$TMP/quickfed.service" >"$TMP/verify.log" 2>&1 ||
		{ cat "$TMP/verify.log"; fail "systemd-analyze verify failed"; }
	[ ! -s "$TMP/verify.log" ] || { cat "$TMP/verify.log"; fail "systemd-analyze verify warned"; }
	exposure=$(systemd-analyze security --offline=yes "$TMP/quickfed.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for quickfed.service: \([0-9.]*\).*/\1/p')
	log "systemd-analyze verify: clean; security --offline exposure ${exposure:-?}"
	[ -z "$exposure" ] || awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
		fail "unit exposure $exposure above 2.0"
else
	log "systemd-analyze not installed: unit verification skipped"
fi

# -- man pages render without warnings, and man finds them
for f in "$P"/share/man/man5/quickfed.conf.5 "$P"/share/man/man8/quickfed.8 "$P"/share/man/man8/quickfedctl.8; do
	if command -v groff >/dev/null 2>&1; then
		w=$(groff -man -ww -z "$f" 2>&1) ; [ -z "$w" ] || fail "groff warns on $f: $w"
	fi
	if command -v man >/dev/null 2>&1; then
		w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null); [ -z "$w" ] || fail "man warns on $f: $w"
	fi
done
if command -v man >/dev/null 2>&1; then
	for pg in quickfed.conf.5 quickfed.8 quickfedctl.8; do
		[ "$(MANPATH=$P/share/man man -w "${pg##*.}" "${pg%.*}" 2>/dev/null)" = "$P/share/man/man${pg##*.}/$pg" ] ||
			fail "man -w ${pg##*.} ${pg%.*} does not find the installed page"
	done
fi

# -- every status command registered in the sources is in quickfedctl(8) (62-notify checks
#    the running daemon's `help` too; this needs no root)
cmds=$(cd "$QF_TOP" && grep -rhoE 'status_register(_stream)?\([a-z]+, "[^"]+"' core s2s dns tls |
	sed -E 's/.*"([^"]+)"$/\1/' | sort -u)
[ "$(echo "$cmds" | wc -l)" -ge 9 ] || fail "found only these status_register calls: $cmds"
while IFS= read -r cmd; do
	grep -q "^\.B $cmd\( \|$\)" "$P/share/man/man8/quickfedctl.8" ||
		fail "status command '$cmd' is not documented in quickfedctl.8"
done <<<"$cmds"

# -- uninstall leaves only directories
mk uninstall DESTDIR="$D" PREFIX=/usr/local >"$TMP/uninstall.log" 2>&1 || { cat "$TMP/uninstall.log"; fail "make uninstall failed"; }
left=$(files_now)
[ -z "$left" ] || fail "uninstall left files: $left"
log "uninstall: only directories left"

# -- a modified /etc config survives install and uninstall
mk install DESTDIR="$D" PREFIX=/usr/local >"$TMP/install2.log" 2>&1 || fail "make install (2) failed"
echo "# changed by the operator" >>"$conf"
cp "$conf" "$TMP/mine.conf"
mk install DESTDIR="$D" PREFIX=/usr/local >"$TMP/install3.log" 2>&1 || fail "make install (3) failed"
grep -q "kept existing $conf" "$TMP/install3.log" || fail "install did not say it kept the existing config"
cmp -s "$conf" "$TMP/mine.conf" || fail "install overwrote an existing /etc config"
mk uninstall DESTDIR="$D" PREFIX=/usr/local >"$TMP/uninstall2.log" 2>&1 || fail "make uninstall (2) failed"
left=$(files_now)
[ "$left" = "644 /etc/quickfed/quickfed.conf" ] || fail "after uninstall with a modified config, left: $left"
cmp -s "$conf" "$TMP/mine.conf" || fail "uninstall changed the modified config"

# -- another PREFIX: the unit, pages and recipe follow it
D2=$TMP/root2
mk install DESTDIR="$D2" PREFIX=/opt/qf >"$TMP/install-opt.log" 2>&1 || fail "make install PREFIX=/opt/qf failed"
grep -qx 'ExecStart=/opt/qf/sbin/quickfed -c /etc/quickfed/quickfed.conf' "$D2/opt/qf/lib/systemd/system/quickfed.service" ||
	fail "PREFIX=/opt/qf: ExecStart not rewritten"
! grep -rq /usr/local "$D2/opt/qf/share" "$D2/opt/qf/lib" || fail "PREFIX=/opt/qf: /usr/local left in $(grep -rl /usr/local "$D2/opt/qf")"
mk uninstall DESTDIR="$D2" PREFIX=/opt/qf >"$TMP/uninstall-opt.log" 2>&1 || fail "make uninstall PREFIX=/opt/qf failed"
[ -z "$(find "$D2" ! -type d)" ] || fail "PREFIX=/opt/qf: uninstall left $(find "$D2" ! -type d)"
pass
