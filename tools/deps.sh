#!/bin/sh
# tools/deps.sh - install the Debian 12 packages quickfed needs to build and test.
# SPDX-License-Identifier: ISC
# Idempotent and quiet when everything is present; called by `make run` and `make check`.
set -eu
PKGS="build-essential pkg-config libwolfssl-dev libunbound-dev libevent-dev libev-dev
libxml2-dev libcmocka-dev dns-root-data openssl iproute2 prosody nsd ldnsutils python3
procps ejabberd lua-unbound nftables python3-prometheus-client"
# lua-unbound: Prosody's resolver (without it Prosody falls back to a slow built-in one,
# and the Prosody baselines of `make bench` would not be Prosody as Debian runs it).
# python3-prometheus-client: the real OpenMetrics / 0.0.4 parser that tests/integ/63-metrics.sh
# checks the metrics with (run with /usr/bin/python3, where Debian installs it).
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts these services on install; quickfed's tests run their own instances.
# (ejabberd: tests/integ/45-ejabberd.sh runs its own; erlang-base enables epmd.socket.)
for s in prosody nsd ejabberd epmd.socket epmd; do
	if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$s" >/dev/null 2>&1 || true; fi
	if [ -x "/etc/init.d/$s" ]; then "/etc/init.d/$s" stop >/dev/null 2>&1 || true; fi
done
exit 0
