/* tests/unit/test_srv.c - unit tests for dns/srv.c: RFC 2782 ordering and rdata parsing.
 * SPDX-License-Identifier: ISC
 * Drives srv_order() with a seeded random source (distribution checks over many runs)
 * and srv_parse_rdata() with good and hostile wire-format rdata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns/srv.h"

/* xorshift64*: deterministic, seeded per test. */
struct test_rng {
	uint64_t s;
};

static uint32_t
test_rng_next(void *arg, uint32_t bound)
{
	struct test_rng *r = arg;

	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (uint32_t)((r->s * 2685821657736338717ULL) >> 32) % bound;
}

/* A random source that always returns its maximum: shows where the running sum lands. */
static uint32_t
test_rng_max(void *arg, uint32_t bound)
{
	return bound - 1;
}

static uint32_t
test_rng_zero(void *arg, uint32_t bound)
{
	return 0;
}

static void
set_rec(struct srv_record *r, uint16_t prio, uint16_t weight, uint16_t port,
    const char *target)
{
	memset(r, 0, sizeof(*r));
	r->priority = prio;
	r->weight = weight;
	r->port = port;
	strcpy(r->target, target);
}

static void
test_order_priority(void **state)
{
	struct srv_record recs[5];
	struct test_rng rng = { 0x1234567 };

	set_rec(&recs[0], 30, 10, 1, "c");
	set_rec(&recs[1], 10, 10, 2, "a");
	set_rec(&recs[2], 20, 10, 3, "b");
	set_rec(&recs[3], 40, 0, 4, "d");
	set_rec(&recs[4], 5, 65535, 5, "first");
	srv_order(recs, 5, test_rng_next, &rng);
	assert_string_equal(recs[0].target, "first");
	assert_string_equal(recs[1].target, "a");
	assert_string_equal(recs[2].target, "b");
	assert_string_equal(recs[3].target, "c");
	assert_string_equal(recs[4].target, "d");
	assert_int_equal(recs[3].port, 1);
}

/* Priority groups stay contiguous and in ascending order, whatever the weights. */
static void
test_order_groups_contiguous(void **state)
{
	struct test_rng rng = { 42 };

	for (int run = 0; run < 500; run++) {
		struct srv_record recs[8];

		for (int i = 0; i < 8; i++) {
			char name[16];

			snprintf(name, sizeof(name), "h%d", i);
			set_rec(&recs[i], (uint16_t)(test_rng_next(&rng, 3) * 10),
			    (uint16_t)test_rng_next(&rng, 100), (uint16_t)i, name);
		}
		srv_order(recs, 8, test_rng_next, &rng);
		for (int i = 1; i < 8; i++)
			assert_true(recs[i - 1].priority <= recs[i].priority);
		/* each record appears exactly once */
		unsigned seen = 0;
		for (int i = 0; i < 8; i++)
			seen |= 1u << recs[i].port;
		assert_int_equal(seen, 0xff);
	}
}

static void
test_order_weighted_distribution(void **state)
{
	struct test_rng rng = { 0xdeadbeefcafeULL };
	unsigned first[3] = { 0, 0, 0 };
	const int runs = 10000;

	for (int run = 0; run < runs; run++) {
		struct srv_record recs[3];

		set_rec(&recs[0], 0, 10, 0, "w10");
		set_rec(&recs[1], 0, 30, 1, "w30");
		set_rec(&recs[2], 0, 60, 2, "w60");
		srv_order(recs, 3, test_rng_next, &rng);
		first[recs[0].port]++;
	}
	/* Expected ~10/30/60 % (exactly 11/30/60 of 101 with rnd(sum+1)); allow ±3 %. */
	assert_in_range(first[0], runs * 7 / 100, runs * 14 / 100);
	assert_in_range(first[1], runs * 27 / 100, runs * 33 / 100);
	assert_in_range(first[2], runs * 56 / 100, runs * 64 / 100);
	assert_int_equal(first[0] + first[1] + first[2], runs);
}

/* Second pick: after removing the first, the rest is again weight-proportional. */
static void
test_order_weighted_second(void **state)
{
	struct test_rng rng = { 99 };
	unsigned second_w30 = 0, second_w10 = 0;

	for (int run = 0; run < 10000; run++) {
		struct srv_record recs[3];

		set_rec(&recs[0], 0, 10, 0, "w10");
		set_rec(&recs[1], 0, 30, 1, "w30");
		set_rec(&recs[2], 0, 60, 2, "w60");
		srv_order(recs, 3, test_rng_next, &rng);
		if (recs[0].port == 2) {
			if (recs[1].port == 1)
				second_w30++;
			else
				second_w10++;
		}
	}
	/* Given w60 first, w30 follows with ~31/41 probability. */
	assert_true(second_w30 > 2 * second_w10);
}

static void
test_order_zero_weights(void **state)
{
	struct srv_record recs[3];

	/* rnd always 0: the zero-weight record (moved to the front) is chosen first. */
	set_rec(&recs[0], 0, 50, 0, "heavy");
	set_rec(&recs[1], 0, 0, 1, "zero");
	set_rec(&recs[2], 0, 50, 2, "heavy2");
	srv_order(recs, 3, test_rng_zero, NULL);
	assert_string_equal(recs[0].target, "zero");

	/* rnd always max: the last heavy record is chosen, the zero one ends up last. */
	set_rec(&recs[0], 0, 50, 0, "heavy");
	set_rec(&recs[1], 0, 0, 1, "zero");
	set_rec(&recs[2], 0, 50, 2, "heavy2");
	srv_order(recs, 3, test_rng_max, NULL);
	assert_string_equal(recs[0].target, "heavy2");
	assert_string_equal(recs[1].target, "heavy");
	assert_string_equal(recs[2].target, "zero");

	/* All zero weights: every record still appears once. */
	struct test_rng rng = { 7 };
	set_rec(&recs[0], 0, 0, 0, "x");
	set_rec(&recs[1], 0, 0, 1, "y");
	set_rec(&recs[2], 0, 0, 2, "z");
	srv_order(recs, 3, test_rng_next, &rng);
	assert_int_equal((1u << recs[0].port) | (1u << recs[1].port) | (1u << recs[2].port), 7);

	/* A zero-weight record beside weighted ones is picked first only rarely. */
	unsigned zero_first = 0;
	for (int run = 0; run < 10000; run++) {
		set_rec(&recs[0], 0, 100, 0, "a");
		set_rec(&recs[1], 0, 0, 1, "zero");
		set_rec(&recs[2], 0, 100, 2, "b");
		srv_order(recs, 3, test_rng_next, &rng);
		if (recs[0].port == 1)
			zero_first++;
	}
	assert_in_range(zero_first, 1, 100);   /* 1/201 expected: ~50 */
}

static void
test_order_trivial(void **state)
{
	struct srv_record rec;

	srv_order(NULL, 0, test_rng_zero, NULL);
	set_rec(&rec, 1, 2, 3, "only");
	srv_order(&rec, 1, test_rng_zero, NULL);
	assert_string_equal(rec.target, "only");
}

static void
test_parse_good(void **state)
{
	static const unsigned char rd[] = {
		0x00, 0x05, 0x00, 0x0a, 0x14, 0x95,           /* 5 10 5269 */
		4, 'x', 'm', 'p', 'p', 1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0
	};
	struct srv_record rec;

	memset(&rec, 0xaa, sizeof(rec));
	assert_int_equal(srv_parse_rdata(rd, sizeof(rd), &rec), 0);
	assert_int_equal(rec.priority, 5);
	assert_int_equal(rec.weight, 10);
	assert_int_equal(rec.port, 5269);
	assert_string_equal(rec.target, "xmpp.a.example");
	assert_false(rec.direct_tls);
}

static void
test_parse_root(void **state)
{
	static const unsigned char rd[] = { 0, 0, 0, 0, 0, 0, 0 };
	struct srv_record rec;

	assert_int_equal(srv_parse_rdata(rd, sizeof(rd), &rec), 0);
	assert_string_equal(rec.target, "");
	assert_int_equal(rec.port, 0);
}

static void
test_parse_max_name(void **state)
{
	/* 4 labels of 63 bytes = 4*64 + 1 = 257 wire bytes: too long. 3*64 + 61+1 + 1 = 255 ok. */
	unsigned char rd[6 + 300];
	struct srv_record rec;
	size_t p = 6;

	memset(rd, 0, sizeof(rd));
	for (int l = 0; l < 3; l++) {
		rd[p++] = 63;
		memset(&rd[p], 'a', 63);
		p += 63;
	}
	rd[p++] = 61;
	memset(&rd[p], 'b', 61);
	p += 61;
	rd[p++] = 0;
	assert_int_equal(p - 6, 255);
	assert_int_equal(srv_parse_rdata(rd, p, &rec), 0);
	assert_int_equal(strlen(rec.target), 253);

	/* One more byte in the last label: 256 wire bytes. */
	p = 6 + 3 * 64;
	rd[p++] = 62;
	memset(&rd[p], 'b', 62);
	p += 62;
	rd[p++] = 0;
	assert_int_equal(srv_parse_rdata(rd, p, &rec), -1);
}

static void
test_parse_malformed(void **state)
{
	struct srv_record rec;
	static const unsigned char short_fixed[] = { 0, 1, 0, 2, 0 };
	static const unsigned char no_name[] = { 0, 1, 0, 2, 0, 3 };
	static const unsigned char truncated[] = { 0, 1, 0, 2, 0, 3, 4, 'x', 'm', 'p', 'p' };
	static const unsigned char past_end[] = { 0, 1, 0, 2, 0, 3, 9, 'x', 'm', 0 };
	static const unsigned char huge_label[] = { 0, 1, 0, 2, 0, 3, 200, 'x', 0 };
	static const unsigned char compressed[] = { 0, 1, 0, 2, 0, 3, 0xc0, 0x0c };
	static const unsigned char comp_after[] = { 0, 1, 0, 2, 0, 3, 1, 'a', 0xc0, 0x00 };
	static const unsigned char trailing[] = { 0, 1, 0, 2, 0, 3, 1, 'a', 0, 'z' };
	static const unsigned char nul_in_label[] = { 0, 1, 0, 2, 0, 3, 3, 'a', 0, 'b', 0 };
	static const unsigned char dot_in_label[] = { 0, 1, 0, 2, 0, 3, 3, 'a', '.', 'b', 0 };
	static const unsigned char no_terminator[] = { 0, 1, 0, 2, 0, 3, 1, 'a' };

	assert_int_equal(srv_parse_rdata(short_fixed, sizeof(short_fixed), &rec), -1);
	assert_int_equal(srv_parse_rdata(no_name, sizeof(no_name), &rec), -1);
	assert_int_equal(srv_parse_rdata(truncated, sizeof(truncated), &rec), -1);
	assert_int_equal(srv_parse_rdata(past_end, sizeof(past_end), &rec), -1);
	assert_int_equal(srv_parse_rdata(huge_label, sizeof(huge_label), &rec), -1);
	assert_int_equal(srv_parse_rdata(compressed, sizeof(compressed), &rec), -1);
	assert_int_equal(srv_parse_rdata(comp_after, sizeof(comp_after), &rec), -1);
	assert_int_equal(srv_parse_rdata(trailing, sizeof(trailing), &rec), -1);
	assert_int_equal(srv_parse_rdata(nul_in_label, sizeof(nul_in_label), &rec), -1);
	assert_int_equal(srv_parse_rdata(dot_in_label, sizeof(dot_in_label), &rec), -1);
	assert_int_equal(srv_parse_rdata(no_terminator, sizeof(no_terminator), &rec), -1);
	assert_int_equal(srv_parse_rdata(NULL, 10, &rec), -1);
}

/* Every prefix of a valid rdata, and every single-byte corruption, is either parsed
 * into a bounded string or refused; nothing reads out of bounds (ASan watches). */
static void
test_parse_fuzzish(void **state)
{
	static const unsigned char good[] = {
		0x00, 0x05, 0x00, 0x0a, 0x14, 0x95,
		4, 'x', 'm', 'p', 'p', 1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0
	};
	struct srv_record rec;

	for (size_t n = 0; n < sizeof(good); n++) {
		unsigned char *copy = test_malloc(n ? n : 1);

		memcpy(copy, good, n);
		assert_int_equal(srv_parse_rdata(copy, n, &rec), -1);
		test_free(copy);
	}
	for (size_t i = 6; i < sizeof(good); i++)
		for (int v = 0; v < 256; v++) {
			unsigned char *copy = test_malloc(sizeof(good));

			memcpy(copy, good, sizeof(good));
			copy[i] = (unsigned char)v;
			if (srv_parse_rdata(copy, sizeof(good), &rec) == 0)
				assert_true(strlen(rec.target) < sizeof(rec.target));
			test_free(copy);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_priority),
		cmocka_unit_test(test_order_groups_contiguous),
		cmocka_unit_test(test_order_weighted_distribution),
		cmocka_unit_test(test_order_weighted_second),
		cmocka_unit_test(test_order_zero_weights),
		cmocka_unit_test(test_order_trivial),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_root),
		cmocka_unit_test(test_parse_max_name),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_fuzzish),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
