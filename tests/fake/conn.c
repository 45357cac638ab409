/* tests/fake/conn.c - a scripted connection layer for unit tests of link.c.
 * SPDX-License-Identifier: ISC
 * Exports the conn_* functions link.c uses with conn.c's contracts but no socket, no
 * TLS (conn_tls() is always NULL) and no timers: output is kept in conn_out() for the
 * test to read, deadlines and pauses are only recorded in struct conn. Linked only into
 * tests that call the fc_* helpers (tests/unit/test_link.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "conn.h"

bool fc_output_full;
uint64_t fc_acked = UINT64_MAX;
static struct conn *conns[64];
static size_t nconns;
static unsigned long next_id = 1;

static struct conn *
fc_new(bool initiator, bool internet, const struct conn_ops *ops, struct link *owner)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL || nconns == sizeof(conns) / sizeof(conns[0]))
		abort();
	c->id = next_id++;
	c->fd = -1;
	c->initiator = initiator;
	c->internet = internet;
	c->ops = ops;
	c->owner = owner;
	c->local = c->remote = "";
	c->state = initiator ? CONN_CONNECTING : CONN_OPEN;
	snprintf(c->addr, sizeof(c->addr), "192.0.2.%lu:5269", c->id);
	buf_init(&c->rawin, 1 << 16);
	buf_init(&c->in, 1 << 16);
	buf_init(&c->out, 1 << 20);
	buf_init(&c->rawout, 1 << 20);
	conns[nconns++] = c;
	return c;
}

struct conn *
fc_last(void)
{
	return nconns > 0 ? conns[nconns - 1] : NULL;
}

static void
fc_free(struct conn *c)
{
	for (size_t i = 0; i < nconns; i++)
		if (conns[i] == c) {
			conns[i] = conns[--nconns];
			break;
		}
	buf_free(&c->rawin);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->rawout);
	free(c->target);
	free(c);
}

void
fc_destroy(struct conn *c, const char *reason)
{
	if (c->close_reason == NULL)
		c->close_reason = reason;
	c->state = CONN_DEAD;
	c->ops->closed(c->owner, c->close_reason, c->timed_out);
	fc_free(c);
}

void
fc_reset(void)
{
	while (nconns > 0)
		fc_destroy(conns[nconns - 1], "exit");
}

void
fc_up(struct conn *c)
{
	c->state = CONN_OPEN;
	c->ops->connected(c->owner);
	c->ops->up(c->owner);   /* (conn.c reports flights of input callbacks only) */
}

void
fc_input(struct conn *c, const char *s)
{
	size_t before = c->out.len;   /* output is kept, not written: growth is a flight */
	ssize_t n;

	buf_append(&c->in, s, strlen(s));
	if (c->paused || c->state != CONN_OPEN)
		return;
	n = c->ops->input(c->owner, c->in.data, c->in.len);
	if (n < 0)
		buf_reset(&c->in);
	else
		buf_consume(&c->in, (size_t)n);
	if (c->out.len > before && c->state != CONN_DEAD)
		c->ops->flight(c->owner);
}

/* ---- the conn.h functions link.c calls ---- */

void
conn_init(struct ev_loop *loop, const struct config *cfg, struct tls_ctx *tls)
{
	(void)loop;
	(void)cfg;
	(void)tls;
}

void
conn_set_config(const struct config *cfg)
{
	(void)cfg;
}

struct conn *
conn_accept(int fd, bool internet, bool direct_tls, const struct sockaddr *sa,
    socklen_t salen, const struct conn_ops *ops, struct link *owner)
{
	(void)sa;
	(void)salen;
	(void)direct_tls;
	if (fd >= 0)
		close(fd);
	return fc_new(false, internet, ops, owner);
}

struct conn *
conn_connect(const struct sockaddr *sa, socklen_t salen, bool internet, bool tfo,
    const char *local, const char *remote, const struct conn_ops *ops, struct link *owner)
{
	struct conn *c = fc_new(true, internet, ops, owner);

	(void)sa;
	(void)salen;
	(void)local;
	(void)remote;
	c->tfo = tfo;
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
	(void)c;
	(void)t;
}

void
conn_set_deadline(struct conn *c, enum conn_deadline d)
{
	c->deadline = d;
}

void
conn_want_tls(struct conn *c, const char *local, const char *remote, bool alpn)
{
	(void)local;
	(void)remote;
	(void)alpn;
	c->want_tls = true;
}

int
conn_start_tls(struct conn *c, const char *local, const char *remote, bool alpn,
    bool input_now)
{
	(void)c;
	(void)local;
	(void)remote;
	(void)alpn;
	(void)input_now;
	return -1;     /* no TLS here */
}

const struct tls_session *
conn_tls(const struct conn *c)
{
	(void)c;
	return NULL;
}

const struct tls_session *
conn_tls_session(const struct conn *c)
{
	(void)c;
	return NULL;
}

bool
conn_can_say(const struct conn *c)
{
	return !c->want_tls;
}

bool
conn_tfo_used(const struct conn *c)
{
	(void)c;
	return false;
}

struct buf *
conn_out(struct conn *c)
{
	return &c->out;
}

bool
conn_output_full(const struct conn *c, size_t len)
{
	(void)c;
	(void)len;
	return fc_output_full;
}

void
conn_want_drained(struct conn *c)
{
	c->send_blocked = true;
}

void
conn_touch(struct conn *c)
{
	(void)c;
}

void
conn_flush(struct conn *c)
{
	(void)c;
}

uint64_t
conn_out_mark(const struct conn *c)
{
	return c->out.len;   /* tests read conn_out and reset it: marks restart then */
}

uint64_t
conn_out_acked(struct conn *c)
{
	(void)c;
	return fc_acked;
}

void
conn_pause(struct conn *c, struct conn_waitq *q)
{
	c->paused = true;
	c->waitq = q;
}

void
conn_wake_all(struct conn_waitq *q)
{
	for (size_t i = 0; i < nconns; i++)
		if (conns[i]->waitq == q) {
			conns[i]->waitq = NULL;
			conns[i]->paused = false;
			conns[i]->ops->resumed(conns[i]->owner);
		}
	q->head = NULL;
}

void
conn_wake(struct conn *c)
{
	(void)c;
}

void
conn_kick(struct conn *c)
{
	(void)c;
}

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
	conn_end(c, reason);
	c->state = CONN_DEAD;
}

void
conn_close(struct conn *c, const char *reason)
{
	conn_end(c, reason);
}

void
conn_set_user_timeout(struct conn *c, unsigned ms)
{
	(void)c;
	(void)ms;
}

void
conn_reset(struct conn *c, const char *reason)
{
	conn_abort(c, reason);   /* no socket here: the reset is the abort */
}

void
conn_shed(struct conn *c)
{
	conn_end(c, "shed");
}
