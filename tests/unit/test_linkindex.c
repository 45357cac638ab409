/* tests/unit/test_linkindex.c - the multimap link_find_ride finds its candidates in.
 * SPDX-License-Identifier: ISC */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../s2s/linkindex.h"

struct item {
	struct lindex_member m;
	int id;
	int hits;
};

static void
hit(void *item, void *arg)
{
	struct item *it = item;

	it->hits++;
	(*(int *)arg)++;
}

static int
count_under(uint64_t key)
{
	int n = 0;

	lindex_each(key, hit, &n);
	return n;
}

/* Keys are case-insensitive for names, distinct by kind and port; an item filed twice
 * under one key is found once; removal takes every entry of that item and no other. */
static void
test_keys_and_membership(void **state)
{
	struct item a = { .id = 1 }, b = { .id = 2 };
	uint64_t ka = lindex_key_name(LINDEX_REMOTE, "Example.ORG", 0);
	unsigned char addr[4] = { 127, 0, 0, 1 };

	(void)state;
	assert_true(ka == lindex_key_name(LINDEX_REMOTE, "example.org", 0));
	assert_true(ka != lindex_key_name(LINDEX_TARGET, "example.org", 0));
	assert_true(lindex_key_name(LINDEX_TARGET, "x", 5269) !=
	    lindex_key_name(LINDEX_TARGET, "x", 5270));
	assert_int_equal(lindex_add(&a.m, &a, ka), 0);
	assert_int_equal(lindex_add(&a.m, &a, ka), 0);        /* once per key */
	assert_int_equal(lindex_add(&b.m, &b, ka), 0);
	assert_int_equal(lindex_add(&b.m, &b, lindex_key_bytes(LINDEX_ADDR, addr, 4)), 0);
	assert_int_equal(lindex_count(), 3);
	assert_int_equal(a.m.n, 1);                          /* entries per member */
	assert_int_equal(b.m.n, 2);
	assert_int_equal(count_under(ka), 2);
	assert_int_equal(count_under(lindex_key_bytes(LINDEX_ADDR, addr, 4)), 1);
	assert_int_equal(count_under(lindex_key_name(LINDEX_REMOTE, "other.org", 0)), 0);
	lindex_remove(&b.m);
	assert_null(b.m.nodes);
	assert_int_equal(b.m.n, 0);
	assert_int_equal(lindex_count(), 1);
	a.hits = 0;
	assert_int_equal(count_under(ka), 1);
	assert_int_equal(a.hits, 1);
	assert_int_equal(count_under(lindex_key_bytes(LINDEX_ADDR, addr, 4)), 0);
	lindex_remove(&a.m);
	assert_int_equal(lindex_count(), 0);
	lindex_free();
}

/* 20,000 items under 10,000 keys (the table grows several times): each key finds its
 * two items and only them; after removing every other item, one each. */
static void
test_many(void **state)
{
	enum { N = 20000 };
	static struct item it[N];
	char name[32];

	(void)state;
	memset(it, 0, sizeof(it));
	for (int i = 0; i < N; i++) {
		it[i].id = i;
		snprintf(name, sizeof(name), "d%d.example", i / 2);
		assert_int_equal(lindex_add(&it[i].m, &it[i], lindex_key_name(LINDEX_REMOTE,
		    name, 0)), 0);
	}
	assert_int_equal(lindex_count(), N);
	for (int k = 0; k < N / 2; k++) {
		snprintf(name, sizeof(name), "D%d.EXAMPLE", k);
		assert_int_equal(count_under(lindex_key_name(LINDEX_REMOTE, name, 0)), 2);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(it[i].hits, 1);
	for (int i = 0; i < N; i += 2)
		lindex_remove(&it[i].m);
	for (int k = 0; k < N / 2; k++) {
		snprintf(name, sizeof(name), "d%d.example", k);
		assert_int_equal(count_under(lindex_key_name(LINDEX_REMOTE, name, 0)), 1);
	}
	for (int i = 1; i < N; i += 2) {
		assert_int_equal(it[i].hits, 2);
		lindex_remove(&it[i].m);
	}
	assert_int_equal(lindex_count(), 0);
	lindex_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_and_membership),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
