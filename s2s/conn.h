/* s2s/conn.h - one TCP connection: socket, libev watchers, buffers, TLS glue, timers.
 * SPDX-License-Identifier: ISC
 * listener.c creates receiving connections, route.c initiating ones. A conn turns socket,
 * TLS and timer activity into calls on its struct stream (stream.c) and passes what the
 * stream reports (ready, stanza, dialback work, close) on to route.c. It is freed only
 * from the top of a libev callback, never under a caller that still uses it. */
#ifndef QF_CONN_H
#define QF_CONN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "../core/buf.h"
#include "stream.h"

struct admit_entry;
struct ev_loop;
struct tls_ctx;
struct stanza;
struct status;

enum conn_state {
	CONN_CONNECTING = 0,   /* TCP connect under way */
	CONN_OPEN,             /* exchanging bytes */
	CONN_CLOSING,          /* flushing the last bytes; no more input */
	CONN_DEAD,             /* closed; freed at the end of the current callback */
};

struct conn {
	unsigned int     magic;
	unsigned long    id;
	int              fd;
	enum conn_state  state;
	struct stream   *st;
	struct tls_session *tls;
	bool             want_tls;     /* the stream asked for TLS after this input */
	bool             tls_input;    /* input is TLS (false while a pre-started TLS
	                                * session waits for <proceed/>) */
	bool             wrote;        /* something was sent during this callback */
	unsigned         setup_flights; /* flights sent before the stream was ready */
	unsigned         rtt_used;     /* round trips the set-up took (initiators) */
	unsigned         rtt_unpipelined; /* ... and what an unpipelined set-up takes */
	unsigned         flights;      /* writes made so far (the first few are logged) */
	char             note_clear[240], note_inner[240]; /* elements queued this flight */
	size_t           clear_bytes;  /* clear bytes at the head of this flight's bytes */
	size_t           logged;       /* bytes at the head of rawout already described */
	bool             timed_out;    /* closed by a timer (bounces say remote-server-timeout) */
	int              in_callback;  /* nesting depth of our own callbacks */
	const char      *close_reason; /* static string, set once */
	char             addr[64];     /* peer address "ip:port" for logs */
	char             target[256];  /* initiators: the target host name (SRV target) */
	unsigned         target_port;
	bool             tfo;          /* TCP Fast Open was requested (initiators) */
	bool             tfo_used;     /* ... and the SYN carried data that was accepted */
	struct buf       rawin, rawout; /* bytes on the wire */
	struct buf       in, out;      /* plaintext in (after TLS) and out (before TLS) */
	double           created, last_active;
	double           opened;       /* TCP established (receivers: accepted) */
	bool             send_blocked; /* conn_send refused: the owner waits for drained */
	bool             paused;       /* conn_pause(): parsing stopped until woken */
	bool             peer_eof;     /* the peer closed; what is buffered is still parsed */
	struct conn_waitq *waitq;      /* the queue this paused conn waits in, or NULL */
	struct conn     *wprev, *wnext; /* links in waitq */
	void            *route;        /* route.c's object for initiators (borrowed) */
	struct admit_entry *admit;     /* receivers: the accepting listener's record of it
	                                * (admit.c; set by listener.c, released when freed) */
	struct conn     *prev, *next;  /* all connections, for status and shutdown */
	/* libev watchers live in conn.c's private extension of this struct */
};

/* Module set-up: the loop, config, TLS credentials and status socket (may be NULL). */
void conn_init(struct ev_loop *loop, const struct config *cfg, struct tls_ctx *tls,
    struct status *status);
/* Accept an already-accepted socket fd (non-blocking). Returns NULL (fd closed, logged)
 * on failure. */
struct conn *conn_accept(int fd, enum stream_side side, bool direct_tls,
    const struct sockaddr *sa, socklen_t salen);
/* Start connecting. local/remote as for stream_new. route is the caller's object,
 * handed back in route_conn_* callbacks. Returns NULL (logged) on immediate failure. */
struct conn *conn_connect(const struct sockaddr *sa, socklen_t salen, enum stream_side side,
    enum stream_purpose purpose, const char *local, const char *remote, void *route);
/* conn_connect() to a resolved target, with its host name, port, TLSA and direct TLS
 * set as below: what route.c and verify.c do for each Happy Eyeballs attempt. */
struct resolve_target;
struct conn *conn_connect_target(const struct resolve_target *t, enum stream_side side,
    enum stream_purpose purpose, const char *local, const char *remote, void *route);
/* The target host name and port this initiator connects to (SRV target), for the TLS
 * session store and DANE. Call right after conn_connect. */
void conn_set_target(struct conn *c, const char *host, unsigned port);
/* The target is a _xmpps-server one: TLS from the first byte (XEP-0368). Call right
 * after conn_connect. */
void conn_set_direct_tls(struct conn *c);
/* DANE: the target's TLSA records and their DNSSEC status as the resolver found them
 * (copied); handed to the TLS session when TLS starts on this initiator. Call right
 * after conn_connect. */
struct resolve_target;
void conn_set_tlsa(struct conn *c, const struct resolve_target *t);
/* Send a stanza on a ready initiating stream. Returns 0, or -1 when the stream is not
 * ready or its output is full (c->send_blocked is then set and route_conn_drained()
 * follows once the output has drained). */
int conn_send(struct conn *c, const struct stanza *st);

/* Backpressure. A queue of paused connections (owned by whoever's budget is full, e.g.
 * a route); a connection waits in at most one and leaves it when freed. */
struct conn_waitq {
	struct conn *head;
};
/* Stop reading c (after the element being parsed) and park it in q until
 * conn_wake_all(q). */
void conn_pause(struct conn *c, struct conn_waitq *q);
/* Resume every connection parked in q (their input is processed from the loop, not
 * from inside this call). */
void conn_wake_all(struct conn_waitq *q);
/* c's stream may take input again (e.g. a dialback verdict released held stanzas):
 * write what it queued and process buffered input from the loop. */
void conn_wake(struct conn *c);
/* Write out whatever the stream queued (after it was poked from outside its own
 * callbacks); never parses input, so it is safe from inside stream callbacks. */
void conn_flush(struct conn *c);
/* Close with a reason (graceful: </stream:stream>, flush, then close). */
void conn_close(struct conn *c, const char *reason);
/* Close with a stream error. */
void conn_stream_error(struct conn *c, const char *cond, const char *text,
    const char *reason);
/* Close every connection (graceful shutdown) with <system-shutdown/>; with
 * internet_only, only those on the internet side. */
void conn_close_all(bool internet_only);
/* At exit: free every connection still open, without waiting. */
void conn_destroy_all(void);
unsigned long conn_count(void);
/* Look a connection up by id (NULL if gone) — for answers that arrive later. */
struct conn *conn_by_id(unsigned long id);
/* Has the stream authenticated anything: SASL EXTERNAL, or a dialback pair found
 * valid (a receiver with only pending pairs has not)? */
bool conn_authenticated(const struct conn *c);
/* Close an open connection at once to make room for another (listener.c, under load):
 * the stream error cond/text goes out first unless the stream cannot carry one (inside
 * a TLS handshake), then the socket is closed without waiting for the peer; the close
 * reason is "shed". Frees c unless one of its own callbacks is on the stack. */
void conn_shed(struct conn *c, const char *cond, const char *text);

#endif
