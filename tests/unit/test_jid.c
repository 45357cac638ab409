/* tests/unit/test_jid.c - the domain part of JIDs (s2s/jid.c), used for routing and the
 * addressing checks, on good and hostile input.
 * SPDX-License-Identifier: ISC */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "s2s/jid.h"

static void
test_domains(void **state)
{
	static const struct { const char *jid, *domain; } good[] = {
		{ "a.example", "a.example" },
		{ "alice@A.Example", "a.example" },
		{ "alice@a.example/phone", "a.example" },
		{ "a.example/res@with/slash", "a.example" },   /* '@' after '/' is resource */
		{ "a.example.", "a.example" },                 /* trailing dot dropped */
		{ "bob@xn--bcher-kva.example", "xn--bcher-kva.example" },
	};
	static const char *const bad[] = {
		"", "alice@", "@/x", "/res", "a b.example", "alice@a<b.example",
		"alice@a'b.example", "a&b.example", ".",
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(jid_domain(good[i].jid, out, sizeof(out)), 0);
		assert_string_equal(out, good[i].domain);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(jid_domain(bad[i], out, sizeof(out)), -1);
	assert_int_equal(jid_domain(NULL, out, sizeof(out)), -1);
	assert_int_equal(jid_domain("a.example", out, 5), -1);   /* does not fit */
}

/* Stream headers and dialback take a domain alone: no node, no resource. */
static void
test_domain_only(void **state)
{
	static const struct { const char *jid, *domain; } good[] = {
		{ "a.example", "a.example" },
		{ "A.Example.", "a.example" },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
		{ "localhost", "localhost" },
	};
	static const char *const bad[] = {
		"alice@a.example", "a.example/res", "alice@a.example/res", "@a.example",
		"a.example/", "a.example/res@x", "", ".", "a b.example",
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(jid_domain_only(good[i].jid, out, sizeof(out)), 0);
		assert_string_equal(out, good[i].domain);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (jid_domain_only(bad[i], out, sizeof(out)) != -1)
			fail_msg("'%s' accepted as a domain", bad[i]);
	assert_int_equal(jid_domain_only(NULL, out, sizeof(out)), -1);
}

static void
test_overlong(void **state)
{
	char jid[1100], out[2048];

	(void)state;
	memset(jid, 'a', sizeof(jid) - 1);
	jid[sizeof(jid) - 1] = '\0';
	assert_int_equal(jid_domain(jid, out, sizeof(out)), -1);
	assert_true(domain_eq("A.example", "a.EXAMPLE"));
	assert_false(domain_eq("a.example", NULL));
	assert_false(domain_eq("a.example", "b.example"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_domain_only),
		cmocka_unit_test(test_overlong),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
