/* core/buf.h - bounded, growable byte buffer.
 * SPDX-License-Identifier: ISC
 * Connections own one buffer per direction; parsers and serializers append to them.
 * A buffer never holds more than its max: appends that would are refused with -1, which
 * the caller turns into backpressure or a close with a reason. Consuming from the front
 * is O(1) (a read offset); the dead prefix is reclaimed only when an append needs the
 * room, and a buffer that drains after a burst gives its large allocation back. */
#ifndef QF_BUF_H
#define QF_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* A drained buffer whose allocation is larger than this releases it (buf_consume,
 * buf_reset): after a burst a buffer is back to idle size (nothing). */
#define BUF_IDLE_CAP  (16u << 10)

struct buf {
	char   *data;  /* the first unconsumed byte, inside the allocation (NULL before the
	                * first append and after a release); data[len] is always '\0' */
	size_t  len;   /* bytes in use from data on */
	size_t  cap;   /* bytes allocated (excluding the NUL guard), consumed prefix included */
	size_t  max;   /* hard limit on len */
	size_t  off;   /* consumed bytes before data (dead prefix of the allocation) */
};

/* Initialise an empty buffer that may hold up to max bytes. Allocates lazily. */
void buf_init(struct buf *b, size_t max);
/* Release the storage; the buffer is empty (and reusable) on exit. */
void buf_free(struct buf *b);
/* Append n bytes; returns 0, or -1 (buffer unchanged) when it would exceed max
 * or memory is exhausted. May move data (compaction or growth): pointers into the
 * buffer are invalid after an append. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Append s with XML escaping for text or attribute values (&, <, >, ', "). */
int buf_put_xml_escaped(struct buf *b, const char *s, size_t n);
/* Drop the first n bytes (n > len drops all) in O(1): data moves forward. A buffer
 * left empty starts again at the front of its allocation, or releases it when it is
 * larger than BUF_IDLE_CAP. */
void buf_consume(struct buf *b, size_t n);
/* Drop everything (buf_consume(b, b->len)). */
void buf_reset(struct buf *b);
/* Free space before max (what appends may still add). */
size_t buf_room(const struct buf *b);

#endif
