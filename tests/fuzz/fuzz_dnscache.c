/* tests/fuzz/fuzz_dnscache.c - libFuzzer target for the DNS cache file loader.
 * SPDX-License-Identifier: ISC
 * Built by `make fuzz`. Byte 0 chooses the mode: the rest of the input is either a raw
 * cache file image, or a list of records (u16 length + body) that this harness frames
 * with a valid header and valid CRCs so the fuzzer reaches the record decoder. The
 * loaded cache is then queried, written with dnscache_save and read back: the reload
 * must hold as many answers as were saved. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "dns/cache.h"

#define NOW 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Frame records as a file: header with CRC, then u32 length, u32 CRC, body. */
static void
frame(struct buf *b, const uint8_t *p, size_t n, bool validated)
{
	unsigned char h[24];
	size_t off = 0;

	memcpy(h, "QFDNSCA\n", 8);
	u32(h + 8, DNSCACHE_VERSION);
	u32(h + 12, validated ? 1 : 0);
	u32(h + 16, 0);
	u32(h + 20, dnscache_crc32(h, 20));
	buf_append(b, h, sizeof(h));
	while (n - off >= 2) {
		size_t rl = (size_t)p[off] << 8 | p[off + 1];

		off += 2;
		if (rl > n - off)
			rl = n - off;
		u32(h, (uint32_t)rl);
		u32(h + 4, dnscache_crc32(p + off, rl));
		buf_append(b, h, 8);
		buf_append(b, p + off, rl);
		off += rl;
	}
}

static int
count_cb(void *arg, const struct dnscache_entry *e)
{
	if (e->n_rr > DNSCACHE_MAX_RR || (e->n_rr > 0) != (e->data != NULL))
		abort();
	for (size_t i = 0; i < e->n_rr; i++)
		if (e->rdoff[i] + e->rdlen[i] > e->data_len)
			abort();
	(*(size_t *)arg)++;
	return 0;
}

/* A temporary directory template, in memory (/dev/shm) when possible: files are
 * written and fsynced for every input. */
static char *
fuzz_tmpl(char *buf, size_t n, const char *what)
{
	snprintf(buf, n, "%s/qf-fuzz-%s.XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", what);
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64], path[64];
	struct dnscache *c, *c2;
	struct dnscache_entry e;
	struct buf b;
	bool validating, stale;
	size_t n = 0, saved;
	uint8_t ctl;
	int rc;

	if (path[0] == '\0') {
		log_set_level(LOG_ERR);
		if (mkdtemp(fuzz_tmpl(dir, sizeof(dir), "dnscache")) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/dns.cache", dir);
	}
	if (size < 1)
		return 0;
	ctl = data[0];
	validating = (ctl & 2) != 0;
	buf_init(&b, DNSCACHE_MAX_FILE);
	if (ctl & 1)
		frame(&b, data + 1, size - 1, (ctl & 4) != 0);
	else
		buf_append(&b, data + 1, size - 1);
	if ((c = dnscache_new(1 + (ctl >> 4), 60, 86400, 86400)) == NULL)
		abort();
	rc = dnscache_load_buffer(c, (const unsigned char *)b.data, b.len, validating, NOW,
	    "fuzz");
	buf_free(&b);
	if (rc > 0 && dnscache_count(c) == 0)
		abort();
	dnscache_foreach(c, count_cb, &n);
	if (n != dnscache_count(c))
		abort();

	(void)dnscache_get(c, "example.org", 1, NOW, true, &stale);
	(void)dnscache_get(c, "_xmpp-server._tcp.example.org", 33, NOW + 90000, true, &stale);
	memset(&e, 0, sizeof(e));
	if (dnscache_entry_init(&e, "Example.ORG.", 1, DNSCACHE_DATA, DNS_INSECURE, 300) == 0 &&
	    dnscache_entry_add_rr(&e, "\x7f\x00\x00\x01", 4) == 0)
		(void)dnscache_put(c, &e, NOW);
	dnscache_entry_clear(&e);
	if (dnscache_get(c, "example.org", 1, NOW, false, &stale) == NULL)
		abort();
	(void)dnscache_prune(c, NOW + 86400 + 3600);

	/* save and reload: the same number of answers must come back */
	saved = dnscache_count(c);
	if (dnscache_save(c, path, validating, NOW) == 0) {
		if ((c2 = dnscache_new(1 + (ctl >> 4), 60, 86400, 86400)) == NULL)
			abort();
		rc = dnscache_load(c2, path, validating, NOW);
		if (rc != (int)dnscache_count(c) || dnscache_count(c2) != dnscache_count(c)) {
			fprintf(stderr, "reload: saved %zu (now %zu), loaded %d\n", saved,
			    dnscache_count(c), rc);
			abort();
		}
		dnscache_free(c2);
	}
	(void)dnscache_flush(c, (ctl & 8) ? "example.org" : NULL);
	dnscache_free(c);
	return 0;
}
