/* tests/unit/test_route.c - the router: queues, set-up, bounces, backpressure.
 * SPDX-License-Identifier: ISC
 * Links route.c against the fake link layer (tests/fake/link.c): no sockets, no streams.
 * The test plays the links' side — a receiving link hands stanzas in, the route's
 * outgoing link connects, gets ready, fails or drains — and checks what the route did
 * with them. Timers run on virtual time (tests/fake/clock.c): a minute of set-up bound
 * passes at once and exactly. The multiplexing tests (test_mux_*) let routes ride one
 * another's links, as the fake link layer models link.c's riders. The retry tests
 * (test_retry_*) set timeouts { retry }: failed set-ups keep their stanzas and try again
 * after the remote domain's backoff (s2s/backoff.c); "show routes" says how each route
 * stands (the test keeps the handler route.c registers: no status socket), "show queues"
 * what waits and for how long, "retry DOMAIN" ends a domain's backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "../../core/config.h"
#include "../../core/buf.h"
#include "../../core/handle.h"
#include "../../core/stats.h"
#include "../../core/status.h"
#include "../../s2s/backoff.h"
#include "../../s2s/route.h"
#include "../../s2s/stanza.h"
#include "../../s2s/verify.h"
#include "../fake/clock.h"
#include "../fake/link.h"

static struct cfg_domain dom_a = { .name = "a.example" };
static struct cfg_domain dom_b = { .name = "b.example" };
static struct cfg_peer peer_r = { .name = "remote.example", .address = "192.0.2.9",
    .port = 5269 };
/* another remote domain on remote.example's server (same address and port) */
static struct cfg_peer peer_o = { .name = "other.example", .address = "192.0.2.9",
    .port = 5269 };
static struct config cfg;
static struct ev_loop *loop;

/* The status socket's table, as route.c fills it: the test keeps "show routes" and asks
 * it directly (no socket; core/status.c stays out of the binary). */
struct status {
	int unused;
};
static struct status fake_status;
static status_stream_fn show_routes, show_queues;
static status_cmd_fn retry_cmd;

int
status_register(struct status *st, const char *words, const char *usage, status_cmd_fn fn,
    void *arg)
{
	(void)st;
	(void)usage;
	(void)arg;
	if (strcmp(words, "retry") == 0)
		retry_cmd = fn;
	return 0;
}

int
status_register_stream(struct status *st, const char *words, const char *usage,
    status_stream_fn fn, void *arg)
{
	(void)st;
	(void)usage;
	(void)arg;
	if (strcmp(words, "show routes") == 0)
		show_routes = fn;
	else if (strcmp(words, "show queues") == 0)
		show_queues = fn;
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	dom_a.next = NULL;
	peer_r.next = NULL;
	cfg.domains = &dom_a;
	cfg.peers = &peer_r;     /* remote.example at a fixed address: no DNS */
	snprintf(cfg.local_server_address, sizeof(cfg.local_server_address), "127.0.0.1");
	cfg.local_server_port = 5271;
	cfg.setup_timeout_ms = 60000;
	cfg.attempt_delay_ms = 250;
	cfg.queue_bytes = 1 << 20;
	cfg.memory_limit = (size_t)1 << 30;
	cfg.max_verifications = 16;
	memset(&qf_stats, 0, sizeof(qf_stats));
	loop = ev_loop_new(EVFLAG_AUTO);
	route_init(loop, &cfg, NULL, &fake_status);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	vclock_thaw();
	route_free_all();
	fl_reset();
	assert_int_equal(stanza_count_alive(), 0);   /* nothing leaked or lost */
	assert_int_equal(handle_count(), 0);
	ev_loop_destroy(loop);
	return 0;
}

/* A stanza from the internet for the local server, handed in by a receiving link. */
static void
from_internet(struct link *in, const char *body)
{
	fl_stanza(in, "x@remote.example", "u@a.example", body);
}

#define EPS (1.0 / 64)   /* a little before or after a timer is due */

/* Virtual time passes (in quarter-second steps: timers fire in order). */
static void
passes(double seconds)
{
	vclock_advance(loop, seconds, 0.25);
}

/* A route's state as "show routes" gives it ("none": there is no such route). */
static const char *
route_state(const char *dir, const char *local, const char *remote)
{
	static char state[32];
	struct buf out;
	uint64_t cursor = 0;
	char key[600];
	const char *p;

	assert_non_null(show_routes);
	buf_init(&out, 1 << 20);
	while (show_routes(NULL, "", &out, &cursor) == 1)
		;
	snprintf(key, sizeof(key), "route.%s.%s.%s.state=", dir, local, remote);
	snprintf(state, sizeof(state), "none");
	if ((p = strstr(out.data, key)) != NULL)
		assert_int_equal(sscanf(p + strlen(key), "%31[a-z]", state), 1);
	buf_free(&out);
	return state;
}

/* Stanzas queue while the route's stream is set up (one set-up for all of them), go
 * out in order when it is ready, and later ones go straight out. */
static void
test_queue_then_drain(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;

	(void)state;
	from_internet(in, "one");
	assert_int_equal(fl_attempts(), 1);
	out = fl_attempt(0);
	assert_int_equal(out->side, STREAM_LOCAL);          /* IN route: the local server */
	assert_int_equal(out->purpose, STREAM_RELAY);
	assert_string_equal(out->local, "a.example");
	assert_string_equal(out->remote, "remote.example");
	assert_string_equal(out->target, "127.0.0.1:5271");
	from_internet(in, "two");
	assert_int_equal(fl_attempts(), 1);
	assert_int_equal(out->n_sent, 0);                    /* queued while connecting */
	assert_true(route_busy());
	fl_connected(out);
	assert_int_equal(out->n_sent, 0);                    /* TCP up is not ready */
	fl_ready(out);
	assert_int_equal(out->n_sent, 2);
	assert_non_null(strstr(out->sent[0], "<body>one</body>"));
	assert_non_null(strstr(out->sent[1], "<body>two</body>"));
	from_internet(in, "three");                          /* ready: straight out */
	assert_int_equal(out->n_sent, 3);
	assert_false(route_busy());
	assert_int_equal(qf_stats.stanzas_in, 3);
	assert_int_equal(qf_stats.bounces, 0);
}

/* Set-up fails: every queued stanza goes back to its sender (over the opposite route,
 * here to remote.example's fixed address) with the condition the failure calls for. */
static void
check_bounce(const char *reason, bool timed_out, const char *cond, const char *type)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *back;
	char want[64];

	from_internet(in, "lost");
	assert_int_equal(fl_attempts(), 1);
	fl_closed(fl_attempt(0), reason, timed_out);         /* the only target failed */
	assert_int_equal(qf_stats.bounces, 1);
	assert_int_equal(qf_stats.route_retries, 0);         /* timeouts { retry 0 } */
	assert_int_equal(backoff_failures("(local server)"), 0);
	assert_int_equal(fl_attempts(), 2);                  /* the error's own route */
	back = fl_attempt(1);
	assert_int_equal(back->side, STREAM_INTERNET);
	assert_string_equal(back->local, "a.example");
	assert_string_equal(back->remote, "remote.example");
	assert_string_equal(back->target, "192.0.2.9:5269");
	fl_connected(back);
	fl_ready(back);
	assert_int_equal(back->n_sent, 1);
	assert_non_null(strstr(back->sent[0], cond));
	snprintf(want, sizeof(want), "type='%s'", type);
	assert_non_null(strstr(back->sent[0], want));
	assert_non_null(strstr(back->sent[0], "x@remote.example"));
	assert_false(route_busy());
}

static void
test_bounce_not_found(void **state)
{
	(void)state;
	check_bounce("connect-failed", false, "remote-server-not-found", "cancel");
}

static void
test_bounce_timeout(void **state)
{
	(void)state;
	check_bounce("connect-timeout", true, "remote-server-timeout", "wait");
}

/* The route's own bound on the whole set-up: a stream that connected but never got
 * ready is closed with setup-timeout and the queue bounced with remote-server-timeout. */
static void
test_setup_timeout(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;

	(void)state;
	vclock_freeze(loop);
	from_internet(in, "slow");                           /* timeouts { setup 60s } */
	out = fl_attempt(0);
	fl_connected(out);
	vclock_advance(loop, 59.9, 1.0);
	assert_false(out->closed);
	assert_int_equal(qf_stats.bounces, 0);
	vclock_advance(loop, 0.2, 0);
	assert_true(out->closed);
	assert_string_equal(out->close_reason, "setup-timeout");
	assert_null(out->ops);                               /* detached before closing */
	assert_int_equal(qf_stats.bounces, 1);
	fl_connected(fl_attempt(1));
	fl_ready(fl_attempt(1));
	assert_int_equal(fl_attempt(1)->n_sent, 1);
	assert_non_null(strstr(fl_attempt(1)->sent[0], "remote-server-timeout"));
	passes(EPS);                                         /* the empty route is freed */
	assert_string_equal(route_state("in", "a.example", "remote.example"), "none");
}

/* A ready route whose link refuses a stanza (output full) waits for drained. */
static void
test_drained(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;

	(void)state;
	for (int i = 0; i < 4; i++)
		from_internet(in, "m");
	out = fl_attempt(0);
	out->send_room = 1;
	fl_connected(out);
	fl_ready(out);
	assert_int_equal(out->n_sent, 1);
	assert_true(out->blocked);
	from_internet(in, "m");                              /* behind the others */
	assert_int_equal(out->n_sent, 1);
	out->send_room = -1;
	fl_drained(out);
	assert_int_equal(out->n_sent, 5);
	assert_false(route_busy());
}

/* limits { queue_bytes }: the sender whose stanza takes the queue over the budget is
 * paused (nothing bounced, nothing dropped) and woken once the queue is at half. */
static void
test_backpressure(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;
	char body[201];
	struct stanza *probe;
	size_t cost, n = 0, k = 0;

	(void)state;
	memset(body, 'b', 200);
	body[200] = '\0';
	{
		char xml[512];
		int len = snprintf(xml, sizeof(xml), "<message xmlns='jabber:server' "
		    "from='x@remote.example' to='u@a.example'><body>%s</body></message>", body);

		probe = stanza_new("message", "x@remote.example", "u@a.example", NULL, false,
		    xml, (size_t)len);
		cost = probe->cost;
		stanza_free(probe);
	}
	cfg.queue_bytes = 10 * cost + cost / 2;
	while (in->paused_in == NULL && n < 100) {
		from_internet(in, body);
		n++;
	}
	assert_int_equal(n, 11);                             /* 11 * cost > 10.5 * cost */
	assert_non_null(in->paused_in);
	assert_int_equal(qf_stats.reads_paused, 1);
	assert_int_equal(qf_stats.bounces, 0);
	/* the queue must get down to half (5.25 costs: 5 left) before the sender wakes */
	while ((n - k) * cost > cfg.queue_bytes / 2)
		k++;
	assert_int_equal(k, 6);
	out = fl_attempt(0);
	out->send_room = (int)k - 1;
	fl_connected(out);
	fl_ready(out);
	assert_int_equal(out->n_sent, k - 1);
	assert_non_null(in->paused_in);                      /* 6 left: still over half */
	assert_int_equal(in->woken, 0);
	out->send_room = 1;
	fl_drained(out);
	assert_null(in->paused_in);
	assert_int_equal(in->woken, 1);
	out->send_room = -1;
	fl_drained(out);
	assert_int_equal(out->n_sent, n);                    /* every one delivered */
}

/* limits { memory }: a sender whose stanza takes all stanzas alive over the budget is
 * paused, and the 0.25 s check wakes it once they are back under three quarters. */
static void
test_memory_budget(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;
	int n = 0;

	(void)state;
	vclock_freeze(loop);
	cfg.memory_limit = 2000;
	while (in->paused_in == NULL && n < 100) {
		from_internet(in, "0123456789012345678901234567890123456789");
		n++;
	}
	assert_true(stanza_bytes_alive() > cfg.memory_limit);
	assert_int_equal(qf_stats.reads_paused_memory, 1);
	assert_int_equal(qf_stats.reads_paused, 0);          /* the route's own budget is fine */
	out = fl_attempt(0);
	fl_connected(out);
	fl_ready(out);                                       /* everything goes out */
	assert_int_equal(out->n_sent, (size_t)n);
	assert_int_equal(stanza_bytes_alive(), 0);
	assert_non_null(in->paused_in);                      /* not before the check runs */
	vclock_advance(loop, 0.2, 0);
	assert_non_null(in->paused_in);
	vclock_advance(loop, 0.1, 0);
	assert_null(in->paused_in);
	assert_int_equal(in->woken, 1);
}

/* A receiving link's dialback job is handed to verify.c; when the budget of
 * verifications is spent the db:result gets a dialback error instead. */
static void
test_verify_refused(void **state)
{
	struct link *r1 = fl_receiver(STREAM_INTERNET, route_receiver_ops());
	struct link *r2 = fl_receiver(STREAM_INTERNET, route_receiver_ops());

	(void)state;
	cfg.max_verifications = 1;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k1");
	assert_int_equal(verify_jobs(), 1);
	assert_int_equal(r1->dialback_errors, 0);
	fl_verify_needed(r2, "a.example", "remote.example", "id2", "k2");
	assert_int_equal(verify_jobs(), 1);
	assert_int_equal(r2->dialback_errors, 1);
	assert_int_equal(qf_stats.verify_refused, 1);
}

/* ---- multiplexing: routes riding one another's links ---- */

/* policy { multiplex on } (limits { link_pairs 64 }), a second local domain b.example,
 * and other.example served by remote.example's server. */
static void
mux_on(void)
{
	cfg.multiplex = true;
	cfg.link_pairs = 64;
	dom_a.next = &dom_b;
	peer_r.next = &peer_o;
}

/* Was a stanza with this body sent on l? */
static bool
sent_body(const struct link *l, const char *body)
{
	char want[128];

	snprintf(want, sizeof(want), "<body>%s</body>", body);
	for (size_t i = 0; i < l->n_sent; i++)
		if (strstr(l->sent[i], want) != NULL)
			return true;
	return false;
}

/* Two OUT routes to remote.example from two local domains: one connection attempt;
 * the second route rides it, its db:result piggybacked once the stream is ready, and
 * its stanzas go out on that link when the receiving server says valid. */
static void
test_mux_out_rides(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *out;
	const struct fl_rider *r;

	(void)state;
	mux_on();
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	assert_int_equal(fl_attempts(), 1);
	out = fl_attempt(0);
	assert_int_equal(out->side, STREAM_INTERNET);
	assert_string_equal(out->local, "a.example");
	assert_string_equal(out->target, "192.0.2.9:5269");
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	assert_int_equal(fl_attempts(), 1);                  /* rides, no second attempt */
	r = fl_rider(out, "b.example", "remote.example");
	assert_non_null(r);
	assert_int_equal(r->state, FL_RIDER_WAITING);        /* the link is still setting up */
	assert_int_equal(qf_stats.pairs_riding, 1);
	assert_true(link_shared(out));
	fl_connected(out);
	fl_ready(out);
	assert_int_equal(out->n_sent, 1);                    /* the owner's own pair */
	assert_true(sent_body(out, "a1"));
	assert_int_equal(out->piggybacked, 1);               /* db:result for (b, remote) */
	assert_int_equal(r->state, FL_RIDER_ASKED);
	fl_stanza(in, "v@b.example", "x@remote.example", "b2");
	assert_int_equal(out->n_sent, 1);                    /* queued until the verdict */
	assert_true(route_busy());
	fl_pair_verdict(out, "b.example", "remote.example", true);
	assert_int_equal(r->state, FL_RIDER_VALID);
	assert_int_equal(out->n_sent, 3);
	assert_non_null(strstr(out->sent[1], "<body>b1</body>"));   /* in order */
	assert_non_null(strstr(out->sent[2], "<body>b2</body>"));
	fl_stanza(in, "v@b.example", "x@remote.example", "b3");     /* ready: straight out */
	assert_int_equal(out->n_sent, 4);
	assert_int_equal(fl_attempts(), 1);
	assert_false(route_busy());
	assert_int_equal(qf_stats.bounces, 0);
}

/* The receiving server refuses the piggybacked db:result: the rider is off the link
 * (which stays up for its owner) and its route connects on its own; the queued stanza
 * goes out there, nothing is bounced. */
static void
test_mux_refused_connects(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *out, *own;

	(void)state;
	mux_on();
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	out = fl_attempt(0);
	fl_connected(out);
	fl_ready(out);
	assert_int_equal(fl_attempts(), 1);
	fl_pair_verdict(out, "b.example", "remote.example", false);
	assert_null(fl_rider(out, "b.example", "remote.example"));
	assert_false(out->closed);                           /* the owner keeps it */
	assert_non_null(out->ops);
	assert_int_equal(fl_attempts(), 2);                  /* connects on its own */
	own = fl_attempt(1);
	assert_string_equal(own->local, "b.example");
	assert_string_equal(own->remote, "remote.example");
	assert_string_equal(own->target, "192.0.2.9:5269");
	assert_int_equal(own->nriders, 0);
	assert_int_equal(own->n_sent, 0);
	fl_connected(own);
	fl_ready(own);
	assert_int_equal(own->n_sent, 1);
	assert_true(sent_body(own, "b1"));
	assert_int_equal(out->n_sent, 1);                    /* only a1 on the shared link */
	fl_stanza(in, "v@b.example", "x@remote.example", "b2");
	assert_true(sent_body(own, "b2"));
	assert_int_equal(qf_stats.bounces, 0);
	assert_false(route_busy());
}

/* The shared link ends while both routes have stanzas queued behind a full output:
 * each starts a new set-up (the rider rides the owner's new attempt), nothing is
 * bounced or lost, and everything goes out on the new link once ready and verified. */
static void
test_mux_shared_link_closes(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *out, *next;
	const struct fl_rider *r;

	(void)state;
	mux_on();
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	out = fl_attempt(0);
	fl_connected(out);
	fl_ready(out);
	fl_pair_verdict(out, "b.example", "remote.example", true);
	assert_int_equal(out->n_sent, 2);
	out->send_room = 0;                                  /* the output is full */
	fl_stanza(in, "u@a.example", "x@remote.example", "a2");
	fl_stanza(in, "v@b.example", "x@remote.example", "b2");
	fl_stanza(in, "v@b.example", "x@remote.example", "b3");
	assert_int_equal(out->n_sent, 2);
	assert_true(route_busy());
	fl_closed(out, "peer-closed", false);
	assert_int_equal(qf_stats.bounces, 0);
	assert_int_equal(fl_attempts(), 2);                  /* one new attempt for both */
	next = fl_attempt(1);
	assert_string_equal(next->local, "a.example");
	r = fl_rider(next, "b.example", "remote.example");
	assert_non_null(r);
	assert_int_equal(r->state, FL_RIDER_WAITING);
	fl_connected(next);
	fl_ready(next);
	assert_int_equal(next->n_sent, 1);
	assert_true(sent_body(next, "a2"));
	fl_pair_verdict(next, "b.example", "remote.example", true);
	assert_int_equal(next->n_sent, 3);
	assert_non_null(strstr(next->sent[1], "<body>b2</body>"));
	assert_non_null(strstr(next->sent[2], "<body>b3</body>"));
	assert_int_equal(qf_stats.bounces, 0);
	assert_false(route_busy());
}

/* IN routes (to the local server) for different pairs all share the one loopback link:
 * any initiator on the local side will do, whatever the pair. */
static void
test_mux_in_routes_share(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;

	(void)state;
	mux_on();
	fl_stanza(in, "x@remote.example", "u@a.example", "1");
	fl_stanza(in, "y@other.example", "u@a.example", "2");
	fl_stanza(in, "x@remote.example", "u@b.example", "3");
	assert_int_equal(fl_attempts(), 1);
	out = fl_attempt(0);
	assert_int_equal(out->side, STREAM_LOCAL);
	assert_string_equal(out->target, "127.0.0.1:5271");
	assert_int_equal(out->nriders, 2);
	fl_connected(out);
	fl_ready(out);
	assert_int_equal(out->n_sent, 1);
	assert_int_equal(out->piggybacked, 2);
	fl_pair_verdict(out, "a.example", "other.example", true);
	fl_pair_verdict(out, "b.example", "remote.example", true);
	assert_int_equal(out->n_sent, 3);
	assert_true(sent_body(out, "2") && sent_body(out, "3"));
	/* a fourth pair rides the ready link at once (db:result on its way) */
	fl_stanza(in, "z@third.example", "u@a.example", "4");
	assert_int_equal(fl_attempts(), 1);
	assert_int_equal(out->piggybacked, 3);
	fl_pair_verdict(out, "a.example", "third.example", true);
	assert_int_equal(out->n_sent, 4);
	assert_int_equal(qf_stats.bounces, 0);
	assert_false(route_busy());
}

/* A rider whose verdict never comes: its own set-up bound ends it; it leaves the link
 * (never closes it: the owner's route goes on using it) and bounces its queue. */
static void
test_mux_rider_setup_timeout(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *out, *back;

	(void)state;
	vclock_freeze(loop);
	mux_on();
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	out = fl_attempt(0);
	fl_connected(out);
	fl_ready(out);
	vclock_advance(loop, 10, 1.0);
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	assert_non_null(fl_rider(out, "b.example", "remote.example"));
	assert_int_equal(out->piggybacked, 1);
	vclock_advance(loop, 59.9, 1.0);                     /* timeouts { setup 60s } */
	assert_non_null(fl_rider(out, "b.example", "remote.example"));
	assert_int_equal(qf_stats.bounces, 0);
	vclock_advance(loop, 0.2, 0);
	assert_null(fl_rider(out, "b.example", "remote.example"));
	assert_false(link_shared(out));
	assert_false(out->closed);                           /* left, not closed */
	assert_non_null(out->ops);                           /* still its owner's */
	assert_int_equal(qf_stats.bounces, 1);
	/* the bounce goes to the local server (b.example's sender) */
	assert_int_equal(fl_attempts(), 2);
	back = fl_attempt(1);
	assert_int_equal(back->side, STREAM_LOCAL);
	fl_connected(back);
	fl_ready(back);
	assert_int_equal(back->n_sent, 1);
	assert_non_null(strstr(back->sent[0], "remote-server-timeout"));
	/* the owner's route still sends on it; a late verdict reaches nobody */
	fl_stanza(in, "u@a.example", "x@remote.example", "a2");
	assert_int_equal(out->n_sent, 2);
	fl_pair_verdict(out, "b.example", "remote.example", true);
	assert_int_equal(out->n_sent, 2);
	assert_false(route_busy());
}

/* policy { multiplex off }: every pair sets up its own link. */
static void
test_mux_off(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops());
	struct link *rx = fl_receiver(STREAM_INTERNET, route_receiver_ops());

	(void)state;
	mux_on();
	cfg.multiplex = false;
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	fl_stanza(rx, "x@remote.example", "u@a.example", "i1");
	fl_stanza(rx, "x@remote.example", "u@b.example", "i2");
	assert_int_equal(fl_attempts(), 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(fl_attempt(i)->nriders, 0);
		fl_connected(fl_attempt(i));
		fl_ready(fl_attempt(i));
		assert_int_equal(fl_attempt(i)->n_sent, 1);
		assert_int_equal(fl_attempt(i)->piggybacked, 0);
	}
	assert_string_equal(fl_attempt(1)->local, "b.example");
	assert_int_equal(qf_stats.pairs_riding, 0);
	assert_false(route_busy());
}

/* Another remote domain on the same server (same address and port): it rides the
 * attempt in flight, and once the stream is ready it may stay only if the certificate
 * covers that domain too; if not, it connects on its own. */
static void
test_mux_same_server(void **state)
{
	(void)state;
	mux_on();
	for (int covered = 0; covered <= 1; covered++) {
		struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *out;
		size_t base = fl_attempts();

		fl_stanza(in, "u@a.example", "x@remote.example", "r1");
		out = fl_attempt(base);
		out->covers = covered ? "other.example" : NULL;
		fl_stanza(in, "u@a.example", "y@other.example", "o1");
		assert_int_equal(fl_attempts(), base + 1);
		assert_non_null(fl_rider(out, "a.example", "other.example"));
		fl_connected(out);
		fl_ready(out);
		if (covered) {
			assert_int_equal(out->piggybacked, 1);
			fl_pair_verdict(out, "a.example", "other.example", true);
			assert_int_equal(out->n_sent, 2);
			assert_true(sent_body(out, "o1"));
			assert_int_equal(fl_attempts(), base + 1);
		} else {
			assert_int_equal(out->piggybacked, 0);   /* never asked */
			assert_null(fl_rider(out, "a.example", "other.example"));
			assert_int_equal(fl_attempts(), base + 2);
			assert_string_equal(fl_attempt(base + 1)->remote, "other.example");
			fl_connected(fl_attempt(base + 1));
			fl_ready(fl_attempt(base + 1));
			assert_true(sent_body(fl_attempt(base + 1), "o1"));
			assert_int_equal(out->n_sent, 1);
		}
		assert_int_equal(qf_stats.bounces, 0);
		assert_false(route_busy());
		/* next round: start afresh */
		for (struct link *l = fl_all; l != NULL; l = l->next)
			if (!l->receiver)
				fl_closed(l, "test", false);
	}
}

/* XEP-0288: a receiving link with bidi carries back the pairs its peer authenticated
 * on it: the OUT route for such a pair uses it, no connection is made; another pair
 * still connects. */
static void
test_mux_bidi_receiver(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops());
	struct link *rx = fl_receiver(STREAM_INTERNET, route_receiver_ops());

	(void)state;
	mux_on();
	fl_carry(rx, "a.example", "remote.example");
	fl_stanza(in, "u@a.example", "x@remote.example", "without bidi");
	assert_int_equal(fl_attempts(), 1);                  /* no bidi: not carried */
	fl_connected(fl_attempt(0));
	fl_ready(fl_attempt(0));
	assert_true(sent_body(fl_attempt(0), "without bidi"));
	fl_closed(fl_attempt(0), "idle-timeout", false);     /* nothing queued: idle */
	rx->bidi = true;
	fl_stanza(in, "u@a.example", "x@remote.example", "back");
	assert_int_equal(fl_attempts(), 1);
	assert_int_equal(rx->n_sent, 1);
	assert_true(sent_body(rx, "back"));
	assert_non_null(fl_rider(rx, "a.example", "remote.example"));
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	assert_int_equal(fl_attempts(), 2);
	assert_string_equal(fl_attempt(1)->local, "b.example");
	assert_int_equal(rx->n_sent, 1);
	/* the receiving link ends: the route rides b.example's link to remote.example */
	fl_closed(rx, "peer-closed", false);
	fl_stanza(in, "u@a.example", "x@remote.example", "after");
	assert_int_equal(fl_attempts(), 2);
	assert_non_null(fl_rider(fl_attempt(1), "a.example", "remote.example"));
	fl_connected(fl_attempt(1));
	fl_ready(fl_attempt(1));
	fl_pair_verdict(fl_attempt(1), "a.example", "remote.example", true);
	assert_true(sent_body(fl_attempt(1), "b1"));
	assert_true(sent_body(fl_attempt(1), "after"));
	assert_int_equal(qf_stats.bounces, 0);
	assert_false(route_busy());
}

/* A link whose pair table is full (limits { link_pairs }) takes no rider: the next
 * pair connects on its own. */
static void
test_mux_link_full(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *out;

	(void)state;
	mux_on();
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	out = fl_attempt(0);
	out->pairs_max = 2;                                  /* its own pair and one rider */
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	fl_stanza(in, "u@a.example", "y@other.example", "o1");
	assert_int_equal(out->nriders, 1);
	assert_int_equal(fl_attempts(), 2);
	assert_string_equal(fl_attempt(1)->remote, "other.example");
	assert_int_equal(qf_stats.pairs_riding, 1);
}

/* ---- retry with memory (timeouts { retry }, s2s/backoff.c) ---- */

/* timeouts { retry 60s }: a server that cannot be reached keeps the stanzas; the route
 * waits (show routes: waiting) and tries again after 1 s, then 2 s, then 4 s, whatever
 * the failure (refused, timed out); stanzas that arrive meanwhile join the queue with no
 * attempt of their own. Once an attempt gets ready everything goes out in order and the
 * server's failures are forgotten. IN routes remember them as "(local server)". */
static void
test_retry_backoff(void **state)
{
	static const char *const bodies[] = { "one", "two", "three", "four", "five", "six",
	    "seven" };
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *out;
	double delay = 1;
	size_t n = 0;

	(void)state;
	cfg.retry_ms = 60000;
	vclock_freeze(loop);
	from_internet(in, bodies[n++]);
	assert_int_equal(fl_attempts(), 1);
	assert_string_equal(route_state("in", "a.example", "remote.example"), "connecting");
	for (size_t i = 0; i < 3; i++, delay *= 2) {
		/* the only target: refused twice, then the TCP connect times out */
		fl_closed(fl_attempt(i), i < 2 ? "connect-failed" : "connect-timeout", i == 2);
		assert_int_equal(qf_stats.bounces, 0);
		assert_int_equal(qf_stats.route_retries, i + 1);
		assert_int_equal(backoff_failures("(local server)"), i + 1);
		assert_int_equal(backoff_failures("remote.example"), 0);
		assert_string_equal(route_state("in", "a.example", "remote.example"), "waiting");
		assert_true(route_busy());
		from_internet(in, bodies[n++]);                  /* joins the queue */
		passes(delay / 2);
		from_internet(in, bodies[n++]);
		passes(delay / 2 - EPS);
		assert_int_equal(fl_attempts(), i + 1);          /* not yet */
		assert_string_equal(route_state("in", "a.example", "remote.example"), "waiting");
		passes(2 * EPS);
		assert_int_equal(fl_attempts(), i + 2);          /* one attempt, however many */
		assert_string_equal(route_state("in", "a.example", "remote.example"),
		    "connecting");
		assert_string_equal(fl_attempt(i + 1)->target, "127.0.0.1:5271");
	}
	out = fl_attempt(3);
	fl_connected(out);
	fl_ready(out);
	assert_int_equal(out->n_sent, 7);
	for (size_t i = 0; i < 7; i++) {
		char want[32];

		snprintf(want, sizeof(want), "<body>%s</body>", bodies[i]);
		assert_non_null(strstr(out->sent[i], want));     /* in order */
	}
	assert_string_equal(route_state("in", "a.example", "remote.example"), "ready");
	assert_int_equal(backoff_failures("(local server)"), 0);
	assert_int_equal(qf_stats.bounces, 0);
	assert_false(route_busy());
	from_internet(in, "eight");                          /* ready: straight out */
	assert_int_equal(out->n_sent, 8);
	passes(60);                                          /* no retry timer left */
	assert_int_equal(fl_attempts(), 4);
	assert_false(out->closed);
}

/* Stanzas that have waited longer than timeouts { retry } are bounced (back through the
 * opposite route, with the condition of the last failure) when the next attempt is due
 * or a set-up fails; newer ones stay queued. */
static void
test_retry_expired(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops()), *back, *out;
	double delay = 1;

	(void)state;
	cfg.retry_ms = 60000;
	vclock_freeze(loop);
	from_internet(in, "old");                            /* t = 0 */
	/* attempts at t = 0, 1, 3, 7, 15, 31 (and a little): each refused */
	for (size_t i = 0; i < 5; i++, delay *= 2) {
		fl_closed(fl_attempt(i), "connect-failed", false);
		passes(delay + EPS);
		assert_int_equal(fl_attempts(), i + 2);
	}
	fl_closed(fl_attempt(5), "connect-failed", false);   /* next attempt in 30 s */
	passes(9);
	from_internet(in, "new");                            /* t = 40 */
	assert_int_equal(qf_stats.bounces, 0);
	passes(21 - EPS);
	assert_int_equal(fl_attempts(), 6);
	assert_int_equal(qf_stats.bounces, 0);
	passes(2 * EPS);                                     /* t = 61: "old" waited 61 s */
	assert_int_equal(qf_stats.bounces, 1);
	assert_int_equal(fl_attempts(), 8);                  /* the bounce's route, a retry */
	back = fl_attempt(6);
	assert_int_equal(back->side, STREAM_INTERNET);       /* to the sender's server */
	assert_string_equal(back->local, "a.example");
	assert_string_equal(back->remote, "remote.example");
	assert_string_equal(back->target, "192.0.2.9:5269");
	out = fl_attempt(7);
	assert_int_equal(out->side, STREAM_LOCAL);           /* "new" is still tried */
	fl_connected(back);
	fl_ready(back);
	assert_int_equal(back->n_sent, 1);
	assert_non_null(strstr(back->sent[0], "remote-server-not-found"));
	assert_non_null(strstr(back->sent[0], "type='cancel'"));
	assert_non_null(strstr(back->sent[0], "<body>old</body>"));
	assert_non_null(strstr(back->sent[0], "x@remote.example"));
	/* the retry connects but never gets ready: timeouts { setup 60s } ends it at t = 121,
	 * when "new" has waited 81 s: bounced too, with remote-server-timeout */
	fl_connected(out);
	passes(60 - EPS);
	assert_false(out->closed);
	assert_int_equal(qf_stats.bounces, 1);
	passes(2 * EPS);
	assert_true(out->closed);
	assert_string_equal(out->close_reason, "setup-timeout");
	assert_int_equal(qf_stats.bounces, 2);
	assert_int_equal(back->n_sent, 2);                   /* ready: straight out */
	assert_non_null(strstr(back->sent[1], "remote-server-timeout"));
	assert_non_null(strstr(back->sent[1], "type='wait'"));
	assert_non_null(strstr(back->sent[1], "<body>new</body>"));
	assert_int_equal(backoff_failures("(local server)"), 7);
	assert_false(route_busy());
	passes(EPS);
	assert_string_equal(route_state("in", "a.example", "remote.example"), "none");
	passes(60);                                          /* nothing left to retry */
	assert_int_equal(fl_attempts(), 8);
}

/* The backoff is the remote domain's: a second route to it (from another local domain)
 * started meanwhile makes no attempt until the backoff has passed. Then both try, and their failures count as one: the next try is 2 s later. */
static void
test_retry_shared_domain(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops());
	size_t na = 0, nb = 0;

	(void)state;
	cfg.retry_ms = 60000;
	dom_a.next = &dom_b;
	vclock_freeze(loop);
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	assert_int_equal(fl_attempts(), 1);
	assert_string_equal(fl_attempt(0)->target, "192.0.2.9:5269");
	fl_closed(fl_attempt(0), "connect-failed", false);
	assert_int_equal(backoff_failures("remote.example"), 1);
	passes(0.5);
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	assert_int_equal(fl_attempts(), 1);                  /* waits for the domain */
	assert_string_equal(route_state("out", "b.example", "remote.example"), "waiting");
	assert_true(route_busy());
	passes(0.5 - EPS);
	assert_int_equal(fl_attempts(), 1);
	passes(2 * EPS);
	assert_int_equal(fl_attempts(), 3);                  /* both, when it has passed */
	for (size_t i = 1; i < 3; i++) {
		na += strcmp(fl_attempt(i)->local, "a.example") == 0;
		nb += strcmp(fl_attempt(i)->local, "b.example") == 0;
	}
	assert_int_equal(na, 1);
	assert_int_equal(nb, 1);
	fl_closed(fl_attempt(1), "connect-failed", false);
	fl_closed(fl_attempt(2), "connect-failed", false);
	assert_int_equal(backoff_failures("remote.example"), 2);   /* one round, one failure */
	passes(2 - EPS);
	assert_int_equal(fl_attempts(), 3);
	passes(2 * EPS);
	assert_int_equal(fl_attempts(), 5);
	for (size_t i = 3; i < 5; i++) {
		fl_connected(fl_attempt(i));
		fl_ready(fl_attempt(i));
		assert_int_equal(fl_attempt(i)->n_sent, 1);
		assert_true(sent_body(fl_attempt(i),
		    strcmp(fl_attempt(i)->local, "a.example") == 0 ? "a1" : "b1"));
	}
	assert_int_equal(backoff_failures("remote.example"), 0);
	assert_int_equal(qf_stats.bounces, 0);
	assert_false(route_busy());
}

/* A route riding a link that fails during set-up waits for the backoff like the link's
 * owner, with no set-up bound running meanwhile (its ride's 60 s pass while it waits:
 * nothing happens). When both try again, one rides the other's new attempt; when that
 * times out, both wait again: the rider, told the link closed, does not connect on its
 * own before the owner has counted the failure. */
static void
test_retry_rider_waits(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *att;
	const char *rider;

	(void)state;
	mux_on();
	cfg.retry_ms = 300000;
	vclock_freeze(loop);
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	assert_int_equal(fl_attempts(), 1);
	assert_non_null(fl_rider(fl_attempt(0), "b.example", "remote.example"));
	passes(59.5);
	fl_closed(fl_attempt(0), "connect-timeout", true);
	assert_int_equal(fl_attempts(), 1);
	assert_string_equal(route_state("out", "a.example", "remote.example"), "waiting");
	assert_string_equal(route_state("out", "b.example", "remote.example"), "waiting");
	assert_int_equal(backoff_failures("remote.example"), 1);
	assert_int_equal(qf_stats.route_retries, 1);
	passes(0.5 + EPS);                                   /* t = 60: the ride's bound */
	assert_int_equal(qf_stats.route_retries, 1);
	assert_string_equal(route_state("out", "b.example", "remote.example"), "waiting");
	assert_int_equal(fl_attempts(), 1);
	passes(0.5);                                         /* t = 60.5: the backoff's 1 s */
	assert_int_equal(fl_attempts(), 2);                  /* one attempt, one rider */
	att = fl_attempt(1);
	rider = strcmp(att->local, "a.example") == 0 ? "b.example" : "a.example";
	assert_non_null(fl_rider(att, rider, "remote.example"));
	fl_connected(att);                                   /* and then nothing */
	passes(60 - EPS);
	assert_false(att->closed);
	passes(2 * EPS);                                     /* this set-up's 60 s */
	assert_true(att->closed);
	assert_string_equal(att->close_reason, "setup-timeout");
	assert_int_equal(fl_attempts(), 2);                  /* nobody connects at once */
	assert_int_equal(backoff_failures("remote.example"), 2);
	assert_int_equal(qf_stats.route_retries, 2);
	assert_string_equal(route_state("out", "a.example", "remote.example"), "waiting");
	assert_string_equal(route_state("out", "b.example", "remote.example"), "waiting");
	assert_int_equal(qf_stats.bounces, 0);
	passes(2 + EPS);                                     /* both try again, once */
	assert_int_equal(fl_attempts(), 3);
	fl_connected(fl_attempt(2));
	fl_ready(fl_attempt(2));
	fl_pair_verdict(fl_attempt(2), rider, "remote.example", true);
	assert_true(sent_body(fl_attempt(2), "a1"));
	assert_true(sent_body(fl_attempt(2), "b1"));
	assert_int_equal(backoff_failures("remote.example"), 0);
	assert_false(route_busy());
}

/* timeouts { retry 0 }: the link a route rides fails during set-up; the route connects
 * on its own at once, and that new set-up gets the whole of timeouts { setup }, not
 * what was left of the ride's. */
static void
test_mux_rider_new_setup_bound(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *own;

	(void)state;
	mux_on();
	vclock_freeze(loop);
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	fl_stanza(in, "v@b.example", "x@remote.example", "b1");
	assert_non_null(fl_rider(fl_attempt(0), "b.example", "remote.example"));
	passes(30);
	fl_closed(fl_attempt(0), "connect-failed", false);   /* a1 bounced, b1 goes on */
	assert_int_equal(qf_stats.bounces, 1);
	own = NULL;
	for (size_t i = 1; i < fl_attempts(); i++)
		if (fl_attempt(i)->side == STREAM_INTERNET)
			own = fl_attempt(i);
	assert_non_null(own);
	assert_string_equal(own->local, "b.example");
	fl_connected(own);
	passes(30 + EPS);                                    /* the ride began 60 s ago */
	assert_false(own->closed);
	assert_int_equal(qf_stats.bounces, 1);
	passes(30);                                          /* its own 60 s */
	assert_true(own->closed);
	assert_string_equal(own->close_reason, "setup-timeout");
	assert_int_equal(qf_stats.bounces, 2);
}

/* Shutting down while a route waits: its stanzas are bounced at once (remote-server-
 * timeout, to the local server) and it makes no further attempt. */
static void
test_retry_shutdown(void **state)
{
	struct link *in = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *back;

	(void)state;
	cfg.retry_ms = 60000;
	vclock_freeze(loop);
	fl_stanza(in, "u@a.example", "x@remote.example", "a1");
	fl_closed(fl_attempt(0), "connect-failed", false);
	assert_string_equal(route_state("out", "a.example", "remote.example"), "waiting");
	route_shutdown();
	assert_int_equal(qf_stats.bounces, 1);
	assert_int_equal(fl_attempts(), 2);
	back = fl_attempt(1);
	assert_int_equal(back->side, STREAM_LOCAL);
	fl_connected(back);
	fl_ready(back);
	assert_int_equal(back->n_sent, 1);
	assert_non_null(strstr(back->sent[0], "remote-server-timeout"));
	assert_non_null(strstr(back->sent[0], "<body>a1</body>"));
	passes(5);
	assert_int_equal(fl_attempts(), 2);
	assert_false(route_busy());
}

/* A streamed status answer, whole (caller frees). */
static char *
stream_all(status_stream_fn fn)
{
	struct buf out;
	uint64_t cursor = 0;
	char *text;

	assert_non_null(fn);
	buf_init(&out, 1 << 20);
	while (fn(NULL, "", &out, &cursor) == 1)
		;
	text = strdup(out.data != NULL ? out.data : "");
	buf_free(&out);
	assert_non_null(text);
	return text;
}

/* "retry ARGS": the handler's return code; its answer in ans (static). */
static int
retry(const char *args, const char **ans)
{
	static char text[512];
	struct buf out;
	int rc;

	assert_non_null(retry_cmd);
	buf_init(&out, 1 << 16);
	rc = retry_cmd(NULL, args, &out);
	snprintf(text, sizeof(text), "%s", out.data != NULL ? out.data : "");
	buf_free(&out);
	*ans = text;
	return rc;
}

/* show queues lists the routes with stanzas queued: their state, how many, their
 * bytes and how long the oldest has waited; a route that drained leaves the list. */
static void
test_show_queues(void **state)
{
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops());
	struct link *lin = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *back;
	size_t bytes = stanza_bytes_alive();
	char *text, want[128];

	(void)state;
	cfg.retry_ms = 60000;
	vclock_freeze(loop);
	text = stream_all(show_queues);
	assert_string_equal(text, "queues=0\nqueued=0\nqueued_bytes=0\n");
	free(text);
	fl_stanza(lin, "u@a.example", "x@remote.example", "one");   /* t = 0 */
	fl_closed(fl_attempt(0), "connect-failed", false);          /* waits 1 s */
	passes(0.5);
	fl_stanza(lin, "u@a.example", "x@remote.example", "two");
	bytes = stanza_bytes_alive() - bytes;
	passes(0.25);
	from_internet(in, "three");                                  /* t = 0.75 */
	assert_string_equal(route_state("in", "a.example", "remote.example"), "connecting");
	text = stream_all(show_queues);
	assert_non_null(strstr(text, "queues=2\nqueued=3\n"));
	assert_non_null(strstr(text, "queue.out.a.example.remote.example.state=waiting\n"));
	assert_non_null(strstr(text, "queue.out.a.example.remote.example.queued=2\n"));
	snprintf(want, sizeof(want), "queue.out.a.example.remote.example.queued_bytes=%zu\n",
	    bytes);
	assert_non_null(strstr(text, want));
	/* 0.75 s: printed with one decimal (the frozen clock may differ by a rounding) */
	assert_true(strstr(text, "queue.out.a.example.remote.example.oldest_age=0.8\n") != NULL ||
	    strstr(text, "queue.out.a.example.remote.example.oldest_age=0.7\n") != NULL);
	assert_non_null(strstr(text, "queue.in.a.example.remote.example.state=connecting\n"));
	assert_non_null(strstr(text, "queue.in.a.example.remote.example.queued=1\n"));
	assert_non_null(strstr(text, "queue.in.a.example.remote.example.oldest_age=0.0\n"));
	free(text);
	back = fl_attempt(1);                                        /* the in route's */
	assert_int_equal(back->side, STREAM_LOCAL);
	fl_connected(back);
	fl_ready(back);
	assert_int_equal(back->n_sent, 1);
	passes(0.125);
	text = stream_all(show_queues);
	assert_non_null(strstr(text, "queues=1\nqueued=2\n"));
	assert_null(strstr(text, "queue.in."));
	assert_non_null(strstr(text, "queue.out.a.example.remote.example.oldest_age=0.9\n"));
	free(text);
}

/* retry DOMAIN: the domain's backoff is forgotten and its waiting routes (only its)
 * try at once, from the loop; "(local server)" does it for the routes to the local
 * server; anything but one domain is refused with the usage. */
static void
test_retry_command(void **state)
{
	struct link *lin = fl_receiver(STREAM_LOCAL, route_receiver_ops());
	struct link *in = fl_receiver(STREAM_INTERNET, route_receiver_ops());
	static const char *const bad[] = { "", "a.example b.example", "x@remote.example",
	    "remote.example/r", "<x>", "a\"b" };
	const char *ans;

	(void)state;
	cfg.retry_ms = 60000;
	dom_a.next = &dom_b;
	peer_o.next = NULL;
	peer_r.next = &peer_o;
	vclock_freeze(loop);
	fl_stanza(lin, "u@a.example", "x@remote.example", "a1");
	fl_closed(fl_attempt(0), "connect-failed", false);
	passes(1 + EPS);                                     /* the 1 s backoff */
	assert_int_equal(fl_attempts(), 2);
	fl_closed(fl_attempt(1), "connect-failed", false);   /* now 2 s */
	fl_stanza(lin, "v@b.example", "x@remote.example", "b1");
	fl_stanza(lin, "u@a.example", "y@other.example", "o1");
	fl_closed(fl_attempt(2), "connect-failed", false);   /* other.example: 1 s */
	from_internet(in, "i1");
	fl_closed(fl_attempt(3), "connect-failed", false);   /* the local server: 1 s */
	assert_int_equal(fl_attempts(), 4);
	assert_int_equal(backoff_failures("remote.example"), 2);
	assert_string_equal(route_state("out", "b.example", "remote.example"), "waiting");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(retry(bad[i], &ans), -1);
		assert_non_null(strstr(ans, "usage: retry DOMAIN"));
	}
	assert_int_equal(retry("nowhere.example", &ans), 0);
	assert_string_equal(ans, "retried=0\n");
	assert_int_equal(retry("Remote.Example", &ans), 0);
	assert_string_equal(ans, "retried=2\n");
	assert_int_equal(backoff_failures("remote.example"), 0);
	assert_int_equal(fl_attempts(), 4);                  /* from the loop, not from here */
	passes(EPS);
	assert_int_equal(fl_attempts(), 6);                  /* both routes to remote.example */
	for (size_t i = 4; i < 6; i++)
		assert_string_equal(fl_attempt(i)->remote, "remote.example");
	assert_string_equal(route_state("out", "a.example", "other.example"), "waiting");
	assert_string_equal(route_state("in", "a.example", "remote.example"), "waiting");
	assert_int_equal(retry("(local server)", &ans), 0);
	assert_string_equal(ans, "retried=1\n");
	passes(EPS);
	assert_int_equal(fl_attempts(), 7);
	assert_int_equal(fl_attempt(6)->side, STREAM_LOCAL);
	assert_int_equal(retry("remote.example", &ans), 0); /* none waits now */
	assert_string_equal(ans, "retried=0\n");
	assert_int_equal(qf_stats.bounces, 0);
	dom_a.next = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_queue_then_drain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounce_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setup_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_out_rides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_refused_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_shared_link_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_in_routes_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_rider_setup_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_same_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_bidi_receiver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_link_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_shared_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_rider_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_rider_new_setup_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_command, setup, teardown),
		/* last: route.c stays shut down (route_init does not reset it) */
		cmocka_unit_test_setup_teardown(test_retry_shutdown, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
