/* core/log.h - leveled logging to stderr for the daemon and its tests.
 * SPDX-License-Identifier: ISC
 * Every module logs through these. Lines are "<level> <message>"; callers put the
 * connection id first and continue as key=value (see STYLE.md §6). */
#ifndef QF_LOG_H
#define QF_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_ERR = 0,   /* the daemon or a connection failed */
	LOG_WARN,      /* something was refused or went wrong but service goes on */
	LOG_INFO,      /* ops: connections opened/closed, peers authenticated */
	LOG_DEBUG,     /* detail: state transitions, DNS answers */
	LOG_TRACE      /* every byte-level event (io, xml, tls) */
};

/* Set the threshold; messages above it are not printed. */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug|trace"; returns -1 on an unknown name. */
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only for start-up failures and broken invariants: log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
