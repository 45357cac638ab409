/* tests/unit/test_dnscache.c - unit tests for the DNS answer cache (dns/cache.c).
 * SPDX-License-Identifier: ISC
 * Covers TTL clamping, fresh/stale/expired lookups, flush by name, eviction, the disk
 * file round trip (mode 0600, atomic replace) and a corpus of broken and hostile cache
 * files (truncated, wrong version, huge lengths, bad checksums, garbage, lying fields,
 * unsafe modes): each is logged and ignored, entry by entry where the file allows. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/atomicfile.h"
#include "core/log.h"
#include "dns/cache.h"

#define NOW   1700000000LL
#define T_A    1
#define T_AAAA 28
#define T_SRV  33

static char tmpdir[] = "/tmp/qf-test-dnscache.XXXXXX";
static char path[200];

/* ---- helpers: a file image writer of our own, independent of cache.c ---- */

static uint32_t
t_crc32(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
	}
	return ~crc;
}

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

struct img {
	unsigned char b[200000];
	size_t len;
};

static void
img_header(struct img *m, uint32_t version, uint32_t flags, uint32_t count)
{
	memcpy(m->b, "QFDNSCA\n", 8);
	be32(m->b + 8, version);
	be32(m->b + 12, flags);
	be32(m->b + 16, count);
	be32(m->b + 20, t_crc32(m->b, 20));
	m->len = 24;
}

/* Append a record: body fields as given, with a correct length and CRC. */
static void
img_record(struct img *m, uint16_t qtype, uint8_t kind, uint8_t sec, int64_t expires,
    uint32_t ttl, const char *name, size_t n_rr, const unsigned char *rr, size_t rrlen)
{
	unsigned char *r = m->b + m->len, *o = r + 8;
	uint64_t e = (uint64_t)expires;
	size_t nl = strlen(name);

	o[0] = (unsigned char)(qtype >> 8);
	o[1] = (unsigned char)qtype;
	o[2] = kind;
	o[3] = sec;
	be32(o + 4, (uint32_t)(e >> 32));
	be32(o + 8, (uint32_t)e);
	be32(o + 12, ttl);
	o[16] = (unsigned char)nl;
	memcpy(o + 17, name, nl);
	o += 17 + nl;
	*o++ = (unsigned char)n_rr;
	for (size_t i = 0; i < n_rr; i++) {
		o[0] = (unsigned char)(rrlen >> 8);
		o[1] = (unsigned char)rrlen;
		memcpy(o + 2, rr, rrlen);
		o += 2 + rrlen;
	}
	be32(r, (uint32_t)(o - r - 8));
	be32(r + 4, t_crc32(r + 8, (size_t)(o - r - 8)));
	m->len = (size_t)(o - m->b);
}

static const unsigned char ip4[4] = { 127, 0, 1, 1 };

static void
write_file(const char *p, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void
put_a(struct dnscache *c, const char *name, uint32_t ttl, enum dns_security sec,
    int64_t now)
{
	struct dnscache_entry e;

	memset(&e, 0, sizeof(e));
	assert_int_equal(dnscache_entry_init(&e, name, T_A, DNSCACHE_DATA, sec, ttl), 0);
	assert_int_equal(dnscache_entry_add_rr(&e, ip4, 4), 0);
	assert_int_equal(dnscache_put(c, &e, now), 0);
	dnscache_entry_clear(&e);
}

static int
setup(void **state)
{
	log_set_level(getenv("QF_TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/dns.cache", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- in memory ---- */

static void
test_ttl_clamp_and_stale(void **state)
{
	struct dnscache *c = dnscache_new(100, 60, 3600, 600);
	const struct dnscache_entry *e;
	bool stale;

	put_a(c, "Low.Example.", 5, DNS_INSECURE, NOW);       /* raised to 60 */
	put_a(c, "high.example", 999999, DNS_SECURE, NOW);     /* cut to 3600 */
	e = dnscache_get(c, "low.example", T_A, NOW, false, &stale);
	assert_non_null(e);
	assert_string_equal(e->name, "low.example");
	assert_int_equal(e->ttl, 60);
	assert_int_equal(e->expires, NOW + 60);
	assert_false(stale);
	e = dnscache_get(c, "HIGH.example", T_A, NOW + 3599, false, &stale);
	assert_non_null(e);
	assert_int_equal(e->ttl, 3600);
	assert_int_equal(e->security, DNS_SECURE);
	/* Wrong type: nothing. */
	assert_null(dnscache_get(c, "low.example", T_AAAA, NOW, true, &stale));
	/* Expired: only with allow_stale, only within max_stale, flagged. */
	assert_null(dnscache_get(c, "low.example", T_A, NOW + 60, false, &stale));
	e = dnscache_get(c, "low.example", T_A, NOW + 60 + 600, true, &stale);
	assert_non_null(e);
	assert_true(stale);
	assert_int_equal(e->security, DNS_INSECURE);
	assert_null(dnscache_get(c, "low.example", T_A, NOW + 60 + 601, true, &stale));
	/* Prune drops what is too old even for serve-stale. */
	assert_int_equal(dnscache_prune(c, NOW + 60 + 601), 1);
	assert_int_equal(dnscache_count(c), 1);
	dnscache_free(c);
}

static void
test_refuses_bogus_and_inconsistent(void **state)
{
	struct dnscache *c = dnscache_new(10, 0, 3600, 0);
	struct dnscache_entry e;
	unsigned char five[5] = { 1, 2, 3, 4, 5 };

	memset(&e, 0, sizeof(e));
	assert_int_equal(dnscache_entry_init(&e, "x.example", T_A, DNSCACHE_DATA, DNS_BOGUS,
	    300), 0);
	assert_int_equal(dnscache_entry_add_rr(&e, ip4, 4), 0);
	assert_int_equal(dnscache_put(c, &e, NOW), -1);          /* bogus is never kept */
	assert_int_equal(dnscache_entry_init(&e, "x.example", T_A, DNSCACHE_DATA,
	    DNS_INSECURE, 300), 0);
	assert_int_equal(dnscache_put(c, &e, NOW), -1);          /* data without records */
	assert_int_equal(dnscache_entry_add_rr(&e, five, 5), 0);
	assert_int_equal(dnscache_put(c, &e, NOW), -1);          /* A of 5 bytes */
	assert_int_equal(dnscache_entry_init(&e, "x.example", T_A, DNSCACHE_NXDOMAIN,
	    DNS_INSECURE, 300), 0);
	assert_int_equal(dnscache_entry_add_rr(&e, ip4, 4), 0);
	assert_int_equal(dnscache_put(c, &e, NOW), -1);          /* negative with records */
	assert_int_equal(dnscache_entry_init(&e, "bad name", T_A, DNSCACHE_NXDOMAIN,
	    DNS_INSECURE, 300), -1);
	assert_int_equal(dnscache_entry_init(&e, "a..b", T_A, DNSCACHE_NXDOMAIN,
	    DNS_INSECURE, 300), -1);
	for (int i = 0; i < DNSCACHE_MAX_RR; i++)
		assert_int_equal(dnscache_entry_add_rr(&e, ip4, 4), 0);
	assert_int_equal(dnscache_entry_add_rr(&e, ip4, 4), -1);  /* bounded */
	dnscache_entry_clear(&e);
	assert_int_equal(dnscache_count(c), 0);
	dnscache_free(c);
}

static void
test_flush_and_evict(void **state)
{
	struct dnscache *c = dnscache_new(4, 0, 3600, 0);
	bool stale;

	put_a(c, "example.org", 100, DNS_INSECURE, NOW);
	put_a(c, "_xmpp-server._tcp.example.org", 300, DNS_INSECURE, NOW);
	put_a(c, "xmpp.example.org", 300, DNS_INSECURE, NOW);
	put_a(c, "notexample.org", 300, DNS_INSECURE, NOW);
	assert_int_equal(dnscache_count(c), 4);
	/* Full: the entry closest to its end (example.org, 100 s) goes. */
	put_a(c, "other.net", 300, DNS_INSECURE, NOW);
	assert_int_equal(dnscache_count(c), 4);
	assert_null(dnscache_get(c, "example.org", T_A, NOW, true, &stale));
	/* Replacing an entry does not evict. */
	put_a(c, "other.net", 500, DNS_INSECURE, NOW);
	assert_int_equal(dnscache_count(c), 4);
	/* Flush NAME takes NAME and names below it, not look-alikes. */
	assert_int_equal(dnscache_flush(c, "Example.Org."), 2);
	assert_non_null(dnscache_get(c, "notexample.org", T_A, NOW, false, &stale));
	assert_int_equal(dnscache_flush(c, NULL), 2);
	assert_int_equal(dnscache_count(c), 0);
	dnscache_free(c);
}

/* Eviction stays "the answer closest to its end" however the cache got there: 3,000
 * puts, replaces and flushes with pseudo-random TTLs into a cache of 200, checked
 * against a model after every step (the heap behind evict_one must agree with a
 * full scan). */
static void
test_evict_order_model(void **state)
{
	enum { CAP = 200, NAMES = 400, STEPS = 3000 };
	struct dnscache *c = dnscache_new(CAP, 0, 86400, 0);
	int64_t expires[NAMES];     /* model: 0 = absent */
	uint32_t x = 12345;
	char name[64];
	bool stale;

	(void)state;
	memset(expires, 0, sizeof(expires));
	for (int step = 0; step < STEPS; step++) {
		int k, present = 0, victim = -1;

		x = x * 1103515245u + 12345u;
		k = (int)((x >> 8) % NAMES);
		snprintf(name, sizeof(name), "h%d.example", k);
		if ((x >> 4) % 17 == 0) {
			dnscache_flush(c, name);
			expires[k] = 0;
			continue;
		}
		for (int i = 0; i < NAMES; i++)
			if (expires[i] != 0) {
				present++;
				if (victim == -1 || expires[i] < expires[victim])
					victim = i;
			}
		if (expires[k] == 0 && present == CAP)
			expires[victim] = 0;       /* what the cache must drop */
		put_a(c, name, 1 + (x >> 12) % 5000, DNS_INSECURE, NOW);
		expires[k] = NOW + 1 + (x >> 12) % 5000;
		present = 0;
		for (int i = 0; i < NAMES; i++) {
			snprintf(name, sizeof(name), "h%d.example", i);
			if (expires[i] != 0)
				present++;
			assert_true((dnscache_get(c, name, T_A, NOW, false, &stale) != NULL) ==
			    (expires[i] != 0));
		}
		assert_int_equal(dnscache_count(c), present);
	}
	dnscache_free(c);
}

/* ---- the file ---- */

static void
test_roundtrip(void **state)
{
	struct dnscache *c = dnscache_new(100, 0, 86400, 86400), *d;
	const struct dnscache_entry *e;
	struct dnscache_entry n;
	unsigned char srv[] = { 0, 10, 0, 5, 0x14, 0x95, 4, 'x', 'm', 'p', 'p', 1, 'a', 0 };
	unsigned char six[16] = { [15] = 1 };
	struct stat sb;
	bool stale;

	memset(&n, 0, sizeof(n));
	put_a(c, "xmpp.a.example", 300, DNS_SECURE, NOW);
	assert_int_equal(dnscache_entry_init(&n, "_xmpp-server._tcp.a.example", T_SRV,
	    DNSCACHE_DATA, DNS_INSECURE, 600), 0);
	assert_int_equal(dnscache_entry_add_rr(&n, srv, sizeof(srv)), 0);
	assert_int_equal(dnscache_entry_add_rr(&n, srv, sizeof(srv)), 0);
	assert_int_equal(dnscache_put(c, &n, NOW), 0);
	assert_int_equal(dnscache_entry_init(&n, "xmpp.a.example", T_AAAA, DNSCACHE_DATA,
	    DNS_SECURE, 300), 0);
	assert_int_equal(dnscache_entry_add_rr(&n, six, 16), 0);
	assert_int_equal(dnscache_put(c, &n, NOW), 0);
	assert_int_equal(dnscache_entry_init(&n, "nx.example", T_SRV, DNSCACHE_NXDOMAIN,
	    DNS_INSECURE, 30), 0);
	assert_int_equal(dnscache_put(c, &n, NOW), 0);
	assert_int_equal(dnscache_entry_init(&n, "b.example", T_AAAA, DNSCACHE_NODATA,
	    DNS_SECURE, 40), 0);
	assert_int_equal(dnscache_put(c, &n, NOW), 0);
	dnscache_entry_clear(&n);
	assert_int_equal(dnscache_save(c, path, true, NOW), 0);
	atomicfile_sync(path);          /* written by atomicfile's thread */
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Saving again replaces it (rename) and leaves no temp file behind. */
	assert_int_equal(dnscache_save(c, path, true, NOW), 0);

	/* A restart 100 s later: everything back, same expiry, same security. */
	d = dnscache_new(100, 0, 86400, 86400);
	assert_int_equal(dnscache_load(d, path, true, NOW + 100), 5);
	assert_int_equal(dnscache_count(d), 5);
	e = dnscache_get(d, "xmpp.a.example", T_A, NOW + 100, false, &stale);
	assert_non_null(e);
	assert_int_equal(e->expires, NOW + 300);
	assert_int_equal(e->security, DNS_SECURE);
	assert_int_equal(e->n_rr, 1);
	assert_memory_equal(e->data, ip4, 4);
	e = dnscache_get(d, "_xmpp-server._tcp.a.example", T_SRV, NOW + 100, false, &stale);
	assert_non_null(e);
	assert_int_equal(e->n_rr, 2);
	assert_int_equal(e->rdlen[1], sizeof(srv));
	assert_memory_equal(e->data + e->rdoff[1], srv, sizeof(srv));
	assert_int_equal(e->security, DNS_INSECURE);
	e = dnscache_get(d, "xmpp.a.example", T_AAAA, NOW + 100, false, &stale);
	assert_non_null(e);
	assert_memory_equal(e->data, six, 16);
	/* Negative answers: expired (30 s, 40 s) but still there for serve-stale. */
	assert_null(dnscache_get(d, "nx.example", T_SRV, NOW + 100, false, &stale));
	e = dnscache_get(d, "nx.example", T_SRV, NOW + 100, true, &stale);
	assert_non_null(e);
	assert_true(stale);
	assert_int_equal(e->kind, DNSCACHE_NXDOMAIN);
	e = dnscache_get(d, "b.example", T_AAAA, NOW + 20, false, &stale);
	assert_non_null(e);
	assert_int_equal(e->kind, DNSCACHE_NODATA);
	assert_int_equal(e->security, DNS_SECURE);
	dnscache_free(d);

	/* A loader without DNSSEC takes the answers but trusts none of them as secure. */
	d = dnscache_new(100, 0, 86400, 86400);
	assert_int_equal(dnscache_load(d, path, false, NOW), 5);
	e = dnscache_get(d, "xmpp.a.example", T_A, NOW, false, &stale);
	assert_non_null(e);
	assert_int_equal(e->security, DNS_INSECURE);
	dnscache_free(d);

	/* A file written without validation is ignored by a validating loader. */
	assert_int_equal(dnscache_save(c, path, false, NOW), 0);
	d = dnscache_new(100, 0, 86400, 86400);
	assert_int_equal(dnscache_load(d, path, true, NOW), -1);
	assert_int_equal(dnscache_count(d), 0);
	assert_int_equal(dnscache_load(d, path, false, NOW), 5);
	dnscache_free(d);

	/* Much later: everything beyond serve-stale is dropped at load. */
	d = dnscache_new(100, 0, 86400, 60);
	assert_int_equal(dnscache_load(d, path, false, NOW + 10000), 0);
	dnscache_free(d);
	/* A missing file is fine. */
	d = dnscache_new(100, 0, 86400, 60);
	unlink(path);
	assert_int_equal(dnscache_load(d, path, false, NOW), 0);
	dnscache_free(d);
	dnscache_free(c);
}

/* One broken image: what the loader must return and how many entries survive. */
struct broken {
	const char *what;
	int rc;          /* dnscache_load_buffer result */
	size_t count;    /* entries in the cache afterwards */
};

static void
check_image(const struct img *m, const struct broken *want)
{
	struct dnscache *c = dnscache_new(100, 0, 86400, 86400);
	int rc;

	rc = dnscache_load_buffer(c, m->b, m->len, false, NOW, want->what);
	if (rc != want->rc || dnscache_count(c) != want->count)
		fail_msg("%s: rc=%d (want %d) count=%zu (want %zu)", want->what, rc, want->rc,
		    dnscache_count(c), want->count);
	/* And the same through a real file. */
	write_file(path, m->b, m->len, 0600);
	dnscache_flush(c, NULL);
	rc = dnscache_load(c, path, false, NOW);
	if (rc != want->rc || dnscache_count(c) != want->count)
		fail_msg("%s (file): rc=%d (want %d) count=%zu (want %zu)", want->what, rc,
		    want->rc, dnscache_count(c), want->count);
	dnscache_free(c);
}

static void
test_broken_files(void **state)
{
	static struct img m, good;
	unsigned char garbage[4096];
	unsigned char big[DNSCACHE_MAX_RDLEN + 1];
	struct broken b;
	size_t rec2;

	/* A good image of three entries to damage. */
	img_header(&good, 1, 0, 3);
	img_record(&good, T_A, 0, 0, NOW + 300, 300, "one.example", 1, ip4, 4);
	rec2 = good.len;
	img_record(&good, T_A, 0, 0, NOW + 300, 300, "two.example", 1, ip4, 4);
	img_record(&good, T_A, 0, 1, NOW + 300, 300, "three.example", 1, ip4, 4);
	b = (struct broken){ "good", 3, 3 };
	check_image(&good, &b);

	/* Empty, shorter than a header, wrong magic, damaged header, wrong version. */
	m.len = 0;
	check_image(&m, &(struct broken){ "empty", -1, 0 });
	m = good;
	m.len = 10;
	check_image(&m, &(struct broken){ "short-header", -1, 0 });
	m = good;
	m.b[0] = 'X';
	check_image(&m, &(struct broken){ "bad-magic", -1, 0 });
	m = good;
	m.b[19] ^= 1;           /* count changed, header CRC not */
	check_image(&m, &(struct broken){ "header-crc", -1, 0 });
	m = good;
	be32(m.b + 8, 2);
	be32(m.b + 20, t_crc32(m.b, 20));
	check_image(&m, &(struct broken){ "version-2", -1, 0 });
	m = good;
	be32(m.b + 8, 0);
	be32(m.b + 20, t_crc32(m.b, 20));
	check_image(&m, &(struct broken){ "version-0", -1, 0 });

	/* Truncated in the last record, in a record header, mid-file. */
	m = good;
	m.len -= 3;
	check_image(&m, &(struct broken){ "truncated-last", 2, 2 });
	m = good;
	m.len = rec2 + 5;
	check_image(&m, &(struct broken){ "truncated-rec-header", 1, 1 });
	m = good;
	m.len = 24;
	check_image(&m, &(struct broken){ "header-only", 0, 0 });

	/* Huge or tiny lengths: the walk stops, earlier entries stay. */
	m = good;
	be32(m.b + rec2, 0xffffffffu);
	check_image(&m, &(struct broken){ "huge-length", 1, 1 });
	m = good;
	be32(m.b + rec2, 0x7fffffffu);
	check_image(&m, &(struct broken){ "huge-length-2", 1, 1 });
	m = good;
	be32(m.b + rec2, 3);
	check_image(&m, &(struct broken){ "tiny-length", 1, 1 });

	/* A flipped byte in the second record: only that one is skipped. */
	m = good;
	m.b[rec2 + 8 + 20] ^= 0x20;
	check_image(&m, &(struct broken){ "entry-crc", 2, 2 });

	/* Garbage after a valid header, and garbage instead of a file. */
	srandom(42);
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (unsigned char)random();
	m = good;
	m.len = 24;
	memcpy(m.b + 24, garbage, sizeof(garbage));
	m.len += sizeof(garbage);
	{
		struct dnscache *c = dnscache_new(100, 0, 86400, 86400);

		/* Whatever it makes of it, nothing unchecked gets in. */
		assert_true(dnscache_load_buffer(c, m.b, m.len, false, NOW, "garbage") <= 0 ||
		    dnscache_count(c) == 0);
		assert_int_equal(dnscache_count(c), 0);
		dnscache_free(c);
	}
	memcpy(m.b, garbage, sizeof(garbage));
	m.len = sizeof(garbage);
	check_image(&m, &(struct broken){ "all-garbage", -1, 0 });

	/* Lying fields under a correct CRC: each entry is refused on its own. */
	img_header(&m, 1, 0, 0);
	img_record(&m, T_A, 0, 2, NOW + 300, 300, "bogus.example", 1, ip4, 4);   /* bogus */
	img_record(&m, T_A, 0, 7, NOW + 300, 300, "sec7.example", 1, ip4, 4);    /* unknown */
	img_record(&m, T_A, 9, 0, NOW + 300, 300, "kind.example", 1, ip4, 4);    /* kind */
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "bad name.example", 1, ip4, 4);
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "UPPER.example", 1, ip4, 4);
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "a..example", 1, ip4, 4);
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "five.example", 1, garbage, 5);  /* A/5 */
	img_record(&m, T_AAAA, 0, 0, NOW + 300, 300, "four.example", 1, ip4, 4);
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "none.example", 0, NULL, 0);   /* data/0 */
	img_record(&m, T_A, 2, 0, NOW + 300, 300, "nxrr.example", 1, ip4, 4);    /* nx+rr */
	img_record(&m, 0, 1, 0, NOW + 300, 300, "type0.example", 0, NULL, 0);
	img_record(&m, T_A, 0, 0, -5, 300, "negexp.example", 1, ip4, 4);
	memset(big, 'x', sizeof(big));
	img_record(&m, 16, 0, 0, NOW + 300, 300, "big.example", 1, big, sizeof(big));
	/* ... and the good ones between them survive. */
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "ok.example", 1, ip4, 4);
	check_image(&m, &(struct broken){ "lying-fields", 1, 1 });

	/* A record claiming 33 records of which only one is there. */
	img_header(&m, 1, 0, 0);
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "many.example", 1, ip4, 4);
	m.b[m.len - 4 - 2 - 1] = 33;
	be32(m.b + 24 + 4, t_crc32(m.b + 32, m.len - 32));
	check_image(&m, &(struct broken){ "too-many-rr", 0, 0 });

	/* A far-future expiry is cut to the configured maximum TTL. */
	img_header(&m, 1, 0, 0);
	img_record(&m, T_A, 0, 0, NOW + 1000000000LL, 4000000000u, "future.example", 1,
	    ip4, 4);
	{
		struct dnscache *c = dnscache_new(100, 0, 3600, 0);
		const struct dnscache_entry *e;
		bool stale;

		assert_int_equal(dnscache_load_buffer(c, m.b, m.len, false, NOW, "future"), 1);
		e = dnscache_get(c, "future.example", T_A, NOW, false, &stale);
		assert_non_null(e);
		assert_true(e->expires <= NOW + 3600);
		assert_true(e->ttl <= 3600);
		assert_null(dnscache_get(c, "future.example", T_A, NOW + 3601, false, &stale));
		dnscache_free(c);
	}

	/* Many entries but a small cache: bounded. */
	img_header(&m, 1, 0, 0);
	for (int i = 0; i < 50; i++) {
		char name[32];

		snprintf(name, sizeof(name), "n%d.example", i);
		img_record(&m, T_A, 0, 0, NOW + 300 + i, 300, name, 1, ip4, 4);
	}
	{
		struct dnscache *c = dnscache_new(10, 0, 3600, 0);

		assert_int_equal(dnscache_load_buffer(c, m.b, m.len, false, NOW, "many"), 50);
		assert_int_equal(dnscache_count(c), 10);
		dnscache_free(c);
	}
}

/* Files we must not believe whatever they contain. */
static void
test_unsafe_files(void **state)
{
	static struct img m;
	struct dnscache *c = dnscache_new(100, 0, 86400, 86400);
	char link[220], dirp[220];
	unsigned long failures;
	int fd;

	img_header(&m, 1, 0, 1);
	img_record(&m, T_A, 0, 0, NOW + 300, 300, "one.example", 1, ip4, 4);
	write_file(path, m.b, m.len, 0600);
	assert_int_equal(dnscache_load(c, path, false, NOW), 1);
	dnscache_flush(c, NULL);
	/* Writable by others: ignored. */
	write_file(path, m.b, m.len, 0666);
	assert_int_equal(dnscache_load(c, path, false, NOW), -1);
	write_file(path, m.b, m.len, 0620);
	assert_int_equal(dnscache_load(c, path, false, NOW), -1);
	assert_int_equal(dnscache_count(c), 0);
	/* A symlink: ignored. */
	write_file(path, m.b, m.len, 0600);
	snprintf(link, sizeof(link), "%s/link.cache", tmpdir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(dnscache_load(c, link, false, NOW), -1);
	unlink(link);
	/* A directory: ignored. */
	snprintf(dirp, sizeof(dirp), "%s/dir.cache", tmpdir);
	assert_int_equal(mkdir(dirp, 0700), 0);
	assert_int_equal(dnscache_load(c, dirp, false, NOW), -1);
	rmdir(dirp);
	/* Bigger than the bound (sparse): ignored without reading it. */
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)DNSCACHE_MAX_FILE + 1), 0);
	close(fd);
	assert_int_equal(dnscache_load(c, path, false, NOW), -1);
	assert_int_equal(dnscache_count(c), 0);
	/* Saving into a directory that does not exist fails cleanly (in the background:
	 * counted and logged, nothing left behind). */
	put_a(c, "x.example", 60, DNS_INSECURE, NOW);
	failures = atomicfile_failures();
	assert_int_equal(dnscache_save(c, "/nonexistent-qf/dns.cache", false, NOW), 0);
	atomicfile_sync(NULL);
	assert_int_equal(atomicfile_failures(), failures + 1);
	assert_int_equal(atomicfile_pending(), 0);
	unlink(path);
	dnscache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_clamp_and_stale),
		cmocka_unit_test(test_refuses_bogus_and_inconsistent),
		cmocka_unit_test(test_flush_and_evict),
		cmocka_unit_test(test_evict_order_model),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_broken_files),
		cmocka_unit_test(test_unsafe_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
