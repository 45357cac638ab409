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
	uint32_t in;         /* stanzas taken from the peer since enabled */
	uint32_t out;        /* stanzas sent since counting started */
	uint32_t acked;      /* the peer's last h */
	/* Acknowledging only what was passed on (gate): h is `done`, the count of stanzas
	 * taken before the first one not yet released (sm_released: delivered to the
	 * next hop, bounced or refused). pend has a bit per stanza in [done, in): set once
	 * released out of order. Without gate done follows in. */
	bool     gate;
	bool     a_owed;     /* an <r/> waits for its <a/> until done reaches r_mark */
	uint32_t r_mark;     /* in when that <r/> came */
	uint32_t done;
	uint8_t *pend;       /* ring of bits, pend_cap bits (a power of two) */
	uint32_t pend_cap;
	unsigned long forced; /* stanzas counted done at SM_PENDING_MAX without release */
};

/* The most stanzas one stream may have taken and not yet released; beyond it the
 * oldest is counted as handled (its release would not fit: logged by the owner through
 * sm.forced). The global memory budget keeps far fewer stanzas alive. */
#define SM_PENDING_MAX (1u << 20)

enum sm_event {
	SM_DONE = 0,   /* handled, nothing for the owner */
	SM_ACKED,      /* *n more stanzas are acknowledged */
	SM_FAILED,     /* the peer refused to enable: what was counted is never acked */
	SM_ERROR,      /* a protocol violation: *why says which (send a stream error) */
	SM_OWED,       /* an <r/> is answered once what came before it is released
	                * (gate), or by sm_answer when the owner tires of waiting */
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
/* A stanza went out (counted only when enabled). */
void sm_sent(struct sm *m);
/* A stanza from the peer was taken (counted only when enabled): its sequence number,
 * for sm_released when the stream acknowledges only what was released (gate). */
uint32_t sm_handled(struct sm *m);
/* Stanza seq (from sm_handled) is released: passed on, bounced or refused. Returns true
 * when an owed <a/> is due now (then sm_answer). Unknown or repeated seqs are ignored. */
bool sm_released(struct sm *m, uint32_t seq);
/* Answer the owed <r/> now with h = what is released so far. */
void sm_answer(struct sm *m, struct buf *out);
/* Free what the counters hold (the pending bits). */
void sm_free(struct sm *m);
/* Ask for an acknowledgement (<r/>) unless one is pending or nothing is unacked. */
void sm_request(struct sm *m, struct buf *out);
/* Ask even with nothing unacked (a liveness probe: any <a/> answers it). Returns false
 * when not enabled or one is pending already. */
bool sm_probe(struct sm *m, struct buf *out);
/* Sent but not yet acknowledged. */
uint32_t sm_unacked(const struct sm *m);

#endif
