/* tls/store.c - the client TLS session store on disk (one saved session per peer).
 * SPDX-License-Identifier: ISC
 * ctx.c opens the store at start-up (state_dir/tls-sessions.db); session.c offers the
 * saved session of (local domain, peer domain, target) on a new outgoing connection and
 * saves the ticket the server sends. The file is versioned, every entry is bounded and
 * checksummed, expired entries are dropped, and it is rewritten atomically (0600): a
 * corrupt, foreign or unreadable file is logged and the store starts empty.
 * Cost per handshake is independent of the number of entries: each entry's checksum is
 * computed once (when it is put or loaded), lookups compare a 64-bit hash first, and the
 * file is rewritten at most once a second (the first change after a quiet second at
 * once, later ones by tls_store_sync, which the daemon calls every second, and at exit):
 * 10,000 peers setting up at once cost one rewrite a second, not one per handshake. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../core/bytes.h"
#include "../core/atomicfile.h"
#include "../core/log.h"
#include "tls_int.h"

#define STORE_MAGIC    "QFSS"
#define STORE_VERSION  1u
#define STORE_HDR      16            /* magic, version, count, reserved */
#define ENTRY_HDR      24            /* keylen u16, reserved u16, derlen u32, expiry, saved */
#define ENTRY_SUM      WC_SHA256_DIGEST_SIZE
#define KEY_MAX        768
#define DER_MAX        32768
#define COUNT_MAX      1000000u
#define SWEEP_EVERY    60            /* s between sweeps of expired entries on put */
#define SAVE_EVERY     1             /* s: at most one rewrite of the file per second */

struct store_entry {
	char          *key;     /* owned, NUL-terminated */
	unsigned char *der;     /* owned */
	size_t         len;
	int64_t        expiry;  /* absolute, seconds */
	int64_t        saved;   /* when it was stored, for dropping the oldest */
	uint64_t       khash;   /* of key, compared before the key */
	uint64_t       phash;   /* of key up to its last '|' (tls_store_get_newest) */
	unsigned char  sum[ENTRY_SUM];   /* of the entry as written (header, key, der) */
};

struct tls_store {
	char               *path;     /* owned */
	struct store_entry *e;        /* owned array */
	size_t              n, max;
	bool                dirty;       /* changed since the last save */
	time_t              last_save;   /* when it was last saved (or loaded) */
	time_t              last_sweep;  /* when expired entries were last dropped */
};

static void entry_free(struct store_entry *);
static void store_load(struct tls_store *);
static int store_save(struct tls_store *);
static void store_remove(struct tls_store *, size_t);
static struct store_entry *store_find(struct tls_store *, const char *);
static void store_changed(struct tls_store *, time_t);

/* FNV-1a over the first n bytes of s. */
static uint64_t
key_hash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
	return h;
}

/* The entry's hashes of its key and of its key's "local|peer|" prefix. */
static void
entry_hashes(struct store_entry *e)
{
	const char *bar = strrchr(e->key, '|');
	size_t klen = strlen(e->key);

	e->khash = key_hash(e->key, klen);
	e->phash = key_hash(e->key, bar != NULL ? (size_t)(bar - e->key) + 1 : klen);
}

/* The header of an entry as the file holds it. */
static void
entry_header(const struct store_entry *e, unsigned char eh[ENTRY_HDR])
{
	put_u16(eh, (unsigned)strlen(e->key));
	put_u16(eh + 2, 0);
	put_u32(eh + 4, (uint32_t)e->len);
	put_u64(eh + 8, (uint64_t)e->expiry);
	put_u64(eh + 16, (uint64_t)e->saved);
}

/* The checksum of an entry as the file holds it: header, key, der. */
static int
entry_sum(const struct store_entry *e, unsigned char out[ENTRY_SUM])
{
	unsigned char eh[ENTRY_HDR];
	wc_Sha256 sha;
	int rc;

	entry_header(e, eh);
	if (wc_InitSha256(&sha) != 0)
		return -1;
	rc = wc_Sha256Update(&sha, eh, sizeof(eh)) == 0 &&
	    wc_Sha256Update(&sha, (const unsigned char *)e->key, (word32)strlen(e->key)) == 0 &&
	    wc_Sha256Update(&sha, e->der, (word32)e->len) == 0 &&
	    wc_Sha256Final(&sha, out) == 0 ? 0 : -1;
	wc_Sha256Free(&sha);
	return rc;
}






static void
entry_free(struct store_entry *e)
{
	free(e->key);
	if (e->der != NULL)
		memset(e->der, 0, e->len);
	free(e->der);
	memset(e, 0, sizeof(*e));
}

/* The ticket key files are read and written by several nodes under a lock held across
 * this call: replaced now (rename), made durable by atomicfile's writer thread, so a
 * server handshake that seals a ticket never waits for an fsync. */
int
tls_file_write_atomic(const char *path, const unsigned char *data, size_t n)
{
	if (atomicfile_replace(path, data, n, 0600) == -1) {
		log_warn("tls file=%s reason=write-failed", path);
		return -1;
	}
	return 0;
}

/* Read the file into the store. Everything up to the first damaged entry is kept. */
static void
store_load(struct tls_store *st)
{
	unsigned char hdr[STORE_HDR], eh[ENTRY_HDR], sum[ENTRY_SUM], want[ENTRY_SUM];
	struct stat sb;
	uint32_t count;
	time_t now = time(NULL);
	size_t dropped = 0;
	FILE *f;
	int fd;

	atomicfile_sync(st->path);   /* what an earlier save queued is on disk */
	if ((fd = open(st->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno != ENOENT)
			log_warn("tls store=%s reason=open-failed (starting empty)", st->path);
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_warnx("tls store=%s reason=not-a-regular-file (ignored)", st->path);
		close(fd);
		return;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 077) != 0) {
		log_warnx("tls store=%s reason=foreign-file uid=%ld mode=%03o (ignored, not "
		    "owner-only)", st->path, (long)sb.st_uid, (unsigned)(sb.st_mode & 0777));
		close(fd);
		return;
	}
	if ((f = fdopen(fd, "rb")) == NULL) {
		close(fd);
		return;
	}
	if (fread(hdr, 1, sizeof(hdr), f) != sizeof(hdr) ||
	    memcmp(hdr, STORE_MAGIC, 4) != 0) {
		log_warnx("tls store=%s reason=bad-header (ignored, full handshakes)",
		    st->path);
		goto out;
	}
	if (get_u32(hdr + 4) != STORE_VERSION) {
		log_warnx("tls store=%s version=%u reason=unknown-version (ignored)", st->path,
		    (unsigned)get_u32(hdr + 4));
		goto out;
	}
	if ((count = get_u32(hdr + 8)) > COUNT_MAX) {
		log_warnx("tls store=%s count=%u reason=bad-count (ignored)", st->path,
		    (unsigned)count);
		goto out;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct store_entry e = { 0 };
		size_t klen, dlen;

		if (fread(eh, 1, sizeof(eh), f) != sizeof(eh)) {
			log_warnx("tls store=%s entry=%u reason=truncated (rest ignored)",
			    st->path, (unsigned)i);
			break;
		}
		klen = (size_t)eh[0] << 8 | eh[1];
		dlen = get_u32(eh + 4);
		if (klen == 0 || klen > KEY_MAX || dlen == 0 || dlen > DER_MAX) {
			log_warnx("tls store=%s entry=%u reason=bad-lengths key=%zu der=%zu "
			    "(rest ignored)", st->path, (unsigned)i, klen, dlen);
			break;
		}
		e.key = malloc(klen + 1);
		e.der = malloc(dlen);
		if (e.key == NULL || e.der == NULL ||
		    fread(e.key, 1, klen, f) != klen || fread(e.der, 1, dlen, f) != dlen ||
		    fread(sum, 1, sizeof(sum), f) != sizeof(sum)) {
			log_warnx("tls store=%s entry=%u reason=truncated (rest ignored)",
			    st->path, (unsigned)i);
			e.len = dlen;
			entry_free(&e);
			break;
		}
		e.key[klen] = '\0';
		e.len = dlen;
		e.expiry = (int64_t)get_u64(eh + 8);
		e.saved = (int64_t)get_u64(eh + 16);
		if (memchr(e.key, '\0', klen) != NULL || entry_sum(&e, want) != 0 ||
		    memcmp(sum, want, sizeof(sum)) != 0) {
			log_warnx("tls store=%s entry=%u reason=checksum-mismatch (rest ignored)",
			    st->path, (unsigned)i);
			entry_free(&e);
			break;
		}
		memcpy(e.sum, sum, sizeof(e.sum));
		entry_hashes(&e);
		if (e.expiry <= (int64_t)now || store_find(st, e.key) != NULL) {
			dropped++;
			entry_free(&e);
			continue;
		}
		if (st->n == st->max) {
			/* the file held more than the configured bound: keep the newest */
			size_t old = 0;

			for (size_t k = 1; k < st->n; k++)
				if (st->e[k].saved < st->e[old].saved)
					old = k;
			if (st->e[old].saved > e.saved) {
				entry_free(&e);
				continue;
			}
			store_remove(st, old);
		}
		st->e[st->n++] = e;
	}
	log_debug("tls store=%s loaded=%zu expired=%zu", st->path, st->n, dropped);
out:
	fclose(f);
}

struct tls_store *
tls_store_open(const char *path, size_t max_entries)
{
	struct tls_store *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->max = max_entries > 0 ? max_entries : 1000;
	st->last_sweep = time(NULL);   /* last_save 0: the first change is saved at once */
	if ((st->path = strdup(path)) == NULL ||
	    (st->e = calloc(st->max, sizeof(*st->e))) == NULL) {
		free(st->path);
		free(st);
		return NULL;
	}
	store_load(st);
	return st;
}

void
tls_store_free(struct tls_store *st)
{
	if (st == NULL)
		return;
	if (st->dirty)
		(void)store_save(st);
	atomicfile_sync(st->path);   /* its last save is on disk when this returns */
	for (size_t i = 0; i < st->n; i++)
		entry_free(&st->e[i]);
	free(st->e);
	free(st->path);
	free(st);
}

static struct store_entry *
store_find(struct tls_store *st, const char *key)
{
	uint64_t h = key_hash(key, strlen(key));

	for (size_t i = 0; i < st->n; i++)
		if (st->e[i].khash == h && strcmp(st->e[i].key, key) == 0)
			return &st->e[i];
	return NULL;
}

/* Something changed: saved now if the last save is a second old, else by the next
 * tls_store_sync (the daemon's one-second timer) or tls_store_free. */
static void
store_changed(struct tls_store *st, time_t now)
{
	st->dirty = true;
	if (now - st->last_save >= SAVE_EVERY)
		(void)store_save(st);
}

int
tls_store_sync(struct tls_store *st)
{
	if (st == NULL || !st->dirty)
		return 0;
	return store_save(st);
}

static void
store_remove(struct tls_store *st, size_t i)
{
	entry_free(&st->e[i]);
	st->e[i] = st->e[st->n - 1];
	memset(&st->e[st->n - 1], 0, sizeof(st->e[0]));
	st->n--;
}

/* Serialize every entry and replace the file. */
static int
store_save(struct tls_store *st)
{
	unsigned char *p, *q;
	size_t total = STORE_HDR;
	int rc;

	for (size_t i = 0; i < st->n; i++)
		total += ENTRY_HDR + strlen(st->e[i].key) + st->e[i].len + ENTRY_SUM;
	if ((p = malloc(total)) == NULL) {
		log_warnx("tls store=%s reason=out-of-memory", st->path);
		return -1;
	}
	memcpy(p, STORE_MAGIC, 4);
	put_u32(p + 4, STORE_VERSION);
	put_u32(p + 8, (uint32_t)st->n);
	put_u32(p + 12, 0);
	q = p + STORE_HDR;
	for (size_t i = 0; i < st->n; i++) {
		struct store_entry *e = &st->e[i];
		size_t klen = strlen(e->key);

		entry_header(e, q);
		q += ENTRY_HDR;
		memcpy(q, e->key, klen);
		q += klen;
		memcpy(q, e->der, e->len);
		q += e->len;
		memcpy(q, e->sum, ENTRY_SUM);   /* computed once, when the entry was made */
		q += ENTRY_SUM;
	}
	/* saved after a handshake: atomicfile's writer thread does the write and its
	 * fsyncs, the event loop goes on (a crash loses at most this update) */
	if ((rc = atomicfile_write_later(st->path, p, total, 0600)) == -1)
		log_warn("tls store=%s reason=write-failed", st->path);
	else
		st->dirty = false;
	st->last_save = time(NULL);
	memset(p, 0, total);
	free(p);
	return rc;
}

const unsigned char *
tls_store_get(struct tls_store *st, const char *key, time_t now, size_t *len)
{
	struct store_entry *e;

	if (st == NULL || (e = store_find(st, key)) == NULL)
		return NULL;
	if (e->expiry <= (int64_t)now) {
		log_debug("tls store key=%s reason=expired", key);
		tls_store_drop(st, key);
		return NULL;
	}
	*len = e->len;
	return e->der;
}

const unsigned char *
tls_store_get_newest(struct tls_store *st, const char *prefix, time_t now, size_t *len,
    const char **key)
{
	const struct store_entry *best = NULL;
	size_t n = strlen(prefix);
	const char *bar = strrchr(prefix, '|');
	/* compared by hash first when prefix is an entry's "local|peer|" */
	bool whole = n > 0 && bar == prefix + n - 1;
	uint64_t h = key_hash(prefix, n);

	for (size_t i = 0; st != NULL && i < st->n; i++) {
		const struct store_entry *e = &st->e[i];

		if ((!whole || e->phash == h) && strncmp(e->key, prefix, n) == 0 &&
		    e->expiry > (int64_t)now &&
		    (best == NULL || e->saved > best->saved))
			best = e;
	}
	if (best == NULL)
		return NULL;
	*len = best->len;
	*key = best->key;
	return best->der;
}

int
tls_store_put(struct tls_store *st, const char *key, const unsigned char *der,
    size_t len, time_t expiry, time_t now)
{
	struct store_entry ne = { 0 }, *e;

	if (st == NULL || len == 0 || len > DER_MAX || strlen(key) == 0 ||
	    strlen(key) > KEY_MAX)
		return -1;
	if (expiry <= now) {
		tls_store_drop(st, key);  /* an already expired ticket replaces nothing */
		return 0;
	}
	if ((ne.key = strdup(key)) == NULL || (ne.der = malloc(len)) == NULL) {
		free(ne.key);
		log_warnx("tls store key=%s reason=out-of-memory", key);
		return -1;
	}
	memcpy(ne.der, der, len);
	ne.len = len;
	ne.expiry = (int64_t)expiry;
	ne.saved = (int64_t)now;
	entry_hashes(&ne);
	if (entry_sum(&ne, ne.sum) != 0) {
		entry_free(&ne);
		return -1;
	}
	/* drop expired entries (once a minute, or when full), then the oldest while full */
	if (now - st->last_sweep >= SWEEP_EVERY || st->n == st->max) {
		st->last_sweep = now;
		for (size_t i = 0; i < st->n;)
			if (st->e[i].expiry <= (int64_t)now && strcmp(st->e[i].key, key) != 0)
				store_remove(st, i);
			else
				i++;
	}
	if ((e = store_find(st, key)) != NULL) {
		entry_free(e);
		*e = ne;
	} else {
		if (st->n == st->max) {
			size_t old = 0;

			for (size_t k = 1; k < st->n; k++)
				if (st->e[k].saved < st->e[old].saved)
					old = k;
			log_debug("tls store reason=full dropping=%s", st->e[old].key);
			store_remove(st, old);
		}
		st->e[st->n++] = ne;
	}
	store_changed(st, now);
	return 0;
}

void
tls_store_drop(struct tls_store *st, const char *key)
{
	for (size_t i = 0; st != NULL && i < st->n; i++)
		if (strcmp(st->e[i].key, key) == 0) {
			store_remove(st, i);
			store_changed(st, time(NULL));
			return;
		}
}

size_t
tls_store_count(const struct tls_store *st)
{
	return st != NULL ? st->n : 0;
}
