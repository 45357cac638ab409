/* tests/unit/test_bounce.c - error replies for undeliverable stanzas (s2s/bounce.c).
 * SPDX-License-Identifier: ISC
 * The reply goes back to the sender with the right condition and type, keeps the id and
 * the payload, and error stanzas are never bounced (RFC 6120 §8.3.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "s2s/bounce.h"
#include "s2s/xnode.h"

static struct xnode *
message(const char *type)
{
	struct xnode *m = xnode_new("message", NS_SERVER);

	assert_non_null(m);
	xnode_set_attr(m, "from", "alice@a.example/phone");
	xnode_set_attr(m, "to", "bob@b.example");
	xnode_set_attr(m, "id", "m1");
	if (type)
		xnode_set_attr(m, "type", type);
	xnode_add_text(xnode_add_child(m, "body", NS_SERVER), "hi <there>", 10);
	return m;
}

static void
test_bounce_swaps_and_explains(void **state)
{
	struct xnode *m = message("chat"), *e, *err;
	struct buf out;

	(void)state;
	e = bounce_make(m, "remote-server-not-found", "cancel", "nxdomain");
	assert_non_null(e);
	assert_string_equal(xnode_attr(e, "from"), "bob@b.example");
	assert_string_equal(xnode_attr(e, "to"), "alice@a.example/phone");
	assert_string_equal(xnode_attr(e, "type"), "error");
	assert_string_equal(xnode_attr(e, "id"), "m1");
	assert_non_null(xnode_child(e, "body", NS_SERVER));
	err = xnode_child(e, "error", NS_SERVER);
	assert_non_null(err);
	assert_string_equal(xnode_attr(err, "type"), "cancel");
	assert_non_null(xnode_child(err, "remote-server-not-found", NS_STANZAS_E));
	assert_non_null(xnode_child(err, "text", NS_STANZAS_E));
	buf_init(&out, 65536);
	assert_int_equal(xnode_serialize(e, NS_SERVER, &out), 0);
	assert_non_null(strstr(out.data, "<body>hi &lt;there&gt;</body>"));
	assert_non_null(strstr(out.data, "<remote-server-not-found "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
	buf_free(&out);
	xnode_free(e);
	xnode_free(m);
}

static void
test_bounce_timeout_is_wait(void **state)
{
	struct xnode *m = message(NULL), *e;

	(void)state;
	e = bounce_make(m, "remote-server-timeout", "wait", NULL);
	assert_non_null(e);
	assert_string_equal(xnode_attr(xnode_child(e, "error", NS_SERVER), "type"), "wait");
	assert_null(xnode_child(xnode_child(e, "error", NS_SERVER), "text", NS_STANZAS_E));
	xnode_free(e);
	xnode_free(m);
}

/* Errors are never bounced, and a stanza without both addresses cannot be. */
static void
test_no_bounce(void **state)
{
	struct xnode *m = message("error"), *n;

	(void)state;
	assert_true(bounce_is_error(m));
	assert_null(bounce_make(m, "remote-server-not-found", "cancel", NULL));
	xnode_free(m);
	n = xnode_new("iq", NS_SERVER);
	xnode_set_attr(n, "to", "x@b.example");
	xnode_set_attr(n, "type", "get");
	assert_false(bounce_is_error(n));
	assert_null(bounce_make(n, "remote-server-not-found", "cancel", NULL));
	xnode_free(n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounce_swaps_and_explains),
		cmocka_unit_test(test_bounce_timeout_is_wait),
		cmocka_unit_test(test_no_bounce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
