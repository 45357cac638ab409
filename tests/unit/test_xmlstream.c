/* tests/unit/test_xmlstream.c - unit tests for the incremental XMPP stream parser.
 * SPDX-License-Identifier: ISC
 * Drives s2s/xmlstream.c with captured-style s2s transcripts (Prosody openings, dialback,
 * stanzas), a hostile corpus (DTDs, entities, comments, PIs, limits) and every split of
 * the input, recording events as text so that runs can be compared exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/stats.h"
#include "s2s/xmlstream.h"
#include "s2s/xnode.h"

#define STREAM_NSDECL "xmlns:stream='http://etherx.jabber.org/streams'"

/* A Prosody-style opening, as Prosody 0.12 writes it. */
#define PROSODY_OPEN \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
	"xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' " \
	"version='1.0' from='a.example' to='b.example' id='x' xml:lang='en'>"

#define HDR "<stream:stream xmlns='jabber:server' " STREAM_NSDECL ">"

/* A realistic s2s session as seen by the receiving side. */
static const char transcript[] =
	PROSODY_OPEN "\n"
	"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
	"</starttls><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	"</stream:features>\n"
	"<db:result from='a.example' to='b.example'>"
	"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>\r\n"
	"<message from='juliet@a.example/balcony' to='romeo@b.example' type='chat' "
	"id='m&amp;1' xml:lang='en'><body>Wherefore art thou, &lt;Romeo&gt;? "
	"caf\xc3\xa9 &#233;&#x1F600;</body>"
	"<active xmlns='http://jabber.org/protocol/chatstates'/>"
	"<x xmlns='urn:example:x' xmlns:p='urn:example:p' p:attr='v&quot;1&apos;'>"
	"<![CDATA[raw <text a='1> & \"stuff]]]></x></message>\n \t"
	"<presence from='juliet@a.example/balcony' to='romeo@b.example'><show>away</show>"
	"<status xml:lang='fr'>parti</status></presence>"
	"<iq type='get' id='ping1' from='a.example' to='b.example'>"
	"<ping xmlns='urn:xmpp:ping'/></iq>   "
	"</stream:stream>";

static const char transcript_events[] =
	"OPEN xmlns=jabber:server version=1.0 from=a.example to=b.example id=x "
	"{http://www.w3.org/XML/1998/namespace}lang=en\n"
	"EL <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
	"</starttls><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	"</stream:features>\n"
	"EL <db:result from='a.example' to='b.example'>"
	"b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>\n"
	"EL <message from='juliet@a.example/balcony' to='romeo@b.example' type='chat' "
	"id='m&amp;1' xml:lang='en'><body>Wherefore art thou, &lt;Romeo&gt;? "
	"caf\xc3\xa9 \xc3\xa9\xf0\x9f\x98\x80</body>"
	"<active xmlns='http://jabber.org/protocol/chatstates'/>"
	"<x xmlns='urn:example:x' xmlns:a0='urn:example:p' a0:attr='v&quot;1&apos;'>"
	"raw &lt;text a=&apos;1&gt; &amp; &quot;stuff]</x></message>\n"
	"EL <presence from='juliet@a.example/balcony' to='romeo@b.example'><show>away</show>"
	"<status xml:lang='fr'>parti</status></presence>\n"
	"EL <iq type='get' id='ping1' from='a.example' to='b.example'>"
	"<ping xmlns='urn:xmpp:ping'/></iq>\n"
	"CLOSE\n";

struct rec {
	struct buf        log;        /* events as text */
	struct xmlstream *xs;
	const char       *pause_on;   /* pause after an element with this name */
	const char       *reset_on;   /* reset (from the callback) after this element */
	bool              pause_open; /* pause in on_open */
	bool              free_on_el; /* free the parser from on_element */
	bool              reset_on_err; /* reset the parser from on_error */
	int               errors;
	char              text[256];  /* the last error's text */
};

static const struct xml_limits default_limits = {
	.max_stanza_size = 65536,
	.max_depth = 16,
	.max_attributes = 32,
	.max_name_length = 256,
};

static void
rec_open(void *arg, const struct xnode *h)
{
	struct rec *r = arg;
	const struct xattr *a;

	assert_string_equal(h->name, "stream");
	assert_string_equal(h->ns, NS_STREAM);
	assert_null(h->children);
	buf_puts(&r->log, "OPEN");
	for (a = h->attrs; a != NULL; a = a->next) {
		if (a->ns != NULL)
			buf_printf(&r->log, " {%s}%s=%s", a->ns, a->name, a->value);
		else
			buf_printf(&r->log, " %s=%s", a->name, a->value);
	}
	buf_puts(&r->log, "\n");
	if (r->pause_open)
		xmlstream_pause(r->xs);
}

static void
rec_element(void *arg, struct xnode *el)
{
	struct rec *r = arg;

	assert_null(el->parent);
	buf_puts(&r->log, "EL ");
	assert_int_equal(xnode_serialize(el, NS_SERVER, &r->log), 0);
	buf_puts(&r->log, "\n");
	if (r->pause_on != NULL && strcmp(el->name, r->pause_on) == 0)
		xmlstream_pause(r->xs);
	if (r->reset_on != NULL && strcmp(el->name, r->reset_on) == 0)
		assert_int_equal(xmlstream_reset(r->xs), 0);
	if (r->free_on_el) {
		xmlstream_free(r->xs);
		r->xs = NULL;
	}
	xnode_free(el);
}

static void
rec_close(void *arg)
{
	struct rec *r = arg;

	buf_puts(&r->log, "CLOSE\n");
}

static void
rec_error(void *arg, const char *cond, const char *text)
{
	struct rec *r = arg;

	assert_non_null(text);
	r->errors++;
	snprintf(r->text, sizeof(r->text), "%s", text);
	buf_printf(&r->log, "ERR %s\n", cond);
	if (r->reset_on_err)
		assert_int_equal(xmlstream_reset(r->xs), 0);
}

static const struct xmlstream_cb rec_cb = {
	rec_open, rec_element, rec_close, rec_error,
};

static void
rec_init(struct rec *r, const struct xml_limits *lim)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->log, 1 << 24);
	r->xs = xmlstream_new(lim ? lim : &default_limits, &rec_cb, r);
	assert_non_null(r->xs);
}

static void
rec_done(struct rec *r)
{
	xmlstream_free(r->xs);
	buf_free(&r->log);
}

/* Feed in pieces of step bytes (0 = all at once); every call must consume everything
 * until an error, after which feeding stops. Returns the log (caller frees). */
static char *
run(const char *in, size_t len, size_t step, const struct xml_limits *lim)
{
	struct rec r;
	size_t off = 0;
	char *out;

	rec_init(&r, lim);
	if (step == 0)
		step = len;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		ssize_t got = xmlstream_feed(r.xs, in + off, n);

		if (got == -1) {
			assert_true(xmlstream_failed(r.xs));
			/* A failed stream accepts nothing more. */
			assert_int_equal(xmlstream_feed(r.xs, "<a/>", 4), -1);
			break;
		}
		assert_int_equal(got, (ssize_t)n);
		off += n;
	}
	assert_true(r.errors <= 1);
	out = strdup(r.log.data ? r.log.data : "");
	rec_done(&r);
	return out;
}

static void
test_transcript_oneshot(void **state)
{
	char *got = run(transcript, sizeof(transcript) - 1, 0, NULL);

	assert_string_equal(got, transcript_events);
	free(got);
}

static void
test_transcript_bytewise(void **state)
{
	char *got = run(transcript, sizeof(transcript) - 1, 1, NULL);

	assert_string_equal(got, transcript_events);
	free(got);
}

/* Every split point into two feeds gives exactly the same events. */
static void
test_transcript_every_split(void **state)
{
	size_t len = sizeof(transcript) - 1;

	for (size_t cut = 1; cut < len; cut++) {
		struct rec r;

		rec_init(&r, NULL);
		assert_int_equal(xmlstream_feed(r.xs, transcript, cut), (ssize_t)cut);
		assert_int_equal(xmlstream_feed(r.xs, transcript + cut, len - cut),
		    (ssize_t)(len - cut));
		if (strcmp(r.log.data, transcript_events) != 0)
			fail_msg("split at %zu differs:\n%s", cut, r.log.data);
		rec_done(&r);
	}
}

/* xmlstream_trim between feeds: released parsers are rebuilt from the saved header, with
 * its namespace declarations (db:, the default namespace) in scope, and the events are
 * exactly those of an untrimmed run, whatever the split. Trimming is refused inside an
 * element and inside the header. */
static void
test_trim_between_feeds(void **state)
{
	size_t len = sizeof(transcript) - 1;
	struct rec r;
	unsigned trims = 0;

	/* byte by byte, trimming after every byte */
	rec_init(&r, NULL);
	for (size_t i = 0; i < len; i++) {
		assert_int_equal(xmlstream_feed(r.xs, transcript + i, 1), 1);
		trims += xmlstream_trim(r.xs);
	}
	assert_string_equal(r.log.data, transcript_events);
	assert_true(trims >= 5);        /* after features, db:result, message, presence, iq */
	rec_done(&r);
	/* every split, trimming at the cut */
	for (size_t cut = 1; cut < len; cut++) {
		rec_init(&r, NULL);
		assert_int_equal(xmlstream_feed(r.xs, transcript, cut), (ssize_t)cut);
		(void)xmlstream_trim(r.xs);
		assert_int_equal(xmlstream_feed(r.xs, transcript + cut, len - cut),
		    (ssize_t)(len - cut));
		if (strcmp(r.log.data, transcript_events) != 0)
			fail_msg("trim at %zu differs:\n%s", cut, r.log.data);
		rec_done(&r);
	}
	/* not inside the header, not inside an element, not after the close */
	rec_init(&r, NULL);
	assert_int_equal(xmlstream_feed(r.xs, "<stream:stream xmlns='jabber:server'", 36), 36);
	assert_false(xmlstream_trim(r.xs));
	assert_int_equal(xmlstream_feed(r.xs, " " STREAM_NSDECL "><message><bo", 61), 61);
	assert_false(xmlstream_trim(r.xs));
	assert_int_equal(xmlstream_feed(r.xs, "dy>x</body></message>", 21), 21);
	assert_true(xmlstream_trim(r.xs));
	assert_false(xmlstream_trim(r.xs));     /* already released */
	/* a prefix the header did not declare is still an error after a rebuild */
	assert_int_equal(xmlstream_feed(r.xs, "<x:y/>", 6), -1);
	assert_int_equal(r.errors, 1);
	rec_done(&r);
	/* a stream restart forgets the old header: the new one is what is replayed */
	rec_init(&r, NULL);
	assert_int_equal(xmlstream_feed(r.xs, HDR "<a/>", sizeof(HDR "<a/>") - 1),
	    (ssize_t)(sizeof(HDR "<a/>") - 1));
	assert_int_equal(xmlstream_reset(r.xs), 0);
	assert_int_equal(xmlstream_feed(r.xs, PROSODY_OPEN, sizeof(PROSODY_OPEN) - 1),
	    (ssize_t)(sizeof(PROSODY_OPEN) - 1));
	assert_true(xmlstream_trim(r.xs));
	assert_int_equal(xmlstream_feed(r.xs, "<db:result from='a' to='b'>k</db:result>", 40), 40);
	assert_int_equal(r.errors, 0);
	assert_non_null(strstr(r.log.data, "EL <db:result from='a' to='b'>k</db:result>\n"));
	assert_int_equal(xmlstream_feed(r.xs, "</stream:stream>", 16), 16);
	assert_false(xmlstream_trim(r.xs));
	rec_done(&r);
}

/* A peer sending ever new names (here a fresh 2000-byte namespace in each of 300
 * stanzas, 600 KB of names) cannot grow the parser's name dictionary without end: past
 * 64 KiB it is renewed at the next boundary (xml.dict_renewals), so it never holds much
 * more than that plus one stanza's names, and every stanza still arrives, whole and in
 * order, on the same stream. Honest traffic, the same few names over and over, never
 * renews it. */
static void
test_dict_bounded(void **state)
{
	struct rec r;
	char ns[2001], st[2200];
	size_t max_dict = 0, nel;
	unsigned long before = qf_stats.xml_dict_renewals;

	(void)state;
	rec_init(&r, NULL);
	assert_int_equal(xmlstream_feed(r.xs, HDR, strlen(HDR)), (ssize_t)strlen(HDR));
	for (int i = 0; i < 300; i++) {
		int n = snprintf(st, sizeof(st), "<message to='b@b.example'><x xmlns='urn:x:%04d:",
		    i);

		memset(ns, 'a' + i % 26, sizeof(ns) - 1);
		ns[sizeof(ns) - 1] = '\0';
		n += snprintf(st + n, sizeof(st) - (size_t)n, "%s'/></message>", ns);
		assert_int_equal(xmlstream_feed(r.xs, st, (size_t)n), n);
		if (xmlstream_dict_bytes(r.xs) > max_dict)
			max_dict = xmlstream_dict_bytes(r.xs);
	}
	assert_int_equal(r.errors, 0);
	nel = 0;
	for (const char *p = r.log.data; (p = strstr(p, "EL <message")) != NULL; p++)
		nel++;
	assert_int_equal(nel, 300);
	assert_non_null(strstr(r.log.data, "urn:x:0299:"));
	assert_true(xmlstream_dict_renewals(r.xs) >= 5);
	assert_int_equal(qf_stats.xml_dict_renewals - before, xmlstream_dict_renewals(r.xs));
	/* at every boundary (after each feed here) at most the bound; without it the
	 * dictionary would hold all 600 KB */
	assert_true(max_dict > 0);
	assert_true(max_dict <= 64 * 1024);
	rec_done(&r);

	/* honest: 3000 stanzas with the same names, never renewed */
	rec_init(&r, NULL);
	assert_int_equal(xmlstream_feed(r.xs, HDR, strlen(HDR)), (ssize_t)strlen(HDR));
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(st, sizeof(st), "<message to='b@b.example' id='m%d'><body>%d</body>"
		    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>", i, i);

		assert_int_equal(xmlstream_feed(r.xs, st, (size_t)n), n);
	}
	assert_int_equal(r.errors, 0);
	assert_int_equal(xmlstream_dict_renewals(r.xs), 0);
	assert_true(xmlstream_dict_bytes(r.xs) < 16 * 1024);
	rec_done(&r);
}

static void
test_header_variants(void **state)
{
	static const struct { const char *in, *want; } cases[] = {
		/* No XML declaration, double quotes, ejabberd-like attribute order. */
		{ "<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" "
		  "xmlns=\"jabber:server\" xmlns:db=\"jabber:server:dialback\" "
		  "to=\"b.example\" version=\"1.0\">",
		  "OPEN xmlns=jabber:server to=b.example version=1.0\n" },
		/* A client namespace is reported, not judged: stream.c decides. */
		{ "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " STREAM_NSDECL
		  " to='b.example'>",
		  "OPEN xmlns=jabber:client to=b.example\n" },
		/* No default namespace at all. */
		{ "<stream:stream " STREAM_NSDECL " to='b.example'>",
		  "OPEN to=b.example\n" },
		/* Another prefix for the stream namespace is still the stream element. */
		{ "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'>",
		  "OPEN xmlns=jabber:server\n" },
		/* An encoding label is ignored: input is always UTF-8. */
		{ "<?xml version='1.0' encoding='ISO-8859-1'?>" HDR "<a/>",
		  "OPEN xmlns=jabber:server\nEL <a/>\n" },
		/* Attribute references decoded; &amp; arrives from libxml2 as &#38;. */
		{ "<stream:stream " STREAM_NSDECL " from='a&amp;b&#38;c&#x26;d&#60;&lt;&gt;"
		  "&quot;&apos;&#233;&#x1F600;&amp;#38;'>",
		  "OPEN from=a&b&c&d<<>\"'\xc3\xa9\xf0\x9f\x98\x80&#38;\n" },
		/* Newlines in attribute values are normalised to spaces by XML. */
		{ "<stream:stream " STREAM_NSDECL " id='a\nb&#10;c'>",
		  "OPEN id=a b\nc\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 0; step <= 1; step++) {
			char *got = run(cases[i].in, strlen(cases[i].in), step, NULL);

			if (strcmp(got, cases[i].want) != 0)
				fail_msg("case %zu step %zu: got\n%s\nwant\n%s", i, step, got,
				    cases[i].want);
			free(got);
		}
	}
}

struct hostile {
	const char *what;
	const char *in;
	const char *want;   /* the full event log */
};

static const struct hostile corpus[] = {
	{ "DTD with internal subset",
	  "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ELEMENT a ANY>]>" HDR,
	  "ERR restricted-xml\n" },
	{ "internal entity declared and used",
	  "<!DOCTYPE stream:stream [<!ENTITY x 'boom'>]>" HDR "<a>&x;</a>",
	  "ERR restricted-xml\n" },
	{ "billion laughs",
	  "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
	  "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
	  "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
	  "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
	  "<!ENTITY lol9 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>]>"
	  HDR "<message><body>&lol9;</body></message>",
	  "ERR restricted-xml\n" },
	{ "external entity (XXE)",
	  "<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
	  HDR "<message><body>&xxe;</body></message>",
	  "ERR restricted-xml\n" },
	{ "external DTD",
	  "<!DOCTYPE stream:stream SYSTEM 'file:///etc/passwd'>" HDR,
	  "ERR restricted-xml\n" },
	{ "undefined entity in text",
	  HDR "<message><body>&foo;</body></message>",
	  "OPEN xmlns=jabber:server\nERR restricted-xml\n" },
	{ "undefined entity in attribute",
	  HDR "<message to='&foo;'/>",
	  "OPEN xmlns=jabber:server\nERR restricted-xml\n" },
	{ "comment between stanzas",
	  HDR "<a/><!-- hi --><b/>",
	  "OPEN xmlns=jabber:server\nEL <a/>\nERR restricted-xml\n" },
	{ "comment inside a stanza",
	  HDR "<message><!-- hi --></message>",
	  "OPEN xmlns=jabber:server\nERR restricted-xml\n" },
	{ "comment before the header",
	  "<?xml version='1.0'?><!-- hi -->" HDR,
	  "ERR restricted-xml\n" },
	{ "processing instruction",
	  HDR "<message><?php evil(); ?></message>",
	  "OPEN xmlns=jabber:server\nERR restricted-xml\n" },
	{ "processing instruction before the header",
	  "<?xml-stylesheet href='x'?>" HDR,
	  "ERR restricted-xml\n" },
	{ "XML declaration not at the start",
	  HDR "<?xml version='1.0'?><a/>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "mismatched end tag",
	  HDR "<message><body></message>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "undeclared element prefix",
	  HDR "<foo:bar/>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "undeclared attribute prefix",
	  HDR "<message x:y='1'/>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "duplicate attribute",
	  HDR "<message to='a' to='b'/>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "invalid UTF-8",
	  HDR "<message><body>\xc3\x28</body></message>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "NUL character reference",
	  HDR "<message><body>&#0;</body></message>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "raw '<' in attribute",
	  HDR "<message to='a<b'/>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "raw '<' in a header attribute",
	  "<stream:stream " STREAM_NSDECL " to='<'>",
	  "ERR not-well-formed\n" },
	{ "'<' inside a tag",
	  HDR "<message <body/>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "CDATA at stream level",
	  HDR "<![CDATA[x]]>",
	  "OPEN xmlns=jabber:server\nERR bad-format\n" },
	{ "non-whitespace text directly in the stream",
	  HDR "hello<a/>",
	  "OPEN xmlns=jabber:server\nERR bad-format\n" },
	{ "root element not in the stream namespace",
	  "<?xml version='1.0'?><html><body/></html>",
	  "ERR invalid-namespace\n" },
	{ "stream element in jabber:server",
	  "<stream xmlns='jabber:server'>",
	  "ERR invalid-namespace\n" },
	{ "wrong root name in the stream namespace",
	  "<stream:features " STREAM_NSDECL ">",
	  "ERR bad-format\n" },
	{ "end tag for the wrong stream element",
	  HDR "</stream:features>",
	  "OPEN xmlns=jabber:server\nERR not-well-formed\n" },
	{ "text before the header",
	  "hello" HDR,
	  "ERR not-well-formed\n" },
};

static void
test_hostile_corpus(void **state)
{
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		for (size_t step = 0; step <= 3; step++) {
			char *got = run(corpus[i].in, strlen(corpus[i].in), step, NULL);

			if (strcmp(got, corpus[i].want) != 0)
				fail_msg("%s (step %zu): got\n%s\nwant\n%s", corpus[i].what,
				    step, got, corpus[i].want);
			free(got);
		}
	}
}

static char *
repeat(const char *head, char c, size_t n, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + n + tl + 1);

	assert_non_null(s);
	memcpy(s, head, hl);
	memset(s + hl, c, n);
	memcpy(s + hl + n, tail, tl + 1);
	return s;
}

static void
expect_log(const char *in, size_t step, const struct xml_limits *lim, const char *want)
{
	char *got = run(in, strlen(in), step, lim);

	if (strcmp(got, want) != 0)
		fail_msg("step %zu: got\n%s\nwant\n%s", step, got, want);
	free(got);
}

static void
test_limits_depth(void **state)
{
	struct xml_limits lim = default_limits;
	struct buf b;

	lim.max_depth = 3;
	/* Depth 3 (message/x/y) is fine, depth 4 is not. */
	expect_log(HDR "<message><x><y/></x></message>", 0, &lim,
	    "OPEN xmlns=jabber:server\nEL <message><x><y/></x></message>\n");
	expect_log(HDR "<message><x><y><z/></y></x></message>", 0, &lim,
	    "OPEN xmlns=jabber:server\nERR policy-violation\n");

	/* Deep nesting far past the limit, byte by byte. */
	buf_init(&b, 1 << 20);
	buf_puts(&b, HDR);
	for (int i = 0; i < 5000; i++)
		buf_puts(&b, "<a>");
	expect_log(b.data, 1, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	expect_log(b.data, 0, NULL, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	buf_free(&b);
}

static void
test_limits_stanza_size(void **state)
{
	struct xml_limits lim = default_limits;
	char *in;

	lim.max_stanza_size = 1000;
	/* A body of 900 bytes fits, 1000 does not. */
	in = repeat(HDR "<message><body>", 'x', 900, "</body></message>");
	{
		char *got = run(in, strlen(in), 0, &lim);

		assert_null(strstr(got, "ERR"));
		assert_non_null(strstr(got, "EL <message><body>xxx"));
		free(got);
	}
	free(in);
	in = repeat(HDR "<message><body>", 'x', 1000, "</body></message>");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	expect_log(in, 7, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	free(in);
	/* The size is per top-level element: many small ones add up to nothing. */
	{
		struct buf b;

		buf_init(&b, 1 << 20);
		buf_puts(&b, HDR);
		for (int i = 0; i < 200; i++)
			buf_puts(&b, "<message to='b.example'><body>hello</body></message>");
		buf_puts(&b, "</stream:stream>");
		{
			char *got = run(b.data, b.len, 0, &lim);

			assert_null(strstr(got, "ERR"));
			assert_non_null(strstr(got, "CLOSE\n"));
			free(got);
		}
		buf_free(&b);
	}
	/* The header counts too. */
	in = repeat("<stream:stream " STREAM_NSDECL " id='", 'x', 2000, "'>");
	expect_log(in, 0, &lim, "ERR policy-violation\n");
	free(in);
}

static void
test_limits_unterminated_token(void **state)
{
	struct xml_limits lim = default_limits;
	size_t n = 1 << 20;
	char *in = repeat(HDR "<message to='", 'x', n, "");
	struct rec r;
	ssize_t got;

	lim.max_stanza_size = 10000;
	/* 1 MiB of attribute value without any '>': libxml2 reports nothing, the byte
	 * count must catch it. */
	rec_init(&r, &lim);
	got = xmlstream_feed(r.xs, in, strlen(in));
	assert_int_equal(got, -1);
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	rec_done(&r);

	/* Same in 4 KiB reads: the error comes as soon as the limit is crossed. */
	rec_init(&r, &lim);
	{
		size_t off = 0, hl = strlen(HDR);

		for (;;) {
			size_t k = strlen(in) - off < 4096 ? strlen(in) - off : 4096;

			got = xmlstream_feed(r.xs, in + off, k);
			if (got == -1)
				break;
			off += k;
			assert_true(off <= hl + lim.max_stanza_size + 4096);
		}
	}
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	rec_done(&r);
	free(in);
}

static void
test_limits_whitespace_keepalives(void **state)
{
	struct xml_limits lim = default_limits;
	struct rec r;

	lim.max_stanza_size = 100;
	rec_init(&r, &lim);
	assert_int_equal(xmlstream_feed(r.xs, HDR, strlen(HDR)), (ssize_t)strlen(HDR));
	/* Whitespace pings between stanzas (XEP-0199 style, RFC 6120 §4.6.1) are not
	 * counted toward the next element: 40 pings (80 bytes) and a 23-byte stanza are
	 * more than 100 bytes together, 500 pings in all. */
	for (int i = 0; i < 500; i++) {
		assert_int_equal(xmlstream_feed(r.xs, " \n", 2), 2);
		if (i % 40 == 39)
			assert_int_equal(xmlstream_feed(r.xs, "<iq type='get' id='1'/>", 23), 23);
	}
	assert_int_equal(xmlstream_feed(r.xs, "<iq type='get' id='1'/>", 23), 23);
	assert_int_equal(r.errors, 0);
	assert_non_null(strstr(r.log.data,
	    "OPEN xmlns=jabber:server\nEL <iq type='get' id='1'/>\n"));
	rec_done(&r);
}

/* Whitespace between top-level elements is bounded too: a peer cannot stream
 * unbounded input without producing an element (max_stanza_size in a row). */
static void
test_limits_whitespace_run(void **state)
{
	struct xml_limits lim = default_limits;
	char *in;

	lim.max_stanza_size = 1000;
	/* 1000 bytes in a row are fine, one more is not, in any split. */
	in = repeat(HDR, ' ', 1000, "<a/>");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nEL <a/>\n");
	expect_log(in, 7, &lim, "OPEN xmlns=jabber:server\nEL <a/>\n");
	free(in);
	in = repeat(HDR, '\n', 1001, "");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	expect_log(in, 1, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	expect_log(in, 100, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	free(in);
	/* Each element starts a new run. */
	in = repeat(HDR "<a/>", '\t', 900, "<b/>");
	{
		char *twice = repeat(in, ' ', 900, "<c/>");

		expect_log(twice, 0, &lim, "OPEN xmlns=jabber:server\nEL <a/>\nEL <b/>\nEL <c/>\n");
		expect_log(twice, 13, &lim, "OPEN xmlns=jabber:server\nEL <a/>\nEL <b/>\nEL <c/>\n");
		free(twice);
	}
	free(in);
	/* Before the stream header as well. */
	in = repeat("", ' ', 1001, HDR);
	expect_log(in, 0, &lim, "ERR policy-violation\n");
	free(in);
	/* 10 MB of whitespace fed in 64 KiB reads: refused after the first 1000 bytes. */
	{
		struct rec r;
		char *ws = malloc(65536);
		int reads = 0;

		assert_non_null(ws);
		memset(ws, ' ', 65536);
		rec_init(&r, &lim);
		assert_int_equal(xmlstream_feed(r.xs, HDR, strlen(HDR)), (ssize_t)strlen(HDR));
		while (reads < 160 && xmlstream_feed(r.xs, ws, 65536) == 65536)
			reads++;
		assert_int_equal(reads, 0);
		assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nERR policy-violation\n");
		assert_non_null(strstr(r.text, "whitespace"));
		rec_done(&r);
		free(ws);
	}
}

static void
test_limits_attributes_and_names(void **state)
{
	struct xml_limits lim = default_limits;
	struct buf b;
	char *in;

	lim.max_attributes = 4;
	lim.max_name_length = 16;
	expect_log(HDR "<m a='1' b='2' c='3' d='4'/>", 0, &lim,
	    "OPEN xmlns=jabber:server\nEL <m a='1' b='2' c='3' d='4'/>\n");
	expect_log(HDR "<m a='1' b='2' c='3' d='4' e='5'/>", 0, &lim,
	    "OPEN xmlns=jabber:server\nERR policy-violation\n");
	/* Namespace declarations are bounded as well. */
	expect_log(HDR "<m xmlns:a='u1' xmlns:b='u2' xmlns:c='u3' xmlns:d='u4' xmlns:e='u5'/>",
	    0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	/* Too many attributes on the header itself. */
	expect_log("<stream:stream " STREAM_NSDECL " a='1' b='2' c='3' d='4' e='5'>", 0, &lim,
	    "ERR policy-violation\n");

	in = repeat(HDR "<", 'n', 17, "/>");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	free(in);
	in = repeat(HDR "<", 'n', 16, "/>");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nEL <nnnnnnnnnnnnnnnn/>\n");
	free(in);
	in = repeat(HDR "<m ", 'a', 17, "='1'/>");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	free(in);
	in = repeat(HDR "<m xmlns:", 'p', 17, "='urn:x'/>");
	expect_log(in, 0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	free(in);

	/* Thousands of attributes with a generous stanza size. */
	buf_init(&b, 1 << 20);
	buf_puts(&b, HDR "<m");
	for (int i = 0; i < 3000; i++)
		buf_printf(&b, " a%d='x'", i);
	buf_puts(&b, "/>");
	expect_log(b.data, 0, NULL, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	buf_free(&b);
}

/* <starttls/> followed at once by TLS bytes in the same read. */
static void
test_pause_after_starttls(void **state)
{
	static const char head[] = PROSODY_OPEN
	    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03<>&\x00\xff>";
	char in[sizeof(head) - 1 + sizeof(tls) - 1];
	size_t hl = sizeof(head) - 1;
	struct rec r;
	ssize_t got;

	memcpy(in, head, hl);
	memcpy(in + hl, tls, sizeof(tls) - 1);

	rec_init(&r, NULL);
	r.pause_on = "starttls";
	got = xmlstream_feed(r.xs, in, sizeof(in));
	assert_int_equal(got, (ssize_t)hl);
	assert_false(xmlstream_failed(r.xs));
	assert_non_null(strstr(r.log.data,
	    "EL <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n"));
	assert_null(strstr(r.log.data, "ERR"));

	/* Restart after the TLS handshake: a new header on a fresh parser. */
	buf_reset(&r.log);
	assert_int_equal(xmlstream_reset(r.xs), 0);
	got = xmlstream_feed(r.xs, PROSODY_OPEN "<db:result from='a' to='b'>k</db:result>",
	    strlen(PROSODY_OPEN "<db:result from='a' to='b'>k</db:result>"));
	assert_true(got > 0);
	assert_non_null(strstr(r.log.data, "OPEN xmlns=jabber:server version=1.0"));
	assert_non_null(strstr(r.log.data, "EL <db:result from='a' to='b'>k</db:result>\n"));
	rec_done(&r);

	/* Byte by byte up to the pause: the pause lands on the last '>'. */
	rec_init(&r, NULL);
	r.pause_on = "starttls";
	for (size_t i = 0; i < hl - 1; i++)
		assert_int_equal(xmlstream_feed(r.xs, in + i, 1), 1);
	assert_null(strstr(r.log.data, "starttls"));
	got = xmlstream_feed(r.xs, in + hl - 1, sizeof(in) - hl + 1);
	assert_int_equal(got, 1);
	assert_non_null(strstr(r.log.data, "starttls"));
	rec_done(&r);
}

/* Pausing then feeding the rest continues normally. */
static void
test_pause_and_continue(void **state)
{
	size_t len = sizeof(transcript) - 1, off = 0;
	struct rec r;
	int pauses = 0;

	rec_init(&r, NULL);
	r.pause_on = "message";
	while (off < len) {
		ssize_t got = xmlstream_feed(r.xs, transcript + off, len - off);

		assert_true(got > 0);
		if (off + (size_t)got < len) {
			pauses++;
			/* Stopped right behind </message>. */
			assert_memory_equal(transcript + off + got - 10, "</message>", 10);
		}
		off += (size_t)got;
	}
	assert_int_equal(pauses, 1);
	assert_string_equal(r.log.data, transcript_events);
	rec_done(&r);
}

/* A reset from inside on_element (SASL <success/>): the rest of the same read is a new
 * stream for a fresh parser. */
static void
test_reset_from_callback(void **state)
{
	static const char in[] = HDR "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
	    PROSODY_OPEN "<iq type='result' id='1'/>";
	struct rec r;

	rec_init(&r, NULL);
	r.reset_on = "success";
	assert_int_equal(xmlstream_feed(r.xs, in, sizeof(in) - 1), (ssize_t)(sizeof(in) - 1));
	assert_string_equal(r.log.data,
	    "OPEN xmlns=jabber:server\n"
	    "EL <success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\n"
	    "OPEN xmlns=jabber:server version=1.0 from=a.example to=b.example id=x "
	    "{http://www.w3.org/XML/1998/namespace}lang=en\n"
	    "EL <iq type='result' id='1'/>\n");
	rec_done(&r);
}

/* A reset drops a half-parsed stanza and a failure; the next bytes start a new
 * document. */
static void
test_reset_clears_state(void **state)
{
	struct rec r;

	rec_init(&r, NULL);
	assert_true(xmlstream_feed(r.xs, HDR "<message><body>half", strlen(HDR) + 19) > 0);
	assert_int_equal(xmlstream_reset(r.xs), 0);
	buf_reset(&r.log);
	assert_int_equal(xmlstream_feed(r.xs, HDR "<a/>", strlen(HDR) + 4),
	    (ssize_t)strlen(HDR) + 4);
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nEL <a/>\n");
	/* Reset also clears a failure. */
	assert_int_equal(xmlstream_feed(r.xs, "<!-- x -->", 10), -1);
	assert_true(xmlstream_failed(r.xs));
	assert_int_equal(xmlstream_reset(r.xs), 0);
	assert_false(xmlstream_failed(r.xs));
	buf_reset(&r.log);
	assert_int_equal(xmlstream_feed(r.xs, HDR, strlen(HDR)), (ssize_t)strlen(HDR));
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\n");
	rec_done(&r);
}

static void
test_pause_in_open(void **state)
{
	static const char in[] = PROSODY_OPEN "<a/>";
	size_t hl = strlen(PROSODY_OPEN);
	struct rec r;

	rec_init(&r, NULL);
	r.pause_open = true;
	assert_int_equal(xmlstream_feed(r.xs, in, sizeof(in) - 1), (ssize_t)hl);
	assert_null(strstr(r.log.data, "EL"));
	r.pause_open = false;
	assert_int_equal(xmlstream_feed(r.xs, in + hl, 4), 4);
	assert_non_null(strstr(r.log.data, "EL <a/>\n"));
	rec_done(&r);
}

/* Freeing or resetting from inside a callback must not pull libxml2 out from under
 * itself (ASan would see it). */
static void
test_free_and_reset_in_callbacks(void **state)
{
	static const char in[] = HDR "<a/><b/><c/>";
	struct rec r;

	rec_init(&r, NULL);
	r.free_on_el = true;
	assert_true(xmlstream_feed(r.xs, in, sizeof(in) - 1) >= 0);
	assert_null(r.xs);
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nEL <a/>\n");
	buf_free(&r.log);

	rec_init(&r, NULL);
	r.reset_on_err = true;
	assert_int_equal(xmlstream_feed(r.xs, HDR "<!-- x --><a/>", strlen(HDR) + 14), -1);
	assert_false(xmlstream_failed(r.xs));   /* the reset took effect */
	r.reset_on_err = false;
	buf_reset(&r.log);
	assert_int_equal(xmlstream_feed(r.xs, HDR, strlen(HDR)), (ssize_t)strlen(HDR));
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\n");
	rec_done(&r);
}

static void
test_after_close(void **state)
{
	struct rec r;
	static const char in[] = HDR "<a/></stream:stream>garbage<<<";

	rec_init(&r, NULL);
	assert_int_equal(xmlstream_feed(r.xs, in, sizeof(in) - 1), (ssize_t)(sizeof(in) - 1));
	assert_int_equal(xmlstream_feed(r.xs, "<b/>", 4), 4);
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nEL <a/>\nCLOSE\n");
	assert_false(xmlstream_failed(r.xs));
	rec_done(&r);
}

/* Invalid UTF-8 (RFC 3629) and characters XML 1.0 forbids are refused with
 * not-well-formed as soon as the offending byte arrives: none of these inputs is
 * complete, so waiting for libxml2 would keep the stream open. */
#define U8(what, in, want) { what, in, sizeof(in) - 1, want }
static const struct {
	const char *what, *in;
	size_t len;
	const char *want;   /* NULL: the header, then not-well-formed */
} bad_utf8[] = {
	U8("overlong '<' (C0 BC)", HDR "<message><body>a\xc0\xbc", NULL),
	U8("overlong '/' (C0 AF) in an attribute", HDR "<message to='\xc0\xaf", NULL),
	U8("overlong NUL (C0 80)", HDR "<message><body>\xc0\x80", NULL),
	U8("C1 lead byte", HDR "<message><body>\xc1\xbf", NULL),
	U8("overlong 3-byte (E0 80 BC)", HDR "<message><body>\xe0\x80\xbc", NULL),
	U8("overlong 3-byte (E0 9F BF)", HDR "<message><body>\xe0\x9f\xbf", NULL),
	U8("overlong 4-byte (F0 80 80 BC)", HDR "<message><body>\xf0\x80\x80\xbc", NULL),
	U8("overlong 4-byte (F0 8F BF BF)", HDR "<message><body>\xf0\x8f\xbf\xbf", NULL),
	U8("high surrogate (ED A0 80)", HDR "<message><body>\xed\xa0\x80", NULL),
	U8("low surrogate (ED BF BF)", HDR "<message><body>\xed\xbf\xbf", NULL),
	U8("above U+10FFFF (F4 90 80 80)", HDR "<message><body>\xf4\x90\x80\x80", NULL),
	U8("F5 lead byte", HDR "<message><body>\xf5\x80\x80\x80", NULL),
	U8("FF byte", HDR "<message><body>\xff", NULL),
	U8("FE byte", HDR "<message><body>\xfe", NULL),
	U8("lone continuation byte", HDR "<message><body>\x80", NULL),
	U8("truncated 2-byte sequence", HDR "<message><body>\xc3z", NULL),
	U8("truncated 3-byte sequence", HDR "<message><body>\xe2\x82z", NULL),
	U8("truncated 4-byte sequence", HDR "<message><body>\xf0\x9f\x98<", NULL),
	U8("lead byte after a lead byte", HDR "<message><body>\xe2\xe2", NULL),
	U8("U+FFFE", HDR "<message><body>\xef\xbf\xbe", NULL),
	U8("U+FFFF", HDR "<message><body>\xef\xbf\xbf", NULL),
	U8("control character U+0001", HDR "<message><body>\x01", NULL),
	U8("control character U+000B", HDR "<message><body>\x0b", NULL),
	U8("control character U+001F", HDR "<message><body>\x1f", NULL),
	U8("NUL byte", HDR "<message><body>a\0b", NULL),
	/* after runs of printable ASCII longer than a word (checked eight bytes at a time) */
	U8("control character after a long text", HDR "<message><body>abcdefghijklmnopqrstuvw"
	    "xyz0123456789\x1e", NULL),
	U8("lone continuation after a long text", HDR "<message><body>abcdefghijklmnopqrstuvw"
	    "xyz0123456789 \x9f", NULL),
	U8("DEL then control in a long attribute", HDR "<message to='abcdefghijklmnop\x7fqrstu"
	    "vwxyz\x10", NULL),
	U8("in an element name", HDR "<mess\xc0\xbc", NULL),
	U8("between elements", HDR "<a/>\xc0\xbc",
	    "OPEN xmlns=jabber:server\nEL <a/>\nERR not-well-formed\n"),
	U8("control character between elements", HDR "<a/> \x02",
	    "OPEN xmlns=jabber:server\nEL <a/>\nERR not-well-formed\n"),
};

static void
test_utf8_invalid(void **state)
{
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		const char *in = bad_utf8[i].in, *want = bad_utf8[i].want;
		size_t len = bad_utf8[i].len;

		if (want == NULL)
			want = "OPEN xmlns=jabber:server\nERR not-well-formed\n";

		for (size_t step = 0; step <= 3; step++) {
			char *got = run(in, len, step, NULL);

			if (strcmp(got, want) != 0)
				fail_msg("%s (step %zu): got\n%s\nwant\n%s", bad_utf8[i].what, step,
				    got, want);
			free(got);
		}
		/* Every split into two feeds; a sequence cut in two is still refused. */
		for (size_t cut = strlen(HDR) + 1; cut < len; cut++) {
			struct rec r;

			rec_init(&r, NULL);
			if (xmlstream_feed(r.xs, in, cut) != -1)
				xmlstream_feed(r.xs, in + cut, len - cut);
			if (strcmp(r.log.data, want) != 0)
				fail_msg("%s (split at %zu): got\n%s", bad_utf8[i].what, cut,
				    r.log.data);
			rec_done(&r);
		}
	}
	/* In the header, before any event. */
	expect_log("<stream:stream " STREAM_NSDECL " to='\xc0\xae", 0, NULL,
	    "ERR not-well-formed\n");
	expect_log("<?xml version='1.0'?>\xed\xa0\x80", 1, NULL, "ERR not-well-formed\n");
}

/* The error comes with the byte that makes the sequence invalid, not later. */
static void
test_utf8_error_at_once(void **state)
{
	struct rec r;

	rec_init(&r, NULL);
	assert_int_equal(xmlstream_feed(r.xs, HDR "<message><body>", strlen(HDR) + 15),
	    (ssize_t)strlen(HDR) + 15);
	assert_int_equal(xmlstream_feed(r.xs, "\xf0", 1), 1);      /* could be fine */
	assert_int_equal(xmlstream_feed(r.xs, "\x9f\x98", 2), 2);
	assert_int_equal(xmlstream_feed(r.xs, "\x80", 1), 1);      /* U+1F600 */
	assert_int_equal(xmlstream_feed(r.xs, "\xe0", 1), 1);
	assert_int_equal(r.errors, 0);
	assert_int_equal(xmlstream_feed(r.xs, "\x80", 1), -1);     /* E0 80: overlong */
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nERR not-well-formed\n");
	assert_non_null(strstr(r.text, "UTF-8"));
	rec_done(&r);
}

/* Valid multi-byte characters at the edges of the ranges, split at every byte. */
static void
test_utf8_valid(void **state)
{
	static const char in[] = HDR "<message to='\xc3\xa9\xf4\x8f\xbf\xbf'><body>"
	    "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd"
	    "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xe2\x82\xac\xf0\x9f\x98\x80 \t\r\n\x7f"
	    "</body></message>";
	static const char want[] = "OPEN xmlns=jabber:server\n"
	    "EL <message to='\xc3\xa9\xf4\x8f\xbf\xbf'><body>"
	    "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd"
	    "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xe2\x82\xac\xf0\x9f\x98\x80 \t\n\x7f"
	    "</body></message>\n";
	size_t len = sizeof(in) - 1;

	for (size_t step = 0; step <= 1; step++) {
		char *got = run(in, len, step, NULL);

		assert_string_equal(got, want);
		free(got);
	}
	for (size_t cut = 1; cut < len; cut++) {
		struct rec r;

		rec_init(&r, NULL);
		assert_int_equal(xmlstream_feed(r.xs, in, cut), (ssize_t)cut);
		assert_int_equal(xmlstream_feed(r.xs, in + cut, len - cut), (ssize_t)(len - cut));
		if (strcmp(r.log.data, want) != 0)
			fail_msg("split at %zu: got\n%s", cut, r.log.data);
		rec_done(&r);
	}
}

/* The tree under construction is bounded in (approximate) heap bytes: element-dense
 * input costs far more memory than its size. */
static void
test_limits_memory(void **state)
{
	struct xml_limits lim = default_limits;
	struct buf b;
	struct rec r;
	ssize_t got;

	lim.max_stanza_size = 1 << 20;
	lim.max_stanza_memory = 64 * 1024;
	/* 60,000 empty children: 240 KB of input, some 10 MB of tree. */
	buf_init(&b, 1 << 20);
	buf_puts(&b, HDR "<message>");
	for (int i = 0; i < 60000; i++)
		buf_puts(&b, "<a/>");
	buf_puts(&b, "</message>");
	rec_init(&r, &lim);
	got = xmlstream_feed(r.xs, b.data, b.len);
	assert_int_equal(got, -1);
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	assert_non_null(strstr(r.text, "stanza too complex"));
	rec_done(&r);
	/* The same in small reads: refused long before the end of the input. */
	rec_init(&r, &lim);
	{
		size_t off = 0;

		while (off < b.len && xmlstream_feed(r.xs, b.data + off, 512) == 512)
			off += 512;
		assert_true(off < 64 * 1024);
	}
	assert_string_equal(r.log.data, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	rec_done(&r);
	buf_free(&b);

	/* Attributes and text count too. */
	buf_init(&b, 1 << 20);
	buf_puts(&b, HDR "<message>");
	for (int i = 0; i < 3000; i++)
		buf_printf(&b, "<a x='%d'>t</a>", i);
	expect_log(b.data, 0, &lim, "OPEN xmlns=jabber:server\nERR policy-violation\n");
	buf_free(&b);

	/* The budget is per top-level element: many small elements are fine, and so is
	 * a realistic stanza. */
	buf_init(&b, 1 << 22);
	buf_puts(&b, HDR);
	for (int i = 0; i < 2000; i++)
		buf_puts(&b, "<message to='b.example'><body>hello</body><x xmlns='urn:x'/>"
		    "</message>");
	{
		char *log = run(b.data, b.len, 0, &lim);

		assert_null(strstr(log, "ERR"));
		free(log);
	}
	buf_free(&b);
	{
		char *log = run(transcript, sizeof(transcript) - 1, 1, &lim);

		assert_string_equal(log, transcript_events);
		free(log);
	}
	/* A text body close to the memory limit fits: text costs about its size. */
	{
		char *in = repeat(HDR "<message><body>", 'x', 60 * 1024, "</body></message>");

		rec_init(&r, &lim);
		got = xmlstream_feed(r.xs, in, strlen(in));
		assert_int_equal(got, (ssize_t)strlen(in));
		assert_int_equal(r.errors, 0);
		rec_done(&r);
		free(in);
	}
}

/* A second stream header inside the open stream is not a stanza. RFC 6120 §4.9.3.22:
 * a first-level child of the stream the server does not support. */
static void
test_nested_stream_header(void **state)
{
	static const char want[] = "OPEN xmlns=jabber:server\nERR unsupported-stanza-type\n";

	for (size_t step = 0; step <= 1; step++) {
		expect_log(HDR "<stream:stream xmlns='jabber:server' " STREAM_NSDECL
		    " to='a.example' version='1.0'>", step, NULL, want);
		expect_log(PROSODY_OPEN "<a/><stream:stream xmlns='jabber:server' " STREAM_NSDECL
		    " from='a.example' to='b.example' version='1.0'>", step, NULL,
		    "OPEN xmlns=jabber:server version=1.0 from=a.example to=b.example id=x "
		    "{http://www.w3.org/XML/1998/namespace}lang=en\nEL <a/>\n"
		    "ERR unsupported-stanza-type\n");
		/* Another prefix, or none, is the same element. */
		expect_log(HDR "<s:stream xmlns:s='http://etherx.jabber.org/streams'>", step,
		    NULL, want);
		expect_log(HDR "<stream xmlns='http://etherx.jabber.org/streams'/>", step, NULL,
		    want);
	}
	/* <stream:features/> and <stream:error/> are first-level children as usual, and
	 * a 'stream' element in another namespace or deeper down is payload. */
	expect_log(HDR "<stream:features/><stream xmlns='urn:x'/><message><stream:stream/>"
	    "</message>", 0, NULL,
	    "OPEN xmlns=jabber:server\nEL <stream:features/>\nEL <stream xmlns='urn:x'/>\n"
	    "EL <message><stream:stream/></message>\n");
}

/* The element tree itself: namespaces, attributes and text as the application sees
 * them. */
static struct xnode *last_el;

static void
keep_element(void *arg, struct xnode *el)
{
	xnode_free(last_el);
	last_el = el;
}

static void
test_tree_shape(void **state)
{
	static const struct xmlstream_cb cb = { NULL, keep_element, NULL, NULL };
	static const char in[] = PROSODY_OPEN
	    "<message to='b' xml:lang='de'><body>a&amp;b</body>"
	    "<x xmlns='urn:x' xmlns:p='urn:p' p:k='v'><y/></x><stream:error/></message>";
	struct xmlstream *xs = xmlstream_new(&default_limits, &cb, NULL);
	struct xnode *body, *x;
	const struct xattr *a;
	char *t;

	assert_int_equal(xmlstream_feed(xs, in, sizeof(in) - 1), (ssize_t)(sizeof(in) - 1));
	assert_non_null(last_el);
	assert_string_equal(last_el->name, "message");
	assert_string_equal(last_el->ns, NS_SERVER);
	assert_string_equal(xnode_attr(last_el, "to"), "b");
	assert_null(xnode_attr(last_el, "lang"));   /* qualified: not returned */
	a = last_el->attrs->next;
	assert_string_equal(a->name, "lang");
	assert_string_equal(a->ns, NS_XML);
	assert_string_equal(a->value, "de");
	body = xnode_child(last_el, "body", NS_SERVER);
	assert_non_null(body);
	assert_ptr_equal(body->parent, last_el);
	t = xnode_text(body);
	assert_string_equal(t, "a&b");
	free(t);
	x = xnode_child(last_el, "x", "urn:x");
	assert_non_null(x);
	assert_string_equal(x->attrs->name, "k");
	assert_string_equal(x->attrs->ns, "urn:p");
	assert_non_null(xnode_child(x, "y", "urn:x"));
	assert_non_null(xnode_child(last_el, "error", NS_STREAM));
	xnode_free(last_el);
	last_el = NULL;
	xmlstream_free(xs);
}

/* Namespace names come from libxml2 with '&' as "&#38;" (found by tests/fuzz): they
 * must be decoded like attribute values, or the element serializes to a different
 * namespace that a parser rejects. */
static void
test_namespace_with_amp(void **state)
{
	static const struct xmlstream_cb cb = { NULL, keep_element, NULL, NULL };
	static const char in[] = PROSODY_OPEN
	    "<x xmlns='urn:a&amp;b' xmlns:p='urn:p&#38;q' p:k='v'/>";
	struct xmlstream *xs = xmlstream_new(&default_limits, &cb, NULL);
	struct buf out;

	assert_int_equal(xmlstream_feed(xs, in, sizeof(in) - 1), (ssize_t)(sizeof(in) - 1));
	assert_non_null(last_el);
	assert_string_equal(last_el->ns, "urn:a&b");
	assert_string_equal(last_el->attrs->ns, "urn:p&q");
	buf_init(&out, 4096);
	assert_int_equal(xnode_serialize(last_el, NS_SERVER, &out), 0);
	assert_string_equal(out.data,
	    "<x xmlns='urn:a&amp;b' xmlns:a0='urn:p&amp;q' a0:k='v'/>");
	buf_free(&out);
	xnode_free(last_el);
	last_el = NULL;
	xmlstream_free(xs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcript_oneshot),
		cmocka_unit_test(test_transcript_bytewise),
		cmocka_unit_test(test_transcript_every_split),
		cmocka_unit_test(test_trim_between_feeds),
		cmocka_unit_test(test_dict_bounded),
		cmocka_unit_test(test_header_variants),
		cmocka_unit_test(test_hostile_corpus),
		cmocka_unit_test(test_limits_depth),
		cmocka_unit_test(test_limits_stanza_size),
		cmocka_unit_test(test_limits_unterminated_token),
		cmocka_unit_test(test_limits_whitespace_keepalives),
		cmocka_unit_test(test_limits_whitespace_run),
		cmocka_unit_test(test_limits_memory),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_utf8_error_at_once),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_nested_stream_header),
		cmocka_unit_test(test_limits_attributes_and_names),
		cmocka_unit_test(test_pause_after_starttls),
		cmocka_unit_test(test_pause_and_continue),
		cmocka_unit_test(test_reset_from_callback),
		cmocka_unit_test(test_reset_clears_state),
		cmocka_unit_test(test_pause_in_open),
		cmocka_unit_test(test_free_and_reset_in_callbacks),
		cmocka_unit_test(test_after_close),
		cmocka_unit_test(test_tree_shape),
		cmocka_unit_test(test_namespace_with_amp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
