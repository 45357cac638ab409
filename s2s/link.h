/* s2s/link.h - one connection carrying one XMPP stream: conn.c below, stream.c on top.
 * SPDX-License-Identifier: ISC
 * route.c creates the links that relay stanzas and accepts the ones listener.c hands
 * in; verify.c creates the links that carry db:verify requests. A link feeds its
 * stream from its conn, learns what the peer supports (peercaps.c), counts set-up round
 * trips, runs incoming DANE lookups, renders "show peers", and reports what happened to
 * its owner through struct link_ops. The owner is named by a handle: an owner freed
 * while its links live is simply not called any more (link_detach does the same for an
 * owner that stays). */
#ifndef QF_LINK_H
#define QF_LINK_H

#include <stdbool.h>
#include <sys/socket.h>

#include "../core/handle.h"
#include "conn.h"
#include "stream.h"

struct config;
struct ev_loop;
struct link;
struct resolve_target;
struct resolver;
struct stanza;
struct status;
struct tls_ctx;

/* Events for the owner: owner is what the owner handle refers to (NULL for links
 * accepted with a null owner handle); l is the link. None may free l (close it). */
struct link_ops {
	enum handle_kind kind;   /* what the owner handle refers to */
	/* Initiator: its TCP connect succeeded first (Happy Eyeballs winner). */
	void (*connected)(void *owner, struct link *l);
	/* Initiator: relay: authenticated, stanzas may be sent; verify: db:verify may be. */
	void (*ready)(void *owner, struct link *l);
	/* Initiator, pipelining: queued stanzas may follow authentication now. */
	void (*pipeline)(void *owner, struct link *l);
	/* An authorised stanza arrived (owned by the callee). */
	void (*stanza)(void *owner, struct link *l, struct stanza *st);
	/* Receiver: db:result for (local, remote) with key on our stream id: verify it, then
	 * link_dialback_verdict() or link_dialback_error(). */
	void (*verify_needed)(void *owner, struct link *l, const char *local,
	    const char *remote, const char *stream_id, const char *key);
	/* Initiator (verify): the authoritative server's answer for id about (local, remote). */
	void (*verify_answer)(void *owner, struct link *l, const char *local,
	    const char *remote, const char *id, bool valid);
	/* The output drained after link_send refused a stanza. */
	void (*drained)(void *owner, struct link *l);
	/* A rider (link_ride): the link will not carry its pair (the receiving server
	 * refused the piggybacked db:result, the certificate does not cover the remote
	 * domain, or the pair table is full). The rider is off the link; l stays open. */
	void (*refused)(void *owner, struct link *l, const char *why);
	/* XEP-0198: l is ending with st sent but never acknowledged; the callee owns st
	 * and sends it again (at least once). Called oldest last, so putting each at the
	 * front of its queue keeps the order. owner is NULL: the callee finds where st goes
	 * by its addresses (the link may carry many owners' pairs, or none left). */
	void (*requeue)(void *owner, struct link *l, struct stanza *st);
	/* Internet, without stream management: l is ending with st written but its last
	 * byte never acknowledged by the peer's TCP; the callee owns st and bounces it (it
	 * may or may not have arrived). Called like requeue. */
	void (*unproven)(void *owner, struct link *l, struct stanza *st);
	/* The last call before l is freed: why, and whether a timer ended it. */
	void (*closed)(void *owner, struct link *l, const char *reason, bool timed_out);
};

/* Module set-up (the resolver serves incoming DANE lookups; status may be NULL). */
void link_init(struct ev_loop *loop, const struct config *cfg, struct tls_ctx *tls,
    struct resolver *res, struct status *status);
/* Reload: links made from now on get cfg (and conn.c's timeouts follow it); each
 * stream keeps the config it was opened with (a reference, config_hold) for its whole
 * life: its domains, policy and parser limits. A pair whose local domain the config of
 * an initiating link does not know (added by a reload) does not ride that link. */
void link_set_config(const struct config *cfg);
/* A receiving link on an accepted socket (listener.c). Returns NULL (fd closed). */
struct link *link_accept(int fd, enum stream_side side, bool direct_tls,
    const struct sockaddr *sa, socklen_t salen, const struct link_ops *ops,
    struct handle owner);
/* An initiating link to target t for (local, remote). Returns NULL (logged). */
struct link *link_connect(const struct resolve_target *t, enum stream_side side,
    enum stream_purpose purpose, const char *local, const char *remote,
    const struct link_ops *ops, struct handle owner);
/* The owner lets go: no more events reach it. */
void link_detach(struct link *l);
/* The link's handle (stays valid until l is freed). */
struct handle link_handle(const struct link *l);
/* The link a handle refers to, or NULL when it is gone. */
struct link *link_get(struct handle h);

/* Multiplexing. A link carries its own pair for its owner and any number of riders'
 * pairs (up to limits { link_pairs }), each reported to its own owner through the same
 * kind of link_ops: ready once the pair may send, drained, refused, closed.
 * link_find_ride: a link that can carry (local, remote) on side: one that carries it
 * already (an initiator's own or added pair; a receiver's pair with bidi, the reverse
 * way), an initiator to the same remote domain, or (targets given) an initiator to the
 * same server (SRV target host and port, or address and port) that is still setting up
 * or whose certificate covers remote. NULL when none. */
struct link *link_find_ride(enum stream_side side, const char *local, const char *remote,
    const struct resolve_target *targets, size_t n);
/* Put (local, remote) on l for owner: 1 when it may send at once (ops->ready is not
 * called), 0 when a piggybacked db:result is on its way or l is still setting up
 * (ops->ready or ops->refused follows; ops->pipeline first when the peer pipelines),
 * 2 as 0 but stanzas may follow the db:result now (the peer holds them until its
 * verdict; they count as delivered only at ops->ready), -1 when l cannot take it. */
int link_ride(struct link *l, const char *local, const char *remote,
    const struct link_ops *ops, struct handle owner);
/* The rider owner leaves l (its pair stays authenticated on the stream). */
void link_unride(struct link *l, struct handle owner);
/* May (local, remote) send on l now (stream_may_send)? When it may not, ops->drained
 * follows once it may. */
bool link_may_send(const struct link *l, const char *local, const char *remote);
/* Does anyone besides its owner use l? */
bool link_shared(const struct link *l);

/* Send a stanza on a ready (or pipelining) initiator, or a bidi receiver. Returns 0,
 * or -1 when not ready or the output is full (then ops->drained follows once it
 * drained). With stream management on the link keeps a copy until the peer acks it. */
int link_send(struct link *l, const struct stanza *st);
/* As link_send, but on success the link owns st: it frees it at once, or, with stream
 * management, once acknowledged (or hands it back through ops->requeue). The
 * unacknowledged bytes of a link are bounded by limits { queue_bytes }: above, sends
 * are refused until acks bring them under half (then ops->drained). */
int link_send_take(struct link *l, struct stanza *st);
/* A send was refused and ops->drained has not come yet. */
bool link_send_blocked(const struct link *l);
/* Verify purpose, once ready: ask about the key (local, remote) gave on another
 * stream's id; then link_flush. */
int link_send_verify(struct link *l, const char *local, const char *remote,
    const char *id, const char *key);
void link_flush(struct link *l);
/* Receiver: the verdict for a db:result given to ops->verify_needed (held stanzas are
 * released or discarded, input resumes). */
void link_dialback_verdict(struct link *l, const char *local, const char *remote,
    bool valid);
/* Receiver: the verification could not be started (limits { verifications }). */
void link_dialback_error(struct link *l, const char *local, const char *remote);

/* Backpressure: stop parsing l after the current element until conn_wake_all(q). */
void link_pause(struct link *l, struct conn_waitq *q);
void link_wake_all(struct conn_waitq *q);

/* Close with </stream:stream> and reason (static). */
void link_close(struct link *l, const char *reason);
/* Graceful shutdown of every link (with internet_only, of those on the internet side):
 * each ends its direction with </stream:stream> and reads on until the peer closes, so
 * nothing in flight towards us is dropped; a link with stanzas unacknowledged (stream
 * management) asks for an ack and ends once all are acked. Safe to call again. */
enum link_set {
	LINKS_INTERNET,     /* every link on the internet side */
	LINKS_LOCAL_IN,     /* the local server's streams to us */
	LINKS_ALL,
};
void link_close_all(enum link_set which);
/* Links in that set still open (for the shutdown's order). */
unsigned long link_count_set(enum link_set which);
/* Close an open link at once to make room for another (listener.c, under load): the
 * stream error cond/text goes out first unless the stream cannot carry one (inside a
 * TLS handshake); the close reason is "shed". */
void link_shed(struct link *l, const char *cond, const char *text);

/* Facts. */
unsigned long link_id(const struct link *l);   /* the conn id, as in logs */
struct conn *link_conn(struct link *l);        /* borrowed */
enum stream_side link_side(const struct link *l);
bool link_is_receiver(const struct link *l);
/* Initiator: the set-up relied on pipelining (peercaps). */
bool link_pipelined(const struct link *l);
/* Has the stream authenticated anything: SASL EXTERNAL, or a dialback pair found valid?
 * (a receiver with only pending pairs has not) */
bool link_authenticated(const struct link *l);
/* Open (not closing): shedding may pick it. */
bool link_open(const struct link *l);
unsigned long link_count(void);

#endif
