/* tests/unit/test_bounce.c - error replies for undeliverable stanzas (s2s/bounce.c).
 * SPDX-License-Identifier: ISC
 * The reply goes back to the sender with the right condition and type, keeps the id and
 * the payload byte for byte, re-parses as well-formed XML, and error stanzas are never
 * bounced (RFC 6120 §8.3.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "s2s/bounce.h"
#include "s2s/stanza.h"
#include "s2s/xmlstream.h"
#include "s2s/xnode.h"

static struct stanza *
message(const char *type)
{
	struct xnode *m = xnode_new("message", NS_SERVER);
	struct stanza *st;

	assert_non_null(m);
	xnode_set_attr(m, "from", "alice@a.example/phone");
	xnode_set_attr(m, "to", "bob@b.example");
	xnode_set_attr(m, "id", "m1");
	if (type)
		xnode_set_attr(m, "type", type);
	xnode_add_text(xnode_add_child(m, "body", NS_SERVER), "hi <there>", 10);
	st = stanza_from_xnode(m);
	assert_non_null(st);
	xnode_free(m);
	return st;
}

/* Parse one stanza's bytes back into a tree, inside a stream header. */
static struct xnode *parsed;
static void on_open(void *a, const struct xnode *h) { (void)a; (void)h; }
static void on_el(void *a, struct xnode *el) { (void)a; parsed = el; }
static void on_close(void *a) { (void)a; }
static void on_err(void *a, const char *c, const char *t) { (void)a; fail_msg("%s: %s", c, t); }

static struct xnode *
reparse(const struct stanza *st)
{
	static const struct xmlstream_cb cb = { on_open, on_el, on_close, on_err };
	struct xml_limits lim = { 65536, 16, 16, 128, 1 << 20 };
	struct xmlstream *xs = xmlstream_new(&lim, &cb, NULL);
	const char *hdr = "<stream:stream xmlns='jabber:server' "
	    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

	parsed = NULL;
	assert_non_null(xs);
	assert_true(xmlstream_feed(xs, hdr, strlen(hdr)) > 0);
	assert_int_equal(xmlstream_feed(xs, st->data, st->len), (ssize_t)st->len);
	xmlstream_free(xs);
	assert_non_null(parsed);
	return parsed;
}

static void
test_bounce_swaps_and_explains(void **state)
{
	struct stanza *m = message("chat"), *e;
	struct xnode *x, *err;

	(void)state;
	e = bounce_make(m, "remote-server-not-found", "cancel", "nx<domain>");
	assert_non_null(e);
	assert_true(e->is_error);
	assert_string_equal(e->from, "bob@b.example");
	assert_string_equal(e->to, "alice@a.example/phone");
	assert_string_equal(e->id, "m1");
	x = reparse(e);
	assert_string_equal(xnode_attr(x, "from"), "bob@b.example");
	assert_string_equal(xnode_attr(x, "to"), "alice@a.example/phone");
	assert_string_equal(xnode_attr(x, "type"), "error");
	assert_string_equal(xnode_attr(x, "id"), "m1");
	assert_non_null(xnode_child(x, "body", NS_SERVER));
	err = xnode_child(x, "error", NS_SERVER);
	assert_non_null(err);
	assert_string_equal(xnode_attr(err, "type"), "cancel");
	assert_non_null(xnode_child(err, "remote-server-not-found", NS_STANZAS_E));
	assert_non_null(xnode_child(err, "text", NS_STANZAS_E));
	assert_non_null(strstr(e->data, "<body>hi &lt;there&gt;</body>"));
	assert_non_null(strstr(e->data, "nx&lt;domain&gt;"));
	xnode_free(x);
	stanza_free(e);
	stanza_free(m);
}

static void
test_bounce_timeout_is_wait(void **state)
{
	struct stanza *m = message(NULL), *e;
	struct xnode *x;

	(void)state;
	e = bounce_make(m, "remote-server-timeout", "wait", NULL);
	assert_non_null(e);
	x = reparse(e);
	assert_string_equal(xnode_attr(xnode_child(x, "error", NS_SERVER), "type"), "wait");
	assert_null(xnode_child(xnode_child(x, "error", NS_SERVER), "text", NS_STANZAS_E));
	xnode_free(x);
	stanza_free(e);
	stanza_free(m);
}

/* An empty stanza (<presence/>) bounces without a payload. */
static void
test_bounce_empty(void **state)
{
	struct xnode *p = xnode_new("presence", NS_SERVER);
	struct stanza *st, *e;
	struct xnode *x;

	(void)state;
	xnode_set_attr(p, "from", "a@a.example");
	xnode_set_attr(p, "to", "b@b.example");
	st = stanza_from_xnode(p);
	xnode_free(p);
	assert_non_null(st);
	assert_int_equal(st->inner_len, 0);
	e = bounce_make(st, "remote-server-not-found", "cancel", NULL);
	assert_non_null(e);
	assert_null(e->id);
	x = reparse(e);
	assert_string_equal(x->name, "presence");
	assert_null(xnode_attr(x, "id"));
	xnode_free(x);
	stanza_free(e);
	stanza_free(st);
}

/* Errors are never bounced. */
static void
test_no_bounce(void **state)
{
	struct stanza *m = message("error");

	(void)state;
	assert_true(m->is_error);
	assert_null(bounce_make(m, "remote-server-not-found", "cancel", NULL));
	stanza_free(m);
	assert_int_equal(stanza_count_alive(), 0);
	assert_int_equal(stanza_bytes_alive(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounce_swaps_and_explains),
		cmocka_unit_test(test_bounce_timeout_is_wait),
		cmocka_unit_test(test_bounce_empty),
		cmocka_unit_test(test_no_bounce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
