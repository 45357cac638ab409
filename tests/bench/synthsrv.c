/* tests/bench/synthsrv.c - two synthetic XMPP local servers in one process, for tests/bench/synth.sh.
 * SPDX-License-Identifier: ISC
 *
 * `make bench-synth` runs it between two quickfeds (or, for the baseline, with its two
 * sides talking to each other directly). Side A is the local server of the sending
 * site: it opens s2s streams (plain TCP, XEP-0220 dialback, up to PAIRS_PER_STREAM
 * domain pairs per stream by piggybacked db:results) to its peer address (quickfed A's
 * local listener, or side B's listener in the direct run) and writes the stanzas. Side
 * B is the local server of the receiving site: it accepts streams on its listener,
 * verifies each db:result by db:verify over one connection to its peer address
 * (quickfed B's local listener, or side A's listener), and counts the stanzas. Both
 * sides answer db:verify on their listeners, valid only for keys this process made.
 * Pair k (1..N) is u@a<k>.a.example -> u@b<k>.b.example.
 *
 * One run does a plan given on the command line and prints one line per figure:
 *   UP N SECONDS              pairs 1..N carry stanzas (one probe each arrived)
 *   RSS N KIB_A KIB_B         VmRSS of the quickfeds (--pid-a/--pid-b), pairs idle
 *   CPU N SIZE COUNT SECONDS US_A US_B MSG_PER_S
 *                             stanzas of SIZE bytes round robin over the N pairs,
 *                             at most --window in flight, for --seconds, then drained;
 *                             US_X = on-CPU ns of quickfed X (/proc/PID/task/[*]/schedstat)
 *                             / COUNT / 1000
 *   LAT N RATE COUNT P50_US P99_US
 *                             200-byte stanzas paced at RATE/s (half the CPU run's
 *                             msg/s, or --lat-rate N:RATE) for --seconds; send (write)
 *                             to receipt (parsed at B), CLOCK_MONOTONIC
 *   LATS N RATE COUNT P50_US P99_US
 *                             as LAT, at a rate given by --lat-if-sustained N:RATE, run
 *                             only if the stage's 200-byte msg/s reached RATE; else
 *   LATS_SKIP N RATE MSG_PER_S
 *   FAIL reason               then exit 1 (every wait is bounded by --timeout).
 * --phase-hook CMD runs "CMD begin LABEL N" before and "CMD end LABEL N" after each LAT or
 * LATS run (synth.sh reads the quickfeds' loop counters there). SYNTHSRV_LAT_DUMP=FILE in
 * the environment appends every latency sample to FILE (see lat_dump).
 *
 * --component (for the Prosody column of synth.sh): the same plan, but both sides are
 * XEP-0114 external components of a server (Prosody) instead of s2s peers: side A opens
 * one "jabber:component:accept" stream per a<k>.a.example to --a-peer, side B one per
 * b<k>.b.example to --b-peer (no listeners), each authenticated by <handshake> = hex
 * SHA-1(stream id + secret), the secret of domain D being "--secret-D". A pair is set up
 * when both its components are accepted and its probe, written on a<k>'s stream, arrived
 * on b<k>'s: the server carries it over its own s2s link (which the probe makes). The
 * set-up window bounds the pairs whose components are authenticating or whose probe is
 * in flight. What the server sends is treated as hostile: bounded buffers, FAIL on
 * anything that does not fit the plan (stream errors, bounced messages, unknown ids).
 *
 * The XML reader knows only what quickfed and this program write: it tracks element
 * depth, not a full parser. This is a load generator, not a conformance test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "inaddr.h"

#define PAIRS_PER_STREAM 64
#define MAX_CONNS 65536
#define MAX_STAGES 16
#define MAX_PENDING (1 << 20)	/* --component: unparsed bytes allowed from the server */

enum kind { K_LISTEN, K_OUT, K_IN, K_VERIFY, K_COMP };
enum pstate { P_NEW, P_RESULT, P_VALID, P_PROBE, P_UP };

struct conn {
	int fd;
	int side;			/* 0 = A, 1 = B */
	enum kind kind;
	int header;			/* peer's stream header seen */
	int features;			/* peer's features seen (K_COMP: <handshake/> seen) */
	int closed;
	char id[64];			/* the stream id: ours (K_IN) or the peer's (K_OUT/K_VERIFY) */
	char *in;
	size_t inoff, inlen, incap;
	char *out;
	size_t outoff, outlen, outcap;
	int first_pair, npairs;		/* K_OUT: pairs first_pair .. first_pair+npairs-1;
					 * K_COMP: first_pair is its pair, npairs 1 */
};

struct pair {
	enum pstate st;
	int conn;			/* K_OUT index (--component: side A's K_COMP) */
	int conn_b;			/* --component: side B's K_COMP index */
};

static struct conn *conns[MAX_CONNS];
static int nconns;
static int epfd;
static struct pair *pairs;
static int npairs_up;			/* pairs 1..npairs_up exist (index 0 unused) */
static long results_out;		/* db:results sent, not answered */
static uint64_t probes_sent;		/* set-up probes written in this set-up */
static int verify_conn[2] = { -1, -1 };
static char *verify_queue[2];		/* db:verify requests waiting for the verify header */
static size_t vq_len[2];
static long verify_out[2];		/* db:verify requests not answered yet */
static struct sockaddr_in listen_addr[2], peer_addr[2];
static uint64_t secret;
static uint64_t *sent_ns;		/* by sequence number */
static size_t seq_cap;
static uint64_t seq_next = 1;
static uint64_t recv_count, recv_phase_first;
static const char *phase_hook;	/* --phase-hook CMD: run around each latency run */
static uint64_t *lat_ns, *lat_at;	/* latency and send time of each sample */
static size_t lat_len, lat_cap;
static int recording;
static long opt_window = 500, opt_setup_window = 100;
static double opt_seconds = 2.0, opt_timeout = 120.0;
static int pid_qf[2];
static int comp_mode;			/* --component */
static const char *comp_secret = "";	/* --secret */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static const char *kind_name(enum kind);

static void
fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fail("out of memory (%zu bytes)", n);
	return q;
}

/* The dialback key this process gives for (from, to, stream id); db:verify checks it. */
static void
make_key(char out[17], const char *from, const char *to, const char *id)
{
	uint64_t h = 1469598103934665603ull ^ secret;
	const char *parts[3] = { from, to, id };

	for (int i = 0; i < 3; i++) {
		for (const char *p = parts[i]; *p; p++) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ull;
		}
		h ^= '|';
		h *= 1099511628211ull;
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

static void
dom(char *out, size_t n, int side, int k)
{
	snprintf(out, n, "%c%d.%c.example", side ? 'b' : 'a', k, side ? 'b' : 'a');
}

/* ---------------------------------------------------------------- SHA-1 (XEP-0114 handshake) */

static uint32_t
rol32(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

static void
sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		uint32_t f, k, t;

		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		t = rol32(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol32(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

/* sha1_hex(s, n, out): lowercase hex SHA-1 of n bytes at s (FIPS 180-4). */
static void
sha1_hex(const char *s, size_t n, char out[41])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	unsigned char blk[64];
	uint64_t bits = (uint64_t)n * 8;
	size_t i = 0, r;

	for (; i + 64 <= n; i += 64)
		sha1_block(h, (const unsigned char *)s + i);
	r = n - i;
	memcpy(blk, s + i, r);
	blk[r++] = 0x80;
	if (r > 56) {
		memset(blk + r, 0, 64 - r);
		sha1_block(h, blk);
		r = 0;
	}
	memset(blk + r, 0, 56 - r);
	for (int j = 0; j < 8; j++)
		blk[56 + j] = (unsigned char)(bits >> (56 - 8 * j));
	sha1_block(h, blk);
	for (int j = 0; j < 5; j++)
		snprintf(out + 8 * j, 9, "%08" PRIx32, h[j]);
}

/* ---------------------------------------------------------------- connections */

static void
watch(struct conn *c, int idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)idx };

	if (c->outlen > c->outoff)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		fail("epoll_ctl: %s", strerror(errno));
}

static int
conn_add(int fd, int side, enum kind kind)
{
	struct conn *c;
	struct epoll_event ev = { .events = EPOLLIN };

	if (nconns >= MAX_CONNS)
		fail("too many connections");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		fail("out of memory");
	c->fd = fd;
	c->side = side;
	c->kind = kind;
	ev.data.u32 = (uint32_t)nconns;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		fail("epoll_ctl add: %s", strerror(errno));
	conns[nconns] = c;
	return nconns++;
}

static void
flush_conn(int idx)
{
	struct conn *c = conns[idx];

	while (c->outoff < c->outlen) {
		ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			fail("write on %s connection of side %c: %s", kind_name(c->kind),
			    'A' + c->side, strerror(errno));
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	watch(c, idx);
}

static void
put(int idx, const char *s, size_t n)
{
	struct conn *c = conns[idx];

	if (c->outlen + n > c->outcap) {
		if (c->outoff > 0) {
			memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
			c->outlen -= c->outoff;
			c->outoff = 0;
		}
		while (c->outlen + n > c->outcap)
			c->outcap = c->outcap ? 2 * c->outcap : 4096;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void
putf(int idx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(int idx, const char *fmt, ...)
{
	char b[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(b))
		fail("internal: line too long");
	put(idx, b, (size_t)n);
}

/* connect_side(side, what): a non-blocking TCP connection (no Nagle) to the peer of
 * side, registered as a connection of kind. Returns its index. */
static int
connect_side(int side, enum kind kind, const char *what)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		fail("socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&peer_addr[side], sizeof(peer_addr[side])) < 0 &&
	    errno != EINPROGRESS)
		fail("connect %sside %c to %s:%d: %s", what, 'A' + side,
		    inet_ntoa(peer_addr[side].sin_addr), ntohs(peer_addr[side].sin_port),
		    strerror(errno));
	return conn_add(fd, side, kind);
}

static int
dial(int side, enum kind kind, const char *from, const char *to)
{
	int idx = connect_side(side, kind, "");

	putf(idx, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
	    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
	    "from='%s' to='%s' version='1.0'>", from, to);
	flush_conn(idx);
	return idx;
}

/* dial_comp(side, k): a component stream for a<k> (side A) or b<k> (side B). */
static int
dial_comp(int side, int k)
{
	int idx = connect_side(side, K_COMP, "component ");
	char d[64];

	conns[idx]->first_pair = k;
	conns[idx]->npairs = 1;
	dom(d, sizeof(d), side, k);
	putf(idx, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", d);
	flush_conn(idx);
	return idx;
}

static const char *
kind_name(enum kind k)
{
	return k == K_OUT ? "outgoing" : k == K_IN ? "incoming" : k == K_VERIFY ? "verify" :
	    k == K_COMP ? "component" : "listen";
}

/* peer_closed(idx, why): the peer ended a connection. Quickfed closes a verification
 * connection (ours to it, or its to us) once idle or at timeouts { auth }, and a
 * link once idle: fine when nothing is waiting on it. Our own streams (and component
 * streams) must stay. */
static void
peer_closed(int idx, const char *why)
{
	struct conn *c = conns[idx];

	if (c->kind == K_COMP)
		fail("side %c: component stream of %c%d (stream id '%s') closed by the server: %s",
		    'A' + c->side, c->side ? 'b' : 'a', c->first_pair, c->id, why);
	if (c->kind == K_OUT || (c->kind == K_VERIFY && verify_out[c->side] > 0))
		fail("side %c: %s connection (stream %s) closed by the peer: %s", 'A' + c->side,
		    kind_name(c->kind), c->id, why);
	printf("NOTE side %c: %s connection (stream %s) closed by the peer: %s\n",
	    'A' + c->side, kind_name(c->kind), c->id, why);
	if (c->kind == K_VERIFY)
		verify_conn[c->side] = -1;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->closed = 1;
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
	c->inoff = c->inlen = c->incap = c->outoff = c->outlen = c->outcap = 0;
}

/* ---------------------------------------------------------------- XML (just enough) */

/* attr(tag, len, name, out, n): the value of attribute NAME in the start tag. */
static int
attr(const char *tag, size_t len, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);

	for (size_t i = 1; i + nl + 2 < len; i++) {
		if ((tag[i - 1] == ' ' || tag[i - 1] == '\t' || tag[i - 1] == '\n' ||
		    tag[i - 1] == '\r') && memcmp(tag + i, name, nl) == 0 && tag[i + nl] == '=') {
			char q = tag[i + nl + 1];
			size_t j = i + nl + 2, k = 0;

			if (q != '\'' && q != '"')
				continue;
			while (j < len && tag[j] != q) {
				if (k + 1 < n)
					out[k++] = tag[j];
				j++;
			}
			out[k] = '\0';
			return 0;
		}
	}
	if (n)
		out[0] = '\0';
	return -1;
}

/* localname(tag): the element name after '<' and any prefix, in out. */
static void
localname(const char *tag, size_t len, char *out, size_t n)
{
	size_t i = 1, s = 1, k = 0;

	while (i < len && tag[i] != ' ' && tag[i] != '>' && tag[i] != '/' && tag[i] != '\t' &&
	    tag[i] != '\n' && tag[i] != '\r') {
		if (tag[i] == ':')
			s = i + 1;
		i++;
	}
	for (size_t j = s; j < i && k + 1 < n; j++)
		out[k++] = tag[j];
	out[k] = '\0';
}

/* tag_end(buf, from, len): index just past the '>' closing the tag at from, or 0. */
static size_t
tag_end(const char *b, size_t i, size_t len)
{
	char q = 0;

	for (; i < len; i++) {
		if (q) {
			if (b[i] == q)
				q = 0;
		} else if (b[i] == '\'' || b[i] == '"') {
			q = b[i];
		} else if (b[i] == '>') {
			return i + 1;
		}
	}
	return 0;
}

static void handle_element(int idx, const char *e, size_t len);
static void got_message(const char *e, size_t len);
static void handle_header(int idx, const char *tag, size_t len);

/* parse(idx): take every complete top-level element out of the input buffer. */
static void
parse(int idx)
{
	struct conn *c = conns[idx];
	char *b = c->in;
	size_t i = c->inoff, len = c->inlen;

	while (i < len && !c->closed) {
		size_t start, e;
		int depth = 0;

		while (i < len && b[i] != '<')
			i++;
		if (i >= len)
			break;
		start = i;
		if (i + 1 < len && (b[i + 1] == '?' || b[i + 1] == '!')) {
			e = tag_end(b, i, len);
			if (!e)
				break;
			i = e;
			c->inoff = i;
			continue;
		}
		if (!c->header) {
			e = tag_end(b, i, len);
			if (!e)
				break;
			handle_header(idx, b + start, e - start);
			i = e;
			c->inoff = i;
			continue;
		}
		/* one element: count depth until it closes */
		e = 0;
		while (i < len) {
			size_t te;

			if (b[i] != '<') {
				i++;
				continue;
			}
			te = tag_end(b, i, len);
			if (!te)
				break;
			if (b[i + 1] == '/') {
				depth--;
			} else if (b[i + 1] != '?' && b[i + 1] != '!' && b[te - 2] != '/') {
				depth++;
			}
			i = te;
			if (depth <= 0) {
				e = te;
				break;
			}
		}
		if (!e)
			break;
		if (depth < 0) {	/* </stream:stream> */
			peer_closed(idx, "</stream:stream>");
			return;
		}
		handle_element(idx, b + start, e - start);
		c = conns[idx];
		if (c->closed)
			return;
		c->inoff = e;
		i = e;
	}
	c = conns[idx];
	if (c->inoff == c->inlen) {
		c->inoff = c->inlen = 0;
	} else if (c->inoff > c->incap / 2) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
}

/* ---------------------------------------------------------------- protocol */

static void
send_result(int pidx)
{
	char a[64], b[64], key[17];
	struct conn *c = conns[pairs[pidx].conn];

	dom(a, sizeof(a), 0, pidx);
	dom(b, sizeof(b), 1, pidx);
	make_key(key, a, b, c->id);
	putf(pairs[pidx].conn, "<db:result from='%s' to='%s'>%s</db:result>", a, b, key);
	pairs[pidx].st = P_RESULT;
	results_out++;
}

static uint64_t
message(int pidx, size_t size, char *buf, size_t cap)
{
	char a[64], b[64];
	uint64_t seq = seq_next++;
	int n, pad;

	dom(a, sizeof(a), 0, pidx);
	dom(b, sizeof(b), 1, pidx);
	n = snprintf(buf, cap, "<message from='u@%s' to='u@%s' type='chat' id='s%" PRIu64
	    "'><body>", a, b, seq);
	pad = (int)size - n - (int)strlen("</body></message>");
	if (pad < 1)
		pad = 1;
	if ((size_t)(n + pad) + 20 > cap)
		fail("internal: stanza too large");
	memset(buf + n, 'x', (size_t)pad);
	n += pad;
	n += snprintf(buf + n, cap - (size_t)n, "</body></message>");
	if (seq >= seq_cap) {
		size_t nc = seq_cap ? seq_cap * 2 : 1 << 16;

		while (nc <= seq)
			nc *= 2;
		sent_ns = xrealloc(sent_ns, nc * sizeof(*sent_ns));
		memset(sent_ns + seq_cap, 0, (nc - seq_cap) * sizeof(*sent_ns));
		seq_cap = nc;
	}
	return seq | ((uint64_t)n << 48);
}

/* send_stanza(pidx, size): write one message for pair pidx; its time is the write. */
static void
send_stanza(int pidx, size_t size)
{
	char buf[4096];
	uint64_t r = message(pidx, size, buf, sizeof(buf));
	uint64_t seq = r & ((1ull << 48) - 1);
	int idx = pairs[pidx].conn;

	put(idx, buf, (size_t)(r >> 48));
	sent_ns[seq] = now_ns();
	flush_conn(idx);
}

static void
verify_send(int side, const char *req, size_t n)
{
	int v = verify_conn[side];

	verify_out[side]++;
	if (v >= 0 && conns[v]->features) {
		put(v, req, n);
		flush_conn(v);
		return;
	}
	verify_queue[side] = xrealloc(verify_queue[side], vq_len[side] + n);
	memcpy(verify_queue[side] + vq_len[side], req, n);
	vq_len[side] += n;
}

/* comp_header(idx, tag, len): the server's answer to a component stream header:
 * authenticate with <handshake>hex SHA-1(id + secret)</handshake>. A header without id
 * (Prosody sends one before a stream error) gets no handshake: the error follows. */
static void
comp_header(int idx, const char *tag, size_t len)
{
	struct conn *c = conns[idx];
	char id[256], d[64], buf[512], hex[41];
	int n;

	if (len < 16 || memcmp(tag, "<stream:stream", 14) != 0)
		fail("side %c: component %c%d: not a stream header: %.*s", 'A' + c->side,
		    c->side ? 'b' : 'a', c->first_pair, (int)(len < 200 ? len : 200), tag);
	if (attr(tag, len, "id", id, sizeof(id)) < 0 || id[0] == '\0')
		return;
	if (strlen(id) >= sizeof(c->id) - 1)
		fail("side %c: component %c%d: stream id longer than %zu bytes", 'A' + c->side,
		    c->side ? 'b' : 'a', c->first_pair, sizeof(c->id) - 2);
	snprintf(c->id, sizeof(c->id), "%s", id);
	dom(d, sizeof(d), c->side, c->first_pair);
	n = snprintf(buf, sizeof(buf), "%s%s-%s", id, comp_secret, d);
	if (n < 0 || (size_t)n >= sizeof(buf))
		fail("internal: handshake input too long");
	sha1_hex(buf, (size_t)n, hex);
	putf(idx, "<handshake>%s</handshake>", hex);
	flush_conn(idx);
}

/* comp_element(idx, e, len, name, te): an element on a component stream. */
static void
comp_element(int idx, const char *e, size_t len, const char *name, size_t te)
{
	struct conn *c = conns[idx];
	char type[32];
	int k = c->first_pair;

	if (strcmp(name, "error") == 0) {	/* <stream:error>: peer_closed fails */
		char why[512];

		snprintf(why, sizeof(why), "stream error %.*s", (int)(len < 400 ? len : 400), e);
		peer_closed(idx, why);
		return;
	}
	if (strcmp(name, "handshake") == 0) {
		if (c->features)
			fail("side %c: component %c%d: unexpected handshake %.*s", 'A' + c->side,
			    c->side ? 'b' : 'a', k, (int)(len < 200 ? len : 200), e);
		c->features = 1;
		if (pairs[k].st == P_RESULT && conns[pairs[k].conn]->features &&
		    conns[pairs[k].conn_b]->features) {
			pairs[k].st = P_VALID;
			results_out--;
		}
		return;
	}
	if (!c->features)
		fail("side %c: component %c%d: %.*s before the handshake", 'A' + c->side,
		    c->side ? 'b' : 'a', k, (int)(len < 200 ? len : 200), e);
	if (strcmp(name, "message") == 0) {
		attr(e, te, "type", type, sizeof(type));
		if (c->side != 1 || strcmp(type, "error") == 0)
			fail("side %c: component %c%d got a message (a bounce?): %.*s",
			    'A' + c->side, c->side ? 'b' : 'a', k, (int)(len < 600 ? len : 600), e);
		got_message(e, te);
		return;
	}
	/* an iq or presence for the component (none is part of the plan): no answer */
}

static void
handle_header(int idx, const char *tag, size_t len)
{
	struct conn *c = conns[idx];
	char from[256], to[256];

	c->header = 1;
	if (c->kind == K_COMP) {
		comp_header(idx, tag, len);
		return;
	}
	if (c->kind != K_IN) {
		if (attr(tag, len, "id", c->id, sizeof(c->id)) < 0)
			fail("side %c: stream header without id", 'A' + c->side);
		return;
	}
	attr(tag, len, "from", from, sizeof(from));
	attr(tag, len, "to", to, sizeof(to));
	snprintf(c->id, sizeof(c->id), "syn%d-%" PRIx64, idx, now_ns());
	putf(idx, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
	    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
	    "id='%s' from='%s' to='%s' version='1.0'><stream:features>"
	    "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	    "</stream:features>", c->id, to, from);
	flush_conn(idx);
}

static void
got_message(const char *e, size_t len)
{
	char id[64];
	uint64_t seq, t = now_ns();

	if (attr(e, len, "id", id, sizeof(id)) < 0 || id[0] != 's')
		return;
	seq = strtoull(id + 1, NULL, 10);
	if (seq == 0 || seq >= seq_cap || sent_ns[seq] == 0)
		fail("side B: message with unknown id %s", id);
	if (recording) {
		if (lat_len == lat_cap) {
			lat_cap = lat_cap ? 2 * lat_cap : 1 << 16;
			lat_ns = xrealloc(lat_ns, lat_cap * sizeof(*lat_ns));
			lat_at = xrealloc(lat_at, lat_cap * sizeof(*lat_at));
		}
		lat_at[lat_len] = sent_ns[seq];
		lat_ns[lat_len++] = t - sent_ns[seq];
	}
	sent_ns[seq] = 0;
	recv_count++;
}

static void
handle_element(int idx, const char *e, size_t len)
{
	struct conn *c = conns[idx];
	char name[32], from[256], to[256], id[128], type[32], key[17];
	size_t te = tag_end(e, 0, len);

	localname(e, te, name, sizeof(name));
	if (c->kind == K_COMP) {
		comp_element(idx, e, len, name, te);
		return;
	}
	if (strcmp(name, "message") == 0) {
		if (c->side != 1 || c->kind != K_IN)
			fail("side %c: unexpected message on a %d connection", 'A' + c->side, c->kind);
		got_message(e, te);
		return;
	}
	if (strcmp(name, "features") == 0) {
		c->features = 1;
		if (c->kind == K_VERIFY && vq_len[c->side]) {
			put(idx, verify_queue[c->side], vq_len[c->side]);
			vq_len[c->side] = 0;
			flush_conn(idx);
		}
		return;
	}
	if (strcmp(name, "error") == 0) {
		char why[512];

		snprintf(why, sizeof(why), "stream error %.*s", (int)(len < 400 ? len : 400), e);
		peer_closed(idx, why);
		return;
	}
	attr(e, te, "from", from, sizeof(from));
	attr(e, te, "to", to, sizeof(to));
	attr(e, te, "type", type, sizeof(type));
	if (strcmp(name, "result") == 0 && c->kind == K_OUT) {
		int k;

		if (strcmp(type, "valid") != 0)
			fail("side A: db:result for %s -> %s: type='%s': %.*s", to, from, type,
			    (int)len, e);
		if (to[0] != 'a' || (k = atoi(to + 1)) < 1 || k > npairs_up ||
		    pairs[k].st != P_RESULT)
			fail("side A: unexpected db:result answer %.*s", (int)len, e);
		pairs[k].st = P_VALID;
		results_out--;
		return;
	}
	if (strcmp(name, "result") == 0 && c->kind == K_IN) {
		/* a key to verify at our peer: db:verify from=receiving to=originating */
		const char *ks = e + te, *ke = memchr(ks, '<', len - te);
		char req[1024];
		int n;

		if (ke == NULL)
			fail("side %c: db:result without key", 'A' + c->side);
		n = snprintf(req, sizeof(req), "<db:verify from='%s' to='%s' id='%s'>%.*s"
		    "</db:verify>", to, from, c->id, (int)(ke - ks), ks);
		if (n < 0 || (size_t)n >= sizeof(req))
			fail("side %c: db:result too long", 'A' + c->side);
		if (verify_conn[c->side] < 0)
			verify_conn[c->side] = dial(c->side, K_VERIFY, to, from);
		verify_send(c->side, req, (size_t)n);
		return;
	}
	if (strcmp(name, "verify") == 0 && c->kind == K_IN) {
		/* db:verify from=receiving to=originating id=ID: a key we made? */
		const char *ks = e + te, *ke = memchr(ks, '<', len - te);
		char got[128];
		size_t kl = ke ? (size_t)(ke - ks) : 0;

		attr(e, te, "id", id, sizeof(id));
		make_key(key, to, from, id);
		snprintf(got, sizeof(got), "%.*s", (int)(kl < 100 ? kl : 100), ks);
		putf(idx, "<db:verify from='%s' to='%s' id='%s' type='%s'/>", to, from, id,
		    strcmp(got, key) == 0 ? "valid" : "invalid");
		flush_conn(idx);
		return;
	}
	if (strcmp(name, "verify") == 0 && c->kind == K_VERIFY) {
		/* the answer: find the incoming stream with that id, answer its db:result */
		int in = -1;

		attr(e, te, "id", id, sizeof(id));
		verify_out[c->side]--;
		if (strcmp(type, "valid") != 0)
			fail("side %c: db:verify %s -> %s id %s: type='%s'", 'A' + c->side, from,
			    to, id, type);
		if (sscanf(id, "syn%d-", &in) != 1 || in < 0 || in >= nconns ||
		    conns[in]->kind != K_IN || strcmp(conns[in]->id, id) != 0)
			fail("side %c: db:verify answer for unknown stream %s", 'A' + c->side, id);
		putf(in, "<db:result from='%s' to='%s' type='valid'/>", to, from);
		flush_conn(in);
		return;
	}
	/* iq pings, acks and the like are not part of the plan */
}

/* ---------------------------------------------------------------- events */

static void
on_read(int idx)
{
	struct conn *c = conns[idx];

	for (;;) {
		ssize_t n;

		if (c->incap - c->inlen < 65536) {
			c->incap = c->incap ? c->incap * 2 : 131072;
			c->in = xrealloc(c->in, c->incap);
		}
		n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			peer_closed(idx, n < 0 ? strerror(errno) : "EOF");
			return;
		}
		c->inlen += (size_t)n;
		if ((size_t)n < 65536)
			break;
		if (c->kind == K_COMP && c->inlen - c->inoff >= MAX_PENDING)
			break;	/* parse what we have first; epoll reports the rest */
	}
	parse(idx);
	c = conns[idx];
	if (c->kind == K_COMP && !c->closed && c->inlen - c->inoff >= MAX_PENDING)
		fail("side %c: component %c%d: %zu bytes from the server without a complete "
		    "element (limit %d)", 'A' + c->side, c->side ? 'b' : 'a', c->first_pair,
		    c->inlen - c->inoff, MAX_PENDING);
}

static void
on_accept(int idx)
{
	for (;;) {
		int fd = accept4(conns[idx]->fd, NULL, NULL, SOCK_NONBLOCK), one = 1;

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			fail("accept: %s", strerror(errno));
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_add(fd, conns[idx]->side, K_IN);
	}
}

/* poll_once(ms): one epoll round. */
static void
poll_once(int ms)
{
	struct epoll_event ev[256];
	int n = epoll_wait(epfd, ev, 256, ms);

	if (n < 0 && errno != EINTR)
		fail("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		int idx = (int)ev[i].data.u32;
		struct conn *c = conns[idx];

		if (c->closed)
			continue;
		if (c->kind == K_LISTEN) {
			on_accept(idx);
			continue;
		}
		if (ev[i].events & EPOLLOUT)
			flush_conn(idx);
		if (!c->closed && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			on_read(idx);
	}
}

/* ---------------------------------------------------------------- measuring */

static uint64_t
cpu_ns(int pid)
{
	char path[64], line[256];
	DIR *d;
	struct dirent *de;
	uint64_t t = 0;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if ((d = opendir(path)) == NULL)
		fail("%s pid %d: %s", comp_mode ? "server" : "quickfed", pid, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		char p2[400];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/schedstat", path, de->d_name);
		if ((f = fopen(p2, "r")) == NULL)
			continue;
		if (fgets(line, sizeof(line), f))
			t += strtoull(line, NULL, 10);
		fclose(f);
	}
	closedir(d);
	return t;
}

static long
rss_kib(int pid)
{
	char path[64], line[256];
	FILE *f;
	long v = -1;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		fail("%s pid %d gone", comp_mode ? "server" : "quickfed", pid);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* drain(deadline): wait until every stanza sent has arrived. */
static void
drain(uint64_t sent, const char *what)
{
	uint64_t deadline = now_ns() + (uint64_t)(opt_timeout * 1e9);

	while (recv_count < sent) {
		if (now_ns() > deadline)
			fail("%s: %" PRIu64 " of %" PRIu64 " stanzas arrived within %.0f s", what,
			    recv_count - recv_phase_first, sent - recv_phase_first, opt_timeout);
		poll_once(10);
	}
}

/* in_setup(): db:results unanswered plus probes not yet arrived (the set-up window). */
static long
in_setup(void)
{
	return results_out + (long)(probes_sent - (recv_count - recv_phase_first));
}

/* open_stream(k, n): a stream for pairs k .. k+PAIRS_PER_STREAM-1 (at most n), named for k. */
static void
open_stream(int k, int n)
{
	char a[64], b[64];
	int idx;

	dom(a, sizeof(a), 0, k);
	dom(b, sizeof(b), 1, k);
	idx = dial(0, K_OUT, a, b);
	conns[idx]->first_pair = k;
	conns[idx]->npairs = n - k + 1 < PAIRS_PER_STREAM ? n - k + 1 : PAIRS_PER_STREAM;
	for (int j = 0; j < conns[idx]->npairs; j++)
		pairs[k + j].conn = idx;
}

/* setup_begin(n): room for pairs up to n, the new ones P_NEW without connections, the
 * set-up counters reset. Returns the first new pair. */
static int
setup_begin(int n)
{
	int first = npairs_up + 1;

	pairs = xrealloc(pairs, (size_t)(n + 1) * sizeof(*pairs));
	for (int k = first; k <= n; k++) {
		pairs[k].st = P_NEW;
		pairs[k].conn = pairs[k].conn_b = -1;
	}
	npairs_up = n;
	recv_phase_first = recv_count;
	probes_sent = 0;
	results_out = 0;
	return first;
}

/* setup_end(first, n, t0): pairs first..n are up; the UP line. */
static void
setup_end(int first, int n, uint64_t t0)
{
	for (int k = first; k <= n; k++)
		pairs[k].st = P_UP;
	printf("UP %d %.3f\n", n, (double)(now_ns() - t0) / 1e9);
	fflush(stdout);
}

/* setup(n): pairs up to n, each with one probe stanza that arrived. */
static void
setup(int n)
{
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(opt_timeout * 1e9);
	int want = n - npairs_up, opened = npairs_up, waiting;
	int first = setup_begin(n);

	while (recv_count - recv_phase_first < (uint64_t)want) {
		if (now_ns() > deadline)
			fail("setup of pairs %d..%d: %" PRIu64 " up within %.0f s (%ld db:results "
			    "unanswered, %" PRIu64 " probes sent)", first, n,
			    recv_count - recv_phase_first, opt_timeout, results_out, probes_sent);
		waiting = 0;	/* pairs of opened streams without a db:result yet */
		for (int k = first; k <= n; k++) {
			/* a stream is opened only when its first pair may start: quickfed
			 * closes a stream that authenticates nothing within timeouts { auth } */
			if (pairs[k].st == P_NEW && pairs[k].conn < 0 && k > opened &&
			    waiting == 0 && in_setup() < opt_setup_window) {
				open_stream(k, n);
				opened = k + conns[pairs[k].conn]->npairs - 1;
			}
			if (pairs[k].st == P_NEW && pairs[k].conn >= 0)
				waiting++;
			if (pairs[k].st == P_NEW && pairs[k].conn >= 0 &&
			    conns[pairs[k].conn]->features && in_setup() < opt_setup_window) {
				send_result(k);
				flush_conn(pairs[k].conn);
			} else if (pairs[k].st == P_VALID) {
				pairs[k].st = P_PROBE;
				probes_sent++;
				send_stanza(k, 200);
			}
		}
		poll_once(5);
	}
	setup_end(first, n, t0);
}

/* setup_comp(n) (--component): pairs up to n: both components of a pair accepted by
 * their servers, then one probe from a<k> that arrived at b<k>. */
static void
setup_comp(int n)
{
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(opt_timeout * 1e9);
	int want = n - npairs_up;
	int first = setup_begin(n);	/* results_out here: pairs whose components
					 * are authenticating */
	while (recv_count - recv_phase_first < (uint64_t)want) {
		if (now_ns() > deadline)
			fail("setup of pairs %d..%d: %" PRIu64 " up within %.0f s (%ld pairs with "
			    "components authenticating, %" PRIu64 " probes sent)", first, n,
			    recv_count - recv_phase_first, opt_timeout, results_out, probes_sent);
		for (int k = first; k <= n; k++) {
			if (pairs[k].st == P_NEW && in_setup() < opt_setup_window) {
				pairs[k].conn_b = dial_comp(1, k);
				pairs[k].conn = dial_comp(0, k);
				pairs[k].st = P_RESULT;
				results_out++;
			} else if (pairs[k].st == P_VALID) {
				pairs[k].st = P_PROBE;
				probes_sent++;
				send_stanza(k, 200);
			}
		}
		poll_once(5);
	}
	setup_end(first, n, t0);
}

/* load(n, size): full speed with at most opt_window in flight. Returns msg/s. */
static double
load(int n, size_t size)
{
	uint64_t a0, b0, a1, b1, t0, t1, end, sent, first;
	int next = 1;

	recv_phase_first = recv_count;
	first = recv_count;
	sent = recv_count;
	a0 = cpu_ns(pid_qf[0]);
	b0 = cpu_ns(pid_qf[1]);
	t0 = now_ns();
	end = t0 + (uint64_t)(opt_seconds * 1e9);
	while (now_ns() < end) {
		while (sent - recv_count < (uint64_t)opt_window) {
			send_stanza(next, size);
			sent++;
			next = next % n + 1;
		}
		poll_once(10);
	}
	drain(sent, "load");
	t1 = now_ns();
	a1 = cpu_ns(pid_qf[0]);
	b1 = cpu_ns(pid_qf[1]);
	{
		uint64_t cnt = sent - first;
		double secs = (double)(t1 - t0) / 1e9, rate = (double)cnt / secs;

		printf("CPU %d %zu %" PRIu64 " %.3f %.2f %.2f %.0f\n", n, size, cnt, secs,
		    pid_qf[0] > 0 ? (double)(a1 - a0) / (double)cnt / 1e3 : -1.0,
		    pid_qf[1] > 0 ? (double)(b1 - b0) / (double)cnt / 1e3 : -1.0, rate);
		fflush(stdout);
		return rate;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* lat_dump(n, label, t0): with SYNTHSRV_LAT_DUMP=FILE in the environment, append every
 * sample of this latency run to FILE, one line each: LABEL N SEND_US LATENCY_US (send time
 * from the run's start, in the order of receipt), to see when the slow ones happen. */
static void
lat_dump(int n, const char *label, uint64_t t0)
{
	const char *path = getenv("SYNTHSRV_LAT_DUMP");
	FILE *f;

	if (path == NULL || *path == '\0')
		return;
	if ((f = fopen(path, "a")) == NULL)
		fail("SYNTHSRV_LAT_DUMP %s: %s", path, strerror(errno));
	for (size_t i = 0; i < lat_len; i++)
		fprintf(f, "%s %d %.1f %.1f\n", label, n, (double)(lat_at[i] - t0) / 1e3,
		    (double)lat_ns[i] / 1e3);
	if (fclose(f) != 0)
		fail("SYNTHSRV_LAT_DUMP %s: %s", path, strerror(errno));
}

/* hook(what, label, n): with --phase-hook CMD, run "CMD WHAT LABEL N" (WHAT: begin or end
 * of a latency run, nothing in flight); FAIL if it fails. */
static void
hook(const char *what, const char *label, int n)
{
	char cmd[1024];
	int rc;

	if (phase_hook == NULL)
		return;
	if (snprintf(cmd, sizeof(cmd), "%s %s %s %d", phase_hook, what, label, n) >=
	    (int)sizeof(cmd))
		fail("--phase-hook too long");
	fflush(stdout);
	if ((rc = system(cmd)) != 0)
		fail("--phase-hook '%s' failed (status %d)", cmd, rc);
}

/* latency(n, rate, label): 200-byte stanzas paced at rate/s, send to receipt; one line
 * LABEL N RATE COUNT P50 P99. */
static void
latency(int n, double rate, const char *label)
{
	uint64_t t0, end, sent, first, due;
	int next = 1;

	if (rate < 1)
		rate = 1;
	recv_phase_first = recv_count;
	first = sent = recv_count;
	lat_len = 0;
	hook("begin", label, n);
	recording = 1;
	t0 = now_ns();
	end = t0 + (uint64_t)(opt_seconds * 1e9);
	for (;;) {
		uint64_t now = now_ns();

		if (now >= end)
			break;
		due = (uint64_t)((double)(now - t0) / 1e9 * rate);
		while (sent - first < due) {
			send_stanza(next, 200);
			sent++;
			next = next % n + 1;
		}
		poll_once(1);
	}
	drain(sent, "latency");
	recording = 0;
	hook("end", label, n);
	lat_dump(n, label, t0);
	qsort(lat_ns, lat_len, sizeof(*lat_ns), cmp_u64);
	if (lat_len == 0)
		fail("latency: no samples");
	printf("%s %d %.0f %zu %.1f %.1f\n", label, n, rate, lat_len,
	    (double)lat_ns[lat_len / 2] / 1e3, (double)lat_ns[(lat_len * 99) / 100] / 1e3);
	fflush(stdout);
}

/* ---------------------------------------------------------------- main */

static void
parse_addr(const char *s, struct sockaddr_in *sa)
{
	if (parse_inaddr(s, sa) == -1)
		fail("bad address '%s' (want IPv4:PORT)", s);
}

static void
listen_on(int side)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		fail("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&listen_addr[side], sizeof(listen_addr[side])) < 0 ||
	    listen(fd, 1024) < 0)
		fail("listen side %c on %s:%d: %s", 'A' + side,
		    inet_ntoa(listen_addr[side].sin_addr), ntohs(listen_addr[side].sin_port),
		    strerror(errno));
	conn_add(fd, side, K_LISTEN);
}

static void
usage(void)
{
	fprintf(stderr, "usage: synthsrv --a-listen IP:PORT --a-peer IP:PORT --b-listen IP:PORT "
	    "--b-peer IP:PORT --stages \"1 100 ...\" [--sizes \"200 2048\"] [--pid-a PID] "
	    "[--pid-b PID] [--seconds S] [--window N] [--setup-window N] [--timeout S] "
	    "[--lat-rate N:RATE ...] [--lat-if-sustained N:RATE ...] [--no-cpu] [--ready FILE]\n"
	    "  [--phase-hook CMD]\n"
	    "       synthsrv --component --secret S --a-peer IP:PORT --b-peer IP:PORT --stages ... "
	    "[the same options]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int stages[MAX_STAGES], nstages = 0, no_cpu = 0;
	size_t sizes[4] = { 200, 2048 };
	int nsizes = 2;
	int lat_n[MAX_STAGES], lats_n[MAX_STAGES];
	double lat_r[MAX_STAGES], lats_r[MAX_STAGES];
	int nlat = 0, nlats = 0;
	const char *ready = NULL;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	secret = now_ns() ^ ((uint64_t)getpid() << 32);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--no-cpu") == 0) {
			no_cpu = 1;
			continue;
		}
		if (strcmp(o, "--component") == 0) {
			comp_mode = 1;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(o, "--a-listen") == 0) {
			parse_addr(v, &listen_addr[0]);
		} else if (strcmp(o, "--a-peer") == 0) {
			parse_addr(v, &peer_addr[0]);
		} else if (strcmp(o, "--b-listen") == 0) {
			parse_addr(v, &listen_addr[1]);
		} else if (strcmp(o, "--b-peer") == 0) {
			parse_addr(v, &peer_addr[1]);
		} else if (strcmp(o, "--stages") == 0) {
			char *s = strdup(v), *tok, *sp = NULL;

			for (tok = strtok_r(s, " ", &sp); tok; tok = strtok_r(NULL, " ", &sp)) {
				if (nstages == MAX_STAGES || atoi(tok) < 1 ||
				    (nstages && atoi(tok) <= stages[nstages - 1]))
					fail("bad --stages '%s' (increasing pair counts)", v);
				stages[nstages++] = atoi(tok);
			}
			free(s);
		} else if (strcmp(o, "--sizes") == 0) {
			char *s = strdup(v), *tok, *sp = NULL;

			nsizes = 0;
			for (tok = strtok_r(s, " ", &sp); tok && nsizes < 4; tok = strtok_r(NULL, " ", &sp)) {
				sizes[nsizes] = (size_t)atol(tok);
				if (sizes[nsizes] < 100 || sizes[nsizes] > 4000)
					fail("bad --sizes '%s' (100..4000 bytes)", v);
				nsizes++;
			}
			free(s);
		} else if (strcmp(o, "--pid-a") == 0) {
			pid_qf[0] = atoi(v);
		} else if (strcmp(o, "--pid-b") == 0) {
			pid_qf[1] = atoi(v);
		} else if (strcmp(o, "--seconds") == 0) {
			opt_seconds = atof(v);
		} else if (strcmp(o, "--window") == 0) {
			opt_window = atol(v);
		} else if (strcmp(o, "--setup-window") == 0) {
			opt_setup_window = atol(v);
		} else if (strcmp(o, "--timeout") == 0) {
			opt_timeout = atof(v);
		} else if (strcmp(o, "--lat-rate") == 0) {
			if (nlat == MAX_STAGES || sscanf(v, "%d:%lf", &lat_n[nlat], &lat_r[nlat]) != 2)
				fail("bad --lat-rate '%s' (N:RATE)", v);
			nlat++;
		} else if (strcmp(o, "--lat-if-sustained") == 0) {
			if (nlats == MAX_STAGES ||
			    sscanf(v, "%d:%lf", &lats_n[nlats], &lats_r[nlats]) != 2)
				fail("bad --lat-if-sustained '%s' (N:RATE)", v);
			nlats++;
		} else if (strcmp(o, "--secret") == 0) {
			comp_secret = v;
		} else if (strcmp(o, "--ready") == 0) {
			ready = v;
		} else if (strcmp(o, "--phase-hook") == 0) {
			phase_hook = v;
		} else {
			usage();
		}
	}
	if (nstages == 0 || (!comp_mode && (listen_addr[0].sin_port == 0 ||
	    listen_addr[1].sin_port == 0)) || (comp_mode && comp_secret[0] == '\0') ||
	    peer_addr[0].sin_port == 0 || peer_addr[1].sin_port == 0 || opt_window < 1 ||
	    opt_setup_window < 1 || opt_seconds <= 0 || opt_timeout <= 0)
		usage();
	if ((epfd = epoll_create1(0)) < 0)
		fail("epoll_create1: %s", strerror(errno));
	if (!comp_mode) {
		listen_on(0);
		listen_on(1);
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f == NULL)
			fail("cannot write %s", ready);
		fclose(f);
	}
	for (int s = 0; s < nstages; s++) {
		int n = stages[s];
		double rate = -1, full200 = -1;

		if (comp_mode)
			setup_comp(n);
		else
			setup(n);
		/* idle: let the set-up's buffers go quiet before reading RSS */
		{
			uint64_t until = now_ns() + 2000000000ull;

			while (now_ns() < until)
				poll_once(50);
		}
		if (pid_qf[0] > 0 || pid_qf[1] > 0) {
			printf("RSS %d %ld %ld\n", n, rss_kib(pid_qf[0]), rss_kib(pid_qf[1]));
			fflush(stdout);
		}
		if (!no_cpu) {
			for (int z = 0; z < nsizes; z++) {
				double r = load(n, sizes[z]);

				if (sizes[z] == 200) {
					rate = r / 2;
					full200 = r;
				}
			}
		}
		for (int l = 0; l < nlat; l++)
			if (lat_n[l] == n)
				rate = lat_r[l];
		if (rate > 0)
			latency(n, rate, "LAT");
		/* another rate (quickfed's): only below what this stage carried at full speed */
		for (int l = 0; l < nlats; l++) {
			if (lats_n[l] != n)
				continue;
			if (full200 < 0 || lats_r[l] <= full200) {
				latency(n, lats_r[l], "LATS");
			} else {
				printf("LATS_SKIP %d %.0f %.0f\n", n, lats_r[l], full200);
				fflush(stdout);
			}
		}
	}
	printf("DONE\n");
	return 0;
}
