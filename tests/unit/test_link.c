/* tests/unit/test_link.c - a link: one conn, one stream, events to its owner.
 * SPDX-License-Identifier: ISC
 * Links link.c (and the real stream.c on top) against the fake connection layer
 * (tests/fake/conn.c): the test plays the peer with stream transcripts and checks what
 * the link tells its owner, what it learns about the peer (peercaps, also from verify
 * connections), the deadline it gives its conn, that an owner that went away or let
 * go is not called, and the riders that share a link (multiplexing, bidi). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "../../core/config.h"
#include "../../core/handle.h"
#include "../../core/stats.h"
#include "../../dns/resolver.h"
#include "../../s2s/dialback.h"
#include "../../s2s/link.h"
#include "../../s2s/linkindex.h"
#include "../../s2s/peercaps.h"
#include "../../s2s/stanza.h"
#include "../fake/conn.h"

#define HDR(from, to, id) \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
	"xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' " \
	"version='1.0' from='" from "' to='" to "' id='" id "' xml:lang='en'>"
/* (pipelining is learnt from the features after TLS only; the fake conn has no TLS) */
#define FEATURES \
	"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"

static struct cfg_domain dom_a = { .name = "a.example" };
static struct config cfg;
static struct ev_loop *loop;

/* The owner: counts what it heard. */
struct rec {
	struct handle self;
	int connected, ready, closed, answers, refused, drained;
	const char *close_reason;
	struct link *last;
};

static void o_connected(void *o, struct link *l) { ((struct rec *)o)->connected++; ((struct rec *)o)->last = l; }
static void o_ready(void *o, struct link *l) { ((struct rec *)o)->ready++; ((struct rec *)o)->last = l; }
static void
o_answer(void *o, struct link *l, const char *local, const char *remote, const char *id,
    bool valid)
{
	(void)l;
	(void)id;
	(void)valid;
	/* the answer names the pair asked about, in (local, remote) order */
	if (strcmp(local, "a.example") == 0 && strcmp(remote, "b.example") == 0)
		((struct rec *)o)->answers++;
}
static void
o_closed(void *o, struct link *l, const char *reason, bool timed_out)
{
	struct rec *r = o;

	(void)l;
	(void)timed_out;
	r->closed++;
	r->close_reason = reason;
}

static void o_refused(void *o, struct link *l, const char *why) { (void)l; (void)why; ((struct rec *)o)->refused++; }
static void o_drained(void *o, struct link *l) { (void)l; ((struct rec *)o)->drained++; }

static const struct link_ops ops = {
	.kind = HANDLE_VERIFY,
	.connected = o_connected,
	.ready = o_ready,
	.verify_answer = o_answer,
	.closed = o_closed,
};

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.domains = &dom_a;
	cfg.max_stanza_size = 65536;
	cfg.max_depth = 16;
	cfg.max_attributes = 16;
	cfg.max_name_length = 128;
	cfg.require_tls = false;      /* no TLS in the fake conn */
	cfg.dialback = true;
	cfg.pipelining = true;
	cfg.tcp_fastopen = true;
	cfg.held_bytes = 1 << 20;
	cfg.memory_limit = (size_t)1 << 30;
	cfg.link_pairs = 64;
	cfg.links_per_server = 4;
	cfg.queue_bytes = 1 << 20;
	cfg.keepalive_ms = 60000;   /* no keepalive <r/> within a test (it would probe */
	cfg.dead_ms = 120000;       /* at every loop turn with 0) */
	cfg.ack_ride_ms = 500;      /* the defaults (core/config.c) */
	cfg.ack_late_ms = 2000;
	cfg.ack_batch = 16;
	fc_output_full = false;
	fc_acked = UINT64_MAX;
	memset(&qf_stats, 0, sizeof(qf_stats));
	assert_int_equal(dialback_set_secret("unit-test-secret-0123456789", 27), 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	peercaps_init(loop, NULL, 3600);
	link_init(loop, &cfg, NULL, NULL, NULL);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fc_reset();
	assert_int_equal(link_count(), 0);
	peercaps_free();
	ev_loop_destroy(loop);
	return 0;
}

/* A connect target: host pfx + name, port (0: none given). */
static void
target(struct resolve_target *t, const char *pfx, const char *name, uint16_t port)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s%s", pfx, name);
	t->port = port;
}

static struct link *
verify_link(struct rec *r, const char *remote)
{
	struct resolve_target t;
	struct link *l;

	target(&t, "xmpp.", remote, 5269);
	r->self = handle_new(HANDLE_VERIFY, r);
	l = link_connect(&t, STREAM_INTERNET, STREAM_VERIFY, "a.example", remote, &ops, r->self);
	assert_non_null(l);
	assert_string_equal(fc_last()->target, t.host);
	return l;
}

/* A verify connection tells its owner connected and ready, counts its round trips, and
 * learns what the peer showed without forgetting what relays learnt about SASL
 * EXTERNAL (it authenticates nothing itself). */
static void
test_verify_learns_peercaps(void **state)
{
	struct peercaps known = { .external = true, .dialback = true, .starttls = true,
	    .tls_rounds = 2 };
	const struct peercaps *pc;
	struct rec r = { 0 };
	struct conn *c;
	struct link *l;

	(void)state;
	peercaps_learn("b.example", &known);
	l = verify_link(&r, "b.example");
	c = fc_last();
	assert_true(c->tfo);                      /* a known peer: TCP Fast Open tried */
	fc_up(c);
	assert_int_equal(r.connected, 1);
	assert_non_null(strstr(c->out.data, "<stream:stream"));   /* our header went out */
	fc_input(c, HDR("b.example", "a.example", "V1") FEATURES);
	assert_int_equal(r.ready, 1);
	assert_ptr_equal(r.last, l);
	pc = peercaps_get("b.example");
	assert_non_null(pc);
	assert_true(pc->external);                /* kept from the relay */
	assert_true(pc->dialback);
	assert_false(pc->starttls);               /* what this connection showed */
	assert_int_equal(pc->tls_rounds, 1);
	assert_int_equal(qf_stats.rtt_used, 2);   /* TCP + header */
	assert_int_equal(c->deadline, CONN_DEADLINE_AUTH);   /* verify: never idle-bounded */
	assert_int_equal(link_send_verify(l, "a.example", "b.example", "SID1", "k1"), 0);
	fc_input(c, "<db:verify from='b.example' to='a.example' id='SID1' type='valid'/>");
	assert_int_equal(r.answers, 1);
	fc_destroy(c, "verify-done");
	assert_int_equal(r.closed, 1);
	assert_string_equal(r.close_reason, "verify-done");
	handle_release(r.self);
}

/* First contact over a verify connection: an entry is made, with nothing claimed about
 * EXTERNAL or dialback. */
static void
test_verify_learns_new_peer(void **state)
{
	const struct peercaps *pc;
	struct rec r = { 0 };
	struct conn *c;

	(void)state;
	assert_null(peercaps_get("c.example"));
	verify_link(&r, "c.example");
	c = fc_last();
	assert_false(c->tfo);                     /* unknown peer: no TCP Fast Open */
	fc_up(c);
	fc_input(c, HDR("c.example", "a.example", "V2") FEATURES);
	pc = peercaps_get("c.example");
	assert_non_null(pc);
	assert_false(pc->external);
	assert_false(pc->dialback);
	fc_destroy(c, "verify-done");
	handle_release(r.self);
}

/* An owner that is gone (its handle released) or that let go (link_detach) hears
 * nothing, and the link goes on and ends cleanly. */
static void
test_owner_gone_or_detached(void **state)
{
	struct rec r1 = { 0 }, r2 = { 0 };
	struct conn *c1, *c2;
	struct link *l2;

	(void)state;
	verify_link(&r1, "b.example");
	c1 = fc_last();
	handle_release(r1.self);                  /* the session was freed */
	fc_up(c1);
	fc_input(c1, HDR("b.example", "a.example", "V3") FEATURES);
	assert_int_equal(r1.connected + r1.ready, 0);
	fc_destroy(c1, "peer-eof");
	assert_int_equal(r1.closed, 0);

	l2 = verify_link(&r2, "b.example");
	c2 = fc_last();
	fc_up(c2);
	assert_int_equal(r2.connected, 1);
	link_detach(l2);
	fc_input(c2, HDR("b.example", "a.example", "V4") FEATURES);
	assert_int_equal(r2.ready, 0);
	link_close(l2, "happy-eyeballs-lost");
	assert_int_equal(c2->state, CONN_CLOSING);
	assert_non_null(strstr(c2->out.data, "</stream:stream>"));
	fc_destroy(c2, "happy-eyeballs-lost");
	assert_int_equal(r2.closed, 0);
	handle_release(r2.self);
	assert_int_equal(link_count(), 0);
}

/* A relay on the loopback leg: authenticated by dialback, its conn's deadline turns
 * from authentication to idleness; then it carries stanzas. */
static void
test_relay_deadline_and_send(void **state)
{
	static const struct link_ops relay = {
		.kind = HANDLE_ROUTE, .connected = o_connected, .ready = o_ready,
		.closed = o_closed,
	};
	char key[DIALBACK_KEY_LEN + 1], result[256];
	const char xml[] = "<message xmlns='jabber:server' from='x@remote.example' "
	    "to='u@a.example'><body>hi</body></message>";
	struct resolve_target t;
	struct rec r = { 0 };
	struct stanza *st;
	struct conn *c;
	struct link *l;

	(void)state;
	target(&t, "127.0.0.1", "", 0);
	r.self = handle_new(HANDLE_ROUTE, &r);
	l = link_connect(&t, STREAM_LOCAL, STREAM_RELAY, "a.example", "remote.example", &relay,
	    r.self);
	c = fc_last();
	assert_false(c->tfo);                     /* never on the loopback leg */
	fc_up(c);
	st = stanza_new("message", "x@remote.example", "u@a.example", NULL, false, xml,
	    sizeof(xml) - 1);
	assert_int_equal(link_send(l, st), -1);   /* not ready */
	assert_false(c->send_blocked);            /* ... which is not "full" */
	fc_input(c, HDR("a.example", "remote.example", "PID1") FEATURES);
	assert_int_equal(dialback_key("a.example", "remote.example", "PID1", key), 0);
	snprintf(result, sizeof(result), "<db:result from='remote.example' to='a.example'>%s"
	    "</db:result>", key);
	assert_non_null(strstr(c->out.data, result));
	assert_int_equal(c->deadline, CONN_DEADLINE_AUTH);
	fc_input(c, "<db:result from='a.example' to='remote.example' type='valid'/>");
	assert_int_equal(r.ready, 1);
	assert_int_equal(c->deadline, CONN_DEADLINE_IDLE);
	assert_int_equal(qf_stats.rtt_used, 3);   /* TCP + header + db:result */
	assert_int_equal(link_send(l, st), 0);
	assert_non_null(strstr(c->out.data, "<body>hi</body>"));
	stanza_free(st);
	link_close(l, "shutdown");
	assert_int_equal(c->state, CONN_CLOSING);
	fc_destroy(c, "shutdown");
	assert_int_equal(r.closed, 1);
	assert_string_equal(r.close_reason, "shutdown");
	handle_release(r.self);
}

/* A link's handle finds it while it lives and nothing after. */
static void
test_link_handle(void **state)
{
	struct rec r = { 0 };
	struct handle h;
	struct link *l;

	(void)state;
	l = verify_link(&r, "b.example");
	h = link_handle(l);
	assert_ptr_equal(link_get(h), l);
	assert_int_equal(link_id(l), fc_last()->id);
	assert_int_equal(link_count(), 1);
	fc_destroy(fc_last(), "connect-failed");
	assert_null(link_get(h));
	assert_int_equal(r.closed, 1);
	assert_string_equal(r.close_reason, "connect-failed");
	handle_release(r.self);
}

/* ---- multiplexing ---- */

/* A rider's owner (a route elsewhere): ready, refused, drained, closed. */
static const struct link_ops rider_ops = {
	.kind = HANDLE_ROUTE, .ready = o_ready, .drained = o_drained, .refused = o_refused,
	.closed = o_closed,
};

static struct stanza *
message(const char *from, const char *to)
{
	char xml[256];
	int n = snprintf(xml, sizeof(xml), "<message xmlns='jabber:server' from='%s' to='%s'>"
	    "<body>m</body></message>", from, to);
	struct stanza *st = stanza_new("message", from, to, NULL, false, xml, (size_t)n);

	assert_non_null(st);
	return st;
}

/* Riders on an initiator (the loopback leg): one that joined while the link set up
 * asks for its pair with a piggybacked db:result once the stream is ready and hears
 * ready on the valid verdict; one refused hears refused and the link stays; a pair
 * found valid stays carried after its rider left; limits { link_pairs } is kept. */
static void
test_riders_on_initiator(void **state)
{
	static const struct link_ops relay = {
		.kind = HANDLE_ROUTE, .ready = o_ready, .closed = o_closed,
	};
	char key[DIALBACK_KEY_LEN + 1], want[256];
	struct rec o = { 0 }, r1 = { 0 }, r2 = { 0 }, r3 = { 0 }, r4 = { 0 };
	struct resolve_target t;
	struct conn *c;
	struct link *l;

	(void)state;
	target(&t, "127.0.0.1", "", 5271);
	o.self = handle_new(HANDLE_ROUTE, &o);
	r1.self = handle_new(HANDLE_ROUTE, &r1);
	r2.self = handle_new(HANDLE_ROUTE, &r2);
	r3.self = handle_new(HANDLE_ROUTE, &r3);
	r4.self = handle_new(HANDLE_ROUTE, &r4);
	l = link_connect(&t, STREAM_LOCAL, STREAM_RELAY, "a.example", "remote.example", &relay,
	    o.self);
	c = fc_last();
	/* any initiator on the loopback leg will do, setting up or not */
	assert_ptr_equal(link_find_ride(STREAM_LOCAL, "a.example", "other.example", NULL, 0), l);
	assert_null(link_find_ride(STREAM_INTERNET, "a.example", "other.example", NULL, 0));
	assert_int_equal(link_ride(l, "a.example", "other.example", &rider_ops, r1.self), 0);
	assert_true(link_shared(l));
	fc_up(c);
	fc_input(c, HDR("a.example", "remote.example", "PID1") FEATURES);
	fc_input(c, "<db:result from='a.example' to='remote.example' type='valid'/>");
	assert_int_equal(o.ready, 1);
	assert_int_equal(r1.ready, 0);                /* its db:result went out */
	assert_int_equal(dialback_key("a.example", "other.example", "PID1", key), 0);
	snprintf(want, sizeof(want), "<db:result from='other.example' to='a.example'>%s"
	    "</db:result>", key);
	assert_non_null(strstr(c->out.data, want));
	assert_int_equal(qf_stats.pairs_piggybacked, 1);
	fc_input(c, "<db:result from='a.example' to='other.example' type='valid'/>");
	assert_int_equal(r1.ready, 1);
	assert_ptr_equal(link_find_ride(STREAM_LOCAL, "a.example", "other.example", NULL, 0), l);
	/* on the ready link: asked at once; refused, the link stays */
	assert_int_equal(link_ride(l, "a.example", "third.example", &rider_ops, r2.self), 0);
	fc_input(c, "<db:result from='a.example' to='third.example' type='invalid'/>");
	assert_int_equal(r2.refused, 1);
	assert_int_equal(r2.ready, 0);
	assert_int_equal(c->state, CONN_OPEN);
	assert_int_equal(o.closed, 0);
	/* r1 leaves; its pair stays authenticated: the next rider may send at once */
	link_unride(l, r1.self);
	assert_false(link_shared(l));
	assert_int_equal(link_ride(l, "a.example", "other.example", &rider_ops, r3.self), 1);
	assert_int_equal(r3.ready, 0);                /* (1: no ready call) */
	/* limits { link_pairs }: the own pair and r3 fill two: a new pair opens another
	 * link while the server has fewer than links_per_server ... */
	cfg.link_pairs = 2;
	cfg.links_per_server = 2;
	assert_null(link_find_ride(STREAM_LOCAL, "a.example", "fourth.example", NULL, 0));
	/* ... and rides the least loaded one, over link_pairs, once it has that many */
	cfg.links_per_server = 1;
	assert_ptr_equal(link_find_ride(STREAM_LOCAL, "a.example", "fourth.example", NULL, 0), l);
	cfg.link_pairs = 64;
	cfg.links_per_server = 4;
	fc_destroy(c, "peer-closed");
	assert_int_equal(o.closed, 1);
	assert_int_equal(r3.closed, 1);
	assert_int_equal(r1.closed + r2.closed + r4.closed, 0);   /* off the link before */
	handle_release(o.self);
	handle_release(r1.self);
	handle_release(r2.self);
	handle_release(r3.self);
	handle_release(r4.self);
}

/* A link looked for in the index, and how often lindex_each showed it. */
struct seen {
	struct link *l;
	int          n;
};

static void
seen_link(void *item, void *arg)
{
	struct seen *q = arg;

	if (item == q->l)
		q->n++;
}

static int
filed_under(struct link *l, const char *remote)
{
	struct seen q = { l, 0 };

	lindex_each(lindex_key_name(LINDEX_REMOTE, remote, 0), seen_link, &q);
	return q.n;
}

/* A link's entries in the link index stay bounded by what it carries now: 1,000
 * riders for ever new remote domains come and go on an internet link (as a local server
 * writing to many domains of one peer would make them); the link is re-filed from its
 * current state whenever its entries reach twice that, so the index holds a handful of
 * entries for it, not 1,000; the rider still on it and its own remote stay filed, an
 * early departed rider does not. */
static void
test_index_refiled(void **state)
{
	static const struct link_ops relay = {
		.kind = HANDLE_ROUTE, .ready = o_ready, .closed = o_closed,
	};
	struct rec o = { 0 }, keep = { 0 }, r = { 0 };
	struct resolve_target t;
	char remote[64];
	size_t most = 0;
	struct conn *c;
	struct link *l;

	(void)state;
	target(&t, "xmpp.remote.example", "", 5269);
	o.self = handle_new(HANDLE_ROUTE, &o);
	keep.self = handle_new(HANDLE_ROUTE, &keep);
	r.self = handle_new(HANDLE_ROUTE, &r);
	l = link_connect(&t, STREAM_INTERNET, STREAM_RELAY, "a.example", "remote.example",
	    &relay, o.self);
	assert_non_null(l);
	c = fc_last();
	assert_int_equal(link_ride(l, "a.example", "keep.example", &rider_ops, keep.self), 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(remote, sizeof(remote), "r%d.example", i);
		assert_int_equal(link_ride(l, "a.example", remote, &rider_ops, r.self), 0);
		assert_int_equal(filed_under(l, remote), 1);
		link_unride(l, r.self);
		if (lindex_count() > most)
			most = lindex_count();
	}
	/* while a rider is on besides keep: 3 + 2 riders + 0 pairs, re-filed over 10 */
	assert_true(most <= 10);
	assert_int_equal(filed_under(l, "keep.example"), 1);
	assert_int_equal(filed_under(l, "remote.example"), 1);
	assert_int_equal(filed_under(l, "r0.example"), 0);
	fc_destroy(c, "peer-closed");
	assert_int_equal(lindex_count(), 0);
	handle_release(o.self);
	handle_release(keep.self);
	handle_release(r.self);
}

static int rx_verify;
static void
rx_verify_needed(void *o, struct link *l, const char *local, const char *remote,
    const char *id, const char *key)
{
	(void)o;
	(void)l;
	(void)local;
	(void)remote;
	(void)id;
	(void)key;
	rx_verify++;
}

static const struct link_ops rx_ops = {
	.kind = HANDLE_ROUTE, .verify_needed = rx_verify_needed,
};

/* An accepted loopback stream from a.example for remote.example, authenticated by
 * dialback, with bidi asked for or not. */
static struct link *
bidi_receiver(bool bidi)
{
	struct link *l = link_accept(-1, STREAM_LOCAL, false, NULL, 0, &rx_ops, HANDLE_NULL);
	struct conn *c = fc_last();

	assert_non_null(l);
	rx_verify = 0;
	fc_input(c, HDR("a.example", "remote.example", "x"));
	assert_non_null(strstr(c->out.data, "<bidi xmlns='urn:xmpp:features:bidi'/>"));
	if (bidi)
		fc_input(c, "<bidi xmlns='urn:xmpp:bidi'/>");
	fc_input(c, "<db:result from='a.example' to='remote.example'>k</db:result>");
	assert_int_equal(rx_verify, 1);
	assert_null(link_find_ride(STREAM_LOCAL, "a.example", "remote.example", NULL, 0));
	link_dialback_verdict(l, "a.example", "remote.example", true);
	return l;
}

/* XEP-0288 on a receiving link: only with bidi does it carry its authenticated pair
 * back, to a rider that may send at once; a full output owes that rider drained. */
static void
test_bidi_receiver_rider(void **state)
{
	struct rec r = { 0 };
	struct stanza *st = message("x@remote.example", "u@a.example");
	struct conn *c;
	struct link *l;

	(void)state;
	cfg.bidi = true;
	r.self = handle_new(HANDLE_ROUTE, &r);
	l = bidi_receiver(false);
	assert_null(link_find_ride(STREAM_LOCAL, "a.example", "remote.example", NULL, 0));
	assert_int_equal(link_ride(l, "a.example", "remote.example", &rider_ops, r.self), -1);
	assert_int_equal(link_send(l, st), -1);       /* one-way */
	fc_destroy(fc_last(), "peer-closed");

	l = bidi_receiver(true);
	c = fc_last();
	assert_ptr_equal(link_find_ride(STREAM_LOCAL, "a.example", "remote.example", NULL, 0),
	    l);
	assert_null(link_find_ride(STREAM_LOCAL, "a.example", "other.example", NULL, 0));
	assert_int_equal(link_ride(l, "a.example", "remote.example", &rider_ops, r.self), 1);
	assert_int_equal(link_send(l, st), 0);
	assert_non_null(strstr(c->out.data, "<body>m</body>"));
	/* the output is full: the send is refused and drained is owed */
	fc_output_full = true;
	assert_int_equal(link_send(l, st), -1);
	assert_true(link_send_blocked(l));
	fc_output_full = false;
	c->send_blocked = false;
	c->ops->drained(c->owner);
	assert_int_equal(r.drained, 1);
	fc_destroy(c, "peer-closed");
	assert_int_equal(r.closed, 1);
	stanza_free(st);
	handle_release(r.self);
}

/* ---- XEP-0198: what a link keeps until the peer acknowledges it ---- */

/* The owner of an sm link: besides the counts, the bodies of the stanzas handed back
 * in the order requeue got them, and whether closed had come by then. */
static char requeued[64];
static int requeued_after_closed;
static struct rec *sm_owner;   /* requeue gets no owner: the link's, for the check */
static void
o_requeue(void *o, struct link *l, struct stanza *st)
{
	struct rec *r = sm_owner;
	const char *b = strstr(st->data, "<body>");

	(void)l;
	assert_null(o);
	assert_non_null(b);
	strncat(requeued, b + 6, 1);
	requeued_after_closed += r->closed;
	stanza_free(st);
}

static const struct link_ops sm_ops = {
	.kind = HANDLE_ROUTE, .ready = o_ready, .drained = o_drained, .requeue = o_requeue,
	.closed = o_closed,
};

/* A message whose body is the single character b. */
static struct stanza *
numbered(char b)
{
	char xml[256];
	int n = snprintf(xml, sizeof(xml), "<message xmlns='jabber:server' "
	    "from='x@remote.example' to='u@a.example'><body>%c</body></message>", b);
	struct stanza *st = stanza_new("message", "x@remote.example", "u@a.example", NULL,
	    false, xml, (size_t)n);

	assert_non_null(st);
	return st;
}

/* What one numbered() stanza costs against the budgets. */
static size_t
numbered_cost(void)
{
	struct stanza *st = numbered('0');
	size_t cost = st->cost;

	stanza_free(st);
	return cost;
}

/* A relay on the loopback leg (a.example, remote.example) to a local server that offers
 * stream management: ready (our <enable/> went out), and with enabled, answered.
 * With cfg.stream_management off: ready, nothing asked. */
/* Run the loop until an <r/> is in c's output (ack_late; at most 50 turns); returns
 * the time it took. */
static double
run_until_r(struct conn *c)
{
	double t0 = ev_time();

	for (int i = 0; i < 50 && strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>") == NULL; i++)
		ev_run(loop, EVRUN_ONCE);
	assert_non_null(strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>"));
	return ev_time() - t0;
}

static void
wait_cb(EV_P_ ev_timer *w, int revents)
{
	(void)EV_A;
	(void)revents;
	*(int *)w->data = 1;
}

/* Run the loop for s seconds (a timer; the link's own timers run meanwhile). */
static void
run_for(double s)
{
	ev_timer t;
	int done = 0;

	ev_timer_init(&t, wait_cb, s, 0.);
	t.data = &done;
	ev_timer_start(loop, &t);
	for (int i = 0; i < 1000 && !done; i++)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	assert_true(done);
}

static struct link *
sm_link(struct rec *r, bool enabled)
{
	struct resolve_target t;
	struct link *l;
	struct conn *c;

	target(&t, "127.0.0.1", "", 0);
	r->self = handle_new(HANDLE_ROUTE, r);
	sm_owner = r;
	ev_now_update(loop);   /* the ack timers count from the loop's now: make it now */
	l = link_connect(&t, STREAM_LOCAL, STREAM_RELAY, "a.example", "remote.example",
	    &sm_ops, r->self);
	assert_non_null(l);
	c = fc_last();
	fc_up(c);
	fc_input(c, HDR("a.example", "remote.example", "PID1") "<stream:features>"
	    "<sm xmlns='urn:xmpp:sm:3'/><dialback xmlns='urn:xmpp:features:dialback'/>"
	    "</stream:features>");
	fc_input(c, "<db:result from='a.example' to='remote.example' type='valid'/>");
	assert_int_equal(r->ready, 1);
	assert_true(!cfg.stream_management ||
	    strstr(c->out.data, "<enable xmlns='urn:xmpp:sm:3'/>") != NULL);
	if (enabled)
		fc_input(c, "<enabled xmlns='urn:xmpp:sm:3'/>");
	buf_reset(&c->out);
	return l;
}

/* Sent stanzas stay with the link until acknowledged (link_send_take keeps the one
 * given, link_send a copy); each <a/> frees the stanzas it covers and asks about the
 * rest. When the link ends, the unacknowledged go back through requeue, newest first
 * (so that putting each at the front of its queue keeps the order), before closed. */
static void
test_sm_keeps_until_acked(void **state)
{
	struct rec r = { 0 };
	struct stanza *st;
	struct conn *c;
	struct link *l;
	size_t alive;

	(void)state;
	cfg.stream_management = true;
	requeued[0] = '\0';
	requeued_after_closed = 0;
	alive = stanza_count_alive();
	l = sm_link(&r, true);
	c = fc_last();
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_int_equal(stanza_count_alive(), alive + 1);   /* kept */
	assert_non_null(strstr(c->out.data, "<body>1</body>"));
	assert_non_null(strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>"));   /* with it */
	buf_reset(&c->out);
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_null(strstr(c->out.data, "<r "));             /* one <r/> outstanding */
	st = numbered('3');
	assert_int_equal(link_send(l, st), 0);               /* a copy is kept */
	stanza_free(st);
	assert_int_equal(stanza_count_alive(), alive + 3);
	buf_reset(&c->out);
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
	assert_int_equal(stanza_count_alive(), alive + 2);
	assert_int_equal(qf_stats.sm_acked, 1);
	assert_null(strstr(c->out.data, "<r "));     /* not again within ack_ride ... */
	/* ... the rest alone, ack_late after the first (the <a/> came at once) */
	assert_true(run_until_r(c) > cfg.ack_late_ms / 1000.0 - 0.2);
	assert_int_equal(r.closed, 0);
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "32");                 /* newest first */
	assert_int_equal(requeued_after_closed, 0);          /* before closed */
	assert_int_equal(r.closed, 1);
	assert_int_equal(qf_stats.sm_requeued, 2);
	assert_int_equal(stanza_count_alive(), alive);
	handle_release(r.self);

	/* all acknowledged: nothing comes back */
	requeued[0] = '\0';
	memset(&r, 0, sizeof(r));
	l = sm_link(&r, true);
	c = fc_last();
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
	assert_int_equal(stanza_count_alive(), alive);
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "");
	assert_int_equal(r.closed, 1);
	handle_release(r.self);
}

/* On a fresh stream-managed link: the first stanza asks at once; then batch - 1 more
 * go without an <r/> and the batch-th takes one along; all acknowledged after (h =
 * batch + 1). */
static void
check_ack_batch(struct link *l, struct conn *c, unsigned batch)
{
	char a[64];

	assert_int_equal(link_send_take(l, numbered('0')), 0);
	assert_non_null(strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>"));
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
	buf_reset(&c->out);
	for (unsigned i = 0; i + 1 < batch; i++) {
		assert_int_equal(link_send_take(l, numbered((char)('a' + i % 26))), 0);
		assert_null(strstr(c->out.data, "<r "));
	}
	assert_int_equal(link_send_take(l, numbered('z')), 0);   /* the batch-th */
	assert_non_null(strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>"));
	buf_reset(&c->out);
	snprintf(a, sizeof(a), "<a xmlns='urn:xmpp:sm:3' h='%u'/>", batch + 1);
	fc_input(c, a);
}

/* When <r/> goes (link.c ask_ack_soon), with the defaults: the first stanza asks at
 * once (in its record); within timeouts { ack_ride } (0.5 s) of that <r/>, limits {
 * ack_batch } (16) unacknowledged stanzas or half of limits { queue_bytes } held ask at
 * once (a sender must not stall on a held-back request), fewer wait for an <r/> alone
 * timeouts { ack_late } (2 s) after the last, unless a stanza sent once ack_ride has
 * passed takes one along. */
static void
test_sm_ack_batching(void **state)
{
	struct rec r = { 0 };
	struct conn *c;
	struct link *l;
	size_t alive, qb = cfg.queue_bytes;

	(void)state;
	cfg.stream_management = true;
	requeued[0] = '\0';
	alive = stanza_count_alive();
	l = sm_link(&r, true);
	c = fc_last();
	check_ack_batch(l, c, 16);
	assert_int_equal(stanza_count_alive(), alive);
	assert_int_equal(qf_stats.sm_acked, 17);
	buf_reset(&c->out);
	/* half the queue budget held asks at once too */
	cfg.queue_bytes = 4 * numbered_cost();
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_null(strstr(c->out.data, "<r "));
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_non_null(strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>"));
	cfg.queue_bytes = qb;
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='19'/>");
	/* one more stanza within ack_ride waits for an <r/> alone, ack_late after the
	 * last (sent just now) */
	buf_reset(&c->out);
	assert_int_equal(link_send_take(l, numbered('3')), 0);
	assert_null(strstr(c->out.data, "<r "));
	assert_true(run_until_r(c) > 2.0 - 0.2);
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='20'/>");
	assert_int_equal(stanza_count_alive(), alive);
	/* a stanza ack_ride after the last <r/>: one rides with it, and a stanza right
	 * behind it does not ask */
	buf_reset(&c->out);
	run_for(0.5 + 0.05);
	assert_null(strstr(c->out.data, "<r "));
	assert_int_equal(link_send_take(l, numbered('4')), 0);
	assert_non_null(strstr(c->out.data, "<body>4</body></message><r xmlns='urn:xmpp:sm:3'/>"));
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='21'/>");
	buf_reset(&c->out);
	assert_int_equal(link_send_take(l, numbered('5')), 0);
	assert_null(strstr(c->out.data, "<r "));
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='22'/>");
	assert_int_equal(stanza_count_alive(), alive);
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "");
	handle_release(r.self);
}

/* The same rule as configured: limits { ack_batch 4 }, timeouts { ack_ride 200ms;
 * ack_late 600ms }. The 4th unacknowledged stanza asks at once, not the 3rd; fewer
 * get an <r/> alone 0.6 s after the last (not after the default 2 s); a stanza 0.2 s
 * after the last <r/> takes one along (not only after the default 0.5 s). */
static void
test_sm_ack_configured(void **state)
{
	struct rec r = { 0 };
	struct conn *c;
	struct link *l;
	size_t alive;
	double t;

	(void)state;
	cfg.stream_management = true;
	cfg.ack_batch = 4;
	cfg.ack_ride_ms = 200;
	cfg.ack_late_ms = 600;
	requeued[0] = '\0';
	alive = stanza_count_alive();
	l = sm_link(&r, true);
	c = fc_last();
	check_ack_batch(l, c, 4);                   /* the 4th asks, not the 3rd */
	assert_int_equal(stanza_count_alive(), alive);
	/* one within ack_ride: an <r/> alone after ack_late, well before 2 s */
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_null(strstr(c->out.data, "<r "));
	t = run_until_r(c);
	assert_true(t > 0.6 - 0.2);
	assert_true(t < 1.5);
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='6'/>");
	/* ack_ride after that <r/>, the next stanza takes one along */
	buf_reset(&c->out);
	run_for(0.2 + 0.05);
	assert_null(strstr(c->out.data, "<r "));
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_non_null(strstr(c->out.data, "<body>2</body></message><r xmlns='urn:xmpp:sm:3'/>"));
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='7'/>");
	assert_int_equal(stanza_count_alive(), alive);
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "");
	handle_release(r.self);
}

/* Stanzas sent at ready go out behind <enable/> and are kept; when <enabled/> comes
 * they are asked about at once (otherwise nothing would ask until the next send, and
 * an idle close would send them all again). <failed/> instead: they were delivered as
 * without stream management, and nothing is kept any more. */
static void
test_sm_sent_before_enabled(void **state)
{
	struct rec r = { 0 };
	struct conn *c;
	struct link *l;
	size_t alive;

	(void)state;
	cfg.stream_management = true;
	requeued[0] = '\0';
	alive = stanza_count_alive();
	l = sm_link(&r, false);
	c = fc_last();
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_int_equal(stanza_count_alive(), alive + 2);
	assert_null(strstr(c->out.data, "<r "));             /* not enabled yet */
	buf_reset(&c->out);
	fc_input(c, "<enabled xmlns='urn:xmpp:sm:3'/>");
	assert_non_null(strstr(c->out.data, "<r xmlns='urn:xmpp:sm:3'/>"));
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
	assert_int_equal(stanza_count_alive(), alive);
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "");
	handle_release(r.self);

	/* refused: what was kept waits for TCP's proof instead, like later sends */
	memset(&r, 0, sizeof(r));
	fc_acked = 0;
	l = sm_link(&r, false);
	c = fc_last();
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_int_equal(stanza_count_alive(), alive + 1);
	fc_input(c, "<failed xmlns='urn:xmpp:sm:3'/>");
	assert_int_equal(stanza_count_alive(), alive + 1);
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_int_equal(stanza_count_alive(), alive + 2);
	assert_null(strstr(c->out.data, "<r "));             /* no ack is asked for */
	assert_int_equal(c->state, CONN_OPEN);
	fc_acked = UINT64_MAX;                               /* the peer's TCP took all */
	ev_run(loop, EVRUN_ONCE);
	assert_int_equal(stanza_count_alive(), alive);
	assert_int_equal(qf_stats.tcp_proven, 2);
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "");
	handle_release(r.self);
}

/* Without stream management a relay keeps each stanza until the peer's TCP has
 * acknowledged its last byte (conn_out_acked against the mark taken when it was
 * queued), polled from the loop. What a dying link leaves unproven goes back (the
 * loopback leg: requeue; the internet's route bounces it, tests/integ/56). Room at
 * limits { queue_bytes } comes back with TCP's proofs. */
static void
test_tcp_proof(void **state)
{
	struct rec r = { 0 };
	struct stanza *st;
	struct conn *c;
	struct link *l;
	size_t alive;
	uint64_t m1;

	(void)state;
	cfg.stream_management = false;
	requeued[0] = '\0';
	fc_acked = 0;
	alive = stanza_count_alive();
	l = sm_link(&r, false);
	c = fc_last();
	assert_null(strstr(c->out.data, "<enable"));
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	m1 = c->out.len;
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_int_equal(link_send_take(l, numbered('3')), 0);
	assert_int_equal(stanza_count_alive(), alive + 3);
	fc_acked = m1 - 1;                        /* one byte short of the first */
	ev_run(loop, EVRUN_ONCE);
	assert_int_equal(stanza_count_alive(), alive + 3);
	fc_acked = m1;                            /* the first, whole */
	ev_run(loop, EVRUN_ONCE);
	assert_int_equal(stanza_count_alive(), alive + 2);
	assert_int_equal(qf_stats.tcp_proven, 1);
	/* the bound: nothing more fits until TCP proves more */
	cfg.queue_bytes = 2 * numbered_cost();
	st = numbered('4');
	assert_int_equal(link_send_take(l, st), -1);
	assert_true(link_send_blocked(l));
	fc_acked = UINT64_MAX;
	assert_int_equal(link_send_take(l, st), 0);   /* the proof is looked at first */
	assert_int_equal(stanza_count_alive(), alive + 1);
	fc_acked = 0;
	fc_destroy(c, "peer-reset");
	assert_string_equal(requeued, "4");       /* unproven: back to its route */
	assert_int_equal(qf_stats.sm_requeued, 1);
	assert_int_equal(stanza_count_alive(), alive);
	handle_release(r.self);
	cfg.queue_bytes = 1 << 20;
}

/* limits { queue_bytes } bounds what a link keeps unacknowledged: a send beyond it is
 * refused (the stanza stays the caller's) and the link is blocked until acks bring
 * what it keeps under half; then drained. */
static void
test_sm_queue_bytes(void **state)
{
	struct rec r = { 0 };
	struct stanza *st = numbered('4');
	struct conn *c;
	struct link *l;

	(void)state;
	cfg.stream_management = true;
	cfg.queue_bytes = 3 * st->cost;                      /* room for three */
	l = sm_link(&r, true);
	c = fc_last();
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_int_equal(link_send_take(l, numbered('2')), 0);
	assert_int_equal(link_send_take(l, numbered('3')), 0);
	assert_false(link_send_blocked(l));
	buf_reset(&c->out);
	assert_int_equal(link_send_take(l, st), -1);
	assert_true(link_send_blocked(l));
	assert_null(strstr(c->out.data, "<body>4</body>"));
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='1'/>");    /* two left: above half */
	assert_true(link_send_blocked(l));
	assert_int_equal(r.drained, 0);
	fc_input(c, "<a xmlns='urn:xmpp:sm:3' h='2'/>");    /* one left: under half */
	assert_int_equal(r.drained, 1);
	assert_false(link_send_blocked(l));
	assert_int_equal(link_send_take(l, st), 0);
	assert_non_null(strstr(c->out.data, "<body>4</body>"));
	requeued[0] = '\0';
	fc_destroy(c, "peer-closed");
	assert_string_equal(requeued, "43");
	handle_release(r.self);

	/* a single stanza larger than the bound still goes when nothing is unacked */
	cfg.queue_bytes = 1;
	memset(&r, 0, sizeof(r));
	l = sm_link(&r, true);
	c = fc_last();
	st = numbered('2');
	assert_int_equal(link_send_take(l, numbered('1')), 0);
	assert_int_equal(link_send_take(l, st), -1);
	stanza_free(st);
	fc_destroy(c, "peer-closed");
	handle_release(r.self);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verify_learns_peercaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_learns_new_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_gone_or_detached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relay_deadline_and_send, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_riders_on_initiator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_refiled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bidi_receiver_rider, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sm_keeps_until_acked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sm_ack_batching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sm_ack_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sm_sent_before_enabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sm_queue_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_proof, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
