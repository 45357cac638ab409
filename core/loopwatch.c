/* core/loopwatch.c - how long each turn of the event loop works, for operators and the bench.
 * SPDX-License-Identifier: ISC
 *
 * Every stanza quickfed relays waits, at worst, for the turn of the loop that is running
 * when it arrives: one slow turn (a long callback, a big trim, a slow disk) is latency
 * for every link at once. A turn here is the wall time from the loop's wake-up (an
 * ev_check at the highest priority, the first callback after the wait) to its next wait
 * (an ev_prepare at the lowest, after s2s/conn.c's flush): time the process was not
 * scheduled counts, as peers see it. show stats counts the turns, their summed work
 * (loop.busy_us), those of 1 ms and 10 ms or more and the longest of the last minute or
 * two; a turn of 100 ms or more is logged, at most one line per 10 s (with how many were
 * not). */
#include <stdbool.h>
#include <time.h>

#include "core/log.h"
#include "core/loopwatch.h"
#include "core/stats.h"

static ev_check wake_watcher;
static ev_prepare wait_watcher;
static struct timespec woke;
static bool awake;               /* woke is this turn's wake-up */
static double last_log = -1e9;   /* ev_now of the last "slow turn" line */
static unsigned long unlogged;   /* slow turns not logged since */
static struct ev_loop *watched;
static double window_start = -1e9; /* the current LOOPWATCH_MAX_WINDOW */
static unsigned long max_cur, max_prev; /* longest turn in it, and in the one before */

/* loop.max_us: the longest turn of this window and the previous one, so that one slow
 * turn (a reload, a burst) shows for one to two windows, not for ever. */
static void
note_max(unsigned long us, double now)
{
	if (now - window_start >= LOOPWATCH_MAX_WINDOW) {
		/* the window before this one, or nothing if a whole window passed unseen */
		max_prev = now - window_start < 2 * LOOPWATCH_MAX_WINDOW ? max_cur : 0;
		max_cur = 0;
		window_start = now;
	}
	if (us > max_cur)
		max_cur = us;
	qf_stats.loop_max_us = max_cur > max_prev ? max_cur : max_prev;
}

void
loopwatch_note(unsigned long us, double now)
{
	qf_stats.loop_turns++;
	qf_stats.loop_busy_us += us;
	note_max(us, now);
	if (us < LOOPWATCH_SLOW_US)
		return;
	qf_stats.loop_slow++;
	if (us < LOOPWATCH_STALL_US)
		return;
	qf_stats.loop_stalls++;
	if (us < LOOPWATCH_LOG_US)
		return;
	if (now - last_log < LOOPWATCH_LOG_GAP) {
		unlogged++;
		return;
	}
	last_log = now;
	log_warnx("event loop: one turn took %lu ms (every link waited for it); %lu more "
	    "turn(s) of %d ms or more since the last such line", us / 1000, unlogged,
	    LOOPWATCH_LOG_US / 1000);
	unlogged = 0;
}

static void
wake_cb(EV_P_ ev_check *w, int revents)
{
	(void)w;
	(void)revents;
	clock_gettime(CLOCK_MONOTONIC, &woke);
	awake = true;
}

static void
wait_cb(EV_P_ ev_prepare *w, int revents)
{
	struct timespec now;
	long long us;

	(void)w;
	(void)revents;
	if (!awake)
		return;                /* the first turn: no wake-up seen yet */
	awake = false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long long)(now.tv_sec - woke.tv_sec) * 1000000 +
	    (now.tv_nsec - woke.tv_nsec) / 1000;
	loopwatch_note(us > 0 ? (unsigned long)us : 0, ev_now(EV_A));
}

void
loopwatch_start(struct ev_loop *loop)
{
	watched = loop;
	ev_check_init(&wake_watcher, wake_cb);
	ev_set_priority(&wake_watcher, EV_MAXPRI);
	ev_check_start(loop, &wake_watcher);
	ev_unref(loop);                /* watching alone keeps no loop running */
	ev_prepare_init(&wait_watcher, wait_cb);
	ev_set_priority(&wait_watcher, EV_MINPRI);
	ev_prepare_start(loop, &wait_watcher);
	ev_unref(loop);
}

void
loopwatch_stop(struct ev_loop *loop)
{
	if (watched != loop)
		return;
	ev_ref(loop);
	ev_check_stop(loop, &wake_watcher);
	ev_ref(loop);
	ev_prepare_stop(loop, &wait_watcher);
	watched = NULL;
	awake = false;
}
