/* s2s/sm.c - XEP-0198 stream management on one s2s stream: enable, acks, counters.
 * SPDX-License-Identifier: ISC
 * Used by stream.c for both roles. The initiator enables stream management once its
 * stream is authenticated, if the receiver offered it; from then on each side counts
 * the stanzas it handled from the other (h, answered to <r/> with <a h='h'/>), and the
 * sender learns from every <a/> how many of its stanzas the peer has taken. Counters
 * wrap at 2^32 (XEP-0198 §5). An <a/> that acknowledges more than was sent is a
 * protocol violation (undefined-condition, "handled-count-too-high"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sm.h"

bool
sm_tracking(const struct sm *m)
{
	return m->asked || m->on;
}

void
sm_enable(struct sm *m, struct buf *out)
{
	if (m->asked || m->on)
		return;
	buf_puts(out, "<enable xmlns='" NS_SM "'/>");
	m->asked = true;
	m->out = m->acked = 0;
}

void
sm_sent(struct sm *m)
{
	if (sm_tracking(m))
		m->out++;
}

static bool
pend_get(const struct sm *m, uint32_t seq)
{
	uint32_t i = seq & (m->pend_cap - 1);

	return (m->pend[i / 8] >> (i % 8)) & 1;
}

static void
pend_set(struct sm *m, uint32_t seq, bool v)
{
	uint32_t i = seq & (m->pend_cap - 1);

	if (v)
		m->pend[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		m->pend[i / 8] &= (uint8_t)~(1u << (i % 8));
}

/* Room for one more pending stanza: grow the ring (its bits keep their seqs). */
static int
pend_grow(struct sm *m)
{
	uint32_t cap = m->pend_cap ? m->pend_cap * 2 : 64, n = m->in - m->done;
	struct sm old = *m;
	uint8_t *p;

	if (cap > SM_PENDING_MAX || (p = calloc(cap / 8, 1)) == NULL)
		return -1;
	m->pend = p;
	m->pend_cap = cap;
	for (uint32_t k = 0; k < n; k++)
		pend_set(m, m->done + k, pend_get(&old, m->done + k));
	free(old.pend);
	return 0;
}

/* done moves past every released stanza at its front. */
static void
pend_advance(struct sm *m)
{
	while (m->done != m->in && pend_get(m, m->done)) {
		pend_set(m, m->done, false);
		m->done++;
	}
}

uint32_t
sm_handled(struct sm *m)
{
	uint32_t seq = m->in;

	if (!m->on)
		return 0;
	if (!m->gate) {
		m->done = ++m->in;
		return seq;
	}
	if (m->in - m->done + 1 > m->pend_cap && pend_grow(m) == -1) {
		/* no room to remember it: the oldest counts as handled */
		pend_set(m, m->done, true);
		pend_advance(m);
		m->forced++;
		if (m->in - m->done + 1 > m->pend_cap) {
			m->done++;
			pend_advance(m);
		}
	}
	pend_set(m, seq, false);
	m->in++;
	return seq;
}

bool
sm_released(struct sm *m, uint32_t seq)
{
	if (!m->on || !m->gate || seq - m->done >= m->in - m->done)
		return false;
	pend_set(m, seq, true);
	pend_advance(m);
	return m->a_owed && m->done - m->r_mark <= m->in - m->r_mark;
}

void
sm_answer(struct sm *m, struct buf *out)
{
	if (!m->a_owed)
		return;
	buf_printf(out, "<a xmlns='" NS_SM "' h='%u'/>", (unsigned)m->done);
	m->a_owed = false;
}

void
sm_free(struct sm *m)
{
	free(m->pend);
	m->pend = NULL;
	m->pend_cap = 0;
}

uint32_t
sm_unacked(const struct sm *m)
{
	return sm_tracking(m) ? m->out - m->acked : 0;
}

void
sm_request(struct sm *m, struct buf *out)
{
	if (!m->on || m->r_pending || sm_unacked(m) == 0)
		return;
	buf_puts(out, "<r xmlns='" NS_SM "'/>");
	m->r_pending = true;
}

bool
sm_probe(struct sm *m, struct buf *out)
{
	if (!m->on || m->r_pending)
		return false;
	buf_puts(out, "<r xmlns='" NS_SM "'/>");
	m->r_pending = true;
	return true;
}

/* h as XEP-0198 writes it: a decimal unsigned 32-bit integer, nothing else. */
static int
parse_h(const char *s, uint32_t *h)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9' || strlen(s) > 10)
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -1;
	*h = (uint32_t)v;
	return 0;
}

enum sm_event
sm_element(struct sm *m, const struct xnode *el, bool may_enable, struct buf *out,
    uint32_t *n, const char **why)
{
	uint32_t h, delta;

	*n = 0;
	if (strcmp(el->name, "enable") == 0) {
		if (!may_enable || m->on || m->asked) {
			buf_puts(out, "<failed xmlns='" NS_SM "'><unexpected-request xmlns="
			    "'urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
			return SM_DONE;
		}
		buf_puts(out, "<enabled xmlns='" NS_SM "'/>");
		m->on = true;
		m->in = m->out = m->acked = m->done = 0;
		return SM_DONE;
	}
	if (strcmp(el->name, "enabled") == 0) {
		if (!m->asked || m->on) {
			*why = "unexpected <enabled/>";
			return SM_ERROR;
		}
		m->on = true;
		m->in = m->done = 0;
		/* what went out behind <enable/> (the queue drained at ready) is asked
		 * about now: no later send may come to ask for it */
		sm_request(m, out);
		return SM_DONE;
	}
	if (strcmp(el->name, "failed") == 0) {
		if (!m->asked || m->on) {
			*why = "unexpected <failed/>";
			return SM_ERROR;
		}
		m->asked = false;
		m->out = m->acked = 0;
		return SM_FAILED;
	}
	if (strcmp(el->name, "r") == 0) {
		if (!m->on) {
			*why = "<r/> before stream management was enabled";
			return SM_ERROR;
		}
		m->a_owed = true;
		m->r_mark = m->in;
		if (m->done != m->in)
			return SM_OWED;   /* what came before it is still on its way */
		sm_answer(m, out);
		return SM_DONE;
	}
	if (strcmp(el->name, "a") == 0) {
		if (!m->on) {
			*why = "<a/> before stream management was enabled";
			return SM_ERROR;
		}
		if (parse_h(xnode_attr(el, "h"), &h) == -1) {
			*why = "<a/> without a valid h";
			return SM_ERROR;
		}
		delta = h - m->acked;
		if (delta > m->out - m->acked) {
			*why = "handled-count-too-high";
			return SM_ERROR;
		}
		m->acked = h;
		m->r_pending = false;
		*n = delta;
		return delta > 0 ? SM_ACKED : SM_DONE;
	}
	*why = "unknown stream management element";
	return SM_ERROR;
}
