/* s2s/bounce.h - error replies for stanzas quickfed cannot deliver (RFC 6120 §8.3).
 * SPDX-License-Identifier: ISC
 * route.c calls bounce_make() for every queued stanza when a route fails; the reply goes
 * back to the sender through the opposite route. Error stanzas are never bounced. */
#ifndef QF_BOUNCE_H
#define QF_BOUNCE_H

#include <stdbool.h>

struct stanza;

/* Build the error reply to st: from/to swapped, same id, type='error', the original
 * children, and <error type='TYPE'><COND xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
 * <text>text</text></error>. type is "cancel"/"wait"/... Returns NULL when st must not
 * be bounced (it is an error itself) or on OOM; caller frees. */
struct stanza *bounce_make(const struct stanza *st, const char *cond, const char *type,
    const char *text);

#endif
