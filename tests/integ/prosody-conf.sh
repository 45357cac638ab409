# tests/integ/prosody-conf.sh - the Prosody configuration text shared by the tests and the bench.
# SPDX-License-Identifier: ISC
#
# Sourced by tests/integ/lib.sh (start_prosody, start_prosody_hosts) and by
# tests/bench/run.sh (prosody_conf). It only defines functions that print configuration
# text on stdout; the callers write the file and start Prosody (always in the foreground).

# prosody_cfg_global DIR LOGFILE LEVEL C2S_IP S2S_IP S2S_PORT PKI CERT MODE [QF_IP QF_PORT]:
# the global part of a Prosody config: pid, data and certificates under DIR, log to
# LOGFILE at LEVEL, c2s on C2S_IP:5222, s2s on S2S_IP:S2S_PORT, TLS with PKI/CERT.{crt,key}
# trusting PKI/ca.crt. MODE proxied loads mod_quickfed (from $QF_TOP/contrib/prosody,
# toward QF_IP:QF_PORT) without requiring s2s encryption; MODE direct requires it.
prosody_cfg_global() {
	local d=$1 logf=$2 level=$3 c2sip=$4 s2sip=$5 s2sport=$6 p=$7 cert=$8 mode=$9
	local qfip=${10:-} qfport=${11:-}
	cat <<EOF
run_as_root = true
daemonize = false
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { { levels = { min = "$level" }, to = "file", filename = "$logf" } }
admins = { }
modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix";
$( [ "$mode" = proxied ] && echo '	"quickfed";' )
}
modules_disabled = { "s2s_bidi"; }
authentication = "internal_plain"
storage = "internal"
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
c2s_interfaces = { "$c2sip" }
c2s_ports = { 5222 }
s2s_interfaces = { "$s2sip" }
s2s_ports = { $s2sport }
local_interfaces = { "$c2sip" }
legacy_ssl_ports = { }
s2s_direct_tls_ports = { }
s2s_timeout = 10
dns_timeout = 3
certificates = "$d/certs"
ssl = { certificate = "$p/$cert.crt"; key = "$p/$cert.key"; cafile = "$p/ca.crt"; }
EOF
	if [ "$mode" = proxied ]; then
		cat <<EOF
plugin_paths = { "$QF_TOP/contrib/prosody" }
quickfed_address = "$qfip"
quickfed_port = $qfport
s2s_require_encryption = false
s2s_secure_auth = false
EOF
	else
		cat <<EOF
s2s_require_encryption = true
s2s_secure_auth = false
EOF
	fi
}

# prosody_cfg_smacks: a filter over prosody_cfg_global's text that loads mod_smacks
# (XEP-0198), as Debian's default prosody.cfg.lua does and the tests' configs do not.
prosody_cfg_smacks() {
	sed -e 's/^modules_enabled = {/modules_enabled = { "smacks";/'
}

# prosody_cfg_bidi: a filter (stdin to stdout) over prosody_cfg_global's text that loads
# mod_s2s_bidi (XEP-0288), which prosody_cfg_global leaves disabled.
prosody_cfg_bidi() {
	sed -e 's/^modules_disabled = .*/modules_disabled = { }/' \
		-e 's/^modules_enabled = {/modules_enabled = { "s2s_bidi";/'
}

# prosody_cfg_vhost DOMAIN PKI CERT: a VirtualHost block for DOMAIN with PKI/CERT.{crt,key}.
prosody_cfg_vhost() {
	printf '\nVirtualHost "%s"\n\tssl = { certificate = "%s"; key = "%s"; cafile = "%s"; }\n' \
		"$1" "$2/$3.crt" "$2/$3.key" "$2/ca.crt"
}
