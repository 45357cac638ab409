/* core/buf.c - bounded, growable byte buffer.
 * SPDX-License-Identifier: ISC
 * See buf.h. Consuming moves a read offset (data) forward; the dead prefix before it is
 * reclaimed by one memmove only when an append needs the room and the prefix is at
 * least half the live bytes, so every byte consumed pays for at most two moved. Else
 * the allocation grows (doubling; it may reach 1.5 x max, which is what keeps that
 * bound when the buffer is near full) and growth copies only the live bytes. A drained
 * buffer starts again at the front, and one larger than BUF_IDLE_CAP is released. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define BUF_FIRST_CAP  256

static size_t alloc_limit(const struct buf *);
static void compact(struct buf *);
static int buf_reserve(struct buf *, size_t);

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = b->off = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	if (b->data != NULL)
		free(b->data - b->off);
	b->data = NULL;
	b->len = b->cap = b->off = 0;
}

/* The largest allocation a buffer takes: 1.5 x max (the NUL guard must still fit). */
static size_t
alloc_limit(const struct buf *b)
{
	size_t half = b->max / 2;

	return b->max > SIZE_MAX - 1 - half ? SIZE_MAX - 1 : b->max + half;
}

/* Move the live bytes (and their NUL) to the front of the allocation. */
static void
compact(struct buf *b)
{
	if (b->off == 0 || b->data == NULL)
		return;
	memmove(b->data - b->off, b->data, b->len + 1);
	b->data -= b->off;
	b->off = 0;
}

/* Room for n more bytes after the live ones; the caller checked len + n <= max. */
static int
buf_reserve(struct buf *b, size_t n)
{
	size_t need = b->len + n, lim = alloc_limit(b), ncap;
	char *p;

	if (b->data != NULL && b->cap - b->off - b->len >= n)
		return 0;
	if (b->data != NULL && b->off >= b->len / 2 && need <= b->cap) {
		compact(b);     /* cheap: the prefix is at least half what moves */
		return 0;
	}
	if (need > lim)
		return -1;
	ncap = b->cap == 0 ? BUF_FIRST_CAP : b->cap > lim / 2 ? lim : b->cap * 2;
	while (ncap < need)
		ncap = ncap > lim / 2 ? lim : ncap * 2;
	if (ncap > lim)
		ncap = lim;
	if (b->data != NULL && ncap <= b->cap) {
		/* at the limit: then the prefix is at least half the live bytes */
		compact(b);
		return b->cap - b->len >= n ? 0 : -1;
	}
	if (b->off == 0) {
		if ((p = realloc(b->data, ncap + 1)) == NULL)
			return -1;
	} else {
		if ((p = malloc(ncap + 1)) == NULL)
			return -1;
		memcpy(p, b->data, b->len + 1);
		free(b->data - b->off);
		b->off = 0;
	}
	if (b->data == NULL)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -1;
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (size_t)n > b->max || b->len > b->max - (size_t)n ||
	    buf_reserve(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int
buf_put_xml_escaped(struct buf *b, const char *s, size_t n)
{
	size_t start = 0, old = b->len;

	for (size_t i = 0; i < n; i++) {
		const char *rep;

		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\'': rep = "&apos;"; break;
		case '"': rep = "&quot;"; break;
		default: continue;
		}
		if (buf_append(b, s + start, i - start) == -1 || buf_puts(b, rep) == -1)
			goto fail;
		start = i + 1;
	}
	if (buf_append(b, s + start, n - start) == -1)
		goto fail;
	return 0;
fail:
	b->len = old;
	if (b->data)
		b->data[old] = '\0';
	return -1;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (b->data == NULL)
		return;
	if (n < b->len) {
		b->data += n;
		b->off += n;
		b->len -= n;
		return;     /* data[len] is still the NUL */
	}
	if (b->cap > BUF_IDLE_CAP) {
		buf_free(b);    /* after a burst: back to idle size */
		return;
	}
	b->data -= b->off;
	b->off = 0;
	b->len = 0;
	b->data[0] = '\0';
}

void
buf_reset(struct buf *b)
{
	buf_consume(b, b->len);
}

size_t
buf_room(const struct buf *b)
{
	return b->max - b->len;
}
