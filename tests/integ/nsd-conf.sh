# tests/integ/nsd-conf.sh - the nsd configuration text shared by the tests and the bench.
# SPDX-License-Identifier: ISC
#
# Sourced by tests/integ/lib.sh (start_dns, start_dns_zones, lib-ejabberd.sh's private
# root) and tests/bench/run.sh (start_dns, and synth.sh through it). Only functions that
# print text on stdout; the callers write the file and start nsd.

# nsd_conf_server STATE_DIR ZONES_DIR IP PORT LOGFILE: the "server:" clause of an nsd
# answering on IP:PORT, its state files in STATE_DIR, zone files found in ZONES_DIR.
# Callers may add lines to the clause right after it (indented with a tab).
# Response rate limiting is off (rrl-ratelimit: 0): every client here is on loopback,
# and nsd's default of 200 answers a second per /24 made lookups of a bench setting up
# hundreds of peers at once wait for libunbound's retries (median 165 ms, p90 630 ms).
nsd_conf_server() {
	cat <<EOF
server:
	ip-address: $3
	port: $4
	username: ""
	chroot: ""
	zonesdir: "$2"
	database: ""
	zonelistfile: "$1/zone.list"
	xfrdfile: "$1/xfrd.state"
	xfrdir: "$1"
	pidfile: "$1/nsd.pid"
	logfile: "$5"
	server-count: 1
	verbosity: 1
	hide-version: yes
	rrl-ratelimit: 0
EOF
}

# nsd_conf_zones NAME FILE [NAME FILE ...]: remote control off, then a zone clause each.
nsd_conf_zones() {
	printf 'remote-control:\n\tcontrol-enable: no\n'
	while [ $# -ge 2 ]; do
		printf 'zone:\n\tname: "%s"\n\tzonefile: "%s"\n' "$1" "$2"
		shift 2
	done
}
