/* tests/fuzz/fuzz_tlsfiles.c - libFuzzer target for the TLS state file loaders.
 * SPDX-License-Identifier: ISC
 * Built by `make fuzz`. Byte 0 picks the file: the client session store (tls/store.c),
 * the ticket key file (tls/ticketkeys.c) or the ticket peer file (tls/ticketpeers.c).
 * Unless bit 0x80 is set, this harness fills in the SHA-256 checksums the store and key
 * formats carry, so that the fuzzer gets past them to the length and count checks (the
 * peer file has none: its entries are named by the hash of their contents). The file is loaded from a
 * private temporary directory, used a little and freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "core/buf.h"
#include "core/log.h"
#include "tls/tls_int.h"

#define SUM 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Store file: 16-byte header, then entries of a 24-byte header (keylen u16 at 0,
 * derlen u32 at 4), key, der, SHA-256 of all that. The input gives the header and
 * the entries without sums; the lengths come from the entry headers. */
static void
frame_store(struct buf *b, const uint8_t *p, size_t n)
{
	unsigned char sum[SUM];
	size_t off;

	if (n < 16) {
		buf_append(b, p, n);
		return;
	}
	buf_append(b, p, 16);
	off = 16;
	while (n - off >= 24) {
		size_t klen = (size_t)p[off] << 8 | p[off + 1];
		size_t dlen = (size_t)p[off + 4] << 24 | (size_t)p[off + 5] << 16 |
		    (size_t)p[off + 6] << 8 | p[off + 7];
		size_t len = 24 + klen + dlen;

		if (len > n - off) {
			buf_append(b, p + off, n - off);   /* truncated entry */
			return;
		}
		wc_Sha256Hash(p + off, (word32)len, sum);
		buf_append(b, p + off, len);
		buf_append(b, sum, SUM);
		off += len;
	}
	buf_append(b, p + off, n - off);
}

/* Ticket key and peer files: data then the SHA-256 of the data. */
static void
frame_sum(struct buf *b, const uint8_t *p, size_t n)
{
	unsigned char sum[SUM];

	wc_Sha256Hash(p, (word32)n, sum);
	buf_append(b, p, n);
	buf_append(b, sum, SUM);
}

static void
write_file(const char *path, const struct buf *b)
{
	FILE *f;

	unlink(path);
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (b->len > 0 && fwrite(b->data, 1, b->len, f) != b->len)
		abort();
	fclose(f);
	if (chmod(path, 0600) == -1)
		abort();
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
	static char dir[64], spath[64], kpath[64], ppath[80];
	struct tls_store *st;
	struct tls_ticketkeys *tk;
	struct buf b;
	size_t len;
	uint8_t ctl;

	if (spath[0] == '\0') {
		log_set_level(LOG_ERR);
		if (mkdtemp(fuzz_tmpl(dir, sizeof(dir), "tls")) == NULL)
			abort();
		snprintf(spath, sizeof(spath), "%s/sessions", dir);
		snprintf(kpath, sizeof(kpath), "%s/ticket.keys", dir);
		snprintf(ppath, sizeof(ppath), "%s/ticket.keys.peers", dir);
	}
	if (size < 1)
		return 0;
	ctl = data[0];
	buf_init(&b, 1 << 24);
	switch (ctl % 3) {
	case 0:
		if (ctl & 0x80)
			buf_append(&b, data + 1, size - 1);
		else
			frame_store(&b, data + 1, size - 1);
		write_file(spath, &b);
		if ((st = tls_store_open(spath, 1 + (ctl >> 3 & 7))) == NULL)
			abort();
		(void)tls_store_get(st, "a.example|b.example", time(NULL), &len);
		if (ctl & 0x40) {
			(void)tls_store_put(st, "a.example|c.example",
			    (const unsigned char *)"\x30\x03\x02\x01\x01", 5, time(NULL) + 600,
			    time(NULL));
			tls_store_drop(st, "a.example|b.example");
		}
		if (tls_store_count(st) > 1 + (size_t)(ctl >> 3 & 7))
			abort();
		tls_store_free(st);
		break;
	case 1:
	case 2:
		if (ctl & 0x80 || ctl % 3 == 2)
			buf_append(&b, data + 1, size - 1);
		else
			frame_sum(&b, data + 1, size - 1);
		unlink(kpath);
		unlink(ppath);
		write_file(ctl % 3 == 1 ? kpath : ppath, &b);
		if ((tk = tls_ticketkeys_new(kpath, 3600)) == NULL)
			abort();
		(void)tls_ticketkeys_age(tk, time(NULL));
		(void)tls_ticketkeys_peer_count(tk);
		if (ctl & 0x40)
			(void)tls_ticketkeys_maybe_rotate(tk, time(NULL) + 7200);
		tls_ticketkeys_free(tk);
		break;
	}
	buf_free(&b);
	return 0;
}
