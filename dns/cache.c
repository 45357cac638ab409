/* dns/cache.c - the DNS answer cache: hash table in memory plus an atomic disk file.
 * SPDX-License-Identifier: ISC
 * resolver.c stores each (name, type) answer here with its TTL and DNSSEC status and
 * looks answers up before querying; expired answers stay for serve-stale (RFC 8767).
 * The file (STATE_DIR/dns.cache) is a header (magic, version, flags, count, CRC) and
 * length-prefixed records each with its own CRC-32; everything read back is checked
 * again (names, types, lengths, TTLs, security) before it is believed. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/bytes.h"
#include "core/atomicfile.h"
#include "core/log.h"
#include "dns/cache.h"

#define CACHE_MAGIC       0x44434348u         /* "DCCH" */
#define FILE_MAGIC        "QFDNSCA\n"
#define FILE_MAGIC_LEN    8
#define FILE_HDR_LEN      (FILE_MAGIC_LEN + 4 + 4 + 4 + 4)
#define FILE_FLAG_VALIDATED 0x1u
#define REC_HDR_LEN       8                   /* u32 length, u32 crc */
#define REC_MIN_LEN       (2 + 1 + 1 + 8 + 4 + 1 + 1 + 1)
#define REC_MAX_LEN       (REC_MIN_LEN + 255 + DNSCACHE_MAX_RR * (2 + DNSCACHE_MAX_RDLEN))
#define MAX_TTL_ABS       (7u * 86400u)       /* no answer lives longer, whatever the config */
#define RR_TYPE_A         1
#define RR_TYPE_AAAA      28
#define RR_TYPE_SRV       33

struct node {
	struct dnscache_entry e;
	struct node *next;        /* in its bucket */
	size_t       hpos;        /* its place in the heap */
};

struct dnscache {
	uint32_t      magic;
	struct node **buckets;
	size_t        n_buckets;  /* power of two */
	size_t        count, max_entries;
	struct node **heap;       /* every node, a min-heap by e.expires (count of them):
	                           * the one to evict is heap[0], found in O(1) */
	size_t        heap_cap;
	uint32_t      min_ttl, max_ttl, max_stale;
	unsigned long generation;
	struct dnscache_stats stats;
};

static int name_normalize(const char *, char *, size_t);
static uint32_t name_hash(const char *, uint16_t);
static struct node **find_slot(struct dnscache *, const char *, uint16_t);
static void node_free(struct node *);
static bool entry_consistent(const struct dnscache_entry *);
static void evict_one(struct dnscache *, int64_t);
static int heap_push(struct dnscache *, struct node *);
static void heap_remove(struct dnscache *, struct node *);
static int encode_entry(struct buf *, const struct dnscache_entry *);
static int decode_entry(const unsigned char *, size_t, struct dnscache_entry *,
    const char **);

struct dnscache *
dnscache_new(size_t max_entries, uint32_t min_ttl, uint32_t max_ttl, uint32_t max_stale)
{
	struct dnscache *c;
	size_t nb = 64;

	if (max_entries == 0)
		max_entries = 1;
	while (nb < max_entries && nb < (1u << 20))
		nb <<= 1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->buckets = calloc(nb, sizeof(*c->buckets))) == NULL) {
		free(c);
		return NULL;
	}
	c->magic = CACHE_MAGIC;
	c->n_buckets = nb;
	c->max_entries = max_entries;
	if (max_ttl > MAX_TTL_ABS)
		max_ttl = MAX_TTL_ABS;
	if (min_ttl > max_ttl)
		min_ttl = max_ttl;
	c->min_ttl = min_ttl;
	c->max_ttl = max_ttl;
	c->max_stale = max_stale;
	return c;
}

void
dnscache_free(struct dnscache *c)
{
	if (c == NULL || c->magic != CACHE_MAGIC)
		return;
	dnscache_flush(c, NULL);
	free(c->buckets);
	free(c->heap);
	c->magic = 0;
	free(c);
}

int
dnscache_entry_init(struct dnscache_entry *e, const char *name, uint16_t qtype,
    enum dnscache_kind kind, enum dns_security security, uint32_t ttl)
{
	char norm[256];

	dnscache_entry_clear(e);
	if (name == NULL || name_normalize(name, norm, sizeof(norm)) == -1 || qtype == 0)
		return -1;
	memcpy(e->name, norm, sizeof(norm));
	e->qtype = qtype;
	e->kind = kind;
	e->security = security;
	e->ttl = ttl;
	return 0;
}

int
dnscache_entry_add_rr(struct dnscache_entry *e, const void *rdata, size_t len)
{
	unsigned char *p;

	if (e->n_rr >= DNSCACHE_MAX_RR || len == 0 || len > DNSCACHE_MAX_RDLEN)
		return -1;
	if ((p = realloc(e->data, e->data_len + len)) == NULL)
		return -1;
	e->data = p;
	memcpy(p + e->data_len, rdata, len);
	e->rdoff[e->n_rr] = (uint32_t)e->data_len;   /* at most 32 x MAX_RDLEN */
	e->rdlen[e->n_rr] = (uint16_t)len;
	e->n_rr++;
	e->data_len += len;
	return 0;
}

void
dnscache_entry_clear(struct dnscache_entry *e)
{
	if (e == NULL)
		return;
	free(e->data);
	memset(e, 0, sizeof(*e));
}

struct dnscache_entry *
dnscache_entry_dup(const struct dnscache_entry *e)
{
	struct dnscache_entry *d;

	if ((d = malloc(sizeof(*d))) == NULL)
		return NULL;
	*d = *e;
	d->data = NULL;
	if (e->data_len > 0) {
		if ((d->data = malloc(e->data_len)) == NULL) {
			free(d);
			return NULL;
		}
		memcpy(d->data, e->data, e->data_len);
	}
	return d;
}

void
dnscache_entry_free(struct dnscache_entry *e)
{
	if (e == NULL)
		return;
	free(e->data);
	free(e);
}

int
dnscache_put(struct dnscache *c, const struct dnscache_entry *e, int64_t now)
{
	struct node **slot, *n;
	uint32_t ttl;

	if (c == NULL || e == NULL || !entry_consistent(e))
		return -1;
	ttl = e->ttl;
	if (ttl < c->min_ttl)
		ttl = c->min_ttl;
	if (ttl > c->max_ttl)
		ttl = c->max_ttl;
	slot = find_slot(c, e->name, e->qtype);
	if (*slot == NULL && c->count >= c->max_entries) {
		evict_one(c, now);
		slot = find_slot(c, e->name, e->qtype);
	}
	if (*slot == NULL && c->count == c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
		struct node **nh = realloc(c->heap, cap * sizeof(*nh));

		if (nh == NULL)
			return -1;
		c->heap = nh;
		c->heap_cap = cap;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return -1;
	n->e = *e;
	n->e.data = NULL;
	if (e->data_len > 0) {
		if ((n->e.data = malloc(e->data_len)) == NULL) {
			free(n);
			return -1;
		}
		memcpy(n->e.data, e->data, e->data_len);
	}
	n->e.ttl = ttl;
	n->e.expires = now + ttl;
	if (*slot != NULL) {
		n->next = (*slot)->next;
		heap_remove(c, *slot);
		node_free(*slot);
	} else {
		n->next = NULL;
	}
	*slot = n;
	(void)heap_push(c, n);      /* room was made above */
	c->stats.stored++;
	c->generation++;
	return 0;
}

const struct dnscache_entry *
dnscache_get(struct dnscache *c, const char *name, uint16_t qtype, int64_t now,
    bool allow_stale, bool *stale)
{
	char norm[256];
	struct node *n;

	if (stale != NULL)
		*stale = false;
	if (c == NULL || name == NULL || name_normalize(name, norm, sizeof(norm)) == -1)
		return NULL;
	if ((n = *find_slot(c, norm, qtype)) == NULL)
		return NULL;
	if (now < n->e.expires)
		return &n->e;
	if (!allow_stale || now - n->e.expires > (int64_t)c->max_stale)
		return NULL;
	if (stale != NULL)
		*stale = true;
	return &n->e;
}

/* Drop every entry for which doomed() says so; returns how many went. */
static size_t
remove_if(struct dnscache *c, bool (*doomed)(const struct dnscache_entry *, const void *),
    const void *arg)
{
	size_t dropped = 0;

	for (size_t b = 0; b < c->n_buckets; b++) {
		struct node **pp = &c->buckets[b];

		while (*pp != NULL) {
			struct node *n = *pp;

			if (!doomed(&n->e, arg)) {
				pp = &n->next;
				continue;
			}
			*pp = n->next;
			heap_remove(c, n);
			node_free(n);
			dropped++;
		}
	}
	if (dropped > 0)
		c->generation++;
	return dropped;
}

/* NAME itself or a name below it ("" = everything). */
static bool
under_name(const struct dnscache_entry *e, const void *arg)
{
	const char *norm = arg;
	size_t nlen = strlen(norm), len = strlen(e->name);

	return nlen == 0 || strcmp(e->name, norm) == 0 ||
	    (len > nlen && e->name[len - nlen - 1] == '.' &&
	    strcmp(e->name + len - nlen, norm) == 0);
}

struct stale_limit {
	int64_t now;
	uint32_t max_stale;
};

static bool
too_stale(const struct dnscache_entry *e, const void *arg)
{
	const struct stale_limit *l = arg;

	return l->now - e->expires > (int64_t)l->max_stale;
}

size_t
dnscache_flush(struct dnscache *c, const char *name)
{
	char norm[256] = "";

	if (c == NULL)
		return 0;
	if (name != NULL && *name != '\0' && name_normalize(name, norm, sizeof(norm)) == -1)
		return 0;
	return remove_if(c, under_name, norm);
}

size_t
dnscache_prune(struct dnscache *c, int64_t now)
{
	struct stale_limit l;

	if (c == NULL)
		return 0;
	l.now = now;
	l.max_stale = c->max_stale;
	return remove_if(c, too_stale, &l);
}

size_t
dnscache_count(const struct dnscache *c)
{
	return c != NULL ? c->count : 0;
}

void
dnscache_get_stats(const struct dnscache *c, struct dnscache_stats *out)
{
	if (out == NULL)
		return;
	if (c == NULL)
		memset(out, 0, sizeof(*out));
	else
		*out = c->stats;
}

void
dnscache_foreach(const struct dnscache *c, dnscache_each_fn fn, void *arg)
{
	if (c == NULL || fn == NULL)
		return;
	for (size_t b = 0; b < c->n_buckets; b++)
		for (const struct node *n = c->buckets[b]; n != NULL; n = n->next)
			if (fn(arg, &n->e) != 0)
				return;
}

unsigned long
dnscache_generation(const struct dnscache *c)
{
	return c != NULL ? c->generation : 0;
}

int
dnscache_save(struct dnscache *c, const char *path, bool validated, int64_t now)
{
	unsigned char hdr[FILE_HDR_LEN];
	struct buf b;
	uint32_t count = 0;

	if (c == NULL || path == NULL || strlen(path) + 16 >= 4096)
		return -1;
	dnscache_prune(c, now);
	buf_init(&b, DNSCACHE_MAX_FILE);
	memset(hdr, 0, sizeof(hdr));
	if (buf_append(&b, hdr, sizeof(hdr)) == -1)
		goto nomem;
	for (size_t i = 0; i < c->n_buckets; i++)
		for (const struct node *n = c->buckets[i]; n != NULL; n = n->next) {
			if (encode_entry(&b, &n->e) == -1) {
				log_warnx("dns cache-save file=%s reason=size-limit entries=%u",
				    path, (unsigned)count);
				goto full;
			}
			count++;
		}
full:
	memcpy(hdr, FILE_MAGIC, FILE_MAGIC_LEN);
	put_u32(hdr + 8, DNSCACHE_VERSION);
	put_u32(hdr + 12, validated ? FILE_FLAG_VALIDATED : 0);
	put_u32(hdr + 16, count);
	put_u32(hdr + 20, dnscache_crc32(hdr, 20));
	memcpy(b.data, hdr, sizeof(hdr));

	/* atomicfile's writer thread does the write and its fsyncs: the event loop
	 * (resolver.c's save timer) never waits for the disk */
	if (atomicfile_write_later(path, b.data, b.len, 0600) == -1) {
		log_warn("dns cache-save file=%s reason=write", path);
		buf_free(&b);
		return -1;
	}
	buf_free(&b);
	log_debug("dns cache-save file=%s entries=%u", path, (unsigned)count);
	return 0;
nomem:
	buf_free(&b);
	log_warnx("dns cache-save file=%s reason=alloc", path);
	return -1;
}

int
dnscache_load(struct dnscache *c, const char *path, bool validating, int64_t now)
{
	unsigned char *p;
	struct stat sb;
	size_t off = 0;
	int fd, rc;

	if (c == NULL || path == NULL)
		return -1;
	atomicfile_sync(path);   /* what an earlier save queued is on disk */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("dns cache-load file=%s reason=open (ignored)", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_warnx("dns cache-load file=%s reason=not-a-regular-file (ignored)", path);
		close(fd);
		return -1;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 022) != 0) {
		log_warnx("dns cache-load file=%s reason=unsafe-owner-or-mode uid=%u mode=%o "
		    "(ignored)", path, (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
		close(fd);
		return -1;
	}
	if (sb.st_size > DNSCACHE_MAX_FILE) {
		log_warnx("dns cache-load file=%s reason=too-big size=%lld (ignored)", path,
		    (long long)sb.st_size);
		close(fd);
		return -1;
	}
	if ((p = malloc((size_t)sb.st_size + 1)) == NULL) {
		log_warn("dns cache-load file=%s reason=alloc", path);
		close(fd);
		return -1;
	}
	while (off < (size_t)sb.st_size) {
		ssize_t n = read(fd, p + off, (size_t)sb.st_size - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("dns cache-load file=%s reason=read (ignored)", path);
			free(p);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	rc = dnscache_load_buffer(c, p, off, validating, now, path);
	free(p);
	return rc;
}

int
dnscache_load_buffer(struct dnscache *c, const unsigned char *p, size_t len,
    bool validating, int64_t now, const char *what)
{
	size_t off = FILE_HDR_LEN;
	uint32_t version, flags, count;
	int loaded = 0, rejected = 0;

	if (c == NULL || (p == NULL && len > 0))
		return -1;
	if (what == NULL)
		what = "(buffer)";
	if (len < FILE_HDR_LEN || memcmp(p, FILE_MAGIC, FILE_MAGIC_LEN) != 0) {
		log_warnx("dns cache-load file=%s reason=bad-magic (ignored)", what);
		return -1;
	}
	if (get_u32(p + 20) != dnscache_crc32(p, 20)) {
		log_warnx("dns cache-load file=%s reason=header-checksum (ignored)", what);
		return -1;
	}
	version = get_u32(p + 8);
	flags = get_u32(p + 12);
	count = get_u32(p + 16);
	if (version != DNSCACHE_VERSION) {
		log_warnx("dns cache-load file=%s reason=version-%u-unsupported (ignored)", what,
		    (unsigned)version);
		return -1;
	}
	if (validating && (flags & FILE_FLAG_VALIDATED) == 0) {
		log_warnx("dns cache-load file=%s reason=written-without-dnssec (ignored)", what);
		return -1;
	}
	while (off < len) {
		struct dnscache_entry e;
		const char *why = NULL;
		uint32_t rlen, crc;

		if (len - off < REC_HDR_LEN) {
			log_warnx("dns cache-load file=%s offset=%zu reason=truncated-record "
			    "(rest ignored)", what, off);
			rejected++;
			break;
		}
		rlen = get_u32(p + off);
		crc = get_u32(p + off + 4);
		if (rlen < REC_MIN_LEN || rlen > REC_MAX_LEN) {
			log_warnx("dns cache-load file=%s offset=%zu reason=bad-record-length "
			    "length=%u (rest ignored)", what, off, (unsigned)rlen);
			rejected++;
			break;
		}
		if (rlen > len - off - REC_HDR_LEN) {
			log_warnx("dns cache-load file=%s offset=%zu reason=truncated-record "
			    "(rest ignored)", what, off);
			rejected++;
			break;
		}
		off += REC_HDR_LEN;
		memset(&e, 0, sizeof(e));
		if (dnscache_crc32(p + off, rlen) != crc)
			why = "checksum";
		else if (decode_entry(p + off, rlen, &e, &why) == 0) {
			if (e.security == DNS_SECURE && !validating)
				e.security = DNS_INSECURE;   /* this config cannot vouch for it */
			/* A hostile far-future expiry is cut to what the TTL allows. */
			if (e.expires > now + (int64_t)c->max_ttl)
				e.expires = now + (int64_t)c->max_ttl;
			if (e.ttl > c->max_ttl)
				e.ttl = c->max_ttl;
			if (now - e.expires > (int64_t)c->max_stale)
				why = NULL;              /* too old: dropped quietly */
			else if (dnscache_put(c, &e, now) == 0) {
				/* put() set expires from now; keep the recorded (earlier) one. */
				struct node *n = *find_slot(c, e.name, e.qtype);

				if (n != NULL && n->e.expires > e.expires)
					n->e.expires = e.expires;
				loaded++;
			} else
				why = "store";
		}
		if (why != NULL) {
			log_warnx("dns cache-load file=%s offset=%zu reason=entry-%s (skipped)",
			    what, off - REC_HDR_LEN, why);
			rejected++;
		}
		dnscache_entry_clear(&e);
		off += rlen;
	}
	if ((uint32_t)(loaded + rejected) != count)
		log_debug("dns cache-load file=%s header-count=%u seen=%d", what,
		    (unsigned)count, loaded + rejected);
	c->stats.load_ok += (unsigned long)loaded;
	c->stats.load_rejected += (unsigned long)rejected;
	log_info("dns cache-load file=%s entries=%d rejected=%d", what, loaded, rejected);
	return loaded;
}

/* Lower-case copy of a DNS owner name without trailing dot: LDH, '_' and '*' labels of
 * 1..63 bytes, 253 bytes at most. */
static int
name_normalize(const char *name, char *out, size_t outsz)
{
	size_t len = strlen(name), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || len >= outsz)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '*') {
			if (++label > 63)
				return -1;
		} else if (ch >= 'A' && ch <= 'Z') {
			ch = (unsigned char)(ch - 'A' + 'a');
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = (char)ch;
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

static uint32_t
name_hash(const char *name, uint16_t qtype)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *s = (const unsigned char *)name; *s != '\0'; s++)
		h = (h ^ *s) * 16777619u;
	h = (h ^ (qtype & 0xff)) * 16777619u;
	h = (h ^ (qtype >> 8)) * 16777619u;
	return h;
}

/* The link that points (or would point) at the node of (name, qtype); name normalized. */
static struct node **
find_slot(struct dnscache *c, const char *name, uint16_t qtype)
{
	struct node **pp = &c->buckets[name_hash(name, qtype) & (c->n_buckets - 1)];

	while (*pp != NULL && ((*pp)->e.qtype != qtype || strcmp((*pp)->e.name, name) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void
node_free(struct node *n)
{
	free(n->e.data);
	free(n);
}

/* What dnscache_put and the loader accept. */
static bool
entry_consistent(const struct dnscache_entry *e)
{
	char norm[256];
	size_t total = 0;

	if (name_normalize(e->name, norm, sizeof(norm)) == -1 || strcmp(norm, e->name) != 0)
		return false;
	if (e->qtype == 0)
		return false;
	if (e->security != DNS_SECURE && e->security != DNS_INSECURE)
		return false;             /* bogus (or unknown) is never kept */
	switch (e->kind) {
	case DNSCACHE_DATA:
		if (e->n_rr == 0)
			return false;
		break;
	case DNSCACHE_NODATA:
	case DNSCACHE_NXDOMAIN:
		if (e->n_rr != 0)
			return false;
		break;
	default:
		return false;
	}
	if (e->n_rr > DNSCACHE_MAX_RR)
		return false;
	for (size_t i = 0; i < e->n_rr; i++) {
		if (e->rdlen[i] == 0 || e->rdlen[i] > DNSCACHE_MAX_RDLEN ||
		    e->rdoff[i] != total || e->data == NULL)
			return false;
		if (e->qtype == RR_TYPE_A && e->rdlen[i] != 4)
			return false;
		if (e->qtype == RR_TYPE_AAAA && e->rdlen[i] != 16)
			return false;
		if (e->qtype == RR_TYPE_SRV && e->rdlen[i] < 7)
			return false;
		total += e->rdlen[i];
	}
	return total == e->data_len;
}

/* Make room: drop the answer that expires first (expired ones go first naturally): the
 * root of the heap, unlinked from its bucket. */
static void
evict_one(struct dnscache *c, int64_t now)
{
	struct node *n, **pp;

	(void)now;
	if (c->count == 0)
		return;
	n = c->heap[0];
	pp = find_slot(c, n->e.name, n->e.qtype);
	if (*pp != n)
		fatalx("dnscache: heap and buckets disagree");
	*pp = n->next;
	heap_remove(c, n);
	node_free(n);
	c->stats.evicted++;
}

static void
heap_set(struct dnscache *c, size_t i, struct node *n)
{
	c->heap[i] = n;
	n->hpos = i;
}

static void
sift_up(struct dnscache *c, size_t i)
{
	struct node *n = c->heap[i];

	while (i > 0 && c->heap[(i - 1) / 2]->e.expires > n->e.expires) {
		heap_set(c, i, c->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(c, i, n);
}

static void
sift_down(struct dnscache *c, size_t i)
{
	struct node *n = c->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, m = i;
		int64_t best = n->e.expires;

		if (l < c->count && c->heap[l]->e.expires < best)
			best = c->heap[m = l]->e.expires;
		if (l + 1 < c->count && c->heap[l + 1]->e.expires < best)
			m = l + 1;
		if (m == i)
			break;
		heap_set(c, i, c->heap[m]);
		i = m;
	}
	heap_set(c, i, n);
}

/* Add n (counted); the caller made room in c->heap. */
static int
heap_push(struct dnscache *c, struct node *n)
{
	if (c->count == c->heap_cap)
		return -1;
	heap_set(c, c->count++, n);
	sift_up(c, n->hpos);
	return 0;
}

/* Take n out (uncounted). */
static void
heap_remove(struct dnscache *c, struct node *n)
{
	size_t i = n->hpos;
	struct node *last = c->heap[--c->count];

	if (c->heap[i] != n)
		fatalx("dnscache: node not at its heap place");
	if (last == n)
		return;
	heap_set(c, i, last);
	sift_up(c, i);
	sift_down(c, last->hpos);
}

uint32_t
dnscache_crc32(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}





/* Record body: qtype u16, kind u8, security u8, expires i64, ttl u32, name_len u8,
 * name, n_rr u8, then n_rr x (rdlen u16, rdata). Preceded by length u32 and CRC-32. */
static int
encode_entry(struct buf *b, const struct dnscache_entry *e)
{
	unsigned char rec[REC_HDR_LEN + REC_MAX_LEN];
	size_t nlen = strlen(e->name), o = REC_HDR_LEN;
	uint64_t exp = (uint64_t)e->expires;

	put_u16(rec + o, e->qtype);
	rec[o + 2] = (unsigned char)e->kind;
	rec[o + 3] = (unsigned char)e->security;
	put_u32(rec + o + 4, (uint32_t)(exp >> 32));
	put_u32(rec + o + 8, (uint32_t)exp);
	put_u32(rec + o + 12, e->ttl);
	rec[o + 16] = (unsigned char)nlen;
	o += 17;
	memcpy(rec + o, e->name, nlen);
	o += nlen;
	rec[o++] = (unsigned char)e->n_rr;
	for (size_t i = 0; i < e->n_rr; i++) {
		put_u16(rec + o, e->rdlen[i]);
		memcpy(rec + o + 2, e->data + e->rdoff[i], e->rdlen[i]);
		o += 2 + (size_t)e->rdlen[i];
	}
	put_u32(rec, (uint32_t)(o - REC_HDR_LEN));
	put_u32(rec + 4, dnscache_crc32(rec + REC_HDR_LEN, o - REC_HDR_LEN));
	return buf_append(b, rec, o);
}

/* Parse one record body into e (data owned by e on success). Every field is checked. */
static int
decode_entry(const unsigned char *p, size_t len, struct dnscache_entry *e,
    const char **why)
{
	size_t o = 0, nlen, n_rr;
	char name[256];
	uint64_t exp;

	if (len < REC_MIN_LEN) {
		*why = "short";
		return -1;
	}
	e->qtype = get_u16(p);
	if (p[2] > DNSCACHE_NXDOMAIN) {
		*why = "bad-kind";
		return -1;
	}
	e->kind = (enum dnscache_kind)p[2];
	if (p[3] != DNS_SECURE && p[3] != DNS_INSECURE) {
		*why = "bad-security";
		return -1;
	}
	e->security = (enum dns_security)p[3];
	exp = ((uint64_t)get_u32(p + 4) << 32) | get_u32(p + 8);
	if (exp > (uint64_t)INT64_MAX / 2) {
		*why = "bad-expiry";
		return -1;
	}
	e->expires = (int64_t)exp;
	e->ttl = get_u32(p + 12);
	nlen = p[16];
	o = 17;
	if (nlen == 0 || nlen > 253 || o + nlen + 1 > len) {
		*why = "bad-name-length";
		return -1;
	}
	memcpy(name, p + o, nlen);
	name[nlen] = '\0';
	o += nlen;
	if (memchr(name, '\0', nlen) != NULL || name_normalize(name, e->name,
	    sizeof(e->name)) == -1 || strcmp(name, e->name) != 0) {
		*why = "bad-name";
		return -1;
	}
	n_rr = p[o++];
	if (n_rr > DNSCACHE_MAX_RR) {
		*why = "too-many-records";
		return -1;
	}
	for (size_t i = 0; i < n_rr; i++) {
		size_t rl;

		if (len - o < 2) {
			*why = "truncated-rdata";
			return -1;
		}
		rl = get_u16(p + o);
		o += 2;
		if (rl == 0 || rl > DNSCACHE_MAX_RDLEN || rl > len - o) {
			*why = "bad-rdata-length";
			return -1;
		}
		if (dnscache_entry_add_rr(e, p + o, rl) == -1) {
			*why = "alloc";
			return -1;
		}
		o += rl;
	}
	if (o != len) {
		*why = "trailing-bytes";
		return -1;
	}
	if (!entry_consistent(e)) {
		*why = "inconsistent";
		return -1;
	}
	return 0;
}
