/* s2s/xnode.h - a small, bounded element tree for one stanza or stream-level element.
 * SPDX-License-Identifier: ISC
 * xmlstream.c builds one xnode tree per top-level child of <stream:stream>; stream.c and
 * the router read it, and xnode_serialize() writes it back out as well-formed XML with
 * correct escaping and namespace declarations. Text and attribute values are stored
 * unescaped (as the application sees them). */
#ifndef QF_XNODE_H
#define QF_XNODE_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/buf.h"

#define NS_STREAM    "http://etherx.jabber.org/streams"
#define NS_SERVER    "jabber:server"
#define NS_DIALBACK  "jabber:server:dialback"
#define NS_DB_FEAT   "urn:xmpp:features:dialback"
#define NS_TLS       "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL      "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_STREAMS_E "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_STANZAS_E "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_BIDI_FEAT "urn:xmpp:features:bidi"
#define NS_BIDI      "urn:xmpp:bidi"
#define NS_PIPELINING "urn:xmpp:features:pipelining"
#define NS_XML       "http://www.w3.org/XML/1998/namespace"

struct xattr {
	char *name;          /* local name, owned */
	char *ns;            /* namespace URI or NULL for unqualified, owned */
	char *value;         /* unescaped value, owned */
	struct xattr *next;
};

/* An element or a text node. */
struct xnode {
	bool  is_text;
	char *name;          /* element local name (NULL for text), owned */
	char *ns;            /* element namespace URI ("" if none), owned */
	char *text;          /* text content for text nodes, owned */
	size_t text_len;
	struct xattr *attrs; /* in document order */
	struct xnode *parent;
	struct xnode *children, *last_child, *next;
};

struct xnode *xnode_new(const char *name, const char *ns);   /* NULL on OOM */
void xnode_free(struct xnode *n);                              /* frees the subtree */
/* Append a child element / text; return the new node or NULL on OOM. */
struct xnode *xnode_add_child(struct xnode *parent, const char *name, const char *ns);
struct xnode *xnode_add_text(struct xnode *parent, const char *text, size_t len);
int xnode_set_attr(struct xnode *n, const char *name, const char *value); /* unqualified */
int xnode_set_attr_ns(struct xnode *n, const char *name, const char *ns, const char *value);
/* Value of an unqualified attribute, or NULL (borrowed). */
const char *xnode_attr(const struct xnode *n, const char *name);
/* First child element with that name and namespace (either may be NULL = any). */
struct xnode *xnode_child(const struct xnode *n, const char *name, const char *ns);
/* Concatenated text of the direct text children; caller frees. NULL on OOM. */
char *xnode_text(const struct xnode *n);
/* Deep copy (NULL on OOM). */
struct xnode *xnode_dup(const struct xnode *n);
/* Serialize n into out. parent_ns is the default namespace in force where n is written
 * (e.g. "jabber:server" inside an s2s stream); an xmlns='' declaration is emitted only
 * when n's namespace differs. Prefixed names are never produced: every element gets its
 * namespace through a default declaration, except that elements in the stream namespace
 * are written as "stream:NAME" (the stream header declares that prefix) and elements in
 * jabber:server:dialback as "db:NAME" (likewise). Returns 0 or -1 when out is full.
 * Written with direct appends (no printf). The stanza's original bytes are not forwarded
 * instead: they may use prefixes declared on the sender's stream header (any xmlns:p,
 * not only stream: and db:) that the next stream does not declare, and inherit that
 * header's xml:lang, which the next stream need not share; re-serializing makes every
 * stanza self-contained under jabber:server. */
int xnode_serialize(const struct xnode *n, const char *parent_ns, struct buf *out);

#endif
