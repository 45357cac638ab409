/* s2s/admit.c - admission of accepted connections: per-listener, internet-wide and
 * per-source-address limits, and which unauthenticated connection to shed under load.
 * SPDX-License-Identifier: ISC
 * Called by listener.c around each accept and by conn.c when a connection is freed.
 * Owns one record per accepted connection, the per-listener accounting and a hash
 * table of source addresses (IPv4 address or IPv6 /64) with their connection counts
 * and log rate limit. Shedding follows Unbound's jostle (drop the oldest work that has
 * not proven itself) and HAProxy's per-source counters; see admit.h for the rules. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "../core/log.h"
#include "admit.h"

#define KEY_LEN          17        /* family byte + up to 16 address bytes */
#define LOG_INTERVAL     10.0      /* seconds between refusal lines per source */
#define BUCKETS_MIN      64
#define BUCKETS_MAX      (1u << 20)

/* One source address (IPv4) or prefix (IPv6 /64) with internet-side connections. */
struct source {
	unsigned char key[KEY_LEN];
	unsigned      count;          /* connections it holds now */
	bool          logged;         /* a refusal line was logged ... */
	double        last_log;       /* ... at this time */
	unsigned long suppressed;     /* refusals not logged since that line */
	struct source *next;          /* hash chain */
};

struct admit_listener {
	char          name[80];
	unsigned      max, count;
	bool          internet;       /* internet-side: per-address limit, cap, shedding */
	bool          closed;         /* socket gone: free with the last connection */
	struct admit_entry *head, *tail;  /* shedding candidates, oldest first */
	struct admit_listener *next;      /* every listener */
};

struct admit_entry {
	struct admit_listener *al;    /* borrowed; outlives its entries */
	struct source *src;           /* NULL on local listeners */
	void          *owner;         /* the connection (borrowed) */
	unsigned long  seq;           /* accept order */
	bool           candidate;     /* on al's candidate list */
	struct admit_entry *prev, *next;
};

static admit_protected_fn *protected_fn;
static unsigned internet_max, per_address, internet_count;
static unsigned long next_seq = 1;
static struct admit_listener *listeners;
static struct source **buckets;
static size_t nbuckets, nsources;
static uint64_t seed[2];
static double last_sweep;

static uint64_t mix(uint64_t);
static size_t key_hash(const unsigned char *);
static void source_key(const struct sockaddr *, unsigned char *);
static struct source *source_find(const unsigned char *);
static struct source *source_get(const unsigned char *);
static void source_drop(struct source *);
static void sources_grow(void);
static void sources_sweep(double);
static void unlink_candidate(struct admit_entry *);
static struct admit_entry *oldest_candidate(struct admit_listener *);
static void listener_free(struct admit_listener *);

void
admit_init(unsigned imax, unsigned per_addr, admit_protected_fn *fn)
{
	internet_max = imax;
	per_address = per_addr;
	protected_fn = fn;
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		seed[0] = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ULL;
		seed[1] = (uint64_t)(uintptr_t)&internet_max;
	}
}

void
admit_free_all(void)
{
	struct admit_listener *al;

	for (size_t i = 0; i < nbuckets; i++)
		while (buckets[i] != NULL) {
			struct source *s = buckets[i];

			buckets[i] = s->next;
			free(s);
		}
	free(buckets);
	buckets = NULL;
	nbuckets = nsources = 0;
	while ((al = listeners) != NULL) {
		listeners = al->next;
		free(al);
	}
	internet_count = 0;
	last_sweep = 0;
}

/* ---- sources ---- */

/* A keyed 64-bit finaliser (MurmurHash3's fmix64) over the key: the seed is random
 * per process, so which addresses share a chain cannot be worked out from outside. */
static uint64_t
mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static size_t
key_hash(const unsigned char *k)
{
	uint64_t a, b;

	memcpy(&a, k + 1, 8);
	memcpy(&b, k + 9, 8);
	return (size_t)mix(mix(seed[0] ^ a ^ k[0]) ^ b ^ seed[1]);
}

/* IPv4: family 4 and the address; IPv6: family 6 and the /64 prefix (one host often
 * has a whole /64); IPv4-mapped IPv6 counts as the IPv4 address. */
static void
source_key(const struct sockaddr *sa, unsigned char *k)
{
	memset(k, 0, KEY_LEN);
	if (sa->sa_family == AF_INET) {
		k[0] = 4;
		memcpy(k + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			k[0] = 4;
			memcpy(k + 1, a->s6_addr + 12, 4);
		} else {
			k[0] = 6;
			memcpy(k + 1, a->s6_addr, 8);
		}
	}
	/* other families (none expected on TCP listeners) share the all-zero key */
}

static struct source *
source_find(const unsigned char *k)
{
	if (nbuckets == 0)
		return NULL;
	for (struct source *s = buckets[key_hash(k) & (nbuckets - 1)]; s != NULL; s = s->next)
		if (memcmp(s->key, k, KEY_LEN) == 0)
			return s;
	return NULL;
}

/* Find or create; NULL on out of memory. */
static struct source *
source_get(const unsigned char *k)
{
	struct source *s = source_find(k);
	size_t b;

	if (s != NULL)
		return s;
	if (nsources >= nbuckets)
		sources_grow();
	if (nbuckets == 0 || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	memcpy(s->key, k, KEY_LEN);
	b = key_hash(k) & (nbuckets - 1);
	s->next = buckets[b];
	buckets[b] = s;
	nsources++;
	return s;
}

static void
source_drop(struct source *s)
{
	struct source **pp = &buckets[key_hash(s->key) & (nbuckets - 1)];

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	nsources--;
	free(s);
}

/* Double the table (at most BUCKETS_MAX buckets; chains grow beyond that). */
static void
sources_grow(void)
{
	size_t n = nbuckets == 0 ? BUCKETS_MIN : nbuckets * 2;
	struct source **nb;

	if (n > BUCKETS_MAX || (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (size_t i = 0; i < nbuckets; i++)
		while (buckets[i] != NULL) {
			struct source *s = buckets[i];
			size_t b = key_hash(s->key) & (n - 1);

			buckets[i] = s->next;
			s->next = nb[b];
			nb[b] = s;
		}
	free(buckets);
	buckets = nb;
	nbuckets = n;
}

/* Forget sources without connections whose last refusal line is old enough that the
 * next one may be logged anyway; at most once per LOG_INTERVAL. */
static void
sources_sweep(double now)
{
	if (now - last_sweep < LOG_INTERVAL && now >= last_sweep)
		return;
	last_sweep = now;
	for (size_t i = 0; i < nbuckets; i++) {
		struct source **pp = &buckets[i];

		while (*pp != NULL) {
			struct source *s = *pp;

			if (s->count == 0 && (!s->logged || now - s->last_log >= LOG_INTERVAL ||
			    now < s->last_log)) {
				*pp = s->next;
				nsources--;
				free(s);
			} else {
				pp = &s->next;
			}
		}
	}
}

bool
admit_source_ok(struct admit_listener *al, const struct sockaddr *sa, double now,
    struct admit_refusal *r)
{
	unsigned char k[KEY_LEN];
	struct source *s;

	memset(r, 0, sizeof(*r));
	if (!al->internet)
		return true;
	sources_sweep(now);
	source_key(sa, k);
	if ((s = source_find(k)) == NULL || s->count < per_address)
		return true;
	r->count = s->count;
	if (!s->logged || now - s->last_log >= LOG_INTERVAL || now < s->last_log) {
		r->log = true;
		r->suppressed = s->suppressed;
		s->suppressed = 0;
		s->logged = true;
		s->last_log = now;
	} else {
		s->suppressed++;
	}
	return false;
}

unsigned
admit_source_count(const struct sockaddr *sa)
{
	unsigned char k[KEY_LEN];
	const struct source *s;

	source_key(sa, k);
	s = source_find(k);
	return s != NULL ? s->count : 0;
}

size_t
admit_sources(void)
{
	return nsources;
}

void
admit_source_str(const struct sockaddr *sa, char *out, size_t n)
{
	unsigned char k[KEY_LEN];
	char ip[INET6_ADDRSTRLEN] = "?";

	source_key(sa, k);
	if (k[0] == 4) {
		inet_ntop(AF_INET, k + 1, ip, sizeof(ip));
		snprintf(out, n, "%s", ip);
	} else if (k[0] == 6) {
		unsigned char a[16] = { 0 };

		memcpy(a, k + 1, 8);
		inet_ntop(AF_INET6, a, ip, sizeof(ip));
		snprintf(out, n, "%s/64", ip);
	} else {
		snprintf(out, n, "?");
	}
}

/* ---- listeners and entries ---- */

void
admit_set_limits(unsigned imax, unsigned per_addr)
{
	internet_max = imax;
	per_address = per_addr;
}

void
admit_listener_set_max(struct admit_listener *al, unsigned max)
{
	al->max = max;
}

struct admit_listener *
admit_listener_new(const char *name, unsigned max, bool internet)
{
	struct admit_listener *al;

	if ((al = calloc(1, sizeof(*al))) == NULL)
		fatalx("admit: out of memory");
	snprintf(al->name, sizeof(al->name), "%s", name);
	al->max = max;
	al->internet = internet;
	al->next = listeners;
	listeners = al;
	return al;
}

static void
listener_free(struct admit_listener *al)
{
	struct admit_listener **pp = &listeners;

	while (*pp != al)
		pp = &(*pp)->next;
	*pp = al->next;
	free(al);
}

void
admit_listener_close(struct admit_listener *al)
{
	if (al == NULL)
		return;
	al->closed = true;
	if (al->count == 0)
		listener_free(al);
}

static void
unlink_candidate(struct admit_entry *e)
{
	struct admit_listener *al = e->al;

	if (!e->candidate)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		al->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		al->tail = e->prev;
	e->prev = e->next = NULL;
	e->candidate = false;
}

/* The oldest connection of al that may be shed. Protected ones met on the way leave
 * the list for good: authentication is not undone, and a closing one is going. */
static struct admit_entry *
oldest_candidate(struct admit_listener *al)
{
	struct admit_entry *e;

	while ((e = al->head) != NULL && protected_fn != NULL && protected_fn(e->owner))
		unlink_candidate(e);
	return e;
}

enum admit_room
admit_room(struct admit_listener *al, struct admit_entry **victim)
{
	bool full_here = al->count >= al->max;
	bool full_inet = al->internet && internet_count >= internet_max;
	struct admit_entry *v = NULL;

	*victim = NULL;
	if (!full_here && !full_inet)
		return ADMIT_ROOM;
	if (!al->internet)
		return ADMIT_FULL;
	if (full_here) {
		/* only one of this listener's frees a place here (and on the cap) */
		v = oldest_candidate(al);
	} else {
		for (struct admit_listener *l = listeners; l != NULL; l = l->next) {
			struct admit_entry *e;

			if (!l->internet || (e = oldest_candidate(l)) == NULL)
				continue;
			if (v == NULL || e->seq < v->seq)
				v = e;
		}
	}
	if (v == NULL)
		return ADMIT_FULL;
	*victim = v;
	return ADMIT_SHED;
}

struct admit_entry *
admit_add(struct admit_listener *al, const struct sockaddr *sa, void *owner)
{
	struct admit_entry *e;
	unsigned char k[KEY_LEN];

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if (al->internet) {
		source_key(sa, k);
		if ((e->src = source_get(k)) == NULL) {
			free(e);
			return NULL;
		}
		e->src->count++;
		internet_count++;
		/* only internet-side connections are ever shed */
		e->candidate = true;
		e->prev = al->tail;
		if (al->tail != NULL)
			al->tail->next = e;
		else
			al->head = e;
		al->tail = e;
	}
	e->al = al;
	e->owner = owner;
	e->seq = next_seq++;
	al->count++;
	return e;
}

void
admit_release(struct admit_entry *e)
{
	struct admit_listener *al;

	if (e == NULL)
		return;
	al = e->al;
	unlink_candidate(e);
	if (e->src != NULL) {
		internet_count--;
		/* keep a source with a recent refusal line: its rate limit holds */
		if (--e->src->count == 0 && !e->src->logged)
			source_drop(e->src);
	}
	al->count--;
	if (al->closed && al->count == 0)
		listener_free(al);
	free(e);
}

void *
admit_owner(const struct admit_entry *e)
{
	return e->owner;
}

const char *
admit_listener_name(const struct admit_listener *al)
{
	return al->name;
}

unsigned
admit_listener_count(const struct admit_listener *al)
{
	return al->count;
}

unsigned
admit_listener_max(const struct admit_listener *al)
{
	return al->max;
}

unsigned
admit_internet_count(void)
{
	return internet_count;
}

unsigned
admit_internet_max(void)
{
	return internet_max;
}
