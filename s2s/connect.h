/* s2s/connect.h - target iteration with staggered parallel attempts (Happy Eyeballs).
 * SPDX-License-Identifier: ISC
 * route.c hands a connector the ordered targets of a route or dialback verification
 * (SRV order from the resolver, IPv6 before IPv4 per host); the connector interleaves
 * the address families of each SRV target (RFC 8305 §4), starts one TCP attempt, starts
 * the next when the first has not connected within the attempt delay or at once when it
 * failed, and keeps the first TCP connection to succeed, closing the others with
 * "happy-eyeballs-lost". Racing covers the TCP connect only: what comes after (stream,
 * TLS, authentication) runs on the winner alone; when the winner fails, the owner calls
 * connector_next to race the remaining targets. */
#ifndef QF_CONNECT_H
#define QF_CONNECT_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "../dns/resolver.h"

#define CONNECT_MAX_TARGETS  32
#define CONNECT_MAX_ATTEMPTS 8   /* TCP attempts in flight at once */

struct link;   /* opaque here: the owner's attempts, never dereferenced */

/* Start one TCP attempt to t for owner (link_connect). Returns the attempt, whose
 * reports the owner passes back (connector_connected, connector_attempt_closed), or
 * NULL (logged). */
typedef struct link *(*connect_attempt_fn)(void *owner, const struct resolve_target *t);
/* The connector is done with attempt a (it lost the race, or the connector was
 * cancelled): the owner detaches from it and closes it with reason. */
typedef void (*connect_drop_fn)(void *owner, struct link *a, const char *reason);
/* Every target failed while only the attempt-delay timer was running (no caller on the
 * stack to return -1 to). The owner fails its set-up; the connector holds no attempt. */
typedef void (*connect_exhausted_fn)(void *owner);

struct connector {
	struct resolve_target *t;  /* in attempt order; owned, allocated by set_targets
	                            * and freed by connector_cancel (only while connecting) */
	size_t n;                  /* targets in t */
	size_t next;               /* where the search for the next target starts */
	struct link *att[CONNECT_MAX_ATTEMPTS]; /* TCP attempts in flight (borrowed) */
	size_t att_idx[CONNECT_MAX_ATTEMPTS];   /* ... and the target index of each */
	size_t n_att;              /* entries used in att */
	bool done[CONNECT_MAX_TARGETS]; /* connect failed, or won once: not attempted again */
	size_t won_idx;            /* target index of the last winner (SIZE_MAX: none) */
	unsigned long started;     /* attempts started, for logs and tests */
	unsigned long lost;        /* attempts closed because another one won */
	ev_timer delay;            /* starts the next attempt */
	struct ev_loop *loop;      /* borrowed */
	double delay_s;            /* the attempt delay in seconds */
	connect_attempt_fn attempt;
	connect_drop_fn drop;
	connect_exhausted_fn exhausted;
	void *owner;               /* the route or verification session (borrowed) */
};

/* Set cx up (no targets, nothing running). delay_ms: the attempt delay (RFC 8305
 * "Connection Attempt Delay"). Call once per owner before any other connector_*. */
void connector_init(struct connector *cx, struct ev_loop *loop, unsigned delay_ms,
    connect_attempt_fn attempt, connect_drop_fn drop, connect_exhausted_fn exhausted,
    void *owner);
/* Replace the targets: copy n (at most CONNECT_MAX_TARGETS kept) from t, interleave the
 * families per SRV target and rewind. Attempts in flight are cancelled first. Returns
 * the number kept. */
size_t connector_set_targets(struct connector *cx, const struct resolve_target *t, size_t n);
/* Start the next attempt now (and arm the delay timer for the one after it). Targets are
 * taken in order from where the last search stopped, wrapping around, skipping those that
 * failed, won, or are in flight. Returns 0 when an attempt is in flight, -1 when no
 * target is left and none is in flight. */
int connector_next(struct connector *cx);
/* Make the next attempt go to target index idx again, even if it won or failed before
 * (the pipelining retry of the winner). */
void connector_rewind(struct connector *cx, size_t idx);
/* The owner's link c reported that its TCP connect succeeded. If c is one of cx's
 * attempts it wins: the timer stops, every other attempt is dropped (connect_drop_fn)
 * with "happy-eyeballs-lost"; returns true. If the winner fails later, connector_next tries
 * the targets that lost the race, then those never tried, in order (never one whose
 * connect failed or the winner). Returns false (nothing done) otherwise. */
bool connector_connected(struct connector *cx, struct link *c);
/* c closed. If it was one of cx's attempts (before it connected) it is removed and the
 * next target is tried at once. Returns 1 when c was not an attempt of cx, 0 when an
 * attempt is still in flight, -1 when every target failed (the owner fails). */
int connector_attempt_closed(struct connector *cx, struct link *c);
/* True while any attempt is in flight or the delay timer runs. */
bool connector_busy(const struct connector *cx);
/* Stop the timer and drop (connect_drop_fn) every attempt with reason. */
void connector_cancel(struct connector *cx, const char *reason);

/* Pure helpers (unit tested). */
/* RFC 8305 §4: within each run of targets with the same host, port and TLS mode,
 * alternate address families starting with IPv6 when the run has any, keeping the
 * order within each family. Runs stay in their order. In place; n <= CONNECT_MAX_TARGETS
 * (more are left as they are). */
void connect_interleave(struct resolve_target *t, size_t n);

#endif
