/* s2s/xnode.c - a small element tree for one stanza, and its serializer.
 * SPDX-License-Identifier: ISC
 * xmlstream.c builds these trees while parsing; stream.c, dialback.c and the router read,
 * build and copy them and write them out with xnode_serialize(). Serialization declares
 * namespaces only where they change and escapes text and attribute values so that the
 * output re-parses to the same tree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "xnode.h"

/* Most distinct attribute namespaces (other than xml:) one element may carry when
 * serialized; each gets a generated prefix a0, a1, ... */
#define XNODE_MAX_ATTR_NS 32

static char *xstrdup(const char *);
static char *xmemdup(const char *, size_t);
static void xattr_free(struct xattr *);
static void xnode_append(struct xnode *, struct xnode *);
static int put_escaped(struct buf *, const char *, size_t, int);
static size_t plain_run(const char *, size_t, size_t, int);
static int put_name(struct buf *, const char *, const char *, const char *);
static void gen_prefix(char[4], size_t);
static int put_attr_start(struct buf *, const char *, const char *);
static int serialize(const struct xnode *, const char *, struct buf *);
static bool ns_equal(const char *, const char *);

static char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

static char *
xmemdup(const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX || (p = malloc(n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* NULL and "" both mean "no namespace". */
static bool
ns_equal(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

struct xnode *
xnode_new(const char *name, const char *ns)
{
	struct xnode *n;

	if (name == NULL || (n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->name = xstrdup(name);
	n->ns = xstrdup(ns ? ns : "");
	if (n->name == NULL || n->ns == NULL) {
		xnode_free(n);
		return NULL;
	}
	return n;
}

static void
xattr_free(struct xattr *a)
{
	free(a->name);
	free(a->ns);
	free(a->value);
	free(a);
}

void
xnode_free(struct xnode *n)
{
	struct xnode *c, *cn;
	struct xattr *a, *an;

	if (n == NULL)
		return;
	for (c = n->children; c != NULL; c = cn) {
		cn = c->next;
		xnode_free(c);
	}
	for (a = n->attrs; a != NULL; a = an) {
		an = a->next;
		xattr_free(a);
	}
	free(n->name);
	free(n->ns);
	free(n->text);
	free(n);
}

static void
xnode_append(struct xnode *parent, struct xnode *c)
{
	c->parent = parent;
	if (parent->last_child != NULL)
		parent->last_child->next = c;
	else
		parent->children = c;
	parent->last_child = c;
}

struct xnode *
xnode_add_child(struct xnode *parent, const char *name, const char *ns)
{
	struct xnode *c;

	if (parent == NULL || (c = xnode_new(name, ns)) == NULL)
		return NULL;
	xnode_append(parent, c);
	return c;
}

struct xnode *
xnode_add_text(struct xnode *parent, const char *text, size_t len)
{
	struct xnode *c;

	if (parent == NULL || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->is_text = true;
	if ((c->text = xmemdup(text, len)) == NULL) {
		free(c);
		return NULL;
	}
	c->text_len = len;
	xnode_append(parent, c);
	return c;
}

int
xnode_set_attr(struct xnode *n, const char *name, const char *value)
{
	return xnode_set_attr_ns(n, name, NULL, value);
}

int
xnode_set_attr_ns(struct xnode *n, const char *name, const char *ns, const char *value)
{
	struct xattr *a, **tail;
	char *v;

	if (n == NULL || n->is_text || name == NULL || value == NULL)
		return -1;
	if (ns != NULL && *ns == '\0')
		ns = NULL;
	for (tail = &n->attrs; (a = *tail) != NULL; tail = &a->next) {
		if (strcmp(a->name, name) == 0 && ns_equal(a->ns, ns)) {
			if ((v = xstrdup(value)) == NULL)
				return -1;
			free(a->value);
			a->value = v;
			return 0;
		}
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	a->name = xstrdup(name);
	a->value = xstrdup(value);
	a->ns = ns ? xstrdup(ns) : NULL;
	if (a->name == NULL || a->value == NULL || (ns != NULL && a->ns == NULL)) {
		xattr_free(a);
		return -1;
	}
	*tail = a;
	return 0;
}

const char *
xnode_attr(const struct xnode *n, const char *name)
{
	const struct xattr *a;

	if (n == NULL || name == NULL)
		return NULL;
	for (a = n->attrs; a != NULL; a = a->next)
		if (a->ns == NULL && strcmp(a->name, name) == 0)
			return a->value;
	return NULL;
}

struct xnode *
xnode_child(const struct xnode *n, const char *name, const char *ns)
{
	struct xnode *c;

	if (n == NULL)
		return NULL;
	for (c = n->children; c != NULL; c = c->next) {
		if (c->is_text)
			continue;
		if (name != NULL && strcmp(c->name, name) != 0)
			continue;
		if (ns != NULL && !ns_equal(c->ns, ns))
			continue;
		return c;
	}
	return NULL;
}

char *
xnode_text(const struct xnode *n)
{
	const struct xnode *c;
	size_t len = 0, off = 0;
	char *s;

	if (n == NULL)
		return NULL;
	if (n->is_text)
		return xmemdup(n->text, n->text_len);
	for (c = n->children; c != NULL; c = c->next)
		if (c->is_text)
			len += c->text_len;
	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	for (c = n->children; c != NULL; c = c->next) {
		if (c->is_text && c->text_len > 0) {
			memcpy(s + off, c->text, c->text_len);
			off += c->text_len;
		}
	}
	s[off] = '\0';
	return s;
}

struct xnode *
xnode_dup(const struct xnode *n)
{
	struct xnode *d, *c, *dc;
	const struct xattr *a;

	if (n == NULL)
		return NULL;
	if (n->is_text) {
		if ((d = calloc(1, sizeof(*d))) == NULL)
			return NULL;
		d->is_text = true;
		d->text_len = n->text_len;
		if ((d->text = xmemdup(n->text, n->text_len)) == NULL) {
			free(d);
			return NULL;
		}
		return d;
	}
	if ((d = xnode_new(n->name, n->ns)) == NULL)
		return NULL;
	for (a = n->attrs; a != NULL; a = a->next) {
		if (xnode_set_attr_ns(d, a->name, a->ns, a->value) == -1)
			goto fail;
	}
	for (c = n->children; c != NULL; c = c->next) {
		if ((dc = xnode_dup(c)) == NULL)
			goto fail;
		xnode_append(d, dc);
	}
	return d;
fail:
	xnode_free(d);
	return NULL;
}

/* What put_escaped replaces: 1 in text and attribute values, 2 in attribute values
 * only. */
static const unsigned char escape_class[256] = {
	['&'] = 1, ['<'] = 1, ['>'] = 1, ['\''] = 1, ['"'] = 1, ['\r'] = 1,
	['\n'] = 2, ['\t'] = 2,
};

/* The first byte from i on (before n) that put_escaped replaces, or n. Stanza text is
 * mostly plain: with SSE2 (every x86-64) 16 bytes are compared at once, the rest (and
 * other machines) goes by the table. */
static size_t
plain_run(const char *s, size_t i, size_t n, int attr)
{
#if defined(__SSE2__)
	const __m128i amp = _mm_set1_epi8('&'), lt = _mm_set1_epi8('<'),
	    gt = _mm_set1_epi8('>'), ap = _mm_set1_epi8('\''), qu = _mm_set1_epi8('"'),
	    cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), tab = _mm_set1_epi8('\t');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i m = _mm_or_si128(
		    _mm_or_si128(_mm_cmpeq_epi8(v, amp), _mm_cmpeq_epi8(v, lt)),
		    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, gt), _mm_cmpeq_epi8(v, ap)),
		    _mm_or_si128(_mm_cmpeq_epi8(v, qu), _mm_cmpeq_epi8(v, cr))));
		unsigned mask;

		if (attr)
			m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, lf),
			    _mm_cmpeq_epi8(v, tab)));
		if ((mask = (unsigned)_mm_movemask_epi8(m)) != 0)
			return i + (size_t)__builtin_ctz(mask);
	}
#endif
	for (; i < n; i++) {
		unsigned char k = escape_class[(unsigned char)s[i]];

		if (k == 1 || (k == 2 && attr))
			return i;
	}
	return n;
}

/* Escape for text (attr == 0) or a single-quoted attribute value (attr == 1), in one
 * pass that appends the runs between specials as they are. Besides the five XML
 * specials, CR is written as a character reference (a parser would turn a literal CR
 * into LF), and in attribute values TAB and LF too (attribute value normalization would
 * turn them into spaces). On failure out is as it was (xnode_serialize restores it). */
static int
put_escaped(struct buf *b, const char *s, size_t n, int attr)
{
	size_t start = 0;

	for (size_t i = plain_run(s, 0, n, attr); i < n; i = plain_run(s, i + 1, n, attr)) {
		unsigned char c = (unsigned char)s[i];
		const char *rep;

		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\'': rep = "&apos;"; break;
		case '"': rep = "&quot;"; break;
		case '\r': rep = "&#13;"; break;
		case '\n': rep = "&#10;"; break;
		default: rep = "&#9;"; break;
		}
		if (buf_append(b, s + start, i - start) == -1 || buf_puts(b, rep) == -1)
			return -1;
		start = i + 1;
	}
	return buf_append(b, s + start, n - start);
}

/* Append "<" or "</" (open), the prefix and ':' when pfx is set, and the name. */
static int
put_name(struct buf *b, const char *open, const char *pfx, const char *name)
{
	if (buf_puts(b, open) == -1)
		return -1;
	if (pfx != NULL && (buf_puts(b, pfx) == -1 || buf_append(b, ":", 1) == -1))
		return -1;
	return buf_puts(b, name);
}

/* The generated prefix of the i-th attribute namespace: "a0" .. "a31". */
static void
gen_prefix(char out[4], size_t i)
{
	out[0] = 'a';
	if (i >= 10) {
		out[1] = (char)('0' + i / 10);
		out[2] = (char)('0' + i % 10);
		out[3] = '\0';
	} else {
		out[1] = (char)('0' + i);
		out[2] = '\0';
	}
}

/* Append " PFX:NAME='" (pfx NULL: " NAME='"). */
static int
put_attr_start(struct buf *b, const char *pfx, const char *name)
{
	if (buf_append(b, " ", 1) == -1)
		return -1;
	if (pfx != NULL && (buf_puts(b, pfx) == -1 || buf_append(b, ":", 1) == -1))
		return -1;
	if (buf_puts(b, name) == -1 || buf_append(b, "='", 2) == -1)
		return -1;
	return 0;
}

/* Written with direct appends (no printf): names as they are, values escaped. */
static int
serialize(const struct xnode *n, const char *parent_ns, struct buf *out)
{
	const char *attr_ns[XNODE_MAX_ATTR_NS];
	const char *pfx = NULL, *child_ns;
	const struct xattr *a;
	const struct xnode *c;
	size_t nattr_ns = 0, i;
	char gen[4];
	bool content = false;

	if (n->is_text)
		return put_escaped(out, n->text, n->text_len, 0);

	if (strcmp(n->ns, NS_STREAM) == 0)
		pfx = "stream";
	else if (strcmp(n->ns, NS_DIALBACK) == 0)
		pfx = "db";
	if (put_name(out, "<", pfx, n->name) == -1)
		return -1;
	if (pfx != NULL) {
		/* The prefixed element leaves the default namespace alone. */
		child_ns = parent_ns;
	} else {
		child_ns = n->ns;
		if (!ns_equal(n->ns, parent_ns)) {
			if (buf_append(out, " xmlns='", 8) == -1 ||
			    put_escaped(out, n->ns, strlen(n->ns), 1) == -1 ||
			    buf_append(out, "'", 1) == -1)
				return -1;
		}
	}

	for (a = n->attrs; a != NULL; a = a->next) {
		if (a->ns == NULL || *a->ns == '\0') {
			/* A recorded default namespace (the stream header keeps one as
			 * "xmlns") is only meaningful on a prefixed element; elsewhere the
			 * declaration above is the one in force. */
			if (pfx == NULL && strcmp(a->name, "xmlns") == 0)
				continue;
			if (put_attr_start(out, NULL, a->name) == -1)
				return -1;
		} else if (strcmp(a->ns, NS_XML) == 0) {
			if (put_attr_start(out, "xml", a->name) == -1)
				return -1;
		} else {
			for (i = 0; i < nattr_ns; i++)
				if (strcmp(attr_ns[i], a->ns) == 0)
					break;
			gen_prefix(gen, i);
			if (i == nattr_ns) {
				if (nattr_ns == XNODE_MAX_ATTR_NS)
					return -1;
				attr_ns[nattr_ns++] = a->ns;
				if (put_attr_start(out, "xmlns", gen) == -1 ||
				    put_escaped(out, a->ns, strlen(a->ns), 1) == -1 ||
				    buf_append(out, "'", 1) == -1)
					return -1;
			}
			if (put_attr_start(out, gen, a->name) == -1)
				return -1;
		}
		if (put_escaped(out, a->value, strlen(a->value), 1) == -1 ||
		    buf_append(out, "'", 1) == -1)
			return -1;
	}

	for (c = n->children; c != NULL; c = c->next)
		if (!c->is_text || c->text_len > 0)
			content = true;
	if (!content)
		return buf_append(out, "/>", 2);
	if (buf_append(out, ">", 1) == -1)
		return -1;
	for (c = n->children; c != NULL; c = c->next) {
		if (c->is_text && c->text_len == 0)
			continue;
		if (serialize(c, child_ns, out) == -1)
			return -1;
	}
	if (put_name(out, "</", pfx, n->name) == -1)
		return -1;
	return buf_append(out, ">", 1);
}

int
xnode_serialize(const struct xnode *n, const char *parent_ns, struct buf *out)
{
	size_t old = out->len;

	if (n == NULL || serialize(n, parent_ns, out) == -1) {
		out->len = old;
		if (out->data)
			out->data[old] = '\0';
		return -1;
	}
	return 0;
}
