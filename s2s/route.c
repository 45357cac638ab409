/* s2s/route.c - map (local, remote) domain pairs to streams; queue, connect, bounce.
 * SPDX-License-Identifier: ISC
 * conn.c hands it every authorised stanza and every dialback job. OUT routes (local
 * server -> internet) resolve the remote domain and try its targets in order; IN routes
 * (internet -> local server) connect to the configured local server over loopback.
 * While a route is being set up its stanzas wait in a bounded queue; if set-up fails,
 * each is bounced to its sender with remote-server-not-found or remote-server-timeout.
 * Dialback verifications (XEP-0220 §2.3) are run here too, on short-lived streams. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/log.h"
#include "../core/stats.h"
#include "../core/status.h"
#include "../dns/resolver.h"
#include "bounce.h"
#include "conn.h"
#include "connect.h"
#include "jid.h"
#include "peercaps.h"
#include "route.h"
#include "stream.h"
#include "xnode.h"

#define ROUTE_MAGIC   0x726f7574u  /* "rout" */
#define VERIFY_MAGIC  0x76657269u  /* "veri" */
#define MAX_TARGETS   32

enum route_dir {
	ROUTE_OUT = 0,   /* local server -> internet */
	ROUTE_IN,        /* internet -> local server */
};

enum route_state {
	RS_IDLE = 0,     /* no stream; the next stanza starts one */
	RS_RESOLVING,    /* waiting for DNS */
	RS_CONNECTING,   /* a stream is being set up */
	RS_READY,        /* stanzas go straight out */
};

struct qitem {
	struct xnode *st;
	struct qitem *next;
};

/* What a route or verification needs to walk a list of targets. */
struct targets {
	struct resolve_req *req;
	struct resolve_target t[MAX_TARGETS];
	size_t n, next;
	bool timed_out;           /* the last failure was a timeout */
	const char *why;          /* last failure, for logs */
};

struct route {
	unsigned int     magic;
	enum route_dir   dir;
	enum route_state state;
	char             local[256], remote[256];
	struct conn     *conn;          /* the initiating stream, when any */
	struct qitem    *head, *tail;   /* stanzas waiting for the stream */
	unsigned         qlen;
	struct qitem    *inflight;      /* pipelined before auth was confirmed (in order) */
	bool             retried_plain; /* a pipelined attempt failed; retried without */
	struct targets   tg;
	struct connector cx;            /* Happy Eyeballs over tg's targets */
	ev_timer         setup;         /* bounds the whole set-up */
	unsigned long    sent, bounced;
	struct route    *next;
};

struct verify {
	unsigned int   magic;
	enum stream_side side;
	unsigned long  recv_conn;       /* the receiving stream waiting for the verdict */
	char           local[256], remote[256], id[64], key[260];
	struct conn   *conn;
	struct targets tg;
	struct connector cx;            /* Happy Eyeballs over tg's targets */
	bool           answered;
	struct verify *next;
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct resolver *resolver;
static struct route *routes;
static struct verify *verifies;
static bool shutting_down;

static struct route *route_get(enum route_dir, const char *, const char *);
static void route_send(enum route_dir, const char *, const char *, struct xnode *);
static void route_start(struct route *);
static void route_try_next(struct route *);
static void route_fail(struct route *, const char *, bool);
static void requeue_inflight(struct route *);
static void route_resolved(void *, const struct resolve_result *);
static void setup_timeout_cb(EV_P_ ev_timer *, int);
static void bounce(struct xnode *, const char *, const char *, const char *);
static void verify_try_next(struct verify *);
static struct conn *route_attempt(void *, const struct resolve_target *);
static void route_exhausted(void *);
static struct conn *verify_attempt(void *, const struct resolve_target *);
static void verify_exhausted(void *);
static void verify_resolved(void *, const struct resolve_result *);
static void verify_done(struct verify *, bool);
static int status_routes(void *, const char *, struct buf *);
static int status_stats(void *, const char *, struct buf *);

void
route_init(struct ev_loop *l, const struct config *c, struct resolver *r, struct status *st)
{
	loop = l;
	cfg = c;
	resolver = r;
	if (st != NULL) {
		status_register(st, "show routes",
		    "show routes: every domain pair with its state and queue", status_routes, NULL);
		status_register(st, "show stats",
		    "show stats: connections, stanzas relayed, bounces, stream errors",
		    status_stats, NULL);
	}
}

struct resolver *
route_resolver(void)
{
	return resolver;
}

static const char *
dir_name(enum route_dir d)
{
	return d == ROUTE_OUT ? "out" : "in";
}

static struct route *
route_get(enum route_dir dir, const char *local, const char *remote)
{
	struct route *r;

	for (r = routes; r; r = r->next)
		if (r->dir == dir && domain_eq(r->local, local) && domain_eq(r->remote, remote))
			return r;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->magic = ROUTE_MAGIC;
	r->dir = dir;
	snprintf(r->local, sizeof(r->local), "%s", local);
	snprintf(r->remote, sizeof(r->remote), "%s", remote);
	ev_init(&r->setup, setup_timeout_cb);
	r->setup.data = r;
	connector_init(&r->cx, loop, cfg->attempt_delay_ms, route_attempt, route_exhausted, r);
	r->next = routes;
	routes = r;
	return r;
}

/* ---- stanzas in ---- */

void
route_stanza(struct conn *c, struct xnode *st)
{
	char fd[256], td[256];

	/* stream.c checked both addresses before handing the stanza over */
	if (jid_domain(xnode_attr(st, "from"), fd, sizeof(fd)) == -1 ||
	    jid_domain(xnode_attr(st, "to"), td, sizeof(td)) == -1) {
		log_warnx("conn=%lu stanza without usable addresses dropped", c->id);
		xnode_free(st);
		return;
	}
	if (c->st->side == STREAM_INTERNET) {
		qf_stats.stanzas_in++;
		route_send(ROUTE_IN, td, fd, st);
	} else {
		qf_stats.stanzas_out++;
		route_send(ROUTE_OUT, fd, td, st);
	}
}

static void
route_send(enum route_dir dir, const char *local, const char *remote, struct xnode *st)
{
	struct route *r = route_get(dir, local, remote);
	struct qitem *q;

	if (r == NULL) {
		log_warnx("route %s local=%s remote=%s out of memory", dir_name(dir), local, remote);
		bounce(st, "resource-constraint", "wait", "quickfed is out of memory");
		return;
	}
	if (r->state == RS_READY && r->head == NULL && conn_send(r->conn, st) == 0) {
		r->sent++;
		xnode_free(st);
		return;
	}
	if (shutting_down && !(dir == ROUTE_IN && bounce_is_error(st))) {
		/* only bounces still travel (to the local server) while shutting down */
		bounce(st, "remote-server-timeout", "wait", "quickfed is shutting down");
		return;
	}
	if (r->qlen >= cfg->max_queue || (q = malloc(sizeof(*q))) == NULL) {
		log_warnx("route %s local=%s remote=%s queue full (%u), bouncing", dir_name(dir),
		    local, remote, r->qlen);
		bounce(st, "resource-constraint", "wait", "too many stanzas queued");
		return;
	}
	q->st = st;
	q->next = NULL;
	if (r->tail)
		r->tail->next = q;
	else
		r->head = q;
	r->tail = q;
	r->qlen++;
	if (r->state == RS_IDLE)
		route_start(r);
}

/* An undeliverable stanza goes back to its sender through the opposite route. */
static void
bounce(struct xnode *st, const char *cond, const char *type, const char *text)
{
	struct xnode *e;
	char fd[256], td[256];
	const char *from = xnode_attr(st, "from"), *to = xnode_attr(st, "to");

	if (bounce_is_error(st)) {
		log_warnx("undeliverable error stanza from=%s to=%s dropped (errors are never "
		    "bounced) reason=%s", from ? from : "?", to ? to : "?", cond);
		qf_stats.dropped_errors++;
		xnode_free(st);
		return;
	}
	e = bounce_make(st, cond, type, text);
	if (e == NULL || jid_domain(from, fd, sizeof(fd)) == -1 ||
	    jid_domain(to, td, sizeof(td)) == -1) {
		log_warnx("cannot bounce stanza from=%s to=%s reason=%s: dropped",
		    from ? from : "?", to ? to : "?", cond);
		qf_stats.dropped_errors++;
		xnode_free(e);
		xnode_free(st);
		return;
	}
	qf_stats.bounces++;
	log_info("bounce %s stanza from=%s to=%s error=%s", st->name, from, to, cond);
	xnode_free(st);
	/* the sender is local: deliver the error inward, else outward */
	if (config_is_local(cfg, fd))
		route_send(ROUTE_IN, fd, td, e);
	else
		route_send(ROUTE_OUT, td, fd, e);
}

/* ---- setting up a route ---- */

/* One numeric target (no DNS): tg holds exactly it. Returns false when address is not
 * a numeric IPv4/IPv6 address. */
static bool
numeric_target(struct targets *tg, const char *address, uint16_t port)
{
	struct resolve_target *t = &tg->t[0];
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", address);
	t->port = port;
	if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		t->addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		t->addrlen = sizeof(*s6);
	} else {
		return false;
	}
	tg->n = 1;
	tg->next = 0;
	return true;
}

/* The local server is authoritative for the local domains and receives IN routes. */
static bool
local_server_target(struct targets *tg)
{
	return numeric_target(tg, cfg->local_server_address, cfg->local_server_port);
}

/* A peer block with a numeric address replaces DNS for that domain. */
static bool
static_target(struct targets *tg, const char *domain)
{
	const struct cfg_peer *p = config_peer(cfg, domain);

	if (p == NULL || p->address == NULL)
		return false;
	return numeric_target(tg, p->address, p->port ? p->port : 5269);
}

static void
copy_targets(struct targets *tg, const struct resolve_result *res)
{
	tg->n = 0;
	tg->next = 0;
	for (size_t i = 0; i < res->n_targets && tg->n < MAX_TARGETS; i++)
		tg->t[tg->n++] = res->targets[i];   /* direct TLS (XEP-0368) ones included */
}

static void
route_start(struct route *r)
{
	r->retried_plain = false;
	r->tg.timed_out = false;
	r->tg.why = NULL;
	ev_timer_set(&r->setup, cfg->setup_timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &r->setup);
	if (r->dir == ROUTE_IN) {
		if (!local_server_target(&r->tg)) {
			route_fail(r, "bad local_server address", false);
			return;
		}
		connector_set_targets(&r->cx, r->tg.t, r->tg.n);
		route_try_next(r);
		return;
	}
	if (static_target(&r->tg, r->remote)) {
		connector_set_targets(&r->cx, r->tg.t, r->tg.n);
		route_try_next(r);
		return;
	}
	r->state = RS_RESOLVING;
	log_debug("route out local=%s remote=%s resolving", r->local, r->remote);
	if ((r->tg.req = resolver_lookup(resolver, r->remote, route_resolved, r)) == NULL)
		route_fail(r, "resolver failure", false);
}

static void
route_resolved(void *arg, const struct resolve_result *res)
{
	struct route *r = arg;

	if (r->magic != ROUTE_MAGIC)
		fatalx("route: bad magic in resolver callback");
	r->tg.req = NULL;
	if (res->status != RESOLVE_OK) {
		log_warnx("route out local=%s remote=%s resolution failed: %s%s%s", r->local,
		    r->remote, resolve_status_str(res->status), res->why ? ": " : "",
		    res->why ? res->why : "");
		route_fail(r, resolve_status_str(res->status), res->status == RESOLVE_TIMEOUT);
		return;
	}
	copy_targets(&r->tg, res);
	if (r->tg.n == 0) {
		route_fail(r, "no usable targets", false);
		return;
	}
	connector_set_targets(&r->cx, r->tg.t, r->tg.n);
	route_try_next(r);
}

/* Race the remaining targets (s2s/connect.c); the first TCP connect wins. */
static void
route_try_next(struct route *r)
{
	r->state = RS_CONNECTING;
	if (connector_next(&r->cx) == 0)
		return;
	route_fail(r, r->tg.why ? r->tg.why : "no target reachable", r->tg.timed_out);
}

static struct conn *
route_attempt(void *arg, const struct resolve_target *t)
{
	struct route *r = arg;
	struct conn *c;

	c = conn_connect((struct sockaddr *)&t->addr, t->addrlen,
	    r->dir == ROUTE_OUT ? STREAM_INTERNET : STREAM_LOCAL, STREAM_RELAY,
	    r->local, r->remote, r);
	if (c != NULL) {
		conn_set_target(c, t->host, t->port);
		conn_set_tlsa(c, t);
		if (t->direct_tls)
			conn_set_direct_tls(c);
	}
	return c;
}

/* Every attempt failed while only the attempt-delay timer was running. */
static void
route_exhausted(void *arg)
{
	struct route *r = arg;

	route_fail(r, r->tg.why ? r->tg.why : "no target reachable", r->tg.timed_out);
}

/* Set-up failed for good: bounce everything queued. */
static void
route_fail(struct route *r, const char *why, bool timeout)
{
	struct qitem *q;
	const char *cond = timeout ? "remote-server-timeout" : "remote-server-not-found";

	requeue_inflight(r);
	ev_timer_stop(loop, &r->setup);
	connector_cancel(&r->cx, timeout ? "setup-timeout" : "route-failed");
	if (r->tg.req) {
		resolver_cancel(r->tg.req);
		r->tg.req = NULL;
	}
	log_warnx("route %s local=%s remote=%s failed: %s; bouncing %u stanza(s) with %s",
	    dir_name(r->dir), r->local, r->remote, why, r->qlen, cond);
	r->state = RS_IDLE;
	while ((q = r->head) != NULL) {
		r->head = q->next;
		r->qlen--;
		r->bounced++;
		bounce(q->st, cond, timeout ? "wait" : "cancel", why);
		free(q);
	}
	r->tail = NULL;
}

static void
setup_timeout_cb(EV_P_ ev_timer *w, int revents)
{
	struct route *r = w->data;
	struct conn *c = r->conn;

	(void)revents;
	if (r->state == RS_READY)
		return;
	r->conn = NULL;
	if (c != NULL) {
		c->route = NULL;
		conn_close(c, "setup-timeout");
	}
	route_fail(r, "set-up timed out", true);
}

void
route_conn_pipeline(struct conn *c)
{
	struct route *r = c->route;
	struct qitem *q, **tailp;

	if (r == NULL || r->magic != ROUTE_MAGIC || r->conn != c)
		return;
	for (tailp = &r->inflight; *tailp; tailp = &(*tailp)->next)
		;
	while ((q = r->head) != NULL) {
		if (conn_send(c, q->st) == -1)
			break;
		r->head = q->next;
		r->qlen--;
		q->next = NULL;
		*tailp = q;
		tailp = &q->next;
	}
	if (r->head == NULL)
		r->tail = NULL;
}

/* Pipelined stanzas go back to the front of the queue (the peer never accepted them). */
static void
requeue_inflight(struct route *r)
{
	struct qitem *q = r->inflight, *last = NULL;
	unsigned n = 0;

	if (q == NULL)
		return;
	for (last = q; last->next; last = last->next)
		n++;
	n++;
	last->next = r->head;
	if (r->head == NULL)
		r->tail = last;
	r->head = q;
	r->qlen += n;
	r->inflight = NULL;
}

/* conn.c: c's TCP connect succeeded. The first attempt to get here wins the race and
 * becomes the route's (or verification's) stream; the others are closed. */
void
route_conn_connected(struct conn *c)
{
	struct route *r = c->route;

	if (r == NULL)
		return;
	if (r->magic == VERIFY_MAGIC) {
		struct verify *v = c->route;

		if (connector_connected(&v->cx, c))
			v->conn = c;
		return;
	}
	if (r->magic == ROUTE_MAGIC && connector_connected(&r->cx, c))
		r->conn = c;
}

void
route_conn_ready(struct conn *c)
{
	struct route *r = c->route;
	struct qitem *q;

	if (r == NULL || r->magic != ROUTE_MAGIC || r->conn != c)
		return;
	ev_timer_stop(loop, &r->setup);
	r->state = RS_READY;
	r->retried_plain = false;
	while ((q = r->inflight) != NULL) {   /* authentication confirmed: delivered */
		r->inflight = q->next;
		r->sent++;
		xnode_free(q->st);
		free(q);
	}
	while ((q = r->head) != NULL) {
		if (conn_send(c, q->st) == -1)
			break;
		r->sent++;
		r->head = q->next;
		r->qlen--;
		xnode_free(q->st);
		free(q);
	}
	if (r->head == NULL)
		r->tail = NULL;
	if (shutting_down && r->head == NULL)
		conn_close(c, "shutdown");   /* the bounces are out: done with this stream */
}

void
route_conn_closed(struct conn *c)
{
	struct route *r;
	struct verify *v;

	if (c->route == NULL)
		return;
	if (((struct route *)c->route)->magic == VERIFY_MAGIC) {
		v = c->route;
		if (v->conn != c) {
			/* an attempt that never connected: the race goes on */
			if (connector_attempt_closed(&v->cx, c) == -1) {
				log_warnx("dialback verify local=%s remote=%s: authoritative "
				    "server not reachable", v->local, v->remote);
				verify_done(v, false);
			}
			return;
		}
		v->conn = NULL;
		if (v->answered)
			return;
		v->tg.timed_out = c->timed_out;
		verify_try_next(v);
		return;
	}
	r = c->route;
	if (r->magic != ROUTE_MAGIC)
		return;
	if (r->conn != c) {
		/* an attempt that never connected: the next one starts at once */
		const char *why = r->tg.why;
		bool to = r->tg.timed_out;
		int rc;

		r->tg.why = c->close_reason;
		r->tg.timed_out = c->timed_out;
		if (shutting_down) {
			/* no new attempts: drop the rest of the race */
			if (connector_attempt_closed(&r->cx, c) != 1)
				route_fail(r, "shutting down", true);
			else {
				r->tg.why = why;
				r->tg.timed_out = to;
			}
			return;
		}
		rc = connector_attempt_closed(&r->cx, c);
		if (rc == 1) {
			r->tg.why = why;
			r->tg.timed_out = to;
		} else if (rc == -1) {
			route_fail(r, r->tg.why ? r->tg.why : "no target reachable",
			    r->tg.timed_out);
		}
		return;
	}
	r->conn = NULL;
	requeue_inflight(r);
	if (r->state != RS_READY && c->st->pipeline && !r->retried_plain && !shutting_down) {
		/* never let pipelining break federation: forget, retry the same target plain */
		peercaps_forget(r->remote, c->close_reason ? c->close_reason : "set-up failed");
		r->retried_plain = true;
		connector_rewind(&r->cx, r->cx.won_idx);
		route_try_next(r);
		return;
	}
	if (r->state == RS_READY) {
		r->state = RS_IDLE;
		if (r->head != NULL && !shutting_down)
			route_start(r);
		return;
	}
	r->tg.timed_out = c->timed_out;
	r->tg.why = c->close_reason;
	if (shutting_down) {
		route_fail(r, "shutting down", true);
		return;
	}
	route_try_next(r);
}

/* ---- dialback verification (we are the receiving server) ---- */

void
route_verify_needed(struct conn *c, const char *local, const char *remote,
    const char *stream_id, const char *key)
{
	struct verify *v;

	if ((v = calloc(1, sizeof(*v))) == NULL) {
		stream_dialback_verdict(c->st, local, remote, false);
		return;
	}
	v->magic = VERIFY_MAGIC;
	connector_init(&v->cx, loop, cfg->attempt_delay_ms, verify_attempt, verify_exhausted, v);
	v->side = c->st->side;
	v->recv_conn = c->id;
	snprintf(v->local, sizeof(v->local), "%s", local);
	snprintf(v->remote, sizeof(v->remote), "%s", remote);
	snprintf(v->id, sizeof(v->id), "%s", stream_id);
	snprintf(v->key, sizeof(v->key), "%s", key);
	v->next = verifies;
	verifies = v;
	if (v->side == STREAM_LOCAL) {
		/* the local server is authoritative for its own domains */
		local_server_target(&v->tg);
		connector_set_targets(&v->cx, v->tg.t, v->tg.n);
		verify_try_next(v);
	} else if (static_target(&v->tg, remote)) {
		connector_set_targets(&v->cx, v->tg.t, v->tg.n);
		verify_try_next(v);
	} else if ((v->tg.req = resolver_lookup(resolver, remote, verify_resolved, v)) == NULL) {
		verify_done(v, false);
	}
}

static void
verify_resolved(void *arg, const struct resolve_result *res)
{
	struct verify *v = arg;

	if (v->magic != VERIFY_MAGIC)
		fatalx("route: bad magic in verify callback");
	v->tg.req = NULL;
	if (res->status != RESOLVE_OK) {
		log_warnx("dialback verify remote=%s: resolution failed: %s", v->remote,
		    resolve_status_str(res->status));
		verify_done(v, false);
		return;
	}
	copy_targets(&v->tg, res);
	connector_set_targets(&v->cx, v->tg.t, v->tg.n);
	verify_try_next(v);
}

static void
verify_try_next(struct verify *v)
{
	if (connector_next(&v->cx) == 0)
		return;
	log_warnx("dialback verify local=%s remote=%s: authoritative server not reachable",
	    v->local, v->remote);
	verify_done(v, false);
}

static struct conn *
verify_attempt(void *arg, const struct resolve_target *t)
{
	struct verify *v = arg;
	struct conn *c;

	c = conn_connect((struct sockaddr *)&t->addr, t->addrlen, v->side, STREAM_VERIFY,
	    v->local, v->remote, v);
	if (c != NULL) {
		conn_set_target(c, t->host, t->port);
		conn_set_tlsa(c, t);
		if (t->direct_tls)
			conn_set_direct_tls(c);
		stream_set_verify(c->st, v->id, v->key);
	}
	return c;
}

static void
verify_exhausted(void *arg)
{
	verify_try_next(arg);   /* nothing left: logs and answers "invalid" */
}

void
route_verify_answer(struct conn *c, bool valid)
{
	struct verify *v = c->route;

	if (v == NULL || v->magic != VERIFY_MAGIC)
		return;
	v->answered = true;
	v->conn = NULL;
	c->route = NULL;
	verify_done(v, valid);
}

static void
verify_done(struct verify *v, bool valid)
{
	struct conn *rc = conn_by_id(v->recv_conn);
	struct verify **pp;

	if (rc != NULL) {
		stream_dialback_verdict(rc->st, v->local, v->remote, valid);
		conn_flush(rc);
	} else {
		log_debug("dialback verify local=%s remote=%s: receiving stream gone",
		    v->local, v->remote);
	}
	if (v->conn != NULL)
		v->conn->route = NULL;
	connector_cancel(&v->cx, "verify-done");
	if (v->tg.req)
		resolver_cancel(v->tg.req);
	for (pp = &verifies; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	v->magic = 0;
	free(v);
}

/* ---- shutdown and status ---- */

bool
route_busy(void)
{
	if (verifies != NULL)
		return true;
	for (struct route *r = routes; r; r = r->next)
		if (r->head != NULL || r->inflight != NULL || r->state == RS_RESOLVING ||
		    r->state == RS_CONNECTING)
			return true;
	return false;
}

void
route_shutdown(void)
{
	shutting_down = true;
	for (struct route *r = routes; r; r = r->next)
		if (r->state != RS_READY && r->head != NULL) {
			struct conn *c = r->conn;

			r->conn = NULL;
			if (c) {
				c->route = NULL;
				conn_close(c, "shutdown");
			}
			route_fail(r, "shutting down", true);
		}
}

void
route_free_all(void)
{
	struct route *r;
	struct verify *v;
	struct qitem *q;

	while ((r = routes) != NULL) {
		routes = r->next;
		ev_timer_stop(loop, &r->setup);
		connector_cancel(&r->cx, "exit");
		if (r->tg.req)
			resolver_cancel(r->tg.req);
		requeue_inflight(r);
		while ((q = r->head) != NULL) {
			r->head = q->next;
			log_warnx("route %s local=%s remote=%s: stanza dropped at exit",
			    dir_name(r->dir), r->local, r->remote);
			xnode_free(q->st);
			free(q);
		}
		free(r);
	}
	while ((v = verifies) != NULL) {
		verifies = v->next;
		connector_cancel(&v->cx, "exit");
		if (v->tg.req)
			resolver_cancel(v->tg.req);
		free(v);
	}
}

static int
status_routes(void *arg, const char *args, struct buf *out)
{
	static const char *const names[] = { "idle", "resolving", "connecting", "ready" };

	(void)arg;
	(void)args;
	for (struct route *r = routes; r; r = r->next) {
		buf_printf(out, "route.%s.%s.%s.state=%s\n", dir_name(r->dir), r->local, r->remote,
		    names[r->state]);
		buf_printf(out, "route.%s.%s.%s.queued=%u\n", dir_name(r->dir), r->local, r->remote,
		    r->qlen);
		buf_printf(out, "route.%s.%s.%s.sent=%lu\n", dir_name(r->dir), r->local, r->remote,
		    r->sent);
		buf_printf(out, "route.%s.%s.%s.bounced=%lu\n", dir_name(r->dir), r->local,
		    r->remote, r->bounced);
	}
	return 0;
}

static int
status_stats(void *arg, const char *args, struct buf *out)
{
	(void)arg;
	(void)args;
	stats_format(out);
	return 0;
}
