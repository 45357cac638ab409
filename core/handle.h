/* core/handle.h - handles with generation counters: references that go stale safely.
 * SPDX-License-Identifier: ISC
 * An object that others must reach across callbacks (a route, a dialback verification
 * session, a link) registers itself and hands out a struct handle instead of its
 * address. When it is freed its slot's generation moves on, so every handle still held
 * (by a link's owner field, a verification job, a pending timer) looks up to NULL
 * instead of a dangling pointer. Lookup is O(1): an index into one table. */
#ifndef QF_HANDLE_H
#define QF_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

/* What a handle refers to; a lookup with the wrong kind finds nothing. */
enum handle_kind {
	HANDLE_NONE = 0,   /* the null handle */
	HANDLE_ROUTE,      /* s2s/route.c: struct route */
	HANDLE_VERIFY,     /* s2s/verify.c: struct session */
	HANDLE_LINK,       /* s2s/link.c: struct link */
};

struct handle {
	uint32_t idx;      /* slot + 1; 0 is the null handle */
	uint32_t gen;      /* the slot's generation when the handle was made */
};

#define HANDLE_NULL ((struct handle){ 0, 0 })

/* Register obj (borrowed) under kind. Returns its handle, or the null handle when out
 * of memory. */
struct handle handle_new(enum handle_kind kind, void *obj);
/* The object h refers to, or NULL when h is null, was released, or is of another kind. */
void *handle_get(struct handle h, enum handle_kind kind);
/* The object is going away: h (and every copy of it) finds nothing from now on. */
void handle_release(struct handle h);
bool handle_is_null(struct handle h);
/* Handles registered and not released (tests). */
unsigned long handle_count(void);
/* At exit: free the table (every handle must have been released). */
void handle_free_all(void);

#endif
