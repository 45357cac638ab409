/* s2s/stream.c - the XMPP s2s stream state machine, both roles, no sockets.
 * SPDX-License-Identifier: ISC
 * Owned by link.c, which feeds it plaintext and TLS events from its conn and implements
 * struct stream_ops.
 * This file holds the protocol and the policy: stream headers and features, STARTTLS,
 * SASL EXTERNAL (XEP-0178), dialback (XEP-0220) in both roles, and the addressing rules
 * that keep quickfed from being an open relay (RFC 6120 §4.9.3, §8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

#include "../core/log.h"
#include "../core/stats.h"
#include "../tls/tls.h"
#include "dialback.h"
#include "jid.h"
#include "stanza.h"
#include "stream.h"
#include "xmlstream.h"

#define PAIR_INDEX_MIN 8   /* pairs a lookup walks; a larger table gets an index */

static void on_open(void *, const struct xnode *);
static void on_element(void *, struct xnode *);
static void on_close(void *);
static void on_error(void *, const char *, const char *);
static const char *me(const struct stream *);
static const char *peer(const struct stream *);
static void send_header(struct stream *);
static void send_features(struct stream *);
static bool peer_ok_for(const struct stream *, const struct tls_session *, const char *);
static void dane_start(struct stream *);
static void initiator_element(struct stream *, struct xnode *);
static void receiver_element(struct stream *, struct xnode *);
static void initiator_features(struct stream *, const struct xnode *);
static void receiver_auth(struct stream *, const struct xnode *);
static void receiver_db_result(struct stream *, const struct xnode *);
static void receiver_db_verify(struct stream *, const struct xnode *);
static void receiver_stanza(struct stream *, struct xnode *);
static void send_db_result(struct stream *);
static void enter(struct stream *, enum stream_state);
static void fail(struct stream *, const char *);
static bool secure_auth_for(const struct stream *, const char *);
static bool is_stanza(const struct xnode *);
static void b64_encode(const char *, char *, size_t);
static void release_held(struct stream *, size_t, bool);
static void discard_all_held(struct stream *, const char *);
static void hold(struct stream *, struct stream_pair *, struct xnode *);
static void send_db_error(struct stream *, const char *, const char *);
static bool bidi_allowed(const struct stream *);
static bool sm_allowed(const struct stream *);
static void become_ready(struct stream *);
static void sm_dispatch(struct stream *, const struct xnode *);
static void take(struct stream *, struct stanza *);
static void request_bidi(struct stream *);
static void initiator_pair_verdict(struct stream *, const struct xnode *, const char *);
static void initiator_stanza(struct stream *, struct xnode *);
static void deliver(struct stream *, struct xnode *);
static uint32_t pair_hash(const char *, const char *);
static void pair_index_put(struct stream *, size_t);
static void pair_index_build(struct stream *);
static struct stream_pair *pair_find(const struct stream *, const char *, const char *);
static struct stream_pair *pair_new(struct stream *, const char *, const char *);

static const struct xmlstream_cb xml_cb = { on_open, on_element, on_close, on_error };

static const char *const state_names[] = {
	"INIT", "WAIT_HEADER", "WAIT_FEATURES", "WAIT_PROCEED", "TLS", "WAIT_SASL",
	"WAIT_DB_RESULT", "WAIT_DB_VERIFY", "OPEN", "READY", "CLOSED",
};

const char *
stream_strstate(enum stream_state st)
{
	if ((size_t)st < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[st];
	return "?";
}

static void
copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

struct stream *
stream_new(enum stream_role role, enum stream_side side, enum stream_purpose purpose,
    const struct config *cfg, const char *local, const char *remote,
    const struct stream_ops *ops, void *owner, struct buf *out)
{
	struct stream *s;
	struct xml_limits lim;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->role = role;
	s->side = side;
	s->purpose = purpose;
	s->cfg = cfg;
	s->ops = ops;
	s->owner = owner;
	s->out = out;
	copy_str(s->local, sizeof(s->local), local);
	copy_str(s->remote, sizeof(s->remote), remote);
	lim.max_stanza_size = cfg->max_stanza_size;
	lim.max_depth = cfg->max_depth;
	lim.max_attributes = cfg->max_attributes;
	lim.max_name_length = cfg->max_name_length;
	lim.max_stanza_memory = cfg->max_stanza_memory;
	if ((s->xs = xmlstream_new(&lim, &xml_cb, s)) == NULL) {
		free(s);
		return NULL;
	}
	s->state = role == STREAM_INITIATOR ? SS_INIT : SS_WAIT_HEADER;
	/* on the internet, what the peer sends under stream management is acknowledged
	 * once quickfed passed it on, not when it was read (issue 11) */
	s->sm.gate = side == STREAM_INTERNET;
	return s;
}

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	s->sm.on = false;   /* nothing is acknowledged any more: releases are ignored */
	discard_all_held(s, s->close_reason ? s->close_reason : "stream freed");
	sm_free(&s->sm);
	for (size_t i = 0; i < s->n_pairs; i++)
		free(s->pairs[i].local);
	free(s->pairs);
	free(s->pair_index);
	free(s->dane_domain);
	xmlstream_free(s->xs);
	free(s);
}

int
stream_send_verify(struct stream *s, const char *local, const char *remote,
    const char *id, const char *key)
{
	size_t old = s->out->len;
	/* from the receiving server (us) to the authoritative one: on the loopback leg we
	 * are the remote domain and the local server is authoritative for local */
	const char *from = s->side == STREAM_LOCAL ? remote : local;
	const char *to = s->side == STREAM_LOCAL ? local : remote;

	if (s->purpose != STREAM_VERIFY || s->state != SS_WAIT_DB_VERIFY || s->end_sent)
		return -1;
	if (buf_printf(s->out, "<db:verify from='%s' to='%s' id='", from, to) == -1 ||
	    buf_put_xml_escaped(s->out, id, strlen(id)) == -1 || buf_puts(s->out, "'>") == -1 ||
	    buf_put_xml_escaped(s->out, key, strlen(key)) == -1 ||
	    buf_puts(s->out, "</db:verify>") == -1) {
		s->out->len = old;
		s->out->data[old] = '\0';
		return -1;
	}
	return 0;
}

static void
enter(struct stream *s, enum stream_state st)
{
	log_trace("conn=%lu stream %s -> %s", s->cid, stream_strstate(s->state),
	    stream_strstate(st));
	s->state = st;
}

bool
stream_is_ready(const struct stream *s)
{
	return s->state == SS_READY;
}

bool
stream_expects_input(const struct stream *s)
{
	return s->state != SS_CLOSED && s->state != SS_TLS && s->state != SS_INIT;
}

/* Close without a stream error: the peer or a policy ended it; reason is static. */
static void
fail(struct stream *s, const char *reason)
{
	if (s->state == SS_CLOSED)
		return;
	log_info("conn=%lu %s-%s local=%s remote=%s state=%s closing reason=%s", s->cid,
	    s->side == STREAM_INTERNET ? "s2s" : "local",
	    s->role == STREAM_INITIATOR ? "out" : "in", s->local, s->remote,
	    stream_strstate(s->state), reason);
	if (s->header_sent && !s->end_sent)
		buf_puts(s->out, "</stream:stream>");
	s->close_reason = reason;
	enter(s, SS_CLOSED);
	discard_all_held(s, reason);
	xmlstream_pause(s->xs);
	s->ops->close(s->owner, reason);
}

void
stream_close(struct stream *s, const char *reason)
{
	fail(s, reason);
}

void
stream_end(struct stream *s)
{
	if (s->state == SS_CLOSED || s->end_sent)
		return;
	if (!s->header_sent) {
		fail(s, "shutdown");   /* nothing said yet: nothing to wait for */
		return;
	}
	log_info("conn=%lu %s-%s local=%s remote=%s ending our direction, reading on until "
	    "the peer closes", s->cid, s->side == STREAM_INTERNET ? "s2s" : "local",
	    s->role == STREAM_INITIATOR ? "out" : "in", s->local, s->remote);
	buf_puts(s->out, "</stream:stream>");
	s->end_sent = true;
}

void
stream_error(struct stream *s, const char *cond, const char *text, const char *reason)
{
	if (s->state == SS_CLOSED)
		return;
	if (s->end_sent) {
		fail(s, reason);   /* nothing may follow our </stream:stream> */
		return;
	}
	log_warnx("conn=%lu %s-%s local=%s remote=%s stream-error=%s text=\"%s\"", s->cid,
	    s->side == STREAM_INTERNET ? "s2s" : "local",
	    s->role == STREAM_INITIATOR ? "out" : "in", s->local, s->remote, cond,
	    text ? text : "");
	if (!s->header_sent)
		send_header(s);
	buf_printf(s->out, "<stream:error><%s xmlns='" NS_STREAMS_E "'/>", cond);
	if (text != NULL) {
		buf_puts(s->out, "<text xmlns='" NS_STREAMS_E "'>");
		buf_put_xml_escaped(s->out, text, strlen(text));
		buf_puts(s->out, "</text>");
	}
	buf_puts(s->out, "</stream:error>");
	stats_stream_error(cond, 1);
	fail(s, reason);
}

/* The domain we speak as, and the one at the other end. On the loopback leg quickfed
 * stands for the remote domain and the local server for the local one. */
static const char *
me(const struct stream *s)
{
	return s->side == STREAM_LOCAL ? s->remote : s->local;
}

static const char *
peer(const struct stream *s)
{
	return s->side == STREAM_LOCAL ? s->local : s->remote;
}

static void
send_header(struct stream *s)
{
	const char *from = me(s), *to = peer(s);

	buf_puts(s->out, "<?xml version='1.0'?><stream:stream xmlns='" NS_SERVER "'"
	    " xmlns:stream='" NS_STREAM "' xmlns:db='" NS_DIALBACK "' version='1.0'");
	if (from[0] != '\0') {
		buf_puts(s->out, " from='");
		buf_put_xml_escaped(s->out, from, strlen(from));
		buf_puts(s->out, "'");
	}
	if (to[0] != '\0') {
		buf_puts(s->out, " to='");
		buf_put_xml_escaped(s->out, to, strlen(to));
		buf_puts(s->out, "'");
	}
	if (s->role == STREAM_RECEIVER)
		buf_printf(s->out, " id='%s'", s->id);
	buf_puts(s->out, ">");
	s->header_sent = true;
}

/* The peer's domain as this stream authenticates it: for the loopback leg the local
 * server's domain is the one that must prove itself. */
static bool
offer_external(const struct stream *s)
{
	const struct tls_session *t;

	if (s->side != STREAM_INTERNET || !s->tls_active || !s->cfg->sasl_external ||
	    s->sasl_done)
		return false;
	if ((t = s->ops->tls(s->owner)) == NULL)
		return false;
	if (s->remote[0] != '\0' && peer_ok_for(s, t, s->remote))
		return true;
	if (!tls_session_peer_trusted(t))
		return false;
	return s->remote[0] == '\0' || tls_session_peer_valid_for(t, s->remote);
}

/* Is the peer's certificate good for domain: PKIX and names, or (receiver) a match
 * with domain's secure TLSA records found by the incoming DANE lookup? */
static bool
peer_ok_for(const struct stream *s, const struct tls_session *t, const char *domain)
{
	if (t == NULL || domain == NULL)
		return false;
	if (tls_session_peer_valid_for(t, domain))
		return true;
	return s->role == STREAM_RECEIVER && s->dane_matched && s->dane_domain != NULL &&
	    strcasecmp(s->dane_domain, domain) == 0;
}

/* Receiver, TLS just established (peer named by its pre-TLS header) or the first
 * header under TLS: when the peer shows a certificate that is not PKIX-valid for its
 * domain, ask once for the domain's TLSA records; the features wait for the answer so
 * SASL EXTERNAL can be offered on a DANE match. */
static void
dane_start(struct stream *s)
{
	const struct tls_session *t = s->ops->tls(s->owner);

	if (s->role != STREAM_RECEIVER || s->side != STREAM_INTERNET ||
	    s->ops->dane_lookup == NULL || !s->cfg->dane || !s->cfg->sasl_external ||
	    s->remote[0] == '\0' || s->dane_domain != NULL || s->sasl_done ||
	    t == NULL ||
	    tls_session_peer_valid_for(t, s->remote) ||
	    strcmp(tls_session_peer_verdict(t), "no certificate") == 0)
		return;
	if ((s->dane_domain = strdup(s->remote)) == NULL)
		return;
	s->dane_pending = s->ops->dane_lookup(s->owner, s->dane_domain);
	if (s->dane_pending)
		log_debug("conn=%lu s2s-in remote=%s certificate not PKIX-valid (%s): asking "
		    "for its TLSA records", s->cid, s->remote, tls_session_peer_verdict(t));
}

void
stream_dane_result(struct stream *s, bool matched)
{
	if (!s->dane_pending)
		return;
	s->dane_pending = false;
	s->dane_matched = matched;
	log_info("conn=%lu s2s-in local=%s remote=%s incoming DANE: %s", s->cid, s->local,
	    s->dane_domain, matched ? "certificate matched a secure TLSA record" :
	    "no match (no usable secure TLSA record, or none matched)");
	if (s->features_held && s->state != SS_CLOSED) {
		s->features_held = false;
		send_features(s);
	}
}

/* XEP-0288 on this stream: on by policy, relay streams only, and on the internet only
 * under TLS (what travels back rides on the authentication of this direction). */
static bool
bidi_allowed(const struct stream *s)
{
	return s->cfg->bidi && s->purpose == STREAM_RELAY &&
	    (s->side == STREAM_LOCAL || s->tls_active);
}

/* XEP-0198 on this stream: on by policy, relay streams, on the internet under TLS. */
static bool
sm_allowed(const struct stream *s)
{
	return s->cfg->stream_management && s->purpose == STREAM_RELAY &&
	    (s->side == STREAM_LOCAL || s->tls_active);
}

/* Initiator: authenticated. Stream management first (when offered), so that every
 * stanza the owner sends from ready on is counted. */
static void
become_ready(struct stream *s)
{
	if (s->sm.offered && sm_allowed(s))
		sm_enable(&s->sm, s->out);
	enter(s, SS_READY);
	s->ops->ready(s->owner);
}

/* An element in urn:xmpp:sm:3, either role, once the stream is up. */
static void
sm_dispatch(struct stream *s, const struct xnode *el)
{
	const char *why = NULL;
	uint32_t n;
	bool authed = s->auth_method != NULL || s->sasl_done;

	if (s->state != SS_READY && s->state != SS_OPEN) {
		stream_error(s, "unsupported-stanza-type", "stream management before the "
		    "stream is open", "unexpected-element");
		return;
	}
	if (s->end_sent && strcmp(el->name, "a") != 0)
		return;   /* nothing may follow our </stream:stream>; acks are still taken */
	switch (sm_element(&s->sm, el, authed && sm_allowed(s) && s->role == STREAM_RECEIVER,
	    s->out, &n, &why)) {
	case SM_DONE:
		if (s->sm.on && strcmp(el->name, "enabled") == 0)
			qf_stats.sm_enabled++;   /* sm.c asked about what went out meanwhile */
		else if (s->sm.on && strcmp(el->name, "enable") == 0) {
			qf_stats.sm_enabled++;
			log_debug("conn=%lu %s-in remote=%s stream management enabled", s->cid,
			    s->side == STREAM_INTERNET ? "s2s" : "local", s->remote);
		}
		break;
	case SM_ACKED:
		qf_stats.sm_acked += n;
		if (s->ops->acked != NULL)
			s->ops->acked(s->owner, n, false);
		break;
	case SM_OWED:
		if (s->ops->ack_owed != NULL)
			s->ops->ack_owed(s->owner);
		break;
	case SM_FAILED:
		log_info("conn=%lu remote=%s refused stream management", s->cid, s->remote);
		if (s->ops->acked != NULL)
			s->ops->acked(s->owner, 0, true);
		break;
	case SM_ERROR:
		stream_error(s, "undefined-condition", why, "sm-violation");
		break;
	}
}

bool
stream_probe(struct stream *s)
{
	if (s->state == SS_CLOSED)
		return false;
	if (s->sm.on)
		return sm_probe(&s->sm, s->out) || s->sm.r_pending;
	buf_puts(s->out, " ");
	return false;
}

bool
stream_sm_released(struct stream *s, uint32_t seq)
{
	return s->state != SS_CLOSED && sm_released(&s->sm, seq);
}

void
stream_sm_answer(struct stream *s)
{
	if (s->state != SS_CLOSED && s->sm.on)
		sm_answer(&s->sm, s->out);
}

bool
stream_sm_waiting(const struct stream *s)
{
	return s->sm.on && s->sm.r_pending;
}

bool
stream_sm_tracking(const struct stream *s)
{
	return sm_tracking(&s->sm);
}

void
stream_sm_request(struct stream *s)
{
	if (s->state != SS_CLOSED)
		sm_request(&s->sm, s->out);
}

/* Initiator: ask for bidi (XEP-0288 §2.2), before authentication; no answer comes. */
static void
request_bidi(struct stream *s)
{
	if (s->bidi || s->role != STREAM_INITIATOR || !bidi_allowed(s) ||
	    s->auth_method != NULL)
		return;
	buf_puts(s->out, "<bidi xmlns='" NS_BIDI "'/>");
	s->bidi = true;
	qf_stats.bidi_streams++;
}

static void
send_features(struct stream *s)
{
	bool tls_needed = s->side == STREAM_INTERNET && !s->tls_active;

	buf_puts(s->out, "<stream:features>");
	if (s->cfg->pipelining)
		buf_puts(s->out, "<pipelining xmlns='" NS_PIPELINING "'/>");
	if (tls_needed) {
		buf_puts(s->out, "<starttls xmlns='" NS_TLS "'>");
		if (s->cfg->require_tls)
			buf_puts(s->out, "<required/>");
		buf_puts(s->out, "</starttls>");
		if (s->cfg->require_tls) {
			/* RFC 6120 §5.3.1: nothing else before TLS when it is mandatory. */
			buf_puts(s->out, "</stream:features>");
			return;
		}
	}
	if (bidi_allowed(s) && s->auth_method == NULL && !s->sasl_done)
		buf_puts(s->out, "<bidi xmlns='" NS_BIDI_FEAT "'/>");
	if (sm_allowed(s) && !s->sm.on)
		buf_puts(s->out, "<sm xmlns='" NS_SM "'/>");
	if (offer_external(s))
		buf_puts(s->out, "<mechanisms xmlns='" NS_SASL "'>"
		    "<mechanism>EXTERNAL</mechanism></mechanisms>");
	if (s->side == STREAM_LOCAL || s->cfg->dialback)
		buf_puts(s->out, "<dialback xmlns='" NS_DB_FEAT "'><errors/></dialback>");
	buf_puts(s->out, "</stream:features>");
}

void
stream_direct_tls(struct stream *s)
{
	s->direct_tls = true;
	enter(s, SS_TLS);
}

void
stream_start(struct stream *s)
{
	if (s->role != STREAM_INITIATOR || s->state != SS_INIT)
		return;
	send_header(s);
	if (s->pipe_starttls && s->side == STREAM_INTERNET) {
		/* XEP-0305: <starttls/> rides with the header; to a peer known to pipeline,
		 * the ClientHello does too (the owner starts TLS when it sees tls_preempt). */
		buf_puts(s->out, "<starttls xmlns='" NS_TLS "'/>");
		s->starttls_sent = true;
		s->tls_preempt = s->pipeline;
	}
	enter(s, SS_WAIT_HEADER);
}

ssize_t
stream_input(struct stream *s, const char *p, size_t len)
{
	ssize_t n;

	if (s->state == SS_CLOSED)
		return -1;
	if (s->features_held && s->state == SS_OPEN)
		return 0;                 /* incoming DANE: wait for stream_dane_result() */
	if (s->input_blocked || s->owner_paused)
		return 0;                 /* held budget or next hop full: wait to be woken */
	n = xmlstream_feed(s->xs, p, len);
	if (s->state == SS_CLOSED)
		return n < 0 ? (ssize_t)len : n;
	if (n < 0)
		return -1;
	if (s->restart_pending) {
		/* SASL success: the next bytes start a new stream. */
		s->restart_pending = false;
		s->header_sent = false;
		if (xmlstream_reset(s->xs) == -1) {
			fail(s, "out-of-memory");
			return n;
		}
		if (s->role == STREAM_INITIATOR && !s->restart_header_sent)
			send_header(s);
		s->restart_header_sent = false;
		enter(s, SS_WAIT_HEADER);
	}
	return n;
}

void
stream_tls_ready(struct stream *s)
{
	if (s->state != SS_TLS)
		return;
	s->tls_active = true;
	s->header_sent = false;
	qf_stats.tls_handshakes++;
	if (xmlstream_reset(s->xs) == -1) {
		fail(s, "out-of-memory");
		return;
	}
	enter(s, SS_WAIT_HEADER);
	if (s->role == STREAM_RECEIVER) {
		const struct tls_session *t = s->ops->tls(s->owner);
		const char *sni = t ? tls_session_sni(t) : NULL;

		if (s->local[0] == '\0' && sni != NULL && config_is_local(s->cfg, sni))
			copy_str(s->local, sizeof(s->local), sni);  /* direct TLS: SNI names us */
		dane_start(s);
		if (s->cfg->pipelining && s->local[0] != '\0') {
			/* XEP-0305: the restarted header and features go out with the server's
			 * last TLS flight, without waiting for the initiator's header. */
			dialback_stream_id(s->id);
			send_header(s);
			if (s->dane_pending)
				s->features_held = true;
			else
				send_features(s);
		}
		return;
	}
	send_header(s);
	if (s->pipeline && s->side == STREAM_INTERNET && s->pipe_external &&
	    s->cfg->sasl_external && s->purpose == STREAM_RELAY) {
		const struct tls_session *t = s->ops->tls(s->owner);

		if (t != NULL && tls_session_peer_valid_for(t, s->remote)) {
			char b64[400];

			/* header + [bidi] + auth + restarted header + stanzas in one flight */
			if (s->pipe_bidi)
				request_bidi(s);
			b64_encode(s->local, b64, sizeof(b64));
			buf_printf(s->out, "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>%s</auth>",
			    b64);
			s->auth_method = NULL;
			s->early_ok = true;
			s->restart_header_sent = true;
			s->header_sent = false;
			send_header(s);
			s->ops->pipeline(s->owner);
		}
	}
}

/* ---- XML events ---- */

static void
on_open(void *arg, const struct xnode *h)
{
	struct stream *s = arg;
	const char *ns = xnode_attr(h, "xmlns");
	const char *version = xnode_attr(h, "version");
	const char *from = xnode_attr(h, "from"), *to = xnode_attr(h, "to");
	char fd[256] = "", td[256] = "";

	if (s->state == SS_CLOSED)
		return;
	if (s->state != SS_WAIT_HEADER) {
		stream_error(s, "not-well-formed", "unexpected stream header", "bad-header");
		return;
	}
	if (ns == NULL || strcmp(ns, NS_SERVER) != 0) {
		stream_error(s, "invalid-namespace", "expected jabber:server", "invalid-namespace");
		return;
	}
	if (version == NULL || strncmp(version, "1.", 2) != 0) {
		stream_error(s, "unsupported-version", "version 1.0 is required",
		    "unsupported-version");
		return;
	}
	if ((from && from[0] && jid_domain_only(from, fd, sizeof(fd)) == -1) ||
	    (to && to[0] && jid_domain_only(to, td, sizeof(td)) == -1)) {
		stream_error(s, "improper-addressing", "bad from/to", "improper-addressing");
		return;
	}
	if (s->role == STREAM_INITIATOR) {
		const char *id = xnode_attr(h, "id");

		if (id == NULL || id[0] == '\0' || strlen(id) >= sizeof(s->id)) {
			stream_error(s, "invalid-id", "missing or overlong stream id", "invalid-id");
			return;
		}
		copy_str(s->id, sizeof(s->id), id);
		enter(s, SS_WAIT_FEATURES);
		if (s->pipeline && s->tls_active && !s->early_ok && s->auth_method == NULL &&
		    s->purpose == STREAM_RELAY && s->side == STREAM_INTERNET &&
		    (s->cfg->dialback) && !s->restart_header_sent) {
			const struct tls_session *t = s->ops->tls(s->owner);
			bool valid = t != NULL && tls_session_peer_valid_for(t, s->remote);

			if (!s->pipe_external || !valid) {
				if (!valid && secure_auth_for(s, s->remote)) {
					fail(s, "peer-certificate-invalid");
					return;
				}
				/* pipelined dialback: the key needs this header's id */
				s->early_ok = true;
				if (s->pipe_bidi)
					request_bidi(s);
				send_db_result(s);
				s->ops->pipeline(s->owner);
			}
		}
		return;
	}
	/* Receiver. */
	if (s->side == STREAM_INTERNET) {
		if (td[0] == '\0' || !config_is_local(s->cfg, td)) {
			copy_str(s->local, sizeof(s->local), td);
			stream_error(s, "host-unknown", "not a domain served here", "host-unknown");
			return;
		}
		if (fd[0] != '\0' && config_is_local(s->cfg, fd)) {
			stream_error(s, "invalid-from", "a local domain cannot come from outside",
			    "invalid-from");
			return;
		}
		if (s->local[0] != '\0' && s->tls_active && !domain_eq(s->local, td)) {
			/* A restart (after TLS or SASL) keeps the stream's pair: what was
			 * authenticated for one local domain is not carried to another. */
			stream_error(s, "host-unknown", "a restarted stream must name the same "
			    "domain", "restart-changed-domain");
			return;
		}
		if (s->local[0] == '\0' || !s->tls_active)
			copy_str(s->local, sizeof(s->local), td);
		if (fd[0] != '\0' && s->remote[0] == '\0')
			copy_str(s->remote, sizeof(s->remote), fd);
	} else {
		if (fd[0] == '\0' || !config_is_local(s->cfg, fd)) {
			copy_str(s->remote, sizeof(s->remote), td);
			stream_error(s, "invalid-from", "only local domains may use this listener",
			    "invalid-from");
			return;
		}
		if (td[0] == '\0' || config_is_local(s->cfg, td)) {
			stream_error(s, "host-unknown", "destination must be a remote domain",
			    "host-unknown");
			return;
		}
		copy_str(s->local, sizeof(s->local), fd);
		copy_str(s->remote, sizeof(s->remote), td);
	}
	if (s->side == STREAM_INTERNET && s->tls_active)
		dane_start(s);            /* no 'from' before TLS: now we know the peer */
	if (!s->header_sent) {
		dialback_stream_id(s->id);
		send_header(s);
		if (s->dane_pending)
			s->features_held = true;  /* stream_dane_result() sends them */
		else
			send_features(s);
	}
	if (s->features_held)
		xmlstream_pause(s->xs);   /* nothing after the header is read until then */
	enter(s, SS_OPEN);
}

static void
on_close(void *arg)
{
	struct stream *s = arg;

	if (s->state == SS_CLOSED)
		return;
	fail(s, "peer-closed");
}

static void
on_error(void *arg, const char *cond, const char *text)
{
	struct stream *s = arg;

	stream_error(s, cond, text, cond);
}

static void
on_element(void *arg, struct xnode *el)
{
	struct stream *s = arg;

	if (s->state == SS_CLOSED) {
		xnode_free(el);
		return;
	}
	if (strcmp(el->ns, NS_STREAM) == 0 && strcmp(el->name, "error") == 0) {
		const char *cond = "undefined-condition";

		for (struct xnode *c = el->children; c; c = c->next)
			if (!c->is_text && strcmp(c->ns, NS_STREAMS_E) == 0 &&
			    strcmp(c->name, "text") != 0) {
				cond = c->name;
				break;
			}
		log_warnx("conn=%lu remote=%s sent stream error %s", s->cid, s->remote, cond);
		stats_stream_error(cond, 0);
		xnode_free(el);
		fail(s, "peer-stream-error");
		return;
	}
	if (strcmp(el->ns, NS_SM) == 0) {
		sm_dispatch(s, el);
		xnode_free(el);
		return;
	}
	if (s->role == STREAM_INITIATOR)
		initiator_element(s, el);
	else
		receiver_element(s, el);
}

/* ---- initiator ---- */

static bool
secure_auth_for(const struct stream *s, const char *domain)
{
	const struct cfg_peer *p = config_peer(s->cfg, domain);

	return p ? p->secure_auth : s->cfg->secure_auth;
}

static void
send_db_result(struct stream *s)
{
	char key[DIALBACK_KEY_LEN + 1];

	if (dialback_key(peer(s), me(s), s->id, key) == -1) {
		fail(s, "no-dialback-secret");
		return;
	}
	buf_printf(s->out, "<db:result from='%s' to='%s'>%s</db:result>", me(s), peer(s),
	    key);
	enter(s, SS_WAIT_DB_RESULT);
}

static void
initiator_features(struct stream *s, const struct xnode *f)
{
	const struct xnode *mechs = xnode_child(f, "mechanisms", NS_SASL);
	bool want_tls = s->side == STREAM_INTERNET || s->cfg->local_server_tls;
	bool external = false;

	if (!s->tls_active) {
		s->peer_starttls = xnode_child(f, "starttls", NS_TLS) != NULL;
	} else {
		s->peer_pipelining |= xnode_child(f, "pipelining", NS_PIPELINING) != NULL;
		s->peer_bidi |= xnode_child(f, "bidi", NS_BIDI_FEAT) != NULL;
	}
	if (s->starttls_sent && !s->tls_active) {
		if (!s->peer_starttls) {
			fail(s, "pipelined-starttls-refused");
			return;
		}
		enter(s, SS_WAIT_PROCEED);
		return;
	}
	if (s->early_ok && s->restart_header_sent) {
		/* our pipelined <auth/> is already on its way */
		enter(s, SS_WAIT_SASL);
		return;
	}
	if (!s->tls_active && want_tls) {
		if (s->peer_starttls) {
			buf_puts(s->out, "<starttls xmlns='" NS_TLS "'/>");
			enter(s, SS_WAIT_PROCEED);
			return;
		}
		if (s->side == STREAM_INTERNET && s->cfg->require_tls) {
			fail(s, "peer-offers-no-starttls");
			return;
		}
	}
	if (s->purpose == STREAM_VERIFY) {
		/* the owner sends its db:verify requests now (stream_send_verify) */
		enter(s, SS_WAIT_DB_VERIFY);
		s->ops->ready(s->owner);
		return;
	}
	if (s->auth_method != NULL) {  /* features after the SASL restart */
		s->sm.offered |= xnode_child(f, "sm", NS_SM) != NULL;
		become_ready(s);
		return;
	}
	s->db_offered = xnode_child(f, "dialback", NS_DB_FEAT) != NULL;
	s->peer_bidi |= xnode_child(f, "bidi", NS_BIDI_FEAT) != NULL;
	s->sm.offered |= xnode_child(f, "sm", NS_SM) != NULL;
	if (s->peer_bidi)
		request_bidi(s);
	if (s->side == STREAM_INTERNET && s->tls_active) {
		const struct tls_session *t = s->ops->tls(s->owner);
		bool valid = t != NULL && tls_session_peer_valid_for(t, s->remote);

		if (!valid && secure_auth_for(s, s->remote)) {
			log_warnx("conn=%lu s2s-out local=%s remote=%s certificate refused: not "
			    "valid for %s (chain: %s)", s->cid, s->local, s->remote, s->remote,
			    t ? tls_session_peer_verdict(t) : "no TLS");
			qf_stats.auth_failures++;
			fail(s, "peer-certificate-invalid");
			return;
		}
		if (!valid)
			log_info("conn=%lu s2s-out remote=%s certificate not valid (%s): "
			    "dialback only", s->cid, s->remote,
			    t ? tls_session_peer_verdict(t) : "no TLS");
		for (const struct xnode *m = mechs ? mechs->children : NULL; m; m = m->next) {
			char *txt;

			if (m->is_text || strcmp(m->name, "mechanism") != 0)
				continue;
			if ((txt = xnode_text(m)) != NULL && strcmp(txt, "EXTERNAL") == 0)
				external = true;
			free(txt);
		}
		if (external && s->cfg->sasl_external && valid) {
			char b64[400];

			b64_encode(s->local, b64, sizeof(b64));
			buf_printf(s->out, "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>%s</auth>",
			    b64);
			enter(s, SS_WAIT_SASL);
			return;
		}
	}
	if (s->side == STREAM_LOCAL || s->cfg->dialback) {
		send_db_result(s);
		return;
	}
	fail(s, "no-usable-authentication");
}

static void
initiator_element(struct stream *s, struct xnode *el)
{
	const char *type = xnode_attr(el, "type");

	switch (s->state) {
	case SS_WAIT_FEATURES:
		if (strcmp(el->ns, NS_STREAM) == 0 && strcmp(el->name, "features") == 0)
			initiator_features(s, el);
		else
			stream_error(s, "unsupported-stanza-type", "features expected",
			    "unexpected-element");
		break;
	case SS_WAIT_PROCEED:
		if (strcmp(el->ns, NS_TLS) == 0 && strcmp(el->name, "proceed") == 0) {
			enter(s, SS_TLS);
			xmlstream_pause(s->xs);
			s->ops->start_tls(s->owner);
		} else {
			fail(s, "starttls-refused");
		}
		break;
	case SS_WAIT_SASL:
		if (strcmp(el->ns, NS_SASL) == 0 && strcmp(el->name, "success") == 0) {
			s->auth_method = "external";
			qf_stats.auth_external++;
			s->restart_pending = true;
			xmlstream_pause(s->xs);
		} else if (s->early_ok) {
			qf_stats.auth_failures++;
			fail(s, "pipelined-auth-refused");
		} else if (s->db_offered && (s->cfg->dialback || s->side == STREAM_LOCAL)) {
			log_info("conn=%lu s2s-out remote=%s SASL EXTERNAL refused, trying dialback",
			    s->cid, s->remote);
			send_db_result(s);
		} else {
			qf_stats.auth_failures++;
			fail(s, "sasl-external-refused");
		}
		break;
	case SS_WAIT_DB_RESULT:
		if (s->early_ok && strcmp(el->ns, NS_STREAM) == 0 &&
		    strcmp(el->name, "features") == 0) {
			s->peer_pipelining |= xnode_child(el, "pipelining", NS_PIPELINING) != NULL;
			s->peer_bidi |= xnode_child(el, "bidi", NS_BIDI_FEAT) != NULL;
			s->sm.offered |= xnode_child(el, "sm", NS_SM) != NULL;
			s->db_offered = xnode_child(el, "dialback", NS_DB_FEAT) != NULL;
		} else if (strcmp(el->ns, NS_DIALBACK) != 0 || strcmp(el->name, "result") != 0) {
			stream_error(s, "not-authorized", "dialback result expected",
			    "unexpected-element");
		} else if (type != NULL && strcmp(type, "valid") == 0) {
			s->auth_method = "dialback";
			qf_stats.auth_dialback++;
			become_ready(s);
		} else {
			qf_stats.auth_failures++;
			fail(s, s->early_ok ? "pipelined-auth-refused" : "dialback-refused");
		}
		break;
	case SS_WAIT_DB_VERIFY:
		if (strcmp(el->ns, NS_DIALBACK) == 0 && strcmp(el->name, "verify") == 0) {
			const char *id = xnode_attr(el, "id");
			char fd[256], td[256];

			/* an answer names the authoritative server's domain and ours; the owner
			 * matches (id, local, remote) with what it asked */
			if (id == NULL || jid_domain(xnode_attr(el, "from"), fd, sizeof(fd)) == -1 ||
			    jid_domain(xnode_attr(el, "to"), td, sizeof(td)) == -1) {
				stream_error(s, "improper-addressing", "db:verify answer needs from, "
				    "to and id", "bad-verify-answer");
				break;
			}
			s->ops->verify_answer(s->owner, s->side == STREAM_LOCAL ? fd : td,
			    s->side == STREAM_LOCAL ? td : fd, id,
			    type != NULL && strcmp(type, "valid") == 0);
		} else {
			stream_error(s, "unsupported-stanza-type", "db:verify answer expected",
			    "unexpected-element");
		}
		break;
	case SS_READY:
		if (strcmp(el->ns, NS_DIALBACK) == 0 && strcmp(el->name, "result") == 0) {
			initiator_pair_verdict(s, el, type);
			break;
		}
		if (s->bidi && is_stanza(el)) {
			initiator_stanza(s, el);
			return;   /* ownership passed on */
		}
		/* FALLTHROUGH */
	default:
		/* Stanzas on a stream we initiated: only with bidi (XEP-0288). */
		stream_error(s, "unsupported-stanza-type", s->bidi ? "unexpected element" :
		    "this stream is one-way (no bidi)", "unexpected-element");
		break;
	}
	xnode_free(el);
}

/* FNV-1a over the ASCII-lower-cased pair, with a separator between the names. */
static uint32_t
pair_hash(const char *local, const char *remote)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)local; *p != '\0'; p++)
		h = (h ^ (uint32_t)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p)) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (const unsigned char *p = (const unsigned char *)remote; *p != '\0'; p++)
		h = (h ^ (uint32_t)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p)) * 16777619u;
	return h;
}

static void
pair_index_put(struct stream *s, size_t i)
{
	size_t b = s->pairs[i].hash & s->pair_index_mask;

	while (s->pair_index[b] != 0)
		b = (b + 1) & s->pair_index_mask;
	s->pair_index[b] = (uint32_t)(i + 1);
}

/* (Re)build the index over the whole table, or drop it while the table is small. Out
 * of memory leaves none: the table is walked then. */
static void
pair_index_build(struct stream *s)
{
	size_t size = 32;

	free(s->pair_index);
	s->pair_index = NULL;
	s->pair_index_mask = 0;
	if (s->n_pairs <= PAIR_INDEX_MIN)
		return;
	while (size < 2 * s->n_pairs)
		size *= 2;
	if ((s->pair_index = calloc(size, sizeof(*s->pair_index))) == NULL)
		return;
	s->pair_index_mask = size - 1;
	for (size_t i = 0; i < s->n_pairs; i++)
		pair_index_put(s, i);
}

/* The pair (local, remote) in the table, or NULL: through the index when the table has
 * one, else along it (names compared only where the hashes agree). */
static struct stream_pair *
pair_find(const struct stream *s, const char *local, const char *remote)
{
	uint32_t h = pair_hash(local, remote);

	if (s->pair_index != NULL) {
		for (size_t b = h & s->pair_index_mask; s->pair_index[b] != 0;
		    b = (b + 1) & s->pair_index_mask) {
			struct stream_pair *p = &s->pairs[s->pair_index[b] - 1];

			if (p->hash == h && domain_eq(p->local, local) &&
			    domain_eq(p->remote, remote))
				return p;
		}
		return NULL;
	}
	for (size_t i = 0; i < s->n_pairs; i++)
		if (s->pairs[i].hash == h && domain_eq(s->pairs[i].local, local) &&
		    domain_eq(s->pairs[i].remote, remote))
			return &s->pairs[i];
	return NULL;
}

/* What the pair table takes of limits { held }: its entries and their names. */
static size_t
pairs_cost(const struct stream *s)
{
	return s->n_pairs * sizeof(*s->pairs) + s->pair_names;
}

/* A new entry in the pair table, within the stream's share of limits { held }; NULL
 * when the budget or memory says no. Names longer than 255 bytes are cut there (as the
 * stream's own names are). */
static struct stream_pair *
pair_new(struct stream *s, const char *local, const char *remote)
{
	struct stream_pair *p;
	size_t ll = strnlen(local, 255), rl = strnlen(remote, 255), need = ll + rl + 2;
	char *names;

	if (pairs_cost(s) + sizeof(*s->pairs) + need + s->held_bytes > s->cfg->held_bytes)
		return NULL;
	if (s->n_pairs == s->cap_pairs) {
		/* most streams carry one pair: start with room for it */
		size_t cap = s->cap_pairs ? s->cap_pairs * 2 : 1;
		struct stream_pair *np = realloc(s->pairs, cap * sizeof(*np));

		if (np == NULL)
			return NULL;
		memset(np + s->cap_pairs, 0, (cap - s->cap_pairs) * sizeof(*np));
		s->pairs = np;
		s->cap_pairs = cap;
	}
	if ((names = malloc(need)) == NULL)
		return NULL;
	memcpy(names, local, ll);
	names[ll] = '\0';
	memcpy(names + ll + 1, remote, rl);
	names[ll + 1 + rl] = '\0';
	s->pair_names += need;
	p = &s->pairs[s->n_pairs++];
	memset(p, 0, sizeof(*p));
	p->local = names;
	p->remote = names + ll + 1;
	p->hash = pair_hash(p->local, p->remote);
	if (s->pair_index == NULL || 2 * s->n_pairs > s->pair_index_mask + 1)
		pair_index_build(s);
	else
		pair_index_put(s, s->n_pairs - 1);
	if (s->ops->pair_added != NULL)
		s->ops->pair_added(s->owner, p->local, p->remote);
	return p;
}

int
stream_add_pair(struct stream *s, const char *local, const char *remote)
{
	const char *from = s->side == STREAM_LOCAL ? remote : local;
	const char *to = s->side == STREAM_LOCAL ? local : remote;
	char key[DIALBACK_KEY_LEN + 1];
	struct stream_pair *p;
	size_t old = s->out->len;

	if (s->role != STREAM_INITIATOR || s->purpose != STREAM_RELAY || s->state != SS_READY ||
	    s->end_sent)
		return -1;
	if (domain_eq(local, s->local) && domain_eq(remote, s->remote))
		return 0;                       /* the stream's own pair */
	if ((p = pair_find(s, local, remote)) != NULL)
		return 0;                       /* asked already (or valid) */
	if (dialback_key(to, from, s->id, key) == -1)
		return -1;
	if (buf_printf(s->out, "<db:result from='%s' to='%s'>%s</db:result>", from, to,
	    key) == -1) {
		s->out->len = old;
		s->out->data[old] = '\0';
		return -1;
	}
	if ((p = pair_new(s, local, remote)) == NULL) {
		s->out->len = old;
		s->out->data[old] = '\0';
		return -1;
	}
	p->pending = true;
	s->n_asked++;
	qf_stats.pairs_piggybacked++;
	log_debug("conn=%lu %s-out local=%s remote=%s piggybacked db:result for local=%s "
	    "remote=%s", s->cid, s->side == STREAM_INTERNET ? "s2s" : "local", s->local,
	    s->remote, local, remote);
	return 0;
}

/* Initiator, ready: the receiving server's verdict on a pair we added. On the internet
 * it comes from their domain to ours; on the loopback leg from the local server's
 * domain to the remote one we speak as. */
static void
initiator_pair_verdict(struct stream *s, const struct xnode *el, const char *type)
{
	char fd[256], td[256];
	const char *local, *remote;
	struct stream_pair *p;
	bool valid = type != NULL && strcmp(type, "valid") == 0;

	if (jid_domain_only(xnode_attr(el, "from"), fd, sizeof(fd)) == -1 ||
	    jid_domain_only(xnode_attr(el, "to"), td, sizeof(td)) == -1) {
		stream_error(s, "improper-addressing", "db:result needs from and to",
		    "improper-addressing");
		return;
	}
	local = s->side == STREAM_INTERNET ? td : fd;
	remote = s->side == STREAM_INTERNET ? fd : td;
	if ((p = pair_find(s, local, remote)) == NULL || !p->pending) {
		log_debug("conn=%lu db:result for local=%s remote=%s not asked for: ignored",
		    s->cid, local, remote);
		return;
	}
	p->pending = false;
	s->n_asked--;
	if (valid) {
		p->valid = true;
		log_info("conn=%lu %s-out local=%s remote=%s authenticated on the stream of "
		    "local=%s remote=%s (piggybacked dialback)", s->cid,
		    s->side == STREAM_INTERNET ? "s2s" : "local", p->local, p->remote,
		    s->local, s->remote);
	} else {
		char *names = p->local;

		log_warnx("conn=%lu %s-out local=%s remote=%s piggybacked dialback refused "
		    "(type=%s)", s->cid, s->side == STREAM_INTERNET ? "s2s" : "local", local,
		    remote, type ? type : "none");
		s->pair_names -= strlen(p->local) + strlen(p->remote) + 2;
		*p = s->pairs[--s->n_pairs];   /* the stream stays for the others */
		free(names);
		pair_index_build(s);
	}
	if (s->ops->pair_verdict != NULL)
		s->ops->pair_verdict(s->owner, local, remote, valid);
}

bool
stream_may_send(const struct stream *s, const char *local, const char *remote)
{
	/* the domain the peer sees as the sender: ours on the internet, the remote one
	 * we speak as on the loopback leg */
	const char *from = s->side == STREAM_LOCAL ? remote : local;

	if (s->role != STREAM_INITIATOR || s->n_asked == 0)
		return true;   /* the per-stanza case: nothing to look at */
	for (size_t i = 0; i < s->n_pairs; i++) {
		const struct stream_pair *p = &s->pairs[i];

		if (p->pending && domain_eq(s->side == STREAM_LOCAL ? p->remote : p->local, from))
			return false;
	}
	return true;
}

bool
stream_peer_covers(const struct stream *s, const char *domain)
{
	const struct tls_session *t = s->ops->tls(s->owner);

	return t != NULL && peer_ok_for(s, t, domain);
}

bool
stream_carries(const struct stream *s, const char *local, const char *remote)
{
	const struct stream_pair *p;

	if (s->state == SS_CLOSED || s->purpose != STREAM_RELAY)
		return false;
	if (s->role == STREAM_INITIATOR) {
		if (s->state != SS_READY)
			return false;
		if (domain_eq(local, s->local) && domain_eq(remote, s->remote))
			return true;
	} else {
		if (!s->bidi || s->state != SS_OPEN)
			return false;
		if (s->sasl_done && domain_eq(local, s->local) && domain_eq(remote, s->remote))
			return true;
	}
	p = pair_find(s, local, remote);
	return p != NULL && p->valid;
}

/* Initiator with bidi: a stanza coming back. It must belong to a pair this stream
 * authenticated in our direction (our own, or one added and found valid), reversed;
 * on the internet an added pair's domain must also be covered by the certificate the
 * receiving server showed (the only proof of who it is, besides DNS). */
static void
initiator_stanza(struct stream *s, struct xnode *el)
{
	char fd[256], td[256];
	const char *local, *remote;
	bool ok;

	if (jid_domain(xnode_attr(el, "from"), fd, sizeof(fd)) == -1 ||
	    jid_domain(xnode_attr(el, "to"), td, sizeof(td)) == -1) {
		xnode_free(el);
		stream_error(s, "improper-addressing", "stanza needs from and to",
		    "improper-addressing");
		return;
	}
	/* the pair as this stream names it: (our domain, theirs) */
	local = s->side == STREAM_INTERNET ? td : fd;
	remote = s->side == STREAM_INTERNET ? fd : td;
	if (s->side == STREAM_INTERNET && !config_is_local(s->cfg, td)) {
		xnode_free(el);
		stream_error(s, "host-unknown", "no relaying to other domains",
		    "open-relay-attempt");
		return;
	}
	if (s->side == STREAM_LOCAL && (!config_is_local(s->cfg, fd) ||
	    config_is_local(s->cfg, td))) {
		xnode_free(el);
		stream_error(s, "invalid-from", "only local domains may send here",
		    "invalid-from");
		return;
	}
	ok = domain_eq(local, s->local) && domain_eq(remote, s->remote);
	if (!ok) {
		struct stream_pair *p = pair_find(s, local, remote);

		ok = p != NULL && p->valid &&
		    (s->side == STREAM_LOCAL || stream_peer_covers(s, remote));
	}
	if (!ok) {
		xnode_free(el);
		stream_error(s, "invalid-from", "sender domain not authenticated on this stream",
		    "invalid-from");
		return;
	}
	deliver(s, el);
}

/* ---- receiver ---- */

static void
receiver_element(struct stream *s, struct xnode *el)
{
	if (s->state != SS_OPEN) {
		stream_error(s, "not-authorized", "element before the stream is open",
		    "unexpected-element");
		xnode_free(el);
		return;
	}
	if (strcmp(el->ns, NS_TLS) == 0 && strcmp(el->name, "starttls") == 0) {
		if (s->side != STREAM_INTERNET || s->tls_active) {
			buf_puts(s->out, "<failure xmlns='" NS_TLS "'/>");
			fail(s, "starttls-not-available");
		} else {
			buf_puts(s->out, "<proceed xmlns='" NS_TLS "'/>");
			enter(s, SS_TLS);
			xmlstream_pause(s->xs);
			s->ops->start_tls(s->owner);
		}
		xnode_free(el);
		return;
	}
	if (s->side == STREAM_INTERNET && !s->tls_active && s->cfg->require_tls) {
		stream_error(s, "policy-violation", "STARTTLS is required", "tls-required");
		xnode_free(el);
		return;
	}
	if (strcmp(el->ns, NS_SASL) == 0 && strcmp(el->name, "auth") == 0)
		receiver_auth(s, el);
	else if (strcmp(el->ns, NS_DIALBACK) == 0 && strcmp(el->name, "result") == 0)
		receiver_db_result(s, el);
	else if (strcmp(el->ns, NS_DIALBACK) == 0 && strcmp(el->name, "verify") == 0)
		receiver_db_verify(s, el);
	else if (strcmp(el->ns, NS_BIDI) == 0 && strcmp(el->name, "bidi") == 0 &&
	    bidi_allowed(s) && s->auth_method == NULL && !s->sasl_done) {
		s->bidi = true;   /* XEP-0288: no answer; the pairs authenticated here go back */
		qf_stats.bidi_streams++;
		log_debug("conn=%lu %s-in remote=%s bidi requested", s->cid,
		    s->side == STREAM_INTERNET ? "s2s" : "local", s->remote);
	} else if (is_stanza(el)) {
		receiver_stanza(s, el);
		return;  /* ownership passed on */
	} else
		stream_error(s, "unsupported-stanza-type", NULL, "unsupported-stanza-type");
	xnode_free(el);
}

static void
receiver_auth(struct stream *s, const struct xnode *el)
{
	const char *mech = xnode_attr(el, "mechanism");
	const struct tls_session *t = s->ops->tls(s->owner);
	char *txt = xnode_text(el);
	char authz[256] = "";

	if (mech == NULL || strcmp(mech, "EXTERNAL") != 0 || s->side != STREAM_INTERNET ||
	    !s->tls_active || !s->cfg->sasl_external || s->sasl_done ||
	    t == NULL || txt == NULL)
		goto refuse;
	if (txt[0] != '\0' && strcmp(txt, "=") != 0) {
		unsigned char dec[256];
		word32 dlen = sizeof(dec) - 1;
		size_t tl = strlen(txt);

		if (tl > 340 || Base64_Decode((const byte *)txt, (word32)tl, dec, &dlen) != 0)
			goto refuse;
		dec[dlen] = '\0';
		if (jid_domain((const char *)dec, authz, sizeof(authz)) == -1)
			goto refuse;
	} else if (s->remote[0] != '\0') {
		copy_str(authz, sizeof(authz), s->remote);
	} else {
		goto refuse;
	}
	if (config_is_local(s->cfg, authz) || !peer_ok_for(s, t, authz)) {
		log_warnx("conn=%lu s2s-in SASL EXTERNAL as %s refused: %s", s->cid, authz,
		    tls_session_peer_verdict(t));
		goto refuse;
	}
	free(txt);
	s->sasl_done = true;
	copy_str(s->remote, sizeof(s->remote), authz);
	s->auth_method = "external";
	qf_stats.auth_external++;
	if (s->ops->pair_added != NULL)
		s->ops->pair_added(s->owner, s->local, s->remote);
	log_info("conn=%lu s2s-in local=%s remote=%s authenticated method=external",
	    s->cid, s->local, s->remote);
	buf_puts(s->out, "<success xmlns='" NS_SASL "'/>");
	s->restart_pending = true;
	xmlstream_pause(s->xs);
	return;
refuse:
	free(txt);
	qf_stats.auth_failures++;
	buf_puts(s->out, "<failure xmlns='" NS_SASL "'><not-authorized/></failure>");
	/* EXTERNAL is offered only when it will succeed, so a failure means the peer
	 * asked for another identity; whatever it pipelined behind must not be read. */
	stream_error(s, "not-authorized", "SASL EXTERNAL failed", "sasl-external-failed");
}

/* Domains of a dialback element checked for the side; returns false after a stream
 * error. On the internet side `to` is ours; on the loopback side `from` is ours. */
static bool
db_addressing(struct stream *s, const struct xnode *el, char *ours, char *theirs)
{
	const char *from = xnode_attr(el, "from"), *to = xnode_attr(el, "to");
	char fd[256], td[256];

	if (jid_domain_only(from, fd, sizeof(fd)) == -1 ||
	    jid_domain_only(to, td, sizeof(td)) == -1) {
		stream_error(s, "improper-addressing", "dialback needs from and to",
		    "improper-addressing");
		return false;
	}
	if (s->side == STREAM_INTERNET) {
		if (!config_is_local(s->cfg, td)) {
			stream_error(s, "host-unknown", "not a domain served here", "host-unknown");
			return false;
		}
		if (config_is_local(s->cfg, fd)) {
			stream_error(s, "invalid-from", "a local domain cannot come from outside",
			    "invalid-from");
			return false;
		}
		strcpy(ours, td);
		strcpy(theirs, fd);
	} else {
		if (!config_is_local(s->cfg, fd)) {
			stream_error(s, "invalid-from", "only local domains may use this listener",
			    "invalid-from");
			return false;
		}
		if (config_is_local(s->cfg, td)) {
			stream_error(s, "host-unknown", "destination must be a remote domain",
			    "host-unknown");
			return false;
		}
		strcpy(ours, fd);
		strcpy(theirs, td);
	}
	return true;
}

static void
receiver_db_result(struct stream *s, const struct xnode *el)
{
	char ours[256], theirs[256], *key;
	struct stream_pair *p = NULL;

	if (s->side == STREAM_INTERNET && !s->cfg->dialback) {
		stream_error(s, "not-authorized", "dialback is disabled", "dialback-disabled");
		return;
	}
	if (!db_addressing(s, el, ours, theirs))
		return;
	if ((key = xnode_text(el)) == NULL || key[0] == '\0' || strlen(key) > 256) {
		free(key);
		stream_error(s, "not-authorized", "bad dialback key", "bad-dialback-key");
		return;
	}
	if (s->side == STREAM_INTERNET && secure_auth_for(s, theirs)) {
		const struct tls_session *t = s->ops->tls(s->owner);

		if (t == NULL || !peer_ok_for(s, t, theirs)) {
			log_warnx("conn=%lu s2s-in remote=%s dialback refused: secure_auth and "
			    "certificate %s", s->cid, theirs, t ? tls_session_peer_verdict(t) : "absent");
			qf_stats.auth_failures++;
			buf_printf(s->out, "<db:result from='%s' to='%s' type='invalid'/>", ours,
			    theirs);
			free(key);
			return;
		}
	}
	p = pair_find(s, ours, theirs);
	/* many pairs per stream, as many as the connection's budget allows: the pair table
	 * counts against limits { held } together with the held stanzas */
	if (p == NULL && (p = pair_new(s, ours, theirs)) == NULL) {
		free(key);
		qf_stats.pairs_refused++;
		log_warnx("conn=%lu %s-in local=%s remote=%s dialback refused: %zu domain "
		    "pairs on this stream already (limits held)", s->cid,
		    s->side == STREAM_INTERNET ? "s2s" : "local", ours, theirs, s->n_pairs);
		send_db_error(s, ours, theirs);
		return;
	}
	if (p->pending) {
		free(key);
		return;  /* one verification at a time per pair */
	}
	p->pending = true;
	if (s->side == STREAM_INTERNET && s->tls_active && s->cfg->sasl_external &&
	    stream_peer_covers(s, theirs)) {
		/* XEP-0344 §2.4: the certificate this peer showed is valid for the domain it
		 * claims: that proves more than a verification leg would, so none is made */
		free(key);
		qf_stats.auth_dialback_cert++;
		log_debug("conn=%lu s2s-in local=%s remote=%s certificate valid for the "
		    "domain: dialback without a verification leg (XEP-0344)", s->cid, ours,
		    theirs);
		stream_dialback_verdict(s, ours, theirs, true);
		return;
	}
	log_debug("conn=%lu %s-in local=%s remote=%s dialback key received, verifying",
	    s->cid, s->side == STREAM_INTERNET ? "s2s" : "local", ours, theirs);
	s->ops->verify_needed(s->owner, ours, theirs, s->id, key);
	free(key);
}

/* Deliver (valid) or discard the stanzas held behind pair p's dialback verification.
 * Only p's own stanzas move: a verdict for one pair never releases another pair's
 * stanzas (that would let a peer borrow a verified domain to send as another). */
static void
release_held(struct stream *s, size_t p, bool deliver)
{
	struct stream_pair *pr = &s->pairs[p];
	struct stanza *st;
	size_t moved = 0;

	while ((st = pr->held) != NULL) {
		pr->held = st->next;
		st->next = NULL;
		s->n_held--;
		s->held_bytes -= st->cost;
		moved++;
		if (deliver && s->state != SS_CLOSED) {
			s->stanzas_in++;
			qf_stats.held_released++;
			s->ops->stanza(s->owner, st);
		} else {
			s->held_discarded++;
			qf_stats.held_discarded++;
			stanza_free(st);
		}
	}
	pr->held_tail = NULL;
	if (!deliver && moved > 0)
		log_warnx("conn=%lu local=%s remote=%s %zu pipelined stanza(s) discarded, never "
		    "delivered: pair not authenticated", s->cid, pr->local, pr->remote, moved);
	if (s->input_blocked && s->held_bytes < s->cfg->held_bytes)
		s->input_blocked = false;   /* the owner wakes the connection */
}

/* The stream ends (or is freed) with stanzas still held: none was authenticated. */
static void
discard_all_held(struct stream *s, const char *why)
{
	size_t n = s->n_held;

	if (n == 0)
		return;
	log_warnx("conn=%lu remote=%s %zu pipelined stanza(s) discarded, never delivered: "
	    "stream closed (%s) before their pair was authenticated", s->cid, s->remote,
	    n, why);
	for (size_t i = 0; i < s->n_pairs; i++) {
		struct stream_pair *pr = &s->pairs[i];
		struct stanza *st;

		while ((st = pr->held) != NULL) {
			pr->held = st->next;
			stanza_free(st);
		}
		pr->held_tail = NULL;
	}
	s->held_discarded += n;
	qf_stats.held_discarded += n;
	s->n_held = 0;
	s->held_bytes = 0;
}

/* A dialback error for (local, remote) (XEP-0220 §2.4): the pair is not authenticated,
 * the stream stays; the peer may try again later. */
static void
send_db_error(struct stream *s, const char *local, const char *remote)
{
	buf_printf(s->out, "<db:result from='%s' to='%s' type='error'><error type='wait'>"
	    "<resource-constraint xmlns='" NS_STANZAS_E "'/></error></db:result>",
	    s->side == STREAM_LOCAL ? remote : local, s->side == STREAM_LOCAL ? local : remote);
}

/* The pending pair (local, remote), or NULL; it is no longer pending on return. The
 * db:result answer goes from `from` to `to`: on the loopback leg the local server
 * authenticated as `local` and we answer as `remote`. */
static struct stream_pair *
take_pending(struct stream *s, const char *local, const char *remote, const char **from,
    const char **to, size_t *idx)
{
	struct stream_pair *p;

	if (s->state != SS_OPEN || (p = pair_find(s, local, remote)) == NULL || !p->pending)
		return NULL;
	p->pending = false;
	*from = s->side == STREAM_LOCAL ? remote : local;
	*to = s->side == STREAM_LOCAL ? local : remote;
	*idx = (size_t)(p - s->pairs);
	return p;
}

void
stream_dialback_verdict(struct stream *s, const char *local, const char *remote, bool valid)
{
	const char *from, *to;
	struct stream_pair *p;
	size_t i;

	if ((p = take_pending(s, local, remote, &from, &to, &i)) == NULL)
		return;
	p->valid = valid;
	if (!s->end_sent)
		buf_printf(s->out, "<db:result from='%s' to='%s' type='%s'/>", from, to,
		    valid ? "valid" : "invalid");
	if (valid) {
		qf_stats.auth_dialback++;
		if (s->auth_method == NULL)
			s->auth_method = "dialback";
		log_info("conn=%lu %s-in local=%s remote=%s authenticated method=dialback",
		    s->cid, s->side == STREAM_INTERNET ? "s2s" : "local", local, remote);
		release_held(s, i, true);
	} else {
		qf_stats.auth_failures++;
		log_warnx("conn=%lu %s-in local=%s remote=%s dialback key invalid", s->cid,
		    s->side == STREAM_INTERNET ? "s2s" : "local", local, remote);
		release_held(s, i, false);
		stream_error(s, "not-authorized", "dialback key invalid", "dialback-invalid");
	}
}

void
stream_dialback_error(struct stream *s, const char *local, const char *remote)
{
	const char *from, *to;
	struct stream_pair *p;
	size_t i;

	if ((p = take_pending(s, local, remote, &from, &to, &i)) == NULL)
		return;
	p->valid = false;
	send_db_error(s, local, remote);
	log_warnx("conn=%lu %s-in local=%s remote=%s dialback not verified: too many "
	    "verifications pending (limits verifications)", s->cid,
	    s->side == STREAM_INTERNET ? "s2s" : "local", local, remote);
	release_held(s, i, false);
}

static void
receiver_db_verify(struct stream *s, const struct xnode *el)
{
	const char *from = xnode_attr(el, "from"), *to = xnode_attr(el, "to");
	const char *id = xnode_attr(el, "id");
	char fd[256], td[256], *key;
	bool valid, ours;

	if (jid_domain_only(from, fd, sizeof(fd)) == -1 ||
	    jid_domain_only(to, td, sizeof(td)) == -1 ||
	    id == NULL || id[0] == '\0' || strlen(id) > 128) {
		stream_error(s, "improper-addressing", "db:verify needs from, to and id",
		    "improper-addressing");
		return;
	}
	/* We are authoritative for our local domains on the internet, and for the remote
	 * domains we present to the local server on the loopback leg. */
	ours = config_is_local(s->cfg, td);
	if (s->side == STREAM_LOCAL)
		ours = !ours && config_is_local(s->cfg, fd);
	if (!ours) {
		stream_error(s, "host-unknown", "not authoritative for that domain",
		    "host-unknown");
		return;
	}
	key = xnode_text(el);
	valid = key != NULL && dialback_key_valid(fd, td, id, key);
	free(key);
	if (s->end_sent)
		return;   /* we ended our direction: no answer can follow */
	qf_stats.dialback_verify_answered++;
	log_debug("conn=%lu answered db:verify from=%s to=%s valid=%d", s->cid, fd, td, valid);
	buf_printf(s->out, "<db:verify from='%s' to='%s' id='", td, fd);
	buf_put_xml_escaped(s->out, id, strlen(id));
	buf_printf(s->out, "' type='%s'/>", valid ? "valid" : "invalid");
}

static bool
is_stanza(const struct xnode *el)
{
	return strcmp(el->ns, NS_SERVER) == 0 && (strcmp(el->name, "message") == 0 ||
	    strcmp(el->name, "presence") == 0 || strcmp(el->name, "iq") == 0);
}

static void
receiver_stanza(struct stream *s, struct xnode *el)
{
	char fd[256], td[256];
	struct stream_pair *p = NULL;
	bool authorised = false;

	if (jid_domain(xnode_attr(el, "from"), fd, sizeof(fd)) == -1 ||
	    jid_domain(xnode_attr(el, "to"), td, sizeof(td)) == -1) {
		xnode_free(el);
		stream_error(s, "improper-addressing", "stanza needs from and to",
		    "improper-addressing");
		return;
	}
	if (s->side == STREAM_INTERNET) {
		if (!config_is_local(s->cfg, td)) {
			xnode_free(el);
			stream_error(s, "host-unknown", "no relaying to other domains",
			    "open-relay-attempt");
			return;
		}
		/* SASL EXTERNAL authenticated one pair: the stream's own (local, remote).
		 * Another local domain needs its own db:result (piggybacking). */
		if (s->sasl_done && domain_eq(s->remote, fd) &&
		    domain_eq(s->local, td))
			authorised = true;
	} else if (config_is_local(s->cfg, td)) {
		xnode_free(el);
		stream_error(s, "host-unknown", "destination must be a remote domain",
		    "host-unknown");
		return;
	}
	/* the pair as this stream names it: (our domain, theirs) */
	if (!authorised && s->n_pairs > 0) {
		p = s->side == STREAM_INTERNET ? pair_find(s, td, fd) : pair_find(s, fd, td);
		authorised = p != NULL && p->valid;
	}
	if (!authorised) {
		if (p != NULL && p->pending) {
			/* pipelined behind ITS pair's db:result: delivered only if that pair
			 * verifies */
			hold(s, p, el);
			return;
		}
		xnode_free(el);
		stream_error(s, "invalid-from", "sender domain not authenticated on this stream",
		    "invalid-from");
		return;
	}
	deliver(s, el);
}

/* XEP-0198 counts st as taken; when acknowledgements wait for releases, st names this
 * stream (its owner's handle) and its number, and freeing it releases it. */
static void
take(struct stream *s, struct stanza *st)
{
	uint32_t seq = sm_handled(&s->sm);

	if (s->sm.on && s->sm.gate && !handle_is_null(s->origin)) {
		st->origin = s->origin;
		st->origin_seq = seq;
	} else if (s->sm.on && s->sm.gate) {
		sm_released(&s->sm, seq);   /* nobody to tell: taken is released */
	}
}

/* An authorised stanza (either role) goes to the owner, counted (XEP-0198 h too). */
static void
deliver(struct stream *s, struct xnode *el)
{
	struct stanza *st = stanza_from_xnode(el);

	xnode_free(el);
	if (st == NULL) {
		stream_error(s, "resource-constraint", "out of memory", "out-of-memory");
		return;
	}
	s->stanzas_in++;
	take(s, st);
	s->ops->stanza(s->owner, st);
}

/* Keep el (compactly) until pair p's verdict. At the held budget (limits { held }),
 * or when all stanzas alive exceed the global budget, input pauses until a verdict. */
static void
hold(struct stream *s, struct stream_pair *p, struct xnode *el)
{
	struct stanza *st = stanza_from_xnode(el);

	xnode_free(el);
	if (st == NULL) {
		stream_error(s, "resource-constraint", "out of memory", "out-of-memory");
		return;
	}
	take(s, st);   /* released or discarded by its pair's verdict */
	if (p->held_tail)
		p->held_tail->next = st;
	else
		p->held = st;
	p->held_tail = st;
	s->n_held++;
	s->held_bytes += st->cost;
	if (s->held_bytes + pairs_cost(s) >= s->cfg->held_bytes ||
	    stanza_bytes_alive() >= s->cfg->memory_limit) {
		if (!s->input_blocked) {
			qf_stats.held_paused++;
			log_info("conn=%lu s2s-in remote=%s %zu bytes held before authentication: "
			    "reading paused until a verdict", s->cid, s->remote, s->held_bytes);
		}
		s->input_blocked = true;
		xmlstream_pause(s->xs);
	}
}

void
stream_trim(struct stream *s)
{
	if (s != NULL && s->state != SS_CLOSED && s->xs != NULL && xmlstream_trim(s->xs))
		log_debug("conn=%lu quiet: XML parser released", s->cid);
}

void
stream_pause_input(struct stream *s)
{
	if (s->state == SS_CLOSED)
		return;
	s->owner_paused = true;
	xmlstream_pause(s->xs);
}

void
stream_resume_input(struct stream *s)
{
	s->owner_paused = false;
}

bool
stream_input_paused(const struct stream *s)
{
	return s->input_blocked || s->owner_paused ||
	    (s->features_held && s->state == SS_OPEN);
}

int
stream_send(struct stream *s, const struct stanza *st)
{
	if (s->end_sent)
		return -1;
	if (s->state != SS_READY && !(s->early_ok && s->state != SS_CLOSED) &&
	    !(s->role == STREAM_RECEIVER && s->bidi && s->state == SS_OPEN))
		return -1;
	if (buf_append(s->out, st->data, st->len) == -1)
		return -1;
	s->stanzas_out++;
	sm_sent(&s->sm);
	return 0;
}

static void
b64_encode(const char *in, char *out, size_t outlen)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
}
