/* tests/unit/test_loopwatch.c - the event loop's turns as core/loopwatch.c counts them, on a
 * real libev loop: a turn is the work from wake-up to the next wait (a callback that works
 * 3 ms makes a turn of 3 ms or more, counted over 1 ms and not over 10 ms; one of 12 ms
 * is over both), the wait itself is not counted (a loop that sleeps 30 ms for a timer has
 * no slow turn), and the watchers keep no loop alive. Plus the thresholds of
 * loopwatch_note, its log line's rate limit, and loop.max_us's window.
 * SPDX-License-Identifier: ISC */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loopwatch.h"
#include "core/stats.h"

static double
mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static ev_timer after;            /* a turn of no work after the one being measured */

static void
after_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
}

/* A timer whose callback works (spins) for w->data's milliseconds, then arms `after`:
 * the loop waits again (closing the turn that worked) before it runs out of watchers. */
static void
work_cb(EV_P_ ev_timer *w, int revents)
{
	double until = mono() + (double)(uintptr_t)w->data / 1000.0;

	(void)revents;
	while (mono() < until)
		;
	ev_timer_init(&after, after_cb, 0.001, 0.);
	ev_timer_start(EV_A_ &after);
}

static int
setup(void **state)
{
	(void)state;
	memset(&qf_stats, 0, sizeof(qf_stats));
	return 0;
}

/* Run loop until timer t (ms_work of work, due after ms_wait) fired. */
static void
run_one(struct ev_loop *loop, double wait_s, uintptr_t ms_work)
{
	ev_timer t;

	ev_timer_init(&t, work_cb, wait_s, 0.);
	t.data = (void *)ms_work;
	ev_timer_start(loop, &t);
	ev_run(loop, 0);             /* returns once the timer is done: nothing else is alive */
}

/* What one run_one added to the counters. */
struct delta {
	unsigned long turns, busy, slow, stalls, max;
};

static struct delta
run_delta(struct ev_loop *loop, double wait_s, uintptr_t ms_work)
{
	struct qf_stats b = qf_stats;
	struct delta d;

	run_one(loop, wait_s, ms_work);
	d.turns = qf_stats.loop_turns - b.loop_turns;
	d.busy = qf_stats.loop_busy_us - b.loop_busy_us;
	d.slow = qf_stats.loop_slow - b.loop_slow;
	d.stalls = qf_stats.loop_stalls - b.loop_stalls;
	d.max = qf_stats.loop_max_us;
	return d;
}

static void
test_turn_is_work_not_wait(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct delta d;
	int i;

	(void)state;
	loopwatch_start(loop);
	/* The upper bounds below hold unless the process is preempted for several ms in
	 * the middle of a turn (a turn is wall time): a busy machine gets 5 tries. */
	for (i = 0; i < 5; i++) {    /* sleeps 30 ms, works ~0: the wait is not work */
		d = run_delta(loop, 0.030, 0);
		assert_true(d.turns >= 1);
		if (d.busy < 15000 && d.stalls == 0)
			break;
	}
	assert_true(i < 5);
	for (i = 0; i < 5; i++) {    /* one turn of 3 ms of work: over 1 ms, not 10 */
		d = run_delta(loop, 0.001, 3);
		assert_true(d.turns >= 1);
		assert_true(d.slow >= 1);
		assert_true(d.busy >= 3000);
		assert_true(d.max >= 3000);
		if (d.stalls == 0)
			break;
	}
	assert_true(i < 5);
	d = run_delta(loop, 0.001, 12);   /* and one of 12 ms: over both */
	assert_true(d.slow >= 1);
	assert_true(d.stalls >= 1);
	assert_true(d.busy >= 12000);
	assert_true(d.max >= 12000);
	loopwatch_stop(loop);

	d = run_delta(loop, 0.001, 2);    /* stopped: no more turns counted */
	assert_int_equal(d.turns, 0);
	assert_int_equal(d.slow, 0);
	ev_loop_destroy(loop);
}

static void
test_note_thresholds(void **state)
{
	(void)state;
	/* a virtual clock far from the real loops' (ev_now is the epoch time) */
	loopwatch_note(LOOPWATCH_SLOW_US - 1, 1e10);
	assert_int_equal(qf_stats.loop_slow, 0);
	loopwatch_note(LOOPWATCH_SLOW_US, 1e10);
	assert_int_equal(qf_stats.loop_slow, 1);
	assert_int_equal(qf_stats.loop_stalls, 0);
	loopwatch_note(LOOPWATCH_STALL_US, 1e10);
	assert_int_equal(qf_stats.loop_slow, 2);
	assert_int_equal(qf_stats.loop_stalls, 1);
	assert_int_equal(qf_stats.loop_turns, 3);
	assert_int_equal(qf_stats.loop_busy_us, LOOPWATCH_SLOW_US * 2 - 1 + LOOPWATCH_STALL_US);
	assert_int_equal(qf_stats.loop_max_us, LOOPWATCH_STALL_US);
}

/* Turns of 100 ms or more are logged: the first at once, then at most one line per 10 s
 * of the loop's time, saying how many were not. */
static void
test_long_turns_logged_rate_limited(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	FILE *f = tmpfile();
	char logged[4096];
	size_t len;
	int saved = dup(2);

	(void)state;
	assert_non_null(f);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_true(dup2(fileno(f), 2) >= 0);    /* the log goes to f */
	loopwatch_start(loop);
	loopwatch_note(LOOPWATCH_LOG_US, 2e10);         /* logged */
	loopwatch_note(LOOPWATCH_LOG_US * 2, 2e10 + 9); /* within 10 s: counted, not logged */
	loopwatch_note(LOOPWATCH_LOG_US - 1, 2e10 + 20);/* not long enough to log */
	loopwatch_stop(loop);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	rewind(f);
	len = fread(logged, 1, sizeof(logged) - 1, f);
	logged[len] = '\0';
	fclose(f);
	assert_non_null(strstr(logged, "event loop: one turn took 100 ms"));
	assert_null(strstr(logged, "took 200 ms"));
	assert_int_equal(qf_stats.loop_stalls, 3);
	ev_loop_destroy(loop);
}

/* loop.max_us is the longest turn of the current and the previous minute: one slow
 * turn shows for one to two minutes, then goes (a reload at start-up does not stay the
 * figure for ever); a minute with no turn at all forgets the one before. */
static void
test_max_window(void **state)
{
	const double t = 3e10;

	(void)state;
	loopwatch_note(5000, t);
	assert_int_equal(qf_stats.loop_max_us, 5000);
	loopwatch_note(100, t + 30);
	assert_int_equal(qf_stats.loop_max_us, 5000);     /* same window */
	loopwatch_note(100, t + 61);
	assert_int_equal(qf_stats.loop_max_us, 5000);     /* the previous window's */
	loopwatch_note(200, t + 125);
	assert_int_equal(qf_stats.loop_max_us, 200);      /* gone two windows on */
	loopwatch_note(50, t + 400);
	assert_int_equal(qf_stats.loop_max_us, 50);       /* idle windows forget */
	loopwatch_note(7000, t + 401);
	assert_int_equal(qf_stats.loop_max_us, 7000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_turn_is_work_not_wait, setup),
		cmocka_unit_test_setup(test_note_thresholds, setup),
		cmocka_unit_test_setup(test_long_turns_logged_rate_limited, setup),
		cmocka_unit_test_setup(test_max_window, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
