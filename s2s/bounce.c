/* s2s/bounce.c - error replies for stanzas quickfed cannot deliver (RFC 6120 §8.3).
 * SPDX-License-Identifier: ISC
 * Used by route.c when a route fails or a stanza cannot be delivered. Works on the
 * compact form (stanza.c): the reply quotes the original children byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "bounce.h"
#include "stanza.h"
#include "xnode.h"

static int
put_attr(struct buf *b, const char *name, const char *value)
{
	if (buf_printf(b, " %s='", name) == -1 ||
	    buf_put_xml_escaped(b, value, strlen(value)) == -1)
		return -1;
	return buf_puts(b, "'");
}

struct stanza *
bounce_make(const struct stanza *st, const char *cond, const char *type, const char *text)
{
	struct buf b;
	struct stanza *e = NULL;

	if (st == NULL || st->is_error)
		return NULL;
	buf_init(&b, (size_t)st->len + 4096);
	if (buf_printf(&b, "<%s", st->name) == -1 || put_attr(&b, "from", st->to) == -1 ||
	    put_attr(&b, "to", st->from) == -1 || put_attr(&b, "type", "error") == -1 ||
	    (st->id != NULL && put_attr(&b, "id", st->id) == -1) || buf_puts(&b, ">") == -1 ||
	    buf_append(&b, st->data + st->inner_off, st->inner_len) == -1 ||
	    buf_puts(&b, "<error") == -1 || put_attr(&b, "type", type) == -1 ||
	    buf_printf(&b, "><%s xmlns='" NS_STANZAS_E "'/>", cond) == -1)
		goto out;
	if (text != NULL && (buf_puts(&b, "<text xmlns='" NS_STANZAS_E "'>") == -1 ||
	    buf_put_xml_escaped(&b, text, strlen(text)) == -1 || buf_puts(&b, "</text>") == -1))
		goto out;
	if (buf_printf(&b, "</error></%s>", st->name) == -1)
		goto out;
	e = stanza_new(st->name, st->to, st->from, st->id, true, b.data, b.len);
out:
	buf_free(&b);
	return e;
}
