/* s2s/remotes.c - per-remote-domain gauges for the metrics, with bounded cardinality.
 * SPDX-License-Identifier: ISC
 * Called on each scrape (core/metrics.c via main.c's source list): walks the routes
 * (route_foreach), sums them per remote domain, keeps the REMOTES_TOP domains with the
 * most stanzas queued and sums the others into remote="(other)". Work and memory are
 * per scrape and in proportion to the routes alive; nothing is kept between scrapes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/sample.h"
#include "remotes.h"
#include "route.h"

/* One route (collect), then one remote domain (after summing). */
struct remote {
	const char   *name;        /* borrowed from the route, valid during the scrape */
	unsigned long routes, ready, conns;
	unsigned long queued;
	unsigned long queued_bytes;
	unsigned long link;        /* collect: the route's link when it is an OUT route */
};

struct collect {
	struct remote *v;
	size_t         n, cap;
	bool           failed;     /* out of memory: what was collected is used */
};

static const struct sample_family fam_routes = { "remote_routes", SAMPLE_GAUGE,
	"routes (both directions, any local domain) to and from the remote domain" };
static const struct sample_family fam_ready = { "remote_routes_ready", SAMPLE_GAUGE,
	"routes of the remote domain whose stream is ready" };
static const struct sample_family fam_conns = { "remote_connections", SAMPLE_GAUGE,
	"distinct outgoing connections the routes to the remote domain send on" };
static const struct sample_family fam_queued = { "remote_queued_stanzas", SAMPLE_GAUGE,
	"stanzas queued on the routes of the remote domain" };
static const struct sample_family fam_bytes = { "remote_queued_bytes", SAMPLE_GAUGE,
	"bytes of the stanzas queued on the routes of the remote domain" };

static void collect_cb(void *, const struct route_info *);
static int by_name_link(const void *, const void *);
static int by_weight(const void *, const void *);
static void put_family(struct sample_sink *, const struct sample_family *,
    const struct remote *, size_t, size_t);

static void
collect_cb(void *arg, const struct route_info *ri)
{
	struct collect *c = arg;
	struct remote *r;

	if (c->failed)
		return;
	if (c->n == c->cap) {
		size_t cap = c->cap == 0 ? 64 : c->cap * 2;
		struct remote *v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL) {
			c->failed = true;
			return;
		}
		c->v = v;
		c->cap = cap;
	}
	r = &c->v[c->n++];
	memset(r, 0, sizeof(*r));
	r->name = ri->remote;
	r->routes = 1;
	r->ready = ri->ready;
	r->queued = ri->queued;
	r->queued_bytes = ri->queued_bytes;
	r->link = ri->out ? ri->link : 0;
}

static int
by_name_link(const void *a, const void *b)
{
	const struct remote *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->link < y->link ? -1 : x->link > y->link;
}

/* Most queued first; ties: bytes, routes, then the name. */
static int
by_weight(const void *a, const void *b)
{
	const struct remote *x = a, *y = b;

	if (x->queued != y->queued)
		return x->queued > y->queued ? -1 : 1;
	if (x->queued_bytes != y->queued_bytes)
		return x->queued_bytes > y->queued_bytes ? -1 : 1;
	if (x->routes != y->routes)
		return x->routes > y->routes ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* One family: a series for each of the n listed remotes, and "(other)" when there is
 * an other (v[n] holds its sums). */
static void
put_family(struct sample_sink *sink, const struct sample_family *fam,
    const struct remote *v, size_t n, size_t other)
{
	struct sample_label lab = { "remote", NULL };

	for (size_t i = 0; i < n + (other > 0); i++) {
		const struct remote *r = &v[i];
		unsigned long x = fam == &fam_routes ? r->routes : fam == &fam_ready ? r->ready :
		    fam == &fam_conns ? r->conns : fam == &fam_queued ? r->queued :
		    r->queued_bytes;

		lab.value = i < n ? r->name : REMOTES_OTHER;
		sink->put(sink, NULL, fam, &lab, 1, (int64_t)x);
	}
}

void
remotes_emit(void *arg, struct sample_sink *sink)
{
	struct collect c = { NULL, 0, 0, false };
	size_t n = 0, listed, other;

	route_foreach(collect_cb, &c);
	if (c.failed)
		log_warnx("metrics remotes reason=out-of-memory routes=%zu (partial)", c.n);
	if (c.n > 0) {
		/* sum each domain's routes into its first entry, counting distinct links */
		qsort(c.v, c.n, sizeof(*c.v), by_name_link);
		for (size_t i = 0; i < c.n; i++) {
			struct remote *r = &c.v[i];

			if (n > 0 && strcmp(c.v[n - 1].name, r->name) == 0) {
				struct remote *d = &c.v[n - 1];

				d->conns += r->link != 0 && r->link != d->link;
				d->link = r->link != 0 ? r->link : d->link;
				d->routes += r->routes;
				d->ready += r->ready;
				d->queued += r->queued;
				d->queued_bytes += r->queued_bytes;
			} else {
				c.v[n] = *r;
				c.v[n].conns = r->link != 0;
				n++;
			}
		}
		qsort(c.v, n, sizeof(*c.v), by_weight);
	}
	listed = n < REMOTES_TOP ? n : REMOTES_TOP;
	other = n - listed;
	if (other > 0) {
		/* the rest summed into v[listed] */
		struct remote sum = { REMOTES_OTHER, 0, 0, 0, 0, 0, 0 };

		for (size_t i = listed; i < n; i++) {
			sum.routes += c.v[i].routes;
			sum.ready += c.v[i].ready;
			sum.conns += c.v[i].conns;
			sum.queued += c.v[i].queued;
			sum.queued_bytes += c.v[i].queued_bytes;
		}
		c.v[listed] = sum;
	}
	put_family(sink, &fam_routes, c.v, listed, other);
	put_family(sink, &fam_ready, c.v, listed, other);
	put_family(sink, &fam_conns, c.v, listed, other);
	put_family(sink, &fam_queued, c.v, listed, other);
	put_family(sink, &fam_bytes, c.v, listed, other);
	free(c.v);
}
