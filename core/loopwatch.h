/* core/loopwatch.h - how long each turn of the event loop works (show stats loop.*).
 * SPDX-License-Identifier: ISC */
#ifndef QF_LOOPWATCH_H
#define QF_LOOPWATCH_H

#include <ev.h>

#define LOOPWATCH_SLOW_US   1000      /* a turn this long is counted (loop.turns_over_1ms) */
#define LOOPWATCH_STALL_US  10000     /* ... and this long too (loop.turns_over_10ms) */
#define LOOPWATCH_LOG_US    100000    /* ... and this long is logged (rate-limited) */
#define LOOPWATCH_LOG_GAP   10.0      /* s: at most one such line per this */
#define LOOPWATCH_MAX_WINDOW 60.0     /* s: loop.max_us is the longest turn of the current
                                       * and the previous window of this length */

/* Watch every turn of loop from now on: its work (wall time from the wake-up to the next
 * wait) goes into qf_stats (loop_turns, loop_busy_us, loop_slow, loop_stalls, and
 * loop_max_us: the longest of the last one to two LOOPWATCH_MAX_WINDOW). Call once;
 * loopwatch_stop before the loop is destroyed. */
void loopwatch_start(struct ev_loop *loop);
void loopwatch_stop(struct ev_loop *loop);

/* One turn of us microseconds that ended at now (the loop's time; for the watchers
 * above, and tests with a virtual clock). */
void loopwatch_note(unsigned long us, double now);

#endif
