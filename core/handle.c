/* core/handle.c - handles with generation counters: references that go stale safely.
 * SPDX-License-Identifier: ISC
 * Used by s2s/route.c, verify.c and link.c for every reference that outlives a call
 * (see handle.h). One growing table of slots; free slots are chained and reused with
 * the next generation, so a stale handle never finds the slot's next occupant. */
#include <stdlib.h>

#include "handle.h"

struct slot {
	void            *obj;     /* NULL when free */
	enum handle_kind kind;
	uint32_t         gen;     /* bumped at every release */
	uint32_t         next_free; /* free list: slot index + 1, 0 = end */
};

static struct slot *slots;
static uint32_t nslots, free_head;
static unsigned long nused;

struct handle
handle_new(enum handle_kind kind, void *obj)
{
	struct handle h = HANDLE_NULL;
	uint32_t i;

	if (free_head == 0) {
		uint32_t n = nslots ? nslots * 2 : 64;
		struct slot *ns;

		if (n <= nslots || (ns = realloc(slots, n * sizeof(*ns))) == NULL)
			return h;
		for (i = nslots; i < n; i++) {
			ns[i].obj = NULL;
			ns[i].kind = HANDLE_NONE;
			ns[i].gen = 1;
			ns[i].next_free = i + 1 < n ? i + 2 : 0;
		}
		slots = ns;
		free_head = nslots + 1;
		nslots = n;
	}
	i = free_head - 1;
	free_head = slots[i].next_free;
	slots[i].obj = obj;
	slots[i].kind = kind;
	nused++;
	h.idx = i + 1;
	h.gen = slots[i].gen;
	return h;
}

void *
handle_get(struct handle h, enum handle_kind kind)
{
	const struct slot *s;

	if (h.idx == 0 || h.idx > nslots)
		return NULL;
	s = &slots[h.idx - 1];
	if (s->gen != h.gen || s->kind != kind)
		return NULL;
	return s->obj;
}

void
handle_release(struct handle h)
{
	struct slot *s;

	if (h.idx == 0 || h.idx > nslots)
		return;
	s = &slots[h.idx - 1];
	if (s->gen != h.gen || s->obj == NULL)
		return;
	s->obj = NULL;
	s->kind = HANDLE_NONE;
	s->gen++;
	s->next_free = free_head;
	free_head = h.idx;
	nused--;
}

bool
handle_is_null(struct handle h)
{
	return h.idx == 0;
}

unsigned long
handle_count(void)
{
	return nused;
}

void
handle_free_all(void)
{
	free(slots);
	slots = NULL;
	nslots = free_head = 0;
	nused = 0;
}
