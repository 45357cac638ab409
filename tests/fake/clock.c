/* tests/fake/clock.c - virtual time for unit tests that run libev timers.
 * SPDX-License-Identifier: ISC
 * Defines clock_gettime() and gettimeofday() for the whole test binary; libev (linked
 * statically) calls them for ev_now. Until vclock_freeze they return the real time
 * (straight from the kernel); frozen, they return the frozen reading plus what
 * vclock_advance added. Only tests that call vclock_* pull this file in. */
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "clock.h"

static int frozen;
static struct timespec at_mono, at_real;   /* readings when frozen */
static double offset;                      /* virtual seconds added since */

static int
real_clock(clockid_t id, struct timespec *ts)
{
	return (int)syscall(SYS_clock_gettime, id, ts);
}

static void
add(struct timespec *ts, const struct timespec *base)
{
	long long ns = (long long)(offset * 1e9);

	ts->tv_sec = base->tv_sec + (time_t)(ns / 1000000000LL);
	ts->tv_nsec = base->tv_nsec + (long)(ns % 1000000000LL);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	if (!frozen)
		return real_clock(id, ts);
	if (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)
		add(ts, &at_real);
	else
		add(ts, &at_mono);
	return 0;
}

int
gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

void
vclock_freeze(struct ev_loop *loop)
{
	real_clock(CLOCK_MONOTONIC, &at_mono);
	real_clock(CLOCK_REALTIME, &at_real);
	offset = 0;
	frozen = 1;
	ev_now_update(loop);
}

void
vclock_advance(struct ev_loop *loop, double seconds, double step)
{
	double done = 0;

	if (step <= 0)
		step = seconds;
	while (done < seconds) {
		double d = seconds - done < step ? seconds - done : step;

		offset += d;
		done += d;
		ev_now_update(loop);
		ev_run(loop, EVRUN_NOWAIT);
	}
	ev_run(loop, EVRUN_NOWAIT);
}

void
vclock_thaw(void)
{
	frozen = 0;
}
