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

/* A ready session whose connection drops asks again on a new one. */
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
	/* the winner is not retried; with one target the session fails */
	assert_int_equal(r1->verdicts, 1);
	assert_int_equal(r1->valid_verdicts, 0);
	v2 = fl_attempt(1);
	assert_null(v2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shared_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sessions_per_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_asker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
