/* tests/fake/link.h - a scripted link layer for unit tests of route.c and verify.c.
 * SPDX-License-Identifier: ISC
 * tests/fake/link.c exports the link_* functions route.c and verify.c call (so
 * s2s/link.c and everything below it stay out of the test binary) and records what
 * they did; these helpers play the other side: they create receiving links, report
 * connected / ready / drained / closed / verify answers to a link's owner through its
 * link_ops and owner handle, exactly as s2s/link.c does, and to the riders that share
 * a link (link_ride): each hears ready, refused, drained and closed through its own. */
#ifndef QF_FAKE_LINK_H
#define QF_FAKE_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include "../../core/handle.h"
#include "../../s2s/link.h"

#define FL_MAX_SENT 64
#define FL_MAX_RIDERS 16
#define FL_MAX_PAIRS 16

/* A pair another owner put on a link (link_ride), as s2s/link.c keeps it. */
struct fl_rider {
	bool             used;
	struct handle    owner;
	const struct link_ops *ops;    /* borrowed */
	enum { FL_RIDER_WAITING, FL_RIDER_ASKED, FL_RIDER_VALID } state;
	char             local[256], remote[256];
};

/* A pair added to a link's stream: asked for (piggybacked db:result), or valid. For a
 * receiver, a pair its peer authenticated (fl_carry). */
struct fl_pair {
	bool             used, valid;
	char             local[256], remote[256];
};

struct link {
	struct handle    self;
	unsigned long    id;
	const struct link_ops *ops;    /* NULL once detached */
	struct handle    owner;
	enum stream_side side;
	enum stream_purpose purpose;
	bool             receiver;
	char             local[256], remote[256];
	char             target[300];  /* "host:port" an initiator was connecting to */
	bool             closed;       /* link_close was called, or fl_closed */
	const char      *close_reason;
	bool             gone;         /* freed (its handle released) */
	bool             ready;        /* initiator: fl_ready was called */
	/* multiplexing (set by tests): */
	bool             bidi;         /* receiver: carries its valid pairs back (XEP-0288) */
	const char      *covers;       /* another domain the peer's certificate is valid for */
	unsigned         pairs_max;    /* limits { link_pairs } (0: FL_MAX_RIDERS + 1) */
	/* ... and kept by the fake: */
	struct fl_rider  riders[FL_MAX_RIDERS];
	unsigned         nriders;
	struct fl_pair   pairs[FL_MAX_PAIRS];
	unsigned         piggybacked;  /* db:results sent for riders' pairs */
	/* sending */
	int              send_room;    /* stanzas link_send still takes (-1: unlimited) */
	bool             blocked;      /* a send was refused: drained is owed */
	bool             hold_sends;   /* link_may_send says no (a db:result pending) */
	char            *sent[FL_MAX_SENT]; /* copies of the stanzas sent (owned) */
	size_t           n_sent;
	char            *verify_sent[FL_MAX_SENT]; /* "id key" of each db:verify (owned) */
	size_t           n_verify_sent;
	/* receiving */
	struct conn_waitq *paused_in;  /* link_pause(l, q): the queue; NULL when awake */
	unsigned         woken;        /* times link_wake_all woke it */
	int              verdicts, valid_verdicts, dialback_errors;
	struct link     *next;
};

/* Every link made (initiators by link_connect, receivers by fl_receiver), oldest first. */
extern struct link *fl_all;
/* Initiators made by link_connect, in order. */
struct link *fl_attempt(size_t i);
size_t fl_attempts(void);
/* A receiving link owned by ops (route_receiver_ops()) with a null owner handle. */
struct link *fl_receiver(enum stream_side side, const struct link_ops *ops);

/* Reports to l's owner, as link.c makes them (none when detached or the owner is gone). */
void fl_connected(struct link *l);
void fl_ready(struct link *l);
void fl_drained(struct link *l);
/* l ends: its owner hears closed, then l is gone (its handle finds nothing). */
void fl_closed(struct link *l, const char *reason, bool timed_out);
void fl_stanza(struct link *l, const char *from, const char *to, const char *body);
void fl_verify_needed(struct link *l, const char *local, const char *remote,
    const char *id, const char *key);
/* The authoritative server's answer for id, about the link's own pair, or another. */
void fl_verify_answer(struct link *l, const char *id, bool valid);
void fl_verify_answer_for(struct link *l, const char *local, const char *remote,
    const char *id, bool valid);
/* The receiving server's answer to the db:result piggybacked for a rider's pair:
 * valid, the rider hears ready (the pair is carried from now on); invalid, it is off
 * the link and hears refused. As s2s/link.c, nothing when no rider asked for it. */
void fl_pair_verdict(struct link *l, const char *local, const char *remote, bool valid);
/* Receiver: its peer authenticated (local, remote) here (with bidi, it carries it). */
void fl_carry(struct link *l, const char *local, const char *remote);
/* l's rider for (local, remote), or NULL. */
const struct fl_rider *fl_rider(const struct link *l, const char *local, const char *remote);
/* Drop every link and its records. */
void fl_reset(void);

#endif
