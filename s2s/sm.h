/* s2s/sm.h - XEP-0198 stream management on one s2s stream: enable, acks, counters.
 * SPDX-License-Identifier: ISC
 * stream.c owns one struct sm per stream and hands it the urn:xmpp:sm:3 elements; this
 * file keeps the counters (stanzas handled from the peer, stanzas sent and acknowledged)
 * and writes the answers. No resumption: a server-to-server stream that breaks is
 * replaced, and what it left unacknowledged is sent again on the next one (link.c). */
#ifndef QF_SM_H
#define QF_SM_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/buf.h"
#include "xnode.h"

#define NS_SM "urn:xmpp:sm:3"

struct sm {
	bool     offered;    /* the peer offered <sm xmlns='urn:xmpp:sm:3'/> */
	bool     asked;      /* we sent <enable/>: what we send from here on is counted */
	bool     on;         /* enabled (either role): both sides count */
	bool     r_pending;  /* our <r/> has not been answered yet */
	uint32_t in;         /* stanzas handled from the peer since enabled (our h) */
	uint32_t out;        /* stanzas sent since counting started */
	uint32_t acked;      /* the peer's last h */
};

enum sm_event {
	SM_DONE = 0,   /* handled, nothing for the owner */
	SM_ACKED,      /* *n more stanzas are acknowledged */
	SM_FAILED,     /* the peer refused to enable: what was counted is never acked */
	SM_ERROR,      /* a protocol violation: *why says which (send a stream error) */
};

/* Counting our stanzas: the next stanza sent is one the peer will acknowledge. */
bool sm_tracking(const struct sm *m);
/* Initiator, once authenticated and offered: <enable/> (counting starts with it). */
void sm_enable(struct sm *m, struct buf *out);
/* One element in the urn:xmpp:sm:3 namespace. may_enable: the peer is authenticated
 * (an <enable/> from an unauthenticated peer is answered <failed/>). <enabled/> with
 * stanzas unacknowledged already asks for an ack (<r/>). */
enum sm_event sm_element(struct sm *m, const struct xnode *el, bool may_enable,
    struct buf *out, uint32_t *n, const char **why);
/* A stanza went out / one from the peer was handled (counted only when enabled). */
void sm_sent(struct sm *m);
void sm_handled(struct sm *m);
/* Ask for an acknowledgement (<r/>) unless one is pending or nothing is unacked. */
void sm_request(struct sm *m, struct buf *out);
/* Ask even with nothing unacked (a liveness probe: any <a/> answers it). Returns false
 * when not enabled or one is pending already. */
bool sm_probe(struct sm *m, struct buf *out);
/* Sent but not yet acknowledged. */
uint32_t sm_unacked(const struct sm *m);

#endif
