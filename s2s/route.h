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

/* The link_ops of receiving links (listener.c accepts them for the router): their
 * stanzas are routed, their db:results verified (verify.c). */
struct link_ops;
const struct link_ops *route_receiver_ops(void);

#endif
