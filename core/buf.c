/* core/buf.c - bounded, growable byte buffer.
 * SPDX-License-Identifier: ISC
 * See buf.h. Growth doubles up to max; consumption moves the tail down (buffers are small
 * and bounded, so memmove is cheaper than ring bookkeeping). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static int buf_reserve(struct buf *, size_t);

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int
buf_reserve(struct buf *b, size_t need)
{
	size_t ncap;
	char *n;

	if (need > b->max)
		return -1;
	if (need <= b->cap && b->data != NULL)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	if (ncap > b->max)
		ncap = b->max;
	if ((n = realloc(b->data, ncap + 1)) == NULL)
		return -1;
	b->data = n;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -1;
	if (buf_reserve(b, b->len + n) == -1)
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
	if (n < 0 || buf_reserve(b, b->len + (size_t)n) == -1)
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
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
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
