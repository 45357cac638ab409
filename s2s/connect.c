/* s2s/connect.c - target iteration with staggered parallel attempts (Happy Eyeballs).
 * SPDX-License-Identifier: ISC
 * route.c owns one connector per route, verify.c one per dialback verification session;
 * their links' reports (TCP connected, closed) reach it through them. It interleaves
 * address families per SRV target (RFC 8305 §4), staggers TCP attempts by the configured
 * attempt delay, keeps the first to connect and has the owner close the rest. It never
 * touches sockets or links itself: attempts are started and dropped through the owner's
 * connect_attempt_fn and connect_drop_fn, and held as opaque pointers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "connect.h"

static void delay_cb(EV_P_ ev_timer *, int);
static bool same_service(const struct resolve_target *, const struct resolve_target *);
static void arm_delay(struct connector *);
static const char *target_str(const struct resolve_target *, char *, size_t);

void
connector_init(struct connector *cx, struct ev_loop *loop, unsigned delay_ms,
    connect_attempt_fn attempt, connect_drop_fn drop, connect_exhausted_fn exhausted,
    void *owner)
{
	memset(cx, 0, sizeof(*cx));
	cx->loop = loop;
	cx->delay_s = delay_ms / 1000.0;
	cx->attempt = attempt;
	cx->drop = drop;
	cx->exhausted = exhausted;
	cx->owner = owner;
	cx->won_idx = SIZE_MAX;
	ev_init(&cx->delay, delay_cb);
	cx->delay.data = cx;
}

static bool
same_service(const struct resolve_target *a, const struct resolve_target *b)
{
	return a->port == b->port && a->direct_tls == b->direct_tls &&
	    strcasecmp(a->host, b->host) == 0;
}

void
connect_interleave(struct resolve_target *t, size_t n)
{
	static struct resolve_target v6[CONNECT_MAX_TARGETS], other[CONNECT_MAX_TARGETS];
	size_t start, end, n6, no, i, k;

	if (n > CONNECT_MAX_TARGETS)
		n = CONNECT_MAX_TARGETS;
	for (start = 0; start < n; start = end) {
		for (end = start + 1; end < n && same_service(&t[start], &t[end]); end++)
			;
		n6 = no = 0;
		for (i = start; i < end; i++) {
			if (t[i].addr.ss_family == AF_INET6)
				v6[n6++] = t[i];
			else
				other[no++] = t[i];
		}
		/* IPv6 first, then alternate while both families last */
		for (k = start, i = 0; i < n6 || i < no; i++) {
			if (i < n6)
				t[k++] = v6[i];
			if (i < no)
				t[k++] = other[i];
		}
	}
}

size_t
connector_set_targets(struct connector *cx, const struct resolve_target *t, size_t n)
{
	connector_cancel(cx, "targets-replaced");
	if (n > CONNECT_MAX_TARGETS)
		n = CONNECT_MAX_TARGETS;
	if (n > 0 && (cx->t = malloc(n * sizeof(*t))) == NULL)
		n = 0;    /* out of memory: nothing to try, the owner fails */
	if (n > 0)
		memcpy(cx->t, t, n * sizeof(*t));
	cx->n = n;
	cx->next = 0;
	cx->won_idx = SIZE_MAX;
	memset(cx->done, 0, sizeof(cx->done));
	connect_interleave(cx->t, cx->n);
	return n;
}

static const char *
target_str(const struct resolve_target *t, char *s, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (t->addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&t->addr)->sin6_addr, ip,
		    sizeof(ip));
	else if (t->addr.ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&t->addr)->sin_addr, ip,
		    sizeof(ip));
	snprintf(s, len, "%s%s%s:%u (%s)", t->addr.ss_family == AF_INET6 ? "[" : "", ip,
	    t->addr.ss_family == AF_INET6 ? "]" : "", t->port, t->host);
	return s;
}

/* The next target to attempt: from next on, circularly, the first that neither failed
 * nor won already and is not in flight. Returns SIZE_MAX when there is none. */
static size_t
pick(const struct connector *cx)
{
	for (size_t k = 0; k < cx->n; k++) {
		size_t idx = (cx->next + k) % cx->n, a;

		if (cx->done[idx])
			continue;
		for (a = 0; a < cx->n_att && cx->att_idx[a] != idx; a++)
			;
		if (a == cx->n_att)
			return idx;
	}
	return SIZE_MAX;
}

static void
arm_delay(struct connector *cx)
{
	ev_timer_stop(cx->loop, &cx->delay);
	if (pick(cx) != SIZE_MAX) {
		ev_timer_set(&cx->delay, cx->delay_s, 0.);
		ev_timer_start(cx->loop, &cx->delay);
	}
}

int
connector_next(struct connector *cx)
{
	char ts[320];
	size_t idx;

	while (cx->n_att < CONNECT_MAX_ATTEMPTS && (idx = pick(cx)) != SIZE_MAX) {
		struct link *c;

		cx->next = idx + 1;
		cx->started++;
		log_debug("connect: attempt %lu to %s%s", cx->started,
		    target_str(&cx->t[idx], ts, sizeof(ts)),
		    cx->n_att > 0 ? " (racing the attempts in flight)" : "");
		c = cx->attempt(cx->owner, &cx->t[idx]);
		if (c == NULL) {
			cx->done[idx] = true;
			continue;
		}
		cx->att[cx->n_att] = c;
		cx->att_idx[cx->n_att] = idx;
		cx->n_att++;
		arm_delay(cx);
		return 0;
	}
	if (cx->n_att > 0) {
		arm_delay(cx);
		return 0;
	}
	ev_timer_stop(cx->loop, &cx->delay);
	return -1;
}

static void
delay_cb(EV_P_ ev_timer *w, int revents)
{
	struct connector *cx = w->data;

	(void)revents;
	if (pick(cx) == SIZE_MAX)
		return;
	log_debug("connect: no connection after %.0f ms, starting the next attempt",
	    cx->delay_s * 1000.0);
	if (connector_next(cx) == -1 && cx->exhausted != NULL)
		cx->exhausted(cx->owner);
}

void
connector_rewind(struct connector *cx, size_t idx)
{
	if (idx < cx->n) {
		cx->next = idx;
		cx->done[idx] = false;
	}
}

bool
connector_connected(struct connector *cx, struct link *c)
{
	size_t i, won = SIZE_MAX;
	char ts[320];

	for (i = 0; i < cx->n_att; i++)
		if (cx->att[i] == c)
			won = cx->att_idx[i];
	if (won == SIZE_MAX)
		return false;
	ev_timer_stop(cx->loop, &cx->delay);
	if (cx->n_att > 1)
		log_info("connect: %s won the race against %zu other attempt(s)",
		    target_str(&cx->t[won], ts, sizeof(ts)), cx->n_att - 1);
	/* take the list first: closing an attempt may come back into route.c */
	for (i = 0; i < cx->n_att; i++) {
		struct link *o = cx->att[i];

		cx->att[i] = NULL;
		if (o == c)
			continue;
		cx->lost++;
		cx->drop(cx->owner, o, "happy-eyeballs-lost");
	}
	cx->n_att = 0;
	cx->won_idx = won;
	cx->done[won] = true;
	cx->next = 0;   /* if the winner fails later: the losers first, in order */
	return true;
}

int
connector_attempt_closed(struct connector *cx, struct link *c)
{
	size_t i;

	for (i = 0; i < cx->n_att; i++)
		if (cx->att[i] == c)
			break;
	if (i == cx->n_att)
		return 1;
	cx->done[cx->att_idx[i]] = true;
	cx->n_att--;
	memmove(&cx->att[i], &cx->att[i + 1], (cx->n_att - i) * sizeof(cx->att[0]));
	memmove(&cx->att_idx[i], &cx->att_idx[i + 1], (cx->n_att - i) * sizeof(cx->att_idx[0]));
	/* a failure starts the next attempt at once (RFC 8305 §5) */
	return connector_next(cx);
}

bool
connector_busy(const struct connector *cx)
{
	return cx->n_att > 0 || ev_is_active(&cx->delay);
}

void
connector_cancel(struct connector *cx, const char *reason)
{
	size_t i, n = cx->n_att;
	struct link *att[CONNECT_MAX_ATTEMPTS];

	if (cx->loop != NULL)
		ev_timer_stop(cx->loop, &cx->delay);
	memcpy(att, cx->att, n * sizeof(att[0]));
	cx->n_att = 0;
	free(cx->t);      /* targets are kept only while connecting */
	cx->t = NULL;
	cx->n = cx->next = 0;
	for (i = 0; i < n; i++)
		cx->drop(cx->owner, att[i], reason);
}
