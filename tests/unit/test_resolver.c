/* tests/unit/test_resolver.c - real asynchronous lookups through dns/resolver.c.
 * SPDX-License-Identifier: ISC
 * Starts nsd on a free 127.0.0.1 port serving tests/data/dns/example.zone, points the
 * resolver at it as its forwarder and runs a libev loop until each callback fires (a guard
 * timer fails the test instead of hanging). Covers SRV ordering, xmpps/xmpp merging, the
 * A fallback, NOSERVICE, NOTFOUND, TIMEOUT (a UDP socket that never answers), cancel and
 * resolver_free with queries in flight, the answer cache (a second resolver pointed at
 * the black hole answers from the file the first one wrote, serve-stale, negative
 * answers, bogus never cached, DNSSEC status kept and never upgraded), query coalescing
 * and "show dns"/"flush dns" on the status socket. Skips the nsd cases when nsd is not
 * installed. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/atomicfile.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/status.h"
#include "dns/resolver.h"

#define NSD_READY_TRIES  100   /* x 50 ms */
#define GUARD_SECONDS    4.0

struct nsd_fixture {
	bool   available;          /* nsd binary found and started */
	pid_t  pid;
	char   dir[64];
	uint16_t port;
	char   forwarder[64];      /* "127.0.0.1@PORT" */
	int    blackhole_fd;       /* bound UDP socket that never answers */
	char   blackhole[64];
	bool   dnssec;             /* sec. and bad. zones signed, anchors in ta_file */
	char   ta_file[128];
};

static struct nsd_fixture nsd = { .pid = -1, .blackhole_fd = -1 };

/* What a callback saw. */
struct outcome {
	int      calls;
	enum resolve_status status;
	char     why[256];
	size_t   n;
	struct resolve_target t[64];
	bool     stale;
	struct resolver *free_in_cb;   /* resolver_free() this from inside the callback */
};

static bool in_lookup;                 /* set while resolver_lookup() runs */

static const char *
find_nsd(void)
{
	static const char *const cands[] = { "/usr/sbin/nsd", "/usr/local/sbin/nsd",
	    "/usr/bin/nsd" };

	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	return NULL;
}

/* A port free for both UDP and TCP on 127.0.0.1, chosen by the kernel. */
static uint16_t
free_port(void)
{
	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sin);
		int u = socket(AF_INET, SOCK_DGRAM, 0), t;
		uint16_t port;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (u == -1 || bind(u, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    getsockname(u, (struct sockaddr *)&sin, &sl) == -1) {
			if (u != -1)
				close(u);
			continue;
		}
		port = ntohs(sin.sin_port);
		t = socket(AF_INET, SOCK_STREAM, 0);
		if (t != -1 && bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(t);
			close(u);
			if (port >= 1024)
				return port;
			continue;
		}
		if (t != -1)
			close(t);
		close(u);
	}
	return 0;
}

/* Send "example. SOA" to nsd and wait up to wait_ms for a NOERROR answer. */
static bool
nsd_answers(uint16_t port, int wait_ms)
{
	static const unsigned char q[] = {
		0x51, 0x46, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0x00, 0x06, 0x00, 0x01
	};
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	unsigned char ans[512];
	struct pollfd pfd;
	bool ok = false;
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return false;
	if (sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, sizeof(sin)) == (ssize_t)sizeof(q)) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, wait_ms) == 1) {
			ssize_t n = recv(fd, ans, sizeof(ans), 0);

			ok = n >= 12 && ans[0] == 0x51 && ans[1] == 0x46 && (ans[2] & 0x80) &&
			    (ans[3] & 0x0f) == 0;
		}
	}
	close(fd);
	return ok;
}

static void
nsd_dump_log(void)
{
	char path[128], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/nsd.log", nsd.dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "nsd.log: %s", line);
	fclose(f);
}

static void
nsd_stop(void)
{
	int st;

	if (nsd.pid <= 0)
		return;
	kill(nsd.pid, SIGTERM);
	for (int i = 0; i < 100; i++) {          /* up to 2 s */
		if (waitpid(nsd.pid, &st, WNOHANG) == nsd.pid) {
			nsd.pid = -1;
			return;
		}
		usleep(20000);
	}
	kill(nsd.pid, SIGKILL);
	waitpid(nsd.pid, &st, 0);
	nsd.pid = -1;
}

static void
rm_dir(void)
{
	char path[400];
	struct dirent *de;
	DIR *d;

	if (nsd.dir[0] == '\0')
		return;
	if ((d = opendir(nsd.dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", nsd.dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	if (rmdir(nsd.dir) == -1)
		fprintf(stderr, "test_resolver: leaving %s: %s\n", nsd.dir, strerror(errno));
	nsd.dir[0] = '\0';
}

/* Run argv in nsd.dir with output discarded; returns true on exit status 0. */
static bool
run_tool(char *const argv[])
{
	pid_t pid;
	int st, fd;

	if ((pid = fork()) == -1)
		return false;
	if (pid == 0) {
		if (chdir(nsd.dir) == -1)
			_exit(126);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return false;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The base name "K<zone>+alg+id" of the key ldns-keygen made for zone in nsd.dir. */
static bool
find_key(const char *zone, char *out, size_t outsz)
{
	char prefix[64];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(prefix, sizeof(prefix), "K%s+", zone);
	if ((d = opendir(nsd.dir)) == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && len > 4 &&
		    strcmp(de->d_name + len - 4, ".key") == 0 && len - 4 < outsz) {
			memcpy(out, de->d_name, len - 4);
			out[len - 4] = '\0';
			found = true;
			break;
		}
	}
	closedir(d);
	return found;
}

/* Append a file's contents to the trust anchor file. */
static bool
append_file(const char *from, FILE *to)
{
	char buf[1024];
	size_t n;
	FILE *f;

	if ((f = fopen(from, "r")) == NULL)
		return false;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, to);
	fclose(f);
	return true;
}

/* Change the TLSA data of owner in the signed zone file path (its last hex digit), so
 * that RRset no longer matches its signature: validates as bogus. */
static bool
corrupt_tlsa(const char *path, const char *owner)
{
	static char text[1 << 20];
	size_t n, olen = strlen(owner);
	bool done = false;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (char *line = text; line != NULL && *line != '\0'; ) {
		char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

		if (len > olen && strncmp(line, owner, olen) == 0 &&
		    memmem(line, len, "\tTLSA\t", 6) != NULL && len > 0) {
			char *c = line + len - 1;

			while (c > line && (*c == ' ' || *c == '\t' || *c == '\r'))
				c--;
			*c = *c == '0' ? '1' : '0';
			done = true;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	if (!done || (f = fopen(path, "w")) == NULL)
		return false;
	fwrite(text, 1, n, f);
	return fclose(f) == 0;
}

/* Sign sec. (valid) and bad. (expired signatures) with fresh keys; both keys become
 * trust anchors. Returns false when ldnsutils is missing or anything fails. */
static bool
sign_zones(const char *top)
{
	static const char *const zones[] = { "sec.", "bad." };
	char keygen[] = "/usr/bin/ldns-keygen", signzone[] = "/usr/bin/ldns-signzone";
	FILE *ta;

	if (access(keygen, X_OK) == -1 || access(signzone, X_OK) == -1) {
		fprintf(stderr, "SKIP ldnsutils not installed: the DNSSEC cases are skipped\n");
		return false;
	}
	snprintf(nsd.ta_file, sizeof(nsd.ta_file), "%s/anchors.key", nsd.dir);
	if ((ta = fopen(nsd.ta_file, "w")) == NULL)
		return false;
	for (size_t i = 0; i < 2; i++) {
		char zone[16], key[128], keyfile[400], in[512], out[400];
		char alg[] = "-a", algname[] = "ECDSAP256SHA256", ksk[] = "-k";
		char opt_o[] = "-o", opt_f[] = "-f", opt_e[] = "-e", opt_i[] = "-i";
		char exp_past[] = "20200101000000", inc_past[] = "20190101000000";
		bool expired = strcmp(zones[i], "bad.") == 0;

		snprintf(zone, sizeof(zone), "%s", zones[i]);
		char *kg[] = { keygen, alg, algname, ksk, zone, NULL };
		if (!run_tool(kg) || !find_key(zone, key, sizeof(key)))
			goto fail;
		snprintf(in, sizeof(in), "%s/tests/data/dns/%szone", top, zone);
		snprintf(out, sizeof(out), "%s/%szone.signed", nsd.dir, zone);
		char *sz_ok[] = { signzone, opt_o, zone, opt_f, out, in, key, NULL };
		char *sz_exp[] = { signzone, opt_o, zone, opt_f, out, opt_e, exp_past, opt_i,
		    inc_past, in, key, NULL };
		if (!run_tool(expired ? sz_exp : sz_ok))
			goto fail;
		if (!expired && !corrupt_tlsa(out, "_5269._tcp.xmpp.dbog.sec."))
			goto fail;
		snprintf(keyfile, sizeof(keyfile), "%s/%s.key", nsd.dir, key);
		if (!append_file(keyfile, ta))
			goto fail;
	}
	fclose(ta);
	return true;
fail:
	fprintf(stderr, "test_resolver: signing the test zones failed\n");
	fclose(ta);
	return false;
}

static int
group_setup(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	char conf[128], zone[512], top[400];
	const char *bin, *qf_top;
	FILE *f;

	log_set_level(getenv("QF_TEST_DEBUG") ? LOG_DEBUG : LOG_WARN);

	/* The black hole: bound, never read, so queries to it simply time out. */
	nsd.blackhole_fd = socket(AF_INET, SOCK_DGRAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (nsd.blackhole_fd == -1 ||
	    bind(nsd.blackhole_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(nsd.blackhole_fd, (struct sockaddr *)&sin, &sl) == -1) {
		fprintf(stderr, "test_resolver: blackhole socket: %s\n", strerror(errno));
		return -1;
	}
	snprintf(nsd.blackhole, sizeof(nsd.blackhole), "127.0.0.1@%u",
	    (unsigned)ntohs(sin.sin_port));

	if ((bin = find_nsd()) == NULL) {
		fprintf(stderr, "SKIP nsd not installed: the live DNS tests are skipped\n");
		return 0;
	}
	if ((qf_top = getenv("QF_TOP")) != NULL && *qf_top != '\0')
		snprintf(top, sizeof(top), "%s", qf_top);
	else if (getcwd(top, sizeof(top)) == NULL)
		return -1;
	snprintf(zone, sizeof(zone), "%s/tests/data/dns/example.zone", top);
	if (access(zone, R_OK) == -1) {
		fprintf(stderr, "test_resolver: %s: %s (run from the repo top)\n", zone,
		    strerror(errno));
		return -1;
	}
	snprintf(nsd.dir, sizeof(nsd.dir), "/tmp/qf-nsd-XXXXXX");
	if (mkdtemp(nsd.dir) == NULL) {
		nsd.dir[0] = '\0';
		return -1;
	}
	if ((nsd.port = free_port()) == 0)
		return -1;
	nsd.dnssec = sign_zones(top);
	snprintf(nsd.forwarder, sizeof(nsd.forwarder), "127.0.0.1@%u", (unsigned)nsd.port);
	snprintf(conf, sizeof(conf), "%s/nsd.conf", nsd.dir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f,
	    "server:\n"
	    "\tip-address: 127.0.0.1\n"
	    "\tport: %u\n"
	    "\tdo-ip6: no\n"
	    "\tusername: \"\"\n"
	    "\tchroot: \"\"\n"
	    "\tzonesdir: \"%s\"\n"
	    "\tdatabase: \"\"\n"
	    "\tzonelistfile: \"%s/zone.list\"\n"
	    "\txfrdfile: \"%s/xfrd.state\"\n"
	    "\txfrdir: \"%s\"\n"
	    "\tpidfile: \"%s/nsd.pid\"\n"
	    "\tlogfile: \"%s/nsd.log\"\n"
	    "\tserver-count: 1\n"
	    "\tverbosity: 1\n"
	    "\thide-version: yes\n"
	    "remote-control:\n"
	    "\tcontrol-enable: no\n"
	    "zone:\n"
	    "\tname: \"example.\"\n"
	    "\tzonefile: \"%s\"\n",
	    (unsigned)nsd.port, nsd.dir, nsd.dir, nsd.dir, nsd.dir, nsd.dir, nsd.dir, zone);
	if (nsd.dnssec)
		fprintf(f,
		    "zone:\n\tname: \"sec.\"\n\tzonefile: \"%s/sec.zone.signed\"\n"
		    "zone:\n\tname: \"bad.\"\n\tzonefile: \"%s/bad.zone.signed\"\n",
		    nsd.dir, nsd.dir);
	fclose(f);

	nsd.pid = fork();
	if (nsd.pid == -1)
		return -1;
	if (nsd.pid == 0) {
		char out[128];
		int fd;

		/* If this test dies without its teardown, nsd goes with it. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		snprintf(out, sizeof(out), "%s/nsd.out", nsd.dir);
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(bin, "nsd", "-d", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < NSD_READY_TRIES; i++) {
		int st;

		if (waitpid(nsd.pid, &st, WNOHANG) == nsd.pid) {
			fprintf(stderr, "test_resolver: nsd exited early (status %d)\n", st);
			nsd.pid = -1;
			nsd_dump_log();
			rm_dir();
			return -1;
		}
		if (nsd_answers(nsd.port, 50)) {
			nsd.available = true;
			return 0;
		}
		usleep(10000);
	}
	fprintf(stderr, "test_resolver: nsd did not answer on port %u\n", (unsigned)nsd.port);
	nsd_dump_log();
	nsd_stop();
	rm_dir();
	return -1;
}

static int
group_teardown(void **state)
{
	nsd_stop();
	rm_dir();
	if (nsd.blackhole_fd != -1)
		close(nsd.blackhole_fd);
	nsd.blackhole_fd = -1;
	return 0;
}

static void
test_cb(void *arg, const struct resolve_result *res)
{
	struct outcome *o = arg;

	assert_false(in_lookup);        /* never from inside resolver_lookup() */
	o->calls++;
	o->status = res->status;
	snprintf(o->why, sizeof(o->why), "%s", res->why ? res->why : "");
	o->n = res->n_targets;
	o->stale = res->stale;
	assert_true(res->n_targets <= 64);
	if (res->status == RESOLVE_OK)
		assert_non_null(res->targets);
	else
		assert_int_equal(res->n_targets, 0);
	for (size_t i = 0; i < res->n_targets; i++)
		o->t[i] = res->targets[i];
	if (o->free_in_cb != NULL) {
		resolver_free(o->free_in_cb);
		o->free_in_cb = NULL;
	}
}

static struct resolve_req *
lookup(struct resolver *r, const char *domain, struct outcome *o)
{
	struct resolve_req *req;

	in_lookup = true;
	req = resolver_lookup(r, domain, test_cb, o);
	in_lookup = false;
	return req;
}

static void
guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	*(bool *)w->data = true;
}

/* Run the loop until every outcome in os[0..n) has a call or secs pass. Returns true
 * when all callbacks came. */
static bool
run_until(struct ev_loop *loop, struct outcome **os, size_t n, double secs)
{
	bool expired = false;
	ev_timer guard;

	ev_timer_init(&guard, guard_cb, secs, 0.);
	guard.data = &expired;
	ev_timer_start(loop, &guard);
	for (;;) {
		size_t done = 0;

		for (size_t i = 0; i < n; i++)
			done += os[i]->calls > 0;
		if (done == n || expired)
			break;
		ev_run(loop, EVRUN_ONCE);
	}
	ev_timer_stop(loop, &guard);
	return !expired;
}

static struct resolver *
new_resolver(struct ev_loop *loop, struct config *cfg, const char *fwd, uint32_t timeout_ms)
{
	struct resolver *r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->forwarders[0] = (char *)fwd;
	cfg->n_forwarders = 1;
	cfg->dns_timeout_ms = timeout_ms;
	r = resolver_new(loop, cfg);
	assert_non_null(r);
	return r;
}

static void
assert_target_sec(const struct resolve_target *t, const char *host, const char *ip,
    uint16_t port, bool direct_tls, enum dns_security sec)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a;
	uint16_t p;

	assert_string_equal(t->host, host);
	assert_int_equal(t->port, port);
	assert_int_equal(t->direct_tls, direct_tls);
	assert_int_equal(t->security, sec);
	if (t->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;

		assert_int_equal(t->addrlen, sizeof(*s6));
		a = &s6->sin6_addr;
		p = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;

		assert_int_equal(t->addr.ss_family, AF_INET);
		assert_int_equal(t->addrlen, sizeof(*s4));
		a = &s4->sin_addr;
		p = ntohs(s4->sin_port);
	}
	assert_non_null(inet_ntop(t->addr.ss_family, a, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(p, port);
}

/* Unsigned zone or no trust anchor: insecure. */
static void
assert_target(const struct resolve_target *t, const char *host, const char *ip,
    uint16_t port, bool direct_tls)
{
	assert_target_sec(t, host, ip, port, direct_tls, DNS_INSECURE);
}

#define NEED_NSD() do { if (!nsd.available) skip(); } while (0)
#define NEED_DNSSEC() do { if (!nsd.available || !nsd.dnssec) skip(); } while (0)

/* One lookup on a fresh resolver against nsd, validating when dnssec is set. */
static void
resolve_one_cfg(const char *domain, struct outcome *o, bool dnssec)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct config cfg;
	struct resolver *r;
	struct outcome *os[1] = { o };

	memset(&cfg, 0, sizeof(cfg));
	cfg.forwarders[0] = nsd.forwarder;
	cfg.n_forwarders = 1;
	cfg.dns_timeout_ms = 3000;
	cfg.dnssec = dnssec;
	cfg.trust_anchor_file = dnssec ? nsd.ta_file : NULL;
	r = resolver_new(loop, &cfg);
	assert_non_null(r);

	memset(o, 0, sizeof(*o));
	assert_non_null(lookup(r, domain, o));
	assert_int_equal(o->calls, 0);
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(o->calls, 1);
	if (dnssec) {
		struct resolver_stats st;

		resolver_get_stats(r, &st);
		assert_int_equal(st.bogus, o->status == RESOLVE_BOGUS);
	}
	resolver_free(r);
	ev_loop_destroy(loop);
}

static void
resolve_one(const char *domain, struct outcome *o)
{
	resolve_one_cfg(domain, o, false);
}

static void
test_srv_priority_order(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("a.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 3);
	assert_target(&o.t[0], "xmpp.a.example", "::1", 5269, false);
	assert_target(&o.t[1], "xmpp.a.example", "127.0.1.1", 5269, false);
	assert_target(&o.t[2], "backup.a.example", "127.0.1.2", 5270, false);
}

static void
test_a_fallback(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("B.Example.", &o);          /* case and trailing dot are normalized */
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 1);
	assert_target(&o.t[0], "b.example", "127.0.2.1", 5269, false);
}

static void
test_noservice(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("c.example", &o);   /* c.example has an A record: must not be used */
	assert_int_equal(o.status, RESOLVE_NOSERVICE);
	assert_int_equal(o.n, 0);
}

static void
test_xmpps_and_xmpp_merged(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("d.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 2);
	assert_target(&o.t[0], "tls.d.example", "127.0.4.1", 5223, true);
	assert_target(&o.t[1], "plain.d.example", "127.0.4.2", 5269, false);
}

static void
test_root_in_one_service_only(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("e.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 1);
	assert_target(&o.t[0], "tls.e.example", "127.0.5.1", 5223, true);
}

static void
test_notfound(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("nx.example", &o);
	assert_int_equal(o.status, RESOLVE_NOTFOUND);
	resolve_one("f.example", &o);   /* SRV target without addresses */
	assert_int_equal(o.status, RESOLVE_NOTFOUND);
	assert_string_equal(resolve_status_str(o.status), "notfound");
}

static void
test_shared_host(void **state)
{
	struct outcome o;

	NEED_NSD();
	resolve_one("g.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 2);
	assert_target(&o.t[0], "shared.g.example", "127.0.7.1", 5269, false);
	assert_target(&o.t[1], "shared.g.example", "127.0.7.1", 5270, false);
}

static void
test_dnssec_secure(void **state)
{
	struct outcome o;

	NEED_DNSSEC();
	resolve_one_cfg("ok.sec", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 1);
	assert_target_sec(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false, DNS_SECURE);
	/* Same zone without validation: insecure. */
	resolve_one_cfg("ok.sec", &o, false);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_target(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false);
}

/* Signed SRV, unsigned addresses: the target is only as secure as the weakest answer. */
static void
test_dnssec_mixed(void **state)
{
	struct outcome o;

	NEED_DNSSEC();
	resolve_one_cfg("mixed.sec", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 2);
	assert_target(&o.t[0], "xmpp.a.example", "::1", 5269, false);
	assert_target(&o.t[1], "xmpp.a.example", "127.0.1.1", 5269, false);
	/* The other way round: unsigned SRV, signed address. */
	resolve_one_cfg("h.example", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 1);
	assert_target(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false);
}

/* TLSA rdata parsing (RFC 6698 §2.1): fields, short data, truncation of long data. */
static void
test_tlsa_parse(void **state)
{
	unsigned char rd[3 + 300];
	struct resolve_tlsa t;

	rd[0] = 3;
	rd[1] = 1;
	rd[2] = 1;
	for (size_t i = 0; i < 300; i++)
		rd[3 + i] = (unsigned char)i;
	assert_int_equal(resolver_parse_tlsa(rd, 3 + 32, &t), 0);
	assert_int_equal(t.usage, 3);
	assert_int_equal(t.selector, 1);
	assert_int_equal(t.mtype, 1);
	assert_int_equal(t.len, 32);
	assert_false(t.truncated);
	assert_memory_equal(t.data, rd + 3, 32);
	/* a full certificate: kept cut, marked, so it can never match */
	assert_int_equal(resolver_parse_tlsa(rd, sizeof(rd), &t), 0);
	assert_int_equal(t.len, RESOLVE_TLSA_DATA_MAX);
	assert_true(t.truncated);
	assert_memory_equal(t.data, rd + 3, RESOLVE_TLSA_DATA_MAX);
	/* no data at all, or not even the three fields: malformed */
	assert_int_equal(resolver_parse_tlsa(rd, 3, &t), -1);
	assert_int_equal(resolver_parse_tlsa(rd, 2, &t), -1);
	assert_int_equal(resolver_parse_tlsa(NULL, 0, &t), -1);
	assert_string_equal(resolve_tlsa_status_str(RESOLVE_TLSA_BOGUS), "bogus");
}

/* RFC 7673: secure SRV + secure address -> the TLSA RRset of _5269._tcp.TARGET comes
 * with the target; secure denial gives SECURE with no records; insecure targets are
 * never asked; a TLSA RRset failing validation marks the target BOGUS. */
static void
test_dnssec_tlsa(void **state)
{
	struct outcome o;
	static const unsigned char ee[32] = {
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
		0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23,
		0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
	const struct resolve_tlsa *t3 = NULL, *t2 = NULL;

	NEED_DNSSEC();
	resolve_one_cfg("dane.sec", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 1);
	assert_target_sec(&o.t[0], "xmpp.dane.sec", "127.0.8.2", 5269, false, DNS_SECURE);
	assert_int_equal(o.t[0].tlsa_status, RESOLVE_TLSA_SECURE);
	assert_int_equal(o.t[0].n_tlsa, 2);
	for (size_t i = 0; i < o.t[0].n_tlsa; i++) {
		if (o.t[0].tlsa[i].usage == 3)
			t3 = &o.t[0].tlsa[i];
		else if (o.t[0].tlsa[i].usage == 2)
			t2 = &o.t[0].tlsa[i];
	}
	assert_non_null(t3);
	assert_non_null(t2);
	assert_int_equal(t3->selector, 1);
	assert_int_equal(t3->mtype, 1);
	assert_int_equal(t3->len, 32);
	assert_memory_equal(t3->data, ee, 32);
	assert_int_equal(t2->selector, 0);
	assert_int_equal(t2->mtype, 2);
	assert_int_equal(t2->len, 64);
	assert_int_equal(t2->data[0], 0x00);
	assert_int_equal(t2->data[63], 0xff);

	/* no TLSA published, denial is signed: secure, no records (PKIX applies) */
	resolve_one_cfg("ok.sec", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.t[0].tlsa_status, RESOLVE_TLSA_SECURE);
	assert_int_equal(o.t[0].n_tlsa, 0);

	/* the TLSA data was changed after signing: bogus, but the target is handed over
	 * (the connection is refused at the TLS step, with a log line) */
	resolve_one_cfg("dbog.sec", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.n, 1);
	assert_int_equal(o.t[0].security, DNS_SECURE);
	assert_int_equal(o.t[0].tlsa_status, RESOLVE_TLSA_BOGUS);
	assert_int_equal(o.t[0].n_tlsa, 0);

	/* without validation nothing is secure: TLSA is never asked */
	resolve_one_cfg("dane.sec", &o, false);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.t[0].security, DNS_INSECURE);
	assert_int_equal(o.t[0].tlsa_status, RESOLVE_TLSA_NONE);
	assert_int_equal(o.t[0].n_tlsa, 0);
	/* insecure address (unsigned zone) under a signed SRV: not asked either */
	resolve_one_cfg("mixed.sec", &o, true);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_int_equal(o.t[0].tlsa_status, RESOLVE_TLSA_NONE);
}

/* Expired signatures under a trusted key: bogus, with a reason, and no targets. */
static void
test_dnssec_bogus(void **state)
{
	struct outcome o;

	NEED_DNSSEC();
	resolve_one_cfg("x.bad", &o, true);
	assert_int_equal(o.status, RESOLVE_BOGUS);
	assert_int_equal(o.n, 0);
	assert_true(strlen(o.why) > 0);
	/* Without validation the same data is usable: the bogus verdict came from DNSSEC. */
	resolve_one_cfg("x.bad", &o, false);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_target(&o.t[0], "xmpp.x.bad", "127.0.9.1", 5269, false);
}

/* Several lookups at once on one resolver: each answer reaches its own request. */
static void
test_concurrent(void **state)
{
	struct ev_loop *loop;
	struct outcome oa, ob, oc, onx;
	struct outcome *os[4] = { &oa, &ob, &oc, &onx };
	struct resolver_stats st;
	struct config cfg;
	struct resolver *r;

	NEED_NSD();
	loop = ev_loop_new(EVFLAG_AUTO);
	r = new_resolver(loop, &cfg, nsd.forwarder, 3000);
	memset(&oa, 0, sizeof(oa));
	memset(&ob, 0, sizeof(ob));
	memset(&oc, 0, sizeof(oc));
	memset(&onx, 0, sizeof(onx));
	assert_non_null(lookup(r, "a.example", &oa));
	assert_non_null(lookup(r, "b.example", &ob));
	assert_non_null(lookup(r, "c.example", &oc));
	assert_non_null(lookup(r, "nx.example", &onx));
	assert_true(run_until(loop, os, 4, GUARD_SECONDS));
	assert_int_equal(oa.status, RESOLVE_OK);
	assert_int_equal(oa.n, 3);
	assert_int_equal(ob.status, RESOLVE_OK);
	assert_target(&ob.t[0], "b.example", "127.0.2.1", 5269, false);
	assert_int_equal(oc.status, RESOLVE_NOSERVICE);
	assert_int_equal(onx.status, RESOLVE_NOTFOUND);
	resolver_get_stats(r, &st);
	assert_int_equal(st.lookups, 4);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.bogus, 0);
	/* 4 x 2 SRV + a: 2 hosts x 2 + b: 2 + nx: 2 */
	assert_int_equal(st.queries_sent, 16);
	/* A second lookup of the same domain (now cached) still calls back later. */
	memset(&oa, 0, sizeof(oa));
	assert_non_null(lookup(r, "a.example", &oa));
	assert_int_equal(oa.calls, 0);
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(oa.calls, 1);
	assert_int_equal(oa.n, 3);
	resolver_free(r);
	ev_loop_destroy(loop);
}

/* resolver { queries 1 }: the same four lookups, one question in libunbound at a time;
 * the others wait in order and every lookup still completes with the same answers. */
static void
test_queries_cap(void **state)
{
	struct ev_loop *loop;
	struct outcome oa, ob, oc, onx;
	struct outcome *os[4] = { &oa, &ob, &oc, &onx };
	struct resolver_stats st;
	struct config cfg;
	struct resolver *r;

	NEED_NSD();
	loop = ev_loop_new(EVFLAG_AUTO);
	memset(&cfg, 0, sizeof(cfg));
	cfg.forwarders[0] = (char *)nsd.forwarder;
	cfg.n_forwarders = 1;
	cfg.dns_timeout_ms = 3000;
	cfg.dns_max_queries = 1;
	r = resolver_new(loop, &cfg);
	assert_non_null(r);
	memset(&oa, 0, sizeof(oa));
	memset(&ob, 0, sizeof(ob));
	memset(&oc, 0, sizeof(oc));
	memset(&onx, 0, sizeof(onx));
	assert_non_null(lookup(r, "a.example", &oa));
	assert_non_null(lookup(r, "b.example", &ob));
	assert_non_null(lookup(r, "c.example", &oc));
	assert_non_null(lookup(r, "nx.example", &onx));
	resolver_get_stats(r, &st);
	assert_int_equal(st.queries_sent, 1);          /* the rest waits for the slot */
	assert_int_equal(st.queued, 7);                /* 4 x 2 SRV questions, 1 asked */
	assert_true(run_until(loop, os, 4, GUARD_SECONDS));
	assert_int_equal(oa.status, RESOLVE_OK);
	assert_int_equal(oa.n, 3);
	assert_int_equal(ob.status, RESOLVE_OK);
	assert_int_equal(oc.status, RESOLVE_NOSERVICE);
	assert_int_equal(onx.status, RESOLVE_NOTFOUND);
	resolver_get_stats(r, &st);
	assert_int_equal(st.queries_sent, 16);         /* the same questions as uncapped */
	assert_true(st.queued >= 7);
	/* a waiting question whose lookup is cancelled leaves the queue */
	memset(&oa, 0, sizeof(oa));
	memset(&ob, 0, sizeof(ob));
	assert_non_null(lookup(r, "d.example", &oa));
	resolver_cancel(lookup(r, "e.example", &ob));
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(ob.calls, 0);
	resolver_free(r);
	ev_loop_destroy(loop);
}

/* Works without nsd: queries go to a socket that never answers. */
static void
test_timeout(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct outcome o;
	struct outcome *os[1] = { &o };
	struct resolver_stats st;
	struct config cfg;
	struct resolver *r = new_resolver(loop, &cfg, nsd.blackhole, 300);
	struct timespec t0, t1;
	double elapsed;

	memset(&o, 0, sizeof(o));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_non_null(lookup(r, "a.example", &o));
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.status, RESOLVE_TIMEOUT);
	assert_string_equal(resolve_status_str(o.status), "timeout");
	assert_true(elapsed >= 0.25 && elapsed < 2.0);
	resolver_get_stats(r, &st);
	assert_int_equal(st.failures, 1);
	resolver_free(r);
	ev_loop_destroy(loop);
}

/* Cancel with queries in flight (never answered): no callback, nothing leaks. */
static void
test_cancel_in_flight(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct outcome o, o2;
	struct outcome *os[1] = { &o2 };
	struct config cfg;
	struct resolver *r = new_resolver(loop, &cfg, nsd.blackhole, 400);
	struct resolve_req *req;

	memset(&o, 0, sizeof(o));
	memset(&o2, 0, sizeof(o2));
	req = lookup(r, "a.example", &o);
	assert_non_null(req);
	/* Let the worker thread send its queries, then cancel. */
	assert_false(run_until(loop, os, 1, 0.1));
	resolver_cancel(req);
	/* Another lookup runs to its timeout; the cancelled one must stay silent. */
	assert_non_null(lookup(r, "b.example", &o2));
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(o2.status, RESOLVE_TIMEOUT);
	assert_int_equal(o.calls, 0);
	resolver_free(r);
	ev_loop_destroy(loop);
}

/* Cancel right away against a server that does answer: the answers arrive for a
 * cancelled request and are dropped. */
static void
test_cancel_answered(void **state)
{
	struct ev_loop *loop;
	struct outcome o, o2;
	struct outcome *os[1] = { &o2 };
	struct config cfg;
	struct resolver *r;

	NEED_NSD();
	loop = ev_loop_new(EVFLAG_AUTO);
	r = new_resolver(loop, &cfg, nsd.forwarder, 3000);
	memset(&o, 0, sizeof(o));
	memset(&o2, 0, sizeof(o2));
	resolver_cancel(lookup(r, "d.example", &o));
	resolver_cancel(NULL);
	assert_non_null(lookup(r, "a.example", &o2));
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(o2.status, RESOLVE_OK);
	/* Give any late answer for d.example time to show up. */
	memset(&o2, 0, sizeof(o2));
	assert_false(run_until(loop, os, 1, 0.2));
	assert_int_equal(o.calls, 0);
	resolver_free(r);
	ev_loop_destroy(loop);
}

/* resolver_free with a lookup pending: no callback, clean under ASan. */
static void
test_free_pending(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct outcome o;
	struct outcome *os[1] = { &o };
	struct config cfg;
	struct resolver *r = new_resolver(loop, &cfg, nsd.blackhole, 2000);

	memset(&o, 0, sizeof(o));
	assert_non_null(lookup(r, "a.example", &o));
	assert_non_null(lookup(r, "b.example", &o));
	assert_false(run_until(loop, os, 1, 0.1));
	resolver_free(r);
	/* Nothing of the resolver is left on the loop: it would run its timers here. */
	assert_false(run_until(loop, os, 1, 0.1));
	assert_int_equal(o.calls, 0);
	ev_loop_destroy(loop);
}

/* The callback frees the resolver (route.c at shutdown may do that). */
static void
test_free_in_callback(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct outcome o, o2;
	struct outcome *os[1] = { &o };
	struct config cfg;
	struct resolver *r = new_resolver(loop, &cfg, nsd.blackhole, 200);

	memset(&o, 0, sizeof(o));
	memset(&o2, 0, sizeof(o2));
	o.free_in_cb = r;
	assert_non_null(lookup(r, "a.example", &o));
	assert_non_null(lookup(r, "b.example", &o2));  /* pending when r goes away */
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(o.status, RESOLVE_TIMEOUT);
	assert_null(o.free_in_cb);
	os[0] = &o2;
	assert_false(run_until(loop, os, 1, 0.3));
	assert_int_equal(o2.calls, 0);
	ev_loop_destroy(loop);
}

static void
test_bad_input(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct outcome o;
	struct config cfg;
	struct resolver *r = new_resolver(loop, &cfg, nsd.blackhole, 200);
	char longname[300];

	memset(&o, 0, sizeof(o));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(lookup(r, "", &o));
	assert_null(lookup(r, ".", &o));
	assert_null(lookup(r, "a..example", &o));
	assert_null(lookup(r, "a example", &o));
	assert_null(lookup(r, longname, &o));
	assert_null(resolver_lookup(r, "a.example", NULL, NULL));
	assert_null(resolver_lookup(NULL, "a.example", test_cb, &o));
	resolver_free(r);
	resolver_free(NULL);

	/* A forwarder that is not an address is refused at creation. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.forwarders[0] = (char *)"not-an-ip";
	cfg.n_forwarders = 1;
	assert_null(resolver_new(loop, &cfg));
	assert_null(resolver_new(NULL, &cfg));
	assert_string_equal(resolve_status_str(RESOLVE_NOSERVICE), "noservice");
	assert_string_equal(resolve_status_str(RESOLVE_BOGUS), "bogus");
	assert_string_equal(resolve_status_str(RESOLVE_SERVFAIL), "servfail");
	assert_string_equal(resolve_status_str(RESOLVE_OK), "ok");
	assert_int_equal(o.calls, 0);
	ev_loop_destroy(loop);
}

/* ---- the answer cache, coalescing, status ---- */

#define DAY_MS (24u * 3600u * 1000u)

/* A private state directory for one test. */
static void
state_dir_new(char *dir, size_t dirsz)
{
	snprintf(dir, dirsz, "/tmp/qf-dnsstate-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void
state_dir_rm(const char *dir)
{
	char path[400];
	struct dirent *de;
	DIR *d;

	atomicfile_sync(NULL);   /* no state file write still under way in dir */
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	assert_int_equal(rmdir(dir), 0);
}

/* A resolver with a disk cache in dir: TTLs clamped to [0, max_ttl_ms], stale answers
 * served for up to stale_ms. */
static struct resolver *
cache_resolver(struct ev_loop *loop, struct config *cfg, const char *fwd, char *dir,
    bool dnssec, uint32_t max_ttl_ms, uint32_t stale_ms, uint32_t timeout_ms)
{
	struct resolver *r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->forwarders[0] = (char *)fwd;
	cfg->n_forwarders = 1;
	cfg->dns_timeout_ms = timeout_ms;
	cfg->state_dir = dir;
	cfg->dns_cache_entries = 1000;
	cfg->dns_cache_min_ttl_ms = 0;
	cfg->dns_cache_max_ttl_ms = max_ttl_ms;
	cfg->dns_serve_stale_ms = stale_ms;
	cfg->dnssec = dnssec;
	cfg->trust_anchor_file = dnssec ? nsd.ta_file : NULL;
	r = resolver_new(loop, cfg);
	assert_non_null(r);
	return r;
}

/* One lookup on r; returns the seconds it took. */
static double
lookup_wait(struct ev_loop *loop, struct resolver *r, const char *domain, struct outcome *o)
{
	struct outcome *os[1] = { o };
	struct timespec t0, t1;

	memset(o, 0, sizeof(*o));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_non_null(lookup(r, domain, o));
	assert_int_equal(o->calls, 0);
	assert_true(run_until(loop, os, 1, GUARD_SECONDS));
	assert_int_equal(o->calls, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* A restarted resolver answers from the file of the previous one without any query,
 * positive and negative (RFC 2308) answers alike. */
static void
test_cache_restart(void **state)
{
	struct ev_loop *loop;
	struct resolver_stats st;
	struct outcome o;
	struct config cfg;
	struct resolver *r;
	char dir[64], file[128];
	struct stat sb;

	NEED_NSD();
	loop = ev_loop_new(EVFLAG_AUTO);
	state_dir_new(dir, sizeof(dir));
	r = cache_resolver(loop, &cfg, nsd.forwarder, dir, false, DAY_MS, DAY_MS, 3000);
	lookup_wait(loop, r, "a.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_false(o.stale);
	lookup_wait(loop, r, "nx.example", &o);
	assert_int_equal(o.status, RESOLVE_NOTFOUND);
	resolver_get_stats(r, &st);
	assert_int_equal(st.queries_sent, 10);  /* a: 2 SRV + 2 x 2; nx: 2 SRV + 2 */
	assert_int_equal(st.entries, 10);
	resolver_free(r);               /* writes the file (atomicfile's thread) */
	atomicfile_sync(NULL);
	snprintf(file, sizeof(file), "%s/dns.cache", dir);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* Restarted against a server that never answers: all from the file. */
	r = cache_resolver(loop, &cfg, nsd.blackhole, dir, false, DAY_MS, DAY_MS, 2000);
	assert_true(lookup_wait(loop, r, "a.example", &o) < 0.5);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_false(o.stale);
	assert_int_equal(o.n, 3);
	assert_target(&o.t[0], "xmpp.a.example", "::1", 5269, false);
	assert_target(&o.t[1], "xmpp.a.example", "127.0.1.1", 5269, false);
	assert_target(&o.t[2], "backup.a.example", "127.0.1.2", 5270, false);
	assert_true(lookup_wait(loop, r, "nx.example", &o) < 0.5);
	assert_int_equal(o.status, RESOLVE_NOTFOUND);
	resolver_get_stats(r, &st);
	assert_int_equal(st.queries_sent, 0);
	assert_int_equal(st.hits, 10);
	assert_int_equal(st.misses, 0);
	assert_true(st.negative >= 4);  /* nx: 2 SRV + AAAA + A; a: xmpps SRV, backup AAAA */
	resolver_free(r);
	state_dir_rm(dir);
	ev_loop_destroy(loop);
}

/* Expired answers are served stale when the server is gone, quickly, flagged, and only
 * while serve_stale allows. */
static void
test_serve_stale(void **state)
{
	struct ev_loop *loop;
	struct resolver_stats st;
	struct outcome o;
	struct config cfg;
	struct resolver *r;
	char dir[64];
	double took;

	NEED_NSD();
	loop = ev_loop_new(EVFLAG_AUTO);
	state_dir_new(dir, sizeof(dir));
	/* cache_max_ttl 0: every answer is expired as soon as it is stored. */
	r = cache_resolver(loop, &cfg, nsd.forwarder, dir, false, 0, DAY_MS, 3000);
	lookup_wait(loop, r, "d.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_false(o.stale);
	resolver_free(r);

	r = cache_resolver(loop, &cfg, nsd.blackhole, dir, false, 0, DAY_MS, 1500);
	took = lookup_wait(loop, r, "d.example", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_true(o.stale);
	assert_true(took < 1.2);        /* the stale timer, not the 1.5 s timeout */
	assert_int_equal(o.n, 2);
	assert_target(&o.t[0], "tls.d.example", "127.0.4.1", 5223, true);
	assert_target(&o.t[1], "plain.d.example", "127.0.4.2", 5269, false);
	resolver_get_stats(r, &st);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.stale_served, 6);   /* 2 SRV, 2 x (AAAA, A) */
	resolver_free(r);

	/* serve_stale 0: no stale answers, the lookup times out. */
	r = cache_resolver(loop, &cfg, nsd.blackhole, dir, false, 0, 0, 400);
	lookup_wait(loop, r, "d.example", &o);
	assert_int_equal(o.status, RESOLVE_TIMEOUT);
	assert_false(o.stale);
	resolver_free(r);
	state_dir_rm(dir);
	ev_loop_destroy(loop);
}

/* Bogus answers are never cached nor served; a stale secure answer stays secure (and is
 * flagged stale); a file written without validation is not used by a validating
 * resolver; a non-validating one never reports secure. */
static void
test_dnssec_cache(void **state)
{
	struct ev_loop *loop;
	struct resolver_stats st;
	struct outcome o;
	struct config cfg;
	struct resolver *r;
	char dir[64], dir2[64];

	NEED_DNSSEC();
	loop = ev_loop_new(EVFLAG_AUTO);
	state_dir_new(dir, sizeof(dir));
	r = cache_resolver(loop, &cfg, nsd.forwarder, dir, true, 0, DAY_MS, 3000);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_target_sec(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false, DNS_SECURE);
	lookup_wait(loop, r, "x.bad", &o);
	assert_int_equal(o.status, RESOLVE_BOGUS);
	resolver_get_stats(r, &st);
	assert_int_equal(st.bogus, 1);
	assert_int_equal(resolver_flush(r, "x.bad"), 0);   /* nothing of it was kept */
	/* A bogus answer is not remembered: asking again asks again. */
	lookup_wait(loop, r, "x.bad", &o);
	assert_int_equal(o.status, RESOLVE_BOGUS);
	{
		struct resolver_stats st2;

		resolver_get_stats(r, &st2);
		assert_int_equal(st2.queries_sent, st.queries_sent + 2);
		assert_int_equal(st2.bogus, 2);
	}
	resolver_free(r);

	r = cache_resolver(loop, &cfg, nsd.blackhole, dir, true, 0, DAY_MS, 900);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_true(o.stale);
	assert_target_sec(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false, DNS_SECURE);
	lookup_wait(loop, r, "x.bad", &o);
	assert_int_equal(o.status, RESOLVE_TIMEOUT);     /* never served from the cache */
	resolver_free(r);

	/* Without validation, the same file yields insecure targets. */
	r = cache_resolver(loop, &cfg, nsd.blackhole, dir, false, 0, DAY_MS, 900);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_target(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false);
	resolver_free(r);

	/* Written without validation: a validating resolver ignores the file. */
	state_dir_new(dir2, sizeof(dir2));
	r = cache_resolver(loop, &cfg, nsd.forwarder, dir2, false, 0, DAY_MS, 3000);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	resolver_free(r);
	r = cache_resolver(loop, &cfg, nsd.blackhole, dir2, true, 0, DAY_MS, 600);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_TIMEOUT);
	resolver_free(r);
	state_dir_rm(dir2);
	state_dir_rm(dir);
	ev_loop_destroy(loop);
}

/* auto_trust_anchor: the anchor is copied into the state directory and used from there
 * (an RFC 5011 file holds one zone's keys: only sec. is anchored here). */
static void
test_auto_trust_anchor(void **state)
{
	struct ev_loop *loop;
	struct outcome o;
	struct config cfg;
	struct resolver *r;
	char dir[64], key[128], seed[128], line[1024];
	FILE *in, *out;

	NEED_DNSSEC();
	loop = ev_loop_new(EVFLAG_AUTO);
	state_dir_new(dir, sizeof(dir));
	snprintf(seed, sizeof(seed), "%s/seed.key", dir);
	assert_non_null(in = fopen(nsd.ta_file, "r"));
	assert_non_null(out = fopen(seed, "w"));
	while (fgets(line, sizeof(line), in) != NULL)
		if (strncmp(line, "sec.", 4) == 0)
			fputs(line, out);
	fclose(in);
	fclose(out);
	memset(&cfg, 0, sizeof(cfg));
	cfg.forwarders[0] = nsd.forwarder;
	cfg.n_forwarders = 1;
	cfg.dns_timeout_ms = 3000;
	cfg.dnssec = true;
	cfg.trust_anchor_file = seed;
	cfg.dns_auto_trust_anchor = true;
	cfg.state_dir = dir;
	cfg.dns_cache_file = (char *)"none";
	r = resolver_new(loop, &cfg);
	assert_non_null(r);
	snprintf(key, sizeof(key), "%s/root.key", dir);
	assert_int_equal(access(key, R_OK), 0);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_target_sec(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false, DNS_SECURE);
	resolver_free(r);
	/* An existing state file is used as it is, not overwritten from the seed. */
	unlink(seed);
	r = resolver_new(loop, &cfg);
	assert_non_null(r);
	lookup_wait(loop, r, "ok.sec", &o);
	assert_int_equal(o.status, RESOLVE_OK);
	assert_target_sec(&o.t[0], "xmpp.ok.sec", "127.0.8.1", 5269, false, DNS_SECURE);
	resolver_free(r);
	state_dir_rm(dir);
	ev_loop_destroy(loop);
}

/* Ask the status socket at path one line; returns the answer (caller frees). */
static char *
status_query(struct ev_loop *loop, const char *path, const char *line)
{
	struct sockaddr_un sun;
	char *ans = NULL, tmp[4096];
	size_t len = 0;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	for (int spins = 0; spins < 2000; spins++) {
		ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);

		if (n > 0) {
			ans = realloc(ans, len + (size_t)n + 1);
			assert_non_null(ans);
			memcpy(ans + len, tmp, (size_t)n);
			len += (size_t)n;
			ans[len] = '\0';
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			break;
		ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
		usleep(1000);
	}
	close(fd);
	if (ans == NULL)
		ans = strdup("");
	return ans;
}

/* Concurrent lookups of one domain share one set of queries; cancelling one of them
 * does not cancel the others' queries. The cache then answers, "show dns" reports it
 * and "flush dns NAME" makes the next lookup ask again. */
static void
test_coalescing_and_status(void **state)
{
	struct ev_loop *loop;
	struct outcome o[5], again;
	struct outcome *os[4] = { &o[0], &o[2], &o[3], &o[4] };
	struct resolve_req *req[5];
	struct resolver_stats st;
	struct config cfg;
	struct resolver *r;
	struct status *status;
	char dir[64], sock[128], *ans;

	NEED_NSD();
	loop = ev_loop_new(EVFLAG_AUTO);
	state_dir_new(dir, sizeof(dir));
	r = cache_resolver(loop, &cfg, nsd.forwarder, dir, false, DAY_MS, DAY_MS, 3000);
	for (int i = 0; i < 5; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		req[i] = lookup(r, i % 2 ? "A.example" : "a.example.", &o[i]);
		assert_non_null(req[i]);
	}
	resolver_cancel(req[1]);
	assert_true(run_until(loop, os, 4, GUARD_SECONDS));
	for (int i = 0; i < 5; i++) {
		if (i == 1)
			continue;
		assert_int_equal(o[i].status, RESOLVE_OK);
		assert_int_equal(o[i].n, 3);
		assert_target(&o[i].t[2], "backup.a.example", "127.0.1.2", 5270, false);
	}
	assert_int_equal(o[1].calls, 0);
	resolver_get_stats(r, &st);
	assert_int_equal(st.queries_sent, 6);       /* one set: 2 SRV + 2 hosts x 2 */
	assert_int_equal(st.lookups, 5);
	assert_true(st.coalesced >= 8);

	/* Cancel the only waiter of a flight, then ask again: a new query, an answer. */
	memset(&again, 0, sizeof(again));
	resolver_cancel(lookup(r, "g.example", &again));
	lookup_wait(loop, r, "g.example", &again);
	assert_int_equal(again.status, RESOLVE_OK);
	assert_int_equal(again.n, 2);

	/* From the cache now. */
	lookup_wait(loop, r, "a.example", &again);
	assert_int_equal(again.status, RESOLVE_OK);
	resolver_get_stats(r, &st);
	/* g: 2 SRV for the cancelled lookup, then 2 SRV + AAAA + A */
	assert_int_equal(st.queries_sent, 6 + 2 + 4);

	snprintf(sock, sizeof(sock), "%s/status.sock", dir);
	status = status_new(loop, sock);
	assert_non_null(status);
	assert_int_equal(resolver_register_status(r, status), 0);
	ans = status_query(loop, sock, "show dns\n");
	assert_non_null(strstr(ans, "dns.queries_sent=12\n"));
	assert_non_null(strstr(ans, "dns.entries=10\n"));
	assert_non_null(strstr(ans, "dns.bogus=0\n"));
	assert_non_null(strstr(ans, "dns.stale_served=0\n"));
	assert_non_null(strstr(ans, "dns.hits=6\n"));
	assert_non_null(strstr(ans, "dns.negative="));
	assert_non_null(strstr(ans, "dns.misses="));
	assert_non_null(strstr(ans, "dns.entry.xmpp.a.example.A.security=insecure\n"));
	assert_non_null(strstr(ans, "dns.entry.xmpp.a.example.A.stale=0\n"));
	assert_non_null(strstr(ans, "dns.entry.xmpp.a.example.AAAA.ttl_left="));
	{
		/* a 300 s TTL, some of which may have passed under load: a range, not a digit */
		const char *k = "dns.entry._xmpp-server._tcp.a.example.SRV.ttl_left=";
		const char *v = strstr(ans, k);
		long left;

		assert_non_null(v);
		left = strtol(v + strlen(k), NULL, 10);
		assert_true(left > 200 && left <= 300);
	}
	free(ans);
	ans = status_query(loop, sock, "flush dns A.Example\n");
	assert_string_equal(ans, "flushed=6\n");
	free(ans);
	ans = status_query(loop, sock, "flush dns a.example b.example\n");
	assert_non_null(strstr(ans, "error"));
	free(ans);

	/* Flushed: the next lookup asks again. */
	lookup_wait(loop, r, "a.example", &again);
	assert_int_equal(again.status, RESOLVE_OK);
	resolver_get_stats(r, &st);
	assert_int_equal(st.queries_sent, 12 + 6);
	ans = status_query(loop, sock, "flush dns\n");
	assert_string_equal(ans, "flushed=10\n");
	free(ans);
	status_free(status);
	resolver_free(r);
	state_dir_rm(dir);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_srv_priority_order),
		cmocka_unit_test(test_a_fallback),
		cmocka_unit_test(test_noservice),
		cmocka_unit_test(test_xmpps_and_xmpp_merged),
		cmocka_unit_test(test_root_in_one_service_only),
		cmocka_unit_test(test_notfound),
		cmocka_unit_test(test_shared_host),
		cmocka_unit_test(test_dnssec_secure),
		cmocka_unit_test(test_dnssec_mixed),
		cmocka_unit_test(test_dnssec_bogus),
		cmocka_unit_test(test_tlsa_parse),
		cmocka_unit_test(test_dnssec_tlsa),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cancel_in_flight),
		cmocka_unit_test(test_cancel_answered),
		cmocka_unit_test(test_free_pending),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_cache_restart),
		cmocka_unit_test(test_serve_stale),
		cmocka_unit_test(test_dnssec_cache),
		cmocka_unit_test(test_auto_trust_anchor),
		cmocka_unit_test(test_coalescing_and_status),
		cmocka_unit_test(test_queries_cap),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
