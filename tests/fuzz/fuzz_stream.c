/* tests/fuzz/fuzz_stream.c - libFuzzer target for the s2s stream state machine.
 * SPDX-License-Identifier: ISC
 * Built by `make fuzz`. Byte 0 picks the role and side (receiver on the local or the
 * internet side, or an initiator) and how the fake owner behaves (TLS comes up after
 * start_tls or never, certificate verdicts, dialback verdicts); byte 1 the chunk size.
 * The rest is fed to the stream as the peer's plaintext. TLS is faked: stream.c only
 * asks the session for certificate verdicts, which are defined here. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "s2s/dialback.h"
#include "s2s/stanza.h"
#include "s2s/stream.h"
#include "s2s/xnode.h"
#include "tls/tls.h"

struct owner {
	unsigned ctl;
	bool tls_wanted, tls_up, closed;
	int verify_pending;
	char v_local[256], v_remote[256];
	struct stream *s;
};

static unsigned fake_ctl;
static int fake_token;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- fake TLS verdicts ---- */
bool
tls_session_peer_trusted(const struct tls_session *s)
{
	return (fake_ctl & 0x20) != 0;
}

bool
tls_session_peer_valid_for(const struct tls_session *s, const char *domain)
{
	return (fake_ctl & 0x20) != 0 && domain != NULL && strlen(domain) < 256;
}

const char *
tls_session_sni(const struct tls_session *s)
{
	return (fake_ctl & 0x40) ? "a.example" : NULL;
}

const char *
tls_session_peer_verdict(const struct tls_session *s)
{
	return (fake_ctl & 0x20) ? "ok" : "not trusted";
}

/* ---- owner ---- */
static void
op_start_tls(void *o)
{
	((struct owner *)o)->tls_wanted = true;
}

static void
op_close(void *o, const char *reason)
{
	if (reason == NULL)
		abort();
	((struct owner *)o)->closed = true;
}

static const struct tls_session *
op_tls(void *o)
{
	return ((struct owner *)o)->tls_up ? (const struct tls_session *)&fake_token : NULL;
}

static void
op_ready(void *o)
{
	struct owner *w = o;

	if (w->s != NULL && w->s->purpose == STREAM_VERIFY)
		(void)stream_send_verify(w->s, "b.example", "a.example", "id1", "key1");
}

static void
op_stanza(void *o, struct stanza *st)
{
	if (st->from == NULL || st->to == NULL || st->len != strlen(st->data))
		abort();
	stanza_free(st);
}

static void
op_verify_needed(void *o, const char *local, const char *remote, const char *id,
    const char *key)
{
	struct owner *w = o;

	if (local == NULL || remote == NULL || id == NULL || key == NULL)
		abort();
	w->verify_pending++;
	snprintf(w->v_local, sizeof(w->v_local), "%s", local);
	snprintf(w->v_remote, sizeof(w->v_remote), "%s", remote);
}

static void
op_verify_answer(void *o, const char *local, const char *remote, const char *id,
    bool valid)
{
	if (id == NULL || local == NULL || remote == NULL)
		abort();
}

static void
op_pair_verdict(void *o, const char *local, const char *remote, bool valid)
{
	if (local == NULL || remote == NULL)
		abort();
}

static void
op_acked(void *o, uint32_t n, bool failed)
{
}

static void
op_pipeline(void *o)
{
}

static bool
op_dane_lookup(void *o, const char *domain)
{
	return false;
}

static const struct stream_ops ops = {
	op_start_tls, op_close, op_tls, op_ready, op_stanza, op_verify_needed,
	op_verify_answer, op_pipeline, op_dane_lookup, op_pair_verdict, op_acked,
};

static struct cfg_domain dom_b = { .name = (char *)"b.example" };
static struct cfg_domain dom_a = { .name = (char *)"a.example", .next = &dom_b };
static struct cfg_peer peer_s = { .name = (char *)"secure.example", .secure_auth = true };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct config cfg;
	struct owner w;
	struct buf out;
	struct stream *s;
	enum stream_role role;
	enum stream_side side;
	const char *p;
	size_t len, off = 0, chunk;

	if (!init) {
		log_set_level(LOG_ERR);
		if (dialback_set_secret("fuzzsecret", 10) == -1)
			abort();
		init = true;
	}
	if (size < 2)
		return 0;
	memset(&w, 0, sizeof(w));
	w.ctl = fake_ctl = data[0];
	chunk = data[1] == 0 ? (size_t)-1 : data[1] % 64 + 1;
	p = (const char *)data + 2;
	len = size - 2;

	memset(&cfg, 0, sizeof(cfg));
	cfg.domains = &dom_a;
	cfg.peers = &peer_s;
	cfg.max_stanza_size = 4096;
	cfg.max_depth = 16;
	cfg.max_attributes = 16;
	cfg.max_name_length = 64;
	cfg.require_tls = (w.ctl & 0x80) != 0;
	cfg.dialback = true;
	cfg.sasl_external = true;
	cfg.pipelining = (w.ctl & 0x08) != 0;
	cfg.dane = true;
	cfg.held_bytes = 2048 + (size_t)(w.ctl & 0x20) * 256;   /* small: the budget is hit */
	cfg.memory_limit = (size_t)1 << 20;

	switch (w.ctl & 3) {
	case 0: role = STREAM_RECEIVER; side = STREAM_LOCAL; break;
	case 1: role = STREAM_RECEIVER; side = STREAM_INTERNET; break;
	case 2: role = STREAM_INITIATOR; side = STREAM_INTERNET; break;
	default: role = STREAM_INITIATOR; side = STREAM_LOCAL; break;
	}
	buf_init(&out, 1 << 20);
	s = stream_new(role, side,
	    role == STREAM_INITIATOR && (w.ctl & 0x20) ? STREAM_VERIFY : STREAM_RELAY, &cfg,
	    role == STREAM_RECEIVER ? "" : "a.example",
	    role == STREAM_RECEIVER ? "" : "c.example", &ops, &w, &out);
	if (s == NULL)
		abort();
	w.s = s;
	if (role == STREAM_INITIATOR) {
		s->pipeline = s->pipe_starttls = s->pipe_external = (w.ctl & 0x08) != 0;
		stream_start(s);
	}
	while (off < len && !w.closed) {
		size_t n = len - off < chunk ? len - off : chunk;
		ssize_t r = stream_input(s, p + off, n);

		if (r < 0)
			break;
		if ((size_t)r > n)
			abort();
		off += (size_t)r;
		if (w.tls_wanted && !w.tls_up) {
			if (!(w.ctl & 0x04))
				break;  /* TLS never comes up */
			w.tls_up = true;
			stream_tls_ready(s);
		} else if (r == 0) {
			break;    /* no progress: the stream waits for something else */
		}
		if (w.verify_pending > 0) {
			w.verify_pending = 0;
			if ((w.ctl & 0x30) == 0x20)
				stream_dialback_error(s, w.v_local, w.v_remote);
			else
				stream_dialback_verdict(s, w.v_local, w.v_remote, (w.ctl & 0x10) != 0);
		}
		buf_reset(&out);
	}
	if (w.ctl & 0x40) {
		struct xnode *m = xnode_new("message", NS_SERVER);
		struct stanza *st = NULL;

		if (m != NULL && xnode_set_attr(m, "from", "x@a.example") == 0 &&
		    xnode_set_attr(m, "to", "y@c.example") == 0 &&
		    (st = stanza_from_xnode(m)) != NULL)
			(void)stream_send(s, st);
		stanza_free(st);
		xnode_free(m);
		(void)stream_send_verify(s, "b.example", "a.example", "id", "key");
		stream_close(s, "fuzz done");
	}
	stream_free(s);
	buf_free(&out);
	return 0;
}
