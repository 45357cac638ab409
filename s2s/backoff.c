/* s2s/backoff.c - retry with memory: which remote domains failed, and when to try again.
 * SPDX-License-Identifier: ISC
 * For route.c (see backoff.h). A small list: only failing domains are in it, bounded by
 * BACKOFF_MAX (when full, the entry with the oldest failure makes room). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "backoff.h"
#include "jid.h"

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
	return delay;
}

void
backoff_ok(const char *domain)
{
	struct entry *e = find(domain);

	if (e != NULL)
		unlink_entry(e);
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
	while (entries != NULL) {
		struct entry *e = entries;

		entries = e->next;
		free(e);
	}
	nentries = 0;
}
