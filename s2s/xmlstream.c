/* s2s/xmlstream.c - incremental XMPP stream parser on libxml2's push parser.
 * SPDX-License-Identifier: ISC
 * stream.c owns one per stream and feeds it the plaintext bytes it reads; this file turns
 * them into stream-open / element / stream-close / error events with xnode trees, and
 * enforces RFC 6120 §11 restricted XML and the size limits. Input is handed to libxml2 in
 * slices that end at each '>' so that the byte offset of every element end is known
 * (needed to stop exactly behind <starttls/>) and oversize tokens are caught before
 * libxml2 buffers them. A quiet stream gives its libxml2 parser back (xmlstream_trim):
 * between top-level elements the parser's only state is the open stream element, so it
 * is rebuilt when input comes by replaying the bytes of the stream header, silently. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include "../core/log.h"
#include "../core/stats.h"
#include "xmlstream.h"

/* Largest piece handed to xmlParseChunk at once (its size argument is an int). */
#define XS_MAX_CHUNK (1u << 20)
/* libxml2's input buffer starts at twice xmlDefaultBufferSize (4000: 8 KB per parser,
 * i.e. per open stream); it grows with what is pushed, so an idle stream needs far less.
 * A process-wide libxml2 setting: this file is libxml2's only user. */
#define XS_INPUT_BUFFER 512
/* libxml2 keeps every element and attribute name, prefix and namespace URI a parser has
 * seen in its dictionary, for the parser's life: a peer sending new names (a fresh
 * xmlns='...' of kilobytes in every stanza) grew it on a busy stream to 11 MB, where
 * libxml2 2.9.14 fails the parse ("dictionary allocation failure"). Past these, at the
 * next boundary between top-level elements, the parser is given back as when the stream
 * goes quiet and rebuilt from the header on the next input: at every boundary a stream's
 * dictionary holds at most this; within an element, what libxml2 adds for its names
 * (string pools of up to 4 times the last or the name). Honest XMPP traffic uses a few
 * dozen names (under 8 KiB). */
#define XS_DICT_BYTES (64u * 1024)   /* string pools (xmlDictGetUsage) */
#define XS_DICT_NAMES 1024           /* entries (xmlDictSize) */
/* Tree memory of one top-level element when xml_limits.max_stanza_memory is 0. */
#define XS_DEFAULT_MEMORY (512u * 1024)

/* Where the input is, lexically, as far as scan() can tell; see scan(). */
enum xs_lex {
	LEX_CONTENT = 0,  /* character data or prolog */
	LEX_LT,           /* just after '<' */
	LEX_BANG,         /* just after "<!" */
	LEX_TAG,          /* in a start/end tag, outside quotes */
	LEX_SQ,           /* in a '...' attribute value */
	LEX_DQ,           /* in a "..." attribute value */
	LEX_CDATA,        /* in <![CDATA[ ... ]]> */
	LEX_COMMENT,      /* in <!-- ... --> (libxml2 refuses it when complete) */
	LEX_PI,           /* in <? ... ?> */
	LEX_OFF           /* in a declaration (DOCTYPE): not tracked, libxml2 refuses it */
};

struct xmlstream {
	struct xml_limits   lim;
	struct xmlstream_cb cb;
	void               *arg;
	xmlParserCtxtPtr    ctx;     /* libxml2 push parser, owned */
	unsigned            level;   /* open elements, the stream element included */
	struct xnode       *top;     /* top-level element being built, owned */
	struct xnode       *cur;     /* innermost open element of top */
	size_t              pending; /* input bytes counted toward the current top-level item */
	size_t              ws_run;  /* whitespace bytes in a row at the current boundary */
	size_t              mem;     /* approximate heap bytes of the tree being built (top) */
	size_t              max_mem; /* bound on mem */
	unsigned long       dict_renewals; /* parsers given back for their dictionary */
	bool                between; /* at a boundary: leading whitespace is not counted
	                              * toward the next item (but toward ws_run) */
	bool                boundary;/* a top-level item ended in the current slice */
	bool                closed;  /* </stream:stream> seen; further input is ignored */
	bool                failed;  /* on_error was called */
	bool                paused;  /* xmlstream_pause() during this feed */
	bool                reset_pending; /* xmlstream_reset() from a callback */
	bool                in_feed; /* inside xmlstream_feed (callbacks may run) */
	bool                free_pending; /* xmlstream_free() from a callback */
	bool                replaying; /* the saved header is being pushed to a new parser */
	char               *hdr;     /* the bytes up to the stream header's '>' (prolog and
	                              * start tag), kept while the stream is open; owned */
	size_t              hdr_len;
	enum xs_lex         lex;     /* lexical state at the end of the input seen so far */
	unsigned            lex_run; /* ']' / '-' / '?' just seen in CDATA / comment / PI */
	/* UTF-8 check across feeds: a multi-byte sequence under way */
	unsigned            u8_need; /* continuation bytes still expected */
	unsigned long       u8_cp;   /* code point bits so far */
	unsigned char       u8_lo, u8_hi; /* range of the next continuation byte */
};

static int parser_start(struct xmlstream *);
static int parser_ctx(struct xmlstream *);
static int parser_revive(struct xmlstream *);
static bool hdr_keep(struct xmlstream *, const char *, size_t);
static void hdr_cut(struct xmlstream *);
static void parser_stop(struct xmlstream *);
static bool xs_quiet(const struct xmlstream *);
static void xs_fail(struct xmlstream *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void push(struct xmlstream *, const char *, size_t);
static bool scan(struct xmlstream *, const char *, size_t);
static size_t utf8_check(struct xmlstream *, const char *, size_t, const char **);
static size_t mem_cost(size_t);
static bool mem_charge(struct xmlstream *, size_t);
static bool is_ws(char);
static bool name_too_long(const struct xmlstream *, const xmlChar *);
static char *attr_value(const xmlChar *, const xmlChar *);
static char *ns_value(const xmlChar *);
static size_t put_utf8(char *, unsigned long);
static int add_attrs(struct xmlstream *, struct xnode *, int, const xmlChar **, bool);
static void sax_start(void *, const xmlChar *, const xmlChar *, const xmlChar *, int,
    const xmlChar **, int, int, const xmlChar **);
static void sax_end(void *, const xmlChar *, const xmlChar *, const xmlChar *);
static void sax_chars(void *, const xmlChar *, int);
static void sax_internal_subset(void *, const xmlChar *, const xmlChar *, const xmlChar *);
static void sax_entity_decl(void *, const xmlChar *, int, const xmlChar *,
    const xmlChar *, xmlChar *);
static void sax_notation_decl(void *, const xmlChar *, const xmlChar *, const xmlChar *);
static void sax_attribute_decl(void *, const xmlChar *, const xmlChar *, int, int,
    const xmlChar *, xmlEnumerationPtr);
static void sax_element_decl(void *, const xmlChar *, int, xmlElementContentPtr);
static void sax_unparsed_decl(void *, const xmlChar *, const xmlChar *, const xmlChar *,
    const xmlChar *);
static xmlEntityPtr sax_get_entity(void *, const xmlChar *);
static xmlParserInputPtr sax_resolve_entity(void *, const xmlChar *, const xmlChar *);
static void sax_reference(void *, const xmlChar *);
static void sax_comment(void *, const xmlChar *);
static void sax_pi(void *, const xmlChar *, const xmlChar *);
static void sax_serror(void *, xmlErrorPtr);

struct xmlstream *
xmlstream_new(const struct xml_limits *lim, const struct xmlstream_cb *cb, void *arg)
{
	struct xmlstream *xs;

	xmlInitParser();
	xmlDefaultBufferSize = XS_INPUT_BUFFER;
	if ((xs = calloc(1, sizeof(*xs))) == NULL)
		return NULL;
	xs->lim = *lim;
	xs->max_mem = lim->max_stanza_memory > 0 ? lim->max_stanza_memory : XS_DEFAULT_MEMORY;
	xs->cb = *cb;
	xs->arg = arg;
	if (parser_start(xs) == -1) {
		free(xs);
		return NULL;
	}
	return xs;
}

void
xmlstream_free(struct xmlstream *xs)
{
	if (xs == NULL)
		return;
	if (xs->in_feed) {
		/* From a callback: free when xmlstream_feed unwinds. */
		xs->free_pending = true;
		return;
	}
	parser_stop(xs);
	free(xs);
}

/* The libxml2 parser is created when the first bytes arrive (parser_ctx): a stream
 * that never receives anything (a connection to a server that does not answer) costs
 * no parser. */
static int
parser_start(struct xmlstream *xs)
{
	xs->ctx = NULL;
	xs->level = 0;
	xs->top = xs->cur = NULL;
	xs->pending = 0;
	xs->ws_run = 0;
	xs->mem = 0;
	xs->between = true;
	xs->boundary = xs->closed = xs->failed = xs->paused = false;
	xs->reset_pending = false;
	xs->lex = LEX_CONTENT;
	xs->lex_run = 0;
	xs->u8_need = 0;
	xs->u8_cp = 0;
	return 0;
}

static int
parser_ctx(struct xmlstream *xs)
{
	xmlSAXHandler sax;

	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = sax_start;
	sax.endElementNs = sax_end;
	sax.characters = sax_chars;
	sax.ignorableWhitespace = sax_chars;
	sax.cdataBlock = sax_chars;
	sax.internalSubset = sax_internal_subset;
	sax.externalSubset = sax_internal_subset;
	sax.entityDecl = sax_entity_decl;
	sax.notationDecl = sax_notation_decl;
	sax.attributeDecl = sax_attribute_decl;
	sax.elementDecl = sax_element_decl;
	sax.unparsedEntityDecl = sax_unparsed_decl;
	sax.getEntity = sax_get_entity;
	sax.getParameterEntity = sax_get_entity;
	sax.resolveEntity = sax_resolve_entity;
	sax.reference = sax_reference;
	sax.comment = sax_comment;
	sax.processingInstruction = sax_pi;
	sax.serror = sax_serror;

	xs->ctx = xmlCreatePushParserCtxt(&sax, xs, NULL, 0, NULL);
	if (xs->ctx == NULL)
		return -1;
	/* Never XML_PARSE_NOENT: entities must not be substituted. The input is UTF-8
	 * whatever an XML declaration says (RFC 6120 §11.6). */
	xmlCtxtUseOptions(xs->ctx, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
	xmlSwitchEncoding(xs->ctx, XML_CHAR_ENCODING_UTF8);
	return 0;
}

static void
parser_stop(struct xmlstream *xs)
{
	if (xs->ctx != NULL) {
		xmlFreeParserCtxt(xs->ctx);
		xs->ctx = NULL;
	}
	xnode_free(xs->top);
	xs->top = xs->cur = NULL;
	free(xs->hdr);
	xs->hdr = NULL;
	xs->hdr_len = 0;
}

int
xmlstream_reset(struct xmlstream *xs)
{
	if (xs->in_feed) {
		/* Called from a callback: libxml2 is on the stack. Stop delivering events
		 * now and swap parsers once the current slice is done. */
		xs->reset_pending = true;
		return 0;
	}
	parser_stop(xs);
	return parser_start(xs);
}

void
xmlstream_pause(struct xmlstream *xs)
{
	xs->paused = true;
}

bool
xmlstream_failed(const struct xmlstream *xs)
{
	return xs->failed;
}

/* True when SAX events must be dropped. */
static bool
xs_quiet(const struct xmlstream *xs)
{
	return xs->failed || xs->closed || xs->reset_pending || xs->free_pending;
}

static void
xs_fail(struct xmlstream *xs, const char *cond, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	if (xs->failed)
		return;
	xs->failed = true;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_trace("xmlstream error cond=%s reason=\"%s\"", cond, text);
	if (xs->cb.on_error != NULL)
		xs->cb.on_error(xs->arg, cond, text);
}

static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Follow the input lexically just far enough to see a '<' inside a tag or an attribute
 * value. libxml2's push parser finds the end of a start tag by skipping quoted strings
 * after the last '<' in its buffer, so such input would stall it until more data came,
 * and the error would depend on how the input was split. Returns false on such a '<'. */
static bool
scan(struct xmlstream *xs, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		switch (xs->lex) {
		case LEX_CONTENT: {   /* text: only a '<' matters, found by memchr */
			const char *lt = memchr(p + i, '<', n - i);

			if (lt == NULL)
				return true;
			xs->lex = LEX_LT;
			i = (size_t)(lt - p);
			break;
		}
		case LEX_LT:
			xs->lex_run = 0;
			if (c == '!')
				xs->lex = LEX_BANG;
			else if (c == '?')
				xs->lex = LEX_PI;
			else if (c == '<')
				return false;
			else
				xs->lex = LEX_TAG;
			break;
		case LEX_BANG:
			if (c == '[')
				xs->lex = LEX_CDATA;
			else if (c == '-')
				xs->lex = LEX_COMMENT;
			else
				xs->lex = LEX_OFF;
			break;
		case LEX_TAG:
			if (c == '\'')
				xs->lex = LEX_SQ;
			else if (c == '"')
				xs->lex = LEX_DQ;
			else if (c == '>')
				xs->lex = LEX_CONTENT;
			else if (c == '<')
				return false;
			break;
		case LEX_SQ:
		case LEX_DQ:
			if (c == (xs->lex == LEX_SQ ? '\'' : '"'))
				xs->lex = LEX_TAG;
			else if (c == '<')
				return false;
			break;
		case LEX_CDATA:
		case LEX_COMMENT:
		case LEX_PI: {
			char runc = xs->lex == LEX_CDATA ? ']' : xs->lex == LEX_COMMENT ? '-' : '?';
			unsigned need = xs->lex == LEX_PI ? 1 : 2;

			if (c == '>' && xs->lex_run >= need)
				xs->lex = LEX_CONTENT;
			if (c == runc)
				xs->lex_run++;
			else
				xs->lex_run = 0;
			break;
		}
		case LEX_OFF:
			break;
		}
	}
	return true;
}

/* Check p[0..n) as the continuation of the input so far: well-formed UTF-8 (RFC 3629
 * §4: no overlong forms, no surrogates, nothing above U+10FFFF) holding only characters
 * XML 1.0 allows (§2.2 Char: no C0 controls but tab, LF and CR; no U+FFFE, U+FFFF).
 * A sequence may be split across calls. Returns n, or the offset of the first byte that
 * makes the input invalid with *why saying what is wrong. */
static size_t
utf8_check(struct xmlstream *xs, const char *p, size_t n, const char **why)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c;

		/* eight bytes of printable ASCII at a time: no high bit, none below 0x20
		 * (the "has a byte less than n" test of Bit Twiddling Hacks, exact for n <= 128;
		 * a word with a tab or newline goes byte by byte) */
		while (xs->u8_need == 0 && n - i >= 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			if ((w & 0x8080808080808080ULL) != 0 ||
			    ((w - 0x2020202020202020ULL) & ~w & 0x8080808080808080ULL) != 0)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		c = (unsigned char)p[i];

		if (xs->u8_need > 0) {
			if (c < xs->u8_lo || c > xs->u8_hi) {
				*why = "invalid UTF-8 sequence (overlong, surrogate, above U+10FFFF "
				    "or truncated)";
				return i;
			}
			xs->u8_cp = (xs->u8_cp << 6) | (c & 0x3f);
			xs->u8_lo = 0x80;
			xs->u8_hi = 0xbf;
			if (--xs->u8_need == 0 && (xs->u8_cp == 0xfffe || xs->u8_cp == 0xffff)) {
				*why = "character U+FFFE or U+FFFF, not allowed in XML";
				return i;
			}
			continue;
		}
		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
				*why = "control character, not allowed in XML";
				return i;
			}
			continue;
		}
		/* The range of the second byte rules out overlong forms (E0, F0), surrogates
		 * (ED) and code points above U+10FFFF (F4). */
		xs->u8_lo = 0x80;
		xs->u8_hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			xs->u8_need = 1;
			xs->u8_cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			xs->u8_need = 2;
			xs->u8_cp = c & 0x0f;
			if (c == 0xe0)
				xs->u8_lo = 0xa0;
			else if (c == 0xed)
				xs->u8_hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			xs->u8_need = 3;
			xs->u8_cp = c & 0x07;
			if (c == 0xf0)
				xs->u8_lo = 0x90;
			else if (c == 0xf4)
				xs->u8_hi = 0x8f;
		} else {
			*why = "invalid UTF-8 byte (continuation without a lead byte, overlong "
			    "lead byte C0/C1, or F5..FF)";
			return i;
		}
	}
	return n;
}

/* Heap bytes an allocation of n bytes takes, roughly: malloc's overhead, 16-byte
 * granules, a 32-byte minimum. */
static size_t
mem_cost(size_t n)
{
	n = (n + 16 + 15) & ~(size_t)15;
	return n < 32 ? 32 : n;
}

/* Count bytes toward the tree of the current top-level element. Returns false (after
 * failing the stream) when that exceeds the memory bound: element-dense input costs
 * many times its size, so the input size limit alone does not bound the tree. */
static bool
mem_charge(struct xmlstream *xs, size_t bytes)
{
	if (bytes > xs->max_mem - xs->mem) {
		xs_fail(xs, "policy-violation", "stanza too complex: its tree would take more "
		    "than %zu bytes of memory", xs->max_mem);
		return false;
	}
	xs->mem += bytes;
	return true;
}

/* Keep the bytes pushed before the stream element opened (bounded like the header:
 * max_stanza_size, checked by the caller). */
static bool
hdr_keep(struct xmlstream *xs, const char *p, size_t n)
{
	char *h;

	if ((h = realloc(xs->hdr, xs->hdr_len + n)) == NULL)
		return false;
	memcpy(h + xs->hdr_len, p, n);
	xs->hdr = h;
	xs->hdr_len += n;
	return true;
}

/* The header's start tag is being reported: keep what was pushed up to its '>' (libxml2
 * stands on it now), nothing that came after it. */
static void
hdr_cut(struct xmlstream *xs)
{
	long used = xmlByteConsumed(xs->ctx);
	const char *gt;

	if (used < 0 || (size_t)used >= xs->hdr_len ||
	    (gt = memchr(xs->hdr + used, '>', xs->hdr_len - (size_t)used)) == NULL) {
		free(xs->hdr);          /* cannot tell where it ends: never trim */
		xs->hdr = NULL;
		xs->hdr_len = 0;
		return;
	}
	xs->hdr_len = (size_t)(gt - xs->hdr) + 1;
}

/* A parser for a stream whose parser was released by xmlstream_trim: a new one, fed the
 * saved header with its events suppressed (they were delivered the first time), so
 * that it stands where the old one stood, inside the stream element with its
 * namespace declarations in scope. */
static int
parser_revive(struct xmlstream *xs)
{
	if (parser_ctx(xs) == -1)
		return -1;
	xs->level = 0;
	xs->replaying = true;
	xmlParseChunk(xs->ctx, xs->hdr, (int)xs->hdr_len, 0);
	xs->replaying = false;
	if (xs->level != 1 && !xs->failed) {
		xs_fail(xs, "internal-server-error", "stream header replay failed");
		return 0;
	}
	return 0;
}

/* Between top-level elements, with the header kept: the parser may be given back and
 * rebuilt from the header (parser_revive) when input comes. */
static bool
parser_releasable(const struct xmlstream *xs)
{
	return xs->ctx != NULL && !xs->failed && !xs->closed && xs->level == 1 &&
	    xs->top == NULL && xs->between && xs->lex == LEX_CONTENT && xs->u8_need == 0 &&
	    xs->hdr != NULL;
}

bool
xmlstream_trim(struct xmlstream *xs)
{
	if (xs == NULL || xs->in_feed || !parser_releasable(xs))
		return false;
	xmlFreeParserCtxt(xs->ctx);
	xs->ctx = NULL;
	return true;
}

size_t
xmlstream_dict_bytes(const struct xmlstream *xs)
{
	return xs->ctx != NULL ? xmlDictGetUsage(xs->ctx->dict) : 0;
}

/* At a boundary (no libxml2 call on the stack): a parser whose dictionary outgrew
 * XS_DICT_BYTES / XS_DICT_NAMES is given back (see there). */
static void
dict_bound(struct xmlstream *xs)
{
	xmlDictPtr d;

	if (!parser_releasable(xs) || xs->reset_pending || xs->free_pending ||
	    (d = xs->ctx->dict) == NULL)
		return;
	if (xmlDictGetUsage(d) <= XS_DICT_BYTES && xmlDictSize(d) <= (int)XS_DICT_NAMES)
		return;
	xmlFreeParserCtxt(xs->ctx);
	xs->ctx = NULL;
	xs->dict_renewals++;
	qf_stats.xml_dict_renewals++;
}

unsigned long
xmlstream_dict_renewals(const struct xmlstream *xs)
{
	return xs->dict_renewals;
}

static void
push(struct xmlstream *xs, const char *p, size_t n)
{
	if (n > 0 && xs->ctx == NULL &&
	    (xs->level == 0 ? parser_ctx(xs) : parser_revive(xs)) == -1) {
		xs_fail(xs, "internal-server-error", "out of memory");
		return;
	}
	if (n > 0 && xs->level == 0 && !hdr_keep(xs, p, n)) {
		xs_fail(xs, "internal-server-error", "out of memory");
		return;
	}
	while (n > 0 && !xs->failed) {
		size_t k = n > XS_MAX_CHUNK ? XS_MAX_CHUNK : n;

		xmlParseChunk(xs->ctx, p, (int)k, 0);
		p += k;
		n -= k;
	}
}

ssize_t
xmlstream_feed(struct xmlstream *xs, const char *p, size_t len)
{
	size_t off = 0;
	bool failed;

	if (xs->failed)
		return -1;
	xs->paused = false;
	xs->in_feed = true;
	while (off < len && !xs->failed && !xs->paused && !xs->free_pending) {
		const char *gt, *why = NULL;
		size_t end, start, n;

		if (xs->closed) {
			off = len;
			break;
		}
		gt = memchr(p + off, '>', len - off);
		end = gt != NULL ? (size_t)(gt - p) + 1 : len;
		start = off;
		if (xs->between) {
			while (start < end && is_ws(p[start]))
				start++;
			xs->ws_run += start - off;
			if (xs->ws_run > xs->lim.max_stanza_size) {
				xs_fail(xs, "policy-violation", "more than %zu bytes of whitespace "
				    "between elements", xs->lim.max_stanza_size);
				break;
			}
			if (start < end) {
				xs->between = false;
				xs->ws_run = 0;
			}
		}
		if (utf8_check(xs, p + off, end - off, &why) < end - off) {
			xs_fail(xs, "not-well-formed", "%s", why);
			break;
		}
		n = end - start;
		if (n > xs->lim.max_stanza_size - xs->pending) {
			xs_fail(xs, "policy-violation", "%s larger than %zu bytes",
			    xs->level == 0 ? "stream header" : "top-level element",
			    xs->lim.max_stanza_size);
			break;
		}
		if (!scan(xs, p + off, end - off)) {
			xs_fail(xs, "not-well-formed", "'<' inside a tag or attribute value");
			break;
		}
		xs->pending += n;
		xs->boundary = false;
		push(xs, p + off, end - off);
		off = end;
		if (xs->boundary) {
			xs->pending = 0;
			xs->between = true;
			dict_bound(xs);
		}
		if (xs->reset_pending && !xs->failed && !xs->free_pending) {
			parser_stop(xs);
			if (parser_start(xs) == -1) {
				xs->in_feed = false;
				xs_fail(xs, "internal-server-error", "out of memory");
				return -1;
			}
		}
	}
	xs->in_feed = false;
	failed = xs->failed;
	if (xs->free_pending) {
		xmlstream_free(xs);
	} else if (xs->reset_pending) {
		/* Reset requested from on_error: honour it, but this call failed. */
		parser_stop(xs);
		if (parser_start(xs) == -1)
			xs->failed = true;
	}
	if (failed)
		return -1;
	return (ssize_t)off;
}

static bool
name_too_long(const struct xmlstream *xs, const xmlChar *s)
{
	return s != NULL && strlen((const char *)s) > xs->lim.max_name_length;
}

static size_t
put_utf8(char *o, unsigned long c)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	} else if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	} else if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Copy an attribute value from libxml2 (value..end, not NUL-terminated) and decode the
 * references libxml2 leaves in it: without entity substitution a '&' arrives as "&#38;".
 * Character and predefined entity references are decoded; the decoded text is never
 * rescanned. Caller frees; NULL on OOM. */
static char *
attr_value(const xmlChar *v, const xmlChar *end)
{
	static const struct { const char *name; char c; } pre[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		{ "apos;", '\'' }, { "quot;", '"' },
	};
	size_t len = (size_t)(end - v), o = 0, i = 0, k;
	char *s;

	/* Decoding never makes the text longer (a reference is >= its UTF-8 form). */
	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	while (i < len) {
		const char *p = (const char *)v + i;
		size_t rest = len - i;

		if (*p != '&') {
			s[o++] = *p;
			i++;
			continue;
		}
		if (rest > 2 && p[1] == '#') {
			unsigned long c = 0;
			size_t j = 2;
			int hex = 0, digits = 0;

			if (p[2] == 'x') {
				hex = 1;
				j = 3;
			}
			for (; j < rest && digits < 8; j++, digits++) {
				char d = p[j];

				if (d >= '0' && d <= '9')
					c = c * (hex ? 16 : 10) + (unsigned long)(d - '0');
				else if (hex && d >= 'a' && d <= 'f')
					c = c * 16 + (unsigned long)(d - 'a' + 10);
				else if (hex && d >= 'A' && d <= 'F')
					c = c * 16 + (unsigned long)(d - 'A' + 10);
				else
					break;
			}
			/* "&#N;" is at least 4 bytes, its UTF-8 form at most 4. */
			if (digits > 0 && j < rest && p[j] == ';' && c > 0 && c <= 0x10ffff) {
				o += put_utf8(s + o, c);
				i += j + 1;
				continue;
			}
		} else {
			for (k = 0; k < sizeof(pre) / sizeof(pre[0]); k++) {
				size_t pl = strlen(pre[k].name);

				if (rest > pl && memcmp(p + 1, pre[k].name, pl) == 0) {
					s[o++] = pre[k].c;
					i += pl + 1;
					break;
				}
			}
			if (k < sizeof(pre) / sizeof(pre[0]))
				continue;
		}
		s[o++] = *p;
		i++;
	}
	s[o] = '\0';
	return s;
}

/* A namespace name as the application sees it: libxml2 hands namespace URIs over with
 * '&' still written as "&#38;", like attribute values. Caller frees; NULL on OOM. */
static char *
ns_value(const xmlChar *uri)
{
	const char *s = uri != NULL ? (const char *)uri : "";

	return attr_value((const xmlChar *)s, (const xmlChar *)s + strlen(s));
}

/* Copy attributes to n; with charge, count them toward the tree's memory. Returns -1
 * on OOM or when the memory bound is hit (the stream has failed then). */
static int
add_attrs(struct xmlstream *xs, struct xnode *n, int nb, const xmlChar **attrs, bool charge)
{
	for (int i = 0; i < nb; i++) {
		const xmlChar **a = attrs + 5 * i;
		char *v;
		int rc;

		char *ns = NULL;

		if ((v = attr_value(a[3], a[4])) == NULL)
			return -1;
		if (a[2] != NULL && (ns = ns_value(a[2])) == NULL) {
			free(v);
			return -1;
		}
		if (charge && !mem_charge(xs, mem_cost(sizeof(struct xattr)) +
		    mem_cost(strlen((const char *)a[0]) + 1) + mem_cost(strlen(v) + 1) +
		    (ns != NULL && ns[0] != '\0' ? mem_cost(strlen(ns) + 1) : 0))) {
			free(v);
			free(ns);
			return -1;
		}
		rc = xnode_set_attr_ns(n, (const char *)a[0], ns, v);
		free(v);
		free(ns);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static void
sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
    int nb_ns, const xmlChar **nss, int nb_attrs, int nb_defaulted, const xmlChar **attrs)
{
	struct xmlstream *xs = ctx;
	const char *name = (const char *)localname;
	const char *ns = uri ? (const char *)uri : "";
	struct xnode *n;
	char *dns;
	int i;

	if (xs_quiet(xs))
		return;
	if (xs->level > xs->lim.max_depth) {
		xs_fail(xs, "policy-violation", "element <%.64s> nested deeper than %u",
		    name, xs->lim.max_depth);
		return;
	}
	if (nb_attrs > 0 && (unsigned)nb_attrs > xs->lim.max_attributes) {
		xs_fail(xs, "policy-violation", "element <%.64s> has %d attributes (max %u)",
		    name, nb_attrs, xs->lim.max_attributes);
		return;
	}
	if (nb_ns > 0 && (unsigned)nb_ns > xs->lim.max_attributes) {
		xs_fail(xs, "policy-violation",
		    "element <%.64s> has %d namespace declarations (max %u)",
		    name, nb_ns, xs->lim.max_attributes);
		return;
	}
	if (name_too_long(xs, localname) || name_too_long(xs, prefix)) {
		xs_fail(xs, "policy-violation", "element name longer than %u",
		    xs->lim.max_name_length);
		return;
	}
	for (i = 0; i < nb_ns; i++) {
		if (name_too_long(xs, nss[2 * i])) {
			xs_fail(xs, "policy-violation", "namespace prefix longer than %u",
			    xs->lim.max_name_length);
			return;
		}
	}
	for (i = 0; i < nb_attrs; i++) {
		if (name_too_long(xs, attrs[5 * i]) || name_too_long(xs, attrs[5 * i + 1])) {
			xs_fail(xs, "policy-violation", "attribute name longer than %u",
			    xs->lim.max_name_length);
			return;
		}
	}

	if (xs->level == 0 && xs->replaying) {
		xs->level = 1;          /* the header again, for a revived parser */
		return;
	}
	if (xs->level == 0) {
		/* The stream header. */
		if (strcmp(ns, NS_STREAM) != 0) {
			xs_fail(xs, "invalid-namespace",
			    "root element <%.64s> in namespace '%.128s'", name, ns);
			return;
		}
		if (strcmp(name, "stream") != 0) {
			xs_fail(xs, "bad-format", "root element <%.64s> is not <stream>", name);
			return;
		}
		if ((n = xnode_new("stream", NS_STREAM)) == NULL)
			goto oom;
		for (i = 0; i < nb_ns; i++) {
			int rc;

			if (nss[2 * i] != NULL)
				continue;
			if ((dns = ns_value(nss[2 * i + 1])) == NULL) {
				xnode_free(n);
				goto oom;
			}
			rc = xnode_set_attr(n, "xmlns", dns);
			free(dns);
			if (rc == -1) {
				xnode_free(n);
				goto oom;
			}
		}
		if (add_attrs(xs, n, nb_attrs, attrs, false) == -1) {
			xnode_free(n);
			goto oom;
		}
		hdr_cut(xs);
		xs->level = 1;
		xs->boundary = true;
		if (xs->cb.on_open != NULL)
			xs->cb.on_open(xs->arg, n);
		xnode_free(n);
		return;
	}

	if (xs->level == 1 && strcmp(name, "stream") == 0 && strcmp(ns, NS_STREAM) == 0) {
		/* Well-formed XML, but a stream header is only valid as the root of a (new)
		 * document: as a first-level child it is an element the stream does not
		 * support (RFC 6120 §4.9.3.22), not a stanza to build and pass on. */
		xs_fail(xs, "unsupported-stanza-type", "stream header inside an open stream");
		return;
	}
	if ((dns = ns_value(uri)) == NULL)
		goto oom;
	if (xs->level == 1)
		xs->mem = 0;   /* a new top-level element */
	if (!mem_charge(xs, mem_cost(sizeof(struct xnode)) + mem_cost(strlen(name) + 1) +
	    mem_cost(strlen(dns) + 1))) {
		free(dns);
		return;
	}
	if (xs->level == 1) {
		n = xnode_new(name, dns);
		free(dns);
		if (n == NULL)
			goto oom;
		xs->top = n;
	} else {
		n = xnode_add_child(xs->cur, name, dns);
		free(dns);
		if (n == NULL)
			goto oom;
	}
	xs->cur = n;
	xs->level++;
	if (add_attrs(xs, n, nb_attrs, attrs, true) == -1)
		goto oom;
	return;
oom:
	xs_fail(xs, "internal-server-error", "out of memory");
}

static void
sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
	struct xmlstream *xs = ctx;
	struct xnode *el;

	if (xs_quiet(xs) || xs->level == 0)
		return;
	xs->level--;
	if (xs->level == 0) {
		xs->closed = true;
		xs->boundary = true;
		if (xs->cb.on_close != NULL)
			xs->cb.on_close(xs->arg);
		return;
	}
	if (xs->level == 1) {
		el = xs->top;
		xs->top = xs->cur = NULL;
		xs->boundary = true;
		if (xs->cb.on_element != NULL)
			xs->cb.on_element(xs->arg, el);
		else
			xnode_free(el);
		return;
	}
	xs->cur = xs->cur->parent;
}

static void
sax_chars(void *ctx, const xmlChar *ch, int len)
{
	struct xmlstream *xs = ctx;
	struct xnode *last;
	const char *p = (const char *)ch;
	char *t;

	if (xs_quiet(xs) || len <= 0)
		return;
	if (xs->level <= 1) {
		for (int i = 0; i < len; i++) {
			if (!is_ws(p[i])) {
				xs_fail(xs, "bad-format", "text directly inside the stream element");
				return;
			}
		}
		return;
	}
	/* libxml2 splits text arbitrarily (differently for every split of the input):
	 * merge adjacent pieces so that the tree does not depend on it. */
	last = xs->cur->last_child;
	if (last != NULL && last->is_text) {
		if (!mem_charge(xs, mem_cost(last->text_len + (size_t)len + 1) -
		    mem_cost(last->text_len + 1)))
			return;
		if ((t = realloc(last->text, last->text_len + (size_t)len + 1)) == NULL)
			goto oom;
		memcpy(t + last->text_len, p, (size_t)len);
		last->text = t;
		last->text_len += (size_t)len;
		t[last->text_len] = '\0';
		return;
	}
	if (!mem_charge(xs, mem_cost(sizeof(struct xnode)) + mem_cost((size_t)len + 1)))
		return;
	if (xnode_add_text(xs->cur, p, (size_t)len) == NULL)
		goto oom;
	return;
oom:
	xs_fail(xs, "internal-server-error", "out of memory");
}

static void
sax_internal_subset(void *ctx, const xmlChar *name, const xmlChar *eid, const xmlChar *sid)
{
	xs_fail(ctx, "restricted-xml", "document type declaration");
}

static void
sax_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pid,
    const xmlChar *sid, xmlChar *content)
{
	xs_fail(ctx, "restricted-xml", "entity declaration");
}

static void
sax_notation_decl(void *ctx, const xmlChar *name, const xmlChar *pid, const xmlChar *sid)
{
	xs_fail(ctx, "restricted-xml", "notation declaration");
}

static void
sax_attribute_decl(void *ctx, const xmlChar *elem, const xmlChar *fullname, int type,
    int def, const xmlChar *defval, xmlEnumerationPtr tree)
{
	xs_fail(ctx, "restricted-xml", "attribute declaration");
	xmlFreeEnumeration(tree);
}

static void
sax_element_decl(void *ctx, const xmlChar *name, int type, xmlElementContentPtr content)
{
	xs_fail(ctx, "restricted-xml", "element declaration");
}

static void
sax_unparsed_decl(void *ctx, const xmlChar *name, const xmlChar *pid, const xmlChar *sid,
    const xmlChar *notation)
{
	xs_fail(ctx, "restricted-xml", "unparsed entity declaration");
}

static xmlEntityPtr
sax_get_entity(void *ctx, const xmlChar *name)
{
	xs_fail(ctx, "restricted-xml", "entity reference");
	return NULL;
}

static xmlParserInputPtr
sax_resolve_entity(void *ctx, const xmlChar *pid, const xmlChar *sid)
{
	xs_fail(ctx, "restricted-xml", "external entity");
	return NULL;
}

static void
sax_reference(void *ctx, const xmlChar *name)
{
	xs_fail(ctx, "restricted-xml", "entity reference");
}

static void
sax_comment(void *ctx, const xmlChar *value)
{
	xs_fail(ctx, "restricted-xml", "comment");
}

static void
sax_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
	xs_fail(ctx, "restricted-xml", "processing instruction");
}

static void
sax_serror(void *ctx, xmlErrorPtr err)
{
	struct xmlstream *xs = ctx;
	char msg[160];
	size_t n;

	if (err == NULL || err->level < XML_ERR_ERROR)
		return;
	snprintf(msg, sizeof(msg), "%s", err->message ? err->message : "parse error");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	xs_fail(xs, "not-well-formed", "line %d: %s", err->line, msg);
}
