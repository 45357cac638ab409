/* s2s/conn.c - one TCP connection: socket, libev watchers, buffers, TLS pump, timers.
 * SPDX-License-Identifier: ISC
 * Created by link.c, its only owner (struct conn_ops). Reads go raw socket -> rawin ->
 * (TLS ->) in -> ops->input; writes go conn_out() -> out -> (TLS ->) rawout -> socket,
 * and everything a callback produced leaves in one write (one flight). What owners
 * queue from outside our callbacks (conn_flush: stanzas relayed from another
 * connection) is written once per event-loop turn, just before the loop waits again
 * (an ev_prepare shared by all connections): many stanzas per TLS record and per
 * send(), not one each. Bytes that
 * arrive behind the element that started TLS stay in rawin and are the TLS engine's
 * first input. Knows nothing of XMPP: what the deadlines and names mean is the owner's. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/log.h"
#include "../core/stats.h"
#include "../dns/resolver.h"
#include "../tls/tls.h"
#include "admit.h"
#include "conn.h"
#include "tcpack.h"
#include "flight.h"

#define CONN_MAGIC     0x636f6e6eu  /* "conn" */
#define RAW_MAX        (1u << 20)   /* bytes to write, TLS records included */
#define IN_MAX         (64u << 10)  /* bytes read but not yet parsed, each of rawin/in */
#define OUT_LOWAT      (64u << 10)  /* plaintext moves to rawout below this */
#define SEND_HIWAT     (128u << 10) /* conn_output_full above this much pending */
#define READ_CHUNK     16384

/* The public struct plus the watchers, which only this file touches. */
struct conn_impl {
	struct conn pub;
	ev_io       rio, wio;
	ev_timer    timer;
	ev_timer    wake;          /* conn_wake(): process buffered input from the loop */
	ev_timer    drained;       /* output drained after conn_want_drained: tell the
	                            * owner from the loop (never from under a send) */
	double      tls_started;   /* when the TLS handshake began (for its timeout) */
	double      last_read;     /* when bytes last arrived (ops->quiet) */
	bool        unconfirmed;   /* TCP Fast Open: "connected" before the SYN was answered;
	                            * the Happy Eyeballs race is decided on the first read */
	/* DANE (initiators): the target's TLSA as the resolver handed it over */
	enum resolve_tlsa_status tlsa_status;
	size_t      n_tlsa;
	struct resolve_tlsa *tlsa;  /* owned, n_tlsa records (NULL when none) */
	char       *names;         /* owned: initiators' "local\0remote\0" until
	                            * conn_set_names */
	/* What the peer's TCP acknowledged, in plaintext offsets (conn_out_acked): each
	 * move of plaintext onto the wire records where it ends in both counts; the oldest
	 * checkpoints go once the wire count is acknowledged. When full, the newest is
	 * moved forward (a later proof, never a false one). */
	uint64_t    plain_moved;   /* plaintext bytes moved from out onto the wire */
	uint64_t    wire_sent;     /* bytes send() took */
	uint64_t    plain_acked;   /* plaintext bytes known acknowledged */
	struct { uint64_t plain, wire; } ck[16];
	unsigned    ck_head, ck_n;
	bool        flush_pending; /* in the list of connections to write this loop turn */
	struct conn_impl *fprev, *fnext; /* links in that list */
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct tls_ctx *tls_creds;
static struct conn *all;
static unsigned long next_id = 1, nconns;
static ev_prepare flush_watcher;        /* writes the pending list before the loop waits */
static ev_timer quiet_timer;            /* finds connections quiet for CONN_QUIET_S */
static struct conn_impl *flush_head, *flush_tail; /* conn_flush'ed, in call order */

static void read_cb(EV_P_ ev_io *, int);
static void write_cb(EV_P_ ev_io *, int);
static void timer_cb(EV_P_ ev_timer *, int);
static void wake_cb(EV_P_ ev_timer *, int);
static void drained_cb(EV_P_ ev_timer *, int);
static void flush_cb(EV_P_ ev_prepare *, int);
static void quiet_cb(EV_P_ ev_timer *, int);
static void flush_later(struct conn *);
static void flush_cancel(struct conn *);
static void flush_now(struct conn *);
static void quickack(struct conn *);
static int start_tls(struct conn *);
static void set_tls_names(struct conn *, const char *, const char *);
static void clear_tls_names(struct conn *);
static int pass_tlsa(struct conn *);
static struct conn *conn_new(int, bool, bool, const struct conn_ops *, struct link *);
static void process_input(struct conn *);
static void pump_output(struct conn *);
static void log_flight(struct conn *);
static void finish(struct conn *);
static char *note(struct conn *, int);
static void release_idle_buffers(struct conn *);
static void waitq_del(struct conn *);
static void destroy(struct conn *);
static void arm_timer(struct conn *);
static double open_deadline(const struct conn *, const char **);

static struct conn_impl *
impl(struct conn *c)
{
	return (struct conn_impl *)c;
}

static const char *
side_name(const struct conn *c)
{
	return c->internet ? "s2s" : "local";
}

void
conn_init(struct ev_loop *l, const struct config *c, struct tls_ctx *t)
{
	loop = l;
	cfg = c;
	tls_creds = t;
	ev_prepare_init(&flush_watcher, flush_cb);
	if (!ev_is_active(&quiet_timer)) {
		ev_timer_init(&quiet_timer, quiet_cb, CONN_QUIET_S / 2, CONN_QUIET_S / 2);
		ev_timer_start(loop, &quiet_timer);
		ev_unref(loop);         /* it does not keep the loop alive */
	}
}

/* Tell the owners of connections that read nothing for CONN_QUIET_S and hold no input
 * (an idle link gives its parser back; the sweep costs a few ns per connection).
 * conns.quieted counts them: what they freed goes back to the system with the next
 * heap trim (core/main.c). */
static void
quiet_cb(EV_P_ ev_timer *w, int revents)
{
	double now = ev_now(EV_A);
	struct conn *c, *next;

	(void)w;
	(void)revents;
	for (c = all; c != NULL; c = next) {
		next = c->next;
		if (c->state != CONN_OPEN || c->quiet || c->ops->quiet == NULL ||
		    c->rawin.len > 0 || c->in.len > 0 || now - impl(c)->last_read < CONN_QUIET_S)
			continue;
		c->quiet = true;
		c->ops->quiet(c->owner);
		qf_stats.conns_quieted++;
	}
}

void
conn_set_config(const struct config *c)
{
	cfg = c;
}

static void
format_addr(const struct sockaddr *sa, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
		snprintf(out, n, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
		snprintf(out, n, "[%s]:%u", ip, port);
	} else {
		snprintf(out, n, "?");
	}
}

static struct conn *
conn_new(int fd, bool initiator, bool internet, const struct conn_ops *ops, struct link *owner)
{
	struct conn_impl *ci;
	struct conn *c;
	int one = 1;

	if ((ci = calloc(1, sizeof(*ci))) == NULL) {
		log_warnx("conn: out of memory");
		return NULL;
	}
	c = &ci->pub;
	c->magic = CONN_MAGIC;
	c->id = next_id++;
	c->fd = fd;
	c->initiator = initiator;
	c->internet = internet;
	c->local = c->remote = "";
	c->ops = ops;
	c->owner = owner;
	buf_init(&c->rawin, IN_MAX);
	buf_init(&c->rawout, RAW_MAX + cfg->max_stanza_size * 2);
	buf_init(&c->in, IN_MAX);
	buf_init(&c->out, RAW_MAX + cfg->max_stanza_size);
	c->created = c->last_active = c->opened = ci->last_read = ev_now(loop);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev_io_init(&ci->rio, read_cb, fd, EV_READ);
	ev_io_init(&ci->wio, write_cb, fd, EV_WRITE);
	ev_init(&ci->timer, timer_cb);
	ev_timer_init(&ci->wake, wake_cb, 0., 0.);
	ev_timer_init(&ci->drained, drained_cb, 0., 0.);
	ci->rio.data = ci->wio.data = ci->timer.data = ci->wake.data = ci->drained.data = c;
	c->next = all;
	if (all)
		all->prev = c;
	all = c;
	nconns++;
	qf_stats.conns_open++;
	return c;
}

struct conn *
conn_accept(int fd, bool internet, bool direct_tls, const struct sockaddr *sa,
    socklen_t salen, const struct conn_ops *ops, struct link *owner)
{
	struct conn *c;

	(void)salen;
	if ((c = conn_new(fd, false, internet, ops, owner)) == NULL) {
		close(fd);
		return NULL;
	}
	format_addr(sa, c->addr, sizeof(c->addr));
	c->state = CONN_OPEN;
	qf_stats.conns_in++;
	if (direct_tls) {
		c->want_tls = true;   /* the first bytes are a ClientHello */
		c->tls_alpn = true;
	}
	log_info("conn=%lu %s-in accepted from %s%s", c->id, side_name(c), c->addr,
	    direct_tls ? " direct-tls" : "");
	ev_io_start(loop, &impl(c)->rio);
	arm_timer(c);
	return c;
}

struct conn *
conn_connect(const struct sockaddr *sa, socklen_t salen, bool internet, bool tfo,
    const char *local, const char *remote, const struct conn_ops *ops, struct link *owner)
{
	struct conn *c;
	int fd, rc;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("conn: socket for %s", remote);
		return NULL;
	}
	if ((c = conn_new(fd, true, internet, ops, owner)) == NULL) {
		close(fd);
		return NULL;
	}
	{
		size_t ll = strlen(local) + 1, rl = strlen(remote) + 1;

		if ((impl(c)->names = malloc(ll + rl)) != NULL) {
			memcpy(impl(c)->names, local, ll);
			memcpy(impl(c)->names + ll, remote, rl);
			c->local = impl(c)->names;
			c->remote = impl(c)->names + ll;
		}
	}
	format_addr(sa, c->addr, sizeof(c->addr));
	qf_stats.conns_out++;
	if (tfo) {
		int one = 1;

		/* a repeat peer: the first flight may ride in the SYN (RFC 7413) */
		c->tfo = setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) == 0;
	}
	rc = connect(fd, sa, salen);
	if (rc == -1 && errno != EINPROGRESS) {
		log_warn("conn=%lu %s-out local=%s remote=%s connect to %s", c->id,
		    side_name(c), local, remote, c->addr);
		c->close_reason = "connect-failed";
		c->state = CONN_DEAD;
		/* Report asynchronously so callers never see their route change under them. */
		ev_feed_event(loop, &impl(c)->timer, EV_TIMER);
		return c;
	}
	log_debug("conn=%lu %s-out local=%s remote=%s connecting to %s", c->id,
	    side_name(c), local, remote, c->addr);
	c->state = CONN_CONNECTING;
	ev_io_start(loop, &impl(c)->wio);
	arm_timer(c);
	return c;
}

void
conn_set_names(struct conn *c, const char *local, const char *remote)
{
	c->local = local;
	c->remote = remote;
}

void
conn_set_target(struct conn *c, const char *host, unsigned port)
{
	free(c->target);
	c->target = strdup(host ? host : "");
	c->target_port = port;
}

void
conn_set_tlsa(struct conn *c, const struct resolve_target *t)
{
	struct conn_impl *ci = impl(c);

	ci->tlsa_status = t->tlsa_status;
	ci->n_tlsa = t->n_tlsa < RESOLVE_TLSA_MAX ? t->n_tlsa : RESOLVE_TLSA_MAX;
	free(ci->tlsa);
	ci->tlsa = NULL;
	if (ci->n_tlsa > 0 && (ci->tlsa = calloc(ci->n_tlsa, sizeof(ci->tlsa[0]))) == NULL)
		ci->n_tlsa = 0;   /* out of memory: no records (a secure status fails closed) */
	if (ci->n_tlsa > 0)
		memcpy(ci->tlsa, t->tlsa, ci->n_tlsa * sizeof(ci->tlsa[0]));
}

void
conn_set_deadline(struct conn *c, enum conn_deadline d)
{
	c->deadline = d;
}

/* Hand the target's TLSA (conn_set_tlsa) to a new client TLS session. */
static int
pass_tlsa(struct conn *c)
{
	struct conn_impl *ci = impl(c);
	struct tlsa_rr rrs[RESOLVE_TLSA_MAX];
	enum tls_tlsa_status st;

	switch (ci->tlsa_status) {
	case RESOLVE_TLSA_SECURE:
		st = TLS_TLSA_SECURE;
		break;
	case RESOLVE_TLSA_BOGUS:
		st = TLS_TLSA_BOGUS;
		break;
	default:
		return 0;  /* none or insecure: PKIX as before */
	}
	for (size_t i = 0; i < ci->n_tlsa; i++) {
		rrs[i].usage = ci->tlsa[i].usage;
		rrs[i].selector = ci->tlsa[i].selector;
		rrs[i].mtype = ci->tlsa[i].mtype;
		rrs[i].data = ci->tlsa[i].data;
		rrs[i].len = ci->tlsa[i].len;
	}
	log_debug("conn=%lu remote=%s target=%s:%u tlsa=%s records=%zu", c->id,
	    c->remote, c->target ? c->target : "", c->target_port,
	    resolve_tlsa_status_str(ci->tlsa_status), ci->n_tlsa);
	return tls_session_set_tlsa(c->tls, rrs, ci->n_tlsa, st);
}

/* One deadline at a time: connect, then the open connection's, then closing. An open
 * connection's deadline moves later with every byte (idle): a timer already due no
 * later than the deadline is left as it is (timer_cb finds the deadline not reached
 * and finish() arms it again), so the per-event cost is a comparison, not two
 * operations on libev's timer heap. */
static void
arm_timer(struct conn *c)
{
	struct conn_impl *ci = impl(c);
	double at;

	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_CONNECTING)
		at = c->created + cfg->connect_timeout_ms / 1000.0;
	else if (c->state == CONN_CLOSING)
		at = ev_now(loop) + cfg->shutdown_timeout_ms / 1000.0;
	else {
		at = open_deadline(c, NULL);
		if (ev_is_active(&ci->timer) &&
		    ev_now(loop) + ev_timer_remaining(loop, &ci->timer) <= at)
			return;
	}
	ev_timer_stop(loop, &ci->timer);
	ev_timer_set(&ci->timer, at - ev_now(loop) > 0 ? at - ev_now(loop) : 0.001, 0.);
	ev_timer_start(loop, &ci->timer);
}

/* The deadline of an open connection: the TLS handshake, then the owner's choice
 * (authentication from the start of the connection, or idleness). *what names the one
 * that applies. */
static double
open_deadline(const struct conn *c, const char **what)
{
	double at, tls_at;
	const char *w;

	if (c->deadline == CONN_DEADLINE_IDLE) {
		at = c->last_active + cfg->idle_timeout_ms / 1000.0;
		w = "idle-timeout";
	} else {
		/* timeouts { auth } from the moment TCP is up, as documented */
		at = c->opened + cfg->auth_timeout_ms / 1000.0;
		w = "auth-timeout";
		if (c->tls != NULL && c->tls_input && !tls_session_established(c->tls)) {
			tls_at = ((const struct conn_impl *)c)->tls_started + cfg->tls_timeout_ms / 1000.0;
			if (tls_at < at) {
				at = tls_at;
				w = "tls-timeout";
			}
		}
	}
	if (what != NULL)
		*what = w;
	return at;
}

static void
timer_cb(EV_P_ ev_timer *w, int revents)
{
	struct conn *c = w->data;

	if (c->magic != CONN_MAGIC)
		fatalx("conn: bad magic in timer");
	(void)revents;
	c->in_callback++;
	if (c->state == CONN_DEAD) {
		/* deferred report of an immediate connect failure */
	} else if (c->state == CONN_CONNECTING) {
		c->timed_out = true;
		log_warnx("conn=%lu s2s-out remote=%s connect to %s timed out", c->id,
		    c->remote, c->addr);
		c->close_reason = "connect-timeout";
		c->state = CONN_DEAD;
	} else if (c->state == CONN_CLOSING) {
		c->state = CONN_DEAD;  /* peer did not take our last bytes in time */
	} else {
		const char *what;
		double deadline = open_deadline(c, &what);

		if (ev_now(EV_A) + 0.0005 >= deadline) {
			if (strcmp(what, "tls-timeout") == 0) {
				c->timed_out = true;
				log_warnx("conn=%lu %s remote=%s TLS handshake timed out", c->id,
				    c->addr, c->remote);
				c->close_reason = "tls-timeout";
				c->state = CONN_DEAD;   /* no stream error inside a half-done TLS */
			} else {
				if (strcmp(what, "auth-timeout") == 0)
					c->timed_out = true;
				c->ops->expired(c->owner, what);
			}
			pump_output(c);
		}
	}
	c->in_callback--;
	finish(c);
}

/* ---- TLS ---- */

/* The names the TLS session will start with, kept (on the heap: most connections never
 * start TLS, and none needs them after) until start_tls. */
static void
set_tls_names(struct conn *c, const char *local, const char *remote)
{
	clear_tls_names(c);
	c->tls_local = strdup(local);
	c->tls_remote = strdup(remote);
	c->tls_names_lost = c->tls_local == NULL || c->tls_remote == NULL;
}

static void
clear_tls_names(struct conn *c)
{
	free(c->tls_local);
	free(c->tls_remote);
	c->tls_local = c->tls_remote = NULL;
	c->tls_names_lost = false;
}

void
conn_want_tls(struct conn *c, const char *local, const char *remote, bool alpn)
{
	if (c->tls != NULL) {
		c->tls_input = true;   /* pre-started: what follows now is TLS */
		impl(c)->tls_started = ev_now(loop);
		return;
	}
	set_tls_names(c, local, remote);   /* out of memory: start_tls fails */
	c->tls_alpn = c->tls_alpn || alpn;
	c->want_tls = true;
}

int
conn_start_tls(struct conn *c, const char *local, const char *remote, bool alpn,
    bool input_now)
{
	set_tls_names(c, local, remote);
	c->tls_alpn = alpn;
	if (start_tls(c) == -1)
		return -1;
	c->tls_input = input_now;
	return tls_session_handshake(c->tls) == TLS_FAILED ? -1 : 0;
}

const struct tls_session *
conn_tls(const struct conn *c)
{
	return c->tls && tls_session_established(c->tls) ? c->tls : NULL;
}

const struct tls_session *
conn_tls_session(const struct conn *c)
{
	return c->tls;
}

bool
conn_can_say(const struct conn *c)
{
	return c->tls == NULL ? !c->want_tls : tls_session_established(c->tls);
}

bool
conn_tfo_used(const struct conn *c)
{
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);

	return c->tfo && getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 &&
	    (ti.tcpi_options & TCPI_OPT_SYN_DATA);
}

/* Start TLS on the bytes left in rawin. Plaintext already queued (e.g. <proceed/>)
 * goes out first, unencrypted, in the same write as the TLS engine's first flight. */
static int
start_tls(struct conn *c)
{
	if (buf_append(&c->rawout, c->out.data, c->out.len) == -1)
		return -1;
	if (note(c, 0) != NULL)
		flight_note_xml(note(c, 0), c->out.data, c->out.len);
	c->clear_bytes += c->out.len;
	buf_reset(&c->out);
	if (c->tls_names_lost) {
		log_warnx("conn=%lu %s: cannot start TLS: out of memory", c->id, c->addr);
		return -1;
	}
	/* no names given (direct TLS, accepted): the session learns them (SNI) */
	if (c->initiator)
		c->tls = tls_session_client(tls_creds, c->tls_local ? c->tls_local : "",
		    c->tls_remote ? c->tls_remote : "", &c->rawin, &c->rawout);
	else
		c->tls = tls_session_server(tls_creds, c->tls_local ? c->tls_local : "",
		    &c->rawin, &c->rawout);
	clear_tls_names(c);
	if (c->tls == NULL)
		return -1;
	impl(c)->tls_started = ev_now(loop);
	if (c->initiator && c->target != NULL && c->target[0] != '\0')
		tls_session_set_target(c->tls, c->target, c->target_port);
	if (c->initiator && pass_tlsa(c) == -1)
		return -1;
	if (c->tls_alpn)
		tls_session_set_alpn(c->tls, "xmpp-server");
	c->tls_input = true;
	return 0;
}

static void
process_input(struct conn *c)
{
	char tmp[READ_CHUNK];

	for (;;) {
		struct buf *src;
		ssize_t n;

		if (c->state != CONN_OPEN || c->paused)
			return;
		if (c->want_tls) {
			c->want_tls = false;
			if (start_tls(c) == -1) {
				log_warnx("conn=%lu remote=%s cannot start TLS", c->id, c->remote);
				c->ops->input_end(c->owner, "tls-setup-failed");
				return;
			}
		}
		if (c->tls != NULL && c->tls_input && !tls_session_established(c->tls)) {
			enum tls_result r = tls_session_handshake(c->tls);

			if (r == TLS_AGAIN)
				return;
			if (r != TLS_DONE) {
				log_warnx("conn=%lu %s remote=%s local=%s TLS handshake failed: %s",
				    c->id, c->addr, c->remote, c->local,
				    tls_session_error(c->tls));
				c->close_reason = tls_session_dane_state(c->tls) == TLS_DANE_FAILED ?
				    "dane-failed" : "tls-handshake-failed";
				c->state = CONN_CLOSING;  /* still send <proceed/> and the alert */
				return;
			}
			log_debug("conn=%lu TLS established %s resumed=%d peer=%s", c->id,
			    tls_session_version(c->tls), tls_session_resumed(c->tls),
			    tls_session_peer_verdict(c->tls));
			c->ops->tls_ready(c->owner);
			continue;
		}
		if (c->tls != NULL && c->tls_input) {
			for (;;) {
				size_t got = 0;
				enum tls_result r;

				if (buf_room(&c->in) == 0)
					break;
				r = tls_session_read(c->tls, tmp,
				    buf_room(&c->in) < sizeof(tmp) ? buf_room(&c->in) : sizeof(tmp), &got);
				if (r == TLS_DONE && got > 0) {
					buf_append(&c->in, tmp, got);
					continue;
				}
				if (r == TLS_CLOSED) {
					if (c->in.len == 0) {
						c->ops->input_end(c->owner, "peer-closed-tls");
						return;
					}
				} else if (r == TLS_FAILED) {
					log_warnx("conn=%lu remote=%s TLS error: %s", c->id,
					    c->remote, tls_session_error(c->tls));
					c->close_reason = "tls-error";
					c->state = CONN_CLOSING;  /* still send the alert */
					return;
				}
				break;
			}
			src = &c->in;
		} else {
			src = &c->rawin;
		}
		if (src->len == 0)
			return;
		n = c->ops->input(c->owner, src->data, src->len);
		if (n < 0) {
			buf_reset(src);
			return;
		}
		buf_consume(src, (size_t)n);
		if (n == 0 && !c->want_tls)
			return;
	}
}

/* The note of this flight's clear (0) or inner (1) elements, or NULL when flights are
 * not being described (past the first 8, or below debug level). */
static char *
note(struct conn *c, int which)
{
	if (c->flights >= 8 || log_get_level() < LOG_DEBUG)
		return NULL;
	if (c->notes == NULL && (c->notes = calloc(2, FLIGHT_NOTE)) == NULL)
		return NULL;
	return c->notes + which * FLIGHT_NOTE;
}

/* One debug line per flight for the first few flights: what this write carries. */
static void
log_flight(struct conn *c)
{
	char tls[200] = "";
	size_t fresh = c->rawout.len - c->logged;
	size_t clear = c->clear_bytes < fresh ? c->clear_bytes : fresh;
	const unsigned char *p = (const unsigned char *)c->rawout.data + c->logged;

	c->flights++;
	if (c->flights <= 8 && log_get_level() >= LOG_DEBUG) {
		if (c->tls != NULL)
			flight_describe_tls(tls, sizeof(tls), p + clear, fresh - clear);
		log_debug("conn=%lu flight=%u %s bytes=%zu clear=[%s] tls=[%s] inner=[%s]", c->id,
		    c->flights, c->initiator ? "out" : "in", fresh,
		    c->notes ? c->notes : "", tls, c->notes ? c->notes + FLIGHT_NOTE : "");
	}
	if (c->notes != NULL && c->flights < 8) {
		c->notes[0] = c->notes[FLIGHT_NOTE] = '\0';
	} else {
		free(c->notes);      /* only the first flights are described */
		c->notes = NULL;
	}
	c->clear_bytes = 0;
	c->logged = c->rawout.len;
}

/* n plaintext bytes moved onto the wire: they end where rawout ends now. */
static void
checkpoint(struct conn *c, size_t n)
{
	struct conn_impl *ci = impl(c);
	unsigned last;

	ci->plain_moved += n;
	if (ci->ck_n == sizeof(ci->ck) / sizeof(ci->ck[0])) {
		last = (ci->ck_head + ci->ck_n - 1) % ci->ck_n;
	} else {
		last = (ci->ck_head + ci->ck_n) % (sizeof(ci->ck) / sizeof(ci->ck[0]));
		ci->ck_n++;
	}
	ci->ck[last].plain = ci->plain_moved;
	ci->ck[last].wire = ci->wire_sent + c->rawout.len;
}

uint64_t
conn_out_mark(const struct conn *c)
{
	return impl((struct conn *)c)->plain_moved + c->out.len;
}

uint64_t
conn_out_acked(struct conn *c)
{
	struct conn_impl *ci = impl(c);
	const unsigned cap = sizeof(ci->ck) / sizeof(ci->ck[0]);
	uint64_t acked;

	if (ci->ck_n == 0 || c->fd < 0 || tcp_bytes_acked(c->fd, c->initiator, &acked) == -1)
		return ci->plain_acked;
	if (acked > ci->wire_sent)
		acked = ci->wire_sent;
	while (ci->ck_n > 0 && ci->ck[ci->ck_head].wire <= acked) {
		ci->plain_acked = ci->ck[ci->ck_head].plain;
		ci->ck_head = (ci->ck_head + 1) % cap;
		ci->ck_n--;
	}
	return ci->plain_acked;
}

/* Move plaintext through TLS (when up) to rawout and write as much as the socket takes. */
static void
pump_output(struct conn *c)
{
	struct conn_impl *ci = impl(c);

	flush_cancel(c);        /* written now: nothing left for the end of the turn */
	if (c->out.len > 0 && (!c->want_tls || c->state == CONN_CLOSING) &&
	    c->rawout.len < OUT_LOWAT) {
		if (c->tls == NULL || (!c->tls_input && c->state == CONN_CLOSING)) {
			/* in the clear, also what is owed when closing on a TLS that never
			 * started (want_tls: the input boundary never came; a pre-started
			 * session whose <proceed/> never came, e.g. a refused pipelined
			 * STARTTLS): the peer still reads plaintext, and bytes held for a
			 * TLS that cannot start would only keep the close waiting */
			if (buf_append(&c->rawout, c->out.data, c->out.len) == -1) {
				c->close_reason = c->close_reason ? c->close_reason : "output-full";
				c->state = CONN_DEAD;
				return;
			}
			if (note(c, 0) != NULL)
				flight_note_xml(note(c, 0), c->out.data, c->out.len);
			c->clear_bytes += c->out.len;
			checkpoint(c, c->out.len);
			buf_reset(&c->out);
		} else if (tls_session_established(c->tls)) {
			if (note(c, 1) != NULL)
				flight_note_xml(note(c, 1), c->out.data, c->out.len);
			if (tls_session_write(c->tls, c->out.data, c->out.len) != TLS_DONE) {
				c->close_reason = c->close_reason ? c->close_reason : "output-full";
				c->state = CONN_DEAD;
				return;
			}
			checkpoint(c, c->out.len);
			buf_reset(&c->out);
		}
	}
	if (c->rawout.len > c->logged && c->state != CONN_CONNECTING && c->state != CONN_DEAD)
		log_flight(c);
	while (c->rawout.len > 0 && c->state != CONN_CONNECTING && c->state != CONN_DEAD) {
		ssize_t n = send(c->fd, c->rawout.data, c->rawout.len, MSG_NOSIGNAL);

		if (n > 0) {
			log_trace("conn=%lu wrote %zd bytes", c->id, n);
			c->wrote = true;
			ci->wire_sent += (uint64_t)n;
			c->logged -= (size_t)n < c->logged ? (size_t)n : c->logged;
			buf_consume(&c->rawout, (size_t)n);
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == EINPROGRESS))   /* TFO: the SYN is on its way */
			break;
		if (c->state == CONN_CLOSING && (errno == EPIPE || errno == ECONNRESET))
			log_debug("conn=%lu %s gone before our last bytes: %s", c->id, c->addr,
			    strerror(errno));   /* best effort: routine after its EOF */
		else
			log_warn("conn=%lu %s write", c->id, c->addr);
		if (c->close_reason == NULL)
			c->close_reason = "write-error";
		c->state = CONN_DEAD;
		return;
	}
	if ((c->rawout.len > 0 || c->out.len > 0) && c->state != CONN_DEAD)
		ev_io_start(loop, &ci->wio);
	else if (c->state != CONN_CONNECTING)
		ev_io_stop(loop, &ci->wio);
	if (c->send_blocked && c->state == CONN_OPEN && c->out.len == 0 &&
	    c->rawout.len < OUT_LOWAT)
		ev_timer_start(loop, &ci->drained);
}

/* Write now (from the top level: no callback of c's on the stack). */
static void
flush_now(struct conn *c)
{
	c->in_callback++;
	pump_output(c);
	c->in_callback--;
	finish(c);
}

void
conn_flush(struct conn *c)
{
	if (c == NULL || c->state == CONN_DEAD)
		return;
	if (c->in_callback > 0)
		return;  /* the callback on the stack pumps when it returns */
	flush_later(c);
}

/* Write c at the end of this loop turn, with whatever else is queued for it by then. */
static void
flush_later(struct conn *c)
{
	struct conn_impl *ci = impl(c);

	if (ci->flush_pending)
		return;
	ci->flush_pending = true;
	ci->fnext = NULL;
	ci->fprev = flush_tail;
	if (flush_tail != NULL)
		flush_tail->fnext = ci;
	else
		flush_head = ci;
	flush_tail = ci;
	if (!ev_is_active(&flush_watcher))
		ev_prepare_start(loop, &flush_watcher);
}

static void
flush_cancel(struct conn *c)
{
	struct conn_impl *ci = impl(c);

	if (!ci->flush_pending)
		return;
	if (ci->fprev != NULL)
		ci->fprev->fnext = ci->fnext;
	else
		flush_head = ci->fnext;
	if (ci->fnext != NULL)
		ci->fnext->fprev = ci->fprev;
	else
		flush_tail = ci->fprev;
	ci->fprev = ci->fnext = NULL;
	ci->flush_pending = false;
}

/* Before the loop waits: write every connection something was queued on from outside
 * its callbacks this turn (one TLS write and one send() each for all of it). Writing
 * may close one, whose owner may queue on others: they are written in this pass. */
static void
flush_cb(EV_P_ ev_prepare *w, int revents)
{
	struct conn_impl *ci;

	(void)w;
	(void)revents;
	while ((ci = flush_head) != NULL) {
		flush_cancel(&ci->pub);
		if (ci->pub.magic != CONN_MAGIC)
			fatalx("conn: bad magic in flush");
		if (ci->pub.state != CONN_DEAD && ci->pub.in_callback == 0)
			flush_now(&ci->pub);
	}
	ev_prepare_stop(EV_A, &flush_watcher);
}

static void
read_cb(EV_P_ ev_io *w, int revents)
{
	struct conn *c = w->data;
	char tmp[READ_CHUNK];
	bool eof = false, got = false;

	if (c->magic != CONN_MAGIC)
		fatalx("conn: bad magic in read");
	(void)revents;
	c->in_callback++;
	/* reading goes on while paused, up to rawin's bound (so a peer that leaves is
	 * noticed); only parsing waits */
	while (c->state == CONN_OPEN && buf_room(&c->rawin) > 0 && !c->peer_eof) {
		size_t want = buf_room(&c->rawin) < sizeof(tmp) ? buf_room(&c->rawin) : sizeof(tmp);
		ssize_t n = recv(c->fd, tmp, want, 0);

		if (n > 0) {
			log_trace("conn=%lu read %zd bytes", c->id, n);
			buf_append(&c->rawin, tmp, (size_t)n);
			got = true;
			c->last_active = impl(c)->last_read = ev_now(EV_A);
			c->quiet = false;
			if (impl(c)->unconfirmed) {
				/* the peer answered: this TCP Fast Open attempt wins the race */
				impl(c)->unconfirmed = false;
				c->ops->connected(c->owner);
			}
			continue;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			break;
		log_warn("conn=%lu %s read", c->id, c->addr);
		c->close_reason = c->close_reason ? c->close_reason : "read-error";
		c->state = CONN_DEAD;
		break;
	}
	if (got)
		quickack(c);
	c->wrote = false;
	process_input(c);
	if (eof)
		c->peer_eof = true;
	if (c->peer_eof && c->state == CONN_OPEN && c->paused &&
	    (c->rawin.len > 0 || c->in.len > 0) && c->ops->keep_on_eof(c->owner)) {
		/* an authenticated sender paused by a full route left: what it sent is still
		 * delivered when the route drains (conn_wake), then the stream ends */
		eof = false;
	} else if (c->peer_eof) {
		eof = true;     /* (held stanzas of an unauthenticated peer are discarded) */
	}
	if (eof && c->state != CONN_DEAD) {
		log_debug("conn=%lu %s closed the connection", c->id, c->addr);
		if (c->close_reason == NULL)
			c->close_reason = "peer-eof";
		/* The peer may only have shut down its side: it is still owed the answer
		 * to what it sent (a header and features, a stream error) and our close. */
		if (c->state == CONN_OPEN)
			c->ops->input_end(c->owner, "peer-eof");
		if (c->state == CONN_OPEN)
			c->state = CONN_CLOSING;
	}
	pump_output(c);
	if (c->wrote && c->state != CONN_DEAD)
		c->ops->flight(c->owner);
	c->in_callback--;
	finish(c);
}

/* During set-up (the owner still bounds the connection by timeouts { auth }), every
 * answer the peer sends is waited for: acknowledge what was read at once instead of
 * holding the ACK for a reply to ride on. A peer that leaves Nagle on (jabberd2 never
 * sets TCP_NODELAY) otherwise holds its next small segment until our delayed ACK
 * (~40 ms per set-up step). The kernel falls back to delayed ACKs by itself, so this
 * is repeated after each read; authenticated links are left alone. */
static void
quickack(struct conn *c)
{
	int one = 1;

	if (c->state != CONN_OPEN || c->deadline != CONN_DEADLINE_AUTH)
		return;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) == -1)
		log_debug("conn=%lu TCP_QUICKACK: %s", c->id, strerror(errno));
}

static void
wake_cb(EV_P_ ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)revents;
	read_cb(EV_A_ &impl(c)->rio, EV_READ);
}

static void
write_cb(EV_P_ ev_io *w, int revents)
{
	struct conn *c = w->data;

	if (c->magic != CONN_MAGIC)
		fatalx("conn: bad magic in write");
	(void)revents;
	c->in_callback++;
	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			log_warnx("conn=%lu s2s-out remote=%s connect to %s: %s", c->id,
			    c->remote, c->addr, strerror(err));
			c->close_reason = "connect-failed";
			c->state = CONN_DEAD;
		} else {
			log_info("conn=%lu %s-out local=%s remote=%s connected to %s", c->id,
			    side_name(c), c->local, c->remote, c->addr);
			c->state = CONN_OPEN;
			c->opened = ev_now(EV_A);
			if (c->tfo)
				impl(c)->unconfirmed = true;
			else
				c->ops->connected(c->owner);   /* Happy Eyeballs: the race is won */
			ev_io_start(EV_A, &impl(c)->rio);
			if (c->state == CONN_OPEN)
				c->ops->up(c->owner);   /* the first flight leaves with the connection */
			arm_timer(c);
		}
	}
	pump_output(c);
	c->in_callback--;
	finish(c);
}

static void
drained_cb(EV_P_ ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)revents;
	if (!c->send_blocked || c->state != CONN_OPEN)
		return;
	c->in_callback++;
	c->send_blocked = false;
	c->ops->drained(c->owner);     /* the owner's queue moves on */
	pump_output(c);
	c->in_callback--;
	finish(c);
}

/* An idle connection keeps no buffer storage: emptied buffers are released at the end
 * of each callback (buf.c releases large ones as soon as they drain), so a link is back
 * to idle size after a burst; a busy link allocates again at most once per buffer and
 * loop turn. */
static void
release_idle_buffers(struct conn *c)
{
	struct buf *b[] = { &c->rawin, &c->in, &c->out, &c->rawout };

	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		if (b[i]->len == 0 && b[i]->cap > 0)
			buf_free(b[i]);
}

/* End of every top-level callback: adjust watchers, close or free. */
static void
finish(struct conn *c)
{
	struct conn_impl *ci = impl(c);

	if (c->in_callback > 0)
		return;
	release_idle_buffers(c);
	if (c->state == CONN_CLOSING) {
		ev_io_stop(loop, &ci->rio);
		/* Plaintext behind a TLS handshake under way that never finished cannot
		 * go out: do not wait for it, send only what is already on the wire.
		 * (A TLS that never started sent it in the clear: pump_output.) */
		if (c->tls != NULL && c->tls_input && !tls_session_established(c->tls))
			buf_reset(&c->out);
		if (c->rawout.len == 0 && c->out.len == 0)
			c->state = CONN_DEAD;
		else if (!ev_is_active(&ci->timer) || ev_timer_remaining(loop, &ci->timer) >
		    cfg->shutdown_timeout_ms / 1000.0)
			arm_timer(c);
	}
	if (c->state == CONN_DEAD) {
		destroy(c);
		return;
	}
	if (c->state == CONN_OPEN) {
		/* backpressure: no reading once the input buffer is full; a paused owner
		 * (next hop over budget, held stanzas awaiting a verdict) stops taking input,
		 * so the buffer fills and reading stops there */
		if (buf_room(&c->rawin) > 0 && !c->peer_eof)
			ev_io_start(loop, &ci->rio);
		else
			ev_io_stop(loop, &ci->rio);
		arm_timer(c);
	}
}

static void
destroy(struct conn *c)
{
	struct conn_impl *ci = impl(c);

	ev_io_stop(loop, &ci->rio);
	ev_io_stop(loop, &ci->wio);
	ev_timer_stop(loop, &ci->timer);
	ev_timer_stop(loop, &ci->wake);
	ev_timer_stop(loop, &ci->drained);
	flush_cancel(c);
	waitq_del(c);
	c->ops->closed(c->owner, c->close_reason ? c->close_reason : "unknown", c->timed_out);
	c->local = c->remote = "";   /* borrowed from the owner, which is gone */
	admit_release(c->admit);
	c->admit = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		all = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nconns--;
	qf_stats.conns_open--;
	if (c->fd != -1)
		close(c->fd);
	tls_session_free(c->tls);
	buf_free(&c->rawin);
	buf_free(&c->rawout);
	buf_free(&c->in);
	buf_free(&c->out);
	c->magic = 0;
	free(ci->tlsa);
	free(ci->names);
	free(c->notes);
	free(c->target);
	clear_tls_names(c);
	free(ci);
}

/* ---- output ---- */

struct buf *
conn_out(struct conn *c)
{
	return &c->out;
}

bool
conn_output_full(const struct conn *c, size_t len)
{
	return c->out.len > 0 && c->out.len + len > SEND_HIWAT;
}

void
conn_want_drained(struct conn *c)
{
	c->send_blocked = true;
}

void
conn_touch(struct conn *c)
{
	c->last_active = ev_now(loop);
}

/* ---- backpressure ---- */

static void
waitq_del(struct conn *c)
{
	if (c->waitq == NULL)
		return;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else
		c->waitq->head = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	c->waitq = NULL;
	c->wprev = c->wnext = NULL;
}

void
conn_pause(struct conn *c, struct conn_waitq *q)
{
	if (c->state == CONN_DEAD)
		return;
	waitq_del(c);
	c->paused = true;
	if (q == NULL)
		return;
	c->waitq = q;
	c->wprev = NULL;
	c->wnext = q->head;
	if (q->head)
		q->head->wprev = c;
	q->head = c;
	log_debug("conn=%lu remote=%s reading paused: next hop over its budget", c->id,
	    c->remote);
}

void
conn_wake(struct conn *c)
{
	if (c == NULL || c->state == CONN_DEAD)
		return;
	/* from the loop: process what is buffered, re-arm reading (a fed read event would
	 * be lost if the read watcher is stopped meanwhile) */
	ev_timer_start(loop, &impl(c)->wake);
	conn_flush(c);
}

void
conn_wake_all(struct conn_waitq *q)
{
	struct conn *c;

	while ((c = q->head) != NULL) {
		waitq_del(c);
		c->paused = false;
		c->ops->resumed(c->owner);
		log_debug("conn=%lu remote=%s reading resumed", c->id, c->remote);
		conn_wake(c);
	}
}

void
conn_kick(struct conn *c)
{
	if (c == NULL || c->state != CONN_OPEN)
		return;
	if (c->in_callback > 0) {
		conn_wake(c);
		return;
	}
	c->in_callback++;
	process_input(c);       /* what the peer sent meanwhile */
	pump_output(c);
	c->in_callback--;
	finish(c);
}

/* ---- closing ---- */

void
conn_end(struct conn *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = reason;
	if (c->state == CONN_OPEN || c->state == CONN_CONNECTING)
		c->state = CONN_CLOSING;
}

void
conn_abort(struct conn *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = reason;
	c->state = CONN_DEAD;
	if (c->in_callback == 0)
		destroy(c);
}

void
conn_set_user_timeout(struct conn *c, unsigned ms)
{
	if (c->fd >= 0 && setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) == -1)
		log_warn("conn=%lu TCP_USER_TIMEOUT", c->id);
}

void
conn_reset(struct conn *c, const char *reason)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (c->fd >= 0 && setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == -1)
		log_warn("conn=%lu SO_LINGER", c->id);
	conn_abort(c, reason);
}

void
conn_close(struct conn *c, const char *reason)
{
	if (c->state == CONN_DEAD)
		return;
	if (c->state == CONN_CONNECTING) {
		c->close_reason = reason;
		c->state = CONN_DEAD;
		if (c->in_callback == 0)
			destroy(c);
		return;
	}
	conn_end(c, reason);
	if (c->in_callback == 0) {
		flush_cancel(c);
		flush_now(c);
	}
}

void
conn_shed(struct conn *c)
{
	if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
		return;
	c->in_callback++;
	pump_output(c);   /* what the socket takes now; the rest is dropped */
	if (c->close_reason == NULL)
		c->close_reason = "shed";
	c->state = CONN_DEAD;
	c->in_callback--;
	finish(c);
}

void
conn_destroy_all(void)
{
	while (all != NULL) {
		if (all->close_reason == NULL)
			all->close_reason = "exit";
		destroy(all);
	}
}

unsigned long
conn_count(void)
{
	return nconns;
}
