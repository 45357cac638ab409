/* tests/unit/test_handle.c - handles with generation counters (core/handle.c).
 * SPDX-License-Identifier: ISC
 * A released handle finds nothing, even after its slot was reused; kinds do not mix;
 * the table grows past its first size with every handle still valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../core/handle.h"

static void
test_stale_after_release(void **state)
{
	int a, b;
	struct handle ha, hb;

	(void)state;
	ha = handle_new(HANDLE_ROUTE, &a);
	assert_false(handle_is_null(ha));
	assert_ptr_equal(handle_get(ha, HANDLE_ROUTE), &a);
	assert_null(handle_get(ha, HANDLE_LINK));           /* another kind: nothing */
	handle_release(ha);
	assert_null(handle_get(ha, HANDLE_ROUTE));
	hb = handle_new(HANDLE_ROUTE, &b);                   /* reuses the slot */
	assert_int_equal(hb.idx, ha.idx);
	assert_ptr_equal(handle_get(hb, HANDLE_ROUTE), &b);
	assert_null(handle_get(ha, HANDLE_ROUTE));           /* the old one stays stale */
	handle_release(ha);                                  /* a second release: no effect */
	assert_ptr_equal(handle_get(hb, HANDLE_ROUTE), &b);
	handle_release(hb);
	assert_int_equal(handle_count(), 0);
	assert_null(handle_get(HANDLE_NULL, HANDLE_ROUTE));
	assert_true(handle_is_null(HANDLE_NULL));
	handle_free_all();
}

static void
test_growth(void **state)
{
	static int objs[1000];
	struct handle h[1000];

	(void)state;
	for (int i = 0; i < 1000; i++)
		h[i] = handle_new(HANDLE_LINK, &objs[i]);
	assert_int_equal(handle_count(), 1000);
	for (int i = 0; i < 1000; i++)
		assert_ptr_equal(handle_get(h[i], HANDLE_LINK), &objs[i]);
	for (int i = 0; i < 1000; i += 2)
		handle_release(h[i]);
	for (int i = 0; i < 1000; i++)
		assert_ptr_equal(handle_get(h[i], HANDLE_LINK), i % 2 ? &objs[i] : NULL);
	for (int i = 1; i < 1000; i += 2)
		handle_release(h[i]);
	assert_int_equal(handle_count(), 0);
	handle_free_all();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stale_after_release),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
