/* s2s/backoff.c - retry with memory: which remote domains failed, and when to try again.
 * SPDX-License-Identifier: ISC
 * For route.c (see backoff.h). A small list: only failing domains are in it, bounded by
 * BACKOFF_MAX (when full, the entry with the oldest failure makes room). Kept in
 * state_dir/backoff ("quickfed-backoff 1", then "domain failures last next_try" per
 * line, wall-clock seconds), written atomically a second after a change, so a server
 * known to be down is not hammered again right after a restart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "../core/atomicfile.h"
#include "../core/buf.h"
#include "../core/log.h"
#include "backoff.h"
#include "jid.h"

#define BACKOFF_MAGIC "quickfed-backoff 1"

#define BACKOFF_FIRST  1.0     /* seconds after the first failure */
#define BACKOFF_CAP    30.0    /* never longer between two attempts */
#define BACKOFF_EXPIRE 3600.0  /* an entry is forgotten this long after its last failure */

struct entry {
	struct entry *next;
	unsigned      failures;
	double        last;       /* when the last failure was seen */
	double        next_try;   /* no attempt before */
	char          domain[];
};

static struct entry *entries;
static size_t nentries;
static struct ev_loop *loop;
static char *file;               /* NULL: memory only */
static ev_timer save_timer;
static bool dirty;

static struct entry *find(const char *);

static void
changed(void)
{
	dirty = true;
	if (file != NULL && loop != NULL && !ev_is_active(&save_timer))
		ev_timer_start(loop, &save_timer);
}

static void
save(void)
{
	struct buf b;

	if (file == NULL || !dirty)
		return;
	buf_init(&b, (size_t)(BACKOFF_MAX + 1) * 320);
	buf_printf(&b, "%s\n", BACKOFF_MAGIC);
	for (struct entry *e = entries; e != NULL; e = e->next)
		buf_printf(&b, "%s %u %.3f %.3f\n", e->domain, e->failures, e->last, e->next_try);
	if (atomicfile_write_later(file, b.data, b.len, 0600) == -1)   /* off the loop */
		log_warn("backoff: cannot write %s", file);
	else
		dirty = false;
	buf_free(&b);
}

static void
save_cb(EV_P_ ev_timer *w, int revents)
{
	(void)revents;
	ev_timer_stop(EV_A, w);
	save();
}

/* Read what an earlier run remembered: only well-formed, unexpired lines, at most
 * BACKOFF_MAX, a next attempt no later than BACKOFF_CAP from now. */
static void
load(double now)
{
	FILE *f;
	char line[400];
	unsigned bad = 0;

	atomicfile_sync(file);
	if ((f = fopen(file, "r")) == NULL) {
		if (errno != ENOENT)
			log_warn("backoff: cannot read %s", file);
		return;
	}
	if (fgets(line, sizeof(line), f) == NULL ||
	    strncmp(line, BACKOFF_MAGIC "\n", strlen(BACKOFF_MAGIC) + 1) != 0) {
		log_warnx("backoff: %s has no \"%s\" header: ignored", file, BACKOFF_MAGIC);
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char dom[256], check[256];
		unsigned fails;
		double last, next;
		struct entry *e;
		size_t dl;

		if (strchr(line, '\n') == NULL || nentries >= BACKOFF_MAX ||
		    sscanf(line, "%255s %u %lf %lf", dom, &fails, &last, &next) != 4 ||
		    jid_domain_only(dom, check, sizeof(check)) == -1 || find(dom) != NULL ||
		    fails == 0 || fails > 1000 || last > now + 60 || next < last) {
			bad++;
			if (strchr(line, '\n') == NULL)
				break;   /* overlong or truncated: stop here */
			continue;
		}
		if (now - last > BACKOFF_EXPIRE)
			continue;
		dl = strlen(dom) + 1;
		if ((e = calloc(1, sizeof(*e) + dl)) == NULL)
			break;
		memcpy(e->domain, dom, dl);
		e->failures = fails;
		e->last = last;
		e->next_try = next > now + BACKOFF_CAP ? now + BACKOFF_CAP : next;
		e->next = entries;
		entries = e;
		nentries++;
	}
	if (bad > 0)
		log_warnx("backoff: %s: %u bad line(s) skipped", file, bad);
	if (nentries > 0)
		log_info("backoff: %zu failing domain(s) remembered from %s", nentries, file);
	fclose(f);
}

void
backoff_init(struct ev_loop *l, const char *path)
{
	loop = l;
	ev_timer_init(&save_timer, save_cb, 1., 0.);
	free(file);
	file = NULL;
	if (path != NULL && (file = strdup(path)) != NULL)
		load(ev_now(loop));
}

static struct entry *
find(const char *domain)
{
	for (struct entry *e = entries; e != NULL; e = e->next)
		if (domain_eq(e->domain, domain))
			return e;
	return NULL;
}

static void
unlink_entry(struct entry *e)
{
	for (struct entry **pp = &entries; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			nentries--;
			free(e);
			return;
		}
}

double
backoff_wait(const char *domain, double now)
{
	struct entry *e = find(domain);

	if (e == NULL)
		return 0;
	if (now - e->last > BACKOFF_EXPIRE) {
		unlink_entry(e);
		return 0;
	}
	return e->next_try > now ? e->next_try - now : 0;
}

double
backoff_failed(const char *domain, double now)
{
	struct entry *e = find(domain);
	double delay;

	if (e == NULL) {
		size_t dl = strlen(domain) + 1;

		if (nentries >= BACKOFF_MAX) {
			struct entry *old = entries;

			for (struct entry *x = entries; x != NULL; x = x->next)
				if (x->last < old->last)
					old = x;
			unlink_entry(old);
		}
		if ((e = calloc(1, sizeof(*e) + dl)) == NULL)
			return BACKOFF_FIRST;
		memcpy(e->domain, domain, dl);
		e->next = entries;
		entries = e;
		nentries++;
	}
	if (now - e->last > BACKOFF_EXPIRE) {
		e->failures = 0;           /* forgotten: start over, as backoff_wait would */
	} else if (e->next_try > now) {
		/* another route's attempt to the domain failed in this round already: one
		 * failure per round, however many routes tried */
		e->last = now;
		return e->next_try - now;
	}
	e->failures++;
	e->last = now;
	delay = BACKOFF_FIRST;
	for (unsigned i = 1; i < e->failures && delay < BACKOFF_CAP; i++)
		delay *= 2;
	if (delay > BACKOFF_CAP)
		delay = BACKOFF_CAP;
	e->next_try = now + delay;
	changed();
	return delay;
}

void
backoff_ok(const char *domain)
{
	struct entry *e = find(domain);

	if (e != NULL) {
		unlink_entry(e);
		changed();
	}
}

unsigned
backoff_failures(const char *domain)
{
	struct entry *e = find(domain);

	return e != NULL ? e->failures : 0;
}

void
backoff_format(struct buf *out, double now)
{
	for (struct entry *e = entries; e != NULL; e = e->next)
		buf_printf(out, "backoff.%s=failures:%u,retry_in:%.1f\n", e->domain, e->failures,
		    e->next_try > now ? e->next_try - now : 0.0);
}

void
backoff_free_all(void)
{
	save();
	if (file != NULL)
		atomicfile_sync(file);   /* on disk when this returns (shutdown) */
	if (loop != NULL)
		ev_timer_stop(loop, &save_timer);
	loop = NULL;
	free(file);
	file = NULL;
	dirty = false;
	while (entries != NULL) {
		struct entry *e = entries;

		entries = e->next;
		free(e);
	}
	nentries = 0;
}
