/* core/memtrim.c - give the kernel back memory the process holds but does not use.
 * SPDX-License-Identifier: ISC
 * See memtrim.h. Only whole pages strictly inside a block are touched, so the
 * allocator's own headers around it (and its neighbours) are never part of a range.
 * Each page is checked word by word; the check stops at the first non-zero word. */
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memtrim.h"

static size_t
page_size(void)
{
	static size_t ps;
	long v;

	if (ps == 0) {
		v = sysconf(_SC_PAGESIZE);
		ps = v > 0 ? (size_t)v : 4096;
	}
	return ps;
}

static int
page_is_zero(const unsigned char *pg, size_t ps)
{
	const uint64_t *w = (const uint64_t *)(const void *)pg;
	size_t i;

	for (i = 0; i < ps / sizeof(*w); i++)
		if (w[i] != 0)
			return 0;
	return 1;
}

size_t
memtrim_zero_pages(void *p, size_t n)
{
	size_t ps = page_size(), given = 0;
	uintptr_t lo, hi, a, run = 0;

	if (p == NULL || n < ps)
		return 0;
	lo = ((uintptr_t)p + ps - 1) & ~(uintptr_t)(ps - 1);
	hi = ((uintptr_t)p + n) & ~(uintptr_t)(ps - 1);
	for (a = lo; a < hi; a += ps) {
		if (page_is_zero((const unsigned char *)a, ps)) {
			if (run == 0)
				run = a;
			continue;
		}
		if (run != 0 && madvise((void *)run, a - run, MADV_DONTNEED) == 0)
			given += a - run;
		run = 0;
	}
	if (run != 0 && madvise((void *)run, hi - run, MADV_DONTNEED) == 0)
		given += hi - run;
	return given;
}

size_t
memtrim_block(void *block)
{
	if (block == NULL)
		return 0;
	return memtrim_zero_pages(block, malloc_usable_size(block));
}

int
memtrim_heap(void)
{
	return malloc_trim(0);
}
