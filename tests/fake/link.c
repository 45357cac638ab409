/* tests/fake/link.c - a scripted link layer for unit tests of route.c and verify.c.
 * SPDX-License-Identifier: ISC
 * Exports the link_* functions route.c and verify.c use, with the same contracts as
 * s2s/link.c but no sockets, no streams and no timers: they record what the owner asked
 * for; tests/fake/link.h's helpers report events back. Linked only into tests that
 * reference those helpers (tests/unit/test_route.c, test_verify.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/handle.h"
#include "../../dns/resolver.h"
#include "../../s2s/stanza.h"
#include "link.h"

struct link *fl_all;
static struct link *attempts[64];
static size_t n_attempts;
static unsigned long next_id = 1;

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

void
fl_ready(struct link *l)
{
	void *o;

	if (owner_of(l, &o) && l->ops->ready)
		l->ops->ready(o, l);
}

void
fl_drained(struct link *l)
{
	void *o;

	l->blocked = false;
	if (owner_of(l, &o) && l->ops->drained)
		l->ops->drained(o, l);
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
	void *o;

	if (owner_of(l, &o) && l->ops->verify_answer)
		l->ops->verify_answer(o, l, id, valid);
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

bool
link_send_blocked(const struct link *l)
{
	return l->blocked;
}

int
link_send_verify(struct link *l, const char *id, const char *key)
{
	char s[512];

	if (l->n_verify_sent == FL_MAX_SENT)
		return -1;
	snprintf(s, sizeof(s), "%s %s", id, key);
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
