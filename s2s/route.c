/* s2s/route.c - map (local, remote) domain pairs to streams; queue, connect, bounce.
 * SPDX-License-Identifier: ISC
 * Its links (link.c) hand it every authorised stanza and every dialback job: the
 * relays it connects and the receivers listener.c accepts for it. OUT routes (local
 * server -> internet) resolve the remote domain and try its targets in order; IN routes
 * (internet -> local server) connect to the configured local server over loopback.
 * A route is small (its target list exists only while it connects), found by hash, and
 * freed as soon as it is idle and empty. Its queue is bounded in bytes (limits {
 * queue_bytes }): a sender whose stanza takes it over the budget, or takes all stanzas
 * alive over limits { memory }, stops being read until the queue drains (backpressure,
 * never a bounce). If set-up fails, each queued stanza is bounced to its sender with
 * remote-server-not-found or remote-server-timeout. Dialback verifications go to
 * verify.c. A route is known to its links by a handle, so it may be freed while they
 * live; it holds a raw pointer only to its own stream's link, cleared when that link
 * reports closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/handle.h"
#include "../core/log.h"
#include "../core/sample.h"
#include "../core/stats.h"
#include "../core/status.h"
#include "../dns/resolver.h"
#include "backoff.h"
#include "bounce.h"
#include "connect.h"
#include "jid.h"
#include "link.h"
#include "peercaps.h"
#include "route.h"
#include "stanza.h"
#include "stream.h"
#include "targets.h"
#include "verify.h"

#define ROUTE_MAGIC   0x726f7574u  /* "rout" */

enum route_dir {
	ROUTE_OUT = 0,   /* local server -> internet */
	ROUTE_IN,        /* internet -> local server */
};

enum route_state {
	RS_IDLE = 0,     /* no stream; the next stanza starts one */
	RS_RESOLVING,    /* waiting for DNS */
	RS_CONNECTING,   /* a stream is being set up */
	RS_READY,        /* stanzas go straight out */
	RS_WAITING,      /* a set-up failed: the next attempt waits (backoff.c) */
};

struct route {
	unsigned int     magic;
	struct handle    self;          /* what its links know it by */
	enum route_dir   dir;
	enum route_state state;
	const char      *local, *remote;  /* inside names */
	struct link     *link;          /* the initiating stream, when any (borrowed; cleared
	                                 * when it reports closed) */
	struct stanza   *head, *tail;   /* stanzas waiting for the stream (owned) */
	unsigned         qlen;
	size_t           qbytes;        /* their cost, against limits { queue_bytes } */
	struct stanza   *inflight, *inflight_tail; /* pipelined before auth was confirmed */
	bool             retried_plain; /* a pipelined attempt failed; retried without */
	bool             riding;        /* link is another owner's (link_ride): never
	                                 * closed by this route, only left */
	bool             no_ride;       /* a ride was refused: this set-up connects */
	bool             on_gc;         /* on the list of routes to free if still idle */
	struct resolve_req *req;        /* resolution under way */
	bool             timed_out;     /* the last failure was a timeout */
	const char      *why;           /* last failure, for logs */
	struct connector cx;            /* Happy Eyeballs; its targets only while connecting */
	ev_timer         setup;         /* bounds the whole set-up */
	ev_timer         retry;         /* RS_WAITING: the next attempt */
	unsigned long    sent, bounced;
	struct conn_waitq waiters;      /* senders paused until the queue drains */
	struct route    *hnext, *gc_next;
	char             names[];
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct resolver *resolver;
static struct route **table;        /* hash buckets */
static uint64_t hash_seed;          /* random per process: chains cannot be planned */
static size_t table_size, nroutes;
static struct route *gc_list;
static ev_timer gc_watcher;        /* 0 s: frees idle routes from the loop */
static struct conn_waitq global_waiters;  /* senders paused by limits { memory } */
static ev_timer global_check;
static bool shutting_down;

static struct route *route_get(enum route_dir, const char *, const char *);
static struct route *route_send(enum route_dir, const char *, const char *,
    struct stanza *);
static void route_start(struct route *);
static void route_try_next(struct route *);
static void route_fail(struct route *, const char *, bool);
static void route_retry(struct route *, const char *, bool);
static void retry_cb(EV_P_ ev_timer *, int);
static bool route_wait(struct route *);
static const char *backoff_key(const struct route *);
static unsigned wake_waiting(const char *, const struct route *);
static void route_drain(struct route *);
static void requeue_inflight(struct route *);
static void route_resolved(void *, const struct resolve_result *);
static void setup_timeout_cb(EV_P_ ev_timer *, int);
static void gc_cb(EV_P_ ev_timer *, int);
static void global_check_cb(EV_P_ ev_timer *, int);
static void gc_later(struct route *);
static void bounce(struct stanza *, const char *, const char *, const char *);
static struct link *route_attempt(void *, const struct resolve_target *);
static void route_drop(void *, struct link *, const char *);
static void route_exhausted(void *);
static void r_connected(void *, struct link *);
static void r_ready(void *, struct link *);
static void r_pipeline(void *, struct link *);
static void r_stanza(void *, struct link *, struct stanza *);
static void r_drained(void *, struct link *);
static void r_refused(void *, struct link *, const char *);
static void r_requeue(void *, struct link *, struct stanza *);
static void r_unproven(void *, struct link *, struct stanza *);
static bool route_ride(struct route *, const struct resolve_target *, size_t);
static void route_let_go(struct route *, const char *);
static void route_ready(struct route *);
static void r_closed(void *, struct link *, const char *, bool);
static void rx_verify_needed(void *, struct link *, const char *, const char *,
    const char *, const char *);
static void rx_closed(void *, struct link *, const char *, bool);

/* The links that carry a route's stanzas (owner: the route). */
static const struct link_ops relay_ops = {
	.kind = HANDLE_ROUTE,
	.connected = r_connected,
	.ready = r_ready,
	.pipeline = r_pipeline,
	.stanza = r_stanza,
	.drained = r_drained,
	.refused = r_refused,
	.requeue = r_requeue,
	.unproven = r_unproven,
	.closed = r_closed,
};

/* Receiving links (listener.c): owned by the router itself (a null owner handle). */
static const struct link_ops receiver_ops = {
	.kind = HANDLE_ROUTE,
	.stanza = r_stanza,
	.verify_needed = rx_verify_needed,
	.requeue = r_requeue,
	.unproven = r_unproven,
	.closed = rx_closed,
};
static int status_routes(void *, const char *, struct buf *, uint64_t *);
static int status_queues(void *, const char *, struct buf *, uint64_t *);
static int status_retry(void *, const char *, struct buf *);
static int status_stats(void *, const char *, struct buf *);
static int status_backoff(void *, const char *, struct buf *);

void
route_init(struct ev_loop *l, const struct config *c, struct resolver *r, struct status *st)
{
	loop = l;
	cfg = c;
	resolver = r;
	shutting_down = false;
	ev_timer_init(&gc_watcher, gc_cb, 0., 0.);
	if (getrandom(&hash_seed, sizeof(hash_seed), 0) != (ssize_t)sizeof(hash_seed))
		hash_seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)ev_time();
	ev_timer_init(&global_check, global_check_cb, 0.25, 0.25);
	verify_init(l, c, r);
	if (st != NULL) {
		status_register_stream(st, "show routes",
		    "show routes: every domain pair with its state and queue", status_routes, NULL);
		status_register(st, "show stats",
		    "show stats: connections, stanzas relayed, bounces, stream errors, budgets",
		    status_stats, NULL);
		status_register(st, "show backoff",
		    "show backoff: remote domains whose set-up failed: failures, next attempt in",
		    status_backoff, NULL);
		status_register_stream(st, "show queues",
		    "show queues: every route with stanzas queued: state, stanzas, bytes, "
		    "age of the oldest", status_queues, NULL);
		status_register(st, "retry",
		    "retry DOMAIN: forget DOMAIN's failures (show backoff) and have its waiting "
		    "routes try now", status_retry, NULL);
	}
}

const struct link_ops *
route_receiver_ops(void)
{
	return &receiver_ops;
}

static const char *
dir_name(enum route_dir d)
{
	return d == ROUTE_OUT ? "out" : "in";
}

/* ---- the table: FNV-1a, seeded, over the direction and the lower-cased names ---- */

static size_t
route_hash(enum route_dir dir, const char *local, const char *remote)
{
	uint64_t h = (1469598103934665603ull ^ hash_seed) ^ (uint64_t)dir;

	for (const char *p = local; *p; p++)
		h = (h ^ (unsigned char)(*p | 0x20)) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *p = remote; *p; p++)
		h = (h ^ (unsigned char)(*p | 0x20)) * 1099511628211ull;
	return (size_t)h;
}

static int
table_grow(void)
{
	size_t nsize = table_size ? table_size * 2 : 64;
	struct route **nt = calloc(nsize, sizeof(*nt));

	if (nt == NULL)
		return -1;
	for (size_t i = 0; i < table_size; i++) {
		struct route *r, *next;

		for (r = table[i]; r; r = next) {
			size_t b = route_hash(r->dir, r->local, r->remote) & (nsize - 1);

			next = r->hnext;
			r->hnext = nt[b];
			nt[b] = r;
		}
	}
	free(table);
	table = nt;
	table_size = nsize;
	return 0;
}

static struct route *
route_find(enum route_dir dir, const char *local, const char *remote)
{
	if (table_size == 0)
		return NULL;
	for (struct route *r = table[route_hash(dir, local, remote) & (table_size - 1)]; r;
	    r = r->hnext)
		if (r->dir == dir && domain_eq(r->local, local) && domain_eq(r->remote, remote))
			return r;
	return NULL;
}

static struct route *
route_get(enum route_dir dir, const char *local, const char *remote)
{
	struct route *r;
	size_t ll, rl, b;

	if ((r = route_find(dir, local, remote)) != NULL)
		return r;
	if (nroutes >= table_size && table_grow() == -1)
		return NULL;
	ll = strlen(local) + 1;
	rl = strlen(remote) + 1;
	if ((r = calloc(1, sizeof(*r) + ll + rl)) == NULL)
		return NULL;
	r->self = handle_new(HANDLE_ROUTE, r);
	if (handle_is_null(r->self)) {
		free(r);
		return NULL;
	}
	r->magic = ROUTE_MAGIC;
	r->dir = dir;
	memcpy(r->names, local, ll);
	memcpy(r->names + ll, remote, rl);
	r->local = r->names;
	r->remote = r->names + ll;
	ev_init(&r->setup, setup_timeout_cb);
	r->setup.data = r;
	ev_init(&r->retry, retry_cb);
	r->retry.data = r;
	connector_init(&r->cx, loop, cfg->attempt_delay_ms, route_attempt, route_drop,
	    route_exhausted, r);
	b = route_hash(dir, local, remote) & (table_size - 1);
	r->hnext = table[b];
	table[b] = r;
	nroutes++;
	return r;
}

static bool
route_idle(const struct route *r)
{
	return r->state == RS_IDLE && r->head == NULL && r->inflight == NULL &&
	    r->link == NULL && r->req == NULL && !connector_busy(&r->cx) &&
	    !ev_is_active(&r->setup) && !ev_is_active(&r->retry) && r->waiters.head == NULL;
}

static void
route_free(struct route *r)
{
	struct route **pp = &table[route_hash(r->dir, r->local, r->remote) & (table_size - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	nroutes--;
	connector_cancel(&r->cx, "route-freed");
	handle_release(r->self);
	r->magic = 0;
	free(r);
}

/* An idle, empty route is freed at the top of the next loop iteration, never from
 * under a callback that may still hold it. */
static void
gc_later(struct route *r)
{
	if (r->on_gc || !route_idle(r))
		return;
	r->on_gc = true;
	r->gc_next = gc_list;
	gc_list = r;
	ev_timer_start(loop, &gc_watcher);
}

static void
gc_cb(EV_P_ ev_timer *w, int revents)
{
	struct route *r;

	(void)revents;
	ev_timer_stop(EV_A, w);
	while ((r = gc_list) != NULL) {
		gc_list = r->gc_next;
		r->on_gc = false;
		if (route_idle(r))
			route_free(r);
	}
}

/* ---- budgets ---- */

static bool
over_memory(void)
{
	return stanza_bytes_alive() > cfg->memory_limit;
}

/* Senders paused by the global budget resume once all stanzas alive are back under
 * three quarters of it. */
static void
global_check_cb(EV_P_ ev_timer *w, int revents)
{
	(void)revents;
	if (global_waiters.head == NULL) {
		ev_timer_stop(EV_A, w);
		return;
	}
	if (stanza_bytes_alive() <= cfg->memory_limit / 4 * 3) {
		ev_timer_stop(EV_A, w);
		link_wake_all(&global_waiters);
	}
}

static void
dequeued(struct route *r, size_t cost)
{
	r->qlen--;
	r->qbytes -= cost;
	if (r->waiters.head != NULL && r->qbytes <= cfg->queue_bytes / 2)
		link_wake_all(&r->waiters);
}

static void
enqueue(struct route *r, struct stanza *st)
{
	st->next = NULL;
	if (st->queued_at == 0)
		st->queued_at = ev_now(loop);
	if (r->tail)
		r->tail->next = st;
	else
		r->head = st;
	r->tail = st;
	r->qlen++;
	r->qbytes += st->cost;
}

/* Back at the front (a send refused after all, or unacknowledged on a dead link). */
static void
prepend(struct route *r, struct stanza *st)
{
	st->next = r->head;
	r->head = st;
	if (r->tail == NULL)
		r->tail = st;
	r->qlen++;
	r->qbytes += st->cost;
}

static struct stanza *
dequeue(struct route *r)
{
	struct stanza *st = r->head;

	if (st == NULL)
		return NULL;
	r->head = st->next;
	if (r->head == NULL)
		r->tail = NULL;
	st->next = NULL;
	dequeued(r, st->cost);
	return st;
}

/* ---- stanzas in ---- */

static void
r_stanza(void *owner, struct link *l, struct stanza *st)
{
	char fd[256], td[256];
	struct route *r;

	/* stream.c checked both addresses before handing the stanza over */
	if (jid_domain(st->from, fd, sizeof(fd)) == -1 ||
	    jid_domain(st->to, td, sizeof(td)) == -1) {
		log_warnx("conn=%lu stanza without usable addresses dropped", link_id(l));
		stanza_free(st);
		return;
	}
	(void)owner;
	if (link_side(l) == STREAM_INTERNET) {
		qf_stats.stanzas_in++;
		r = route_send(ROUTE_IN, td, fd, st);
	} else {
		qf_stats.stanzas_out++;
		r = route_send(ROUTE_OUT, fd, td, st);
	}
	/* backpressure: this sender waits until the next hop has room again */
	if (r != NULL && r->qbytes > cfg->queue_bytes) {
		qf_stats.reads_paused++;
		link_pause(l, &r->waiters);
	} else if (over_memory()) {
		qf_stats.reads_paused_memory++;
		link_pause(l, &global_waiters);
		ev_timer_start(loop, &global_check);
	}
}

/* Queue st on its route (or write it at once); returns the route, or NULL when st was
 * bounced instead. */
static struct route *
route_send(enum route_dir dir, const char *local, const char *remote, struct stanza *st)
{
	struct route *r = route_get(dir, local, remote);

	/* when quickfed took it: timeouts { retry } counts from here, also for a stanza
	 * written at once that comes back unacknowledged from a link that died */
	if (st->queued_at == 0)
		st->queued_at = ev_now(loop);
	if (r == NULL) {
		log_warnx("route %s local=%s remote=%s out of memory", dir_name(dir), local, remote);
		bounce(st, "resource-constraint", "wait", "quickfed is out of memory");
		return NULL;
	}
	if (r->state == RS_READY && r->head == NULL && !link_send_blocked(r->link) &&
	    link_may_send(r->link, r->local, r->remote) && link_send_take(r->link, st) == 0) {
		r->sent++;
		return r;
	}
	if (shutting_down && r->state != RS_READY && !(dir == ROUTE_IN && st->is_error)) {
		/* only bounces still travel (to the local server) while shutting down */
		bounce(st, "remote-server-timeout", "wait", "quickfed is shutting down");
		return NULL;
	}
	enqueue(r, st);
	if (r->state == RS_IDLE)
		route_start(r);
	return r;
}

/* Rate limit for per-stanza log lines: a flood gets a summary, not a line each. */
struct log_budget {
	const char *what;
	unsigned per_second;
	double window;
	unsigned n, suppressed;
};

static bool
log_budget_ok(struct log_budget *b)
{
	double now = ev_now(loop);

	if (now - b->window >= 1.0) {
		if (b->suppressed > 0)
			log_info("%s: %u more line(s) suppressed in the last second", b->what,
			    b->suppressed);
		b->window = now;
		b->n = b->suppressed = 0;
	}
	if (++b->n <= b->per_second)
		return true;
	b->suppressed++;
	return false;
}

static bool
bounce_log_ok(void)
{
	static struct log_budget b = { "bounce", 20, 0., 0, 0 };

	return log_budget_ok(&b);
}

/* An undeliverable stanza goes back to its sender through the opposite route. */
static void
bounce(struct stanza *st, const char *cond, const char *type, const char *text)
{
	struct stanza *e;
	char fd[256], td[256];

	if (st->is_error) {
		if (bounce_log_ok())
			log_warnx("undeliverable error stanza from=%s to=%s dropped (errors are "
			    "never bounced) reason=%s", st->from, st->to, cond);
		qf_stats.dropped_errors++;
		stanza_free(st);
		return;
	}
	e = bounce_make(st, cond, type, text);
	if (e == NULL || jid_domain(st->from, fd, sizeof(fd)) == -1 ||
	    jid_domain(st->to, td, sizeof(td)) == -1) {
		log_warnx("cannot bounce stanza from=%s to=%s reason=%s: dropped", st->from,
		    st->to, cond);
		qf_stats.dropped_errors++;
		stanza_free(e);
		stanza_free(st);
		return;
	}
	qf_stats.bounces++;
	if (bounce_log_ok())
		log_info("bounce %s stanza from=%s to=%s error=%s", st->name, st->from, st->to,
		    cond);
	stanza_free(st);
	/* the sender is local: deliver the error inward, else outward */
	if (config_is_local(cfg, fd))
		route_send(ROUTE_IN, fd, td, e);
	else
		route_send(ROUTE_OUT, td, fd, e);
}

/* ---- setting up a route ---- */

static void
route_start(struct route *r)
{
	struct resolve_target t;

	if (route_wait(r))
		return;
	r->retried_plain = false;
	r->timed_out = false;
	r->why = NULL;
	ev_timer_stop(loop, &r->setup);   /* a rider's earlier set-up may still run it */
	ev_timer_set(&r->setup, cfg->setup_timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &r->setup);
	if (r->dir == ROUTE_IN) {
		if (!targets_local_server(cfg, &t)) {
			route_fail(r, "bad local_server address", false);
			return;
		}
		connector_set_targets(&r->cx, &t, 1);
		if (!route_ride(r, &t, 1))
			route_try_next(r);
		return;
	}
	if (targets_static(cfg, r->remote, &t)) {
		connector_set_targets(&r->cx, &t, 1);
		if (!route_ride(r, &t, 1))
			route_try_next(r);
		return;
	}
	/* a link that carries the pair already, or goes to the same remote domain: no DNS */
	if (route_ride(r, NULL, 0))
		return;
	r->state = RS_RESOLVING;
	log_debug("route out local=%s remote=%s resolving", r->local, r->remote);
	if ((r->req = resolver_lookup(resolver, r->remote, route_resolved, r)) == NULL)
		route_retry(r, "resolver failure", false);
}

static void
route_resolved(void *arg, const struct resolve_result *res)
{
	struct route *r = arg;

	if (r->magic != ROUTE_MAGIC)
		fatalx("route: bad magic in resolver callback");
	r->req = NULL;
	if (res->status != RESOLVE_OK) {
		log_warnx("route out local=%s remote=%s resolution failed: %s%s%s", r->local,
		    r->remote, resolve_status_str(res->status), res->why ? ": " : "",
		    res->why ? res->why : "");
		/* a domain that does not exist or offers no service is not retried; a
		 * resolver that did not answer is */
		if (res->status == RESOLVE_TIMEOUT || res->status == RESOLVE_SERVFAIL)
			route_retry(r, resolve_status_str(res->status),
			    res->status == RESOLVE_TIMEOUT);
		else
			route_fail(r, resolve_status_str(res->status), false);
		return;
	}
	if (connector_set_targets(&r->cx, res->targets, res->n_targets) == 0) {
		route_fail(r, "no usable targets", false);
		return;
	}
	if (route_ride(r, res->targets, res->n_targets))
		return;
	route_try_next(r);
}

/* Multiplexing: put the pair on a link that goes to the same server (s2s/link.c says
 * which may) instead of opening one. True when the route now rides a link. */
static bool
route_ride(struct route *r, const struct resolve_target *t, size_t n)
{
	enum stream_side side = r->dir == ROUTE_OUT ? STREAM_INTERNET : STREAM_LOCAL;
	struct link *l;
	int rc;

	if (!cfg->multiplex || r->no_ride || shutting_down)
		return false;
	if ((l = link_find_ride(side, r->local, r->remote, t, n)) == NULL)
		return false;
	if ((rc = link_ride(l, r->local, r->remote, &relay_ops, r->self)) == -1)
		return false;
	qf_stats.pairs_riding++;
	r->link = l;
	r->riding = true;
	r->state = RS_CONNECTING;
	log_debug("route %s local=%s remote=%s rides conn=%lu%s", dir_name(r->dir), r->local,
	    r->remote, link_id(l), rc == 1 ? "" : rc == 2 ? " (pipelined behind its db:result)" :
	    " (waiting for its verdict)");
	if (rc == 1)
		route_ready(r);
	else if (rc == 2)
		r_pipeline(r, l);
	return true;
}

/* The route is done with its link: its own is closed, a ridden one only left. */
static void
route_let_go(struct route *r, const char *reason)
{
	struct link *l = r->link;

	r->link = NULL;
	if (l == NULL)
		return;
	if (r->riding) {
		r->riding = false;
		link_unride(l, r->self);
		return;
	}
	link_detach(l);
	link_close(l, reason);
}

/* XEP-0198: st was sent on l but never acknowledged, and l is ending: it goes back to
 * the front of its route's queue (found by its addresses: l may carry many pairs, and
 * bidi streams carry them back) and is sent again on the next link. The route of l
 * itself restarts when l reports closed, right after; another one starts or drains. */
static void
r_requeue(void *owner, struct link *l, struct stanza *st)
{
	char fd[256], td[256];
	enum route_dir dir = link_side(l) == STREAM_INTERNET ? ROUTE_OUT : ROUTE_IN;
	struct route *r;

	(void)owner;
	if (jid_domain(st->from, fd, sizeof(fd)) == -1 ||
	    jid_domain(st->to, td, sizeof(td)) == -1) {
		qf_stats.sm_lost++;
		stanza_free(st);
		return;
	}
	r = dir == ROUTE_OUT ? route_get(dir, fd, td) : route_get(dir, td, fd);
	if (r == NULL) {
		bounce(st, "resource-constraint", "wait", "quickfed is out of memory");
		return;
	}
	prepend(r, st);
	if (r->link == l)
		return;   /* r_closed follows and starts it over */
	if (r->state == RS_IDLE && shutting_down)
		route_fail(r, "shutting down", true);   /* bounced, never dropped */
	else if (r->state == RS_IDLE)
		route_start(r);
	else if (r->state == RS_READY)
		route_drain(r);
}

/* Without stream management: st was written on l, which died before the peer's TCP
 * acknowledged it. It may have arrived or not: its sender gets an error (never a
 * silent loss, never a duplicate). */
static void
r_unproven(void *owner, struct link *l, struct stanza *st)
{
	/* a line each (what a link can hold unproven is bounded by limits { queue_bytes }) */
	static struct log_budget b = { "unproven", 1000, 0., 0, 0 };

	(void)owner;
	if (log_budget_ok(&b))
		log_warnx("conn=%lu %s stanza from=%s to=%s id=%s: link died before the peer "
		    "acknowledged it (no stream management): bounced", link_id(l), st->name,
		    st->from, st->to, st->id != NULL ? st->id : "-");
	bounce(st, "remote-server-timeout", "wait", "the connection to the remote server "
	    "broke before it confirmed this stanza; it may not have been delivered");
}

/* The ridden link will not carry this pair: connect on our own. */
static void
r_refused(void *owner, struct link *l, const char *why)
{
	struct route *r = owner;

	if (r->link != l || !r->riding)
		return;
	log_info("route %s local=%s remote=%s: conn=%lu will not carry the pair (%s): "
	    "connecting on its own", dir_name(r->dir), r->local, r->remote, link_id(l), why);
	requeue_inflight(r);   /* pipelined behind a refused db:result: never delivered */
	r->link = NULL;
	r->riding = false;
	r->no_ride = true;
	r->state = RS_IDLE;
	if (r->head == NULL && r->inflight == NULL) {
		ev_timer_stop(loop, &r->setup);
		connector_cancel(&r->cx, "nothing-queued");
		gc_later(r);
		return;
	}
	route_start(r);
}

/* Race the remaining targets (s2s/connect.c); the first TCP connect wins. */
static void
route_try_next(struct route *r)
{
	r->state = RS_CONNECTING;
	if (connector_next(&r->cx) == 0)
		return;
	route_retry(r, r->why ? r->why : "no target reachable", r->timed_out);
}

static struct link *
route_attempt(void *arg, const struct resolve_target *t)
{
	struct route *r = arg;

	return link_connect(t, r->dir == ROUTE_OUT ? STREAM_INTERNET : STREAM_LOCAL,
	    STREAM_RELAY, r->local, r->remote, &relay_ops, r->self);
}

/* The connector is done with an attempt: it no longer reports here. */
static void
route_drop(void *arg, struct link *l, const char *reason)
{
	(void)arg;
	link_detach(l);
	link_close(l, reason);
}

/* Every attempt failed while only the attempt-delay timer was running. */
static void
route_exhausted(void *arg)
{
	struct route *r = arg;

	route_retry(r, r->why ? r->why : "no target reachable", r->timed_out);
}

/* ---- retry with memory (issue 11): a failed set-up keeps its stanzas ---- */

/* What a route's failures are remembered under: the remote domain, or the local server
 * for the routes to it. */
static const char *
backoff_key(const struct route *r)
{
	return r->dir == ROUTE_OUT ? r->remote : "(local server)";
}

/* Bounce what has waited longer than timeouts { retry } (the queue is in arrival
 * order: the oldest are at its head). */
static void
bounce_expired(struct route *r, double now)
{
	const char *cond = r->timed_out ? "remote-server-timeout" : "remote-server-not-found";
	struct stanza *st;
	unsigned n = 0;

	while ((st = r->head) != NULL && now - st->queued_at >= cfg->retry_ms / 1000.0) {
		st = dequeue(r);
		r->bounced++;
		n++;
		bounce(st, cond, r->timed_out ? "wait" : "cancel", r->why ? r->why :
		    "remote server unreachable");
	}
	if (n > 0)
		log_warnx("route %s local=%s remote=%s: %u stanza(s) waited longer than "
		    "timeouts { retry }: bounced with %s", dir_name(r->dir), r->local, r->remote,
		    n, cond);
}

/* Before an attempt: is the route's server in backoff? Then wait for its time (the
 * queue stays; new stanzas join it). */
static bool
route_wait(struct route *r)
{
	double now = ev_now(loop), w;

	if (cfg->retry_ms == 0 || shutting_down ||
	    (w = backoff_wait(backoff_key(r), now)) <= 0)
		return false;
	r->state = RS_WAITING;
	ev_timer_stop(loop, &r->setup);   /* no set-up under way: none to bound */
	ev_timer_stop(loop, &r->retry);
	ev_timer_set(&r->retry, w, 0.);
	ev_timer_start(loop, &r->retry);
	log_debug("route %s local=%s remote=%s waits %.1fs: its server failed %u time(s)",
	    dir_name(r->dir), r->local, r->remote, w, backoff_failures(backoff_key(r)));
	return true;
}

/* Routes waiting for the server of backoff key (but except) try now (their timers
 * would have made them wait up to 30 s more); returns how many. From the loop, not from
 * under a route's own callbacks: each is started by its retry timer, due at once. */
static unsigned
wake_waiting(const char *key, const struct route *except)
{
	unsigned n = 0;

	for (size_t i = 0; i < table_size; i++)
		for (struct route *o = table[i]; o != NULL; o = o->hnext)
			if (o != except && o->state == RS_WAITING &&
			    domain_eq(backoff_key(o), key)) {
				ev_timer_stop(loop, &o->retry);
				ev_timer_set(&o->retry, 0., 0.);
				ev_timer_start(loop, &o->retry);
				n++;
			}
	return n;
}

static void
retry_cb(EV_P_ ev_timer *w, int revents)
{
	struct route *r = w->data;

	(void)revents;
	ev_timer_stop(EV_A, w);
	if (r->state != RS_WAITING)
		return;
	r->state = RS_IDLE;
	bounce_expired(r, ev_now(EV_A));
	if (r->head != NULL)
		route_start(r);
	else
		gc_later(r);
}

/* A set-up failed in a way that may pass (unreachable, timed out, resolver down): the
 * server's backoff grows, the stanzas stay queued until their time in the queue passes
 * timeouts { retry }, and the route tries again when the backoff says. */
static void
route_retry(struct route *r, const char *why, bool timeout)
{
	double now = ev_now(loop), delay;

	if (cfg->retry_ms == 0 || shutting_down) {
		route_fail(r, why, timeout);
		return;
	}
	requeue_inflight(r);
	ev_timer_stop(loop, &r->setup);
	connector_cancel(&r->cx, timeout ? "setup-timeout" : "route-failed");
	if (r->req) {
		resolver_cancel(r->req);
		r->req = NULL;
	}
	r->why = why;
	r->timed_out = timeout;
	r->no_ride = false;
	delay = backoff_failed(backoff_key(r), now);
	qf_stats.route_retries++;
	bounce_expired(r, now);
	if (r->head == NULL) {
		r->state = RS_IDLE;
		gc_later(r);
		return;
	}
	log_warnx("route %s local=%s remote=%s failed: %s; %u stanza(s) kept, next attempt "
	    "in %.0fs (failure %u)", dir_name(r->dir), r->local, r->remote, why, r->qlen,
	    delay, backoff_failures(backoff_key(r)));
	r->state = RS_WAITING;
	ev_timer_stop(loop, &r->retry);
	ev_timer_set(&r->retry, delay, 0.);
	ev_timer_start(loop, &r->retry);
}

/* Set-up failed for good: bounce everything queued. */
static void
route_fail(struct route *r, const char *why, bool timeout)
{
	struct stanza *st;
	const char *cond = timeout ? "remote-server-timeout" : "remote-server-not-found";

	requeue_inflight(r);
	ev_timer_stop(loop, &r->setup);
	connector_cancel(&r->cx, timeout ? "setup-timeout" : "route-failed");
	if (r->req) {
		resolver_cancel(r->req);
		r->req = NULL;
	}
	log_warnx("route %s local=%s remote=%s failed: %s; bouncing %u stanza(s) with %s",
	    dir_name(r->dir), r->local, r->remote, why, r->qlen, cond);
	r->state = RS_IDLE;
	r->no_ride = false;
	ev_timer_stop(loop, &r->retry);
	while ((st = dequeue(r)) != NULL) {
		r->bounced++;
		bounce(st, cond, timeout ? "wait" : "cancel", why);
	}
	gc_later(r);
}

static void
setup_timeout_cb(EV_P_ ev_timer *w, int revents)
{
	struct route *r = w->data;

	(void)revents;
	if (r->state == RS_READY)
		return;
	/* the failure first: the link's riders, told it closed, then wait for the backoff
	 * instead of connecting at once */
	route_retry(r, "set-up timed out", true);
	route_let_go(r, "setup-timeout");
	gc_later(r);
}

static void
r_pipeline(void *owner, struct link *l)
{
	struct route *r = owner;
	struct stanza *st;

	if (r->link != l)
		return;
	while (r->head != NULL && link_send(l, r->head) == 0) {
		st = dequeue(r);
		if (r->inflight_tail)
			r->inflight_tail->next = st;
		else
			r->inflight = st;
		r->inflight_tail = st;
	}
}

/* Pipelined stanzas go back to the front of the queue (the peer never accepted them). */
static void
requeue_inflight(struct route *r)
{
	struct stanza *st;
	unsigned n = 0;
	size_t bytes = 0;

	if (r->inflight == NULL)
		return;
	for (st = r->inflight; st; st = st->next) {
		n++;
		bytes += st->cost;
	}
	r->inflight_tail->next = r->head;
	if (r->head == NULL)
		r->tail = r->inflight_tail;
	r->head = r->inflight;
	r->qlen += n;
	r->qbytes += bytes;
	r->inflight = r->inflight_tail = NULL;
}

/* l's TCP connect succeeded. The first attempt to get here wins the race and becomes
 * the route's stream; the others are closed. */
static void
r_connected(void *owner, struct link *l)
{
	struct route *r = owner;

	if (connector_connected(&r->cx, l))
		r->link = l;
}

/* Write queued stanzas while the connection takes them; the rest waits for
 * r_drained(). */
static void
route_drain(struct route *r)
{
	struct stanza *st;

	while ((st = r->head) != NULL && r->link != NULL &&
	    link_may_send(r->link, r->local, r->remote)) {
		size_t cost = st->cost;
		struct stanza *next = st->next;

		/* the link takes st (it may free it at once): off the queue first, and
		 * back at its head if refused, without waking anyone meanwhile */
		st->next = NULL;
		if (link_send_take(r->link, st) == -1) {
			st->next = next;
			break;
		}
		r->head = next;
		if (next == NULL)
			r->tail = NULL;
		dequeued(r, cost);
		r->sent++;
	}
}

static void
r_ready(void *owner, struct link *l)
{
	struct route *r = owner;

	if (r->link != l)
		return;
	route_ready(r);
}

/* The route's link (its own, or one it rides) may carry its stanzas now. */
static void
route_ready(struct route *r)
{
	struct stanza *st;

	ev_timer_stop(loop, &r->setup);
	r->state = RS_READY;
	r->retried_plain = false;
	r->no_ride = false;
	if (backoff_failures(backoff_key(r)) > 0) {
		backoff_ok(backoff_key(r));
		/* the server is back: its other routes need not wait */
		wake_waiting(backoff_key(r), r);
	}
	connector_cancel(&r->cx, "ready");   /* the target list is no longer needed */
	while ((st = r->inflight) != NULL) {   /* authentication confirmed: delivered */
		r->inflight = st->next;
		r->sent++;
		stanza_free(st);
	}
	r->inflight_tail = NULL;
	route_drain(r);
}

static void
r_drained(void *owner, struct link *l)
{
	struct route *r = owner;

	if (r->link != l || r->state != RS_READY)
		return;
	route_drain(r);
}

/* A receiving link ended: its pending verifications are moot. */
static void
rx_closed(void *owner, struct link *l, const char *reason, bool timed_out)
{
	(void)owner;
	(void)reason;
	(void)timed_out;
	verify_cancel(link_handle(l));
}

static void
r_closed(void *owner, struct link *l, const char *reason, bool timed_out)
{
	struct route *r = owner;

	if (r->link != l) {
		/* an attempt that never connected: the next one starts at once */
		const char *why = r->why;
		bool to = r->timed_out;
		int rc;

		r->why = reason;
		r->timed_out = timed_out;
		if (shutting_down) {
			/* no new attempts: drop the rest of the race */
			if (connector_attempt_closed(&r->cx, l) != 1)
				route_fail(r, "shutting down", true);
			else {
				r->why = why;
				r->timed_out = to;
			}
			return;
		}
		rc = connector_attempt_closed(&r->cx, l);
		if (rc == 1) {
			r->why = why;
			r->timed_out = to;
		} else if (rc == -1) {
			route_retry(r, r->why ? r->why : "no target reachable", r->timed_out);
		}
		return;
	}
	r->link = NULL;
	requeue_inflight(r);
	if (r->riding) {
		/* a ridden link ended: ride another or connect, as a new set-up would */
		r->riding = false;
		r->state = RS_IDLE;
		if (r->head != NULL && shutting_down)
			route_fail(r, "shutting down", true);
		else if (r->head != NULL)
			route_start(r);
		else {
			ev_timer_stop(loop, &r->setup);
			connector_cancel(&r->cx, "link-closed");
			gc_later(r);
		}
		return;
	}
	if (r->state != RS_READY && link_pipelined(l) && !r->retried_plain && !shutting_down) {
		/* never let pipelining break federation: forget, retry the same target plain */
		peercaps_forget(r->remote, reason);
		r->retried_plain = true;
		connector_rewind(&r->cx, r->cx.won_idx);
		route_try_next(r);
		return;
	}
	if (r->state == RS_READY) {
		r->state = RS_IDLE;
		if (r->head != NULL && shutting_down)
			route_fail(r, "shutting down", true);   /* bounced, never dropped */
		else if (r->head != NULL)
			route_start(r);
		else
			gc_later(r);
		return;
	}
	r->timed_out = timed_out;
	r->why = reason;
	if (shutting_down) {
		route_fail(r, "shutting down", true);
		return;
	}
	route_try_next(r);
}

/* ---- dialback verification (we are the receiving server): verify.c ---- */

static void
rx_verify_needed(void *owner, struct link *l, const char *local, const char *remote,
    const char *stream_id, const char *key)
{
	(void)owner;
	/* while shutting down only the local server's streams are verified: it may need
	 * one to verify what we still deliver to it */
	if ((shutting_down && link_side(l) == STREAM_INTERNET) ||
	    verify_start(l, local, remote, stream_id, key) == -1) {
		qf_stats.verify_refused++;
		link_dialback_error(l, local, remote);
	}
}

/* ---- shutdown and status ---- */

bool
route_busy(void)
{
	if (verify_jobs() > 0)
		return true;
	for (size_t i = 0; i < table_size; i++)
		for (struct route *r = table[i]; r; r = r->hnext)
			if (r->head != NULL || r->inflight != NULL || r->state == RS_RESOLVING ||
			    r->state == RS_CONNECTING)
				return true;
	return false;
}

/* Stop new set-ups; bounce what cannot leave. Routes to the local server keep going
 * (they carry the bounces, bounded by timeouts { shutdown }); outgoing routes still
 * setting up are failed here, ready ones when main.c closes their streams
 * (r_closed bounces their queues). */
void
route_shutdown(void)
{
	shutting_down = true;
	for (size_t i = 0; i < table_size; i++) {
		struct route *r, *next;

		for (r = table[i]; r; r = next) {
			next = r->hnext;
			/* routes to the local server keep going: they carry the bounces */
			if (r->dir == ROUTE_OUT && r->state != RS_READY && r->head != NULL) {
				route_let_go(r, "shutdown");
				route_fail(r, "shutting down", true);
			} else if (r->state == RS_WAITING) {
				/* no more waiting: one last attempt now (or a bounce) */
				ev_timer_stop(loop, &r->retry);
				ev_timer_set(&r->retry, 0., 0.);
				ev_timer_start(loop, &r->retry);
			}
		}
	}
}

void
route_free_all(void)
{
	struct stanza *st;
	unsigned long dropped = 0;

	verify_free_all();
	if (loop != NULL) {
		ev_timer_stop(loop, &gc_watcher);
		ev_timer_stop(loop, &global_check);
	}
	gc_list = NULL;
	for (size_t i = 0; i < table_size; i++) {
		struct route *r;

		while ((r = table[i]) != NULL) {
			table[i] = r->hnext;
			ev_timer_stop(loop, &r->setup);
			ev_timer_stop(loop, &r->retry);
			connector_cancel(&r->cx, "exit");
			if (r->req)
				resolver_cancel(r->req);
			requeue_inflight(r);
			while ((st = r->head) != NULL) {
				r->head = st->next;
				dropped++;
				stanza_free(st);
			}
			if (dropped > 0)
				log_warnx("route %s local=%s remote=%s: %lu stanza(s) still queued at "
				    "exit (the shutdown bound ran out)", dir_name(r->dir), r->local,
				    r->remote, dropped);
			dropped = 0;
			handle_release(r->self);
			free(r);
		}
	}
	free(table);
	table = NULL;
	table_size = nroutes = 0;
	backoff_free_all();
}

static const char *
route_strstate(enum route_state s)
{
	static const char *const names[] = { "idle", "resolving", "connecting", "ready",
	    "waiting" };

	return names[s];
}

static void
route_record(const struct route *r, struct buf *out)
{
	const char *d = dir_name(r->dir);

	buf_printf(out, "route.%s.%s.%s.state=%s\n", d, r->local, r->remote,
	    route_strstate(r->state));
	buf_printf(out, "route.%s.%s.%s.queued=%u\n", d, r->local, r->remote, r->qlen);
	buf_printf(out, "route.%s.%s.%s.queued_bytes=%zu\n", d, r->local, r->remote, r->qbytes);
	buf_printf(out, "route.%s.%s.%s.sent=%lu\n", d, r->local, r->remote, r->sent);
	buf_printf(out, "route.%s.%s.%s.bounced=%lu\n", d, r->local, r->remote, r->bounced);
	buf_printf(out, "route.%s.%s.%s.conn=%lu\n", d, r->local, r->remote,
	    r->link != NULL ? link_id(r->link) : 0);
	buf_printf(out, "route.%s.%s.%s.riding=%d\n", d, r->local, r->remote, r->riding);
}

/* One part of a streamed listing: record(r) for each route that want(r) (NULL: all),
 * from the cursor on. The cursor is (bucket + 1) << 24 | position in its chain. A route
 * added or freed between two parts may be missed or listed twice. */
static int
routes_part(struct buf *out, uint64_t *cursor, bool (*want)(const struct route *),
    void (*record)(const struct route *, struct buf *))
{
	size_t b, pos;

	b = (size_t)(*cursor >> 24) - 1;
	pos = (size_t)(*cursor & 0xffffff);
	for (; b < table_size; b++, pos = 0) {
		size_t i = 0;

		for (struct route *r = table[b]; r; r = r->hnext, i++) {
			if (i < pos)
				continue;
			if (want != NULL && !want(r))
				continue;
			if (buf_room(out) < STATUS_RECORD_MAX) {
				*cursor = ((uint64_t)(b + 1) << 24) | i;
				return 1;
			}
			record(r, out);
		}
	}
	return 0;
}

/* Streamed: the count is the one at the start. */
static int
status_routes(void *arg, const char *args, struct buf *out, uint64_t *cursor)
{
	(void)arg;
	(void)args;
	if (*cursor == 0) {
		buf_printf(out, "routes=%zu\n", nroutes);
		*cursor = (uint64_t)1 << 24;
	}
	return routes_part(out, cursor, NULL, route_record);
}

static bool
route_queued(const struct route *r)
{
	return r->head != NULL;
}

/* The queue is in arrival order (stanzas put back at its head were queued before the
 * rest): the head's wait is the oldest. */
static void
queue_record(const struct route *r, struct buf *out)
{
	const char *d = dir_name(r->dir);
	double age = ev_now(loop) - r->head->queued_at;

	buf_printf(out, "queue.%s.%s.%s.state=%s\n", d, r->local, r->remote,
	    route_strstate(r->state));
	buf_printf(out, "queue.%s.%s.%s.queued=%u\n", d, r->local, r->remote, r->qlen);
	buf_printf(out, "queue.%s.%s.%s.queued_bytes=%zu\n", d, r->local, r->remote, r->qbytes);
	buf_printf(out, "queue.%s.%s.%s.oldest_age=%.1f\n", d, r->local, r->remote,
	    age > 0 ? age : 0.0);
}

/* Streamed like show routes, listing only the routes with stanzas queued; the totals
 * are the ones at the start. */
static int
status_queues(void *arg, const char *args, struct buf *out, uint64_t *cursor)
{
	size_t n = 0, bytes = 0;
	unsigned long stanzas = 0;

	(void)arg;
	(void)args;
	if (*cursor == 0) {
		for (size_t i = 0; i < table_size; i++)
			for (const struct route *r = table[i]; r != NULL; r = r->hnext)
				if (route_queued(r)) {
					n++;
					stanzas += r->qlen;
					bytes += r->qbytes;
				}
		buf_printf(out, "queues=%zu\nqueued=%lu\nqueued_bytes=%zu\n", n, stanzas, bytes);
		*cursor = (uint64_t)1 << 24;
	}
	return routes_part(out, cursor, route_queued, queue_record);
}

/* "retry DOMAIN": the operator says DOMAIN's server is back. Its failures are forgotten
 * and the routes waiting for it try at once ("(local server)", as show backoff names
 * it, for the routes to the local server). */
static int
status_retry(void *arg, const char *args, struct buf *out)
{
	char d[256];
	const char *key = d;
	unsigned n;

	(void)arg;
	if (strcmp(args, "(local server)") == 0)
		key = "(local server)";
	else if (*args == '\0' || strpbrk(args, " \t") != NULL ||
	    jid_domain_only(args, d, sizeof(d)) == -1) {
		buf_puts(out, "usage: retry DOMAIN (a remote domain, or \"(local server)\", as "
		    "show backoff lists them)");
		return -1;
	}
	backoff_ok(key);
	n = wake_waiting(key, NULL);
	log_info("retry %s: backoff forgotten, %u waiting route(s) try now", key, n);
	buf_printf(out, "retried=%u\n", n);
	return 0;
}

static int
status_backoff(void *arg, const char *args, struct buf *out)
{
	(void)arg;
	(void)args;
	backoff_format(out, ev_now(loop));
	return 0;
}

void
route_set_config(const struct config *c)
{
	cfg = c;
	verify_set_config(c);
}

static const struct sample_family fam_routes = { NULL, SAMPLE_GAUGE,
	"routes (direction, local domain, remote domain) alive" };
static const struct sample_family fam_alive = { NULL, SAMPLE_GAUGE,
	"stanzas held in memory (queued, in flight, held)" };
static const struct sample_family fam_alive_bytes = { NULL, SAMPLE_GAUGE,
	"bytes of the stanzas held in memory, against limits { memory }" };
static const struct sample_family fam_verify_pending = { NULL, SAMPLE_GAUGE,
	"dialback verifications under way" };
static const struct sample_family fam_verify_sessions = { NULL, SAMPLE_GAUGE,
	"streams open for dialback verifications" };

void
route_emit(void *arg, struct sample_sink *sink)
{
	(void)arg;
	stats_emit(NULL, sink);
	sample_put(sink, "routes", &fam_routes, (int64_t)nroutes);
	sample_put(sink, "stanzas.alive", &fam_alive, (int64_t)stanza_count_alive());
	sample_put(sink, "stanzas.alive_bytes", &fam_alive_bytes, (int64_t)stanza_bytes_alive());
	sample_put(sink, "verify.pending", &fam_verify_pending, (int64_t)verify_jobs());
	sample_put(sink, "verify.sessions", &fam_verify_sessions, (int64_t)verify_sessions());
}

static int
status_stats(void *arg, const char *args, struct buf *out)
{
	struct sample_sink sink;

	(void)args;
	sample_kv_sink(&sink, out);
	route_emit(arg, &sink);
	return 0;
}

void
route_foreach(void (*fn)(void *, const struct route_info *), void *arg)
{
	struct route_info ri;

	for (size_t i = 0; i < table_size; i++)
		for (const struct route *r = table[i]; r != NULL; r = r->hnext) {
			ri.out = r->dir == ROUTE_OUT;
			ri.local = r->local;
			ri.remote = r->remote;
			ri.ready = r->state == RS_READY;
			ri.queued = r->qlen;
			ri.queued_bytes = r->qbytes;
			ri.link = r->link != NULL ? link_id(r->link) : 0;
			fn(arg, &ri);
		}
}
