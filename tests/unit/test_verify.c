/* tests/unit/test_verify.c - dialback verification sessions: shared, answered, cancelled.
 * SPDX-License-Identifier: ISC
 * Links verify.c (through route.c, which hands it the receiving links' jobs) against the
 * fake link layer (tests/fake/link.c). The test plays the receiving links that ask and
 * the verification link that connects to remote.example's fixed address and answers. */
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
	cfg.peers = &peer_r;
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
	route_free_all();
	fl_reset();
	assert_int_equal(verify_sessions(), 0);
	assert_int_equal(verify_jobs(), 0);
	assert_int_equal(handle_count(), 0);
	ev_loop_destroy(loop);
	return 0;
}

static struct link *
asker(void)
{
	return fl_receiver(STREAM_INTERNET, route_receiver_ops());
}

static bool
verify_sent(const struct link *v, const char *what)
{
	for (size_t i = 0; i < v->n_verify_sent; i++)
		if (strcmp(v->verify_sent[i], what) == 0)
			return true;
	return false;
}

/* Two streams' keys for the same (local, remote): one session, one connection, one
 * db:verify each; each verdict goes to the stream that asked; the last one ends the
 * session and closes its connection. */
static void
test_shared_session(void **state)
{
	struct link *r1 = asker(), *r2 = asker(), *v;

	(void)state;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "key1");
	fl_verify_needed(r2, "a.example", "remote.example", "id2", "key2");
	assert_int_equal(verify_sessions(), 1);
	assert_int_equal(verify_jobs(), 2);
	assert_int_equal(fl_attempts(), 1);
	v = fl_attempt(0);
	assert_int_equal(v->purpose, STREAM_VERIFY);
	assert_int_equal(v->side, STREAM_INTERNET);
	assert_string_equal(v->target, "192.0.2.9:5269");
	fl_connected(v);
	assert_int_equal(v->n_verify_sent, 0);               /* not before ready */
	fl_ready(v);
	assert_int_equal(v->n_verify_sent, 2);
	assert_true(verify_sent(v, "id1 key1"));
	assert_true(verify_sent(v, "id2 key2"));
	/* a third key joins the ready session and is asked at once */
	fl_verify_needed(r1, "a.example", "remote.example", "id3", "key3");
	assert_int_equal(fl_attempts(), 1);
	assert_true(verify_sent(v, "id3 key3"));
	fl_verify_answer(v, "id1", true);
	assert_int_equal(r1->verdicts, 1);
	assert_int_equal(r1->valid_verdicts, 1);
	assert_int_equal(r2->verdicts, 0);
	fl_verify_answer(v, "nope", true);                   /* unknown id: ignored */
	assert_int_equal(verify_jobs(), 2);
	fl_verify_answer(v, "id2", false);
	assert_int_equal(r2->verdicts, 1);
	assert_int_equal(r2->valid_verdicts, 0);
	assert_false(v->closed);
	fl_verify_answer(v, "id3", true);
	assert_int_equal(r1->valid_verdicts, 2);
	assert_int_equal(verify_sessions(), 0);
	assert_true(v->closed);
	assert_string_equal(v->close_reason, "verify-done");
}

/* The loopback leg: the local server is authoritative for every local domain, so keys
 * for different pairs share one session and one connection; each db:verify names its
 * pair, an answer is matched by id AND pair (one stream asks with one id for each of its
 * pairs), and the session lingers after its last answer until its connection ends. */
static void
test_loopback_session_shared(void **state)
{
	static struct cfg_domain dom_c = { .name = "c.example" };
	struct link *r1 = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *v;

	(void)state;
	dom_a.next = &dom_c;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k1");
	fl_verify_needed(r1, "c.example", "remote.example", "id1", "k2");  /* same stream id */
	fl_verify_needed(r1, "a.example", "other.example", "id1", "k3");
	assert_int_equal(verify_sessions(), 1);
	assert_int_equal(fl_attempts(), 1);
	v = fl_attempt(0);
	assert_int_equal(v->side, STREAM_LOCAL);
	assert_string_equal(v->target, "127.0.0.1:5271");
	fl_connected(v);
	fl_ready(v);
	assert_int_equal(v->n_verify_sent, 3);
	assert_true(verify_sent(v, "id1 k1"));
	assert_true(verify_sent(v, "c.example|remote.example id1 k2"));
	assert_true(verify_sent(v, "a.example|other.example id1 k3"));
	/* the answer for c.example's key goes to c.example's pair only */
	fl_verify_answer_for(v, "c.example", "remote.example", "id1", false);
	assert_int_equal(r1->verdicts, 1);
	assert_int_equal(r1->valid_verdicts, 0);
	assert_int_equal(verify_jobs(), 2);
	/* an answer for a pair nobody asked about with that id: ignored */
	fl_verify_answer_for(v, "c.example", "other.example", "id1", true);
	assert_int_equal(verify_jobs(), 2);
	fl_verify_answer_for(v, "a.example", "other.example", "id1", true);
	fl_verify_answer(v, "id1", true);
	assert_int_equal(r1->verdicts, 3);
	assert_int_equal(r1->valid_verdicts, 2);
	assert_int_equal(verify_jobs(), 0);
	/* lingering: a later key is asked at once on the same connection */
	assert_int_equal(verify_sessions(), 1);
	assert_false(v->closed);
	fl_verify_needed(r1, "a.example", "third.example", "id2", "k4");
	assert_int_equal(fl_attempts(), 1);
	assert_true(verify_sent(v, "a.example|third.example id2 k4"));
	fl_verify_answer_for(v, "a.example", "third.example", "id2", true);
	assert_int_equal(r1->valid_verdicts, 3);
	/* its connection ends (the local server, or timeouts { auth }): so does it */
	fl_closed(v, "idle", false);
	assert_int_equal(verify_sessions(), 0);
	dom_a.next = NULL;
}

/* Another (local, remote) pair gets its own session. */
static void
test_sessions_per_pair(void **state)
{
	struct link *r1 = asker();

	(void)state;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k");
	fl_verify_needed(r1, "a.example", "other.example", "id2", "k");   /* no resolver: fails */
	assert_int_equal(verify_sessions(), 1);
	assert_int_equal(r1->verdicts, 1);                   /* other.example: invalid at once */
	assert_int_equal(r1->valid_verdicts, 0);
}

/* The only asker closes: its job goes, and the session ends from the loop, closing its
 * connection attempt. */
static void
test_cancelled(void **state)
{
	struct link *r1 = asker(), *v;

	(void)state;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k");
	v = fl_attempt(0);
	fl_closed(r1, "peer-eof", false);
	assert_int_equal(verify_jobs(), 0);
	assert_int_equal(verify_sessions(), 1);              /* never freed under a callback */
	ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(verify_sessions(), 0);
	assert_true(v->closed);
	assert_string_equal(v->close_reason, "verify-cancelled");
	assert_null(v->ops);                                 /* detached first */
}

/* An asker that vanished without cancelling (its handle went stale) is simply not
 * given the verdict: the job names it by handle, not by pointer. */
static void
test_stale_asker(void **state)
{
	struct link *r1 = asker(), *r2 = asker(), *v;

	(void)state;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k");
	fl_verify_needed(r2, "a.example", "remote.example", "id2", "k");
	v = fl_attempt(0);
	fl_connected(v);
	fl_ready(v);
	handle_release(r1->self);     /* as if freed behind verify.c's back */
	r1->gone = true;
	fl_verify_answer(v, "id1", true);
	assert_int_equal(r1->verdicts, 0);
	assert_int_equal(verify_jobs(), 1);
	fl_verify_answer(v, "id2", true);
	assert_int_equal(r2->valid_verdicts, 1);
}

/* The connection fails and no target is left: every key gets "invalid". */
static void
test_unreachable(void **state)
{
	struct link *r1 = asker(), *r2 = asker();

	(void)state;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k");
	fl_verify_needed(r2, "a.example", "remote.example", "id2", "k");
	fl_closed(fl_attempt(0), "connect-failed", false);
	assert_int_equal(r1->verdicts, 1);
	assert_int_equal(r2->verdicts, 1);
	assert_int_equal(r1->valid_verdicts + r2->valid_verdicts, 0);
	assert_int_equal(verify_sessions(), 0);
}

/* A ready session whose connection drops asks again on a new one (its targets were
 * freed when it became ready, so it starts over); one that keeps dropping fails after
 * two fresh starts, every key "invalid". */
static void
test_reconnect(void **state)
{
	struct link *r1 = asker(), *v, *v2;

	(void)state;
	fl_verify_needed(r1, "a.example", "remote.example", "id1", "k");
	v = fl_attempt(0);
	fl_connected(v);
	fl_ready(v);
	assert_int_equal(v->n_verify_sent, 1);
	fl_closed(v, "peer-eof", false);
	assert_int_equal(r1->verdicts, 0);
	v2 = fl_attempt(1);
	assert_non_null(v2);
	fl_connected(v2);
	fl_ready(v2);
	assert_true(verify_sent(v2, "id1 k"));          /* asked again */
	fl_verify_answer(v2, "id1", true);
	assert_int_equal(r1->valid_verdicts, 1);
	assert_int_equal(verify_sessions(), 0);

	/* a server that accepts and drops every time */
	fl_verify_needed(r1, "a.example", "remote.example", "id2", "k");
	for (size_t i = 2; i < 5; i++) {
		v = fl_attempt(i);
		assert_non_null(v);
		fl_connected(v);
		fl_ready(v);
		fl_closed(v, "peer-eof", false);
	}
	assert_null(fl_attempt(5));
	assert_int_equal(r1->verdicts, 2);
	assert_int_equal(r1->valid_verdicts, 1);
	assert_int_equal(verify_sessions(), 0);
}

/* The loopback session lingers, and timeouts { auth } ends its connection now and then,
 * sometimes right after a key was asked on it: each such close asks again on a new
 * connection, and as long as the local server answers in between, it goes on however
 * often that happens (only a server that keeps closing without answering fails the
 * keys, test_reconnect). */
static void
test_linger_restarts(void **state)
{
	struct link *r = fl_receiver(STREAM_LOCAL, route_receiver_ops()), *v;
	char id[16], want[32];
	size_t att = 0;

	(void)state;
	for (int round = 0; round < 5; round++) {
		snprintf(id, sizeof(id), "id%d", round);
		fl_verify_needed(r, "a.example", "remote.example", id, "k");
		if (round == 0) {
			v = fl_attempt(att++);
			fl_connected(v);
			fl_ready(v);
		}
		fl_closed(v, "auth-timeout", true);    /* with the key just asked */
		v = fl_attempt(att++);
		assert_non_null(v);
		fl_connected(v);
		fl_ready(v);
		assert_int_equal(v->n_verify_sent, 1);     /* asked again */
		snprintf(want, sizeof(want), "%s k", id);
		assert_true(verify_sent(v, want));
		fl_verify_answer(v, id, true);
		assert_int_equal(r->valid_verdicts, round + 1);
	}
	assert_int_equal(r->verdicts, 5);
	fl_closed(v, "idle", false);
	assert_int_equal(verify_sessions(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shared_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_session_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sessions_per_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_asker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linger_restarts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
