/* s2s/conn.h - one TCP connection: socket, libev watchers, buffers, TLS pump, timers.
 * SPDX-License-Identifier: ISC
 * Pure I/O: link.c creates every conn (receivers for listener.c, initiators for route.c
 * and verify.c) and is its only owner. A conn turns socket, TLS and timer activity
 * into the events of struct conn_ops (connected, plaintext input, TLS up, output
 * drained, deadline reached, closed with a reason) and never looks at the XMPP stream
 * on top of it. It is freed only from the top of a libev callback, never under a caller
 * that still uses it; its owner hears `closed` last. */
#ifndef QF_CONN_H
#define QF_CONN_H

/* Seconds without input after which an open connection's owner hears ops->quiet
 * (checked every CONN_QUIET_S / 2 seconds). */
#define CONN_QUIET_S 2.0

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "../core/buf.h"

struct admit_entry;
struct config;
struct ev_loop;
struct link;       /* the owner: opaque here (conn.c never calls into link.c) */
struct resolve_target;
struct tls_ctx;
struct tls_session;

enum conn_state {
	CONN_CONNECTING = 0,   /* TCP connect under way */
	CONN_OPEN,             /* exchanging bytes */
	CONN_CLOSING,          /* flushing the last bytes; no more input */
	CONN_DEAD,             /* closed; freed at the end of the current callback */
};

/* The deadline of an open connection besides the TLS handshake's (conn_set_deadline). */
enum conn_deadline {
	CONN_DEADLINE_AUTH = 0, /* timeouts { auth } from TCP up: "auth-timeout" */
	CONN_DEADLINE_IDLE,     /* timeouts { idle } after the last byte: "idle-timeout" */
};

/* Events for the owner given at creation (always a link; conn.c only passes the pointer
 * back). None may free the conn (close it instead: it is freed when the callback on the
 * stack returns). */
struct conn_ops {
	/* Initiator: the TCP connect is confirmed (TCP Fast Open: the peer's first bytes
	 * arrived); the Happy Eyeballs race is won. */
	void (*connected)(struct link *owner);
	/* Initiator: TCP is up; start the protocol (the first flight leaves with it). */
	void (*up)(struct link *owner);
	/* Plaintext arrived: consume what can be used now, return the bytes consumed
	 * (fewer than len: the rest stays buffered), or -1 to discard everything (the
	 * owner closed). Not called while paused (conn_pause). */
	ssize_t (*input)(struct link *owner, const char *p, size_t len);
	/* The TLS handshake finished (conn_tls() gives the session). */
	void (*tls_ready)(struct link *owner);
	/* The input ended without a decision of ours (TLS close_notify, TLS could not
	 * start): close gracefully with reason (static). */
	void (*input_end)(struct link *owner, const char *reason);
	/* The peer closed (TCP EOF) while c is paused with input still buffered: true keeps
	 * it to deliver that input when woken, false closes now. */
	bool (*keep_on_eof)(struct link *owner);
	/* The deadline set with conn_set_deadline passed; what is "auth-timeout" (c is
	 * marked timed out) or "idle-timeout". The owner closes. */
	void (*expired)(struct link *owner, const char *what);
	/* Something was written while handling input (one round trip of ours). */
	void (*flight)(struct link *owner);
	/* Output drained after conn_want_drained(). */
	void (*drained)(struct link *owner);
	/* Output room again / paused input resumed (conn_wake_all). */
	void (*resumed)(struct link *owner);
	/* Nothing was read for CONN_QUIET_S seconds and no input waits: release what the
	 * next input can rebuild (the XML parser). Once per quiet spell; may be NULL; must
	 * not close c. */
	void (*quiet)(struct link *owner);
	/* The last call: c is about to be freed; reason says why (static string). */
	void (*closed)(struct link *owner, const char *reason, bool timed_out);
};

struct conn {
	unsigned int     magic;
	unsigned long    id;
	int              fd;
	enum conn_state  state;
	bool             initiator;    /* we connected (else accepted) */
	bool             internet;     /* internet side (else the loopback leg) */
	const char      *local, *remote; /* names for logs (borrowed from the owner;
	                                  * never used after ops->closed) */
	struct tls_session *tls;
	bool             want_tls;     /* TLS starts after this input (conn_want_tls) */
	bool             tls_input;    /* input is TLS (false while a pre-started TLS
	                                * session waits for <proceed/>) */
	bool             tls_alpn;     /* announce ALPN xmpp-server (direct TLS) */
	char            *tls_local, *tls_remote; /* names for the TLS session, until it
	                                * starts (heap; NULL: none given, "") */
	bool             tls_names_lost; /* ... out of memory copying them: TLS fails */
	bool             wrote;        /* something was sent during this callback */
	unsigned         flights;      /* writes made so far (the first few are logged) */
	char            *notes;        /* elements queued this flight, clear and inner
	                                * (2 x FLIGHT_NOTE): only while the first flights
	                                * are logged at debug level */
	size_t           clear_bytes;  /* clear bytes at the head of this flight's bytes */
	size_t           logged;       /* bytes at the head of rawout already described */
	bool             timed_out;    /* closed by a timer (bounces say remote-server-timeout) */
	int              in_callback;  /* nesting depth of our own callbacks */
	const char      *close_reason; /* static string, set once */
	char             addr[64];     /* peer address "ip:port" for logs */
	char            *target;       /* owned; initiators: the target host name (SRV target),
	                                * "" until conn_set_target */
	unsigned         target_port;
	bool             tfo;          /* TCP Fast Open was requested (initiators) */
	struct buf       rawin, rawout; /* bytes on the wire */
	struct buf       in, out;      /* plaintext in (after TLS) and out (before TLS) */
	double           created, last_active;
	double           opened;       /* TCP established (receivers: accepted) */
	enum conn_deadline deadline;   /* which deadline applies while open */
	bool             send_blocked; /* the owner waits for ops->drained */
	bool             paused;       /* conn_pause(): input not handed on until woken */
	bool             peer_eof;     /* the peer closed; what is buffered is still parsed */
	bool             quiet;        /* ops->quiet was called and nothing was read since */
	struct conn_waitq *waitq;      /* the queue this paused conn waits in, or NULL */
	struct conn     *wprev, *wnext; /* links in waitq */
	const struct conn_ops *ops;    /* borrowed */
	struct link     *owner;        /* the link on top (borrowed; link.c) */
	struct admit_entry *admit;     /* receivers: the accepting listener's record of it
	                                * (admit.c; set by listener.c, released when freed) */
	struct conn     *prev, *next;  /* all connections, for shutdown */
	/* libev watchers live in conn.c's private extension of this struct */
};

/* Module set-up: the loop, config and TLS credentials. */
void conn_init(struct ev_loop *loop, const struct config *cfg, struct tls_ctx *tls);
/* Reload: timeouts and buffer sizes of cfg apply from now on (timers set from now on,
 * connections made from now on). cfg must outlive the module or the next call. */
void conn_set_config(const struct config *cfg);
/* Accept an already-accepted socket fd (non-blocking). With direct_tls the first bytes
 * are a ClientHello. Returns NULL (fd closed, logged) on failure. */
struct conn *conn_accept(int fd, bool internet, bool direct_tls, const struct sockaddr *sa,
    socklen_t salen, const struct conn_ops *ops, struct link *owner);
/* Start connecting; local/remote are the names for logs (copied until conn_set_names).
 * tfo: try TCP Fast Open. Returns NULL (logged) on immediate failure; a connect that
 * fails at once is reported from the loop (ops->closed). */
struct conn *conn_connect(const struct sockaddr *sa, socklen_t salen, bool internet,
    bool tfo, const char *local, const char *remote, const struct conn_ops *ops,
    struct link *owner);
/* The names logs use from now on (borrowed: they must live until ops->closed). */
void conn_set_names(struct conn *c, const char *local, const char *remote);
/* The target host name and port this initiator connects to (SRV target), for the TLS
 * session store and DANE. Call right after conn_connect. */
void conn_set_target(struct conn *c, const char *host, unsigned port);
/* DANE: the target's TLSA records and their DNSSEC status as the resolver found them
 * (copied); handed to the TLS session when TLS starts on this initiator. */
void conn_set_tlsa(struct conn *c, const struct resolve_target *t);
/* Which deadline applies while the connection is open (default: auth). */
void conn_set_deadline(struct conn *c, enum conn_deadline d);

/* TLS. local/remote: our name and the peer's (copied). alpn: announce xmpp-server. */
/* Start TLS at the next input boundary: the bytes after what ops->input consumed are
 * TLS. With a session pre-started by conn_start_tls(..., false), its input starts now. */
void conn_want_tls(struct conn *c, const char *local, const char *remote, bool alpn);
/* Initiator: start the client handshake now (its first flight leaves with this
 * callback's write). input_now false: the session waits for conn_want_tls (XEP-0305:
 * ClientHello sent behind <starttls/> before <proceed/> came back). Returns 0 or -1. */
int conn_start_tls(struct conn *c, const char *local, const char *remote, bool alpn,
    bool input_now);
/* The TLS session once established, else NULL. */
const struct tls_session *conn_tls(const struct conn *c);
/* Any TLS session, established or not (NULL before TLS). */
const struct tls_session *conn_tls_session(const struct conn *c);
/* Can a stream error still go out in the clear or inside TLS (not before a direct-TLS
 * handshake or in the middle of one)? */
bool conn_can_say(const struct conn *c);
/* TCP Fast Open: did the first flight ride in the SYN? */
bool conn_tfo_used(const struct conn *c);

/* Output. The owner appends plaintext to conn_out(c) and calls conn_flush. */
struct buf *conn_out(struct conn *c);
/* Would len more bytes exceed what an open connection takes before it drained? */
bool conn_output_full(const struct conn *c, size_t len);
/* The owner could not send: ops->drained follows once the output has drained. */
void conn_want_drained(struct conn *c);
/* Something was sent: the connection is active (idle deadline). */
void conn_touch(struct conn *c);
/* Write out whatever the owner queued (after it was poked from outside our own
 * callbacks); never hands on input, so it is safe from inside owner callbacks. */
void conn_flush(struct conn *c);
/* Delivery proof without XEP-0198: the plaintext offset just past everything queued
 * so far (a stanza's mark once appended), and how much of the plaintext the peer's
 * TCP has acknowledged (asks the kernel; still answers in ops->closed, from what it
 * learnt last once the socket cannot tell). Both count from 0 at the first byte. */
uint64_t conn_out_mark(const struct conn *c);
uint64_t conn_out_acked(struct conn *c);

/* Backpressure. A queue of paused connections (owned by whoever's budget is full, e.g.
 * a route); a connection waits in at most one and leaves it when freed. */
struct conn_waitq {
	struct conn *head;
};
/* Stop handing on input (after the current ops->input returns) and park c in q until
 * conn_wake_all(q) (NULL q: until conn_resume). Reading goes on up to the input
 * buffer's bound. */
void conn_pause(struct conn *c, struct conn_waitq *q);
/* Resume every connection parked in q: ops->resumed, then its input is processed from
 * the loop, not from inside this call. */
void conn_wake_all(struct conn_waitq *q);
/* c may take input again (e.g. a dialback verdict released held stanzas): write what
 * was queued and process buffered input from the loop. */
void conn_wake(struct conn *c);
/* Hand buffered input on now and write (from a top-level callback of the owner's, e.g.
 * a DNS answer; from under one of c's own callbacks it is deferred like conn_wake). */
void conn_kick(struct conn *c);

/* Closing. */
/* The owner ended its stream (its last bytes are queued): flush, then close. Only
 * marks c: the callback on the stack, or the next conn_flush, writes. */
void conn_end(struct conn *c, const char *reason);
/* Close at once, without flushing (a set-up step failed before anything useful was
 * queued); reason is static. */
void conn_abort(struct conn *c, const char *reason);
/* As conn_abort, with a TCP reset: what the kernel still holds unsent is discarded
 * (the operator's "close link": the connection is treated as dead). */
void conn_reset(struct conn *c, const char *reason);
/* TCP_USER_TIMEOUT: the kernel gives the connection up when data it sent stays
 * unacknowledged for ms (0: the system default). */
void conn_set_user_timeout(struct conn *c, unsigned ms);
/* Close: a connecting one at once, an open one as conn_end plus a flush now. */
void conn_close(struct conn *c, const char *reason);
/* Close an open (or just ended) connection at once (listener.c, under load): what the
 * socket takes now is written, the rest dropped; reason "shed" unless one was set.
 * Frees c unless one of its own callbacks is on the stack. */
void conn_shed(struct conn *c);
/* At exit: free every connection still open, without waiting. */
void conn_destroy_all(void);
unsigned long conn_count(void);

#endif
