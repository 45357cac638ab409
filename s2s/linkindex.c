/* s2s/linkindex.c - links found by what a route looks for, without walking them all.
 * SPDX-License-Identifier: ISC
 * The multimap behind link_find_ride (linkindex.h): chained buckets of (key, item)
 * nodes, a power-of-two table doubled when it holds twice as many nodes as buckets;
 * each member keeps its own nodes in a second chain so that removing an item touches
 * only its buckets. Keys are FNV-1a over a kind byte and the lower-cased name (or the
 * bytes): a collision only adds a candidate the caller checks and discards. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "linkindex.h"

struct lindex_node {
	uint64_t            key;
	void               *item;
	struct lindex_node *next;    /* in its bucket */
	struct lindex_node *mnext;   /* in its member's list */
};

static struct lindex_node **tab;
static size_t mask;              /* buckets - 1, when tab != NULL */
static size_t count;

static uint64_t
fnv_byte(uint64_t h, unsigned char c)
{
	return (h ^ c) * 0x100000001b3ULL;
}

uint64_t
lindex_key_name(enum lindex_kind kind, const char *name, unsigned port)
{
	uint64_t h = fnv_byte(0xcbf29ce484222325ULL, (unsigned char)kind);

	for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++)
		h = fnv_byte(h, (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
	h = fnv_byte(h, 0);
	h = fnv_byte(h, (unsigned char)(port >> 8));
	return fnv_byte(h, (unsigned char)port);
}

uint64_t
lindex_key_bytes(enum lindex_kind kind, const void *data, size_t n)
{
	uint64_t h = fnv_byte(0xcbf29ce484222325ULL, (unsigned char)kind);

	for (size_t i = 0; i < n; i++)
		h = fnv_byte(h, ((const unsigned char *)data)[i]);
	return h;
}

/* Twice the buckets, every node moved. Out of memory keeps the old table (longer
 * chains, same answers). */
static void
grow(void)
{
	size_t nb = tab == NULL ? 64 : (mask + 1) * 2;
	struct lindex_node **nt = calloc(nb, sizeof(*nt));

	if (nt == NULL)
		return;
	for (size_t b = 0; tab != NULL && b <= mask; b++)
		while (tab[b] != NULL) {
			struct lindex_node *n = tab[b];

			tab[b] = n->next;
			n->next = nt[n->key & (nb - 1)];
			nt[n->key & (nb - 1)] = n;
		}
	free(tab);
	tab = nt;
	mask = nb - 1;
}

int
lindex_add(struct lindex_member *m, void *item, uint64_t key)
{
	struct lindex_node *n;

	for (n = m->nodes; n != NULL; n = n->mnext)
		if (n->key == key)
			return 0;
	if (tab == NULL || count >= 2 * (mask + 1))
		grow();
	if (tab == NULL || (n = malloc(sizeof(*n))) == NULL) {
		log_warnx("link index: out of memory");
		return -1;
	}
	n->key = key;
	n->item = item;
	n->next = tab[key & mask];
	tab[key & mask] = n;
	n->mnext = m->nodes;
	m->nodes = n;
	m->n++;
	count++;
	return 0;
}

void
lindex_remove(struct lindex_member *m)
{
	while (m->nodes != NULL) {
		struct lindex_node *n = m->nodes, **pp;

		m->nodes = n->mnext;
		for (pp = &tab[n->key & mask]; *pp != NULL; pp = &(*pp)->next)
			if (*pp == n) {
				*pp = n->next;
				break;
			}
		free(n);
		count--;
	}
	m->n = 0;
}

void
lindex_each(uint64_t key, void (*fn)(void *, void *), void *arg)
{
	if (tab == NULL)
		return;
	for (struct lindex_node *n = tab[key & mask]; n != NULL; n = n->next)
		if (n->key == key)
			fn(n->item, arg);
}

size_t
lindex_count(void)
{
	return count;
}

void
lindex_free(void)
{
	if (count != 0)
		log_warnx("link index: %zu entries left at exit", count);
	for (size_t b = 0; tab != NULL && b <= mask; b++)
		while (tab[b] != NULL) {
			struct lindex_node *n = tab[b];

			tab[b] = n->next;
			free(n);
		}
	free(tab);
	tab = NULL;
	mask = count = 0;
}
