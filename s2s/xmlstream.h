/* s2s/xmlstream.h - incremental XMPP stream parser on libxml2's push parser.
 * SPDX-License-Identifier: ISC
 * One per stream (reset at every stream restart). Fed raw plaintext bytes in any split,
 * it reports: the stream header, each complete top-level element as an xnode tree,
 * the stream close, and errors. It refuses DTDs, entity declarations and references
 * (beyond the 5 predefined ones and character references), comments and processing
 * instructions (RFC 6120 §11), invalid UTF-8 and characters XML forbids, a stream
 * header nested in the stream, and enforces limits on stanza size, whitespace between
 * elements, tree memory, depth, attributes and name length. Owner: stream.c. */
#ifndef QF_XMLSTREAM_H
#define QF_XMLSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "xnode.h"

struct xml_limits {
	size_t   max_stanza_size;   /* bytes of input in one top-level element (and in the header),
	                             * and of whitespace in a row between them */
	unsigned max_depth;         /* element depth below the stream element */
	unsigned max_attributes;    /* per element */
	unsigned max_name_length;   /* element/attribute names and namespace prefixes */
	size_t   max_stanza_memory; /* approximate heap bytes of the tree of one top-level
	                             * element under construction; 0 = 512 KiB */
};

struct xmlstream_cb {
	/* <stream:stream ...> was opened. header holds the attributes (name "stream", ns
	 * NS_STREAM) and no children; borrowed for the call. */
	void (*on_open)(void *arg, const struct xnode *header);
	/* A complete top-level element. Ownership passes to the callee (xnode_free it). */
	void (*on_element)(void *arg, struct xnode *el);
	/* </stream:stream> seen. */
	void (*on_close)(void *arg);
	/* A fatal error. cond is the RFC 6120 stream error condition: "not-well-formed"
	 * (also for invalid UTF-8), "restricted-xml", "policy-violation" (a limit),
	 * "invalid-namespace", "bad-format", "unsupported-stanza-type" (a nested stream
	 * header); text says what was wrong (for logs). The stream accepts no more input. */
	void (*on_error)(void *arg, const char *cond, const char *text);
};

struct xmlstream;

struct xmlstream *xmlstream_new(const struct xml_limits *lim, const struct xmlstream_cb *cb,
    void *arg);
void xmlstream_free(struct xmlstream *xs);
/* Feed len bytes. Events are delivered from inside this call. Returns the number of
 * bytes consumed: all of them, unless a callback called xmlstream_pause() — then parsing
 * stops right after the element that triggered the pause and the return value is the
 * number of bytes up to and including that element's last '>' (so the rest, e.g. a TLS
 * ClientHello behind <starttls/>, can be handed to the TLS engine). Returns -1 after an
 * error (on_error has been called). */
ssize_t xmlstream_feed(struct xmlstream *xs, const char *p, size_t len);
/* From a callback: stop consuming input after the current element. */
void xmlstream_pause(struct xmlstream *xs);
/* Start over for a stream restart (after STARTTLS or SASL). Drops all parser state. */
int xmlstream_reset(struct xmlstream *xs);
/* Between top-level elements (nothing of the next one read yet): release the libxml2
 * parser (about 8 KiB, more after large stanzas); the next input rebuilds it from the
 * saved stream header. Returns true when released. Not from a callback. */
bool xmlstream_trim(struct xmlstream *xs);
/* The current parser's name dictionary, bytes (0 while the parser is released), and
 * how often a parser was given back because it outgrew its bound (xmlstream.c
 * XS_DICT_BYTES; show stats xml.dict_renewals counts them all). */
size_t xmlstream_dict_bytes(const struct xmlstream *xs);
unsigned long xmlstream_dict_renewals(const struct xmlstream *xs);
/* True once on_error was called. */
bool xmlstream_failed(const struct xmlstream *xs);

#endif
