/* tls/ticketpeers.c - certificate chains that sealed session tickets name by hash.
 * SPDX-License-Identifier: ISC
 * ticketkeys.c seals into every ticket the SHA-256 (cut to TLS_IDENT_HASH bytes) of the
 * chain the client proved at its full handshake; stateless tickets have no room for the
 * chain itself, so it is kept here, in memory and in <ticket key file>.peers, and found
 * again by that hash when a ticket is opened - at this node or at any other node that
 * shares the key file and this file. The hash is the only authority: an entry's key is
 * computed from its certificates when it is read, so whoever can write the file can add
 * or remove chains but can never make a ticket name a chain it was not sealed with (a
 * removed chain makes the ticket's resumption fall back to a full handshake). Writers
 * hold the key file's lock, merge what other nodes wrote, and replace the file
 * atomically; entries expire, the count and every chain are bounded. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../core/bytes.h"
#include "../core/log.h"
#include "tls_int.h"

#define TP_MAGIC      "QFTP"
#define TP_VERSION    2u
#define TP_HDR        12              /* magic, version, count */
#define TP_EHDR       12              /* keep-until u64, certificates u32 */

/* One peer's chain. */
struct tp_entry {
	unsigned char  hash[WC_SHA256_DIGEST_SIZE];  /* of the chain encoding, computed */
	int64_t        until;                         /* kept until (seconds) */
	size_t         n;                             /* certificates */
	size_t         len[TLS_CHAIN_MAX];
	unsigned char *der;                           /* back to back, leaf first, owned */
	size_t         total;
};

struct tls_ticketpeers {
	char            *path;   /* owned; NULL = memory only */
	char            *lock;   /* owned; the key file's lock file */
	struct tp_entry *e;      /* TLS_PEERS_MAX slots, owned */
	size_t           n;
	ino_t            ino;    /* of the file last read or written */
	struct timespec  mtime;
};

static void tp_remove(struct tls_ticketpeers *, size_t);
static struct tp_entry *tp_find(struct tls_ticketpeers *, const unsigned char *, size_t);
static int tp_insert(struct tls_ticketpeers *, struct tp_entry *);
static void tp_prune(struct tls_ticketpeers *, int64_t);
static bool tp_changed(const struct tls_ticketpeers *);
static void tp_load(struct tls_ticketpeers *);
static int tp_save(struct tls_ticketpeers *);



int
tls_chain_hash(const struct tls_chain *c, unsigned char out[WC_SHA256_DIGEST_SIZE])
{
	wc_Sha256 sha;
	unsigned char l[4];
	int rc;

	if (c->n == 0 || wc_InitSha256(&sha) != 0)
		return -1;
	put_u32(l, (uint32_t)c->n);
	rc = wc_Sha256Update(&sha, l, 4);
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		put_u32(l, (uint32_t)c->len[i]);
		rc = wc_Sha256Update(&sha, l, 4);
		if (rc == 0)
			rc = wc_Sha256Update(&sha, c->der[i], (word32)c->len[i]);
	}
	if (rc == 0)
		rc = wc_Sha256Final(&sha, out);
	wc_Sha256Free(&sha);
	return rc == 0 ? 0 : -1;
}

struct tls_ticketpeers *
tls_ticketpeers_new(const char *key_path)
{
	struct tls_ticketpeers *tp;

	if ((tp = calloc(1, sizeof(*tp))) == NULL ||
	    (tp->e = calloc(TLS_PEERS_MAX, sizeof(*tp->e))) == NULL)
		goto fail;
	if (key_path != NULL) {
		size_t n = strlen(key_path) + sizeof(".peers");

		if ((tp->path = malloc(n)) == NULL || (tp->lock = malloc(n)) == NULL)
			goto fail;
		snprintf(tp->path, n, "%s.peers", key_path);
		snprintf(tp->lock, n, "%s.lock", key_path);
		tp_load(tp);
	}
	return tp;
fail:
	tls_ticketpeers_free(tp);
	return NULL;
}

void
tls_ticketpeers_free(struct tls_ticketpeers *tp)
{
	if (tp == NULL)
		return;
	for (size_t i = 0; tp->e != NULL && i < tp->n; i++)
		free(tp->e[i].der);
	free(tp->e);
	free(tp->path);
	free(tp->lock);
	free(tp);
}

size_t
tls_ticketpeers_count(const struct tls_ticketpeers *tp)
{
	return tp != NULL ? tp->n : 0;
}

static void
tp_remove(struct tls_ticketpeers *tp, size_t i)
{
	free(tp->e[i].der);
	tp->e[i] = tp->e[--tp->n];
	memset(&tp->e[tp->n], 0, sizeof(tp->e[0]));
}

static struct tp_entry *
tp_find(struct tls_ticketpeers *tp, const unsigned char *hash, size_t hlen)
{
	for (size_t i = 0; i < tp->n; i++)
		if (memcmp(tp->e[i].hash, hash, hlen) == 0)
			return &tp->e[i];
	return NULL;
}

/* Take e (its der too): merged into an entry with the same hash (the later keep-until
 * wins), or added, evicting the entry that expires first when full. Returns 1 when
 * memory changed, 0 when not (e freed either way). */
static int
tp_insert(struct tls_ticketpeers *tp, struct tp_entry *e)
{
	struct tp_entry *old = tp_find(tp, e->hash, sizeof(e->hash));

	if (old != NULL) {
		bool later = e->until > old->until;

		if (later)
			old->until = e->until;
		free(e->der);
		return later ? 1 : 0;
	}
	if (tp->n == TLS_PEERS_MAX) {
		size_t first = 0;

		for (size_t i = 1; i < tp->n; i++)
			if (tp->e[i].until < tp->e[first].until)
				first = i;
		if (tp->e[first].until >= e->until) {
			free(e->der);
			return 0;
		}
		tp_remove(tp, first);
	}
	tp->e[tp->n++] = *e;
	return 1;
}

static void
tp_prune(struct tls_ticketpeers *tp, int64_t now)
{
	for (size_t i = 0; i < tp->n; )
		if (tp->e[i].until <= now)
			tp_remove(tp, i);
		else
			i++;
}

static bool
tp_changed(const struct tls_ticketpeers *tp)
{
	struct stat sb;

	if (tp->path == NULL || stat(tp->path, &sb) == -1)
		return false;
	return sb.st_ino != tp->ino || sb.st_mtim.tv_sec != tp->mtime.tv_sec ||
	    sb.st_mtim.tv_nsec != tp->mtime.tv_nsec;
}

/* Merge the file into memory. A missing file adds nothing; a foreign, oversized or
 * damaged one is logged and read up to the damage. Each entry's hash is computed here
 * from its certificates, never taken from the file. */
static void
tp_load(struct tls_ticketpeers *tp)
{
	unsigned char *buf = NULL;
	const unsigned char *p, *end;
	int64_t now = (int64_t)time(NULL);
	size_t max = TP_HDR + (size_t)TLS_PEERS_MAX * (TP_EHDR + 4 * TLS_CHAIN_MAX +
	    TLS_PEER_CHAIN_MAX), added = 0;
	struct stat sb;
	uint32_t n;
	int fd;

	if ((fd = open(tp->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno != ENOENT)
			log_warn("tls ticket_peers=%s reason=open-failed", tp->path);
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 077) != 0 || sb.st_size < TP_HDR || (size_t)sb.st_size > max ||
	    (buf = malloc((size_t)sb.st_size)) == NULL ||
	    read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
		log_warnx("tls ticket_peers=%s reason=foreign-oversized-or-unreadable-file "
		    "(ignored)", tp->path);
		goto out;
	}
	tp->ino = sb.st_ino;
	tp->mtime = sb.st_mtim;
	end = buf + sb.st_size;
	if (memcmp(buf, TP_MAGIC, 4) != 0 || get_u32(buf + 4) != TP_VERSION) {
		log_warnx("tls ticket_peers=%s reason=bad-header-or-version (ignored)", tp->path);
		goto out;
	}
	n = get_u32(buf + 8);
	p = buf + TP_HDR;
	for (uint32_t i = 0; i < n; i++) {
		struct tp_entry e;
		struct tls_chain c;
		size_t off = 0;

		memset(&e, 0, sizeof(e));
		if (end - p < TP_EHDR)
			break;
		e.until = (int64_t)((uint64_t)get_u32(p) << 32 | get_u32(p + 4));
		e.n = get_u32(p + 8);
		p += TP_EHDR;
		if (e.n == 0 || e.n > TLS_CHAIN_MAX || (size_t)(end - p) < 4 * e.n)
			break;
		for (size_t k = 0; k < e.n; k++, p += 4) {
			e.len[k] = get_u32(p);
			e.total += e.len[k];
			if (e.len[k] == 0 || e.total > TLS_PEER_CHAIN_MAX)
				e.total = TLS_PEER_CHAIN_MAX + 1;  /* stops the outer loop */
		}
		if (e.total > TLS_PEER_CHAIN_MAX || (size_t)(end - p) < e.total)
			break;
		if (e.until > now) {
			c.n = e.n;
			for (size_t k = 0; k < e.n; off += e.len[k], k++) {
				c.der[k] = p + off;
				c.len[k] = e.len[k];
			}
			if (tls_chain_hash(&c, e.hash) == 0 && (e.der = malloc(e.total)) != NULL) {
				memcpy(e.der, p, e.total);
				added += (size_t)tp_insert(tp, &e);
			}
		}
		p += e.total;
	}
	if (p != end)
		log_warnx("tls ticket_peers=%s reason=damaged-entry (rest ignored)", tp->path);
	log_debug("tls ticket_peers=%s merged=%zu entries=%zu", tp->path, added, tp->n);
out:
	free(buf);
	close(fd);
}

/* Under the key file's lock: merge the file (other nodes' entries), drop expired ones,
 * write everything back atomically. Returns 0 or -1 (logged). */
static int
tp_save(struct tls_ticketpeers *tp)
{
	unsigned char *buf, *p;
	size_t size = TP_HDR;
	struct stat sb;
	int lk, rc = -1;

	if (tp->path == NULL)
		return 0;
	if ((lk = open(tp->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1 ||
	    flock(lk, LOCK_EX) == -1) {
		log_warn("tls ticket_peers=%s reason=lock-failed (not saved)", tp->path);
		if (lk != -1)
			close(lk);
		return -1;
	}
	if (tp_changed(tp))
		tp_load(tp);
	tp_prune(tp, (int64_t)time(NULL));
	for (size_t i = 0; i < tp->n; i++)
		size += TP_EHDR + 4 * tp->e[i].n + tp->e[i].total;
	if ((buf = malloc(size)) == NULL) {
		log_warnx("tls ticket_peers=%s reason=out-of-memory (not saved)", tp->path);
		goto out;
	}
	memcpy(buf, TP_MAGIC, 4);
	put_u32(buf + 4, TP_VERSION);
	put_u32(buf + 8, (uint32_t)tp->n);
	p = buf + TP_HDR;
	for (size_t i = 0; i < tp->n; i++) {
		const struct tp_entry *e = &tp->e[i];

		put_u32(p, (uint32_t)((uint64_t)e->until >> 32));
		put_u32(p + 4, (uint32_t)e->until);
		put_u32(p + 8, (uint32_t)e->n);
		p += TP_EHDR;
		for (size_t k = 0; k < e->n; k++, p += 4)
			put_u32(p, (uint32_t)e->len[k]);
		memcpy(p, e->der, e->total);
		p += e->total;
	}
	rc = tls_file_write_atomic(tp->path, buf, size);
	free(buf);
	if (rc == 0 && stat(tp->path, &sb) == 0) {
		tp->ino = sb.st_ino;
		tp->mtime = sb.st_mtim;
	}
out:
	close(lk);
	return rc;
}

int
tls_ticketpeers_put(struct tls_ticketpeers *tp, const struct tls_chain *c, int64_t now,
    int64_t keep_s, unsigned char hash[WC_SHA256_DIGEST_SIZE])
{
	struct tp_entry e, *old;
	size_t off = 0;

	if (tls_chain_hash(c, hash) == -1)
		return -1;
	if ((old = tp_find(tp, hash, WC_SHA256_DIGEST_SIZE)) != NULL &&
	    old->until >= now + keep_s)
		return 0;                        /* kept long enough: no write */
	memset(&e, 0, sizeof(e));
	memcpy(e.hash, hash, sizeof(e.hash));
	e.until = now + 2 * keep_s;          /* a write at most every keep_s per chain */
	e.n = c->n;
	for (size_t i = 0; i < c->n; i++) {
		e.len[i] = c->len[i];
		e.total += c->len[i];
	}
	if (e.n > TLS_CHAIN_MAX || e.total > TLS_PEER_CHAIN_MAX) {
		log_info("tls ticket_peers chain too large to keep (certificates=%zu bytes=%zu): "
		    "its tickets will not resume", e.n, e.total);
		return -1;
	}
	if ((e.der = malloc(e.total)) == NULL)
		return -1;
	for (size_t i = 0; i < c->n; off += c->len[i], i++)
		memcpy(e.der + off, c->der[i], c->len[i]);
	(void)tp_insert(tp, &e);
	return tp_save(tp);
}

int
tls_ticketpeers_get(struct tls_ticketpeers *tp, const unsigned char *hash, size_t hlen,
    struct tls_chain *c)
{
	struct tp_entry *e = tp_find(tp, hash, hlen);
	size_t off = 0;

	if (e == NULL && tp_changed(tp)) {
		tp_load(tp);                     /* another node's chain? */
		e = tp_find(tp, hash, hlen);
	}
	if (e == NULL || e->until <= (int64_t)time(NULL))
		return -1;
	c->n = e->n;
	for (size_t i = 0; i < e->n; off += e->len[i], i++) {
		c->der[i] = e->der + off;
		c->len[i] = e->len[i];
	}
	return 0;
}
