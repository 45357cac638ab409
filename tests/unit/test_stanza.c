/* tests/unit/test_stanza.c - the compact stanza (s2s/stanza.c).
 * SPDX-License-Identifier: ISC
 * A stanza costs about what its XML takes, not the 40x of an element tree; its
 * addresses and children's byte range are right; the global gauges go back to zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s2s/stanza.h"
#include "s2s/xnode.h"

static void
test_from_xnode(void **state)
{
	struct xnode *m = xnode_new("message", NS_SERVER);
	struct stanza *st;

	(void)state;
	xnode_set_attr(m, "from", "a@a.example/r");
	xnode_set_attr(m, "to", "b@b.example");
	xnode_set_attr(m, "type", "chat");
	xnode_add_text(xnode_add_child(m, "body", NS_SERVER), "x & y", 5);
	st = stanza_from_xnode(m);
	xnode_free(m);
	assert_non_null(st);
	assert_string_equal(st->name, "message");
	assert_string_equal(st->from, "a@a.example/r");
	assert_string_equal(st->to, "b@b.example");
	assert_null(st->id);
	assert_false(st->is_error);
	assert_int_equal(st->len, strlen(st->data));
	assert_non_null(strstr(st->data, "<body>x &amp; y</body>"));
	assert_int_equal(st->inner_len, strlen("<body>x &amp; y</body>"));
	assert_memory_equal(st->data + st->inner_off, "<body>", 6);
	assert_true(stanza_bytes_alive() >= st->len);
	stanza_free(st);
	assert_int_equal(stanza_count_alive(), 0);
	assert_int_equal(stanza_bytes_alive(), 0);
}

/* 10,000 empty child elements: the tree costs ~40x the input, the stanza ~1x. */
static void
test_compact(void **state)
{
	struct xnode *m = xnode_new("message", NS_SERVER);
	struct stanza *st;

	(void)state;
	xnode_set_attr(m, "from", "a@a.example");
	xnode_set_attr(m, "to", "b@b.example");
	for (int i = 0; i < 10000; i++)
		assert_non_null(xnode_add_child(m, "a", NS_SERVER));
	st = stanza_from_xnode(m);
	xnode_free(m);
	assert_non_null(st);
	assert_true(st->len >= 40000);
	assert_true(st->cost < st->len + 256);
	stanza_free(st);
}

/* Without both addresses there is no stanza to route. */
static void
test_needs_addresses(void **state)
{
	struct xnode *m = xnode_new("iq", NS_SERVER);

	(void)state;
	xnode_set_attr(m, "to", "b@b.example");
	assert_null(stanza_from_xnode(m));
	xnode_free(m);
	assert_null(stanza_new("iq", "a", NULL, NULL, false, "<iq/>", 5));
	assert_null(stanza_new("toolongname", "a", "b", NULL, false, "<x/>", 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_xnode),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_needs_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
