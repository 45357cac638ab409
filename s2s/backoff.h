/* s2s/backoff.h - retry with memory: which remote domains failed, and when to try again.
 * SPDX-License-Identifier: ISC
 * route.c asks here before it connects and reports each set-up's outcome. A domain
 * whose set-up failed is tried again after 1 s, then 2, 4, ... up to 30 s, shared by
 * every route to it, however many stanzas arrive meanwhile; a success forgets it.
 * Entries are few (one per failing domain, at most BACKOFF_MAX) and expire an hour after
 * their last failure. */
#ifndef QF_BACKOFF_H
#define QF_BACKOFF_H

#include <stdbool.h>

struct buf;
struct ev_loop;

#define BACKOFF_MAX 4096

/* Remember failures across restarts in path (state_dir/backoff; may be missing or
 * NULL: memory only). Times are ev_now times, which are wall-clock seconds. A corrupt
 * file is logged and what could be read is kept. Changes are saved a second later. */
void backoff_init(struct ev_loop *loop, const char *path);
/* Seconds (of ev_now time) until domain may be tried again: 0 when it may now. */
double backoff_wait(const char *domain, double now);
/* A set-up to domain failed at now. Returns the delay before the next attempt. While
 * the domain is in backoff already (another route's attempt of the same round failed
 * first) the failure is not counted again: it gets the time left. */
double backoff_failed(const char *domain, double now);
/* A set-up to domain succeeded: forget its failures. */
void backoff_ok(const char *domain);
/* Failures recorded for domain (0: none). */
unsigned backoff_failures(const char *domain);
/* Status lines backoff.<domain>=failures:N,retry_in:S. */
void backoff_format(struct buf *out, double now);
/* Save now (if anything changed) and free everything. */
void backoff_free_all(void);

#endif
