/* s2s/stream.h - the XMPP s2s stream state machine, both roles, no sockets.
 * SPDX-License-Identifier: ISC
 * link.c feeds it plaintext bytes and TLS/timer events from its conn; it parses them
 * (xmlstream.c), answers with bytes appended to an output buffer and reports through
 * struct stream_ops: TLS wanted, stream authenticated, stanza received, dialback key to
 * verify, close with a reason. Unit tests drive it with strings (tests/unit/test_stream.c).
 * Policy (STARTTLS required, SASL EXTERNAL vs dialback, who may send what) lives here. */
#ifndef QF_STREAM_H
#define QF_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../core/buf.h"
#include "../core/config.h"
#include "../core/handle.h"
#include "sm.h"
#include "xnode.h"

struct stanza;
struct tls_session;


enum stream_role {
	STREAM_INITIATOR = 0,  /* we opened the TCP connection */
	STREAM_RECEIVER,       /* we accepted it */
};

enum stream_side {
	STREAM_INTERNET = 0,   /* remote servers: STARTTLS, PKIX, SASL EXTERNAL or dialback */
	STREAM_LOCAL,          /* the local XMPP server on loopback: dialback, TLS optional */
};

enum stream_purpose {
	STREAM_RELAY = 0,      /* carries stanzas for a domain pair */
	STREAM_VERIFY,         /* initiator only: carries db:verify requests (verify.c) */
};

enum stream_state {
	SS_INIT = 0,          /* initiator: nothing sent yet */
	SS_WAIT_HEADER,       /* waiting for the peer's stream header */
	SS_WAIT_FEATURES,     /* initiator: header seen, waiting for <stream:features/> */
	SS_WAIT_PROCEED,      /* initiator: <starttls/> sent */
	SS_TLS,               /* TLS handshake under way (driven by conn.c) */
	SS_WAIT_SASL,         /* initiator: <auth mechanism='EXTERNAL'/> sent */
	SS_WAIT_DB_RESULT,    /* initiator: <db:result/> sent, waiting for the verdict */
	SS_WAIT_DB_VERIFY,    /* initiator (verify purpose): open for db:verify requests */
	SS_OPEN,              /* receiver: features sent, negotiating / authenticated pairs */
	SS_READY,             /* initiator: authenticated, stanzas may be sent */
	SS_CLOSED,            /* closed or failed; close_reason says why */
};

/* Callbacks into the owner (link.c). owner is the pointer given to stream_new. */
struct stream_ops {
	/* Start TLS now: the bytes after the element that triggered it are TLS. */
	void (*start_tls)(void *owner);
	/* Close after flushing the output buffer. reason is a static string. */
	void (*close)(void *owner, const char *reason);
	/* The TLS session once established (for certificate checks), or NULL. */
	const struct tls_session *(*tls)(void *owner);
	/* Initiator: relay: the stream is authenticated for (local, remote); verify
	 * purpose: db:verify requests may be sent (stream_send_verify). */
	void (*ready)(void *owner);
	/* An authorised stanza arrived; the callee owns st. */
	void (*stanza)(void *owner, struct stanza *st);
	/* Receiver: peer sent db:result for (local, remote) with key on our stream id;
	 * the owner must verify it with remote's authoritative server and then call
	 * stream_dialback_verdict(). */
	void (*verify_needed)(void *owner, const char *local, const char *remote,
	    const char *stream_id, const char *key);
	/* Initiator (verify purpose): the authoritative server's answer for the request
	 * about (local, remote) with that id (valid false also for type='error'). */
	void (*verify_answer)(void *owner, const char *local, const char *remote,
	    const char *id, bool valid);
	/* Initiator, pipelining: authentication went out without waiting; queued stanzas
	 * may follow in the same flight (stream_send works until the stream fails). */
	void (*pipeline)(void *owner);
	/* Receiver, incoming DANE (may be NULL): the peer's certificate is not PKIX-valid
	 * for domain; look up domain's secure TLSA records and match the certificate
	 * against them. Returns true when started: stream_dane_result() follows (never
	 * from inside this call) and the stream holds its features back until then. */
	bool (*dane_lookup)(void *owner, const char *domain);
	/* Initiator: the receiving server's answer to a pair added by stream_add_pair()
	 * (valid false also for type='error'); the stream stays either way. */
	void (*pair_verdict)(void *owner, const char *local, const char *remote, bool valid);
	/* XEP-0198: the peer acknowledged n more of our stanzas (oldest first); with
	 * failed, it refused stream management: nothing counted so far will be acked. */
	void (*acked)(void *owner, uint32_t n, bool failed);
	/* XEP-0198: an <r/> waits for what came before it to be released (passed on by
	 * quickfed); the owner answers it with stream_sm_answer if that takes too long. */
	void (*ack_owed)(void *owner);
	/* Either role, optional: a pair entered the table (stream_add_pair, a db:result
	 * received), or a receiver authenticated its own pair (SASL EXTERNAL): the stream may
	 * carry it from now on, once valid (stream_carries). */
	void (*pair_added)(void *owner, const char *local, const char *remote);
};

struct stream {
	enum stream_role    role;
	enum stream_side    side;
	enum stream_purpose purpose;
	enum stream_state   state;
	unsigned long       cid;           /* owner's connection id, for logs */
	const struct config *cfg;          /* borrowed */
	const struct stream_ops *ops;      /* borrowed */
	void               *owner;
	struct buf         *out;           /* borrowed: plaintext to send */
	struct xmlstream   *xs;
	char  local[256];                  /* our domain (initiator: from; receiver: to) */
	char  remote[256];                 /* the peer's domain */
	char  id[64];                      /* stream id (ours as receiver, theirs as initiator) */
	bool  tls_active;                  /* TLS established under this stream */
	bool  direct_tls;                  /* XEP-0368: TLS from the first byte */
	bool  header_sent;                 /* our header for the current stream is out */
	bool  restart_pending;             /* reset the parser after the current element */
	bool  db_offered;                  /* peer offered dialback (initiator) */
	bool  sasl_done;                   /* receiver: remote is authenticated by SASL
	                                    * EXTERNAL (for the stream's own pair) */
	const char *auth_method;           /* "external" / "dialback" / NULL */
	/* XEP-0288: the stream carries stanzas both ways (receiver: the initiator sent
	 * <bidi/>; initiator: we sent it after the peer offered it). Only pairs this
	 * stream authenticated in its own direction travel the other way. */
	bool  bidi;
	bool  peer_bidi;                   /* initiator: the peer offered bidi */
	struct sm sm;                      /* XEP-0198 (sm.c) */
	struct handle origin;              /* set by the owner: what the stanzas it takes
	                                    * under stream management name as their origin
	                                    * (stanza.h), to be acknowledged once released */
	bool  end_sent;                    /* our </stream:stream> is out (stream_end): we
	                                    * send nothing more, but read on until theirs */
	/* Receiver: (local, remote) pairs authenticated by dialback; pending verifications.
	 * Initiator: the pairs added on a ready stream by a piggybacked db:result
	 * (stream_add_pair), pending until the receiving server's verdict.
	 * Stanzas pipelined behind a pair's db:result wait in ITS held list: only that
	 * pair's verdict releases them (valid) or discards them (invalid, timeout, close). */
	struct stream_pair {
		char *local, *remote;          /* one allocation, owned through local:
		                                * "local\0remote\0", each at most 255 */
		uint32_t hash;                 /* of the lower-cased pair (pair_index) */
		bool valid, pending;
		struct stanza *held, *held_tail;   /* owned, in arrival order */
	} *pairs;                          /* owned; grown with the db:results (most streams
	                                    * have none); its size counts against
	                                    * limits { held } with the held stanzas */
	size_t n_pairs, cap_pairs;
	size_t pair_names;                 /* bytes of the pairs' names (they count
	                                    * against limits { held } with the table) */
	/* An index over the pair table once it holds more than a few (an initiator with
	 * many added pairs, a receiver with many piggybacked ones): slots of pair number + 1
	 * (0 empty), a power of two at least twice n_pairs; NULL while the table is small
	 * enough to walk. Owned; rebuilt when a pair is removed. */
	uint32_t *pair_index;
	size_t pair_index_mask;
	size_t n_asked;                    /* initiator: added pairs awaiting their verdict
	                                    * (stream_may_send looks no further when 0) */
	/* XEP-0305 pipelining. Set by the owner before stream_start (initiator): */
	bool  pipeline;                    /* peer is known to support pipelining */
	bool  pipe_starttls;               /* peer is known to offer STARTTLS: send it early */
	bool  pipe_external;               /* peer accepted our SASL EXTERNAL before */
	bool  pipe_bidi;                   /* peer offered bidi before: ask for it early */
	/* ... and kept by the stream: */
	bool  starttls_sent;               /* <starttls/> went out with the header */
	bool  tls_preempt;                 /* owner starts TLS now: ClientHello in flight 1 */
	bool  restart_header_sent;         /* the post-auth header went out early */
	bool  early_ok;                    /* stanzas may be sent before READY */
	bool  peer_pipelining;             /* learnt from features */
	bool  peer_starttls;               /* learnt from features */
	/* Receiver, incoming DANE (RFC 7673; Prosody's mod_s2s_auth_dane_in): */
	bool  dane_pending;                /* a TLSA lookup for dane_domain is under way */
	bool  features_held;               /* features wait for the lookup's result */
	bool  dane_matched;                /* the certificate matched dane_domain's TLSA */
	char *dane_domain;                 /* owned; the domain the lookup was for, or NULL */
	/* Held stanzas (all pairs): counted against limits { held }; at the budget the
	 * stream reads no further until a verdict releases or discards them. */
	size_t n_held, held_bytes;
	bool  input_blocked;               /* held budget reached: input paused */
	bool  owner_paused;                /* stream_pause_input(): the owner's next hop is full */
	unsigned long held_discarded;      /* held stanzas never delivered (counted) */
	const char *close_reason;
	unsigned long stanzas_in, stanzas_out;
};

/* Create a stream. local/remote may be "" for a receiver (learned from the header).
 * out is the plaintext output buffer (borrowed). Returns NULL on OOM. */
struct stream *stream_new(enum stream_role role, enum stream_side side,
    enum stream_purpose purpose, const struct config *cfg, const char *local,
    const char *remote, const struct stream_ops *ops, void *owner, struct buf *out);
void stream_free(struct stream *s);
/* Verify purpose, once ready: ask the authoritative server about the key (local,
 * remote) gave on the other stream's id; the pair need not be the stream's own (on the
 * loopback leg one stream asks the local server about all its domains). Returns 0 or
 * -1 (not ready, or output full). */
int stream_send_verify(struct stream *s, const char *local, const char *remote,
    const char *id, const char *key);
/* Receiver: the pair's verification could not even be started (limits { verifications }
 * reached): answer with a dialback error (XEP-0220 §2.4, type='error', resource-
 * constraint); the pair is dropped, its held stanzas discarded, the stream stays. */
void stream_dialback_error(struct stream *s, const char *local, const char *remote);

/* Direct TLS (XEP-0368): the connection starts with TLS; the stream begins (the
 * initiator's header goes out) in stream_tls_ready(). Call right after stream_new. */
void stream_direct_tls(struct stream *s);
/* Initiator: the TCP connection is up; sends the stream header. */
void stream_start(struct stream *s);
/* Plaintext input. Returns bytes consumed; fewer than len when TLS must start first
 * (then call again with the rest only after stream_tls_ready). -1 once closed. */
ssize_t stream_input(struct stream *s, const char *p, size_t len);
/* TLS established: restart the stream (initiator sends a new header). */
void stream_tls_ready(struct stream *s);
/* Receiver: the result of ops->dane_lookup (matched: the peer's certificate matches a
 * secure TLSA record of the domain). Sends the features held back meanwhile. */
void stream_dane_result(struct stream *s, bool matched);
/* Receiver: the answer for a db:result previously passed to verify_needed. */
void stream_dialback_verdict(struct stream *s, const char *local, const char *remote,
    bool valid);
/* Initiator (ready, or pipelining after auth): send a stanza. Returns 0 or -1 (not
 * ready, or the output buffer is full: try again when it drained). */
int stream_send(struct stream *s, const struct stanza *st);
/* The connection is quiet: give back what the next input can rebuild (the parser). */
void stream_trim(struct stream *s);
/* From the owner's stanza callback: stop parsing after the current element (the
 * owner's next hop is over its budget); stream_input() consumes nothing until
 * stream_resume_input(). */
void stream_pause_input(struct stream *s);
void stream_resume_input(struct stream *s);
/* Input is paused (held budget, owner's pause or a DANE lookup): the owner should stop
 * reading the socket until it is woken. */
bool stream_input_paused(const struct stream *s);
/* Initiator (relay, ready): authenticate one more (local, remote) pair on this stream
 * with a piggybacked db:result (XEP-0220 §2.4 "multiplexing"); ops->pair_verdict
 * follows. Returns 0, or -1 (not ready, a pair table at its budget, or output full). */
int stream_add_pair(struct stream *s, const char *local, const char *remote);
/* May stanzas for (local, remote) travel on this stream, in the direction it was opened
 * (initiator) or back the other way (receiver, bidi)? Initiator: its own pair once
 * ready, or an added pair found valid. Receiver with bidi: a pair authenticated here. */
bool stream_carries(const struct stream *s, const char *local, const char *remote);
/* XEP-0198: will the peer acknowledge what is sent now? Then ask for an ack (<r/>,
 * at most one outstanding). */
bool stream_sm_tracking(const struct stream *s);
void stream_sm_request(struct stream *s);
/* Liveness: with stream management on, ask for an ack even with nothing unacked (true
 * when an <r/> is now outstanding); without, write one space (RFC 6120 §4.6.1
 * whitespace keepalive: only TCP can tell whether it arrived). */
bool stream_probe(struct stream *s);
/* An <r/> of ours is unanswered. */
bool stream_sm_waiting(const struct stream *s);
/* A stanza this stream took (its seq, stanza.h origin_seq) was released by quickfed:
 * true when an owed <a/> is due now (then stream_sm_answer, from the loop). */
bool stream_sm_released(struct stream *s, uint32_t seq);
/* Answer an owed <r/> now with what is released so far. */
void stream_sm_answer(struct stream *s);
/* Initiator: may stanzas of (local, remote) go out now? Not while a piggybacked
 * db:result from the same sending domain waits for its verdict: Prosody (0.12) keeps
 * one authentication per sending domain on a stream, and a new db:result from that
 * domain resets it until verified, so a stanza sent meanwhile is refused with a stream
 * error. */
bool stream_may_send(const struct stream *s, const char *local, const char *remote);
/* Is the peer's TLS certificate valid for domain (PKIX and names)? */
bool stream_peer_covers(const struct stream *s, const char *domain);
/* Send a stream error (condition from RFC 6120 §4.9.3) and close with reason. */
void stream_error(struct stream *s, const char *cond, const char *text, const char *reason);
/* Graceful end of our direction (RFC 6120 §4.4): </stream:stream> goes out, nothing is
 * sent after it, but what the peer sent before it saw ours is still read and delivered
 * until the peer's own </stream:stream> closes the stream (the owner bounds the wait).
 * Used at shutdown, so that nothing in flight towards us is dropped. */
void stream_end(struct stream *s);
/* Close cleanly with </stream:stream>. */
void stream_close(struct stream *s, const char *reason);
/* Waiting for the peer to answer a verification we must make? (for timers) */
bool stream_is_ready(const struct stream *s);
bool stream_expects_input(const struct stream *s);
const char *stream_strstate(enum stream_state st);

#endif
