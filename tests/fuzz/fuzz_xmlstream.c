/* tests/fuzz/fuzz_xmlstream.c - libFuzzer target for the incremental XMPP stream parser.
 * SPDX-License-Identifier: ISC
 * Built by `make fuzz`. The first bytes of the input choose the chunk sizes and when
 * callbacks pause or reset the parser; the rest is fed to an xmlstream with small limits.
 * Every element is serialized with xnode_serialize and re-parsed: the round trip must
 * parse and serialize to the same bytes, or the target aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "s2s/xmlstream.h"
#include "s2s/xnode.h"

#define RT_HDR "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>"

struct fz {
	struct xmlstream *xs;
	unsigned ctl;        /* behaviour bits from the input */
	unsigned events;
	bool paused;         /* a callback paused the parser during this feed */
	bool reset;          /* a callback reset the parser during this feed */
};

struct rt {
	int elements, errors;
	struct buf out;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
rt_element(void *arg, struct xnode *el)
{
	struct rt *r = arg;

	r->elements++;
	if (r->elements == 1 && xnode_serialize(el, NS_SERVER, &r->out) == -1)
		abort();
	xnode_free(el);
}

static void
rt_error(void *arg, const char *cond, const char *text)
{
	struct rt *r = arg;

	fprintf(stderr, "round trip error: %s: %s\n", cond, text);
	r->errors++;
}

/* Re-parse the serialized element inside a stream with generous limits. */
static void
round_trip(const struct buf *ser)
{
	static const struct xml_limits big = { 1 << 22, 64, 1024, 1024, 1 << 26 };
	static const struct xmlstream_cb cb = { NULL, rt_element, NULL, rt_error };
	struct rt r;
	struct xmlstream *xs;

	memset(&r, 0, sizeof(r));
	buf_init(&r.out, 1 << 23);
	if ((xs = xmlstream_new(&big, &cb, &r)) == NULL)
		abort();
	if (xmlstream_feed(xs, RT_HDR, strlen(RT_HDR)) != (ssize_t)strlen(RT_HDR) ||
	    xmlstream_feed(xs, ser->data, ser->len) != (ssize_t)ser->len || r.errors != 0 ||
	    r.elements != 1) {
		fprintf(stderr, "round trip failed (elements=%d errors=%d): %s\n", r.elements,
		    r.errors, ser->data);
		abort();
	}
	if (r.out.len != ser->len || memcmp(r.out.data, ser->data, ser->len) != 0) {
		fprintf(stderr, "round trip changed the element:\n  %s\n  %s\n", ser->data,
		    r.out.data);
		abort();
	}
	xmlstream_free(xs);
	buf_free(&r.out);
}

static void
on_open(void *arg, const struct xnode *hdr)
{
	struct fz *f = arg;

	f->events++;
	if (hdr == NULL || hdr->name == NULL || strcmp(hdr->name, "stream") != 0)
		abort();
	if ((f->ctl & 0x10) && !f->paused) {
		f->paused = true;
		xmlstream_pause(f->xs);
	}
}

static void
on_element(void *arg, struct xnode *el)
{
	struct fz *f = arg;
	struct buf ser;

	f->events++;
	buf_init(&ser, 1 << 23);
	if (xnode_serialize(el, NS_SERVER, &ser) == -1)
		abort();
	round_trip(&ser);
	buf_free(&ser);
	xnode_free(el);
	if ((f->ctl & 0x01) && f->events % 3 == 0 && !f->paused) {
		f->paused = true;
		xmlstream_pause(f->xs);
	}
	if ((f->ctl & 0x02) && f->events % 4 == 0 && !f->reset) {
		f->reset = true;
		xmlstream_reset(f->xs);
	}
}

static void
on_close(void *arg)
{
	((struct fz *)arg)->events++;
}

static void
on_error(void *arg, const char *cond, const char *text)
{
	struct fz *f = arg;

	f->events++;
	if (cond == NULL || text == NULL)
		abort();
	if ((f->ctl & 0x04) && !f->reset) {
		f->reset = true;
		xmlstream_reset(f->xs);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct xml_limits lim = { 4096, 16, 16, 64, 32768 };
	static const struct xmlstream_cb cb = { on_open, on_element, on_close, on_error };
	struct fz f;
	uint8_t sizes[4];
	const char *p;
	size_t len, off = 0;
	unsigned k = 0;

	log_set_level(LOG_ERR);
	if (size < 5)
		return 0;
	memset(&f, 0, sizeof(f));
	f.ctl = data[0];
	memcpy(sizes, data + 1, 4);
	p = (const char *)data + 5;
	len = size - 5;
	if ((f.xs = xmlstream_new(&lim, &cb, &f)) == NULL)
		abort();
	while (off < len) {
		size_t n = sizes[k++ % 4];
		ssize_t r;

		n = n == 0 ? len - off : n % 97 + 1;
		if (n > len - off)
			n = len - off;
		f.paused = f.reset = false;
		r = xmlstream_feed(f.xs, p + off, n);
		if (r == -1) {
			if (!xmlstream_failed(f.xs) && !f.reset)
				abort();
			if (!(f.ctl & 0x20))
				break;
			/* carry on after a reset, like a restarted stream */
			if (xmlstream_reset(f.xs) == -1)
				abort();
			off += n;
			continue;
		}
		if (r < 0 || (size_t)r > n)
			abort();
		if ((size_t)r < n) {
			/* only a pause may stop early, right behind a '>' */
			if (!f.paused || (r > 0 && p[off + (size_t)r - 1] != '>'))
				abort();
		}
		off += (size_t)r;
		if ((f.ctl & 0x08) && k % 7 == 0 && xmlstream_reset(f.xs) == -1)
			abort();
	}
	xmlstream_free(f.xs);
	return 0;
}
