/* s2s/link.c - one connection carrying one XMPP stream: conn.c below, stream.c on top.
 * SPDX-License-Identifier: ISC
 * Created by route.c (relays, and receivers accepted by listener.c) and verify.c
 * (db:verify connections). A link owns its stream and is the only owner of its conn:
 * it implements both struct conn_ops and struct stream_ops, turns conn input into
 * stream input, sets the conn's deadline from the stream's state (authentication, then
 * idleness), counts the round trips an initiator's set-up took, learns what each peer
 * supports (peercaps.c, from relay and verify connections alike), runs incoming DANE
 * lookups and serves "show peers". Its owner hears of it through struct link_ops,
 * found through a handle, so an owner may go away first. A link lives exactly as long
 * as its conn: it is freed when the conn reports closed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/handle.h"
#include "../core/log.h"
#include "../core/stats.h"
#include "../core/status.h"
#include "../dns/resolver.h"
#include "../tls/tls.h"
#include "conn.h"
#include "jid.h"
#include "link.h"
#include "linkindex.h"
#include "peercaps.h"
#include "stanza.h"
#include "stream.h"

#define LINK_MAGIC 0x6c696e6bu  /* "link" */
#define PROVE_PERIOD 0.05       /* s between looks at what TCP acknowledged */
#define ACK_WAIT 1.0            /* s an <a/> may wait for releases (XEP-0198 gate) */

struct link {
	unsigned int     magic;
	unsigned long    id;            /* its conn's id */
	struct handle    self;          /* link_handle() */
	struct conn     *conn;          /* the connection (dies with the link) */
	struct stream   *st;            /* owned */
	const struct link_ops *ops;     /* borrowed; NULL once detached */
	const struct link_ops *made_by; /* ops at creation, kept after a detach: where
	                                 * unacknowledged stanzas go back (requeue) */
	struct handle    owner;         /* the owner (null: ops get NULL) */
	unsigned         setup_flights; /* flights sent before the stream was ready */
	unsigned         rtt_used;      /* round trips the set-up took (initiators) */
	unsigned         rtt_unpipelined; /* ... and what an unpipelined set-up takes */
	bool             tfo_used;      /* the first flight rode in the SYN */
	struct resolve_req *dane_req;   /* incoming DANE: the peer domain's lookup */
	const char      *dane_domain;   /* borrowed from the stream (lives as long) */
	struct sockaddr_storage taddr;  /* initiators: the address connected to */
	socklen_t        taddrlen;
	struct rider    *riders;        /* pairs of other owners on this link (owned) */
	unsigned         nriders;
	/* Sent, delivery not yet proven (owned, oldest first): by XEP-0198 <a/> for a
	 * stanza sent under stream management (sm_counted), else by the peer's TCP
	 * acknowledging its last byte (conn_out_acked >= its mark, polled by prove). */
	struct stanza   *ua_head, *ua_tail;
	size_t           ua_n, ua_bytes;
	size_t           ua_tcp;        /* of them, waiting for TCP's proof */
	ev_timer         prove;         /* polls TCP's proof while ua_tcp > 0 */
	ev_timer         ack_wait;      /* an <r/> waits for releases (stream_sm_answer) */
	ev_timer         ack_ask;       /* our next <r/> goes alone (timeouts { ack_late }) */
	bool             ua_blocked;    /* a send was refused at limits { queue_bytes } */
	bool             end_when_acked; /* shutdown: end the stream once all is acked */
	ev_timer         live;          /* liveness of a ready initiator: probes, deadline */
	double           last_in;       /* when the peer last sent anything */
	double           r_at;          /* when our outstanding <r/> went out */
	double           r_last;        /* when ask_ack last sent one (ack_ride, ack_late) */
	struct link     *prev, *next;   /* all links, newest first (for status, shutdown) */
	struct lindex_member idx;       /* where link_find_ride finds it (linkindex.h) */
	unsigned long    seen;          /* link_find_ride: the lookup that last checked it */
};

/* A pair another owner (a route) put on the link (link_ride). */
struct rider {
	struct handle    owner;
	const struct link_ops *ops;
	enum { RIDER_WAITING, RIDER_ASKED, RIDER_VALID } state;
	struct rider    *next;
	char            *remote;        /* inside local's allocation */
	char             local[];
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct resolver *resolver;
static struct link *all;
static unsigned long nlinks;

/* conn_ops */
static void c_connected(struct link *);
static void c_up(struct link *);
static ssize_t c_input(struct link *, const char *, size_t);
static void c_tls_ready(struct link *);
static void c_input_end(struct link *, const char *);
static bool c_keep_on_eof(struct link *);
static void c_expired(struct link *, const char *);
static void c_flight(struct link *);
static void c_drained(struct link *);
static void c_resumed(struct link *);
static void c_quiet(struct link *);
static void c_closed(struct link *, const char *, bool);
/* stream_ops */
static void s_start_tls(void *);
static void s_close(void *, const char *);
static const struct tls_session *s_tls(void *);
static void s_ready(void *);
static void s_stanza(void *, struct stanza *);
static void s_verify_needed(void *, const char *, const char *, const char *, const char *);
static void s_verify_answer(void *, const char *, const char *, const char *, bool);
static void s_pipeline(void *);
static bool s_dane_lookup(void *, const char *);
static void s_pair_verdict(void *, const char *, const char *, bool);
static void s_pair_added(void *, const char *, const char *);
static void s_acked(void *, uint32_t, bool);
static void give_back(struct link *);
static void prove_cb(EV_P_ ev_timer *, int);
static void ack_wait_cb(EV_P_ ev_timer *, int);
static void s_ack_owed(void *);
static void released(struct handle, uint32_t);
static void ua_unlink(struct link *, struct stanza *, struct stanza *);
static void ua_room(struct link *);
static void prove_tcp(struct link *);
static void live_cb(EV_P_ ev_timer *, int);
static void ask_ack(struct link *);
static void index_file(struct link *);
static void ask_ack_soon(struct link *);
static void ack_ask_cb(EV_P_ ev_timer *, int);
static void riders_ready(struct link *);
static void rider_free(struct link *, struct rider *);
static bool rider_owner(const struct rider *, void **);

static struct link *link_new(const struct link_ops *, struct handle);
static int link_attach(struct link *, struct conn *, enum stream_role, enum stream_side,
    enum stream_purpose, const char *, const char *);
static unsigned unpipelined_rtts(const struct link *, unsigned);
static void learn_peer(struct link *, unsigned);
static bool owner_of(const struct link *, void **);
static void sync_deadline(struct link *);
static void dane_resolved(void *, const struct resolve_result *);
static int status_peers(void *, const char *, struct buf *, uint64_t *);
static int status_close_link(void *, const char *, struct buf *);
static void peer_record(const struct link *, struct buf *);

static const struct conn_ops conn_ops = {
	.connected = c_connected,
	.up = c_up,
	.input = c_input,
	.tls_ready = c_tls_ready,
	.input_end = c_input_end,
	.keep_on_eof = c_keep_on_eof,
	.expired = c_expired,
	.flight = c_flight,
	.drained = c_drained,
	.resumed = c_resumed,
	.quiet = c_quiet,
	.closed = c_closed,
};

static const struct stream_ops stream_ops = {
	.start_tls = s_start_tls,
	.close = s_close,
	.tls = s_tls,
	.ready = s_ready,
	.stanza = s_stanza,
	.verify_needed = s_verify_needed,
	.verify_answer = s_verify_answer,
	.pipeline = s_pipeline,
	.dane_lookup = s_dane_lookup,
	.pair_verdict = s_pair_verdict,
	.pair_added = s_pair_added,
	.acked = s_acked,
	.ack_owed = s_ack_owed,
};

void
link_init(struct ev_loop *l, const struct config *c, struct tls_ctx *t, struct resolver *res,
    struct status *st)
{
	loop = l;
	cfg = c;
	resolver = res;
	conn_init(l, c, t);
	stanza_set_release_hook(released);
	if (st != NULL) {
		status_register_stream(st, "show peers",
		    "show peers: every connection: domains, direction, state, TLS, auth, stanzas",
		    status_peers, NULL);
		status_register(st, "close link",
		    "close link DOMAIN: reset every internet connection with DOMAIN at the other "
		    "end at once; what they carried unacknowledged is sent again on new ones",
		    status_close_link, NULL);
	}
}

void
link_set_config(const struct config *c)
{
	cfg = c;
	conn_set_config(c);
}

/* ---- creation ---- */

static struct link *
link_new(const struct link_ops *ops, struct handle owner)
{
	struct link *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		log_warnx("link: out of memory");
		return NULL;
	}
	l->self = handle_new(HANDLE_LINK, l);
	if (handle_is_null(l->self)) {
		log_warnx("link: out of memory");
		free(l);
		return NULL;
	}
	l->magic = LINK_MAGIC;
	l->ops = ops;
	l->made_by = ops;
	l->owner = owner;
	ev_init(&l->live, live_cb);
	l->live.data = l;
	ev_init(&l->prove, prove_cb);
	l->prove.data = l;
	ev_init(&l->ack_wait, ack_wait_cb);
	l->ack_wait.data = l;
	ev_init(&l->ack_ask, ack_ask_cb);
	l->ack_ask.data = l;
	return l;
}

/* The conn exists: the stream goes on top and the link joins the list. Returns -1
 * (the conn aborted, nothing reported to the owner) when the stream cannot be made. */
static int
link_attach(struct link *l, struct conn *c, enum stream_role role, enum stream_side side,
    enum stream_purpose purpose, const char *local, const char *remote)
{
	l->conn = c;
	l->id = c->id;
	l->st = stream_new(role, side, purpose, config_hold(cfg), local, remote, &stream_ops, l,
	    conn_out(c));
	if (l->st == NULL) {
		config_release(cfg);
		log_warnx("conn: out of memory");
		l->ops = NULL;
		conn_abort(c, "out-of-memory");   /* frees l through c_closed */
		return -1;
	}
	l->st->origin = l->self;
	l->st->cid = c->id;
	conn_set_names(c, l->st->local, l->st->remote);
	index_file(l);
	l->next = all;
	if (all)
		all->prev = l;
	all = l;
	nlinks++;
	return 0;
}

struct link *
link_accept(int fd, enum stream_side side, bool direct_tls, const struct sockaddr *sa,
    socklen_t salen, const struct link_ops *ops, struct handle owner)
{
	struct link *l;
	struct conn *c;

	if ((l = link_new(ops, owner)) == NULL) {
		close(fd);
		return NULL;
	}
	c = conn_accept(fd, side == STREAM_INTERNET, direct_tls, sa, salen, &conn_ops, l);
	if (c == NULL) {
		handle_release(l->self);
		free(l);
		return NULL;
	}
	if (link_attach(l, c, STREAM_RECEIVER, side, STREAM_RELAY, "", "") == -1)
		return NULL;
	if (direct_tls)
		stream_direct_tls(l->st);
	return l;
}

struct link *
link_connect(const struct resolve_target *t, enum stream_side side,
    enum stream_purpose purpose, const char *local, const char *remote,
    const struct link_ops *ops, struct handle owner)
{
	const struct peercaps *pc = side == STREAM_INTERNET ? peercaps_get(remote) : NULL;
	struct link *l;
	struct conn *c;

	if ((l = link_new(ops, owner)) == NULL)
		return NULL;
	/* a repeat peer: the first flight may ride in the SYN (RFC 7413) */
	c = conn_connect((const struct sockaddr *)&t->addr, t->addrlen, side == STREAM_INTERNET,
	    cfg->tcp_fastopen && pc != NULL, local, remote, &conn_ops, l);
	if (c == NULL) {
		handle_release(l->self);
		free(l);
		return NULL;
	}
	if (link_attach(l, c, STREAM_INITIATOR, side, purpose, local, remote) == -1)
		return NULL;
	if (purpose == STREAM_RELAY && cfg->pipelining && pc != NULL) {
		l->st->pipeline = pc->pipelining;
		l->st->pipe_starttls = pc->starttls;  /* Prosody 0.12 tolerates it too */
		l->st->pipe_external = pc->external;
		l->st->pipe_bidi = pc->bidi;
	}
	conn_set_target(c, t->host, t->port);
	conn_set_tlsa(c, t);
	memcpy(&l->taddr, &t->addr, sizeof(l->taddr));
	l->taddrlen = t->addrlen;
	index_file(l);   /* now under its target and address too */
	if (t->direct_tls)
		stream_direct_tls(l->st);
	return l;
}

void
link_detach(struct link *l)
{
	l->ops = NULL;
}

struct handle
link_handle(const struct link *l)
{
	return l->self;
}

struct link *
link_get(struct handle h)
{
	return handle_get(h, HANDLE_LINK);
}

/* The owner to call, if any: false when detached or the owner is gone. */
static bool
owner_of(const struct link *l, void **o)
{
	*o = NULL;
	if (l->ops == NULL)
		return false;
	if (handle_is_null(l->owner))
		return true;
	*o = handle_get(l->owner, l->ops->kind);
	return *o != NULL;
}

/* Authenticated relays are bounded by idleness, everything else by timeouts { auth }
 * from TCP up. */
static void
sync_deadline(struct link *l)
{
	conn_set_deadline(l->conn, l->st->auth_method != NULL && l->st->purpose == STREAM_RELAY ?
	    CONN_DEADLINE_IDLE : CONN_DEADLINE_AUTH);
}

/* ---- conn events ---- */

static void
c_connected(struct link *l)
{
	void *o;

	if (owner_of(l, &o) && l->ops->connected != NULL)
		l->ops->connected(o, l);
}

static void
c_up(struct link *l)
{
	struct stream *s = l->st;

	if (s->direct_tls) {
		/* XEP-0368: the ClientHello is the first flight */
		if (conn_start_tls(l->conn, s->local, s->remote, true, true) == -1)
			conn_abort(l->conn, "tls-setup-failed");
	} else {
		stream_start(s);
		/* XEP-0305: header + <starttls/> + ClientHello in one write */
		if (s->tls_preempt && conn_start_tls(l->conn, s->local, s->remote, false,
		    s->state == SS_TLS) == -1)
			conn_abort(l->conn, "tls-setup-failed");
	}
	l->setup_flights = 1;   /* the first flight leaves with the connection */
}

static ssize_t
c_input(struct link *l, const char *p, size_t len)
{
	l->last_in = ev_now(loop);
	ssize_t n = stream_input(l->st, p, len);

	if (l->conn->state == CONN_OPEN)
		sync_deadline(l);
	return n;
}

static void
c_tls_ready(struct link *l)
{
	stream_tls_ready(l->st);
}

static void
c_input_end(struct link *l, const char *reason)
{
	stream_close(l->st, reason);
}

static bool
c_keep_on_eof(struct link *l)
{
	return !l->st->input_blocked;
}

static void
c_expired(struct link *l, const char *what)
{
	if (strcmp(what, "idle-timeout") == 0)
		stream_close(l->st, "idle-timeout");
	else
		stream_error(l->st, "connection-timeout", "authentication took too long",
		    "auth-timeout");
}

static void
c_flight(struct link *l)
{
	if (l->st->role == STREAM_INITIATOR && !stream_is_ready(l->st) && l->rtt_used == 0)
		l->setup_flights++;
}

static void
c_drained(struct link *l)
{
	struct rider *r, *next;
	void *o;

	if (owner_of(l, &o) && l->ops->drained != NULL)
		l->ops->drained(o, l);
	/* a callback only ever removes its own rider: next is fetched first */
	for (r = l->riders; r != NULL; r = next) {
		next = r->next;
		if (r->state == RIDER_VALID && rider_owner(r, &o) && r->ops->drained != NULL)
			r->ops->drained(o, l);
	}
}

static void
c_resumed(struct link *l)
{
	stream_resume_input(l->st);
}

static void
c_quiet(struct link *l)
{
	stream_trim(l->st);
}

static void
c_closed(struct link *l, const char *reason, bool timed_out)
{
	struct conn *c = l->conn;
	const struct config *sc;   /* the config the stream was opened with */
	void *o;

	if (l->magic != LINK_MAGIC)
		fatalx("link: bad magic in close");
	ev_timer_stop(loop, &l->live);
	ev_timer_stop(loop, &l->prove);
	ev_timer_stop(loop, &l->ack_wait);
	ev_timer_stop(loop, &l->ack_ask);
	if (l->dane_req != NULL) {
		resolver_cancel(l->dane_req);
		l->dane_req = NULL;
	}
	if (l->st != NULL) {
		log_info("conn=%lu %s-%s local=%s remote=%s addr=%s closed reason=%s", c->id,
		    l->st->side == STREAM_INTERNET ? "s2s" : "local",
		    l->st->role == STREAM_INITIATOR ? "out" : "in", l->st->local, l->st->remote,
		    c->addr, reason);
		if (l->prev)
			l->prev->next = l->next;
		else
			all = l->next;
		if (l->next)
			l->next->prev = l->prev;
		nlinks--;
		lindex_remove(&l->idx);
		give_back(l);   /* first: the routes see their queues whole when told */
		if (owner_of(l, &o) && l->ops->closed != NULL)
			l->ops->closed(o, l, reason, timed_out);
		while (l->riders != NULL) {
			struct rider *r = l->riders;
			const struct link_ops *rops = r->ops;
			bool call = rider_owner(r, &o);

			l->riders = r->next;
			l->nriders--;
			free(r);
			if (call && rops->closed != NULL)
				rops->closed(o, l, reason, timed_out);
		}
		sc = l->st->cfg;
		stream_free(l->st);
		config_release(sc);
	}
	handle_release(l->self);
	l->magic = 0;
	free(l);
}

/* ---- stream events ---- */

static void
s_start_tls(void *arg)
{
	struct link *l = arg;

	conn_want_tls(l->conn, l->st->local, l->st->remote, l->st->direct_tls);
}

static void
s_close(void *arg, const char *reason)
{
	struct link *l = arg;

	conn_end(l->conn, reason);
}

static const struct tls_session *
s_tls(void *arg)
{
	struct link *l = arg;

	return conn_tls(l->conn);
}

/* Round trips of an unpipelined set-up: TCP, header, [STARTTLS, TLS], [header after TLS],
 * then SASL EXTERNAL (auth + restart) or dialback (db:result). */
static unsigned
unpipelined_rtts(const struct link *l, unsigned tls_rounds)
{
	unsigned n = 1 + 1;

	if (conn_tls_session(l->conn) != NULL)
		n += 1 + tls_rounds + 1;
	if (l->st->auth_method != NULL && strcmp(l->st->auth_method, "external") == 0)
		n += 2;
	else
		n += 1;
	return n;
}

/* What a ready initiator showed about its peer. A relay connection learns it all; a
 * verify connection authenticates nothing, so it keeps what relays learnt about SASL
 * EXTERNAL and dialback and adds what it saw (pipelining, STARTTLS, TLS round trips). */
static void
learn_peer(struct link *l, unsigned tls_rounds)
{
	const struct stream *s = l->st;
	struct peercaps pc = {
		.pipelining = s->peer_pipelining,
		.external = s->auth_method && strcmp(s->auth_method, "external") == 0,
		.dialback = s->auth_method && strcmp(s->auth_method, "dialback") == 0,
		.starttls = conn_tls_session(l->conn) != NULL,
		.tls_rounds = (uint8_t)tls_rounds,
		.bidi = s->peer_bidi,
	};

	if (s->purpose == STREAM_VERIFY) {
		const struct peercaps *old = peercaps_get(s->remote);

		if (old != NULL) {
			pc.external = old->external;
			pc.dialback = old->dialback;
		}
	}
	peercaps_learn(s->remote, &pc);
}

static void
s_ready(void *arg)
{
	struct link *l = arg;
	struct conn *c = l->conn;
	const struct tls_session *ts = conn_tls_session(c);
	unsigned tls_rounds = 1;
	void *o;

	if (ts != NULL && strcmp(tls_session_version(ts), "TLSv1.3") != 0)
		tls_rounds = 2;
	l->rtt_used = 1 + l->setup_flights;
	if (conn_tfo_used(c)) {
		l->tfo_used = true;   /* the first flight rode in the SYN: no TCP round trip */
		l->rtt_used--;
		qf_stats.tfo_used++;
	}
	l->rtt_unpipelined = unpipelined_rtts(l, tls_rounds);
	if (l->rtt_used > l->rtt_unpipelined)
		l->rtt_unpipelined = l->rtt_used;
	qf_stats.rtt_used += l->rtt_used;
	qf_stats.rtt_saved += l->rtt_unpipelined - l->rtt_used;
	log_info("conn=%lu %s-out local=%s remote=%s ready auth=%s tls=%s round_trips=%u "
	    "unpipelined=%u", c->id, l->st->side == STREAM_INTERNET ? "s2s" : "local",
	    l->st->local, l->st->remote, l->st->auth_method ? l->st->auth_method : "none",
	    ts ? tls_session_version(ts) : "none", l->rtt_used, l->rtt_unpipelined);
	if (l->st->side == STREAM_INTERNET) {
		learn_peer(l, tls_rounds);
		/* data the peer's TCP never acknowledges ends the connection in time */
		conn_set_user_timeout(c, cfg->dead_ms);
	}
	if (l->st->purpose == STREAM_RELAY) {
		double period = (cfg->keepalive_ms < cfg->dead_ms ? cfg->keepalive_ms :
		    cfg->dead_ms) / 2000.0;

		l->last_in = ev_now(loop);
		ev_timer_set(&l->live, period, period);
		ev_timer_start(loop, &l->live);
	}
	sync_deadline(l);
	if (owner_of(l, &o) && l->ops->ready != NULL)
		l->ops->ready(o, l);
	riders_ready(l);
}

static void
s_pipeline(void *arg)
{
	struct link *l = arg;
	void *o;

	if (owner_of(l, &o) && l->ops->pipeline != NULL)
		l->ops->pipeline(o, l);
}

static void
s_stanza(void *arg, struct stanza *st)
{
	struct link *l = arg;
	void *o;

	if (owner_of(l, &o) && l->ops->stanza != NULL) {
		l->ops->stanza(o, l, st);
		return;
	}
	/* the owner let go (bidi traffic still coming back): any rider routes it */
	for (struct rider *r = l->riders; r != NULL; r = r->next)
		if (rider_owner(r, &o) && r->ops->stanza != NULL) {
			r->ops->stanza(o, l, st);
			return;
		}
	log_warnx("conn=%lu stanza with nobody to take it dropped", l->id);
	stanza_free(st);
}

/* File l in the link index under key; entries left over from pairs and riders that
 * are gone (a peer may send db:results for ever new domains, each refused) are dropped
 * by re-filing the link from what it has now once its entries are twice that: a link's
 * entries stay within a small multiple of its pairs, riders and targets. */
static void
index_add(struct link *l, uint64_t key)
{
	(void)lindex_add(&l->idx, l, key);
	if (l->idx.n > 2 * (3 + l->nriders + l->st->n_pairs))
		index_file(l);
}

/* (Re)file l in the link index from what it is now: every link on the local side under
 * that side; an internet link under its remote domain, its connect target and address
 * (initiators, once known), its riders' and its pairs' remote domains. */
static void
index_file(struct link *l)
{
	const struct stream *s = l->st;

	lindex_remove(&l->idx);
	if (s->side == STREAM_LOCAL) {
		(void)lindex_add(&l->idx, l, lindex_key_name(LINDEX_LOCAL_SIDE, "", 0));
		return;
	}
	if (s->remote[0] != '\0')
		(void)lindex_add(&l->idx, l, lindex_key_name(LINDEX_REMOTE, s->remote, 0));
	if (l->taddrlen > 0 && l->conn->target != NULL) {
		(void)lindex_add(&l->idx, l, lindex_key_name(LINDEX_TARGET, l->conn->target,
		    l->conn->target_port));
		(void)lindex_add(&l->idx, l, lindex_key_bytes(LINDEX_ADDR, &l->taddr,
		    l->taddrlen));
	}
	for (const struct rider *r = l->riders; r != NULL; r = r->next)
		(void)lindex_add(&l->idx, l, lindex_key_name(LINDEX_REMOTE, r->remote, 0));
	for (size_t i = 0; i < s->n_pairs; i++)
		(void)lindex_add(&l->idx, l, lindex_key_name(LINDEX_REMOTE, s->pairs[i].remote,
		    0));
}

/* A pair entered the stream's table (or a receiver authenticated its own): from now on
 * link_find_ride may find the link for it. */
static void
s_pair_added(void *arg, const char *local, const char *remote)
{
	struct link *l = arg;

	(void)local;
	if (l->st->side == STREAM_INTERNET)
		index_add(l, lindex_key_name(LINDEX_REMOTE, remote, 0));
}

static void
s_verify_needed(void *arg, const char *local, const char *remote, const char *id,
    const char *key)
{
	struct link *l = arg;
	void *o;

	if (owner_of(l, &o) && l->ops->verify_needed != NULL)
		l->ops->verify_needed(o, l, local, remote, id, key);
	else
		stream_dialback_error(l->st, local, remote);
}

static void
s_verify_answer(void *arg, const char *local, const char *remote, const char *id,
    bool valid)
{
	struct link *l = arg;
	void *o;

	if (owner_of(l, &o) && l->ops->verify_answer != NULL)
		l->ops->verify_answer(o, l, local, remote, id, valid);
}

/* Incoming DANE: resolve domain (SRV, addresses, TLSA of each secure target) to
 * match the peer's certificate against its secure TLSA records (RFC 7673). */
static bool
s_dane_lookup(void *arg, const char *domain)
{
	struct link *l = arg;

	if (resolver == NULL || conn_tls_session(l->conn) == NULL || l->dane_req != NULL)
		return false;
	l->dane_domain = domain;   /* the stream's own copy, freed with the stream */
	l->dane_req = resolver_lookup(resolver, domain, dane_resolved, l);
	return l->dane_req != NULL;
}

static void
dane_resolved(void *arg, const struct resolve_result *res)
{
	struct link *l = arg;
	const struct tls_session *ts;
	bool matched = false, bogus = false;
	size_t secure = 0;

	if (l->magic != LINK_MAGIC)
		fatalx("link: bad magic in DANE lookup");
	l->dane_req = NULL;
	ts = conn_tls_session(l->conn);
	for (size_t i = 0; res->status == RESOLVE_OK && i < res->n_targets; i++) {
		const struct resolve_target *t = &res->targets[i];
		struct tlsa_rr rrs[RESOLVE_TLSA_MAX];

		if (t->tlsa_status == RESOLVE_TLSA_BOGUS)
			bogus = true;
		if (t->tlsa_status != RESOLVE_TLSA_SECURE || t->n_tlsa == 0 || matched)
			continue;
		secure++;
		for (size_t k = 0; k < t->n_tlsa && k < RESOLVE_TLSA_MAX; k++) {
			rrs[k].usage = t->tlsa[k].usage;
			rrs[k].selector = t->tlsa[k].selector;
			rrs[k].mtype = t->tlsa[k].mtype;
			rrs[k].data = t->tlsa[k].data;
			rrs[k].len = t->tlsa[k].len;
		}
		matched = tls_session_peer_matches_tlsa(ts, l->dane_domain, t->host, rrs,
		    t->n_tlsa);
	}
	if (bogus)
		matched = false;  /* a bogus RRset for any target: never trusted */
	log_debug("conn=%lu s2s-in remote=%s DANE lookup: status=%s secure_tlsa_targets=%zu "
	    "bogus=%d matched=%d", l->id, l->dane_domain, resolve_status_str(res->status),
	    secure, bogus, matched);
	if (l->conn->state != CONN_OPEN)
		return;
	stream_dane_result(l->st, matched);
	conn_kick(l->conn);     /* what the peer sent meanwhile, and the features */
}

/* ---- multiplexing: riders ---- */

static bool
rider_owner(const struct rider *r, void **o)
{
	*o = handle_get(r->owner, r->ops->kind);
	return *o != NULL;
}

static void
rider_free(struct link *l, struct rider *r)
{
	struct rider **pp;

	for (pp = &l->riders; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			l->nriders--;
			break;
		}
	free(r);
}

/* Ask for r's pair on l's ready stream: 1 carried already, 0 db:result sent, 2 sent
 * and stanzas may follow it (pipelining), -1 with *why set when this link may not carry
 * it. */
static int
rider_ask(struct link *l, struct rider *r, const char **why)
{
	struct stream *s = l->st;

	if (stream_carries(s, r->local, r->remote)) {
		r->state = RIDER_VALID;
		return 1;
	}
	/* another remote domain on this server: only if the certificate it showed says
	 * it is that domain too (XEP-0220's rules for reusing a connection) */
	if (s->side == STREAM_INTERNET && !domain_eq(r->remote, s->remote) &&
	    !stream_peer_covers(s, r->remote)) {
		*why = "certificate does not cover the remote domain";
		return -1;
	}
	if (stream_add_pair(s, r->local, r->remote) == -1) {
		*why = "pair table full or output full";
		return -1;
	}
	if (stream_carries(s, r->local, r->remote)) {
		r->state = RIDER_VALID;
		return 1;
	}
	r->state = RIDER_ASKED;
	conn_flush(l->conn);
	/* XEP-0305 on a multiplexed link: a peer that pipelines holds stanzas behind a
	 * pair's db:result until its verdict, so the rider's may follow at once */
	return s->peer_pipelining && cfg->pipelining ? 2 : 0;
}

/* The stream became ready: the riders that waited for it ask for their pairs. */
static void
riders_ready(struct link *l)
{
	struct rider *r, *next;
	const char *why = NULL;
	void *o;

	for (r = l->riders; r != NULL; r = next) {
		const struct link_ops *rops = r->ops;
		int rc;

		next = r->next;
		if (r->state != RIDER_WAITING)
			continue;
		rc = rider_ask(l, r, &why);
		if (rc == 1 && rider_owner(r, &o) && rops->ready != NULL) {
			rops->ready(o, l);
		} else if (rc == 2 && rider_owner(r, &o) && rops->pipeline != NULL) {
			rops->pipeline(o, l);
		} else if (rc == -1) {
			bool call = rider_owner(r, &o);

			log_info("conn=%lu local=%s remote=%s cannot ride the link of local=%s "
			    "remote=%s: %s", l->id, r->local, r->remote, l->st->local,
			    l->st->remote, why);
			rider_free(l, r);
			if (call && rops->refused != NULL)
				rops->refused(o, l, why);
		}
	}
}

static void
s_pair_verdict(void *arg, const char *local, const char *remote, bool valid)
{
	struct link *l = arg;
	struct rider *r;
	const struct link_ops *rops;
	void *o;
	bool call;

	for (r = l->riders; r != NULL; r = r->next)
		if (r->state == RIDER_ASKED && domain_eq(r->local, local) &&
		    domain_eq(r->remote, remote))
			break;
	if (r == NULL) {
		if (link_open(l))
			c_drained(l);   /* its owner left meanwhile; the same sender may go on */
		return;
	}
	rops = r->ops;
	call = rider_owner(r, &o);
	if (valid) {
		r->state = RIDER_VALID;
		if (call && rops->ready != NULL)
			rops->ready(o, l);
	} else {
		rider_free(l, r);
		if (call && rops->refused != NULL)
			rops->refused(o, l, "the receiving server refused the piggybacked db:result");
	}
	/* pairs with the same sending domain waited for this verdict (stream_may_send) */
	if (link_open(l))
		c_drained(l);
}

/* Same server: the SRV target host and port (then the TLSA RRset at _port._tcp.host,
 * which the link's handshake was checked against, is the same one), or the address
 * and port of a target without DANE (a target with secure TLSA records of its own, or
 * a bogus answer, is never reached through another name's link). */
static bool
same_server(const struct link *l, const struct resolve_target *t, size_t n)
{
	const struct conn *c = l->conn;
	const struct tls_session *ts = conn_tls_session(l->conn);
	bool dane_ok = ts != NULL && tls_session_dane_state(ts) == TLS_DANE_MATCHED;

	for (size_t i = 0; i < n; i++) {
		bool dane = t[i].tlsa_status == RESOLVE_TLSA_SECURE && t[i].n_tlsa > 0;

		if (t[i].tlsa_status == RESOLVE_TLSA_BOGUS)
			continue;
		/* the same TLSA RRset: but if this name's resolution makes it binding, the
		 * link's handshake must have matched it (its own may not have asked) */
		if (c->target != NULL && c->target[0] != '\0' && t[i].port == c->target_port &&
		    strcasecmp(t[i].host, c->target) == 0 && (!dane || dane_ok))
			return true;
		if (t[i].tlsa_status != RESOLVE_TLSA_SECURE && l->taddrlen > 0 &&
		    t[i].addrlen == l->taddrlen && memcmp(&t[i].addr, &l->taddr, l->taddrlen) == 0)
			return true;
	}
	return false;
}

/* What link_find_ride gathers while it checks the candidates. */
struct ride_search {
	enum stream_side side;
	const char *local, *remote;
	const struct resolve_target *targets;
	size_t n;
	unsigned long gen;
	struct link *carrier;       /* a link carrying the pair already: the answer */
	struct link *best, *least;
	int best_rank;
	unsigned n_same;
};

/* One candidate (each link once per search, however many of its keys matched). */
static void
ride_check(void *item, void *arg)
{
	struct link *l = item;
	struct ride_search *q = arg;
	const struct stream *s = l->st;
	bool full;
	int rank = 0;

	if (l->seen == q->gen || q->carrier != NULL)
		return;
	l->seen = q->gen;
	full = l->nriders + 1 >= cfg->link_pairs;
	if (s->purpose != STREAM_RELAY || s->side != q->side || s->state == SS_CLOSED ||
	    l->conn->state == CONN_CLOSING || l->conn->state == CONN_DEAD)
		return;
	if (!full && stream_carries(s, q->local, q->remote)) {
		q->carrier = l;
		return;
	}
	if (s->role != STREAM_INITIATOR || l->ops == NULL)
		return;             /* receivers carry only what they authenticated */
	if (s->cfg != cfg && !config_is_local(s->cfg, q->local))
		return;             /* opened before a reload added the domain */
	if (q->side == STREAM_LOCAL || domain_eq(s->remote, q->remote))
		rank = stream_is_ready(s) ? 4 : 3;
	else if (q->targets != NULL && same_server(l, q->targets, q->n)) {
		rank = !stream_is_ready(s) ? 1 : stream_peer_covers(s, q->remote) ? 2 : 0;
		if (rank == 0)
			log_info("conn=%lu goes to the server of local=%s remote=%s but its "
			    "certificate does not cover remote=%s: not shared", l->id,
			    q->local, q->remote, q->remote);
	}
	if (rank == 0)
		return;
	q->n_same++;
	if (full) {
		if (q->least == NULL || l->nriders < q->least->nriders)
			q->least = l;
	} else if (rank > q->best_rank) {
		q->best = l;
		q->best_rank = rank;
	}
}

/* The candidates are the links filed (linkindex.h) under what could make one fit: on
 * the local side all of that side's links; on the internet the remote domain (links
 * opened for it, riding it, or authenticated for it) and each target's host:port and
 * address (same_server). Work per call is in proportion to those, not to all links. */
struct link *
link_find_ride(enum stream_side side, const char *local, const char *remote,
    const struct resolve_target *targets, size_t n)
{
	static unsigned long gen;
	struct ride_search q = {
		.side = side, .local = local, .remote = remote, .targets = targets, .n = n,
		.gen = ++gen,
	};

	if (side == STREAM_LOCAL)
		lindex_each(lindex_key_name(LINDEX_LOCAL_SIDE, "", 0), ride_check, &q);
	else {
		lindex_each(lindex_key_name(LINDEX_REMOTE, remote, 0), ride_check, &q);
		for (size_t i = 0; targets != NULL && i < n && q.carrier == NULL; i++) {
			lindex_each(lindex_key_name(LINDEX_TARGET, targets[i].host,
			    targets[i].port), ride_check, &q);
			lindex_each(lindex_key_bytes(LINDEX_ADDR, &targets[i].addr,
			    targets[i].addrlen), ride_check, &q);
		}
	}
	if (q.carrier != NULL)
		return q.carrier;
	/* every link to this server carries limits { link_pairs } pairs: another one is
	 * opened, unless the server has limits { links_per_server } already; then the
	 * least loaded takes one more */
	if (q.best == NULL && q.least != NULL && q.n_same >= cfg->links_per_server)
		return q.least;
	return q.best;
}

int
link_ride(struct link *l, const char *local, const char *remote,
    const struct link_ops *ops, struct handle owner)
{
	size_t ll = strlen(local) + 1, rl = strlen(remote) + 1;
	const char *why = NULL;
	struct rider *r;
	int rc = 0;

	if (l->conn->state == CONN_CLOSING || l->conn->state == CONN_DEAD ||
	    l->st->state == SS_CLOSED)
		return -1;   /* the pair budget is link_find_ride's: it may go over it */
	if ((r = calloc(1, sizeof(*r) + ll + rl)) == NULL)
		return -1;
	memcpy(r->local, local, ll);
	r->remote = r->local + ll;
	memcpy(r->remote, remote, rl);
	r->owner = owner;
	r->ops = ops;
	r->state = RIDER_WAITING;
	if (l->st->role == STREAM_RECEIVER) {
		if (!stream_carries(l->st, local, remote)) {
			free(r);
			return -1;
		}
		r->state = RIDER_VALID;
		rc = 1;
	} else if (stream_is_ready(l->st) && (rc = rider_ask(l, r, &why)) == -1) {
		log_debug("conn=%lu local=%s remote=%s cannot ride: %s", l->id, local, remote,
		    why);
		free(r);
		return -1;
	}
	r->next = l->riders;
	l->riders = r;
	l->nriders++;
	if (l->st->side == STREAM_INTERNET)
		index_add(l, lindex_key_name(LINDEX_REMOTE, remote, 0));
	log_debug("conn=%lu local=%s remote=%s rides the link of local=%s remote=%s (%s)",
	    l->id, local, remote, l->st->local, l->st->remote,
	    rc == 1 ? "carried" : r->state == RIDER_ASKED ? "db:result sent" : "waiting");
	return rc;
}

void
link_unride(struct link *l, struct handle owner)
{
	for (struct rider *r = l->riders; r != NULL; r = r->next)
		if (r->owner.idx == owner.idx && r->owner.gen == owner.gen) {
			rider_free(l, r);
			return;
		}
}

bool
link_may_send(const struct link *l, const char *local, const char *remote)
{
	/* a link ending once acknowledged takes nothing more (the route keeps it) */
	return !l->end_when_acked && stream_may_send(l->st, local, remote);
}

bool
link_shared(const struct link *l)
{
	return l->riders != NULL;
}

/* ---- for the owners ---- */

/* Send st. On a relay link it is kept until its delivery is proven (st itself when
 * owned, else a copy, which takes over its origin): by stream management when it is on,
 * else by the peer's TCP. */
static int
send_one(struct link *l, struct stanza *st, bool owned)
{
	struct conn *c = l->conn;
	bool track = l->st->purpose == STREAM_RELAY, sm = stream_sm_tracking(l->st);
	struct stanza *keep = NULL;

	if (c->state != CONN_OPEN || l->end_when_acked)
		return -1;
	if (track && l->ua_n > 0 && l->ua_bytes + st->cost > cfg->queue_bytes) {
		prove_tcp(l);   /* what TCP acknowledged meanwhile makes room */
	}
	if (track && l->ua_n > 0 && l->ua_bytes + st->cost > cfg->queue_bytes) {
		l->ua_blocked = true;   /* s_acked() reports drained once acks free room */
		return -1;
	}
	if (conn_output_full(c, st->len) ||
	    (track && !owned && (keep = stanza_dup(st)) == NULL) ||
	    stream_send(l->st, st) == -1) {
		stanza_free(keep);
		/* full, not "cannot send yet" (a bidi receiver sends while open): drained
		 * follows */
		if (stream_is_ready(l->st) || l->st->early_ok ||
		    (l->st->role == STREAM_RECEIVER && l->st->bidi && l->st->state == SS_OPEN))
			conn_want_drained(c);
		return -1;
	}
	if (track) {
		if (keep == NULL) {
			keep = st;
		} else {
			keep->origin = st->origin;   /* the copy is the one in flight */
			keep->origin_seq = st->origin_seq;
			st->origin = HANDLE_NULL;
		}
		keep->next = NULL;
		keep->mark = conn_out_mark(c);
		keep->sm_counted = sm;
		if (l->ua_tail != NULL)
			l->ua_tail->next = keep;
		else
			l->ua_head = keep;
		l->ua_tail = keep;
		l->ua_n++;
		l->ua_bytes += keep->cost;
		if (sm) {
			ask_ack_soon(l);   /* one <r/> outstanding at a time */
		} else {
			l->ua_tcp++;
			if (!ev_is_active(&l->prove)) {
				ev_timer_set(&l->prove, PROVE_PERIOD, PROVE_PERIOD);
				ev_timer_start(loop, &l->prove);
			}
		}
	} else if (owned) {
		stanza_free(st);
	}
	conn_touch(c);
	conn_flush(c);
	return 0;
}

int
link_send(struct link *l, const struct stanza *st)
{
	return send_one(l, (struct stanza *)st, false);
}

int
link_send_take(struct link *l, struct stanza *st)
{
	return send_one(l, st, true);
}

/* XEP-0198: the peer took n more of what this link sent (oldest first), or refused
 * stream management (failed: nothing it had will be acked; it was sent, as without). */
static void
s_acked(void *arg, uint32_t n, bool failed)
{
	struct link *l = arg;
	struct stanza *st, *prev = NULL, *next;

	for (st = l->ua_head; st != NULL && (failed || n > 0); st = next) {
		next = st->next;
		if (!st->sm_counted) {
			prev = st;   /* sent before <enable/>: TCP proves it */
		} else if (failed) {
			st->sm_counted = false;   /* sent as without: TCP proves it now */
			l->ua_tcp++;
			prev = st;
		} else {
			ua_unlink(l, prev, st);
			stanza_free(st);
			n--;
		}
	}
	if (l->ua_tcp > 0 && !ev_is_active(&l->prove)) {
		ev_timer_set(&l->prove, 0., PROVE_PERIOD);
		ev_timer_start(loop, &l->prove);
	}
	if (l->ua_n > l->ua_tcp)
		ask_ack_soon(l);   /* the rest */
	ua_room(l);
}

/* Take st (after prev, NULL: at the head) off the unproven list. */
static void
ua_unlink(struct link *l, struct stanza *prev, struct stanza *st)
{
	if (prev != NULL)
		prev->next = st->next;
	else
		l->ua_head = st->next;
	if (l->ua_tail == st)
		l->ua_tail = prev;
	st->next = NULL;
	l->ua_n--;
	l->ua_bytes -= st->cost;
	if (!st->sm_counted)
		l->ua_tcp--;
}

/* Proofs freed room: a refused sender may go on; a shutdown waiting for them ends. */
static void
ua_room(struct link *l)
{
	if (l->ua_blocked && l->ua_bytes <= cfg->queue_bytes / 2) {
		l->ua_blocked = false;
		c_drained(l);
	}
	if (l->end_when_acked && l->ua_n == 0 && link_open(l)) {
		stream_end(l->st);
		conn_flush(l->conn);
	}
}

/* Without stream management: free what the peer's TCP acknowledged (all of it). */
static void
prove_tcp(struct link *l)
{
	struct stanza *st, *prev = NULL, *next;
	uint64_t acked;

	if (l->ua_tcp == 0)
		return;
	acked = conn_out_acked(l->conn);
	for (st = l->ua_head; st != NULL && l->ua_tcp > 0; st = next) {
		next = st->next;
		if (st->sm_counted || st->mark > acked) {
			if (!st->sm_counted)
				break;   /* in stream order: the rest is not acknowledged either */
			prev = st;
			continue;
		}
		ua_unlink(l, prev, st);
		qf_stats.tcp_proven++;
		stanza_free(st);
	}
	if (l->ua_tcp == 0)
		ev_timer_stop(loop, &l->prove);
}

static void
prove_cb(EV_P_ ev_timer *w, int revents)
{
	struct link *l = w->data;

	(void)EV_A;
	(void)revents;
	prove_tcp(l);
	ua_room(l);
}

/* A stanza this link took under stream management was released (stanza_free): once
 * everything before an owed <r/> is, the <a/> goes out from the loop (not from under
 * whoever freed it). */
static void
released(struct handle h, uint32_t seq)
{
	struct link *l = link_get(h);

	if (l == NULL || l->st == NULL || !link_open(l))
		return;
	if (stream_sm_released(l->st, seq)) {
		ev_timer_stop(loop, &l->ack_wait);
		ev_timer_set(&l->ack_wait, 0., 0.);
		ev_timer_start(loop, &l->ack_wait);
	}
}

/* The peer asked for an ack while stanzas it sent are still on their way through
 * quickfed: answer when they are released, or after ACK_WAIT with what is (the peer's
 * liveness deadline must not see us as dead while the next hop is slow). */
static void
s_ack_owed(void *arg)
{
	struct link *l = arg;

	qf_stats.sm_acks_deferred++;
	if (!ev_is_active(&l->ack_wait)) {
		ev_timer_set(&l->ack_wait, ACK_WAIT, 0.);
		ev_timer_start(loop, &l->ack_wait);
	}
}

static void
ack_wait_cb(EV_P_ ev_timer *w, int revents)
{
	struct link *l = w->data;

	(void)EV_A;
	(void)revents;
	if (!link_open(l))
		return;
	stream_sm_answer(l->st);
	conn_flush(l->conn);
}

/* An <r/> for what is unacknowledged, unless one is out; remember when it went. */
static void
ask_ack(struct link *l)
{
	bool was = stream_sm_waiting(l->st);

	stream_sm_request(l->st);
	if (!was && stream_sm_waiting(l->st))
		l->r_at = l->r_last = ev_now(loop);
}

/* Ask for an ack of what is unacknowledged (XEP-0198 on relay links). At once, in the
 * TLS record of the stanza just written, when the last <r/> is timeouts { ack_ride }
 * old, when limits { ack_batch } stanzas wait, or when half of limits { queue_bytes }
 * is kept (a sender must not stall on a request held back); else alone, timeouts {
 * ack_late } after the last one, unless a stanza takes it along before. A link carrying
 * a stanza now and then asks with each; one carrying tens a second asks once for
 * ack_batch, instead of an <r/> and an <a/> (a record and a wake-up at each end) every
 * few stanzas; a stanza waits at most ack_late for the question that acks it. What a
 * dying link leaves to send again (as duplicates) is bounded by ack_batch stanzas, or
 * what ack_ride holds at a lower rate. */
static void
ask_ack_soon(struct link *l)
{
	double now = ev_now(loop);

	if (stream_sm_waiting(l->st))
		return;
	if (now - l->r_last >= cfg->ack_ride_ms / 1000.0 ||
	    l->ua_n - l->ua_tcp >= cfg->ack_batch || l->ua_bytes >= cfg->queue_bytes / 2) {
		ev_timer_stop(loop, &l->ack_ask);
		ask_ack(l);
		conn_flush(l->conn);
		return;
	}
	if (!ev_is_active(&l->ack_ask)) {
		ev_timer_set(&l->ack_ask, l->r_last + cfg->ack_late_ms / 1000.0 - now, 0.);
		ev_timer_start(loop, &l->ack_ask);
	}
}

static void
ack_ask_cb(EV_P_ ev_timer *w, int revents)
{
	struct link *l = w->data;

	(void)EV_A;
	(void)revents;
	if (!link_open(l) || l->ua_n == l->ua_tcp)
		return;
	ask_ack(l);
	conn_flush(l->conn);
}

/* Liveness of a ready relay link (issue 11): an <r/> unanswered for timeouts { dead }
 * means the peer or the path is gone: the link is reset and what it left unacked goes
 * back to its routes. A link silent for timeouts { keepalive } is probed: an <r/> with
 * stream management, a whitespace keepalive without (then TCP_USER_TIMEOUT, set to
 * the same dead time, is what notices a dead path). */
static void
live_cb(EV_P_ ev_timer *w, int revents)
{
	struct link *l = w->data;
	double now = ev_now(EV_A), active;

	(void)revents;
	if (!link_open(l) || !stream_is_ready(l->st))
		return;
	if (stream_sm_waiting(l->st)) {
		if (l->r_at == 0)
			l->r_at = now;   /* asked by the stream itself (<enabled/>) */
		if (now - l->r_at < cfg->dead_ms / 1000.0)
			return;
		log_warnx("conn=%lu %s-out local=%s remote=%s no answer to <r/> for %.1fs: "
		    "link dead, %zu stanza(s) unacknowledged", l->id,
		    l->st->side == STREAM_INTERNET ? "s2s" : "local", l->st->local,
		    l->st->remote, now - l->r_at, l->ua_n);
		qf_stats.links_dead++;
		conn_reset(l->conn, "peer-unresponsive");   /* frees l */
		return;
	}
	active = l->last_in > l->conn->last_active ? l->last_in : l->conn->last_active;
	if (now - active < cfg->keepalive_ms / 1000.0)
		return;
	if (stream_probe(l->st))
		l->r_at = now;
	conn_flush(l->conn);
}

/* The link ends with stanzas unacknowledged: each goes back to a route (newest first,
 * so that each one put at the front of its queue keeps the order) to be sent again on
 * the next link. The ops the link was made with take them even after a detach (route.c
 * finds the route by the addresses, no owner needed); only a link made without a
 * requeue (verify.c's, which carry no stanzas) would count them lost. */
static void
give_back(struct link *l)
{
	const struct link_ops *ops = l->made_by;
	struct stanza *st, *rev = NULL;
	size_t n, tcp;
	/* on the internet a stanza only TCP could prove may have arrived: bounced
	 * (issue 11); on the loopback leg, and under stream management, sent again */
	bool bounce = l->st->side == STREAM_INTERNET && ops != NULL && ops->unproven != NULL;

	prove_tcp(l);   /* the last word from the kernel (the socket is still open) */
	if (l->ua_head == NULL)
		return;
	n = l->ua_n;
	tcp = l->ua_tcp;
	while ((st = l->ua_head) != NULL) {
		l->ua_head = st->next;
		st->next = rev;
		rev = st;
	}
	l->ua_tail = NULL;
	l->ua_n = l->ua_bytes = l->ua_tcp = 0;
	log_info("conn=%lu local=%s remote=%s ended with %zu stanza(s) unacknowledged "
	    "(%zu by TCP): %s", l->id, l->st->local, l->st->remote, n, tcp,
	    ops == NULL || ops->requeue == NULL ? "nobody to take them, lost" :
	    bounce && tcp > 0 ? "those TCP did not acknowledge are bounced, the others "
	    "sent again on the next link" : "sent again on the next link");
	while ((st = rev) != NULL) {
		rev = st->next;
		st->next = NULL;
		if (bounce && !st->sm_counted) {
			qf_stats.unproven_bounced++;
			ops->unproven(NULL, l, st);
		} else if (ops != NULL && ops->requeue != NULL) {
			qf_stats.sm_requeued++;
			ops->requeue(NULL, l, st);
		} else {
			qf_stats.sm_lost++;
			stanza_free(st);
		}
	}
}

bool
link_send_blocked(const struct link *l)
{
	return l->conn->send_blocked || l->ua_blocked;
}

int
link_send_verify(struct link *l, const char *local, const char *remote, const char *id,
    const char *key)
{
	return stream_send_verify(l->st, local, remote, id, key);
}

void
link_flush(struct link *l)
{
	conn_flush(l->conn);
}

void
link_dialback_verdict(struct link *l, const char *local, const char *remote, bool valid)
{
	stream_dialback_verdict(l->st, local, remote, valid);
	if (l->conn->state == CONN_OPEN)
		sync_deadline(l);
	conn_wake(l->conn);
}

void
link_dialback_error(struct link *l, const char *local, const char *remote)
{
	stream_dialback_error(l->st, local, remote);
}

void
link_pause(struct link *l, struct conn_waitq *q)
{
	if (l->conn->state == CONN_DEAD)
		return;
	stream_pause_input(l->st);
	conn_pause(l->conn, q);
}

void
link_wake_all(struct conn_waitq *q)
{
	conn_wake_all(q);
}

void
link_close(struct link *l, const char *reason)
{
	struct conn *c = l->conn;

	if (c->state == CONN_DEAD || c->state == CONN_CONNECTING) {
		conn_close(c, reason);
		return;
	}
	stream_close(l->st, reason);
	conn_flush(c);
}

static bool
in_set(const struct link *l, enum link_set which)
{
	switch (which) {
	case LINKS_INTERNET:
		return l->st->side == STREAM_INTERNET;
	case LINKS_LOCAL_IN:
		return l->st->side == STREAM_LOCAL && l->st->role == STREAM_RECEIVER;
	case LINKS_ALL:
		break;
	}
	return true;
}

unsigned long
link_count_set(enum link_set which)
{
	unsigned long n = 0;

	for (const struct link *l = all; l != NULL; l = l->next)
		if (in_set(l, which) && l->conn->state != CONN_DEAD)
			n++;
	return n;
}

void
link_close_all(enum link_set which)
{
	struct link *l, *next;

	for (l = all; l; l = next) {
		struct conn *c = l->conn;

		next = l->next;
		if (!in_set(l, which))
			continue;
		if (c->state == CONN_CLOSING || c->state == CONN_DEAD)
			continue;
		if (c->state != CONN_OPEN) {
			conn_close(c, "shutdown");
			continue;
		}
		if (l->st->state == SS_READY && stream_sm_tracking(l->st) && l->ua_n > 0) {
			/* what it sent is not acknowledged yet: ask, end once acked
			 * (s_acked; timeouts { shutdown } bounds the wait) */
			l->end_when_acked = true;
			if (stream_probe(l->st))
				l->r_at = ev_now(loop);
			conn_flush(c);
			continue;
		}
		/* our </stream:stream>; what the peer sent before it sees it is still read
		 * and delivered until it closes its side */
		stream_end(l->st);
		conn_flush(c);
	}
}

void
link_shed(struct link *l, const char *cond, const char *text)
{
	struct conn *c = l->conn;

	if (c->state != CONN_OPEN)
		return;
	/* no stream error before (direct TLS) or inside a TLS handshake */
	if (conn_can_say(c))
		stream_error(l->st, cond, text, "shed");
	conn_shed(c);
}

unsigned long
link_id(const struct link *l)
{
	return l->id;
}

struct conn *
link_conn(struct link *l)
{
	return l->conn;
}

enum stream_side
link_side(const struct link *l)
{
	return l->st->side;
}

bool
link_is_receiver(const struct link *l)
{
	return l->st->role == STREAM_RECEIVER;
}

bool
link_pipelined(const struct link *l)
{
	return l->st->pipeline;
}

bool
link_authenticated(const struct link *l)
{
	const struct stream *s = l->st;

	if (s->auth_method != NULL)
		return true;
	for (size_t i = 0; i < s->n_pairs; i++)
		if (s->pairs[i].valid)
			return true;
	return false;
}

bool
link_open(const struct link *l)
{
	return l->conn->state == CONN_OPEN;
}

unsigned long
link_count(void)
{
	return nlinks;
}

/* ---- close link ---- */

/* "close link DOMAIN": every internet connection whose remote domain is DOMAIN is
 * reset (TCP RST: nothing more is sent or received on it), as if it had died; its
 * routes start over and, with stream management, send again what it left
 * unacknowledged. The ids are taken first: resetting one runs its owners' callbacks,
 * which may open others. */
static int
status_close_link(void *arg, const char *args, struct buf *out)
{
	char dom[256];
	unsigned long *ids;
	size_t n = 0, done = 0;

	(void)arg;
	if (args == NULL || jid_domain_only(args, dom, sizeof(dom)) == -1) {
		buf_puts(out, "usage: close link DOMAIN");
		return -1;
	}
	if ((ids = calloc(nlinks + 1, sizeof(*ids))) == NULL) {
		buf_puts(out, "out of memory");
		return -1;
	}
	for (struct link *l = all; l != NULL && n < nlinks; l = l->next)
		if (l->st->side == STREAM_INTERNET && domain_eq(l->st->remote, dom) &&
		    l->conn->state != CONN_DEAD)
			ids[n++] = l->id;
	for (size_t i = 0; i < n; i++) {
		struct link *l;

		for (l = all; l != NULL && l->id != ids[i]; l = l->next)
			;
		if (l == NULL || l->conn->state == CONN_DEAD)
			continue;
		log_info("conn=%lu local=%s remote=%s reset by the operator (close link), %zu "
		    "stanza(s) unacknowledged", l->id, l->st->local, l->st->remote, l->ua_n);
		conn_reset(l->conn, "operator-reset");
		done++;
	}
	free(ids);
	buf_printf(out, "closed=%zu\n", done);
	return 0;
}

/* ---- show peers ---- */

/* "show peers", streamed (it grows with the connections: ~1 KiB each). The list runs
 * newest first, ids descending, so *cursor (the id of the last connection listed) says
 * where to go on; connections opened meanwhile are not listed, closed ones drop out.
 * peers= is the count when the answer began. */
static int
status_peers(void *arg, const char *args, struct buf *out, uint64_t *cursor)
{
	const struct link *l;

	(void)arg;
	(void)args;
	if (*cursor == 0) {
		buf_printf(out, "peers=%lu\n", nlinks);
		*cursor = UINT64_MAX;
	}
	for (l = all; l != NULL && l->id >= *cursor; l = l->next)
		;
	for (; l != NULL && buf_room(out) >= STATUS_RECORD_MAX; l = l->next) {
		peer_record(l, out);
		*cursor = l->id;
	}
	return l != NULL ? 1 : 0;
}

/* One connection's lines, within STATUS_RECORD_MAX: a stream may carry a few hundred
 * pairs (limits { held }), so the pair lines stop at PEER_PAIRS_SHOWN with a count of
 * the rest. */
#define PEER_PAIRS_SHOWN 16
static void
peer_record(const struct link *l, struct buf *out)
{
	const struct stream *s = l->st;
	const struct conn *c = l->conn;
	const struct tls_session *ts = conn_tls(c);
	unsigned long id = l->id;

	buf_printf(out, "peer.%lu.direction=%s\n", id,
	    s->role == STREAM_INITIATOR ? "out" : "in");
	buf_printf(out, "peer.%lu.side=%s\n", id,
	    s->side == STREAM_INTERNET ? "internet" : "local");
	buf_printf(out, "peer.%lu.purpose=%s\n", id,
	    s->purpose == STREAM_RELAY ? "relay" : "verify");
	buf_printf(out, "peer.%lu.local=%s\n", id, s->local);
	buf_printf(out, "peer.%lu.remote=%s\n", id, s->remote);
	buf_printf(out, "peer.%lu.address=%s\n", id, c->addr);
	buf_printf(out, "peer.%lu.state=%s\n", id, stream_strstate(s->state));
	buf_printf(out, "peer.%lu.tls=%s\n", id, ts ? tls_session_version(ts) : "none");
	if (ts != NULL) {
		buf_printf(out, "peer.%lu.tls_resumed=%d\n", id, tls_session_resumed(ts));
		buf_printf(out, "peer.%lu.dane=%s\n", id,
		    tls_dane_strstate(tls_session_dane_state(ts)));
		buf_printf(out, "peer.%lu.peer_cert=%s\n", id, tls_session_peer_verdict(ts));
	}
	buf_printf(out, "peer.%lu.auth=%s\n", id, s->auth_method ? s->auth_method : "none");
	buf_printf(out, "peer.%lu.bidi=%d\n", id, s->bidi);
	buf_printf(out, "peer.%lu.sm=%s\n", id, s->sm.on ? "on" : s->sm.asked ? "asked" : "off");
	buf_printf(out, "peer.%lu.unacked=%zu\n", id, l->ua_n);
	buf_printf(out, "peer.%lu.riders=%u\n", id, l->nriders);
	buf_printf(out, "peer.%lu.pairs=%zu\n", id, s->n_pairs);
	for (size_t i = 0; i < s->n_pairs && i < PEER_PAIRS_SHOWN; i++)
		buf_printf(out, "peer.%lu.pair.%zu=%s|%s|%s\n", id, i, s->pairs[i].local,
		    s->pairs[i].remote, s->pairs[i].valid ? "valid" :
		    s->pairs[i].pending ? "pending" : "invalid");
	if (s->role == STREAM_INITIATOR && l->rtt_used > 0) {
		buf_printf(out, "peer.%lu.rtt_used=%u\n", id, l->rtt_used);
		buf_printf(out, "peer.%lu.rtt_saved=%u\n", id, l->rtt_unpipelined - l->rtt_used);
	}
	if (s->role == STREAM_INITIATOR)
		buf_printf(out, "peer.%lu.tcp_fastopen=%s\n", id,
		    l->tfo_used ? "used" : c->tfo ? "tried" : "no");
	buf_printf(out, "peer.%lu.direct_tls=%d\n", id, s->direct_tls);
	buf_printf(out, "peer.%lu.pipelining=%s\n", id,
	    s->role == STREAM_INITIATOR ? (s->pipeline ? "used" : "no") :
	    (s->cfg->pipelining ? "offered" : "no"));
	buf_printf(out, "peer.%lu.stanzas_in=%lu\n", id, s->stanzas_in);
	buf_printf(out, "peer.%lu.stanzas_out=%lu\n", id, s->stanzas_out);
}
