/* tests/unit/test_config.c - unit tests for the configuration parser (core/config.c).
 * SPDX-License-Identifier: ISC
 * Loads the shipped etc/quickfed.conf, a file using every option, and a table of broken
 * files, checking values and the exact "FILE:LINE: " of each reported error, and that
 * man/quickfed.conf.5 documents every keyword of the tables. Runs with
 * cwd = repo top (or QF_TOP); scratch files go into a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

/* One expected error: its line and a fragment of its message. */
struct want_err {
	int line;
	const char *text;
};

#define MAX_WANT 12

/* A broken file and every error it must produce, in order. */
struct bad_case {
	const char *name;
	const char *conf;
	struct want_err errs[MAX_WANT];
};

static char tmpdir[] = "/tmp/qf-test-config.XXXXXX";

/* A valid skeleton to append broken parts to: lines 1-2. */
#define BASE "listener internet { }\ndomain example.net { }\n"

static const struct bad_case bad_cases[] = {
	{ "unknown-top", BASE "listne local {\n\taddress 127.0.0.1\n}\n",
	    { { 3, "unknown keyword 'listne' in top level" } } },
	{ "unknown-in-block", BASE "timeouts {\n\tconect 5s\n}\n",
	    { { 4, "unknown keyword 'conect' in timeouts block" } } },
	{ "bad-attempt-delay", BASE "timeouts {\n\tattempt_delay 5ms\n\tattempt_delay 11s\n}\n",
	    { { 4, "'attempt_delay' 5ms out of range (10..10000 ms)" },
	      { 5, "duplicate 'attempt_delay'" } } },
	{ "bad-ack", BASE "timeouts {\n\tack_late 5ms\n\tack_ride 2h\n}\nlimits {\n\tack_batch 0\n}\n",
	    { { 4, "'ack_late' 5ms out of range (10..3600000 ms)" },
	      { 5, "'ack_ride' 2h out of range" }, { 8, "'ack_batch' 0 out of range (1..100000)" } } },
	{ "bad-port-range", BASE "listener local {\n\tport 70000\n}\n",
	    { { 4, "'port' 70000 out of range (1..65535)" } } },
	{ "bad-port-zero", BASE "local_server {\n\tport 0\n}\n",
	    { { 4, "out of range" } } },
	{ "bad-port-text", BASE "peer example.org {\n\taddress 192.0.2.7\n\tport 52x\n}\n",
	    { { 5, "invalid number '52x' for 'port'" } } },
	{ "bad-time-suffix", BASE "timeouts {\n\tconnect 10x\n\tidle 5\n\tauth 1w\n}\n",
	    /* idle 5 = 5 ms, below its 1s minimum */
	    { { 4, "invalid time '10x' for 'connect'" }, { 5, "'idle' 5 out of range" },
	      { 6, "invalid time '1w'" } } },
	{ "bad-size", BASE "limits {\n\tstanza_size 17m\n\tstanza_size 1k\n\tdepth 99999\n}\n"
	    "limits {\n\tstanza_size 12q\n}\n",
	    { { 4, "'stanza_size' 17m out of range (1024..16777216 bytes)" },
	      { 5, "duplicate 'stanza_size' (first at line 4)" },
	      { 6, "'depth' 99999 out of range" },
	      { 8, "duplicate 'limits' (first at line 3)" } } },
	{ "unterminated", BASE "timeouts {\n\tconnect 5s\n",
	    { { 3, "unterminated 'timeouts' block" } } },
	{ "unterminated-skipped", BASE "bogus {\n\tconnect 5s\n",
	    { { 3, "unknown keyword 'bogus'" }, { 3, "unterminated block" } } },
	{ "stray-brace", BASE "log_level info\n}\n",
	    { { 4, "'}' without an open block" } } },
	{ "duplicate-domain", BASE "domain Example.NET {\n}\n",
	    { { 3, "duplicate domain 'example.net' (first at line 2)" } } },
	{ "missing-domain", "listener internet { }\n",
	    { { 0, "no domain configured" } } },
	{ "missing-listener", "domain example.net { }\n# nothing else\n",
	    { { 0, "no listener configured" } } },
	{ "missing-all", "",
	    { { 0, "no listener configured" }, { 0, "no domain configured" } } },
	{ "cert-without-key", "listener internet { }\ndomain example.net {\n"
	    "\tcertificate @DIR@/cert.pem\n}\n",
	    { { 2, "domain 'example.net': certificate without key" } } },
	{ "key-without-cert", "listener internet { }\n\ndomain example.net {\n"
	    "\tkey @DIR@/key.pem\n}\n",
	    { { 3, "key without certificate" } } },
	{ "unreadable-cert", "listener internet { }\ndomain example.net {\n"
	    "\tcertificate @DIR@/missing.pem\n\tkey @DIR@\n}\n",
	    { { 3, "cannot read certificate '" }, { 4, "is not a regular file" } } },
	{ "local-not-loopback", BASE "listener local {\n\taddress 192.0.2.1\n}\n"
	    "listener local {\n\taddress ::1\n\tport 5270\n}\n"
	    "listener local {\n\taddress ::ffff:127.0.0.2\n}\n"
	    "listener local {\n\taddress ::\n}\n",
	    /* the listeners refused are left out: no duplicate of their defaults */
	    { { 4, "local listener must be a loopback address (127.0.0.0/8 or ::1), not "
	        "'192.0.2.1'" },
	      { 11, "listener address '::ffff:127.0.0.2' cannot be bound: an IPv4-mapped" },
	      { 14, "local listener must be a loopback address" } } },
	{ "metrics-listener", BASE "listener metrics {\n\taddress 192.0.2.1\n}\n"
	    "listener metrics {\n\taddress ::1\n\tconnections 65\n}\n"
	    "listener metrics {\n\taddress 0.0.0.0\n}\nlistener httpd {\n}\n",
	    { { 4, "metrics listener must be a loopback address (127.0.0.0/8 or ::1), not "
	        "'192.0.2.1'" },
	      { 6, "metrics listener: connections 65 is more than 64" },
	      { 11, "metrics listener must be a loopback address" },
	      { 13, "invalid listener kind 'httpd' (internet, direct_tls, local or metrics)" } } },
	/* What passes the syntax but cannot be bound. */
	{ "listener-v4-mapped", BASE "listener internet {\n\taddress ::ffff:192.0.2.1\n"
	    "\tport 5299\n}\nlistener direct_tls {\n\taddress ::FFFF:0.0.0.0\n}\n",
	    { { 4, "'::ffff:192.0.2.1' cannot be bound: an IPv4-mapped IPv6 address" },
	      { 8, "'::FFFF:0.0.0.0' cannot be bound: an IPv4-mapped" } } },
	{ "listener-unbindable", BASE "listener internet {\n\taddress fe80::1\n\tport 1\n}\n"
	    "listener internet {\n\taddress 224.0.0.1\n\tport 2\n}\n"
	    "listener internet {\n\taddress ff02::1\n\tport 3\n}\n"
	    "listener internet {\n\taddress 255.255.255.255\n\tport 4\n}\n"
	    "listener internet {\n\taddress fe80::2\n\tport 5\n}\n",
	    { { 4, "'fe80::1' cannot be bound: a link-local address" },
	      { 8, "'224.0.0.1' cannot be bound: a multicast or broadcast address" },
	      { 12, "'ff02::1' cannot be bound: a multicast address" },
	      { 16, "'255.255.255.255' cannot be bound: a multicast or broadcast" },
	      { 20, "link-local" } } },
	{ "listener-overlap", BASE "listener internet {\n\taddress 192.0.2.1\n}\n"
	    "listener local {\n\tport 5269\n}\n"
	    "listener direct_tls { }\n"
	    "listener local { }\n"
	    "listener internet {\n\taddress ::\n}\n"
	    "listener internet {\n\taddress ::1\n}\n"
	    "listener local {\n\taddress 0:0::1\n\tport 5269\n}\n",
	    { { 3, "listener 192.0.2.1 port 5269 overlaps the listener 0.0.0.0 port 5269 "
	        "(line 1): both cannot be bound" },
	      { 6, "listener 127.0.0.1 port 5269 overlaps the listener 0.0.0.0 port 5269" },
	      /* an IPv6 wildcard does not take IPv4 (IPv6-only sockets) */
	      { 10, "listener 127.0.0.1 port 5270 overlaps the listener 0.0.0.0 port 5270 "
	        "(line 9)" },
	      { 14, "listener ::1 port 5269 overlaps the listener :: port 5269 (line 11)" },
	      { 17, "listener 0:0::1 port 5269 overlaps the listener :: port 5269" } } },
	{ "local-server-is-own-listener", BASE "listener local { }\n"
	    "local_server {\n\taddress 127.0.0.1\n\tport 5270\n}\n",
	    { { 4, "local_server 127.0.0.1 port 5270 is quickfed's own listener 127.0.0.1 "
	        "port 5270 (line 3): it would deliver to itself" } } },
	{ "local-server-behind-wildcard", BASE "local_server {\n\taddress ::ffff:127.0.0.1\n"
	    "\tport 5269\n}\n",
	    { { 3, "is quickfed's own listener 0.0.0.0 port 5269 (line 1)" } } },
	{ "bad-address", BASE "listener internet {\n\taddress example.net\n\tport 1\n}\n"
	    "local_server {\n\taddress 300.1.1.1\n}\n",
	    { { 4, "invalid address 'example.net'" }, { 8, "invalid address '300.1.1.1'" } } },
	{ "duplicate-listener", BASE "listener internet {\n\tport 5269\n}\n",
	    { { 3, "duplicate listener 0.0.0.0 port 5269 (first at line 1)" } } },
	{ "listener-kind", BASE "listener outside {\n\tport 1\n}\n",
	    { { 3, "invalid listener kind 'outside'" } } },
	{ "block-without-brace", BASE "resolver\n",
	    { { 3, "'resolver' needs a block" } } },
	{ "brace-on-plain", BASE "state_dir /tmp {\n\tfoo\n}\n",
	    { { 3, "'state_dir' does not take a block" } } },
	{ "misplaced-brace", BASE "timeouts { connect 5s }\n",
	    { { 3, "misplaced '{'" } } },
	{ "arguments", BASE "state_dir\nca_file a b\nresolver x {\n}\nlistener {\n}\n",
	    { { 3, "missing argument for 'state_dir'" }, { 4, "too many arguments for 'ca_file'" },
	      { 5, "too many arguments for 'resolver'" }, { 7, "missing argument for 'listener'" } } },
	{ "too-many-words", BASE "log_level a b c d e f g h i\n",
	    { { 3, "too many words" } } },
	{ "duplicate-keyword", BASE "log_level debug\nlog_level trace\nlog_level loud\n",
	    { { 4, "duplicate 'log_level' (first at line 3)" },
	      { 5, "duplicate 'log_level' (first at line 3)" } } },
	{ "bad-log-level", BASE "log_level loud\n",
	    { { 3, "invalid log_level 'loud'" } } },
	{ "bad-bool", BASE "local_server {\n\ttls maybe\n}\npolicy {\n\tstarttls sometimes\n}\n",
	    { { 4, "invalid value 'maybe' for 'tls'" },
	      { 7, "invalid value 'sometimes' for 'starttls'" } } },
	{ "policy-no-auth", BASE "policy {\n\tdialback no\n\tsasl_external false\n}\n",
	    { { 3, "dialback and sasl_external cannot both be off" } } },
	{ "forwarders", BASE "resolver {\n\tforwarder 192.0.2.1\n\tforwarder ::1@5353\n"
	    "\tforwarder 192.0.2.3@0\n\tforwarder 192.0.2.4@\n\tforwarder dns.example\n"
	    "\tforwarder 192.0.2.5\n\tforwarder 192.0.2.6\n\tforwarder 192.0.2.7\n}\n",
	    { { 6, "invalid forwarder '192.0.2.3@0'" }, { 7, "invalid forwarder '192.0.2.4@'" },
	      { 8, "invalid forwarder 'dns.example'" }, { 11, "too many forwarders (at most 4)" } } },
	{ "dnssec-without-anchor", BASE "resolver {\n\tdnssec on\n}\n",
	    { { 4, "dnssec on needs a trust_anchor_file" } } },
	{ "bad-domain-name", BASE "domain exa_mple.net { }\ndomain -a.net { }\ndomain a..net { }\n"
	    "domain a.net. { }\n",
	    { { 3, "invalid domain name 'exa_mple.net'" }, { 4, "invalid domain name '-a.net'" },
	      { 5, "invalid domain name 'a..net'" }, { 6, "invalid domain name 'a.net.'" } } },
	{ "peers", BASE "peer example.org {\n\tport 5270\n}\npeer EXAMPLE.org { }\n"
	    "peer example.net { }\npeer b.example {\n\taddress bad_host!\n}\n",
	    { { 4, "peer 'example.org': port needs an address" },
	      { 6, "duplicate peer 'example.org' (first at line 3)" },
	      { 9, "invalid address 'bad_host!'" },
	      { 7, "peer 'example.net' is a local domain" } } },
	{ "short-secret", BASE "dialback_secret short\n",
	    { { 3, "dialback_secret too short" } } },
	{ "socket-too-long", BASE "state_dir /var/lib/quickfed/a/very/long/path/that/goes/on/and/on/"
	    "and/on/until/it/no/longer/fits/in/sun_path\n",
	    { { 3, "status_socket '/var/lib/quickfed/a/very/long/path" } } },
	{ "too-many-listeners", "listener internet {\n\tport 1\n}\nlistener internet {\n\tport 2\n}\n"
	    "listener internet {\n\tport 3\n}\nlistener internet {\n\tport 4\n}\n"
	    "listener internet {\n\tport 5\n}\nlistener internet {\n\tport 6\n}\n"
	    "listener internet {\n\tport 7\n}\nlistener internet {\n\tport 8\n}\n"
	    "listener internet {\n\tport 9\n}\ndomain example.net { }\n",
	    { { 25, "too many listeners (at most 8)" } } },
};

/* Write len bytes to DIR/name; returns the malloc'ed path. */
static char *
write_file(const char *name, const char *data, size_t len)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Replace every "@DIR@" in s by the scratch directory; caller frees. */
static char *
subst_dir(const char *s)
{
	size_t cap = strlen(s) * 4 + 1, n = 0;
	char *out = malloc(cap);

	assert_non_null(out);
	while (*s != '\0') {
		if (strncmp(s, "@DIR@", 5) == 0) {
			n += (size_t)snprintf(out + n, cap - n, "%s", tmpdir);
			s += 5;
		} else
			out[n++] = *s++;
		assert_true(n < cap);
	}
	out[n] = '\0';
	return out;
}

/* Load path; errors go to *errtext (caller frees). */
static int
load(const char *path, struct config **cfg, char **errtext)
{
	size_t len;
	FILE *errs = open_memstream(errtext, &len);
	int n;

	assert_non_null(errs);
	n = config_load(path, errs, cfg);
	fclose(errs);
	return n;
}

/* Assert that text holds exactly the wanted errors, each as "path:LINE: ...TEXT...". */
static void
check_errors(const char *name, const char *path, const char *text, const struct want_err *want,
    int nwant)
{
	const char *line = text;

	for (int i = 0; i < nwant; i++) {
		char prefix[512];
		const char *nl = strchr(line, '\n');
		char *msg;

		if (nl == NULL)
			fail_msg("%s: missing error %d (want line %d '%s'); got:\n%s", name, i,
			    want[i].line, want[i].text, text);
		msg = strndup(line, (size_t)(nl - line));
		assert_non_null(msg);
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, want[i].line);
		if (strncmp(msg, prefix, strlen(prefix)) != 0 || strstr(msg, want[i].text) == NULL)
			fail_msg("%s: error %d is\n  %s\nwant prefix '%s' and text '%s'; all:\n%s", name,
			    i, msg, prefix, want[i].text, text);
		free(msg);
		line = nl + 1;
	}
	if (*line != '\0')
		fail_msg("%s: unexpected extra errors:\n%s", name, line);
}

static int
count_want(const struct want_err *want)
{
	int n = 0;

	while (n < MAX_WANT && want[n].text != NULL)
		n++;
	return n;
}

/* Load a file that must fail with exactly the given errors. */
static void
expect_bad(const char *name, const char *path, const struct want_err *want, int nwant)
{
	struct config *cfg = (struct config *)1;
	char *text = NULL;
	int n = load(path, &cfg, &text);

	assert_null(cfg);
	check_errors(name, path, text, want, nwant);
	if (n != nwant)
		fail_msg("%s: config_load returned %d, want %d", name, n, nwant);
	free(text);
}

/* config_format's whole answer (caller frees), in parts of at most part bytes, each
 * appended while room bytes are left; checks that the parts make the same text as one
 * call with all the room it wants. */
static char *
show_config(const struct config *cfg, size_t part, size_t room)
{
	struct buf whole, b;
	uint64_t cursor = 0;
	char *text;
	int rc, parts = 0;

	buf_init(&whole, 1 << 20);
	do {
		buf_init(&b, part);
		rc = config_format(cfg, &b, room, &cursor);
		assert_true(rc == 0 || (rc == 1 && b.len > 0));
		assert_int_equal(buf_append(&whole, b.data, b.len), 0);
		buf_free(&b);
		assert_true(++parts < 10000);
	} while (rc == 1);
	text = strdup(whole.len > 0 ? whole.data : "");
	assert_non_null(text);
	buf_reset(&whole);
	cursor = 0;
	assert_int_equal(config_format(cfg, &whole, 1024, &cursor), 0);
	assert_string_equal(whole.data, text);
	buf_free(&whole);
	return text;
}

/* show config lists line (a whole "name=value" line). */
static void
assert_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("show config has no line '%s'; all:\n%s", line, text);
}

struct listed {
	const char *text;
	int missing;
};

/* Some line of text starts with prefix. */
static bool
has_line_prefix(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, prefix, n) == 0)
			return true;
	return false;
}

/* Every keyword of the tables is in show config (domains: names only). */
static void
check_listed(const char *block, const char *kw, void *arg)
{
	static const char *const numbered[] = { "listener", "domain", "peer" };
	struct listed *l = arg;
	char want[128];

	if (strcmp(block, "domain") == 0)
		return;   /* certificate and key: never shown */
	if (*block == '\0') {
		snprintf(want, sizeof(want), "%s=", kw);
		for (size_t i = 0; i < 3; i++)
			if (strcmp(kw, numbered[i]) == 0)
				snprintf(want, sizeof(want), "%s.0=", kw);
		if (!has_line_prefix(l->text, want))
			snprintf(want, sizeof(want), "%s.", kw);   /* a block: its values */
	} else if (strcmp(block, "listener") == 0 || strcmp(block, "peer") == 0) {
		snprintf(want, sizeof(want), "%s.0.%s=", block, kw);
	} else {
		snprintf(want, sizeof(want), "%s.%s=", block, kw);
	}
	if (!has_line_prefix(l->text, want)) {
		print_error("show config lacks keyword '%s' of %s (want a line '%s...')\n", kw,
		    *block != '\0' ? block : "the top level", want);
		l->missing++;
	}
}

/* show config of the smallest file: every default, in the units the parser reads. */
static void
test_show_config_defaults(void **state)
{
	struct config *cfg = NULL;
	char *text = NULL;

	assert_int_equal(load("tests/data/config/minimal.conf", &cfg, &text), 0);
	free(text);
	text = show_config(cfg, 4096, 1024);
	assert_line(text, "log_level=info");
	assert_line(text, "state_dir=/var/lib/quickfed");
	assert_line(text, "status_socket=/var/lib/quickfed/quickfed.sock");
	assert_line(text, "dialback_secret=/var/lib/quickfed/dialback.secret");
	assert_line(text, "listener.0=internet");
	assert_line(text, "listener.0.address=0.0.0.0");
	assert_line(text, "listener.0.port=5269");
	assert_line(text, "listener.0.connections=4096");
	assert_line(text, "local_server.address=127.0.0.1");
	assert_line(text, "local_server.port=5271");
	assert_line(text, "local_server.tls=off");
	assert_line(text, "domain.0=example.com");
	assert_line(text, "resolver.forwarder=none");
	assert_line(text, "resolver.trust_anchor_file=none");
	assert_line(text, "resolver.timeout=5s");
	assert_line(text, "resolver.cache_file=/var/lib/quickfed/dns.cache");
	assert_line(text, "resolver.cache_max_ttl=1d");
	assert_line(text, "timeouts.retry=90s");
	assert_line(text, "timeouts.idle=10m");
	assert_line(text, "timeouts.attempt_delay=250ms");
	assert_line(text, "timeouts.ack_ride=500ms");
	assert_line(text, "timeouts.ack_late=2s");
	assert_line(text, "limits.ack_batch=16");
	assert_line(text, "limits.stanza_size=256k");
	assert_line(text, "limits.queue_bytes=1m");
	assert_line(text, "limits.memory=256m");
	assert_line(text, "limits.depth=32");
	assert_line(text, "policy.starttls=required");
	assert_line(text, "policy.dialback=on");
	assert_line(text, "policy.secure_auth=off");
	assert_line(text, "tls.ticket_key_file=/var/lib/quickfed/ticket.keys");
	assert_line(text, "tls.ticket_rotation=12h");
	assert_null(strstr(text, "=?"));      /* a keyword the formatter does not know */
	assert_null(strstr(text, "peer."));   /* none configured */
	assert_int_equal(text[strlen(text) - 1], '\n');
	config_free(cfg);
	free(text);
}

static void
test_shipped_config(void **state)
{
	struct config *cfg = NULL;
	char *text = NULL;
	int n = load("etc/quickfed.conf", &cfg, &text);

	if (n != 0)
		fail_msg("etc/quickfed.conf: %d errors:\n%s", n, text);
	free(text);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, "etc/quickfed.conf");
	assert_int_equal(cfg->n_listeners, 2);
	assert_int_equal(cfg->listeners[0].kind, CFG_LISTEN_INTERNET);
	assert_string_equal(cfg->listeners[0].address, "0.0.0.0");
	assert_int_equal(cfg->listeners[0].port, 5269);
	assert_int_equal(cfg->listeners[0].max_connections, 4096);
	assert_int_equal(cfg->listeners[1].kind, CFG_LISTEN_LOCAL);
	assert_string_equal(cfg->listeners[1].address, "127.0.0.1");
	assert_int_equal(cfg->listeners[1].port, 5270);
	assert_int_equal(cfg->listeners[1].max_connections, 1024);
	assert_string_equal(cfg->local_server_address, "127.0.0.1");
	assert_int_equal(cfg->local_server_port, 5271);
	assert_false(cfg->local_server_tls);
	assert_string_equal(cfg->state_dir, "./build/state");
	assert_string_equal(cfg->status_socket, "./build/state/quickfed.sock");
	assert_string_equal(cfg->ca_file, "/etc/ssl/certs/ca-certificates.crt");
	assert_null(cfg->dialback_secret);
	assert_int_equal(cfg->log_level, LOG_INFO);
	assert_non_null(cfg->domains);
	assert_string_equal(cfg->domains->name, "example.net");
	assert_null(cfg->domains->certificate);
	assert_null(cfg->domains->key);
	assert_null(cfg->domains->next);
	assert_int_equal(cfg->n_forwarders, 0);
	assert_null(cfg->trust_anchor_file);
	assert_false(cfg->dnssec);
	assert_int_equal(cfg->dns_timeout_ms, 5000);
	assert_int_equal(cfg->connect_timeout_ms, 10000);
	assert_int_equal(cfg->tls_timeout_ms, 10000);
	assert_int_equal(cfg->auth_timeout_ms, 30000);
	assert_int_equal(cfg->setup_timeout_ms, 60000);
	assert_int_equal(cfg->idle_timeout_ms, 600000);
	assert_int_equal(cfg->shutdown_timeout_ms, 5000);
	assert_int_equal(cfg->attempt_delay_ms, 250);
	assert_int_equal(cfg->ack_ride_ms, 500);
	assert_int_equal(cfg->ack_late_ms, 2000);
	assert_int_equal(cfg->ack_batch, 16);
	assert_int_equal(cfg->max_stanza_size, 256 * 1024);
	assert_int_equal(cfg->max_stanza_memory, 512 * 1024);
	assert_int_equal(cfg->max_depth, 32);
	assert_int_equal(cfg->max_attributes, 32);
	assert_int_equal(cfg->max_name_length, 256);
	assert_int_equal(cfg->queue_bytes, 1024 * 1024);
	assert_int_equal(cfg->held_bytes, 128 * 1024);
	assert_int_equal(cfg->memory_limit, 256 * 1024 * 1024);
	assert_int_equal(cfg->max_verifications, 1024);
	assert_int_equal(cfg->max_connections, 4096);
	assert_int_equal(cfg->max_connections_per_address, 32);
	assert_true(cfg->require_tls);
	assert_false(cfg->secure_auth);
	assert_true(cfg->dialback);
	assert_true(cfg->sasl_external);
	assert_null(cfg->peers);
	assert_true(config_is_local(cfg, "example.net"));
	config_free(cfg);
}

/* A minimal file: every option not given takes the default documented in config.h. */
static void
test_defaults(void **state)
{
	struct config *cfg = NULL;
	char *text = NULL;
	int n = load("tests/data/config/minimal.conf", &cfg, &text);

	if (n != 0)
		fail_msg("minimal.conf: %d errors:\n%s", n, text);
	free(text);
	assert_int_equal(cfg->n_listeners, 1);
	assert_string_equal(cfg->listeners[0].address, "0.0.0.0");
	assert_int_equal(cfg->listeners[0].port, 5269);
	assert_int_equal(cfg->listeners[0].line, 3);
	assert_int_equal(cfg->listeners[0].max_connections, 4096);
	assert_string_equal(cfg->domains->name, "example.com");
	assert_int_equal(cfg->domains->line, 5);
	assert_string_equal(cfg->local_server_address, "127.0.0.1");
	assert_int_equal(cfg->local_server_port, 5271);
	assert_false(cfg->local_server_tls);
	assert_string_equal(cfg->state_dir, "/var/lib/quickfed");
	assert_string_equal(cfg->status_socket, "/var/lib/quickfed/quickfed.sock");
	assert_string_equal(cfg->ca_file, "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(cfg->log_level, LOG_INFO);
	assert_null(cfg->dialback_secret);
	assert_false(cfg->dnssec);
	assert_int_equal(cfg->dns_timeout_ms, 5000);
	assert_int_equal(cfg->idle_timeout_ms, 600000);
	assert_int_equal(cfg->setup_timeout_ms, 60000);
	assert_int_equal(cfg->max_stanza_size, 262144);
	assert_int_equal(cfg->max_stanza_memory, 524288);
	assert_int_equal(cfg->max_connections, 4096);
	assert_int_equal(cfg->max_connections_per_address, 32);
	assert_true(cfg->require_tls);
	assert_true(cfg->dialback);
	assert_true(cfg->sasl_external);
	assert_false(cfg->secure_auth);
	/* lookups are case-insensitive */
	assert_true(config_is_local(cfg, "EXAMPLE.com"));
	assert_ptr_equal(config_domain(cfg, "Example.Com"), cfg->domains);
	assert_false(config_is_local(cfg, "example.org"));
	assert_false(config_is_local(cfg, "example.co"));
	assert_null(config_peer(cfg, "example.com"));
	config_free(cfg);
}

/* Every option set to a non-default value, with comments, CRLF and odd spacing. */
static void
test_every_option(void **state)
{
	char *cert = write_file("cert.pem", "-----BEGIN CERTIFICATE-----\n", 28);
	char *key = write_file("key.pem", "-----BEGIN PRIVATE KEY-----\n", 28);
	char *anchor = write_file("root.key", ". IN DS 20326 8 2 E06D\n", 23);
	char *conf, *path, *text = NULL;
	struct config *cfg = NULL;
	const struct cfg_peer *peer;
	const struct cfg_domain *d;
	int n;

	assert_true(asprintf(&conf,
	    "# every option\n"
	    "log_level debug   # trailing comment\n"
	    "state_dir /srv/qf\n"
	    "status_socket /run/qf.sock\r\n"
	    "ca_file /etc/qf/ca.pem\n"
	    "dialback_secret 0123456789abcdef0123\n"
	    "listener internet {\n"
	    "  address ::\n"
	    "  port 15269\n"
	    "}\n"
	    "listener internet {\n"
	    "\taddress 192.0.2.10\n"
	    "\tconnections 200\n"
	    "}\n"
	    "listener local {\n"
	    "\taddress ::1\n"
	    "\tport 15270\n"
	    "\tconnections 50\n"
	    "}\n"
	    "local_server {\n"
	    "\taddress ::1\n"
	    "\tport 15271\n"
	    "\ttls yes\n"
	    "}\n"
	    "domain A.Example {\n"
	    "\tcertificate %s\n"
	    "\tkey %s\n"
	    "}\n"
	    "domain b.example\t{\t}\n"
	    "resolver {\n"
	    "\tforwarder 127.0.0.53\n"
	    "\tforwarder ::1@5353\n"
	    "\ttrust_anchor_file %s\n"
	    "\ttimeout 1500\n"
	    "}\n"
	    "timeouts {\n"
	    "\tconnect 2s\n"
	    "\ttls 3000ms\n"
	    "\tauth 1m\n"
	    "\tsetup 1h\n"
	    "\tidle 1d\n"
	    "\tshutdown 0\n"
	    "\tattempt_delay 100ms\n"
	    "\tack_ride 0\n"
	    "\tack_late 250ms\n"
	    "}\n"
	    "limits {\n"
	    "\tstanza_size 1M\n"
	    "\tstanza_memory 3m\n"
	    "\tdepth 16\n"
	    "\tattributes 8\n"
	    "\tname_length 64\n"
	    "\tqueue_bytes 64k\n"
	    "\theld 32k\n"
	    "\tmemory 8m\n"
	    "\tverifications 16\n"
	    "\tconnections 100\n"
	    "\tconnections_per_address 7\n"
	    "\tack_batch 1\n"
	    "}\n"
	    "policy {\n"
	    "\tstarttls optional\n"
	    "\tsecure_auth on\n"
	    "\tdialback off\n"
	    "\tsasl_external true\n"
	    "}\n"
	    "peer Remote.Example {\n"
	    "\tsecure_auth off\n"
	    "\taddress 192.0.2.20\n"
	    "\tport 5299\n"
	    "}\n"
	    "peer inherit.example {\n"
	    "\taddress xmpp.Inherit.example\n"
	    "}\n",
	    cert, key, anchor) > 0);
	path = write_file("full.conf", conf, strlen(conf));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("full.conf: %d errors:\n%s", n, text);
	free(text);

	assert_int_equal(cfg->log_level, LOG_DEBUG);
	assert_string_equal(cfg->state_dir, "/srv/qf");
	assert_string_equal(cfg->status_socket, "/run/qf.sock");
	assert_string_equal(cfg->ca_file, "/etc/qf/ca.pem");
	assert_string_equal(cfg->dialback_secret, "0123456789abcdef0123");

	assert_int_equal(cfg->n_listeners, 3);
	assert_int_equal(cfg->listeners[0].kind, CFG_LISTEN_INTERNET);
	assert_string_equal(cfg->listeners[0].address, "::");
	assert_int_equal(cfg->listeners[0].port, 15269);
	assert_int_equal(cfg->listeners[0].line, 7);
	assert_int_equal(cfg->listeners[0].max_connections, 4096);
	assert_string_equal(cfg->listeners[1].address, "192.0.2.10");
	assert_int_equal(cfg->listeners[1].port, 5269);
	assert_int_equal(cfg->listeners[1].max_connections, 200);
	assert_int_equal(cfg->listeners[2].kind, CFG_LISTEN_LOCAL);
	assert_string_equal(cfg->listeners[2].address, "::1");
	assert_int_equal(cfg->listeners[2].port, 15270);
	assert_int_equal(cfg->listeners[2].max_connections, 50);

	assert_string_equal(cfg->local_server_address, "::1");
	assert_int_equal(cfg->local_server_port, 15271);
	assert_true(cfg->local_server_tls);

	d = config_domain(cfg, "a.example");
	assert_non_null(d);
	assert_ptr_equal(d, cfg->domains);
	assert_string_equal(d->name, "a.example");
	assert_string_equal(d->certificate, cert);
	assert_string_equal(d->key, key);
	assert_int_equal(d->line, 25);
	d = config_domain(cfg, "B.EXAMPLE");
	assert_non_null(d);
	assert_ptr_equal(d, cfg->domains->next);
	assert_null(d->certificate);
	assert_null(d->key);
	assert_null(d->next);

	assert_int_equal(cfg->n_forwarders, 2);
	assert_string_equal(cfg->forwarders[0], "127.0.0.53");
	assert_string_equal(cfg->forwarders[1], "::1@5353");
	assert_string_equal(cfg->trust_anchor_file, anchor);
	assert_true(cfg->dnssec);  /* default on with a trust anchor */
	assert_int_equal(cfg->dns_timeout_ms, 1500);

	assert_int_equal(cfg->connect_timeout_ms, 2000);
	assert_int_equal(cfg->tls_timeout_ms, 3000);
	assert_int_equal(cfg->auth_timeout_ms, 60000);
	assert_int_equal(cfg->setup_timeout_ms, 3600000);
	assert_int_equal(cfg->idle_timeout_ms, 86400000);
	assert_int_equal(cfg->shutdown_timeout_ms, 0);
	assert_int_equal(cfg->attempt_delay_ms, 100);

	assert_int_equal(cfg->max_stanza_size, 1024 * 1024);
	assert_int_equal(cfg->max_stanza_memory, 3 * 1024 * 1024);
	assert_int_equal(cfg->max_depth, 16);
	assert_int_equal(cfg->max_attributes, 8);
	assert_int_equal(cfg->max_name_length, 64);
	assert_int_equal(cfg->queue_bytes, 64 * 1024);
	assert_int_equal(cfg->held_bytes, 32 * 1024);
	assert_int_equal(cfg->memory_limit, 8 * 1024 * 1024);
	assert_int_equal(cfg->max_verifications, 16);
	assert_int_equal(cfg->max_connections, 100);
	assert_int_equal(cfg->max_connections_per_address, 7);
	assert_int_equal(cfg->ack_batch, 1);
	assert_int_equal(cfg->ack_ride_ms, 0);
	assert_int_equal(cfg->ack_late_ms, 250);

	assert_false(cfg->require_tls);
	assert_true(cfg->secure_auth);
	assert_false(cfg->dialback);
	assert_true(cfg->sasl_external);

	peer = config_peer(cfg, "remote.EXAMPLE");
	assert_non_null(peer);
	assert_ptr_equal(peer, cfg->peers);
	assert_string_equal(peer->name, "remote.example");
	assert_false(peer->secure_auth);  /* explicit, beats policy */
	assert_string_equal(peer->address, "192.0.2.20");
	assert_int_equal(peer->port, 5299);
	peer = config_peer(cfg, "inherit.example");
	assert_non_null(peer);
	assert_true(peer->secure_auth);   /* inherited from policy, set after the peer */
	assert_string_equal(peer->address, "xmpp.inherit.example");
	assert_int_equal(peer->port, 5269);
	assert_null(peer->next);
	assert_null(config_peer(cfg, "a.example"));
	assert_false(config_is_local(cfg, "remote.example"));

	/* show config: the values set, every keyword, and never a secret or key file */
	text = show_config(cfg, 2048, 1024);
	assert_line(text, "log_level=debug");
	assert_line(text, "dialback_secret=hidden");
	assert_line(text, "listener.0.address=::");
	assert_line(text, "listener.1.connections=200");
	assert_line(text, "listener.2=local");
	assert_line(text, "listener.2.port=15270");
	assert_line(text, "domain.0=a.example");
	assert_line(text, "domain.1=b.example");
	assert_line(text, "resolver.forwarder=127.0.0.53 ::1@5353");
	assert_line(text, "resolver.dnssec=on");
	assert_line(text, "resolver.timeout=1500ms");
	assert_line(text, "resolver.cache_file=/srv/qf/dns.cache");
	assert_line(text, "timeouts.setup=1h");
	assert_line(text, "timeouts.shutdown=0ms");
	assert_line(text, "limits.stanza_memory=3m");
	assert_line(text, "policy.starttls=optional");
	assert_line(text, "peer.0=remote.example");
	assert_line(text, "peer.0.secure_auth=off");
	assert_line(text, "peer.0.address=192.0.2.20");
	assert_line(text, "peer.0.port=5299");
	assert_line(text, "peer.1.secure_auth=on");
	assert_line(text, "peer.1.address=xmpp.inherit.example");
	assert_null(strstr(text, "0123456789abcdef"));
	assert_null(strstr(text, cert));
	assert_null(strstr(text, key));
	assert_null(strstr(text, "=?"));
	{
		struct listed l = { text, 0 };

		config_keywords(check_listed, &l);
		assert_int_equal(l.missing, 0);
	}
	free(text);

	config_free(cfg);
	free(conf);
	free(path);
	free(cert);
	free(key);
	free(anchor);
}

/* tls { } block: defaults, every option, bounds. */
static void
test_tls_block(void **state)
{
	static const char good[] = BASE "tls {\n\tsession_store off\n"
	    "\tsession_store_entries 50\n\tticket_key_file /srv/shared/ticket.keys\n"
	    "\tticket_rotation 6h\n\tticket_lifetime 2d\n\tdane off\n}\n";
	static const char bad[] = BASE "tls {\n\tsession_store_entries 0\n"
	    "\tticket_rotation 1s\n\tticket_lifetime 8d\n\tdane maybe\n\tstore on\n}\n";
	struct config *cfg = NULL;
	char *text = NULL, *path;
	int n;

	path = write_file("tls-default.conf", BASE, strlen(BASE));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("tls-default.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	assert_true(cfg->tls_session_store);
	assert_int_equal(cfg->tls_store_entries, 1000);
	assert_null(cfg->tls_ticket_key_file);
	assert_int_equal(cfg->tls_ticket_rotation_ms, 12 * 3600 * 1000u);
	assert_int_equal(cfg->tls_ticket_lifetime_ms, 24 * 3600 * 1000u);
	assert_true(cfg->dane);
	config_free(cfg);

	path = write_file("tls-good.conf", good, strlen(good));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("tls-good.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	assert_false(cfg->tls_session_store);
	assert_int_equal(cfg->tls_store_entries, 50);
	assert_string_equal(cfg->tls_ticket_key_file, "/srv/shared/ticket.keys");
	assert_int_equal(cfg->tls_ticket_rotation_ms, 6 * 3600 * 1000u);
	assert_int_equal(cfg->tls_ticket_lifetime_ms, 2 * 24 * 3600 * 1000u);
	assert_false(cfg->dane);
	config_free(cfg);

	path = write_file("tls-bad.conf", bad, strlen(bad));
	n = load(path, &cfg, &text);
	assert_null(cfg);
	assert_int_equal(n, 5);
	assert_non_null(strstr(text, ":4: "));
	assert_non_null(strstr(text, "'ticket_rotation' 1s out of range"));
	assert_non_null(strstr(text, "'ticket_lifetime' 8d out of range"));
	assert_non_null(strstr(text, "invalid value 'maybe' for 'dane'"));
	assert_non_null(strstr(text, "unknown keyword 'store' in tls block"));
	free(text);
	free(path);
}

/* resolver cache options: defaults, every option, and the errors. */
static void
test_resolver_cache_block(void **state)
{
	static const char good[] = BASE "resolver {\n\tcache_file /srv/qf/dns.cache\n"
	    "\tcache_min_ttl 0\n\tcache_max_ttl 2h\n\tserve_stale 0\n"
	    "\tcache_entries 500\n}\n";
	static const char bad[] = BASE "resolver {\n\tcache_min_ttl 2h\n"
	    "\tcache_max_ttl 1h\n\tcache_entries 0\n\tserve_stale 8d\n"
	    "\tauto_trust_anchor on\n\tcache_max_ttl 3h\n}\n";
	struct config *cfg = NULL;
	char *text = NULL, *path, *anchor, *conf;
	int n;

	path = write_file("dns-default.conf", BASE, strlen(BASE));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("dns-default.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	assert_null(cfg->dns_cache_file);          /* STATE_DIR/dns.cache */
	assert_int_equal(cfg->dns_cache_min_ttl_ms, 60 * 1000u);
	assert_int_equal(cfg->dns_cache_max_ttl_ms, 24 * 3600 * 1000u);
	assert_int_equal(cfg->dns_serve_stale_ms, 24 * 3600 * 1000u);
	assert_int_equal(cfg->dns_cache_entries, 10000);
	assert_false(cfg->dns_auto_trust_anchor);
	config_free(cfg);

	path = write_file("dns-good.conf", good, strlen(good));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("dns-good.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	assert_string_equal(cfg->dns_cache_file, "/srv/qf/dns.cache");
	assert_int_equal(cfg->dns_cache_min_ttl_ms, 0);
	assert_int_equal(cfg->dns_cache_max_ttl_ms, 2 * 3600 * 1000u);
	assert_int_equal(cfg->dns_serve_stale_ms, 0);
	assert_int_equal(cfg->dns_cache_entries, 500);
	config_free(cfg);

	/* auto_trust_anchor with an anchor to start from. */
	anchor = write_file("dns-root.key", ". IN DS 20326 8 2 E06D\n", 23);
	assert_true(asprintf(&conf, BASE "resolver {\n\ttrust_anchor_file %s\n"
	    "\tauto_trust_anchor on\n}\n", anchor) > 0);
	path = write_file("dns-autr.conf", conf, strlen(conf));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("dns-autr.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	free(conf);
	free(anchor);
	assert_true(cfg->dns_auto_trust_anchor);
	assert_true(cfg->dnssec);
	config_free(cfg);

	path = write_file("dns-bad.conf", bad, strlen(bad));
	n = load(path, &cfg, &text);
	assert_null(cfg);
	assert_int_equal(n, 5);
	assert_non_null(strstr(text, ":6: 'cache_entries' 0 out of range"));
	assert_non_null(strstr(text, ":7: 'serve_stale' 8d out of range"));
	assert_non_null(strstr(text, ":9: duplicate 'cache_max_ttl' (first at line 5)"));
	assert_non_null(strstr(text, ":4: cache_min_ttl is above cache_max_ttl"));
	assert_non_null(strstr(text, ":8: auto_trust_anchor on needs a trust_anchor_file"));
	free(text);
	free(path);
}

/* Connection limits: "connections" in each listener block (defaults by kind) and
 * limits { connections; connections_per_address }: defaults, values, bounds, errors. */
static void
test_connection_limits(void **state)
{
	static const char defaults[] = BASE "listener local { }\n"
	    "listener direct_tls {\n\tport 5299\n}\n";
	static const char good[] = "listener internet {\n\tconnections 20\n}\n"
	    "domain example.net { }\n"
	    "listener local {\n\tconnections 1\n}\n"
	    "listener direct_tls {\n\tport 5299\n\tconnections 1000000\n}\n"
	    "limits {\n\tconnections 30\n\tconnections_per_address 10\n}\n";
	static const struct want_err bad_want[] = {
		{ 5, "'connections' 0 out of range (1..1000000)" },
		{ 6, "duplicate 'connections' (first at line 5)" },
		{ 9, "'connections' 1000001 out of range (1..1000000)" },
		{ 13, "invalid number '12k' for 'connections'" },
		{ 14, "missing argument for 'connections'" },
		{ 15, "unknown keyword 'connections_per_address' in listener block" },
		{ 18, "'connections_per_address' 0 out of range (1..1000000)" },
		{ 19, "duplicate 'connections_per_address' (first at line 18)" },
		{ 20, "invalid number '-3' for 'connections'" },
		{ 21, "unknown keyword 'connections_per_source' in limits block" },
	};
	static const char bad[] = BASE
	    "listener local {\n"                   /* 3 */
	    "\tport 5301\n"                        /* 4: not the direct_tls default */
	    "\tconnections 0\n"                    /* 5 */
	    "\tconnections 5\n"                    /* 6: a duplicate even after a refused one */
	    "}\n"
	    "listener direct_tls {\n"              /* 8 */
	    "\tconnections 1000001\n"              /* 9 */
	    "}\n"
	    "listener internet {\n"                /* 11 */
	    "\tport 5300\n"
	    "\tconnections 12k\n"                  /* 13: counts take no suffix */
	    "\tconnections\n"                      /* 14 */
	    "\tconnections_per_address 4\n"        /* 15: a limits keyword, not a listener one */
	    "}\n"
	    "limits {\n"                           /* 17 */
	    "\tconnections_per_address 0\n"        /* 18 */
	    "\tconnections_per_address 4\n"        /* 19 */
	    "\tconnections -3\n"                   /* 20 */
	    "\tconnections_per_source 4\n"         /* 21 */
	    "}\n";
	struct config *cfg = NULL;
	char *text = NULL, *path;
	int n;

	path = write_file("limits-default.conf", defaults, strlen(defaults));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("limits-default.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	assert_int_equal(cfg->n_listeners, 3);
	assert_int_equal(cfg->listeners[0].kind, CFG_LISTEN_INTERNET);
	assert_int_equal(cfg->listeners[0].max_connections, 4096);
	assert_int_equal(cfg->listeners[1].kind, CFG_LISTEN_LOCAL);
	assert_int_equal(cfg->listeners[1].max_connections, 1024);
	assert_int_equal(cfg->listeners[2].kind, CFG_LISTEN_DIRECT_TLS);
	assert_int_equal(cfg->listeners[2].max_connections, 4096);
	assert_int_equal(cfg->max_connections, 4096);
	assert_int_equal(cfg->max_connections_per_address, 32);
	config_free(cfg);

	path = write_file("limits-good.conf", good, strlen(good));
	n = load(path, &cfg, &text);
	if (n != 0)
		fail_msg("limits-good.conf: %d errors:\n%s", n, text);
	free(text);
	free(path);
	assert_int_equal(cfg->listeners[0].max_connections, 20);
	assert_int_equal(cfg->listeners[1].max_connections, 1);
	assert_int_equal(cfg->listeners[2].max_connections, 1000000);
	assert_int_equal(cfg->max_connections, 30);
	assert_int_equal(cfg->max_connections_per_address, 10);
	config_free(cfg);

	path = write_file("limits-bad.conf", bad, strlen(bad));
	expect_bad("limits-bad", path, bad_want, sizeof(bad_want) / sizeof(bad_want[0]));
	free(path);
}

/* limits { stanza_memory }: bounds, the relation to stanza_size, the derived default. */
static void
test_stanza_memory(void **state)
{
	static const struct {
		const char *limits;   /* body of the limits block */
		size_t want;          /* 0: the errors below */
		struct want_err errs[3];
	} cases[] = {
		{ "\tstanza_memory 16k\n\tstanza_size 16k\n", 16 * 1024, { { 0, NULL } } },
		{ "\tstanza_memory 64m\n", 64 * 1024 * 1024, { { 0, NULL } } },
		{ "\tstanza_memory 1000000\n", 1000000, { { 0, NULL } } },
		/* not set: follows a large stanza_size, keeps 512k for a small one */
		{ "\tstanza_size 1m\n", 2 * 1024 * 1024, { { 0, NULL } } },
		{ "\tstanza_size 300k\n", 600 * 1024, { { 0, NULL } } },
		{ "\tstanza_size 64k\n", 512 * 1024, { { 0, NULL } } },
		{ "\tdepth 8\n", 512 * 1024, { { 0, NULL } } },
		{ "\tstanza_memory 15k\n", 0,
		    { { 4, "'stanza_memory' 15k out of range (16384..67108864 bytes)" } } },
		{ "\tstanza_memory 65m\n", 0, { { 4, "'stanza_memory' 65m out of range" } } },
		{ "\tstanza_memory lots\n", 0, { { 4, "invalid size 'lots' for 'stanza_memory'" } } },
		{ "\tstanza_size 1m\n\tstanza_memory 512k\n", 0,
		    { { 5, "stanza_memory 524288 is below stanza_size 1048576" } } },
		{ "\tstanza_memory 1m\n\tstanza_memory 2m\n", 0,
		    { { 5, "duplicate 'stanza_memory' (first at line 4)" } } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *conf, *path, name[64], *text = NULL;
		struct config *cfg = NULL;
		int n;

		assert_true(asprintf(&conf, BASE "limits {\n%s}\n", cases[i].limits) > 0);
		snprintf(name, sizeof(name), "stanza-memory-%zu.conf", i);
		path = write_file(name, conf, strlen(conf));
		if (cases[i].want == 0) {
			expect_bad(name, path, cases[i].errs, count_want(cases[i].errs));
		} else {
			n = load(path, &cfg, &text);
			if (n != 0)
				fail_msg("%s: %d errors:\n%s", name, n, text);
			assert_int_equal(cfg->max_stanza_memory, cases[i].want);
			config_free(cfg);
			free(text);
		}
		free(path);
		free(conf);
	}
}

static void
test_bad_table(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char *conf = subst_dir(c->conf), *path, name[64];
		int nwant = count_want(c->errs);

		/* files cert-without-key and key-without-cert refer to */
		free(write_file("cert.pem", "x\n", 2));
		free(write_file("key.pem", "x\n", 2));
		snprintf(name, sizeof(name), "%s.conf", c->name);
		path = write_file(name, conf, strlen(conf));
		expect_bad(c->name, path, c->errs, nwant);
		free(conf);
		free(path);
	}
}

/* The parser reports every error of a file and goes on after each one. */
static void
test_many_errors(void **state)
{
	static const struct want_err want[] = {
		{ 3, "invalid log_level 'chatty'" },
		{ 5, "'port' 0 out of range" },
		{ 6, "unknown keyword 'adress' in listener block" },
		{ 9, "local listener must be a loopback address" },
		{ 12, "cannot read certificate 'tests/data/config/does-not-exist.pem'" },
		{ 13, "cannot read key 'tests/data/config/does-not-exist.key'" },
		{ 16, "invalid time '10y' for 'idle'" },
		{ 19, "'stanza_size' 64m out of range" },
		{ 21, "dialback and sasl_external cannot both be off" },
		{ 25, "'}' without an open block" },
	};

	expect_bad("bad-multi", "tests/data/config/bad-multi.conf", want,
	    sizeof(want) / sizeof(want[0]));
}

static void
test_overlong_line(void **state)
{
	static const struct want_err want[] = { { 3, "line too long (at most 4096 bytes)" } };
	size_t len = strlen(BASE) + 5000;
	char *data = malloc(len + 64), *path;

	if (data == NULL)
		abort();
	strcpy(data, BASE);
	memset(data + strlen(BASE), '#', 5000);
	strcpy(data + len, "\nlog_level debug\n");
	path = write_file("long.conf", data, strlen(data));
	expect_bad("overlong", path, want, 1);
	free(path);

	/* exactly 4096 bytes is fine */
	memset(data + strlen(BASE), '#', 4096);
	strcpy(data + strlen(BASE) + 4096, "\n");
	path = write_file("long-ok.conf", data, strlen(data));
	{
		struct config *cfg = NULL;
		char *text = NULL;
		assert_int_equal(load(path, &cfg, &text), 0);
		assert_non_null(cfg);
		config_free(cfg);
		free(text);
	}
	free(path);
	free(data);
}

static void
test_nul_byte(void **state)
{
	static const struct want_err want[] = { { 3, "NUL byte" }, { 0, "no listener configured" } };
	static const char data[] = "domain example.net { }\n# ok\nlistener internet { }\0\n";
	char *path = write_file("nul.conf", data, sizeof(data) - 1);

	expect_bad("nul", path, want, 2);
	free(path);
}

static void
test_file_limits(void **state)
{
	static const struct want_err too_big[] = { { 0, "file too large" } };
	static const struct want_err missing[] = { { 0, "cannot open: No such file or directory" } };
	static const struct want_err dir[] = { { 0, "cannot read: Is a directory" } };
	static const char head[] = "listener internet {\n}\ndomain example.com { }\n";
	size_t len = 16 * 1024 * 1024 + 1;
	char *data = malloc(len), *path, *text = NULL;
	struct config *cfg = NULL;

	assert_non_null(data);
	memset(data, '\n', len);
	path = write_file("big.conf", data, len);
	expect_bad("big", path, too_big, 1);
	free(path);
	/* 2 MiB (10,000 domain blocks take about 1.5 MiB) is within the bound */
	memcpy(data, head, sizeof(head) - 1);
	path = write_file("large.conf", data, 2 * 1024 * 1024);
	assert_int_equal(load(path, &cfg, &text), 0);
	assert_non_null(cfg);
	config_free(cfg);
	free(text);
	free(path);
	free(data);

	path = subst_dir("@DIR@/no-such.conf");
	expect_bad("missing", path, missing, 1);
	free(path);
	expect_bad("dir", tmpdir, dir, 1);
}

/* errs may be NULL: errors are still counted; out may be NULL for a check only. */
static void
test_null_streams(void **state)
{
	struct config *cfg = (struct config *)1;

	assert_int_equal(config_load("tests/data/config/bad-multi.conf", NULL, &cfg), 10);
	assert_null(cfg);
	assert_int_equal(config_load("etc/quickfed.conf", NULL, NULL), 0);
	assert_null(config_domain(NULL, "example.net"));
	assert_false(config_is_local(NULL, "example.net"));
	assert_null(config_peer(NULL, "example.net"));
	config_free(NULL);
}

static int
cleanup_dir(void)
{
	char *cmd;
	int rc;

	if (asprintf(&cmd, "rm -rf '%s'", tmpdir) < 0)
		return -1;
	rc = system(cmd);
	free(cmd);
	return rc;
}

/* ---- every keyword is documented in man/quickfed.conf.5 ---- */

#define MAN_CONF   "man/quickfed.conf.5"
#define MAX_DOC    256

/* What the page documents: each ".TP" item's keyword (the first word after .B) under the
 * block of the ".SS" it is in ("" for "Top-level statements"), and every .SS block. */
struct man_doc {
	char block[MAX_DOC][64];
	char kw[MAX_DOC][64];
	int  n;
	char sections[32][64];
	int  nsections;
	int  missing;                         /* keywords of the tables not on the page */
	int  known;                           /* page items that are keywords of the tables */
};

static void
first_word(const char *s, char *out, size_t size)
{
	size_t n = 0;

	while (*s == ' ' || *s == '"')
		s++;
	while (*s != '\0' && *s != ' ' && *s != '"' && *s != '\\' && n + 1 < size)
		out[n++] = *s++;
	out[n] = '\0';
}

static void
man_doc_load(struct man_doc *d)
{
	char line[1024], cur[64] = "?", word[64];
	bool after_tp = false;
	FILE *f = fopen(MAN_CONF, "r");

	assert_non_null(f);
	memset(d, 0, sizeof(*d));
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, ".SS ", 4) == 0) {
			first_word(line + 4, word, sizeof(word));
			snprintf(cur, sizeof(cur), "%s", strcmp(word, "Top-level") == 0 ? "" : word);
			assert_true(d->nsections < 32);
			snprintf(d->sections[d->nsections++], sizeof(d->sections[0]), "%s", cur);
		} else if (strncmp(line, ".SH ", 4) == 0) {
			snprintf(cur, sizeof(cur), "?");
		} else if (after_tp && strncmp(line, ".B ", 3) == 0) {
			first_word(line + 3, word, sizeof(word));
			assert_true(d->n < MAX_DOC);
			snprintf(d->block[d->n], sizeof(d->block[0]), "%s", cur);
			snprintf(d->kw[d->n], sizeof(d->kw[0]), "%s", word);
			d->n++;
		}
		after_tp = strcmp(line, ".TP") == 0;
	}
	fclose(f);
}

static void
check_documented(const char *block, const char *kw, void *arg)
{
	struct man_doc *d = arg;

	for (int i = 0; i < d->n; i++)
		if (strcmp(d->block[i], block) == 0 && strcmp(d->kw[i], kw) == 0) {
			d->known++;
			return;
		}
	print_error("%s: keyword '%s' of %s%s is not documented (.TP/.B %s under its .SS)\n",
	    MAN_CONF, kw, block[0] != '\0' ? "block " : "the top level", block, kw);
	d->missing++;
}

/* Every keyword of core/config.c's tables is a .TP item of quickfed.conf.5 in its
 * block's section, and every item there is a keyword (no stale documentation). */
static void
test_keywords_documented(void **state)
{
	struct man_doc d;

	(void)state;
	man_doc_load(&d);
	assert_true(d.nsections >= 10);
	config_keywords(check_documented, &d);
	assert_int_equal(d.missing, 0);
	if (d.known != d.n) {
		print_error("%s: %d item(s) are not keywords of core/config.c\n", MAN_CONF,
		    d.n - d.known);
		for (int i = 0; i < d.n; i++)
			print_error("  [%s] %s\n", d.block[i], d.kw[i]);
	}
	assert_int_equal(d.known, d.n);
}

/* listener metrics: its defaults (127.0.0.1 port 5280, 4 clients), ::1 allowed, and
 * show config names its kind. */
static void
test_metrics_listener(void **state)
{
	static const char conf[] = "listener internet { }\nlistener metrics {\n}\n"
	    "listener metrics {\n\taddress ::1\n\tport 9100\n\tconnections 64\n}\n"
	    "domain example.net { }\n";
	struct config *cfg = NULL;
	char *text = NULL, *path = write_file("metrics.conf", conf, sizeof(conf) - 1);
	int n = load(path, &cfg, &text);

	if (n != 0)
		fail_msg("metrics.conf: %d errors:\n%s", n, text);
	free(text);
	assert_int_equal(cfg->n_listeners, 3);
	assert_int_equal(cfg->listeners[1].kind, CFG_LISTEN_METRICS);
	assert_string_equal(cfg->listeners[1].address, "127.0.0.1");
	assert_int_equal(cfg->listeners[1].port, 5280);
	assert_int_equal(cfg->listeners[1].max_connections, 4);
	assert_string_equal(cfg->listeners[2].address, "::1");
	assert_int_equal(cfg->listeners[2].max_connections, 64);
	text = show_config(cfg, 1 << 20, 16384);
	assert_line(text, "listener.1=metrics");
	assert_line(text, "listener.1.port=5280");
	free(text);
	config_free(cfg);
	free(path);
}

/* Many domains and peers, looked up through the hash index config_load builds: each is
 * found in any case, as the same entry a walk of the list finds; near misses are not. */
#define INDEX_N 1500
static const struct cfg_domain *
walk_domain(const struct config *cfg, const char *name)
{
	for (const struct cfg_domain *d = cfg->domains; d != NULL; d = d->next)
		if (strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

static char *
index_conf(size_t ndom, size_t npeer, const char *extra)
{
	struct buf b;
	char *out;

	buf_init(&b, 1 << 22);
	assert_int_equal(buf_puts(&b, "listener internet { }\n"), 0);
	for (size_t i = 0; i < ndom; i++)
		assert_int_equal(buf_printf(&b, "domain d%zu.Example.NET { }\n", i), 0);
	for (size_t i = 0; i < npeer; i++)
		assert_int_equal(buf_printf(&b, "peer p%zu.example.org {\n\taddress 192.0.2.1\n\tport %zu\n}\n", i,
		    1000 + i), 0);
	assert_int_equal(buf_puts(&b, extra), 0);
	out = strdup(b.data);
	assert_non_null(out);
	buf_free(&b);
	return out;
}

static void
test_lookup_index(void **state)
{
	char *conf = index_conf(INDEX_N, INDEX_N, "");
	char *path = write_file("index.conf", conf, strlen(conf)), *text = NULL;
	struct config *cfg = NULL, hand;
	struct cfg_domain hd = { .name = "hand.example" };
	char name[64];
	int n = load(path, &cfg, &text);

	(void)state;
	if (n != 0)
		fail_msg("index.conf: %d errors:\n%s", n, text);
	free(text);
	assert_non_null(cfg->domain_index.slots);
	for (size_t i = 0; i < INDEX_N; i++) {
		const struct cfg_domain *d;
		const struct cfg_peer *p;

		snprintf(name, sizeof(name), "D%zu.example.net", i);
		d = config_domain(cfg, name);
		assert_non_null(d);
		assert_ptr_equal(d, walk_domain(cfg, name));
		assert_true(config_is_local(cfg, name));
		snprintf(name, sizeof(name), "P%zu.EXAMPLE.org", i);
		p = config_peer(cfg, name);
		assert_non_null(p);
		assert_int_equal(p->port, 1000 + i);
		assert_null(config_domain(cfg, name));   /* a peer is not local */
		snprintf(name, sizeof(name), "d%zu.example.ne", i);
		assert_false(config_is_local(cfg, name));
		snprintf(name, sizeof(name), "xd%zu.example.net", i);
		assert_false(config_is_local(cfg, name));
	}
	assert_null(config_peer(cfg, "d0.example.net"));
	assert_false(config_is_local(cfg, ""));
	assert_false(config_is_local(cfg, NULL));
	config_free(cfg);

	/* a struct config not made by config_load has no index: the list is walked */
	memset(&hand, 0, sizeof(hand));
	hand.domains = &hd;
	assert_ptr_equal(config_domain(&hand, "HAND.example"), &hd);
	assert_null(config_domain(&hand, "other.example"));
	assert_null(config_peer(&hand, "hand.example"));
	free(conf);
	free(path);
}

/* A reload reads the file into a new config with its own index; the replaced one keeps
 * answering from its own (streams opened under it hold it) until released. */
static void
test_lookup_index_reload(void **state)
{
	char *conf = index_conf(40, 10, ""), *text = NULL, *path;
	struct config *old = NULL, *next = NULL;
	int n;

	(void)state;
	path = write_file("reload-index.conf", conf, strlen(conf));
	free(conf);
	n = load(path, &old, &text);
	if (n != 0)
		fail_msg("reload-index.conf: %d errors:\n%s", n, text);
	free(text);
	text = NULL;
	config_hold(old);              /* a stream opened under it */
	/* the new file drops d0 and p0, adds new.example and a peer */
	conf = index_conf(0, 0, "domain NEW.example { }\ndomain d1.example.net { }\n"
	    "peer added.example { }\n");
	free(write_file("reload-index.conf", conf, strlen(conf)));
	free(conf);
	n = load(path, &next, &text);
	if (n != 0)
		fail_msg("reload-index.conf (2): %d errors:\n%s", n, text);
	free(text);
	config_release(old);           /* the loader's reference: the stream's remains */
	assert_true(config_is_local(next, "new.EXAMPLE"));
	assert_true(config_is_local(next, "D1.example.net"));
	assert_false(config_is_local(next, "d0.example.net"));
	assert_non_null(config_peer(next, "Added.example"));
	assert_null(config_peer(next, "p0.example.org"));
	assert_true(config_is_local(old, "d0.example.NET"));
	assert_true(config_is_local(old, "d39.example.net"));
	assert_false(config_is_local(old, "new.example"));
	assert_non_null(config_peer(old, "p9.example.org"));
	assert_null(config_peer(old, "added.example"));
	config_release(old);           /* the stream's: freed */
	config_release(next);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics_listener),
		cmocka_unit_test(test_shipped_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_lookup_index),
		cmocka_unit_test(test_lookup_index_reload),
		cmocka_unit_test(test_show_config_defaults),
		cmocka_unit_test(test_every_option),
		cmocka_unit_test(test_tls_block),
		cmocka_unit_test(test_resolver_cache_block),
		cmocka_unit_test(test_connection_limits),
		cmocka_unit_test(test_stanza_memory),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_overlong_line),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_file_limits),
		cmocka_unit_test(test_null_streams),
		cmocka_unit_test(test_keywords_documented),
	};
	const char *top = getenv("QF_TOP");
	int rc;

	if (top != NULL && chdir(top) == -1) {
		perror(top);
		return 1;
	}
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	cleanup_dir();
	return rc;
}
