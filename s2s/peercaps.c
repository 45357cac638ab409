/* s2s/peercaps.c - what each remote server supports, remembered on disk with a TTL.
 * SPDX-License-Identifier: ISC
 * Read by link.c before connecting, written by link.c after set-up (forgotten by
 * route.c when a pipelined set-up fails). The file
 * is a versioned text file, one line per peer, written atomically (temp, fsync, rename)
 * with mode 0600 and bounded in size, by atomicfile's writer thread a second after a
 * change (never on the event loop); lines that do not parse are logged and skipped. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "../core/atomicfile.h"
#include "../core/buf.h"
#include "../core/log.h"
#include "../core/namehash.h"
#include "peercaps.h"

#define PEERCAPS_MAGIC   "quickfed-peercaps 1"
#define PEERCAPS_MAX     4096          /* entries kept */
#define BUCKETS          4096          /* hash chains (a power of two) */
#define PEERCAPS_LINE    512

struct entry {
	uint32_t hash;          /* of the lower-cased domain, compared first */
	struct entry *hnext;    /* in its bucket */
	char   domain[256];
	struct peercaps caps;
	struct entry *next;
};

static struct entry *entries;
static struct entry *bucket[BUCKETS];
static size_t nentries;
static char *file;
static uint32_t ttl;
static struct ev_loop *loop;
static ev_timer save_timer;

static void save(void);

static bool
valid_domain(const char *d)
{
	size_t n = strlen(d);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)d[i]) && d[i] != '-' && d[i] != '.' && d[i] != '_')
			return false;
	return true;
}

/* A hash table: each link set-up asks once, and with thousands of peers a walk of
 * the list cost more than the set-up's own work. */
static struct entry *
find(const char *domain)
{
	uint32_t h = name_hash(domain);

	for (struct entry *e = bucket[h & (BUCKETS - 1)]; e; e = e->hnext)
		if (e->hash == h && strcasecmp(e->domain, domain) == 0)
			return e;
	return NULL;
}

static void
save_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	save();
}

static void
load(void)
{
	FILE *f;
	char line[PEERCAPS_LINE + 2];
	unsigned lineno = 0, bad = 0;
	time_t now = time(NULL);

	atomicfile_sync(file);   /* what an earlier save queued is on disk */
	if ((f = fopen(file, "r")) == NULL) {
		if (errno != ENOENT)
			log_warn("peercaps: cannot read %s", file);
		return;
	}
	if (fgets(line, sizeof(line), f) == NULL || strncmp(line, PEERCAPS_MAGIC, strlen(PEERCAPS_MAGIC)) != 0) {
		log_warnx("peercaps: %s has no \"%s\" header: ignored", file, PEERCAPS_MAGIC);
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char dom[256];
		int pl, ex, db, st, tr, bd = 0, n = 0;
		long long exp;
		struct peercaps c;

		lineno++;
		if (strchr(line, '\n') == NULL || nentries >= PEERCAPS_MAX ||
		    sscanf(line, "%255s %d %d %d %d %d %lld%n", dom, &pl, &ex, &db, &st, &tr, &exp,
		    &n) != 7 ||
		    /* an 8th field (bidi) was added later: files without it still load */
		    (sscanf(line + n, "%d", &bd) == 1 && (bd < 0 || bd > 1)) ||
		    !valid_domain(dom) || pl < 0 || pl > 1 || ex < 0 || ex > 1 || db < 0 ||
		    db > 1 || st < 0 || st > 1 || tr < 1 || tr > 3 ||
		    exp > (long long)now + ttl || find(dom) != NULL) {
			bad++;
			if (strchr(line, '\n') == NULL)
				break;  /* overlong or truncated: stop here */
			continue;
		}
		if (exp <= (long long)now)
			continue;  /* expired */
		memset(&c, 0, sizeof(c));
		c.pipelining = pl;
		c.external = ex;
		c.dialback = db;
		c.starttls = st;
		c.tls_rounds = (uint8_t)tr;
		c.bidi = bd == 1;
		c.expires = (time_t)exp;
		peercaps_learn(dom, &c);
		/* learn() sets a fresh expiry; keep the recorded one */
		find(dom)->caps.expires = c.expires;
	}
	if (bad > 0)
		log_warnx("peercaps: %s: %u bad line(s) skipped", file, bad);
	fclose(f);
	ev_timer_stop(loop, &save_timer);  /* nothing new to write */
}

int
peercaps_init(struct ev_loop *l, const char *path, uint32_t ttl_s)
{
	loop = l;
	ttl = ttl_s ? ttl_s : 86400;
	ev_timer_init(&save_timer, save_cb, 1., 0.);
	if (path != NULL) {
		if ((file = strdup(path)) == NULL)
			return -1;
		load();
	}
	return 0;
}

const struct peercaps *
peercaps_get(const char *domain)
{
	struct entry *e = find(domain);

	if (e == NULL || e->caps.expires <= time(NULL))
		return NULL;
	return &e->caps;
}

void
peercaps_learn(const char *domain, const struct peercaps *caps)
{
	struct entry *e = find(domain);

	if (!valid_domain(domain))
		return;
	if (e == NULL) {
		if (nentries >= PEERCAPS_MAX)
			return;
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return;
		snprintf(e->domain, sizeof(e->domain), "%s", domain);
		e->hash = name_hash(e->domain);
		e->hnext = bucket[e->hash & (BUCKETS - 1)];
		bucket[e->hash & (BUCKETS - 1)] = e;
		e->next = entries;
		entries = e;
		nentries++;
	}
	e->caps = *caps;
	e->caps.expires = time(NULL) + ttl;
	log_debug("peercaps %s pipelining=%d external=%d dialback=%d tls_rounds=%u", domain,
	    caps->pipelining, caps->external, caps->dialback, caps->tls_rounds);
	if (file != NULL && loop != NULL && !ev_is_active(&save_timer))
		ev_timer_start(loop, &save_timer);
}

void
peercaps_forget(const char *domain, const char *why)
{
	struct entry **pp;

	for (pp = &entries; *pp; pp = &(*pp)->next)
		if (strcasecmp((*pp)->domain, domain) == 0) {
			struct entry *e = *pp, **hp;

			*pp = e->next;
			for (hp = &bucket[e->hash & (BUCKETS - 1)]; *hp != NULL; hp = &(*hp)->hnext)
				if (*hp == e) {
					*hp = e->hnext;
					break;
				}
			nentries--;
			log_info("peercaps %s forgotten: %s", domain, why);
			free(e);
			if (file != NULL && loop != NULL && !ev_is_active(&save_timer))
				ev_timer_start(loop, &save_timer);
			return;
		}
}

static void
save(void)
{
	struct buf b;

	if (file == NULL)
		return;
	buf_init(&b, (size_t)(PEERCAPS_MAX + 1) * PEERCAPS_LINE);
	buf_printf(&b, "%s\n", PEERCAPS_MAGIC);
	for (struct entry *e = entries; e; e = e->next)
		buf_printf(&b, "%s %d %d %d %d %u %lld %d\n", e->domain, e->caps.pipelining,
		    e->caps.external, e->caps.dialback, e->caps.starttls, e->caps.tls_rounds,
		    (long long)e->caps.expires, e->caps.bidi);
	/* written by atomicfile's thread: the loop never waits for the disk */
	if (atomicfile_write_later(file, b.data, b.len, 0600) == -1)
		log_warn("peercaps: cannot write %s", file);
	buf_free(&b);
}

void
peercaps_format(struct buf *out)
{
	time_t now = time(NULL);

	for (struct entry *e = entries; e; e = e->next)
		buf_printf(out, "peercaps.%s=pipelining:%d,external:%d,dialback:%d,tls_rounds:%u,"
		    "bidi:%d,ttl_left:%lld\n", e->domain, e->caps.pipelining, e->caps.external,
		    e->caps.dialback, e->caps.tls_rounds, e->caps.bidi,
		    (long long)(e->caps.expires - now));
}

void
peercaps_free(void)
{
	struct entry *e;

	if (loop != NULL && ev_is_active(&save_timer)) {
		ev_timer_stop(loop, &save_timer);
		save();
	}
	if (file != NULL)
		atomicfile_sync(file);   /* on disk when this returns (shutdown) */
	while ((e = entries) != NULL) {
		entries = e->next;
		free(e);
	}
	memset(bucket, 0, sizeof(bucket));
	nentries = 0;
	free(file);
	file = NULL;
}
