/* tests/unit/test_buf.c - the bounded byte buffer (core/buf.c): O(1) consumption from
 * the front, compaction only when an append needs the room, release after a burst,
 * the max bound and hostile sizes, and a random run against a plain model.
 * SPDX-License-Identifier: ISC */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"

/* The invariants every operation keeps. */
static void
check_invariants(const struct buf *b)
{
	assert_true(b->len <= b->max);
	if (b->data == NULL) {
		assert_int_equal(b->len, 0);
		assert_int_equal(b->cap, 0);
		assert_int_equal(b->off, 0);
		return;
	}
	assert_true(b->off + b->len <= b->cap);
	assert_true(b->cap <= b->max + b->max / 2 || b->cap <= 256);
	assert_int_equal(b->data[b->len], '\0');
}

static void
fill(char *p, size_t n, size_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (seed + i) % 26);
}

static void
test_append_consume(void **state)
{
	struct buf b;
	char *base;

	(void)state;
	buf_init(&b, 1000);
	assert_null(b.data);
	assert_int_equal(buf_room(&b), 1000);
	assert_int_equal(buf_puts(&b, "hello, "), 0);
	assert_int_equal(buf_printf(&b, "%s %d", "world", 42), 0);
	assert_string_equal(b.data, "hello, world 42");
	assert_int_equal(b.len, 15);
	assert_int_equal(buf_room(&b), 985);
	base = b.data;
	/* consuming moves the read offset, not the bytes */
	buf_consume(&b, 7);
	assert_ptr_equal(b.data, base + 7);
	assert_int_equal(b.off, 7);
	assert_string_equal(b.data, "world 42");
	assert_int_equal(buf_room(&b), 992);
	buf_consume(&b, 0);
	assert_string_equal(b.data, "world 42");
	/* an append with room at the tail leaves the offset alone */
	assert_int_equal(buf_puts(&b, "!"), 0);
	assert_ptr_equal(b.data, base + 7);
	assert_string_equal(b.data, "world 42!");
	check_invariants(&b);
	/* more than there is drops all; a small drained buffer restarts at the front */
	buf_consume(&b, 1000);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.off, 0);
	assert_ptr_equal(b.data, base);
	assert_string_equal(b.data, "");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	assert_null(b.data);
	/* consuming or resetting a buffer that never allocated is harmless */
	buf_consume(&b, 5);
	buf_reset(&b);
	assert_null(b.data);
	/* and it is reusable after buf_free */
	assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_string_equal(b.data, "x");
	buf_free(&b);
}

/* The dead prefix is reclaimed by moving the live bytes down only when an append needs
 * the room and the prefix is at least half of what moves; otherwise the buffer grows. */
static void
test_compaction(void **state)
{
	struct buf b;
	char chunk[256], *base;
	size_t cap;

	(void)state;
	buf_init(&b, 4096);
	fill(chunk, sizeof(chunk), 0);
	assert_int_equal(buf_append(&b, chunk, 256), 0);
	cap = b.cap;
	assert_int_equal(cap, 256);
	base = b.data;
	/* prefix 200 >= live 56 / 2: the next append compacts in place */
	buf_consume(&b, 200);
	assert_int_equal(buf_append(&b, chunk, 100), 0);
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.data, base);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 156);
	assert_memory_equal(b.data, chunk + 200, 56);
	assert_memory_equal(b.data + 56, chunk, 100);
	check_invariants(&b);
	/* fill to the allocation, consume a little: prefix 10 < live 90: grows, and the
	 * copy keeps only the live bytes */
	assert_int_equal(buf_append(&b, chunk, 100), 0);
	assert_int_equal(b.len, 256);
	buf_consume(&b, 166);
	assert_int_equal(b.off, 166);
	assert_int_equal(buf_append(&b, chunk, 100), 0);
	assert_int_equal(b.off, 0);   /* 166 >= 90/2: compacted */
	buf_consume(&b, 10);
	assert_int_equal(b.len, 180);
	assert_int_equal(buf_append(&b, chunk, 80), 0);
	assert_int_equal(b.off, 0);
	assert_true(b.cap > cap);     /* 10 < 180/2: grew instead of moving 180 bytes */
	assert_int_equal(b.len, 260);
	assert_memory_equal(b.data + 180, chunk, 80);
	check_invariants(&b);
	buf_free(&b);
}

/* A full buffer that is read from the front and refilled at the back (a socket buffer
 * under a TLS engine taking records): contents stay right and the bytes moved by
 * compactions stay within twice the bytes consumed plus one buffer. */
static void
test_streaming_bound(void **state)
{
	static const size_t steps[] = { 1, 5, 17, 300, 1000, 4095 };
	const size_t max = 4096;

	(void)state;
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		struct buf b;
		char *model = malloc(max), *tmp = malloc(max);
		size_t k = steps[s], consumed = 0, moved = 0, next = 0;

		assert_non_null(model);
		assert_non_null(tmp);
		buf_init(&b, max);
		fill(tmp, max, next);
		assert_int_equal(buf_append(&b, tmp, max), 0);
		next += max;
		for (int round = 0; round < 3000; round++) {
			char *before_base;
			size_t before_off, before_cap, before_len;

			buf_consume(&b, k);
			consumed += k;
			before_base = b.data - b.off;
			before_off = b.off;
			before_cap = b.cap;
			before_len = b.len;
			fill(tmp, k, next);
			assert_int_equal(buf_append(&b, tmp, k), 0);
			next += k;
			if (before_off > 0 && b.off == 0 && b.cap == before_cap &&
			    b.data == before_base)
				moved += before_len;   /* a compaction */
			check_invariants(&b);
			assert_int_equal(b.len, max);
			/* full again: the model is the last max bytes produced */
			fill(model, max, next - max);
			assert_memory_equal(b.data, model, max);
			assert_int_equal(buf_room(&b), 0);
		}
		assert_true(moved <= 2 * consumed + max);
		buf_free(&b);
		free(model);
		free(tmp);
	}
}

/* After a burst the storage goes back: a drained buffer larger than BUF_IDLE_CAP
 * releases it; a small one keeps it for the next append. */
static void
test_shrink_after_burst(void **state)
{
	struct buf b;
	char *big = malloc(256 << 10);

	(void)state;
	assert_non_null(big);
	fill(big, 256 << 10, 3);
	buf_init(&b, 1u << 20);
	for (int i = 0; i < 4; i++)
		assert_int_equal(buf_append(&b, big + i * (64 << 10), 64 << 10), 0);
	assert_true(b.cap >= (256u << 10));
	/* partly drained: still holds what is left */
	buf_consume(&b, 200 << 10);
	assert_non_null(b.data);
	assert_memory_equal(b.data, big + (200 << 10), 56 << 10);
	buf_consume(&b, 56 << 10);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_room(&b), 1u << 20);
	/* the same through buf_reset */
	assert_int_equal(buf_append(&b, big, BUF_IDLE_CAP + 1), 0);
	buf_reset(&b);
	assert_null(b.data);
	/* small: kept */
	assert_int_equal(buf_append(&b, big, 1000), 0);
	buf_reset(&b);
	assert_non_null(b.data);
	assert_true(b.cap > 0 && b.cap <= BUF_IDLE_CAP);
	assert_string_equal(b.data, "");
	buf_free(&b);
	free(big);
}

/* Refusals leave the buffer unchanged; sizes near SIZE_MAX do not overflow. */
static void
test_hostile_sizes(void **state)
{
	struct buf b, z, huge;
	char c = 'x';
	size_t old;

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(buf_append(&b, &c, 1), -1);
	assert_int_equal(buf_puts(&b, "x"), -1);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	assert_string_equal(b.data, "0123456789");
	buf_consume(&b, 4);
	assert_int_equal(buf_room(&b), 4);
	assert_int_equal(buf_append(&b, "abcde", 5), -1);
	assert_int_equal(buf_printf(&b, "%s", "abcde"), -1);
	assert_string_equal(b.data, "456789");
	assert_int_equal(buf_printf(&b, "%s", "abcd"), 0);
	assert_string_equal(b.data, "456789abcd");
	assert_int_equal(buf_append(&b, &c, SIZE_MAX), -1);
	assert_int_equal(buf_append(&b, &c, SIZE_MAX - 5), -1);
	assert_string_equal(b.data, "456789abcd");
	check_invariants(&b);
	buf_consume(&b, SIZE_MAX);
	assert_int_equal(b.len, 0);
	/* escaping that does not fit is undone whole */
	assert_int_equal(buf_puts(&b, "ab"), 0);
	old = b.len;
	assert_int_equal(buf_put_xml_escaped(&b, "<&>", 3), -1);
	assert_int_equal(b.len, old);
	assert_string_equal(b.data, "ab");
	assert_int_equal(buf_put_xml_escaped(&b, "a\"b", 3), 0);   /* 2 + 8: just fits */
	assert_string_equal(b.data, "aba&quot;b");
	b.len = old;
	b.data[old] = '\0';
	assert_int_equal(buf_put_xml_escaped(&b, "a''", 3), -1);
	assert_string_equal(b.data, "ab");
	buf_reset(&b);
	assert_int_equal(buf_put_xml_escaped(&b, "<a'", 3), -1);  /* &lt;a&apos; = 11 */
	assert_int_equal(buf_put_xml_escaped(&b, "<a", 2), 0);
	assert_string_equal(b.data, "&lt;a");
	buf_free(&b);

	/* max 0: only empty appends, which still give a NUL-terminated string */
	buf_init(&z, 0);
	assert_int_equal(buf_append(&z, &c, 0), 0);
	assert_non_null(z.data);
	assert_string_equal(z.data, "");
	assert_int_equal(buf_append(&z, &c, 1), -1);
	assert_int_equal(buf_room(&z), 0);
	buf_free(&z);

	/* max SIZE_MAX: the allocation limit must not overflow */
	buf_init(&huge, SIZE_MAX);
	assert_int_equal(buf_puts(&huge, "abc"), 0);
	buf_consume(&huge, 2);
	assert_int_equal(buf_puts(&huge, "de"), 0);
	assert_string_equal(huge.data, "cde");
	assert_int_equal(buf_room(&huge), SIZE_MAX - 3);
	assert_int_equal(buf_append(&huge, &c, SIZE_MAX), -1);
	assert_int_equal(buf_append(&huge, &c, SIZE_MAX - 3), -1);  /* no such memory */
	assert_string_equal(huge.data, "cde");
	buf_free(&huge);
}

/* Callers roll back a failed serialization by restoring len (stream.c, xnode.c):
 * that stays right across a compaction done by the appends in between. */
static void
test_rollback_across_compaction(void **state)
{
	struct buf b;
	char chunk[200];
	size_t old;

	(void)state;
	buf_init(&b, 1000);
	fill(chunk, sizeof(chunk), 7);
	assert_int_equal(buf_append(&b, chunk, 200), 0);
	assert_int_equal(buf_append(&b, chunk, 56), 0);   /* cap 256, full */
	buf_consume(&b, 240);
	old = b.len;
	assert_int_equal(buf_append(&b, chunk, 150), 0);  /* compacts */
	assert_int_equal(b.off, 0);
	b.len = old;
	b.data[old] = '\0';
	assert_int_equal(b.len, 16);
	assert_memory_equal(b.data, chunk + 40, 16);
	check_invariants(&b);
	buf_free(&b);
}

/* Random operations against a plain model. */
static void
test_random_model(void **state)
{
	const size_t max = 3000;
	char *model = malloc(max + 1), tmp[1200];
	size_t mlen = 0;
	struct buf b;
	unsigned seed = 12345;

	(void)state;
	assert_non_null(model);
	buf_init(&b, max);
	for (int i = 0; i < 20000; i++) {
		unsigned r;
		size_t n;

		seed = seed * 1103515245u + 12345u;
		r = (seed >> 16) & 0x7fff;
		n = (r >> 3) % sizeof(tmp);
		switch (r & 7) {
		case 0: case 1: case 2:
			fill(tmp, n, (size_t)i);
			if (mlen + n <= max) {
				assert_int_equal(buf_append(&b, tmp, n), 0);
				memcpy(model + mlen, tmp, n);
				mlen += n;
			} else {
				assert_int_equal(buf_append(&b, tmp, n), -1);
			}
			break;
		case 3:
			if (mlen + 6 <= max) {
				assert_int_equal(buf_printf(&b, "<%04zu>", n % 10000), 0);
				snprintf(model + mlen, 7, "<%04zu>", n % 10000);
				mlen += 6;
			}
			break;
		case 4: case 5: case 6:
			n %= 700;
			buf_consume(&b, n);
			n = n < mlen ? n : mlen;
			memmove(model, model + n, mlen - n);
			mlen -= n;
			break;
		default:
			if ((r >> 3) % 16 == 0) {
				buf_reset(&b);
				mlen = 0;
			}
			break;
		}
		check_invariants(&b);
		assert_int_equal(b.len, mlen);
		assert_int_equal(buf_room(&b), max - mlen);
		if (mlen > 0)
			assert_memory_equal(b.data, model, mlen);
	}
	buf_free(&b);
	free(model);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_consume),
		cmocka_unit_test(test_compaction),
		cmocka_unit_test(test_streaming_bound),
		cmocka_unit_test(test_shrink_after_burst),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_rollback_across_compaction),
		cmocka_unit_test(test_random_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
