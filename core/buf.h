/* core/buf.h - bounded, growable byte buffer.
 * SPDX-License-Identifier: ISC
 * Connections own one buffer per direction; parsers and serializers append to them.
 * A buffer never grows past its max: appends that would are refused with -1, which the
 * caller turns into backpressure or a close with a reason. */
#ifndef QF_BUF_H
#define QF_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char   *data;  /* owned; data[len] is always '\0' so text can be printed */
	size_t  len;   /* bytes in use */
	size_t  cap;   /* bytes allocated (excluding the NUL guard) */
	size_t  max;   /* hard limit on len */
};

/* Initialise an empty buffer that may hold up to max bytes. Allocates lazily. */
void buf_init(struct buf *b, size_t max);
/* Release the storage; the buffer is empty (and reusable) on exit. */
void buf_free(struct buf *b);
/* Append n bytes; returns 0, or -1 (buffer unchanged) when it would exceed max
 * or memory is exhausted. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Append s with XML escaping for text or attribute values (&, <, >, ', "). */
int buf_put_xml_escaped(struct buf *b, const char *s, size_t n);
/* Drop the first n bytes (n > len drops all). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Free space before max. */
size_t buf_room(const struct buf *b);

#endif
