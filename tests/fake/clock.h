/* tests/fake/clock.h - virtual time for unit tests that run libev timers.
 * SPDX-License-Identifier: ISC
 * tests/fake/clock.c replaces clock_gettime() and gettimeofday() in the test binary
 * (libev reads its clocks through them). While frozen, time stands still and moves only
 * by vclock_advance, which then runs the loop once without blocking: every timer due by
 * then fires, in order, and nothing else depends on the machine's speed. */
#ifndef QF_FAKE_CLOCK_H
#define QF_FAKE_CLOCK_H

struct ev_loop;

/* Stop the clocks at their current reading and bring loop's idea of now up to it. */
void vclock_freeze(struct ev_loop *loop);
/* Move time on by seconds (in steps of at most step seconds, so timers that re-arm
 * each other fire in order) and run the timers that became due. */
void vclock_advance(struct ev_loop *loop, double seconds, double step);
/* Let the clocks run again. */
void vclock_thaw(void);

#endif
