/* tests/unit/test_xnode.c - unit tests for the stanza element tree and its serializer.
 * SPDX-License-Identifier: ISC
 * Checks building, lookup, copying and serialization of s2s/xnode.c trees (namespace
 * declarations, stream:/db: prefixes, generated attribute prefixes, escaping), and that
 * serialized output parses back through s2s/xmlstream.c to an identical tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "s2s/xmlstream.h"
#include "s2s/xnode.h"

#define RT_HEADER \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
	"xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' " \
	"version='1.0'>"

static char *
ser(const struct xnode *n, const char *parent_ns)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 20);
	assert_int_equal(xnode_serialize(n, parent_ns, &b), 0);
	s = strdup(b.data ? b.data : "");
	buf_free(&b);
	return s;
}

static void
expect_ser(const struct xnode *n, const char *parent_ns, const char *want)
{
	char *got = ser(n, parent_ns);

	assert_string_equal(got, want);
	free(got);
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Deep structural equality (names, namespaces, attributes in order, text). */
static bool
tree_eq(const struct xnode *a, const struct xnode *b)
{
	const struct xattr *x, *y;
	const struct xnode *c, *d;

	if (a->is_text != b->is_text)
		return false;
	if (a->is_text)
		return a->text_len == b->text_len && memcmp(a->text, b->text, a->text_len) == 0;
	if (!str_eq(a->name, b->name) || !str_eq(a->ns, b->ns))
		return false;
	for (x = a->attrs, y = b->attrs; x && y; x = x->next, y = y->next)
		if (!str_eq(x->name, y->name) || !str_eq(x->ns, y->ns) ||
		    !str_eq(x->value, y->value))
			return false;
	if (x || y)
		return false;
	for (c = a->children, d = b->children; c && d; c = c->next, d = d->next) {
		if (c->parent != a || d->parent != b || !tree_eq(c, d))
			return false;
	}
	return c == NULL && d == NULL;
}

static void
test_build_and_lookup(void **state)
{
	struct xnode *m = xnode_new("message", NS_SERVER), *b, *x, *t;
	char *s;

	assert_non_null(m);
	assert_false(m->is_text);
	assert_string_equal(m->ns, NS_SERVER);
	assert_int_equal(xnode_set_attr(m, "to", "b.example"), 0);
	assert_int_equal(xnode_set_attr(m, "from", "a.example"), 0);
	assert_int_equal(xnode_set_attr_ns(m, "lang", NS_XML, "en"), 0);
	assert_int_equal(xnode_set_attr(m, "to", "c.example"), 0);   /* replaces */
	assert_string_equal(xnode_attr(m, "to"), "c.example");
	assert_string_equal(xnode_attr(m, "from"), "a.example");
	assert_null(xnode_attr(m, "lang"));   /* only unqualified attributes */
	assert_null(xnode_attr(m, "type"));
	assert_string_equal(m->attrs->name, "to");   /* order kept on replace */
	assert_string_equal(m->attrs->next->next->ns, NS_XML);

	b = xnode_add_child(m, "body", NS_SERVER);
	x = xnode_add_child(m, "x", "urn:x");
	assert_non_null(b);
	assert_non_null(x);
	assert_ptr_equal(b->parent, m);
	assert_ptr_equal(m->children, b);
	assert_ptr_equal(m->last_child, x);
	t = xnode_add_text(b, "hello ", 6);
	assert_non_null(t);
	assert_true(t->is_text);
	assert_non_null(xnode_add_text(b, "world", 5));
	s = xnode_text(b);
	assert_string_equal(s, "hello world");
	free(s);
	s = xnode_text(m);   /* no direct text */
	assert_string_equal(s, "");
	free(s);

	assert_ptr_equal(xnode_child(m, "body", NS_SERVER), b);
	assert_ptr_equal(xnode_child(m, "x", NULL), x);
	assert_ptr_equal(xnode_child(m, NULL, "urn:x"), x);
	assert_ptr_equal(xnode_child(m, NULL, NULL), b);
	assert_null(xnode_child(m, "body", "urn:x"));
	assert_null(xnode_child(b, NULL, NULL));   /* text children are not elements */

	/* NULL namespace means "no namespace". */
	t = xnode_new("bare", NULL);
	assert_string_equal(t->ns, "");
	xnode_free(t);
	xnode_free(m);
}

static void
test_text_with_nul(void **state)
{
	struct xnode *n = xnode_new("a", "");
	struct xnode *t = xnode_add_text(n, "a\0b", 3);

	assert_int_equal(t->text_len, 3);
	assert_memory_equal(t->text, "a\0b", 4);
	xnode_free(n);
}

static void
test_dup(void **state)
{
	struct xnode *m = xnode_new("iq", NS_SERVER), *q, *d;
	char *a, *b;

	xnode_set_attr(m, "type", "get");
	q = xnode_add_child(m, "query", "urn:q");
	xnode_set_attr_ns(q, "k", "urn:k", "v");
	xnode_add_text(q, "t", 1);
	xnode_add_child(q, "item", "urn:q");

	d = xnode_dup(m);
	assert_non_null(d);
	assert_true(tree_eq(m, d));
	assert_null(d->parent);
	/* Independent copy: changing one leaves the other alone. */
	xnode_set_attr(d, "type", "set");
	assert_string_equal(xnode_attr(m, "type"), "get");
	a = ser(m, NS_SERVER);
	xnode_free(m);
	b = ser(d, NS_SERVER);
	assert_string_equal(b, "<iq type='set'><query xmlns='urn:q' xmlns:a0='urn:k' "
	    "a0:k='v'>t<item/></query></iq>");
	assert_string_equal(a, "<iq type='get'><query xmlns='urn:q' xmlns:a0='urn:k' "
	    "a0:k='v'>t<item/></query></iq>");
	free(a);
	free(b);
	xnode_free(d);
}

static void
test_serialize_namespaces(void **state)
{
	struct xnode *m, *n, *f, *s;

	/* Same namespace as the parent: no declaration; a different one: declared, and
	 * in force for the children. */
	m = xnode_new("message", NS_SERVER);
	n = xnode_add_child(m, "x", "urn:x");
	xnode_add_child(n, "y", "urn:x");
	xnode_add_child(n, "z", NS_SERVER);
	xnode_add_child(m, "none", "");
	expect_ser(m, NS_SERVER, "<message><x xmlns='urn:x'><y/><z xmlns='jabber:server'/>"
	    "</x><none xmlns=''/></message>");
	expect_ser(m, "jabber:client",
	    "<message xmlns='jabber:server'><x xmlns='urn:x'><y/>"
	    "<z xmlns='jabber:server'/></x><none xmlns=''/></message>");
	expect_ser(m, NULL, "<message xmlns='jabber:server'><x xmlns='urn:x'><y/>"
	    "<z xmlns='jabber:server'/></x><none xmlns=''/></message>");
	expect_ser(n, NULL, "<x xmlns='urn:x'><y/><z xmlns='jabber:server'/></x>");
	xnode_free(m);
	m = xnode_new("none", "");
	expect_ser(m, NULL, "<none/>");
	expect_ser(m, "", "<none/>");
	xnode_free(m);

	/* stream: and db: prefixes leave the default namespace alone. */
	f = xnode_new("features", NS_STREAM);
	s = xnode_add_child(f, "starttls", NS_TLS);
	xnode_add_child(s, "required", NS_TLS);
	xnode_add_child(f, "dialback", NS_DB_FEAT);
	xnode_add_child(f, "plain", NS_SERVER);
	expect_ser(f, NS_SERVER, "<stream:features>"
	    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
	    "<dialback xmlns='urn:xmpp:features:dialback'/><plain/></stream:features>");
	xnode_free(f);

	f = xnode_new("result", NS_DIALBACK);
	xnode_set_attr(f, "from", "a.example");
	xnode_set_attr(f, "to", "b.example");
	xnode_add_text(f, "k3y", 3);
	expect_ser(f, NS_SERVER, "<db:result from='a.example' to='b.example'>k3y</db:result>");
	xnode_free(f);

	f = xnode_new("error", NS_STREAM);
	xnode_add_child(f, "host-unknown", NS_STREAMS_E);
	s = xnode_add_child(f, "text", NS_STREAMS_E);
	xnode_set_attr_ns(s, "lang", NS_XML, "en");
	xnode_add_text(s, "no", 2);
	expect_ser(f, NS_SERVER, "<stream:error>"
	    "<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
	    "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>no</text>"
	    "</stream:error>");
	xnode_free(f);
}

static void
test_serialize_attr_prefixes(void **state)
{
	struct xnode *n = xnode_new("x", "urn:x"), *c;

	xnode_set_attr(n, "plain", "1");
	xnode_set_attr_ns(n, "a", "urn:one", "2");
	xnode_set_attr_ns(n, "b", "urn:two", "3");
	xnode_set_attr_ns(n, "c", "urn:one", "4");
	xnode_set_attr_ns(n, "space", NS_XML, "preserve");
	xnode_set_attr_ns(n, "empty", "", "5");   /* "" = unqualified */
	c = xnode_add_child(n, "y", "urn:x");
	xnode_set_attr_ns(c, "d", "urn:two", "6");
	expect_ser(n, NS_SERVER, "<x xmlns='urn:x' plain='1' xmlns:a0='urn:one' a0:a='2' "
	    "xmlns:a1='urn:two' a1:b='3' a0:c='4' xml:space='preserve' empty='5'>"
	    "<y xmlns:a0='urn:two' a0:d='6'/></x>");
	assert_string_equal(xnode_attr(n, "empty"), "5");
	xnode_free(n);
}

static void
test_serialize_escaping(void **state)
{
	struct xnode *n = xnode_new("body", NS_SERVER);
	static const char text[] = "a<b>&c'd\"e\r\nf\tg]]>";

	xnode_set_attr(n, "v", "<&>'\"\t\n\r x");
	xnode_add_text(n, text, sizeof(text) - 1);
	xnode_add_text(n, "", 0);
	expect_ser(n, NS_SERVER, "<body v='&lt;&amp;&gt;&apos;&quot;&#9;&#10;&#13; x'>"
	    "a&lt;b&gt;&amp;c&apos;d&quot;e&#13;\nf\tg]]&gt;</body>");
	xnode_free(n);

	/* Only empty text: written as an empty element. */
	n = xnode_new("e", NS_SERVER);
	xnode_add_text(n, "", 0);
	expect_ser(n, NS_SERVER, "<e/>");
	xnode_free(n);
}

/* The reference escaper: byte by byte, what test_serialize_escaping spells out. */
static void
ref_escape(char *out, const char *s, size_t n, int attr)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char one[2] = { s[i], '\0' };

		strcat(out, s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" :
		    s[i] == '\'' ? "&apos;" : s[i] == '"' ? "&quot;" : s[i] == '\r' ? "&#13;" :
		    attr && s[i] == '\n' ? "&#10;" : attr && s[i] == '\t' ? "&#9;" : one);
	}
}

/* The scan for bytes to escape goes 16 at a time where it can (SSE2): every special,
 * one or two of them, at every place in text and attribute values of 0 to 49 bytes
 * (in, across and behind 16-byte blocks, and in the tail) is escaped as byte by byte,
 * the bytes around it are not, and UTF-8 bytes above 0x7f pass as they are. */
static void
test_serialize_escaping_positions(void **state)
{
	static const char specials[] = "&<>'\"\r\n\t";
	char text[64], want_t[512], want_a[512], want[1200];
	struct xnode *n;

	for (size_t len = 0; len < 50; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t k = 0; k < sizeof(specials) - 1; k++) {
				for (size_t i = 0; i < len; i++)   /* "é" (0xc3 0xa9) among ASCII */
					text[i] = (char)(i % 4 == 2 ? 0xc3 : i % 4 == 3 ? 0xa9 :
					    'a' + i % 26);
				text[pos] = specials[k];
				if (pos + 7 < len)
					text[pos + 7] = specials[(k + 3) % (sizeof(specials) - 1)];
				text[len] = '\0';
				ref_escape(want_t, text, len, 0);
				ref_escape(want_a, text, len, 1);
				n = xnode_new("b", NS_SERVER);
				assert_int_equal(xnode_set_attr(n, "v", text), 0);
				xnode_add_text(n, text, len);
				snprintf(want, sizeof(want), "<b v='%s'>%s</b>", want_a, want_t);
				expect_ser(n, NS_SERVER, want);
				xnode_free(n);
			}
		}
	}
}

static void
test_serialize_full_buffer(void **state)
{
	struct xnode *n = xnode_new("message", NS_SERVER);
	struct buf b;

	xnode_add_text(xnode_add_child(n, "body", NS_SERVER), "0123456789", 10);
	buf_init(&b, 30);
	assert_int_equal(buf_puts(&b, "prefix"), 0);
	/* "<message><body>0123456789</body></message>" is 42 bytes: does not fit, and
	 * the buffer is left as it was. */
	assert_int_equal(xnode_serialize(n, NS_SERVER, &b), -1);
	assert_int_equal(b.len, 6);
	assert_string_equal(b.data, "prefix");
	buf_free(&b);
	buf_init(&b, 48);
	assert_int_equal(buf_puts(&b, "prefix"), 0);
	assert_int_equal(xnode_serialize(n, NS_SERVER, &b), 0);
	assert_string_equal(b.data, "prefix<message><body>0123456789</body></message>");
	buf_free(&b);
	xnode_free(n);
}

/* Round trip through the parser. */
static struct xnode *parsed;
static int parse_errors;

static void
rt_element(void *arg, struct xnode *el)
{
	assert_null(parsed);
	parsed = el;
}

static void
rt_error(void *arg, const char *cond, const char *text)
{
	parse_errors++;
	print_error("parse error %s: %s\n", cond, text);
}

static struct xnode *
reparse(const struct xnode *n)
{
	static const struct xml_limits lim = { 1 << 20, 64, 64, 256, 1 << 24 };
	static const struct xmlstream_cb cb = { NULL, rt_element, NULL, rt_error };
	struct xmlstream *xs = xmlstream_new(&lim, &cb, NULL);
	struct buf b;

	buf_init(&b, 1 << 20);
	buf_puts(&b, RT_HEADER);
	assert_int_equal(xnode_serialize(n, NS_SERVER, &b), 0);
	buf_puts(&b, "</stream:stream>");
	parsed = NULL;
	parse_errors = 0;
	assert_int_equal(xmlstream_feed(xs, b.data, b.len), (ssize_t)b.len);
	assert_int_equal(parse_errors, 0);
	xmlstream_free(xs);
	buf_free(&b);
	assert_non_null(parsed);
	return parsed;
}

static void
test_round_trip(void **state)
{
	static const char nasty[] = "<&>'\" \t\n\r]]> caf\xc3\xa9 \xf0\x9f\x98\x80";
	struct xnode *trees[4], *m, *c, *r;
	size_t i;

	m = xnode_new("message", NS_SERVER);
	xnode_set_attr(m, "to", "romeo@b.example");
	xnode_set_attr(m, "id", nasty);
	xnode_set_attr_ns(m, "lang", NS_XML, "en");
	c = xnode_add_child(m, "body", NS_SERVER);
	xnode_add_text(c, nasty, sizeof(nasty) - 1);
	c = xnode_add_child(m, "x", "urn:example:x");
	xnode_set_attr_ns(c, "a", "urn:example:p", "1");
	xnode_set_attr_ns(c, "b", "urn:example:q", "2");
	xnode_set_attr_ns(c, "c", "urn:example:p", "3");
	xnode_add_text(xnode_add_child(c, "y", NS_SERVER), "back in jabber:server", 21);
	xnode_add_child(c, "z", "");
	xnode_add_child(m, "error", NS_STREAM);   /* odd, but must survive */
	trees[0] = m;

	m = xnode_new("features", NS_STREAM);
	xnode_add_child(xnode_add_child(m, "starttls", NS_TLS), "required", NS_TLS);
	xnode_add_child(m, "bidi", NS_BIDI_FEAT);
	xnode_add_text(xnode_add_child(m, "note", NS_SERVER), "x", 1);
	trees[1] = m;

	m = xnode_new("verify", NS_DIALBACK);
	xnode_set_attr(m, "from", "a.example");
	xnode_set_attr(m, "id", "abc");
	xnode_add_text(m, "deadbeef", 8);
	xnode_add_child(m, "child", NS_SERVER);
	trees[2] = m;

	m = xnode_new("iq", NS_SERVER);
	xnode_add_child(xnode_add_child(m, "q", ""), "deep", "");
	trees[3] = m;

	for (i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		char *a, *b;

		r = reparse(trees[i]);
		a = ser(trees[i], NS_SERVER);
		b = ser(r, NS_SERVER);
		if (!tree_eq(trees[i], r))
			fail_msg("tree %zu differs after round trip:\n%s\n%s", i, a, b);
		assert_string_equal(a, b);
		free(a);
		free(b);
		xnode_free(r);
		xnode_free(trees[i]);
	}
}

/* ---- serializer output on a corpus, byte for byte ----
 * tests/data/xnode/corpus.xml (real-world stanzas: namespaces and prefixes, xml:lang,
 * character references, CDATA, dialback and stream elements) parsed by xmlstream.c,
 * and CORPUS_RANDOM trees built from a fixed pseudo-random sequence (escapable bytes,
 * default and attribute namespaces, the stream:/db: prefixes, an "xmlns" attribute),
 * each serialized inside jabber:server. tests/data/xnode/corpus.out holds what the
 * printf-based serializer of commit 1cc84be wrote for them; it was made by this test
 * built against that commit's s2s/xnode.c with QF_XNODE_CORPUS_WRITE=FILE (which
 * writes FILE instead of comparing). Records: the length in decimal, a newline, the
 * bytes, a newline. */
#define CORPUS_MAX    64
#define CORPUS_RANDOM 400

static struct xnode *corpus[CORPUS_MAX];
static size_t ncorpus;

static void
corpus_element(void *arg, struct xnode *el)
{
	(void)arg;
	assert_true(ncorpus < CORPUS_MAX);
	corpus[ncorpus++] = el;
}

static uint32_t rnd_state;

static uint32_t
rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static void
rnd_text(char *out, size_t cap)
{
	static const char *const bits[] = { "a", "Z", "0", " ", "<", ">", "&", "'", "\"",
	    "\r", "\n", "\t", "]]>", "caf\xc3\xa9", "\xf0\x9f\x98\x80", "&amp;", "x=y", "" };
	size_t n = 0, parts = rnd(8);

	out[0] = '\0';
	for (size_t i = 0; i < parts; i++) {
		const char *b = bits[rnd(sizeof(bits) / sizeof(bits[0]))];

		if (n + strlen(b) + 1 > cap)
			break;
		memcpy(out + n, b, strlen(b) + 1);
		n += strlen(b);
	}
}

static void
rnd_fill(struct xnode *n, int depth)
{
	static const char *const names[] = { "body", "x", "item", "stream", "a-b", "q1" };
	static const char *const nss[] = { NS_SERVER, NS_SERVER, "", "urn:example:x",
	    "urn:example:y'&<", NS_STREAM, NS_DIALBACK, NS_STANZAS_E };
	static const char *const ans[] = { NULL, NULL, NULL, NS_XML, "urn:example:p",
	    "urn:example:q", "urn:example:p" };
	char text[64], name[16];
	uint32_t nattr = rnd(5), nkids = depth < 4 ? rnd(4) : 0;

	for (uint32_t i = 0; i < nattr; i++) {
		const char *ns = ans[rnd(sizeof(ans) / sizeof(ans[0]))];

		if (rnd(10) == 0)
			snprintf(name, sizeof(name), "xmlns");
		else
			snprintf(name, sizeof(name), "at%u", (unsigned)rnd(6));
		rnd_text(text, sizeof(text));
		assert_int_equal(xnode_set_attr_ns(n, name, ns, text), 0);
	}
	for (uint32_t i = 0; i < nkids; i++) {
		if (rnd(3) == 0) {
			rnd_text(text, sizeof(text));
			assert_non_null(xnode_add_text(n, text, strlen(text)));
		} else {
			rnd_fill(xnode_add_child(n, names[rnd(sizeof(names) / sizeof(names[0]))],
			    nss[rnd(sizeof(nss) / sizeof(nss[0]))]), depth + 1);
		}
	}
}

/* tests/data/xnode/NAME, shorter than cap; caller frees. */
static char *
read_data(const char *name, size_t cap, size_t *len)
{
	const char *top = getenv("QF_TOP") ? getenv("QF_TOP") : ".";
	char path[4096], *p = malloc(cap);
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/data/xnode/%s", top, name);
	assert_non_null(p);
	assert_non_null(f = fopen(path, "rb"));
	*len = fread(p, 1, cap, f);
	fclose(f);
	assert_true(*len < cap);
	return p;
}

static void
test_serialize_corpus(void **state)
{
	static const struct xml_limits lim = { 1 << 20, 64, 64, 256, 1 << 24 };
	static const struct xmlstream_cb cb = { NULL, corpus_element, NULL, rt_error };
	const char *write_to = getenv("QF_XNODE_CORPUS_WRITE");
	char *xml, *want = NULL;
	size_t xml_len, want_len = 0, pos = 0, ncases = 0;
	struct xmlstream *xs;
	struct buf out;
	FILE *f = NULL;

	(void)state;
	xml = read_data("corpus.xml", 1 << 16, &xml_len);
	assert_true(xml_len > 0);
	xs = xmlstream_new(&lim, &cb, NULL);
	ncorpus = 0;
	parse_errors = 0;
	assert_int_equal(xmlstream_feed(xs, xml, xml_len), (ssize_t)xml_len);
	assert_int_equal(parse_errors, 0);
	xmlstream_free(xs);
	free(xml);
	assert_int_equal(ncorpus, 26);

	if (write_to == NULL) {
		want = read_data("corpus.out", 1 << 20, &want_len);
	} else {
		assert_non_null(f = fopen(write_to, "wb"));
	}
	buf_init(&out, 1 << 20);
	rnd_state = 20261202u;
	for (size_t i = 0; i < ncorpus + CORPUS_RANDOM; i++, ncases++) {
		struct xnode *n;
		size_t len;
		char *end;

		if (i < ncorpus) {
			n = corpus[i];
		} else {
			n = xnode_new(rnd(2) ? "message" : "iq", rnd(4) ? NS_SERVER : "urn:x");
			rnd_fill(n, 0);
		}
		buf_reset(&out);
		assert_int_equal(xnode_serialize(n, NS_SERVER, &out), 0);
		xnode_free(n);
		if (write_to != NULL) {
			fprintf(f, "%zu\n", out.len);
			fwrite(out.data, 1, out.len, f);
			fputc('\n', f);
			continue;
		}
		assert_true(pos < want_len);
		len = strtoul(want + pos, &end, 10);
		assert_true(*end == '\n' && (size_t)(end + 1 - want) + len < want_len);
		pos = (size_t)(end + 1 - want);
		if (len != out.len || memcmp(want + pos, out.data, len) != 0)
			fail_msg("corpus case %zu differs:\nwant %.*s\ngot  %s", i, (int)len,
			    want + pos, out.data);
		pos += len + 1;
	}
	if (write_to != NULL)
		assert_int_equal(fclose(f), 0);
	else
		assert_int_equal(pos, want_len);   /* every recorded case was compared */
	assert_int_equal(ncases, 26 + CORPUS_RANDOM);
	buf_free(&out);
	free(want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_and_lookup),
		cmocka_unit_test(test_text_with_nul),
		cmocka_unit_test(test_dup),
		cmocka_unit_test(test_serialize_namespaces),
		cmocka_unit_test(test_serialize_attr_prefixes),
		cmocka_unit_test(test_serialize_escaping),
		cmocka_unit_test(test_serialize_escaping_positions),
		cmocka_unit_test(test_serialize_full_buffer),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_serialize_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
