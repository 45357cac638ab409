/* s2s/route.h - map (local, remote) domain pairs to streams; queue and bounce.
 * SPDX-License-Identifier: ISC
 * The router owns one route per direction and domain pair: OUT routes carry the local
 * server's stanzas to the internet (resolved with dns/resolver), IN routes carry the
 * internet's stanzas to the local server over loopback. Stanzas wait in a bounded queue
 * while a route's stream is set up; when set-up fails every one is bounced to its sender
 * (bounce.c). It also runs dialback verifications for receiving streams. conn.c reports
 * to it through the route_conn_* / route_stanza / route_verify_* calls. */
#ifndef QF_ROUTE_H
#define QF_ROUTE_H

#include <stdbool.h>

struct conn;
struct config;
struct ev_loop;
struct resolver;
struct stanza;
struct status;

void route_init(struct ev_loop *loop, const struct config *cfg, struct resolver *res,
    struct status *status);
/* Graceful shutdown: bounce what is queued, stop new set-ups. */
void route_shutdown(void);
/* Stanzas still queued, set-ups or dialback verifications under way? */
bool route_busy(void);
/* The resolver given to route_init (conn.c's incoming DANE lookups), or NULL. */
struct resolver *route_resolver(void);
/* Free every route (after the loop ended). */
void route_free_all(void);

/* From conn.c. */
/* c's TCP connect succeeded (before any stream bytes): the first attempt of a
 * Happy Eyeballs race to connect wins, the others are closed (s2s/connect.c). */
void route_conn_connected(struct conn *c);
void route_conn_ready(struct conn *c);
/* Pipelining: the stream may carry the queued stanzas now, before it is ready. */
void route_conn_pipeline(struct conn *c);
/* c's output drained after conn_send refused a stanza: the queue moves on. */
void route_conn_drained(struct conn *c);
/* Every connection's end (receivers too: their pending verifications are cancelled). */
void route_conn_closed(struct conn *c);
/* An authorised stanza from c (owned by the callee). When the next hop is over its
 * budget, c is paused (conn_pause) until it drains. */
void route_stanza(struct conn *c, struct stanza *st);
void route_verify_needed(struct conn *c, const char *local, const char *remote,
    const char *stream_id, const char *key);
void route_verify_answer(struct conn *c, const char *id, bool valid);

#endif
