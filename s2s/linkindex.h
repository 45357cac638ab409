/* s2s/linkindex.h - links found by what a route looks for, without walking them all.
 * SPDX-License-Identifier: ISC
 * For link.c's link_find_ride: a multimap from a 64-bit key (a remote domain on a side,
 * a connect target host:port, a connected address, "the local side") to the links filed
 * under it. A link is filed under every key that may make it a candidate; a lookup
 * yields a superset (the caller checks each link as before), so a key filed too often
 * costs only a check. Each item is filed once per key; all its entries go when it
 * goes; the owner bounds how many an item has (link.c re-files a link from its
 * current state when its entries outgrow it). Single-threaded, owned by link.c. */
#ifndef QF_LINKINDEX_H
#define QF_LINKINDEX_H

#include <stddef.h>
#include <stdint.h>

struct lindex_node;

/* Embedded in each indexed item: the entries it is filed under (zeroed = none). */
struct lindex_member {
	struct lindex_node *nodes;
	size_t              n;       /* entries in nodes */
};

enum lindex_kind {
	LINDEX_LOCAL_SIDE = 1,   /* every link on the local side */
	LINDEX_REMOTE,           /* an internet-side link that may carry this remote domain */
	LINDEX_TARGET,           /* an initiator connected to this host:port */
	LINDEX_ADDR,             /* an initiator connected to this address */
};

/* The key of a domain or host name (case-insensitive) with port (0 for none). */
uint64_t lindex_key_name(enum lindex_kind kind, const char *name, unsigned port);
/* The key of raw bytes (an address). */
uint64_t lindex_key_bytes(enum lindex_kind kind, const void *data, size_t n);

/* File item under key (a no-op when it already is). Returns 0, or -1 out of memory
 * (logged; the caller then finds the item only by its other keys). */
int lindex_add(struct lindex_member *m, void *item, uint64_t key);
/* Take item out under every key. */
void lindex_remove(struct lindex_member *m);
/* Call fn(item, arg) for each item filed under key (each at most once per key; an item
 * filed under several keys is seen once per key looked up). fn must not add or remove. */
void lindex_each(uint64_t key, void (*fn)(void *item, void *arg), void *arg);
/* Entries filed in all (show stats, tests). */
size_t lindex_count(void);
/* Free the table (exit; every member must have been removed). */
void lindex_free(void);

#endif
