/* s2s/stanza.c - a stanza kept as the bytes it will be sent as.
 * SPDX-License-Identifier: ISC
 * One allocation per stanza: the XML as xnode_serialize() wrote it (so it is sent with
 * one copy), followed by its from, to and id. The children's byte range is recorded so
 * bounce.c can quote the original payload in an error reply without re-parsing. The
 * gauges below count what is alive; route.c and stream.c compare them with the
 * budgets of limits { }. */
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "stanza.h"
#include "xnode.h"

/* malloc's per-allocation overhead as glibc has it, for honest accounting. */
#define ALLOC_OVERHEAD 16

static size_t bytes_alive, count_alive;
static stanza_release_fn *release_hook;

void
stanza_set_release_hook(stanza_release_fn *fn)
{
	release_hook = fn;
}

static size_t
cost_of(size_t n)
{
	return ((n + ALLOC_OVERHEAD + 15) & ~(size_t)15);
}

struct stanza *
stanza_new(const char *name, const char *from, const char *to, const char *id,
    bool is_error, const char *xml, size_t len)
{
	struct stanza *st;
	size_t fl, tl, il, total;
	char *p;

	if (name == NULL || from == NULL || to == NULL || strlen(name) >= sizeof(st->name) ||
	    len > UINT32_MAX / 2)
		return NULL;
	fl = strlen(from);
	tl = strlen(to);
	il = id ? strlen(id) : 0;
	total = sizeof(*st) + len + 1 + fl + 1 + tl + 1 + (id ? il + 1 : 0);
	if ((st = malloc(total)) == NULL)
		return NULL;
	memset(st, 0, sizeof(*st));
	memcpy(st->name, name, strlen(name) + 1);
	st->is_error = is_error;
	st->len = (uint32_t)len;
	memcpy(st->data, xml, len);
	st->data[len] = '\0';
	p = st->data + len + 1;
	memcpy(p, from, fl + 1);
	st->from = p;
	p += fl + 1;
	memcpy(p, to, tl + 1);
	st->to = p;
	p += tl + 1;
	if (id != NULL) {
		memcpy(p, id, il + 1);
		st->id = p;
	}
	/* the children: after the start tag's '>' (values never hold a raw '>': the
	 * serializer escapes it) and before the last "</" */
	if (len >= 2 && xml[len - 2] != '/') {
		const char *gt = memchr(xml, '>', len);
		const char *end = xml + len - 2;

		while (end > xml && !(end[0] == '<' && end[1] == '/'))
			end--;
		if (gt != NULL && end > gt) {
			st->inner_off = (uint32_t)(gt + 1 - xml);
			st->inner_len = (uint32_t)(end - (gt + 1));
		}
	}
	st->cost = (uint32_t)cost_of(total);
	bytes_alive += st->cost;
	count_alive++;
	return st;
}

struct stanza *
stanza_from_xnode(const struct xnode *el)
{
	static struct buf scratch;   /* reused: one serialization at a time */
	const char *from = xnode_attr(el, "from"), *to = xnode_attr(el, "to");
	const char *type = xnode_attr(el, "type");
	struct stanza *st;

	if (el == NULL || el->is_text || from == NULL || to == NULL)
		return NULL;
	if (scratch.max == 0)
		buf_init(&scratch, (size_t)1 << 30);
	buf_reset(&scratch);
	if (xnode_serialize(el, NS_SERVER, &scratch) == -1)
		return NULL;
	st = stanza_new(el->name, from, to, xnode_attr(el, "id"),
	    type != NULL && strcmp(type, "error") == 0, scratch.data, scratch.len);
	if (scratch.cap > 65536)
		buf_free(&scratch);   /* keep no large scratch around */
	return st;
}

struct stanza *
stanza_dup(const struct stanza *st)
{
	return stanza_new(st->name, st->from, st->to, st->id, st->is_error, st->data, st->len);
}

void
stanza_free(struct stanza *st)
{
	if (st == NULL)
		return;
	bytes_alive -= st->cost;
	count_alive--;
	if (!handle_is_null(st->origin) && release_hook != NULL)
		release_hook(st->origin, st->origin_seq);
	free(st);
}

size_t
stanza_bytes_alive(void)
{
	return bytes_alive;
}

size_t
stanza_count_alive(void)
{
	return count_alive;
}
