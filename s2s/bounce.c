/* s2s/bounce.c - error replies for stanzas quickfed cannot deliver (RFC 6120 §8.3).
 * SPDX-License-Identifier: ISC
 * Used by route.c when a route fails or a queue overflows. */
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "xnode.h"

bool
bounce_is_error(const struct xnode *st)
{
	const char *type = xnode_attr(st, "type");

	return type != NULL && strcmp(type, "error") == 0;
}

struct xnode *
bounce_make(const struct xnode *st, const char *cond, const char *type, const char *text)
{
	const char *from = xnode_attr(st, "from"), *to = xnode_attr(st, "to");
	const char *id = xnode_attr(st, "id");
	struct xnode *e, *err, *c;

	if (bounce_is_error(st) || from == NULL || to == NULL)
		return NULL;
	if ((e = xnode_new(st->name, st->ns)) == NULL)
		return NULL;
	if (xnode_set_attr(e, "from", to) == -1 || xnode_set_attr(e, "to", from) == -1 ||
	    xnode_set_attr(e, "type", "error") == -1 ||
	    (id != NULL && xnode_set_attr(e, "id", id) == -1))
		goto fail;
	/* Keep the original payload so the sender can tell what failed, but not for iq
	 * results (an error iq carries at most the original child). */
	for (const struct xnode *ch = st->children; ch; ch = ch->next) {
		struct xnode *d;

		if (ch->is_text || strcmp(ch->name, "error") == 0)
			continue;
		if ((d = xnode_dup(ch)) == NULL)
			goto fail;
		d->parent = e;
		if (e->last_child)
			e->last_child->next = d;
		else
			e->children = d;
		e->last_child = d;
	}
	if ((err = xnode_add_child(e, "error", e->ns)) == NULL ||
	    xnode_set_attr(err, "type", type) == -1 ||
	    (c = xnode_add_child(err, cond, "urn:ietf:params:xml:ns:xmpp-stanzas")) == NULL)
		goto fail;
	if (text != NULL) {
		if ((c = xnode_add_child(err, "text", "urn:ietf:params:xml:ns:xmpp-stanzas")) == NULL ||
		    xnode_add_text(c, text, strlen(text)) == NULL)
			goto fail;
	}
	return e;
fail:
	xnode_free(e);
	return NULL;
}
