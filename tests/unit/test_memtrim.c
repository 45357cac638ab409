/* tests/unit/test_memtrim.c - giving back the all-zero pages of a live heap block
 * (core/memtrim.c): only whole zero pages strictly inside the block leave memory
 * (mincore), the block reads the same afterwards, written pages and the bytes around
 * the block are kept, a page written again comes back, and small or odd ranges are
 * left alone.
 * SPDX-License-Identifier: ISC */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/memtrim.h"

static size_t ps;

/* Is the page at p resident? */
static int
resident(const void *p)
{
	unsigned char v = 0;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(ps - 1);

	assert_int_equal(mincore((void *)a, ps, &v), 0);
	return v & 1;
}

/* 16 pages of our own, page-aligned, every page touched (resident). */
static unsigned char *
block16(void)
{
	unsigned char *b = NULL;

	assert_int_equal(posix_memalign((void **)&b, ps, 16 * ps), 0);
	memset(b, 0, 16 * ps);
	return b;
}

static void
test_zero_pages_leave_written_stay(void **state)
{
	unsigned char *b = block16(), *copy = malloc(16 * ps);
	size_t given;

	assert_non_null(copy);
	b[3 * ps + 17] = 0x5a;          /* page 3 written */
	b[9 * ps + ps - 1] = 1;         /* the last byte of page 9 */
	b[12 * ps] = 7;                 /* the first byte of page 12 */
	memcpy(copy, b, 16 * ps);
	given = memtrim_zero_pages(b, 16 * ps);
	assert_int_equal(given, 13 * ps);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(resident(b + i * ps), i == 3 || i == 9 || i == 12);
	assert_memory_equal(b, copy, 16 * ps);   /* the same bytes (faults the zero page) */
	/* a page written again is there again, with what was written */
	b[5 * ps + 1] = 9;
	assert_true(resident(b + 5 * ps));
	assert_int_equal(b[5 * ps + 1], 9);
	assert_int_equal(b[5 * ps], 0);
	free(copy);
	free(b);
}

static void
test_only_whole_pages_inside(void **state)
{
	unsigned char *b = block16();

	/* from the middle of page 2 to the middle of page 6: pages 3, 4, 5 only */
	assert_int_equal(memtrim_zero_pages(b + 2 * ps + 100, 4 * ps), 3 * ps);
	assert_true(resident(b + 2 * ps));
	assert_false(resident(b + 3 * ps));
	assert_false(resident(b + 5 * ps));
	assert_true(resident(b + 6 * ps));
	/* ranges holding no whole page, NULL, empty */
	assert_int_equal(memtrim_zero_pages(b + 8 * ps + 1, ps), 0);
	assert_true(resident(b + 8 * ps));
	assert_int_equal(memtrim_zero_pages(b + 10 * ps + 1, ps - 2), 0);
	assert_int_equal(memtrim_zero_pages(NULL, 16 * ps), 0);
	assert_int_equal(memtrim_zero_pages(b, 0), 0);
	assert_int_equal(memtrim_block(NULL), 0);
	free(b);
}

static void
test_whole_block_from_malloc(void **state)
{
	size_t n = 40 * 1024;
	unsigned char *b = calloc(1, n);
	size_t given, pages = 0;

	assert_non_null(b);
	memset(b, 0, n);                /* resident, as wolfSSL's XMEMSET makes it */
	memcpy(b + 100, "chain", 5);    /* data near the start and the end */
	memcpy(b + n - 6, "tail!", 5);
	given = memtrim_block(b);
	for (uintptr_t a = ((uintptr_t)b + ps - 1) & ~(uintptr_t)(ps - 1);
	    a + ps <= (uintptr_t)b + n; a += ps)
		pages++;
	/* every whole page of the block but the ones holding the data */
	assert_true(given >= (pages - 2) * ps);
	assert_true(given <= pages * ps);
	assert_memory_equal(b + 100, "chain", 5);
	assert_memory_equal(b + n - 6, "tail!", 5);
	for (size_t i = 0; i < n; i++)
		if (i < 100 || (i >= 105 && i < n - 6) || i == n - 1)
			assert_int_equal(b[i], 0);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_pages_leave_written_stay),
		cmocka_unit_test(test_only_whole_pages_inside),
		cmocka_unit_test(test_whole_block_from_malloc),
	};

	ps = (size_t)sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
