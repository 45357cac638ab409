/* tests/fake/link.c - a scripted link layer for unit tests of route.c and verify.c.
 * SPDX-License-Identifier: ISC
 * Exports the link_* functions route.c and verify.c use, with the same contracts as
 * s2s/link.c but no sockets, no streams and no timers: they record what the owner asked
 * for; tests/fake/link.h's helpers report events back. Multiplexing is modelled on the
 * link itself: its riders, and the pairs its stream would carry (its own once ready, the
 * added ones found valid, a receiver's with bidi). Linked only into tests that reference
 * those helpers (tests/unit/test_route.c, test_verify.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/handle.h"
#include "../../dns/resolver.h"
#include "../../s2s/jid.h"
#include "../../s2s/stanza.h"
#include "link.h"

struct link *fl_all;
static struct link *attempts[64];
static size_t n_attempts;
static unsigned long next_id = 1;

static bool owner_of(const struct link *, void **);
static bool rider_owner(const struct fl_rider *, void **);
static void rider_free(struct link *, struct fl_rider *);
static int rider_ask(struct link *, struct fl_rider *, const char **);
static void riders_ready(struct link *);
static struct fl_pair *pair_find(struct link *, const char *, const char *);
static struct fl_pair *pair_add(struct link *, const char *, const char *);
static bool carries(const struct link *, const char *, const char *);
static bool covers(const struct link *, const char *);
static bool pairs_full(const struct link *);

static struct link *
fl_new(enum stream_side side, enum stream_purpose purpose, const char *local,
    const char *remote, const struct link_ops *ops, struct handle owner)
{
	struct link *l = calloc(1, sizeof(*l)), **pp;

	if (l == NULL)
		abort();
	l->self = handle_new(HANDLE_LINK, l);
	l->id = next_id++;
	l->ops = ops;
	l->owner = owner;
	l->side = side;
	l->purpose = purpose;
	l->send_room = -1;
	snprintf(l->local, sizeof(l->local), "%s", local);
	snprintf(l->remote, sizeof(l->remote), "%s", remote);
	for (pp = &fl_all; *pp; pp = &(*pp)->next)
		;
	*pp = l;
	return l;
}

struct link *
fl_receiver(enum stream_side side, const struct link_ops *ops)
{
	struct link *l = fl_new(side, STREAM_RELAY, "", "", ops, HANDLE_NULL);

	l->receiver = true;
	return l;
}

struct link *
fl_attempt(size_t i)
{
	return i < n_attempts ? attempts[i] : NULL;
}

size_t
fl_attempts(void)
{
	return n_attempts;
}

static bool
owner_of(const struct link *l, void **o)
{
	*o = NULL;
	if (l->ops == NULL || l->gone)
		return false;
	if (handle_is_null(l->owner))
		return true;
	*o = handle_get(l->owner, l->ops->kind);
	return *o != NULL;
}

void
fl_connected(struct link *l)
{
	void *o;

	if (owner_of(l, &o) && l->ops->connected)
		l->ops->connected(o, l);
}

/* As s2s/link.c's s_ready: the owner first, then the riders that waited ask for their
 * pairs (riders_ready). */
void
fl_ready(struct link *l)
{
	void *o;

	if (l->gone)
		return;
	l->ready = true;
	if (owner_of(l, &o) && l->ops->ready)
		l->ops->ready(o, l);
	riders_ready(l);
}

/* The owner, then every rider whose pair is carried. */
void
fl_drained(struct link *l)
{
	void *o;

	l->blocked = false;
	if (owner_of(l, &o) && l->ops->drained)
		l->ops->drained(o, l);
	for (size_t i = 0; i < FL_MAX_RIDERS; i++) {
		struct fl_rider *r = &l->riders[i];

		if (r->used && r->state == FL_RIDER_VALID && rider_owner(r, &o) &&
		    r->ops->drained != NULL)
			r->ops->drained(o, l);
	}
}

void
fl_closed(struct link *l, const char *reason, bool timed_out)
{
	void *o;

	if (l->gone)
		return;
	l->closed = true;
	if (l->close_reason == NULL)
		l->close_reason = reason;
	if (owner_of(l, &o) && l->ops->closed)
		l->ops->closed(o, l, reason, timed_out);
	/* then each rider, taken off first (a callback may start new set-ups) */
	for (size_t i = 0; i < FL_MAX_RIDERS; i++) {
		struct fl_rider *r = &l->riders[i];
		const struct link_ops *rops = r->ops;
		bool call;

		if (!r->used)
			continue;
		call = rider_owner(r, &o);
		rider_free(l, r);
		if (call && rops->closed != NULL)
			rops->closed(o, l, reason, timed_out);
	}
	handle_release(l->self);
	l->gone = true;
}

void
fl_stanza(struct link *l, const char *from, const char *to, const char *body)
{
	char xml[4096];
	struct stanza *st;
	void *o;
	int n;

	n = snprintf(xml, sizeof(xml), "<message xmlns='jabber:server' from='%s' to='%s'>"
	    "<body>%s</body></message>", from, to, body);
	st = stanza_new("message", from, to, NULL, false, xml, (size_t)n);
	if (st == NULL)
		abort();
	if (owner_of(l, &o) && l->ops->stanza)
		l->ops->stanza(o, l, st);
	else
		stanza_free(st);
}

void
fl_verify_needed(struct link *l, const char *local, const char *remote, const char *id,
    const char *key)
{
	void *o;

	if (owner_of(l, &o) && l->ops->verify_needed)
		l->ops->verify_needed(o, l, local, remote, id, key);
}

void
fl_verify_answer(struct link *l, const char *id, bool valid)
{
	fl_verify_answer_for(l, l->local, l->remote, id, valid);
}

void
fl_verify_answer_for(struct link *l, const char *local, const char *remote, const char *id,
    bool valid)
{
	void *o;

	if (owner_of(l, &o) && l->ops->verify_answer)
		l->ops->verify_answer(o, l, local, remote, id, valid);
}

void
fl_pair_verdict(struct link *l, const char *local, const char *remote, bool valid)
{
	struct fl_pair *p = pair_find(l, local, remote);
	struct fl_rider *r = NULL;
	const struct link_ops *rops;
	void *o;
	bool call;

	if (l->gone || p == NULL || p->valid)
		return;                 /* never asked for: the stream ignores it */
	if (valid)
		p->valid = true;
	else
		p->used = false;        /* the stream forgets a refused pair */
	for (size_t i = 0; i < FL_MAX_RIDERS && r == NULL; i++)
		if (l->riders[i].used && l->riders[i].state == FL_RIDER_ASKED &&
		    domain_eq(l->riders[i].local, local) && domain_eq(l->riders[i].remote, remote))
			r = &l->riders[i];
	if (r == NULL)
		return;                 /* its owner left meanwhile */
	rops = r->ops;
	call = rider_owner(r, &o);
	if (valid) {
		r->state = FL_RIDER_VALID;
		if (call && rops->ready != NULL)
			rops->ready(o, l);
		return;
	}
	rider_free(l, r);
	if (call && rops->refused != NULL)
		rops->refused(o, l, "the receiving server refused the piggybacked db:result");
}

void
fl_carry(struct link *l, const char *local, const char *remote)
{
	struct fl_pair *p = pair_find(l, local, remote);

	if (p == NULL && (p = pair_add(l, local, remote)) == NULL)
		abort();
	p->valid = true;
}

const struct fl_rider *
fl_rider(const struct link *l, const char *local, const char *remote)
{
	for (size_t i = 0; i < FL_MAX_RIDERS; i++)
		if (l->riders[i].used && domain_eq(l->riders[i].local, local) &&
		    domain_eq(l->riders[i].remote, remote))
			return &l->riders[i];
	return NULL;
}

void
fl_reset(void)
{
	struct link *l;

	while ((l = fl_all) != NULL) {
		fl_all = l->next;
		if (!l->gone)
			handle_release(l->self);
		for (size_t i = 0; i < l->n_sent; i++)
			free(l->sent[i]);
		for (size_t i = 0; i < l->n_verify_sent; i++)
			free(l->verify_sent[i]);
		free(l);
	}
	n_attempts = 0;
}

/* ---- the link.h functions route.c and verify.c call ---- */

struct link *
link_connect(const struct resolve_target *t, enum stream_side side,
    enum stream_purpose purpose, const char *local, const char *remote,
    const struct link_ops *ops, struct handle owner)
{
	struct link *l = fl_new(side, purpose, local, remote, ops, owner);

	snprintf(l->target, sizeof(l->target), "%s:%u", t->host, t->port);
	if (n_attempts < sizeof(attempts) / sizeof(attempts[0]))
		attempts[n_attempts++] = l;
	return l;
}

void
link_detach(struct link *l)
{
	l->ops = NULL;
}

/* As s2s/link.c: the link ends at once and its (attached) owner hears closed. */
void
link_close(struct link *l, const char *reason)
{
	fl_closed(l, reason, false);
}

struct handle
link_handle(const struct link *l)
{
	return l->self;
}

struct link *
link_get(struct handle h)
{
	return handle_get(h, HANDLE_LINK);
}

int
link_send(struct link *l, const struct stanza *st)
{
	if (l->closed || l->send_room == 0 || l->n_sent == FL_MAX_SENT) {
		l->blocked = true;
		return -1;
	}
	if (l->send_room > 0)
		l->send_room--;
	l->sent[l->n_sent++] = strndup(st->data, st->len);
	return 0;
}

/* As s2s/link.c without stream management: taken and freed once written. */
int
link_send_take(struct link *l, struct stanza *st)
{
	if (link_send(l, st) == -1)
		return -1;
	stanza_free(st);
	return 0;
}

bool
link_send_blocked(const struct link *l)
{
	return l->blocked;
}

int
link_send_verify(struct link *l, const char *local, const char *remote, const char *id,
    const char *key)
{
	char s[1200];

	if (l->n_verify_sent == FL_MAX_SENT)
		return -1;
	/* "id key" for the link's own pair, "local|remote id key" for another */
	if (strcmp(local, l->local) == 0 && strcmp(remote, l->remote) == 0)
		snprintf(s, sizeof(s), "%s %s", id, key);
	else
		snprintf(s, sizeof(s), "%s|%s %s %s", local, remote, id, key);
	l->verify_sent[l->n_verify_sent++] = strdup(s);
	return 0;
}

void
link_flush(struct link *l)
{
	(void)l;
}

void
link_dialback_verdict(struct link *l, const char *local, const char *remote, bool valid)
{
	(void)local;
	(void)remote;
	l->verdicts++;
	l->valid_verdicts += valid;
}

void
link_dialback_error(struct link *l, const char *local, const char *remote)
{
	(void)local;
	(void)remote;
	l->dialback_errors++;
}

/* The wait queue is conn.c's; the fake keeps its own record of who waits where. */
void
link_pause(struct link *l, struct conn_waitq *q)
{
	l->paused_in = q;
	q->head = (struct conn *)q;   /* non-NULL: "someone waits" (never dereferenced) */
}

void
link_wake_all(struct conn_waitq *q)
{
	for (struct link *l = fl_all; l; l = l->next)
		if (l->paused_in == q) {
			l->paused_in = NULL;
			l->woken++;
		}
	q->head = NULL;
}

unsigned long
link_id(const struct link *l)
{
	return l->id;
}

enum stream_side
link_side(const struct link *l)
{
	return l->side;
}

bool
link_pipelined(const struct link *l)
{
	(void)l;
	return false;
}

/* ---- multiplexing, as s2s/link.c ---- */

static bool
rider_owner(const struct fl_rider *r, void **o)
{
	*o = handle_get(r->owner, r->ops->kind);
	return *o != NULL;
}

static void
rider_free(struct link *l, struct fl_rider *r)
{
	if (!r->used)
		return;
	r->used = false;
	l->nriders--;
}

static struct fl_pair *
pair_find(struct link *l, const char *local, const char *remote)
{
	for (size_t i = 0; i < FL_MAX_PAIRS; i++)
		if (l->pairs[i].used && domain_eq(l->pairs[i].local, local) &&
		    domain_eq(l->pairs[i].remote, remote))
			return &l->pairs[i];
	return NULL;
}

static struct fl_pair *
pair_add(struct link *l, const char *local, const char *remote)
{
	for (size_t i = 0; i < FL_MAX_PAIRS; i++) {
		struct fl_pair *p = &l->pairs[i];

		if (p->used)
			continue;
		memset(p, 0, sizeof(*p));
		p->used = true;
		snprintf(p->local, sizeof(p->local), "%s", local);
		snprintf(p->remote, sizeof(p->remote), "%s", remote);
		return p;
	}
	return NULL;
}

/* stream_carries: an initiator its own pair once ready and the added pairs found
 * valid; a receiver with bidi the pairs authenticated on it. */
static bool
carries(const struct link *l, const char *local, const char *remote)
{
	if (l->closed || l->gone || l->purpose != STREAM_RELAY)
		return false;
	if (!l->receiver) {
		if (!l->ready)
			return false;
		if (domain_eq(local, l->local) && domain_eq(remote, l->remote))
			return true;
	} else if (!l->bidi) {
		return false;
	}
	for (size_t i = 0; i < FL_MAX_PAIRS; i++)
		if (l->pairs[i].used && l->pairs[i].valid && domain_eq(l->pairs[i].local, local) &&
		    domain_eq(l->pairs[i].remote, remote))
			return true;
	return false;
}

/* stream_peer_covers: the fake certificate is valid for domain too. */
static bool
covers(const struct link *l, const char *domain)
{
	return l->covers != NULL && domain_eq(l->covers, domain);
}

/* limits { link_pairs }: the link's own pair and its riders. */
static bool
pairs_full(const struct link *l)
{
	unsigned max = l->pairs_max ? l->pairs_max : FL_MAX_RIDERS + 1;

	return l->nriders + 1 >= max;
}

/* rider_ask: 1 carried already, 0 a db:result is on its way, -1 (why set) when this
 * link may not carry the pair. */
static int
rider_ask(struct link *l, struct fl_rider *r, const char **why)
{
	struct fl_pair *p;

	if (carries(l, r->local, r->remote)) {
		r->state = FL_RIDER_VALID;
		return 1;
	}
	if (l->side == STREAM_INTERNET && !domain_eq(r->remote, l->remote) &&
	    !covers(l, r->remote)) {
		*why = "certificate does not cover the remote domain";
		return -1;
	}
	if ((p = pair_find(l, r->local, r->remote)) == NULL) {
		if ((p = pair_add(l, r->local, r->remote)) == NULL) {
			*why = "pair table full or output full";
			return -1;
		}
		l->piggybacked++;
	}
	r->state = FL_RIDER_ASKED;
	return 0;
}

static void
riders_ready(struct link *l)
{
	const char *why = NULL;
	void *o;

	for (size_t i = 0; i < FL_MAX_RIDERS; i++) {
		struct fl_rider *r = &l->riders[i];
		const struct link_ops *rops = r->ops;
		int rc;

		if (!r->used || r->state != FL_RIDER_WAITING)
			continue;
		rc = rider_ask(l, r, &why);
		if (rc == 1 && rider_owner(r, &o) && rops->ready != NULL) {
			rops->ready(o, l);
		} else if (rc == -1) {
			bool call = rider_owner(r, &o);

			rider_free(l, r);
			if (call && rops->refused != NULL)
				rops->refused(o, l, why);
		}
	}
}

static bool
same_target(const struct link *l, const struct resolve_target *t, size_t n)
{
	char hp[300];

	for (size_t i = 0; i < n; i++) {
		snprintf(hp, sizeof(hp), "%s:%u", t[i].host, t[i].port);
		if (strcmp(hp, l->target) == 0)
			return true;
	}
	return false;
}

/* As s2s/link.c: one that carries the pair already, else the best initiator: to the
 * same remote domain (or any on the loopback side), ready first; else (targets given)
 * one to the same "host:port" still setting up, or ready with a certificate that
 * covers remote. Ties go to the newest, as link.c's list runs newest first. */
struct link *
link_find_ride(enum stream_side side, const char *local, const char *remote,
    const struct resolve_target *targets, size_t n)
{
	struct link *best = NULL;
	int best_rank = 0;

	for (struct link *l = fl_all; l != NULL; l = l->next) {
		int rank = 0;

		if (l->purpose != STREAM_RELAY || l->side != side || l->closed || l->gone ||
		    pairs_full(l))
			continue;
		if (carries(l, local, remote))
			return l;
		if (l->receiver || l->ops == NULL)
			continue;
		if (side == STREAM_LOCAL || domain_eq(l->remote, remote))
			rank = l->ready ? 4 : 3;
		else if (targets != NULL && same_target(l, targets, n))
			rank = !l->ready ? 1 : covers(l, remote) ? 2 : 0;
		if (rank > 0 && rank >= best_rank) {
			best = l;
			best_rank = rank;
		}
	}
	return best;
}

int
link_ride(struct link *l, const char *local, const char *remote,
    const struct link_ops *ops, struct handle owner)
{
	struct fl_rider *r = NULL;
	const char *why = NULL;
	int rc = 0;

	if (l->closed || l->gone || pairs_full(l))
		return -1;
	for (size_t i = 0; i < FL_MAX_RIDERS && r == NULL; i++)
		if (!l->riders[i].used)
			r = &l->riders[i];
	if (r == NULL)
		return -1;
	memset(r, 0, sizeof(*r));
	snprintf(r->local, sizeof(r->local), "%s", local);
	snprintf(r->remote, sizeof(r->remote), "%s", remote);
	r->owner = owner;
	r->ops = ops;
	r->state = FL_RIDER_WAITING;
	if (l->receiver) {
		if (!carries(l, local, remote))
			return -1;
		r->state = FL_RIDER_VALID;
		rc = 1;
	} else if (l->ready && (rc = rider_ask(l, r, &why)) == -1) {
		return -1;
	}
	r->used = true;
	l->nriders++;
	return rc;
}

void
link_unride(struct link *l, struct handle owner)
{
	for (size_t i = 0; i < FL_MAX_RIDERS; i++) {
		struct fl_rider *r = &l->riders[i];

		if (r->used && r->owner.idx == owner.idx && r->owner.gen == owner.gen) {
			rider_free(l, r);
			return;
		}
	}
}

/* The fake has no stream: a test holds a pair back with l->hold_sends. */
bool
link_may_send(const struct link *l, const char *local, const char *remote)
{
	(void)local;
	(void)remote;
	return !l->hold_sends;
}

bool
link_shared(const struct link *l)
{
	return l->nriders > 0;
}
