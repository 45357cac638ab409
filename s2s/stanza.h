/* s2s/stanza.h - a stanza kept as the bytes it will be sent as.
 * SPDX-License-Identifier: ISC
 * stream.c turns every authorised stanza it parses into one of these (the xnode tree is
 * freed at once), so what quickfed holds for a peer costs about what the peer sent:
 * one allocation with the serialized XML and the few addresses the router needs. Route
 * queues, held stanzas and bounces (bounce.c) all use it; every live stanza's bytes
 * are counted in one global gauge that the memory budget reads. */
#ifndef QF_STANZA_H
#define QF_STANZA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/handle.h"

struct xnode;

struct stanza {
	struct stanza *next;   /* link in whichever queue holds it (owner: that queue) */
	uint32_t len;          /* bytes of XML at data (no NUL counted) */
	uint32_t inner_off;    /* the children's bytes: data[inner_off .. inner_off+inner_len) */
	uint32_t inner_len;
	uint32_t cost;         /* bytes charged to budgets (allocation incl. overhead) */
	double   queued_at;    /* when a route first queued it (0: not yet), for
	                        * timeouts { retry } */
	bool     is_error;     /* type='error': never bounced */
	bool     sm_counted;   /* on a link's unacknowledged list: sent after XEP-0198's
	                        * <enable/> (acked by <a/>), else proven by TCP (link.c) */
	uint64_t mark;         /* on a link's unacknowledged list: the stream offset of
	                        * its last byte (conn_out_mark) */
	struct handle origin;  /* the link that received it under stream management, or
	                        * null: that link acknowledges it once it is released */
	uint32_t origin_seq;   /* its XEP-0198 sequence number there */
	char     name[9];      /* "message", "presence" or "iq" */
	const char *from, *to; /* attribute values, NUL-terminated, inside data (never NULL) */
	const char *id;        /* id attribute or NULL */
	char     data[];       /* XML, NUL, then from, to, id strings */
};

/* Serialize el (a message/presence/iq in jabber:server with from and to) into a new
 * stanza. Returns NULL when el lacks from/to, or on OOM. Caller frees. */
struct stanza *stanza_from_xnode(const struct xnode *el);
/* Build a stanza from parts: name, from, to, id (may be NULL), is_error, and the XML. */
struct stanza *stanza_new(const char *name, const char *from, const char *to,
    const char *id, bool is_error, const char *xml, size_t len);
/* Free st. Freeing is its release: delivered (acknowledged by the next hop),
 * bounced, refused or discarded, the stanza is handled; a stanza with an origin tells
 * it through the hook (link.c, so that XEP-0198 acknowledges only what quickfed has
 * passed on). A copy (stanza_dup) carries no origin. */
void stanza_free(struct stanza *st);
typedef void stanza_release_fn(struct handle origin, uint32_t seq);
void stanza_set_release_hook(stanza_release_fn *fn);
/* A copy of st (next cleared), or NULL on OOM. */
struct stanza *stanza_dup(const struct stanza *st);
/* Bytes of every stanza alive (queued, held, in flight). */
size_t stanza_bytes_alive(void);
/* Stanzas alive. */
size_t stanza_count_alive(void);

#endif
