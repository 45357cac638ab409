/* core/log.c - leveled logging to stderr.
 * SPDX-License-Identifier: ISC
 * Used by every module; the level is set from the config (log_level) at start-up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static enum log_level cur_level = LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

static void vlog(enum log_level, const char *, va_list, const char *);

void
log_set_level(enum log_level lvl)
{
	cur_level = lvl;
}

enum log_level
log_get_level(void)
{
	return cur_level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

static void
vlog(enum log_level lvl, const char *fmt, va_list ap, const char *err)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (lvl > cur_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s ", stamp, ts.tv_nsec / 1000000, level_names[lvl]);
	vfprintf(stderr, fmt, ap);
	if (err != NULL)
		fprintf(stderr, ": %s", err);
	fputc('\n', stderr);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, fmt, ap, NULL);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

#define LOG_FN(name, lvl)                   \
	void name(const char *fmt, ...)     \
	{                                   \
		va_list ap;                 \
		va_start(ap, fmt);          \
		vlog(lvl, fmt, ap, NULL);   \
		va_end(ap);                 \
	}
LOG_FN(log_warnx, LOG_WARN)
LOG_FN(log_info, LOG_INFO)
LOG_FN(log_debug, LOG_DEBUG)
LOG_FN(log_trace, LOG_TRACE)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
