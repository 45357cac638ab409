/* tests/unit/test_route.c - the router: queues, set-up, bounces, backpressure.
 * SPDX-License-Identifier: ISC
 * Links route.c against the fake link layer (tests/fake/link.c): no sockets, no streams.
 * The test plays the links' side — a receiving link hands stanzas in, the route's
 * outgoing link connects, gets ready, fails or drains — and checks what the route did
 * with them. Timers run on virtual time (tests/fake/clock.c): a minute of set-up bound
 * passes at once and exactly. */
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
#include "../../s2s/route.h"
#include "../../s2s/stanza.h"
#include "../../s2s/verify.h"
#include "../fake/clock.h"
#include "../fake/link.h"

static struct cfg_domain dom_a = { .name = "a.example" };
static struct cfg_peer peer_r = { .name = "remote.example", .address = "192.0.2.9",
    .port = 5269 };
static struct config cfg;
static struct ev_loop *loop;

static int
setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
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
	route_init(loop, &cfg, NULL, NULL);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
