/* tests/unit/test_backoff.c - retry with memory: per remote domain failures (s2s/backoff.c).
 * SPDX-License-Identifier: ISC
 * Time is the caller's (route.c passes ev_now): the tests pass plain numbers, so an hour
 * of expiry or a 30 s cap needs no clock. Each test starts and ends with an empty list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/buf.h"
#include "s2s/backoff.h"

#define T0 1000000.0   /* any "now": ev_now is seconds since the epoch */

static int
teardown(void **state)
{
	(void)state;
	backoff_free_all();
	return 0;
}

/* Each failure doubles the delay from 1 s up to the 30 s cap, and backoff_wait says how
 * much of it is left: the whole delay at the failure, none from next_try on. */
static void
test_delays(void **state)
{
	static const double want[] = { 1, 2, 4, 8, 16, 30, 30, 30 };
	double now = T0;

	(void)state;
	assert_true(backoff_wait("remote.example", now) == 0);   /* never failed */
	assert_int_equal(backoff_failures("remote.example"), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		double d = backoff_failed("remote.example", now);

		assert_true(d == want[i]);
		assert_int_equal(backoff_failures("remote.example"), i + 1);
		assert_true(backoff_wait("remote.example", now) == d);
		assert_true(backoff_wait("remote.example", now + d / 2) == d / 2);
		assert_true(backoff_wait("remote.example", now + d - 0.25) == 0.25);
		assert_true(backoff_wait("remote.example", now + d) == 0);   /* next_try */
		assert_true(backoff_wait("remote.example", now + d + 5) == 0);
		now += d;                        /* the next attempt fails at once */
	}
	/* other domains are not affected */
	assert_true(backoff_wait("other.example", now) == 0);
	assert_int_equal(backoff_failures("other.example"), 0);
}

/* Every route to a domain that fails in one round (their attempts were made before the
 * first failure set the backoff) counts once: the others get the time left, and the
 * next round still waits 2 s, then 4 s. */
static void
test_one_failure_per_round(void **state)
{
	(void)state;
	assert_true(backoff_failed("remote.example", T0) == 1);
	assert_true(backoff_failed("remote.example", T0) == 1);          /* same moment */
	assert_true(backoff_failed("REMOTE.example", T0 + 0.5) == 0.5);  /* later, same round */
	assert_int_equal(backoff_failures("remote.example"), 1);
	assert_true(backoff_wait("remote.example", T0 + 0.5) == 0.5);    /* not pushed back */
	assert_true(backoff_failed("remote.example", T0 + 1) == 2);      /* the next round */
	assert_true(backoff_failed("remote.example", T0 + 1.25) == 1.75);
	assert_int_equal(backoff_failures("remote.example"), 2);
	assert_true(backoff_failed("remote.example", T0 + 3) == 4);
	assert_int_equal(backoff_failures("remote.example"), 3);
}

/* A success forgets the domain: the next failure starts over at 1 s. */
static void
test_ok_forgets(void **state)
{
	(void)state;
	backoff_failed("remote.example", T0);
	backoff_failed("remote.example", T0 + 1);
	backoff_failed("other.example", T0 + 1);
	assert_int_equal(backoff_failures("remote.example"), 2);
	backoff_ok("remote.example");
	assert_int_equal(backoff_failures("remote.example"), 0);
	assert_true(backoff_wait("remote.example", T0 + 1) == 0);
	assert_int_equal(backoff_failures("other.example"), 1);   /* only that one */
	backoff_ok("never-failed.example");                       /* nothing to forget */
	assert_true(backoff_failed("remote.example", T0 + 2) == 1);
	assert_int_equal(backoff_failures("remote.example"), 1);
}

/* An entry expires an hour after its last failure: no wait, no failures, and a new
 * failure starts over at 1 s, whether or not backoff_wait looked in between. */
static void
test_expiry(void **state)
{
	double last = T0;

	(void)state;
	for (int i = 0; i < 6; i++)
		backoff_failed("remote.example", last = T0 + i * 60);
	assert_int_equal(backoff_failures("remote.example"), 6);
	/* an hour is not yet too long (the wait is long over, the memory is not) */
	assert_true(backoff_wait("remote.example", last + 3600) == 0);
	assert_int_equal(backoff_failures("remote.example"), 6);
	assert_true(backoff_failed("remote.example", last + 3600) == 30);
	last += 3600;
	/* past the hour: forgotten when asked */
	assert_true(backoff_wait("remote.example", last + 3601) == 0);
	assert_int_equal(backoff_failures("remote.example"), 0);
	assert_true(backoff_failed("remote.example", last + 3601) == 1);
	/* past the hour, failing again without being asked in between: a fresh start too */
	last += 3601;
	for (int i = 1; i < 6; i++)
		backoff_failed("remote.example", last + i * 60);
	last += 5 * 60;
	assert_int_equal(backoff_failures("remote.example"), 6);
	assert_true(backoff_failed("remote.example", last + 3601) == 1);
	assert_int_equal(backoff_failures("remote.example"), 1);
}

/* BACKOFF_MAX entries at most: a new domain makes room by forgetting the one whose last
 * failure is the oldest (not the first one added). */
static void
test_max_evicts_oldest(void **state)
{
	char name[64];

	(void)state;
	for (int i = 0; i < BACKOFF_MAX; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		backoff_failed(name, T0 + 10 + i * 0.5);
	}
	backoff_failed("d0.example", T0 + 10 + BACKOFF_MAX * 0.5); /* d0 failed last now */
	assert_int_equal(backoff_failures("d0.example"), 2);   /* not a new entry */
	backoff_failed("new.example", T0 + 20 + BACKOFF_MAX * 0.5);
	assert_int_equal(backoff_failures("new.example"), 1);
	assert_int_equal(backoff_failures("d1.example"), 0);   /* the oldest failure */
	assert_int_equal(backoff_failures("d0.example"), 2);
	assert_int_equal(backoff_failures("d2.example"), 1);
	snprintf(name, sizeof(name), "d%d.example", BACKOFF_MAX - 1);
	assert_int_equal(backoff_failures(name), 1);
	backoff_failed("new2.example", T0 + 21 + BACKOFF_MAX * 0.5);
	assert_int_equal(backoff_failures("d2.example"), 0);   /* the next oldest */
	assert_int_equal(backoff_failures("d3.example"), 1);
	assert_int_equal(backoff_failures("new.example"), 1);
}

/* Domains compare without regard to case (domain_eq): one entry, whatever the case. */
static void
test_case_insensitive(void **state)
{
	struct buf out;

	(void)state;
	backoff_failed("Remote.Example", T0);
	assert_true(backoff_failed("remote.example", T0 + 1) == 2);
	assert_int_equal(backoff_failures("REMOTE.EXAMPLE"), 2);
	assert_true(backoff_wait("rEmOtE.eXaMpLe", T0 + 1) == 2);
	buf_init(&out, 4096);
	backoff_format(&out, T0 + 1);
	assert_string_equal(out.data, "backoff.Remote.Example=failures:2,retry_in:2.0\n");
	buf_free(&out);
	backoff_ok("REMOTE.example");
	assert_int_equal(backoff_failures("remote.example"), 0);
}

/* show backoff: one line per failing domain, with the time left before its next attempt
 * (0.0 once it may be tried); nothing at all when no domain is failing. */
static void
test_format(void **state)
{
	struct buf out;

	(void)state;
	buf_init(&out, 4096);
	backoff_format(&out, T0);
	assert_int_equal(out.len, 0);
	backoff_failed("remote.example", T0);
	backoff_failed("remote.example", T0 + 1);      /* 2 s: next at T0 + 3 */
	backoff_failed("other.example", T0 + 1);       /* 1 s: next at T0 + 2 */
	backoff_format(&out, T0 + 1.5);
	assert_non_null(strstr(out.data, "backoff.remote.example=failures:2,retry_in:1.5\n"));
	assert_non_null(strstr(out.data, "backoff.other.example=failures:1,retry_in:0.5\n"));
	assert_int_equal(out.len, strlen("backoff.remote.example=failures:2,retry_in:1.5\n") +
	    strlen("backoff.other.example=failures:1,retry_in:0.5\n"));
	buf_reset(&out);
	backoff_format(&out, T0 + 10);
	assert_non_null(strstr(out.data, "backoff.remote.example=failures:2,retry_in:0.0\n"));
	assert_non_null(strstr(out.data, "backoff.other.example=failures:1,retry_in:0.0\n"));
	buf_free(&out);
}

/* state_dir/backoff: what a run remembered is read back by the next one: good lines
 * kept (a next attempt never later than the 30 s cap from now), bad and expired ones
 * skipped; a change is written back at exit (backoff_free_all). */
static void
test_persisted(void **state)
{
	char dir[] = "/tmp/qf-test-backoff-XXXXXX", path[64], line[512];
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	double now;
	FILE *f;
	bool seen_new = false;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/backoff", dir);
	now = ev_now(loop);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "quickfed-backoff 1\n");
	fprintf(f, "down.example 3 %.3f %.3f\n", now - 10, now + 5);
	fprintf(f, "far.example 2 %.3f %.3f\n", now - 1, now + 3600);   /* capped */
	fprintf(f, "old.example 9 %.3f %.3f\n", now - 7200, now - 7170); /* expired */
	fprintf(f, "u@bad.example 1 %.3f %.3f\n", now, now + 1);         /* not a domain */
	fprintf(f, "neg.example 0 %.3f %.3f\n", now, now + 1);           /* 0 failures */
	fprintf(f, "junk\n");
	fclose(f);
	backoff_init(loop, path);
	assert_int_equal(backoff_failures("down.example"), 3);
	assert_true(backoff_wait("down.example", now) > 4.9 &&
	    backoff_wait("down.example", now) < 5.1);     /* written with 3 decimals */
	assert_int_equal(backoff_failures("far.example"), 2);
	assert_true(backoff_wait("far.example", now) <= 30.0);
	assert_int_equal(backoff_failures("old.example"), 0);
	assert_int_equal(backoff_failures("neg.example"), 0);
	assert_int_equal(backoff_failures("bad.example"), 0);
	/* a change, saved at exit, read back */
	backoff_failed("new.example", now);
	backoff_ok("down.example");
	backoff_free_all();
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(line, sizeof(line), f));
	assert_string_equal(line, "quickfed-backoff 1\n");
	while (fgets(line, sizeof(line), f) != NULL) {
		assert_null(strstr(line, "down.example"));
		seen_new |= strncmp(line, "new.example 1 ", 14) == 0;
	}
	fclose(f);
	assert_true(seen_new);
	/* a file without the header is ignored */
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "down.example 3 %.3f %.3f\n", now, now + 5);
	fclose(f);
	backoff_init(loop, path);
	assert_int_equal(backoff_failures("down.example"), 0);
	backoff_free_all();
	unlink(path);
	rmdir(dir);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_delays, teardown),
		cmocka_unit_test_teardown(test_one_failure_per_round, teardown),
		cmocka_unit_test_teardown(test_ok_forgets, teardown),
		cmocka_unit_test_teardown(test_expiry, teardown),
		cmocka_unit_test_teardown(test_max_evicts_oldest, teardown),
		cmocka_unit_test_teardown(test_case_insensitive, teardown),
		cmocka_unit_test_teardown(test_format, teardown),
		cmocka_unit_test_teardown(test_persisted, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
