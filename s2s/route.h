/* s2s/route.h - map (local, remote) domain pairs to streams; queue and bounce.
 * SPDX-License-Identifier: ISC
 * The router owns one route per direction and domain pair: OUT routes carry the local
 * server's stanzas to the internet (resolved with dns/resolver), IN routes carry the
 * internet's stanzas to the local server over loopback. Stanzas wait in a bounded queue
 * while a route's stream is set up; when set-up fails every one is bounced to its sender
 * (bounce.c). It also owns the receiving links (their stanzas and dialback jobs, the
 * latter handed to verify.c). Its links report to it through struct link_ops. */
#ifndef QF_ROUTE_H
#define QF_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct ev_loop;
struct resolver;
struct stanza;
struct status;

void route_init(struct ev_loop *loop, const struct config *cfg, struct resolver *res,
    struct status *status);
/* Reload: limits, timeouts, peers and local domains of cfg apply to the decisions made
 * from now on (routes made, stanzas queued, retries); routes already made keep going.
 * cfg must outlive the module or the next call. Also for verify.c. */
void route_set_config(const struct config *cfg);
/* Graceful shutdown: bounce what is queued, stop new set-ups. */
void route_shutdown(void);
/* Stanzas still queued, set-ups or dialback verifications under way? */
bool route_busy(void);
/* Free every route (after the loop ended). */
void route_free_all(void);

/* Emit "show stats": every counter of core/stats.c, then the router's gauges (routes,
 * stanzas alive, verifications). A sample_emit_fn (arg unused): also a metrics source. */
struct sample_sink;
void route_emit(void *arg, struct sample_sink *sink);

/* One route, as route_foreach() shows it (everything borrowed for the call). */
struct route_info {
	bool          out;           /* local server -> internet */
	const char   *local, *remote;
	bool          ready;         /* its stream is ready: stanzas go straight out */
	unsigned      queued;        /* stanzas waiting */
	size_t        queued_bytes;  /* their cost */
	unsigned long link;          /* id of the link it sends on (its own or ridden); 0: none */
};
/* Call fn(arg, info) for every route (fn must not add or free routes). */
void route_foreach(void (*fn)(void *arg, const struct route_info *info), void *arg);

/* The link_ops of receiving links (listener.c accepts them for the router): their
 * stanzas are routed, their db:results verified (verify.c). */
struct link_ops;
const struct link_ops *route_receiver_ops(void);

#endif
