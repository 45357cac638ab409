/* s2s/verify.c - dialback verifications: asking a domain's authoritative server (XEP-0220 §2.3).
 * SPDX-License-Identifier: ISC
 * route.c hands every db:result key here. Jobs for the same (side, local, remote) share
 * one session: the authoritative server is resolved once, connected once (Happy Eyeballs
 * through connect.c), and asked with one db:verify per job on the same stream; answers
 * are matched by stream id and domain pair. On the loopback leg the authoritative server
 * is the local server for every local domain, so all its jobs share one session and
 * one connection whatever their domains, and lingers on it after its last verdict
 * (until the local server or timeouts { auth } ends the connection). Any other session
 * exists only while it has jobs: the last verdict, or the last asking stream closing,
 * ends it and its connection. What a session costs
 * while it connects (the target list) is allocated then and freed when connected.
 * Jobs name the asking link by handle (a stream that closes is simply not found); a
 * session is known to its links by handle too, and is the owner of their events
 * (struct link_ops). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/handle.h"
#include "../core/log.h"
#include "../dns/resolver.h"
#include "connect.h"
#include "jid.h"
#include "link.h"
#include "stream.h"
#include "targets.h"
#include "verify.h"

#define VERIFY_MAGIC 0x76657269u  /* "veri" */

/* One key to verify for one receiving stream. */
struct job {
	struct job   *next;
	struct handle asker;      /* the receiving link waiting for the verdict */
	bool          sent;       /* its db:verify went out on the current connection */
	const char   *id, *key;   /* inside data */
	const char   *local, *remote; /* the pair the key was given for (inside data) */
	char          data[];
};

struct session {
	unsigned int  magic;
	struct handle self;             /* what its links know it by */
	enum stream_side side;
	const char   *local, *remote;   /* inside names */
	struct link  *link;             /* the connection that won the race, or NULL
	                                 * (cleared when it reports closed) */
	bool          ready;            /* its stream takes db:verify requests */
	bool          reaping;          /* on the reap list (no jobs left) */
	unsigned      restarts;         /* new connections after a ready one closed */
	struct resolve_req *req;        /* resolution under way */
	struct connector cx;            /* Happy Eyeballs over the targets */
	const char   *why;              /* last failure, for logs */
	struct job   *jobs;
	size_t        njobs;
	struct session *next, *reap_next;
	char          names[];
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct resolver *resolver;
static struct session *sessions, *reap_list;
static size_t njobs_total, nsessions;
static ev_timer reaper;             /* 0 s: ends abandoned sessions from the loop */

static struct session *session_new(enum stream_side, const char *, const char *);
static void session_start(struct session *);
static void session_try_next(struct session *);
static void session_fail(struct session *, const char *);
static void session_free(struct session *, const char *);
static void session_reap_later(struct session *);
static void resolved_cb(void *, const struct resolve_result *);
static struct link *attempt_cb(void *, const struct resolve_target *);
static void drop_cb(void *, struct link *, const char *);
static void exhausted_cb(void *);
static void v_connected(void *, struct link *);
static void v_ready(void *, struct link *);
static void v_answer(void *, struct link *, const char *, const char *, const char *,
    bool);
static void v_closed(void *, struct link *, const char *, bool);

/* The links that carry db:verify requests (owner: the session). */
static const struct link_ops verify_ops = {
	.kind = HANDLE_VERIFY,
	.connected = v_connected,
	.ready = v_ready,
	.verify_answer = v_answer,
	.closed = v_closed,
};
static void reap_cb(EV_P_ ev_timer *, int);
static void job_done(struct session *, struct job *, bool);
static void send_jobs(struct session *);

void
verify_init(struct ev_loop *l, const struct config *c, struct resolver *r)
{
	loop = l;
	cfg = c;
	resolver = r;
	ev_timer_init(&reaper, reap_cb, 0., 0.);
}

void
verify_set_config(const struct config *c)
{
	cfg = c;
}

static struct session *
session_find(enum stream_side side, const char *local, const char *remote)
{
	for (struct session *v = sessions; v; v = v->next)
		if (v->side == side && (side == STREAM_LOCAL ||
		    (domain_eq(v->local, local) && domain_eq(v->remote, remote))))
			return v;
	return NULL;
}

static struct session *
session_new(enum stream_side side, const char *local, const char *remote)
{
	size_t ll = strlen(local) + 1, rl = strlen(remote) + 1;
	struct session *v = calloc(1, sizeof(*v) + ll + rl);

	if (v == NULL)
		return NULL;
	v->self = handle_new(HANDLE_VERIFY, v);
	if (handle_is_null(v->self)) {
		free(v);
		return NULL;
	}
	v->magic = VERIFY_MAGIC;
	v->side = side;
	memcpy(v->names, local, ll);
	memcpy(v->names + ll, remote, rl);
	v->local = v->names;
	v->remote = v->names + ll;
	connector_init(&v->cx, loop, cfg->attempt_delay_ms, attempt_cb, drop_cb, exhausted_cb,
	    v);
	v->next = sessions;
	sessions = v;
	nsessions++;
	return v;
}

int
verify_start(struct link *l, const char *local, const char *remote, const char *stream_id,
    const char *key)
{
	struct session *v;
	struct job *j;
	size_t il = strlen(stream_id) + 1, kl = strlen(key) + 1;
	size_t ll = strlen(local) + 1, rl = strlen(remote) + 1;
	bool fresh = false;

	if (njobs_total >= cfg->max_verifications)
		return -1;
	if ((v = session_find(link_side(l), local, remote)) == NULL) {
		if ((v = session_new(link_side(l), local, remote)) == NULL)
			return -1;
		fresh = true;
	}
	if ((j = calloc(1, sizeof(*j) + il + kl + ll + rl)) == NULL) {
		if (fresh)
			session_free(v, "out-of-memory");
		return -1;
	}
	j->asker = link_handle(l);
	memcpy(j->data, stream_id, il);
	memcpy(j->data + il, key, kl);
	memcpy(j->data + il + kl, local, ll);
	memcpy(j->data + il + kl + ll, remote, rl);
	j->id = j->data;
	j->key = j->data + il;
	j->local = j->data + il + kl;
	j->remote = j->data + il + kl + ll;
	j->next = v->jobs;
	v->jobs = j;
	v->njobs++;
	njobs_total++;
	log_debug("dialback verify local=%s remote=%s: job for conn=%lu (%zu in this session, "
	    "%zu in all)", local, remote, link_id(l), v->njobs, njobs_total);
	if (fresh)
		session_start(v);       /* may fail at once: the verdict is then already given */
	else if (v->ready)
		send_jobs(v);
	return 0;
}

/* Where the authoritative server is: the local server for the loopback leg, a static
 * peer address, or DNS. */
static void
session_start(struct session *v)
{
	struct resolve_target t;

	if ((v->side == STREAM_LOCAL && targets_local_server(cfg, &t)) ||
	    (v->side == STREAM_INTERNET && targets_static(cfg, v->remote, &t))) {
		connector_set_targets(&v->cx, &t, 1);
		session_try_next(v);
		return;
	}
	if (v->side == STREAM_LOCAL) {
		session_fail(v, "bad local_server address");
		return;
	}
	if ((v->req = resolver_lookup(resolver, v->remote, resolved_cb, v)) == NULL)
		session_fail(v, "resolver failure");
}

static void
resolved_cb(void *arg, const struct resolve_result *res)
{
	struct session *v = arg;

	if (v->magic != VERIFY_MAGIC)
		fatalx("verify: bad magic in resolver callback");
	v->req = NULL;
	if (res->status != RESOLVE_OK) {
		log_warnx("dialback verify remote=%s: resolution failed: %s", v->remote,
		    resolve_status_str(res->status));
		session_fail(v, resolve_status_str(res->status));
		return;
	}
	connector_set_targets(&v->cx, res->targets, res->n_targets);
	session_try_next(v);
}

static void
session_try_next(struct session *v)
{
	if (connector_next(&v->cx) == 0)
		return;
	session_fail(v, v->why ? v->why : "authoritative server not reachable");
}

static struct link *
attempt_cb(void *arg, const struct resolve_target *t)
{
	struct session *v = arg;

	return link_connect(t, v->side, STREAM_VERIFY, v->local, v->remote, &verify_ops,
	    v->self);
}

/* The connector is done with an attempt: it no longer reports here. */
static void
drop_cb(void *arg, struct link *l, const char *reason)
{
	(void)arg;
	link_detach(l);
	link_close(l, reason);
}

static void
exhausted_cb(void *arg)
{
	session_try_next(arg);   /* nothing left: every job gets "invalid" */
}

static void
v_connected(void *owner, struct link *l)
{
	struct session *v = owner;

	if (connector_connected(&v->cx, l))
		v->link = l;
}

/* Send the db:verify of every job not asked on this connection yet. */
static void
send_jobs(struct session *v)
{
	for (struct job *j = v->jobs; j; j = j->next)
		if (!j->sent && link_send_verify(v->link, j->local, j->remote, j->id, j->key) == 0)
			j->sent = true;
	link_flush(v->link);
}

static void
v_ready(void *owner, struct link *l)
{
	struct session *v = owner;

	if (v->link != l)
		return;
	v->ready = true;
	connector_cancel(&v->cx, "connected");   /* the target list is no longer needed */
	send_jobs(v);
}

static void
v_answer(void *owner, struct link *l, const char *local, const char *remote,
    const char *id, bool valid)
{
	struct session *v = owner;
	struct job **pp, *j;

	if (v->link != l)
		return;
	/* a stream with several pairs asks with one id for each: the pair tells them apart */
	for (pp = &v->jobs; (j = *pp) != NULL; pp = &j->next)
		if (j->sent && strcmp(j->id, id) == 0 && domain_eq(j->local, local) &&
		    domain_eq(j->remote, remote))
			break;
	if (j == NULL) {
		log_warnx("conn=%lu dialback verify local=%s remote=%s: answer for an unknown "
		    "id or pair (local=%s remote=%s) ignored", link_id(l), v->local, v->remote,
		    local, remote);
		return;
	}
	*pp = j->next;
	v->restarts = 0;   /* it answers: a later close (timeouts { auth } ends a lingering
	                    * connection) is no sign of a server that keeps closing on us */
	job_done(v, j, valid);
	/* the loopback session lingers on its open connection (until the local server or
	 * timeouts { auth } ends it): the local server's next streams come in bursts */
	if (v->njobs == 0 && v->side != STREAM_LOCAL)
		session_free(v, "verify-done");
}

static void
v_closed(void *owner, struct link *l, const char *reason, bool timed_out)
{
	struct session *v = owner;
	bool was_ready;

	(void)timed_out;
	if (v->link != l) {
		/* an attempt that never connected: the race goes on */
		v->why = reason;
		if (connector_attempt_closed(&v->cx, l) == -1)
			session_fail(v, "authoritative server not reachable");
		return;
	}
	was_ready = v->ready;
	v->link = NULL;
	v->ready = false;
	v->why = reason;
	if (v->njobs == 0) {
		session_free(v, "closed");
		return;
	}
	for (struct job *j = v->jobs; j; j = j->next)
		j->sent = false;          /* asked again on the next connection */
	if (!was_ready) {
		session_try_next(v);      /* the race's other targets */
		return;
	}
	if (v->restarts++ >= 2) {
		session_fail(v, reason);  /* it keeps closing on us */
		return;
	}
	session_start(v);             /* was ready (its targets are gone): start over */
}

/* Give the verdict to the stream that asked (if it is still there). The job is
 * already unlinked. Waking the connection may close it, which only unlinks jobs
 * (verify_cancel) and never frees a session from under us. */
static void
job_done(struct session *v, struct job *j, bool valid)
{
	struct link *asker = link_get(j->asker);

	v->njobs--;
	njobs_total--;
	if (asker != NULL) {
		link_dialback_verdict(asker, j->local, j->remote, valid);
	} else {
		log_debug("dialback verify local=%s remote=%s: receiving stream gone", j->local,
		    j->remote);
	}
	free(j);
}

/* Every job gets "invalid" (the authoritative server could not be asked). */
static void
session_fail(struct session *v, const char *why)
{
	struct job *j;

	log_warnx("dialback verify local=%s remote=%s: %s; %zu key(s) not verified", v->local,
	    v->remote, why, v->njobs);
	while ((j = v->jobs) != NULL) {
		v->jobs = j->next;
		job_done(v, j, false);
	}
	session_free(v, "verify-failed");
}

static void
session_free(struct session *v, const char *reason)
{
	struct session **pp;
	struct job *j;

	for (pp = &sessions; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	if (v->reaping)
		for (pp = &reap_list; *pp; pp = &(*pp)->reap_next)
			if (*pp == v) {
				*pp = v->reap_next;
				break;
			}
	nsessions--;
	if (v->req != NULL)
		resolver_cancel(v->req);
	connector_cancel(&v->cx, reason);
	if (v->link != NULL) {
		struct link *l = v->link;

		v->link = NULL;
		link_detach(l);
		link_close(l, reason);
	}
	while ((j = v->jobs) != NULL) {
		v->jobs = j->next;
		njobs_total--;
		free(j);
	}
	handle_release(v->self);
	v->magic = 0;
	free(v);
}

/* ---- cancellation ---- */

void
verify_cancel(struct handle asker)
{
	for (struct session *v = sessions; v; v = v->next) {
		struct job **pp = &v->jobs, *j;
		bool removed = false;

		while ((j = *pp) != NULL) {
			if (j->asker.idx != asker.idx || j->asker.gen != asker.gen) {
				pp = &j->next;
				continue;
			}
			*pp = j->next;
			v->njobs--;
			njobs_total--;
			free(j);
			removed = true;
		}
		if (removed && v->njobs == 0)
			session_reap_later(v);
	}
}

/* Sessions whose askers all left end at the top of the next loop iteration (never
 * from under a callback that may still use them). */
static void
session_reap_later(struct session *v)
{
	if (v->reaping)
		return;
	v->reaping = true;
	v->reap_next = reap_list;
	reap_list = v;
	ev_timer_start(loop, &reaper);
}

static void
reap_cb(EV_P_ ev_timer *w, int revents)
{
	struct session *v;

	(void)revents;
	ev_timer_stop(EV_A, w);
	while ((v = reap_list) != NULL) {
		reap_list = v->reap_next;
		v->reaping = false;
		if (v->njobs == 0) {
			log_debug("dialback verify local=%s remote=%s: every asking stream closed, "
			    "session cancelled", v->local, v->remote);
			session_free(v, "verify-cancelled");
		}
	}
}

size_t
verify_jobs(void)
{
	return njobs_total;
}

size_t
verify_sessions(void)
{
	return nsessions;
}

void
verify_free_all(void)
{
	if (loop != NULL)
		ev_timer_stop(loop, &reaper);
	reap_list = NULL;
	while (sessions != NULL) {
		sessions->reaping = false;
		session_free(sessions, "exit");
	}
}
