/* tests/unit/test_stream.c - the s2s stream state machine driven by strings.
 * SPDX-License-Identifier: ISC
 * Plays both roles on both sides with Prosody-like transcripts: loopback dialback in
 * both directions, STARTTLS hand-off with a ClientHello behind <starttls/>, SASL
 * EXTERNAL, and the addressing rules (invalid-from, host-unknown, TLS required);
 * multiplexing: pairs added with a piggybacked db:result, XEP-0288 bidi in both roles
 * and the XEP-0344 shortcut. The TLS session is faked here: stream.c only asks it for
 * certificate verdicts (valid for fake_valid_domain and fake_also_valid). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/stats.h"
#include "s2s/dialback.h"
#include "s2s/stanza.h"
#include "s2s/stream.h"
#include "s2s/xnode.h"
#include "tls/tls.h"

/* ---- fake TLS verdicts (stream.c only reads these) ---- */
static bool fake_trusted;
static const char *fake_valid_domain;
static const char *fake_also_valid;     /* a second name on the certificate */
static int fake_session_token;

bool
tls_session_peer_trusted(const struct tls_session *s)
{
	(void)s;
	return fake_trusted;
}

bool
tls_session_peer_valid_for(const struct tls_session *s, const char *domain)
{
	(void)s;
	return fake_trusted && ((fake_valid_domain && strcmp(domain, fake_valid_domain) == 0) ||
	    (fake_also_valid && strcmp(domain, fake_also_valid) == 0));
}

const char *
tls_session_sni(const struct tls_session *s)
{
	(void)s;
	return NULL;
}

const char *
tls_session_peer_verdict(const struct tls_session *s)
{
	(void)s;
	return fake_trusted ? "ok" : "not trusted";
}

/* ---- recording owner ---- */
struct rec {
	int start_tls, ready, verify_answers;
	bool verify_valid;
	char verify_id[64];
	char verify_pair[600];   /* "local|remote" of the last answer */
	unsigned acked, sm_failed, acks_owed; /* XEP-0198: acked, <failed/>, <r/> owed */
	struct stream *s;            /* the stream reporting here (fx_new) */
	const struct stanza *send_at_ready;   /* sent from the ready callback, if set */
	const char *close_reason;
	struct stanza *stanzas[8];
	int nstanzas;
	char v_local[256], v_remote[256], v_id[64], v_key[256];
	int verify_needed;
	bool tls_up;
	int pair_verdicts;
	bool pv_valid;
	char pv_local[256], pv_remote[256];
};

static void op_start_tls(void *o) { ((struct rec *)o)->start_tls++; }
static void op_close(void *o, const char *r) { ((struct rec *)o)->close_reason = r; }
static const struct tls_session *
op_tls(void *o)
{
	return ((struct rec *)o)->tls_up ? (const struct tls_session *)&fake_session_token : NULL;
}
static void
op_ready(void *o)
{
	struct rec *r = o;

	r->ready++;
	if (r->send_at_ready != NULL)   /* as link.c's owner drains its queue at ready */
		assert_int_equal(stream_send(r->s, r->send_at_ready), 0);
}
static void
op_stanza(void *o, struct stanza *st)
{
	struct rec *r = o;

	assert_true(r->nstanzas < 8);
	r->stanzas[r->nstanzas++] = st;
}
static void
op_verify_needed(void *o, const char *l, const char *rm, const char *id, const char *key)
{
	struct rec *r = o;

	r->verify_needed++;
	snprintf(r->v_local, sizeof(r->v_local), "%s", l);
	snprintf(r->v_remote, sizeof(r->v_remote), "%s", rm);
	snprintf(r->v_id, sizeof(r->v_id), "%s", id);
	snprintf(r->v_key, sizeof(r->v_key), "%s", key);
}
static void
op_verify_answer(void *o, const char *l, const char *rm, const char *id, bool valid)
{
	struct rec *r = o;

	r->verify_answers++;
	snprintf(r->verify_pair, sizeof(r->verify_pair), "%s|%s", l, rm);
	r->verify_valid = valid;
	snprintf(r->verify_id, sizeof(r->verify_id), "%s", id);
}

static int pipelined_calls;
static void op_pipeline(void *o) { (void)o; pipelined_calls++; }
static void
op_pair_verdict(void *o, const char *l, const char *rm, bool valid)
{
	struct rec *r = o;

	r->pair_verdicts++;
	r->pv_valid = valid;
	snprintf(r->pv_local, sizeof(r->pv_local), "%s", l);
	snprintf(r->pv_remote, sizeof(r->pv_remote), "%s", rm);
}

static void
op_acked(void *o, uint32_t n, bool failed)
{
	struct rec *r = o;

	r->acked += n;
	r->sm_failed += failed;
}

static void
op_ack_owed(void *o)
{
	struct rec *r = o;

	r->acks_owed++;
}

static const struct stream_ops ops = {
	op_start_tls, op_close, op_tls, op_ready, op_stanza, op_verify_needed, op_verify_answer,
	op_pipeline, NULL, op_pair_verdict, op_acked, op_ack_owed, NULL,
};

static struct cfg_domain dom_a = { .name = "a.example" };
static struct config cfg;

static void
init_cfg(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.domains = &dom_a;
	cfg.max_stanza_size = 65536;
	cfg.max_depth = 16;
	cfg.max_attributes = 16;
	cfg.max_name_length = 128;
	cfg.require_tls = true;
	cfg.dialback = true;
	cfg.sasl_external = true;
	cfg.pipelining = false;
	cfg.held_bytes = 1 << 20;
	cfg.memory_limit = (size_t)1 << 30;
	cfg.bidi = true;
	fake_trusted = false;
	fake_valid_domain = NULL;
	fake_also_valid = NULL;
	memset(&qf_stats, 0, sizeof(qf_stats));
}

struct fixture {
	struct rec rec;
	struct buf out;
	struct stream *s;
};

static struct fixture *
fx_new(enum stream_role role, enum stream_side side, enum stream_purpose purpose,
    const char *local, const char *remote)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	buf_init(&f->out, 1 << 20);
	f->s = stream_new(role, side, purpose, &cfg, local, remote, &ops, &f->rec, &f->out);
	assert_non_null(f->s);
	f->rec.s = f->s;
	return f;
}

static void
fx_free(struct fixture *f)
{
	for (int i = 0; i < f->rec.nstanzas; i++)
		stanza_free(f->rec.stanzas[i]);
	stream_free(f->s);
	buf_free(&f->out);
	free(f);
}

static ssize_t
feed(struct fixture *f, const char *s)
{
	return stream_input(f->s, s, strlen(s));
}

/* Extract attribute value attr='...' following marker in text; static buffer. */
static const char *
attr_after(const char *text, const char *marker, const char *attr)
{
	static char val[256];
	const char *p = strstr(text, marker), *q;
	char pat[64];

	assert_non_null(p);
	snprintf(pat, sizeof(pat), "%s='", attr);
	p = strstr(p, pat);
	assert_non_null(p);
	p += strlen(pat);
	q = strchr(p, '\'');
	assert_non_null(q);
	snprintf(val, sizeof(val), "%.*s", (int)(q - p), p);
	return val;
}

#define PROSODY_HDR(from, to) \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
	"xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' " \
	"version='1.0' from='" from "' to='" to "' xml:lang='en'>"
#define PROSODY_HDR_ID(from, to, id) \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:server' " \
	"xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' " \
	"version='1.0' from='" from "' to='" to "' id='" id "' xml:lang='en'>"

static int
setup(void **state)
{
	(void)state;
	init_cfg();
	assert_int_equal(dialback_set_secret("unit-test-secret-0123456789", 27), 0);
	return 0;
}

/* The local server (a.example) opens a stream to quickfed for remote.example and
 * authenticates with dialback; quickfed asks for verification and then relays. */
static void
test_local_receiver_dialback(void **state)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	const char *id;

	(void)state;
	assert_int_equal(feed(f, PROSODY_HDR("a.example", "remote.example")),
	    strlen(PROSODY_HDR("a.example", "remote.example")));
	/* header answered as the remote domain, features offer dialback but no TLS */
	assert_non_null(strstr(f->out.data, "from='remote.example' to='a.example'"));
	assert_non_null(strstr(f->out.data, "<dialback xmlns='urn:xmpp:features:dialback'>"));
	assert_null(strstr(f->out.data, "starttls"));
	id = attr_after(f->out.data, "<stream:stream", "id");
	assert_true(strlen(id) == 32);
	buf_reset(&f->out);

	/* a stanza before authentication is refused */
	feed(f, "<db:result from='a.example' to='remote.example'>abcdef</db:result>");
	assert_int_equal(f->rec.verify_needed, 1);
	assert_string_equal(f->rec.v_local, "a.example");
	assert_string_equal(f->rec.v_remote, "remote.example");
	assert_string_equal(f->rec.v_key, "abcdef");
	assert_string_equal(f->rec.v_id, f->s->id);
	stream_dialback_verdict(f->s, "a.example", "remote.example", true);
	assert_non_null(strstr(f->out.data,
	    "<db:result from='remote.example' to='a.example' type='valid'/>"));
	buf_reset(&f->out);

	feed(f, "<message from='u@a.example/r' to='v@remote.example' type='chat'>"
	    "<body>hi &amp; bye</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	assert_string_equal(f->rec.stanzas[0]->name, "message");
	assert_null(f->rec.close_reason);

	/* from a domain the stream was not authenticated for */
	feed(f, "<message from='u@a.example' to='x@other.example'><body>x</body></message>");
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	assert_string_equal(f->rec.close_reason, "invalid-from");
	assert_int_equal(f->rec.nstanzas, 1);
	fx_free(f);
}

static void
test_local_receiver_refuses_foreign_origin(void **state)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");

	(void)state;
	feed(f, PROSODY_HDR("evil.example", "remote.example"));
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	assert_string_equal(f->rec.close_reason, "invalid-from");
	fx_free(f);
}

/* quickfed answers db:verify for keys it made (loopback and internet alike). */
static void
test_receiver_answers_db_verify(void **state)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	char key[DIALBACK_KEY_LEN + 1], msg[512];

	(void)state;
	feed(f, PROSODY_HDR("a.example", "remote.example"));
	buf_reset(&f->out);
	/* quickfed presented itself as remote.example to a.example on stream S1 */
	assert_int_equal(dialback_key("a.example", "remote.example", "S1", key), 0);
	snprintf(msg, sizeof(msg), "<db:verify from='a.example' to='remote.example' id='S1'>%s"
	    "</db:verify>", key);
	feed(f, msg);
	assert_non_null(strstr(f->out.data, "<db:verify from='remote.example' to='a.example' "
	    "id='S1' type='valid'/>"));
	buf_reset(&f->out);
	feed(f, "<db:verify from='a.example' to='remote.example' id='S1'>00ff</db:verify>");
	assert_non_null(strstr(f->out.data, "type='invalid'"));
	assert_null(f->rec.close_reason);
	fx_free(f);
}

/* quickfed delivers to the local server as remote.example: dialback with its own key. */
static void
test_local_initiator(void **state)
{
	struct fixture *f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_RELAY, "a.example",
	    "remote.example");
	char key[DIALBACK_KEY_LEN + 1], expect[256];
	struct xnode *m;
	struct stanza *st;

	(void)state;
	stream_start(f->s);
	assert_non_null(strstr(f->out.data, "from='remote.example' to='a.example'"));
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("a.example", "remote.example", "PID1")
	    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	    "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	    "</stream:features>");
	/* loopback without TLS: straight to dialback, key for (a.example, remote.example) */
	assert_int_equal(dialback_key("a.example", "remote.example", "PID1", key), 0);
	snprintf(expect, sizeof(expect), "<db:result from='remote.example' to='a.example'>%s"
	    "</db:result>", key);
	assert_string_equal(f->out.data, expect);
	buf_reset(&f->out);
	assert_int_equal(f->rec.ready, 0);
	feed(f, "<db:result from='a.example' to='remote.example' type='valid'/>");
	assert_int_equal(f->rec.ready, 1);
	assert_true(stream_is_ready(f->s));
	m = xnode_new("message", NS_SERVER);
	xnode_set_attr(m, "from", "x@remote.example");
	xnode_set_attr(m, "to", "u@a.example");
	xnode_add_text(xnode_add_child(m, "body", NS_SERVER), "<&>", 3);
	st = stanza_from_xnode(m);
	assert_non_null(st);
	assert_int_equal(stream_send(f->s, st), 0);
	assert_non_null(strstr(f->out.data, "<body>&lt;&amp;&gt;</body>"));
	stanza_free(st);
	xnode_free(m);
	fx_free(f);
}

static void
test_initiator_dialback_refused(void **state)
{
	struct fixture *f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_RELAY, "a.example",
	    "remote.example");

	(void)state;
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("a.example", "remote.example", "PID1")
	    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
	    "<db:result from='a.example' to='remote.example' type='invalid'/>");
	assert_int_equal(f->rec.ready, 0);
	assert_string_equal(f->rec.close_reason, "dialback-refused");
	fx_free(f);
}

/* Internet receiver: STARTTLS required; the ClientHello behind <starttls/> is left for
 * the TLS engine, and <proceed/> is queued before it. */
static void
test_internet_receiver_starttls_handoff(void **state)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	const char *hdr = PROSODY_HDR("b.example", "a.example");
	char in[1024];
	size_t pre;
	ssize_t n;

	(void)state;
	feed(f, hdr);
	assert_non_null(strstr(f->out.data, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	    "<required/></starttls></stream:features>"));
	assert_null(strstr(f->out.data, "<dialback"));
	buf_reset(&f->out);
	snprintf(in, sizeof(in), "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	pre = strlen(in);
	memcpy(in + pre, "\x16\x03\x01\x02\x00\x01<<>>", 10);
	n = stream_input(f->s, in, pre + 10);
	assert_int_equal(n, (ssize_t)pre);
	assert_int_equal(f->rec.start_tls, 1);
	assert_string_equal(f->out.data, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(f->s->state, SS_TLS);
	/* after TLS, the stream restarts and features offer EXTERNAL for a valid cert */
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	buf_reset(&f->out);
	stream_tls_ready(f->s);
	feed(f, hdr);
	assert_non_null(strstr(f->out.data, "<mechanism>EXTERNAL</mechanism>"));
	assert_non_null(strstr(f->out.data, "<dialback"));
	buf_reset(&f->out);
	/* SASL EXTERNAL with authzid b.example ("Yi5leGFtcGxl"), then a pipelined restart */
	n = feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>"
	    "Yi5leGFtcGxl</auth>" PROSODY_HDR("b.example", "a.example"));
	assert_true(n > 0);
	assert_non_null(strstr(f->out.data, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
	/* the rest (new header) is fed again by the connection */
	feed(f, PROSODY_HDR("b.example", "a.example"));
	assert_string_equal(f->s->auth_method, "external");
	feed(f, "<message from='x@b.example' to='u@a.example'><body>ok</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	/* open relay attempt */
	feed(f, "<message from='x@b.example' to='y@c.example'><body>relay?</body></message>");
	assert_non_null(strstr(f->out.data, "<host-unknown"));
	assert_string_equal(f->rec.close_reason, "open-relay-attempt");
	assert_int_equal(f->rec.nstanzas, 1);
	fx_free(f);
}

/* ---- incoming DANE: the owner looks up the peer's TLSA; features wait for it ---- */
static int dane_calls;
static char dane_asked[256];
static bool
op_dane_lookup(void *o, const char *domain)
{
	(void)o;
	dane_calls++;
	snprintf(dane_asked, sizeof(dane_asked), "%s", domain);
	return true;
}

static const struct stream_ops dane_ops = {
	op_start_tls, op_close, op_tls, op_ready, op_stanza, op_verify_needed, op_verify_answer,
	op_pipeline, op_dane_lookup, NULL, NULL, NULL, NULL,
};

/* A receiver whose peer shows a certificate that is not PKIX-valid: after STARTTLS. */
static struct fixture *
dane_receiver(const char *hdr)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char in[512];

	assert_non_null(f);
	buf_init(&f->out, 1 << 20);
	f->s = stream_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, &cfg, "", "",
	    &dane_ops, &f->rec, &f->out);
	assert_non_null(f->s);
	feed(f, hdr);
	snprintf(in, sizeof(in), "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	feed(f, in);
	assert_int_equal(f->rec.start_tls, 1);
	f->rec.tls_up = true;
	fake_trusted = false;           /* e.g. self-signed */
	buf_reset(&f->out);
	dane_calls = 0;
	dane_asked[0] = '\0';
	return f;
}

static void
test_incoming_dane(void **state)
{
	const char *hdr = PROSODY_HDR("b.example", "a.example");
	const char *auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
	    "mechanism='EXTERNAL'>Yi5leGFtcGxl</auth>";
	char both[1024];
	struct fixture *f;
	ssize_t n;

	(void)state;
	cfg.dane = true;
	/* match: the features wait, nothing behind the header is read meanwhile, then
	 * EXTERNAL is offered and accepted */
	f = dane_receiver(hdr);
	stream_tls_ready(f->s);
	assert_int_equal(dane_calls, 1);
	assert_string_equal(dane_asked, "b.example");
	snprintf(both, sizeof(both), "%s%s", hdr, auth);
	n = feed(f, both);
	assert_int_equal(n, (ssize_t)strlen(hdr));
	assert_non_null(strstr(f->out.data, "<stream:stream"));
	assert_null(strstr(f->out.data, "<stream:features>"));
	assert_int_equal(feed(f, auth), 0);           /* held */
	stream_dane_result(f->s, true);
	assert_non_null(strstr(f->out.data, "<mechanism>EXTERNAL</mechanism>"));
	buf_reset(&f->out);
	assert_true(feed(f, auth) > 0);
	assert_non_null(strstr(f->out.data, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
	feed(f, hdr);
	assert_string_equal(f->s->auth_method, "external");
	assert_int_equal(dane_calls, 1);              /* asked once, not again on restart */
	fx_free(f);

	/* no match: features without EXTERNAL; an EXTERNAL attempt fails */
	f = dane_receiver(hdr);
	stream_tls_ready(f->s);
	assert_int_equal(dane_calls, 1);
	feed(f, hdr);
	assert_null(strstr(f->out.data, "<stream:features>"));
	stream_dane_result(f->s, false);
	assert_non_null(strstr(f->out.data, "<stream:features>"));
	assert_null(strstr(f->out.data, "EXTERNAL"));
	assert_non_null(strstr(f->out.data, "<dialback"));
	buf_reset(&f->out);
	feed(f, auth);
	assert_non_null(strstr(f->out.data, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"));
	assert_null(f->s->auth_method);
	fx_free(f);

	/* DANE off in the configuration: no lookup, features at once */
	cfg.dane = false;
	f = dane_receiver(hdr);
	stream_tls_ready(f->s);
	feed(f, hdr);
	assert_int_equal(dane_calls, 0);
	assert_non_null(strstr(f->out.data, "<stream:features>"));
	assert_null(strstr(f->out.data, "EXTERNAL"));
	fx_free(f);

	/* a PKIX-valid certificate needs no lookup */
	cfg.dane = true;
	f = dane_receiver(hdr);
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	feed(f, hdr);
	assert_int_equal(dane_calls, 0);
	assert_non_null(strstr(f->out.data, "<mechanism>EXTERNAL</mechanism>"));
	fx_free(f);
}

static void
test_internet_receiver_spoofed_from(void **state)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	const char *hdr = PROSODY_HDR("b.example", "a.example");

	(void)state;
	cfg.require_tls = false;
	f->rec.tls_up = true;
	f->s->tls_active = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	feed(f, hdr);
	feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
	feed(f, hdr);
	assert_true(f->s->sasl_done);
	assert_string_equal(f->s->remote, "b.example");
	feed(f, "<message from='x@c.example' to='u@a.example'><body>spoof</body></message>");
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	assert_int_equal(f->rec.nstanzas, 0);
	fx_free(f);
	cfg.require_tls = true;
}

static void
test_internet_receiver_policy(void **state)
{
	struct fixture *f;

	(void)state;
	/* unknown local domain */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("b.example", "nothere.example"));
	assert_non_null(strstr(f->out.data, "<host-unknown"));
	fx_free(f);
	/* dialback before TLS */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("b.example", "a.example"));
	feed(f, "<db:result from='b.example' to='a.example'>k</db:result>");
	assert_non_null(strstr(f->out.data, "<policy-violation"));
	assert_int_equal(f->rec.verify_needed, 0);
	fx_free(f);
	/* a local domain claimed from outside */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("a.example", "a.example"));
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	fx_free(f);
	/* wrong namespace and a DTD */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/"
	    "streams' version='1.0' to='a.example'>");
	assert_non_null(strstr(f->out.data, "<invalid-namespace"));
	fx_free(f);
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><stream:stream/>");
	assert_non_null(strstr(f->out.data, "<restricted-xml"));
	/* a stream error needs a stream header first */
	assert_non_null(strstr(f->out.data, "<stream:stream"));
	fx_free(f);
}

/* Only a bare domain is acceptable in a stream header's from and to (RFC 6120 §4.7.1,
 * §4.7.2) and in the from and to of db:result and db:verify (XEP-0220): a full JID is
 * improper-addressing, not silently cut down to its domain. */
static void
test_full_jids_refused(void **state)
{
	static const struct {
		enum stream_side side;
		const char *hdr;
	} headers[] = {
		{ STREAM_INTERNET, PROSODY_HDR("user@b.example/res", "a.example") },
		{ STREAM_INTERNET, PROSODY_HDR("user@b.example", "a.example") },
		{ STREAM_INTERNET, PROSODY_HDR("b.example/res", "a.example") },
		{ STREAM_INTERNET, PROSODY_HDR("b.example", "user@a.example") },
		{ STREAM_INTERNET, PROSODY_HDR("b.example", "a.example/res") },
		{ STREAM_INTERNET, PROSODY_HDR("b.example", "@a.example") },
		{ STREAM_LOCAL, PROSODY_HDR("admin@a.example", "remote.example") },
		{ STREAM_LOCAL, PROSODY_HDR("a.example", "user@remote.example/x") },
	};
	static const char *const dialback[] = {
		"<db:result from='user@a.example' to='remote.example'>k</db:result>",
		"<db:result from='a.example' to='remote.example/res'>k</db:result>",
		"<db:verify from='a.example/r' to='remote.example' id='S1'>k</db:verify>",
		"<db:verify from='a.example' to='u@remote.example' id='S1'>k</db:verify>",
	};
	struct fixture *f;

	(void)state;
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		f = fx_new(STREAM_RECEIVER, headers[i].side, STREAM_RELAY, "", "");
		feed(f, headers[i].hdr);
		if (strstr(f->out.data, "<improper-addressing") == NULL)
			fail_msg("header %zu: no improper-addressing; sent:\n%s", i, f->out.data);
		assert_string_equal(f->rec.close_reason, "improper-addressing");
		assert_null(strstr(f->out.data, "<stream:features"));
		fx_free(f);
	}
	for (size_t i = 0; i < sizeof(dialback) / sizeof(dialback[0]); i++) {
		f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
		feed(f, PROSODY_HDR("a.example", "remote.example"));
		assert_null(f->rec.close_reason);
		buf_reset(&f->out);
		feed(f, dialback[i]);
		if (strstr(f->out.data, "<improper-addressing") == NULL)
			fail_msg("dialback %zu: no improper-addressing; sent:\n%s", i, f->out.data);
		assert_int_equal(f->rec.verify_needed, 0);
		assert_null(strstr(f->out.data, "<db:"));
		fx_free(f);
	}
	/* The initiator refuses the same in the peer's answer. */
	f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_RELAY, "a.example", "remote.example");
	stream_start(f->s);
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("x@a.example", "remote.example", "PID1"));
	assert_non_null(strstr(f->out.data, "<improper-addressing"));
	fx_free(f);
	/* A bare domain, upper case or with a trailing dot, is still fine. */
	f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("A.Example.", "remote.example"));
	feed(f, "<db:result from='A.EXAMPLE' to='remote.example.'>k</db:result>");
	assert_null(f->rec.close_reason);
	assert_int_equal(f->rec.verify_needed, 1);
	assert_string_equal(f->rec.v_local, "a.example");
	assert_string_equal(f->rec.v_remote, "remote.example");
	fx_free(f);
}

/* The initiator refuses a peer whose certificate is not valid when secure_auth is on. */
static void
test_internet_initiator_secure_auth(void **state)
{
	struct fixture *f;
	struct cfg_peer p = { .name = "wrong.example", .secure_auth = true };

	(void)state;
	cfg.peers = &p;
	f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY, "a.example", "wrong.example");
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("wrong.example", "a.example", "X1")
	    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
	    "</starttls></stream:features>");
	assert_non_null(strstr(f->out.data, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
	feed(f, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(f->rec.start_tls, 1);
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "other.example";
	buf_reset(&f->out);
	stream_tls_ready(f->s);
	assert_non_null(strstr(f->out.data, "to='wrong.example'"));
	feed(f, PROSODY_HDR_ID("wrong.example", "a.example", "X2")
	    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
	assert_string_equal(f->rec.close_reason, "peer-certificate-invalid");
	assert_int_equal(f->rec.ready, 0);
	fx_free(f);
	cfg.peers = NULL;
}

/* With a valid certificate the initiator uses SASL EXTERNAL and restarts. */
static void
test_internet_initiator_external(void **state)
{
	struct fixture *f;

	(void)state;
	f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY, "a.example", "b.example");
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X1")
	    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"
	    "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(f->rec.start_tls, 1);
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X2")
	    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
	    "<mechanism>EXTERNAL</mechanism></mechanisms>"
	    "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
	/* base64("a.example") */
	assert_string_equal(f->out.data, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
	    "mechanism='EXTERNAL'>YS5leGFtcGxl</auth>");
	buf_reset(&f->out);
	feed(f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	/* restart: a new header goes out */
	assert_non_null(strstr(f->out.data, "<stream:stream"));
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X3") "<stream:features/>");
	assert_int_equal(f->rec.ready, 1);
	fx_free(f);
}

/* A verify-purpose stream carries several db:verify requests and reports each answer
 * by id; it stays open (its owner closes it); answers for other domains are refused. */
static void
test_verify_stream(void **state)
{
	struct fixture *f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_VERIFY, "a.example",
	    "remote.example");

	(void)state;
	stream_start(f->s);
	assert_int_equal(stream_send_verify(f->s, "a.example", "remote.example", "SID9",
	    "feedbeef"), -1);  /* not ready */
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("a.example", "remote.example", "V1")
	    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
	assert_int_equal(f->rec.ready, 1);
	assert_int_equal(stream_send_verify(f->s, "a.example", "remote.example", "SID9",
	    "feedbeef"), 0);
	assert_int_equal(stream_send_verify(f->s, "a.example", "remote.example", "SID10",
	    "beef"), 0);
	/* the loopback leg asks about any local domain's key on the same stream */
	assert_int_equal(stream_send_verify(f->s, "c.example", "other.example", "SID11",
	    "cafe"), 0);
	assert_string_equal(f->out.data, "<db:verify from='remote.example' to='a.example' "
	    "id='SID9'>feedbeef</db:verify><db:verify from='remote.example' to='a.example' "
	    "id='SID10'>beef</db:verify><db:verify from='other.example' to='c.example' "
	    "id='SID11'>cafe</db:verify>");
	feed(f, "<db:verify from='a.example' to='remote.example' id='SID10' type='invalid'/>");
	assert_int_equal(f->rec.verify_answers, 1);
	assert_false(f->rec.verify_valid);
	assert_string_equal(f->rec.verify_id, "SID10");
	feed(f, "<db:verify from='a.example' to='remote.example' id='SID9' type='valid'/>");
	assert_int_equal(f->rec.verify_answers, 2);
	assert_true(f->rec.verify_valid);
	assert_string_equal(f->rec.verify_id, "SID9");
	assert_string_equal(f->rec.verify_pair, "a.example|remote.example");
	assert_null(f->rec.close_reason);
	/* an answer names its pair; the owner matches it with what it asked (verify.c) */
	feed(f, "<db:verify from='evil.example' to='remote.example' id='SID9' type='valid'/>");
	assert_int_equal(f->rec.verify_answers, 3);
	assert_string_equal(f->rec.verify_pair, "evil.example|remote.example");
	assert_null(f->rec.close_reason);
	feed(f, "<db:verify to='remote.example' id='SID9' type='valid'/>");
	assert_int_equal(f->rec.verify_answers, 3);
	assert_string_equal(f->rec.close_reason, "bad-verify-answer");
	fx_free(f);
}

/* Any split of the input gives the same output and stanzas. */
static void
test_split_everywhere(void **state)
{
	const char *in = PROSODY_HDR("a.example", "remote.example")
	    "<db:verify from='a.example' to='remote.example' id='S1'>00</db:verify>"
	    "<db:result from='a.example' to='remote.example'>k1</db:result>";
	size_t len = strlen(in);
	char *ref;

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
		ssize_t a = stream_input(f->s, in, cut);
		ssize_t b = stream_input(f->s, in + cut, len - cut);

		assert_int_equal(a, (ssize_t)cut);
		assert_int_equal(b, (ssize_t)(len - cut));
		assert_int_equal(f->rec.verify_needed, 1);
		/* the id differs per stream: compare the output with it blanked */
		ref = strstr(f->out.data, "type='invalid'/>");
		assert_non_null(ref);
		assert_null(f->rec.close_reason);
		fx_free(f);
	}
}

/* XEP-0305 initiator to a peer known to pipeline: header + <starttls/> (+ ClientHello by
 * the owner), then after TLS header + auth + restarted header + stanzas in one flight. */
static void
test_pipelined_initiator_external(void **state)
{
	struct fixture *f;
	const char *p;
	int before = pipelined_calls;

	(void)state;
	cfg.pipelining = true;
	f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY, "a.example", "b.example");
	f->s->pipeline = f->s->pipe_starttls = f->s->pipe_external = true;
	stream_start(f->s);
	/* flight 1: header and starttls together, and the owner is told to add the ClientHello */
	p = strstr(f->out.data, "<stream:stream");
	assert_non_null(p);
	assert_non_null(strstr(p, "><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
	assert_true(f->s->tls_preempt);
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X1")
	    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
	    "</starttls><pipelining xmlns='urn:xmpp:features:pipelining'/></stream:features>"
	    "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(f->out.len, 0);   /* nothing to send: starttls already went */
	assert_int_equal(f->rec.start_tls, 1);
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	/* flight 2: header, auth, restarted header, then the owner adds stanzas */
	p = strstr(f->out.data, "<stream:stream");
	assert_non_null(p);
	p = strstr(p, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>");
	assert_non_null(p);
	assert_non_null(strstr(p, "</auth><?xml version='1.0'?><stream:stream"));
	assert_int_equal(pipelined_calls, before + 1);
	assert_true(f->s->early_ok);
	buf_reset(&f->out);
	/* the answers: header, features, success, header, features -> ready, nothing sent */
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X2")
	    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
	    "<mechanism>EXTERNAL</mechanism></mechanisms>"
	    "<pipelining xmlns='urn:xmpp:features:pipelining'/></stream:features>"
	    "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X3") "<stream:features/>");
	assert_int_equal(f->rec.ready, 1);
	assert_int_equal(f->out.len, 0);
	assert_true(f->s->peer_pipelining);
	fx_free(f);
}

/* A pipelined SASL attempt that fails closes the stream with a reason route.c
 * recognises, so the queued stanzas are retried without pipelining. */
static void
test_pipelined_auth_refused(void **state)
{
	struct fixture *f;

	(void)state;
	f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY, "a.example", "b.example");
	f->s->pipeline = f->s->pipe_starttls = f->s->pipe_external = true;
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X1")
	    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
	    "</stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X2")
	    "<stream:features/><failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	assert_int_equal(f->rec.ready, 0);
	assert_string_equal(f->rec.close_reason, "pipelined-auth-refused");
	fx_free(f);
}

/* Receiver after TLS: header and features go out at once, before the initiator's header. */
static void
test_receiver_early_features_after_tls(void **state)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	const char *hdr = PROSODY_HDR("b.example", "a.example");

	(void)state;
	cfg.pipelining = true;
	feed(f, hdr);
	assert_non_null(strstr(f->out.data, "<pipelining xmlns='urn:xmpp:features:pipelining'/>"));
	feed(f, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	buf_reset(&f->out);
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	assert_non_null(strstr(f->out.data, "<stream:stream"));
	assert_non_null(strstr(f->out.data, "<mechanism>EXTERNAL</mechanism>"));
	buf_reset(&f->out);
	/* the initiator's pipelined header + auth + header + stanza, in one read */
	feed(f, PROSODY_HDR("b.example", "a.example")
	    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>"
	    PROSODY_HDR("b.example", "a.example")
	    "<message from='x@b.example' to='u@a.example'><body>1</body></message>");
	/* the owner feeds what is left after the restart */
	assert_int_equal(f->out.len > 0, 1);
	assert_null(f->rec.close_reason);
	fx_free(f);
}

/* Stanzas pipelined behind a db:result wait for the verdict: delivered when it is
 * valid, never when it is not. */
static void
test_receiver_holds_pipelined_dialback(void **state)
{
	struct fixture *f;

	(void)state;
	cfg.require_tls = false;
	for (int valid = 0; valid <= 1; valid++) {
		f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
		feed(f, PROSODY_HDR("b.example", "a.example")
		    "<db:result from='b.example' to='a.example'>k</db:result>"
		    "<message from='x@b.example' to='u@a.example'><body>1</body></message>"
		    "<message from='x@b.example' to='u@a.example'><body>2</body></message>");
		assert_int_equal(f->rec.verify_needed, 1);
		assert_int_equal(f->rec.nstanzas, 0);
		assert_null(f->rec.close_reason);
		stream_dialback_verdict(f->s, "a.example", "b.example", valid);
		assert_int_equal(f->rec.nstanzas, valid ? 2 : 0);
		if (!valid)
			assert_string_equal(f->rec.close_reason, "dialback-invalid");
		fx_free(f);
	}
	cfg.require_tls = true;
}

/* Issue 9 §1: one stream, two pipelined db:results (evil.example, c.example) and a
 * stanza behind each. evil's valid verdict releases only evil's stanza; the one that
 * claims c.example stays held and is discarded (counted) on c's invalid verdict. */
static void
test_held_released_only_by_own_pair(void **state)
{
	struct fixture *f;

	(void)state;
	cfg.require_tls = false;
	for (int c_closes = 0; c_closes <= 1; c_closes++) {
		f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
		feed(f, PROSODY_HDR("evil.example", "a.example")
		    "<db:result from='evil.example' to='a.example'>k1</db:result>"
		    "<db:result from='c.example' to='a.example'>garbage</db:result>"
		    "<message from='mallory@c.example' to='alice@a.example'><body>spoof</body>"
		    "</message>"
		    "<message from='eve@evil.example' to='alice@a.example'><body>own</body>"
		    "</message>");
		assert_int_equal(f->rec.verify_needed, 2);
		assert_int_equal(f->s->n_held, 2);
		assert_int_equal(f->rec.nstanzas, 0);
		stream_dialback_verdict(f->s, "a.example", "evil.example", true);
		/* only evil's own stanza, c's stays held */
		assert_int_equal(f->rec.nstanzas, 1);
		assert_string_equal(f->rec.stanzas[0]->from, "eve@evil.example");
		assert_int_equal(f->s->n_held, 1);
		assert_null(f->rec.close_reason);
		/* a new stanza claiming c.example is held too, never delivered */
		feed(f, "<message from='mallory@c.example' to='alice@a.example'><body>2</body>"
		    "</message>");
		assert_int_equal(f->rec.nstanzas, 1);
		assert_int_equal(f->s->n_held, 2);
		if (c_closes) {
			/* the peer goes away before c's verdict: discarded, counted */
			feed(f, "</stream:stream>");
			assert_string_equal(f->rec.close_reason, "peer-closed");
		} else {
			stream_dialback_verdict(f->s, "a.example", "c.example", false);
			assert_string_equal(f->rec.close_reason, "dialback-invalid");
			assert_non_null(strstr(f->out.data, "<db:result from='a.example' "
			    "to='c.example' type='invalid'/>"));
		}
		assert_int_equal(f->rec.nstanzas, 1);
		assert_int_equal(f->s->n_held, 0);
		assert_int_equal(f->s->held_discarded, 2);
		fx_free(f);
	}
	cfg.require_tls = true;
}

/* SASL EXTERNAL authenticates the stream's own pair (a.example, b.example) only: a
 * stanza from b.example to another local domain needs that pair's own db:result. */
static void
test_sasl_authorises_its_pair_only(void **state)
{
	static struct cfg_domain dom_conf = { .name = "conference.a.example" };
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	const char *hdr = PROSODY_HDR("b.example", "a.example");

	(void)state;
	dom_a.next = &dom_conf;
	cfg.require_tls = false;
	f->rec.tls_up = true;
	f->s->tls_active = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	feed(f, hdr);
	feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
	feed(f, hdr);
	assert_true(f->s->sasl_done);
	assert_string_equal(f->s->remote, "b.example");
	feed(f, "<message from='x@b.example' to='u@a.example'><body>1</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	/* piggybacked pair for the other local domain: it needs its own db:result; the
	 * certificate valid for b.example makes it valid at once (XEP-0344), no leg */
	buf_reset(&f->out);
	feed(f, "<db:result from='b.example' to='conference.a.example'>k</db:result>"
	    "<message from='x@b.example' to='room@conference.a.example'><body>2</body>"
	    "</message>");
	assert_int_equal(f->rec.verify_needed, 0);
	assert_non_null(strstr(f->out.data, "<db:result from='conference.a.example' "
	    "to='b.example' type='valid'/>"));
	assert_int_equal(f->rec.nstanzas, 2);
	fx_free(f);

	/* without that db:result, the other local domain is refused */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	f->rec.tls_up = true;
	f->s->tls_active = true;
	feed(f, hdr);
	feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
	feed(f, hdr);
	feed(f, "<message from='x@b.example' to='room@conference.a.example'><body>3</body>"
	    "</message>");
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	assert_int_equal(f->rec.nstanzas, 0);
	fx_free(f);

	/* a restarted stream may not switch to another local domain */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	f->rec.tls_up = true;
	f->s->tls_active = true;
	feed(f, hdr);
	feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
	feed(f, PROSODY_HDR("b.example", "conference.a.example"));
	assert_non_null(strstr(f->out.data, "<host-unknown"));
	assert_string_equal(f->rec.close_reason, "restart-changed-domain");
	fx_free(f);
	dom_a.next = NULL;
	cfg.require_tls = true;
}

/* limits { held }: at the budget the stream consumes no more input until a verdict;
 * the verdict releases the held stanzas and input flows again. */
static void
test_held_budget_pauses_input(void **state)
{
	struct fixture *f;
	char msg[512], in[16384];
	size_t n = 0;
	ssize_t used;

	(void)state;
	cfg.require_tls = false;
	cfg.held_bytes = 2048;
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("b.example", "a.example")
	    "<db:result from='b.example' to='a.example'>k</db:result>");
	snprintf(msg, sizeof(msg), "<message from='x@b.example' to='u@a.example'><body>%0300d"
	    "</body></message>", 7);
	while (n + strlen(msg) < sizeof(in)) {
		memcpy(in + n, msg, strlen(msg));
		n += strlen(msg);
	}
	used = stream_input(f->s, in, n);
	assert_true(used > 0 && (size_t)used < n);      /* stopped behind the budget */
	assert_true(stream_input_paused(f->s));
	/* the held stanzas and the pair table (entry and names) count together */
	assert_true(f->s->held_bytes + sizeof(struct stream_pair) +
	    sizeof("a.example") + sizeof("b.example") >= 2048);
	assert_true(f->s->held_bytes < 2048 + 1024);    /* one stanza over at most */
	assert_int_equal(stream_input(f->s, in + used, n - (size_t)used), 0);
	assert_int_equal(f->rec.nstanzas, 0);
	stream_dialback_verdict(f->s, "a.example", "b.example", true);
	assert_false(stream_input_paused(f->s));
	assert_true(f->rec.nstanzas > 0);
	assert_int_equal(f->s->held_bytes, 0);
	fx_free(f);
	cfg.held_bytes = 1 << 20;
	cfg.require_tls = true;
}

/* Many pairs per stream, as many as the connection's budget (limits { held }) allows;
 * past it a db:result gets a dialback error and the stream stays up. */
static void
test_pairs_bounded_by_budget(void **state)
{
	struct fixture *f;
	char el[256];
	int n_ok = 0;

	(void)state;
	cfg.require_tls = false;
	/* room for 20 pairs: entries and names (r0-r9 a byte shorter than r10-r19) */
	cfg.held_bytes = 20 * (sizeof(struct stream_pair) + sizeof("a.example") +
	    sizeof("r10.example"));
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("r0.example", "a.example"));
	for (int i = 0; i < 25; i++) {
		snprintf(el, sizeof(el), "<db:result from='r%d.example' to='a.example'>k</db:result>",
		    i);
		feed(f, el);
	}
	n_ok = f->rec.verify_needed;
	assert_true(n_ok > 8);                 /* not a fixed 8 any more */
	assert_int_equal(n_ok, 20);
	assert_int_equal(f->s->n_pairs, 20);
	assert_non_null(strstr(f->out.data, "<db:result from='a.example' to='r20.example' "
	    "type='error'><error type='wait'><resource-constraint"));
	assert_null(f->rec.close_reason);      /* the stream stays for its other pairs */
	stream_dialback_verdict(f->s, "a.example", "r3.example", true);
	feed(f, "<message from='x@r3.example' to='u@a.example'><body>ok</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	fx_free(f);
	cfg.held_bytes = 1 << 20;
	cfg.require_tls = true;
}

/* The pairs' names count against the budget as they are: a peer naming long domains
 * (here 191 bytes each) gets fewer pairs out of the same limits { held } than one
 * naming short ones, and never more bytes of table and names than the budget. */
static void
test_pair_names_count(void **state)
{
	struct fixture *f;
	char el[512], dom[256];
	const size_t entry = sizeof(struct stream_pair) + sizeof("a.example");
	size_t dlen;

	(void)state;
	cfg.require_tls = false;
	cfg.held_bytes = 20 * (entry + sizeof("r10.example"));   /* 20 short pairs */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("r0.example", "a.example"));
	for (int i = 0; i < 25; i++) {
		/* three 60-byte labels, then rNN.example: 191-192 bytes */
		snprintf(dom, sizeof(dom), "%060d.%060d.%060d.r%d.example", i, i, i, i);
		snprintf(el, sizeof(el), "<db:result from='%s' to='a.example'>k</db:result>", dom);
		feed(f, el);
	}
	dlen = strlen(dom);
	assert_true(dlen > 190);
	assert_null(f->rec.close_reason);
	/* every pair costs its entry and names; as many as fit, and no more */
	assert_int_equal(f->s->n_pairs, cfg.held_bytes / (entry + dlen + 1));
	assert_true(f->s->n_pairs < 20);
	assert_true(f->s->n_pairs * (entry + dlen - 1) <= cfg.held_bytes);
	assert_non_null(strstr(f->out.data, "type='error'><error type='wait'><resource-constraint"));
	fx_free(f);
	cfg.held_bytes = 1 << 20;
	cfg.require_tls = true;
}

/* ---- multiplexing: added pairs, bidi, XEP-0344 ---- */

#define TLS_FEATURES "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" \
	"</stream:features>"
#define DB_FEATURE "<dialback xmlns='urn:xmpp:features:dialback'/>"
#define BIDI_FEATURE "<bidi xmlns='urn:xmpp:features:bidi'/>"
#define EXTERNAL_FEATURE "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
	"<mechanism>EXTERNAL</mechanism></mechanisms>"

/* An internet initiator a.example -> b.example through STARTTLS (the certificate as the
 * fake says), fed the header (id X2) and then features after TLS; the output holds
 * what it answered. */
static struct fixture *
tls_initiator(const char *features)
{
	struct fixture *f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY,
	    "a.example", "b.example");

	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X1") TLS_FEATURES
	    "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	assert_int_equal(f->rec.start_tls, 1);
	f->rec.tls_up = true;
	stream_tls_ready(f->s);
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X2"));
	feed(f, features);
	return f;
}

/* ... ready by SASL EXTERNAL (the certificate is valid for b.example; stream id X3). */
static struct fixture *
external_initiator(void)
{
	struct fixture *f;

	fake_trusted = true;
	fake_valid_domain = "b.example";
	f = tls_initiator("<stream:features>" EXTERNAL_FEATURE "</stream:features>");
	assert_non_null(strstr(f->out.data, "mechanism='EXTERNAL'"));
	feed(f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X3") "<stream:features/>");
	assert_int_equal(f->rec.ready, 1);
	assert_string_equal(f->s->id, "X3");
	buf_reset(&f->out);
	return f;
}

/* The key of the first db:result in text, checked to be 64 hex digits; static buffer. */
static const char *
db_key(const char *text)
{
	static char key[DIALBACK_KEY_LEN + 1];
	const char *p = strstr(text, "<db:result "), *q, *e;

	assert_non_null(p);
	q = strchr(p, '>');
	assert_non_null(q);
	e = strstr(q, "</db:result>");
	assert_non_null(e);
	assert_int_equal(e - (q + 1), DIALBACK_KEY_LEN);
	snprintf(key, sizeof(key), "%.*s", (int)(e - (q + 1)), q + 1);
	assert_int_equal(strspn(key, "0123456789abcdef"), DIALBACK_KEY_LEN);
	return key;
}

static struct stanza *
test_message(const char *from, const char *to)
{
	char xml[256];
	int n = snprintf(xml, sizeof(xml), "<message xmlns='jabber:server' from='%s' to='%s'>"
	    "<body>bidi</body></message>", from, to);
	struct stanza *st = stanza_new("message", from, to, NULL, false, xml, (size_t)n);

	assert_non_null(st);
	return st;
}

/* stream_add_pair: on a ready relay initiator only; the stream's own pair and a pair
 * asked for already send nothing; a new one sends <db:result from=local to=remote>
 * with the key for the current stream id, and is not carried before its verdict. */
static void
test_add_pair(void **state)
{
	static struct cfg_domain dom_conf = { .name = "conference.a.example" };
	char key[DIALBACK_KEY_LEN + 1];
	struct fixture *f;

	(void)state;
	dom_a.next = &dom_conf;
	/* not ready: refused */
	f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY, "a.example", "b.example");
	assert_int_equal(stream_add_pair(f->s, "conference.a.example", "b.example"), -1);
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X1") TLS_FEATURES);
	assert_int_equal(stream_add_pair(f->s, "conference.a.example", "b.example"), -1);
	assert_null(strstr(f->out.data, "<db:result"));
	fx_free(f);
	/* a receiver never adds pairs */
	f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("a.example", "remote.example"));
	assert_int_equal(stream_add_pair(f->s, "a.example", "other.example"), -1);
	fx_free(f);

	f = external_initiator();
	assert_true(stream_carries(f->s, "a.example", "b.example"));
	assert_int_equal(stream_add_pair(f->s, "a.example", "b.example"), 0);
	assert_int_equal(f->out.len, 0);                   /* its own pair: nothing to ask */
	assert_int_equal(stream_add_pair(f->s, "conference.a.example", "b.example"), 0);
	assert_int_equal(dialback_key("b.example", "conference.a.example", "X3", key), 0);
	assert_string_equal(db_key(f->out.data), key);
	assert_true(strncmp(f->out.data, "<db:result from='conference.a.example' "
	    "to='b.example'>", strlen("<db:result from='conference.a.example' "
	    "to='b.example'>")) == 0);
	assert_int_equal(qf_stats.pairs_piggybacked, 1);
	assert_false(stream_carries(f->s, "conference.a.example", "b.example"));
	buf_reset(&f->out);
	assert_int_equal(stream_add_pair(f->s, "conference.a.example", "b.example"), 0);
	assert_int_equal(f->out.len, 0);                   /* asked already */
	assert_int_equal(qf_stats.pairs_piggybacked, 1);
	/* another remote domain on the same stream: to that domain */
	assert_int_equal(stream_add_pair(f->s, "a.example", "c.example"), 0);
	assert_non_null(strstr(f->out.data, "<db:result from='a.example' to='c.example'>"));
	assert_int_equal(dialback_key("c.example", "a.example", "X3", key), 0);
	assert_string_equal(db_key(f->out.data), key);
	assert_null(f->rec.close_reason);
	fx_free(f);
	dom_a.next = NULL;
}

/* The receiving server's answers reach ops->pair_verdict: valid makes the pair carried;
 * invalid and error drop it (asked again if wanted) and the stream stays; answers for
 * pairs never asked for, or answered already, are ignored. */
static void
test_pair_verdicts(void **state)
{
	struct fixture *f;

	(void)state;
	f = external_initiator();
	assert_int_equal(stream_add_pair(f->s, "a.example", "c.example"), 0);
	assert_int_equal(stream_add_pair(f->s, "a.example", "d.example"), 0);
	assert_int_equal(stream_add_pair(f->s, "a.example", "e.example"), 0);
	assert_int_equal(f->s->n_pairs, 3);
	feed(f, "<db:result from='c.example' to='a.example' type='valid'/>");
	assert_int_equal(f->rec.pair_verdicts, 1);
	assert_true(f->rec.pv_valid);
	assert_string_equal(f->rec.pv_local, "a.example");
	assert_string_equal(f->rec.pv_remote, "c.example");
	assert_true(stream_carries(f->s, "a.example", "c.example"));
	feed(f, "<db:result from='d.example' to='a.example' type='invalid'/>");
	assert_int_equal(f->rec.pair_verdicts, 2);
	assert_false(f->rec.pv_valid);
	assert_string_equal(f->rec.pv_remote, "d.example");
	assert_false(stream_carries(f->s, "a.example", "d.example"));
	assert_int_equal(f->s->n_pairs, 2);                /* d is gone */
	assert_null(f->rec.close_reason);                  /* the stream stays */
	assert_true(stream_is_ready(f->s));
	feed(f, "<db:result from='e.example' to='a.example' type='error'><error type='cancel'>"
	    "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
	    "</db:result>");
	assert_int_equal(f->rec.pair_verdicts, 3);
	assert_false(f->rec.pv_valid);
	assert_false(stream_carries(f->s, "a.example", "e.example"));
	assert_int_equal(f->s->n_pairs, 1);
	/* unsolicited, and a second answer for c: ignored */
	feed(f, "<db:result from='x.example' to='a.example' type='valid'/>");
	feed(f, "<db:result from='c.example' to='a.example' type='invalid'/>");
	assert_int_equal(f->rec.pair_verdicts, 3);
	assert_false(stream_carries(f->s, "a.example", "x.example"));
	assert_true(stream_carries(f->s, "a.example", "c.example"));
	assert_null(f->rec.close_reason);
	/* a refused pair may be asked for again */
	buf_reset(&f->out);
	assert_int_equal(stream_add_pair(f->s, "a.example", "d.example"), 0);
	assert_non_null(strstr(f->out.data, "<db:result from='a.example' to='d.example'>"));
	fx_free(f);
}

/* Many pairs on one stream (the pair table gets its index past a few): a receiver with
 * 200 piggybacked pairs authorises each verified pair's stanzas (any case), holds a
 * pending one's, refuses a pair it never saw; an initiator with 200 added pairs carries
 * exactly the valid ones, also after refused ones were removed from the middle. */
#define MANY_PAIRS 200
static void
test_many_pairs(void **state)
{
	struct fixture *f;
	char el[256], dom[64];

	(void)state;
	cfg.require_tls = false;
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("r0.example", "a.example"));
	for (int i = 0; i < MANY_PAIRS; i++) {
		snprintf(el, sizeof(el), "<db:result from='r%d.example' to='a.example'>k</db:result>",
		    i);
		feed(f, el);
	}
	assert_int_equal(f->rec.verify_needed, MANY_PAIRS);
	assert_int_equal(f->s->n_pairs, MANY_PAIRS);
	assert_non_null(f->s->pair_index);
	for (int i = 0; i < MANY_PAIRS; i += 2) {
		snprintf(dom, sizeof(dom), "R%d.Example", i);   /* any case */
		stream_dialback_verdict(f->s, "a.example", dom, true);
	}
	for (int i = 0; i < MANY_PAIRS; i += 2) {
		snprintf(el, sizeof(el), "<message from='x@r%d.example' to='u@a.example'>"
		    "<body>%d</body></message>", i, i);
		feed(f, el);
		assert_int_equal(f->rec.nstanzas, 1);
		snprintf(dom, sizeof(dom), "x@r%d.example", i);
		assert_string_equal(f->rec.stanzas[0]->from, dom);
		stanza_free(f->rec.stanzas[0]);
		f->rec.nstanzas = 0;
	}
	/* a pending pair's stanza waits for its own verdict */
	feed(f, "<message from='x@r7.example' to='u@a.example'><body>held</body></message>");
	assert_int_equal(f->rec.nstanzas, 0);
	assert_int_equal(f->s->n_held, 1);
	stream_dialback_verdict(f->s, "a.example", "r7.example", true);
	assert_int_equal(f->rec.nstanzas, 1);
	assert_null(f->rec.close_reason);
	/* a pair never asked for */
	feed(f, "<message from='x@r999.example' to='u@a.example'><body>no</body></message>");
	assert_string_equal(f->rec.close_reason, "invalid-from");
	fx_free(f);
	cfg.require_tls = true;

	f = external_initiator();
	for (int i = 0; i < MANY_PAIRS; i++) {
		snprintf(dom, sizeof(dom), "p%d.example", i);
		assert_int_equal(stream_add_pair(f->s, "a.example", dom), 0);
	}
	assert_int_equal(f->s->n_pairs, MANY_PAIRS);
	assert_int_equal(stream_add_pair(f->s, "a.example", "P5.EXAMPLE"), 0);   /* asked */
	assert_int_equal(f->s->n_pairs, MANY_PAIRS);
	/* every third refused (removed from the table), the others valid */
	for (int i = 0; i < MANY_PAIRS; i++) {
		snprintf(el, sizeof(el), "<db:result from='p%d.example' to='a.example' "
		    "type='%s'/>", i, i % 3 == 0 ? "invalid" : "valid");
		feed(f, el);
	}
	assert_int_equal(f->s->n_pairs, MANY_PAIRS - (MANY_PAIRS + 2) / 3);
	for (int i = 0; i < MANY_PAIRS; i++) {
		snprintf(dom, sizeof(dom), "p%d.EXAMPLE", i);
		if (i % 3 == 0)
			assert_false(stream_carries(f->s, "a.example", dom));
		else
			assert_true(stream_carries(f->s, "A.example", dom));
	}
	assert_false(stream_carries(f->s, "a.example", "p200.example"));
	assert_false(stream_carries(f->s, "b.example", "p1.example"));
	assert_true(stream_carries(f->s, "a.example", "b.example"));   /* its own */
	assert_null(f->rec.close_reason);
	fx_free(f);
}

/* On the loopback leg quickfed speaks as the remote domain: the db:result goes from
 * the added remote domain to the local server's, and so do the keys. */
static void
test_add_pair_loopback(void **state)
{
	struct fixture *f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_RELAY, "a.example",
	    "remote.example");
	char key[DIALBACK_KEY_LEN + 1];

	(void)state;
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("a.example", "remote.example", "PID1")
	    "<stream:features>" DB_FEATURE "</stream:features>"
	    "<db:result from='a.example' to='remote.example' type='valid'/>");
	assert_int_equal(f->rec.ready, 1);
	buf_reset(&f->out);
	assert_int_equal(stream_add_pair(f->s, "a.example", "other.example"), 0);
	assert_int_equal(dialback_key("a.example", "other.example", "PID1", key), 0);
	assert_non_null(strstr(f->out.data, "<db:result from='other.example' to='a.example'>"));
	assert_string_equal(db_key(f->out.data), key);
	feed(f, "<db:result from='a.example' to='other.example' type='valid'/>");
	assert_int_equal(f->rec.pair_verdicts, 1);
	assert_true(f->rec.pv_valid);
	assert_string_equal(f->rec.pv_local, "a.example");
	assert_string_equal(f->rec.pv_remote, "other.example");
	assert_true(stream_carries(f->s, "a.example", "other.example"));
	fx_free(f);
}

/* XEP-0288, receiver: bidi is offered only on the loopback leg or under TLS, and only
 * when policy says so; after <bidi/> the stream carries its authenticated pairs back
 * (stream_send works while it is open); without it, it does not. */
static void
test_receiver_bidi(void **state)
{
	struct stanza *st = test_message("u@a.example", "x@b.example");
	struct fixture *f;

	(void)state;
	cfg.require_tls = false;
	for (int ask = 0; ask <= 1; ask++) {
		f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
		feed(f, PROSODY_HDR("b.example", "a.example"));
		assert_non_null(strstr(f->out.data, "<dialback"));
		assert_null(strstr(f->out.data, "bidi"));      /* not before TLS */
		feed(f, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		f->rec.tls_up = true;                           /* no valid certificate */
		stream_tls_ready(f->s);
		buf_reset(&f->out);
		feed(f, PROSODY_HDR("b.example", "a.example"));
		assert_non_null(strstr(f->out.data, BIDI_FEATURE));
		if (ask)
			feed(f, "<bidi xmlns='urn:xmpp:bidi'/>");
		assert_int_equal(f->s->bidi, ask);
		assert_int_equal(qf_stats.bidi_streams, (unsigned long)ask);
		feed(f, "<db:result from='b.example' to='a.example'>k</db:result>");
		assert_int_equal(f->rec.verify_needed, 1);
		assert_false(stream_carries(f->s, "a.example", "b.example"));
		stream_dialback_verdict(f->s, "a.example", "b.example", true);
		assert_int_equal(f->s->state, SS_OPEN);
		buf_reset(&f->out);
		assert_int_equal(stream_carries(f->s, "a.example", "b.example"), ask);
		assert_false(stream_carries(f->s, "a.example", "c.example"));
		assert_int_equal(stream_send(f->s, st), ask ? 0 : -1);
		if (ask)
			assert_non_null(strstr(f->out.data, "<body>bidi</body>"));
		else
			assert_int_equal(f->out.len, 0);
		assert_null(f->rec.close_reason);
		qf_stats.bidi_streams = 0;
		fx_free(f);
	}
	/* the loopback leg needs no TLS for it; policy { bidi off } offers nothing */
	f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("a.example", "remote.example"));
	assert_non_null(strstr(f->out.data, BIDI_FEATURE));
	fx_free(f);
	cfg.bidi = false;
	f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("a.example", "remote.example"));
	assert_null(strstr(f->out.data, "bidi"));
	fx_free(f);
	cfg.require_tls = true;
	stanza_free(st);
}

/* A ready internet initiator that asked for bidi (the certificate is not valid for
 * b.example: dialback), with pairs (a, c) and (a, d) added and found valid. */
static struct fixture *
bidi_initiator(void)
{
	struct fixture *f = tls_initiator("<stream:features>" BIDI_FEATURE DB_FEATURE
	    "</stream:features>");
	const char *b = strstr(f->out.data, "<bidi xmlns='urn:xmpp:bidi'/>");

	assert_non_null(b);                                 /* asked for before auth */
	assert_non_null(strstr(b, "<db:result from='a.example' to='b.example'>"));
	assert_true(f->s->bidi);
	feed(f, "<db:result from='b.example' to='a.example' type='valid'/>");
	assert_int_equal(f->rec.ready, 1);
	assert_int_equal(stream_add_pair(f->s, "a.example", "c.example"), 0);
	assert_int_equal(stream_add_pair(f->s, "a.example", "d.example"), 0);
	feed(f, "<db:result from='c.example' to='a.example' type='valid'/>"
	    "<db:result from='d.example' to='a.example' type='valid'/>");
	assert_int_equal(f->rec.pair_verdicts, 2);
	buf_reset(&f->out);
	return f;
}

/* XEP-0288, initiator: stanzas come back only for the pairs this stream authenticated
 * in its own direction, and for an added pair only if the certificate the receiving
 * server showed covers that domain; anything else is invalid-from. */
static void
test_initiator_bidi(void **state)
{
	struct fixture *f;

	(void)state;
	f = bidi_initiator();
	feed(f, "<message from='x@b.example' to='u@a.example'><body>own</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	assert_string_equal(f->rec.stanzas[0]->from, "x@b.example");
	fake_trusted = true;
	fake_also_valid = "c.example";
	feed(f, "<message from='y@c.example' to='u@a.example'><body>added</body></message>");
	assert_int_equal(f->rec.nstanzas, 2);
	assert_null(f->rec.close_reason);
	/* never authenticated here */
	feed(f, "<message from='z@e.example' to='u@a.example'><body>no</body></message>");
	assert_int_equal(f->rec.nstanzas, 2);
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	assert_string_equal(f->rec.close_reason, "invalid-from");
	fx_free(f);

	/* an added pair found valid, but the certificate does not cover d.example */
	fake_trusted = false;
	fake_also_valid = NULL;
	f = bidi_initiator();
	fake_trusted = true;
	fake_also_valid = "c.example";
	feed(f, "<message from='z@d.example' to='u@a.example'><body>d</body></message>");
	assert_int_equal(f->rec.nstanzas, 0);
	assert_non_null(strstr(f->out.data, "<invalid-from"));
	fx_free(f);

	/* back to a domain not served here */
	fake_trusted = false;
	fake_also_valid = NULL;
	f = bidi_initiator();
	feed(f, "<message from='x@b.example' to='u@elsewhere.example'><body>r</body></message>");
	assert_int_equal(f->rec.nstanzas, 0);
	assert_non_null(strstr(f->out.data, "<host-unknown"));
	fx_free(f);

	/* the loopback leg: the local server's stanzas for our own pair come back */
	f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_RELAY, "a.example", "remote.example");
	stream_start(f->s);
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("a.example", "remote.example", "PID1")
	    "<stream:features>" BIDI_FEATURE DB_FEATURE "</stream:features>");
	assert_non_null(strstr(f->out.data, "<bidi xmlns='urn:xmpp:bidi'/>"));
	feed(f, "<db:result from='a.example' to='remote.example' type='valid'/>");
	feed(f, "<message from='u@a.example' to='x@remote.example'><body>l</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	feed(f, "<message from='u@a.example' to='x@other.example'><body>l</body></message>");
	assert_int_equal(f->rec.nstanzas, 1);
	assert_string_equal(f->rec.close_reason, "invalid-from");
	fx_free(f);
}

/* Without bidi an initiator's stream is one-way: a stanza on it is a stream error,
 * whether the peer did not offer bidi, policy { bidi off } did not ask for it, or there
 * was no TLS to ask under. */
static void
test_initiator_without_bidi(void **state)
{
	static const char *const stanza =
	    "<message from='x@b.example' to='u@a.example'><body>back</body></message>";
	struct fixture *f;

	(void)state;
	for (int c = 0; c < 3; c++) {
		if (c == 0) {           /* not offered */
			f = tls_initiator("<stream:features>" DB_FEATURE "</stream:features>");
		} else if (c == 1) {    /* policy off */
			cfg.bidi = false;
			f = tls_initiator("<stream:features>" BIDI_FEATURE DB_FEATURE
			    "</stream:features>");
			cfg.bidi = true;
		} else {                /* no TLS (policy { starttls optional }) */
			cfg.require_tls = false;
			f = fx_new(STREAM_INITIATOR, STREAM_INTERNET, STREAM_RELAY, "a.example",
			    "b.example");
			stream_start(f->s);
			buf_reset(&f->out);
			feed(f, PROSODY_HDR_ID("b.example", "a.example", "X1")
			    "<stream:features>" BIDI_FEATURE DB_FEATURE "</stream:features>");
			cfg.require_tls = true;
		}
		assert_null(strstr(f->out.data, "<bidi"));
		assert_non_null(strstr(f->out.data, "<db:result from='a.example'"));
		assert_false(f->s->bidi);
		feed(f, "<db:result from='b.example' to='a.example' type='valid'/>");
		assert_int_equal(f->rec.ready, 1);
		buf_reset(&f->out);
		feed(f, stanza);
		assert_int_equal(f->rec.nstanzas, 0);
		assert_non_null(strstr(f->out.data, "<unsupported-stanza-type"));
		assert_string_equal(f->rec.close_reason, "unexpected-element");
		fx_free(f);
	}
}

/* XEP-0344: a db:result from a peer whose certificate is valid for the domain it claims
 * is valid at once, with no verification leg; for a domain the certificate does not
 * cover, or without TLS, the key is verified as usual. */
static void
test_dialback_by_certificate(void **state)
{
	struct fixture *f;

	(void)state;
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("b.example", "a.example"));
	feed(f, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	feed(f, PROSODY_HDR("b.example", "a.example"));
	buf_reset(&f->out);
	feed(f, "<db:result from='b.example' to='a.example'>not-even-a-key</db:result>"
	    "<message from='x@b.example' to='u@a.example'><body>1</body></message>");
	assert_int_equal(f->rec.verify_needed, 0);
	assert_non_null(strstr(f->out.data,
	    "<db:result from='a.example' to='b.example' type='valid'/>"));
	assert_int_equal(qf_stats.auth_dialback_cert, 1);
	assert_int_equal(f->rec.nstanzas, 1);
	/* another domain on the same stream: the certificate says nothing about it */
	feed(f, "<db:result from='c.example' to='a.example'>k</db:result>");
	assert_int_equal(f->rec.verify_needed, 1);
	assert_string_equal(f->rec.v_remote, "c.example");
	assert_int_equal(qf_stats.auth_dialback_cert, 1);
	assert_null(f->rec.close_reason);
	fx_free(f);

	/* no TLS: a certificate the fake would call valid is never looked at */
	cfg.require_tls = false;
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	f->rec.tls_up = true;
	feed(f, PROSODY_HDR("b.example", "a.example"));
	feed(f, "<db:result from='b.example' to='a.example'>k</db:result>");
	assert_int_equal(f->rec.verify_needed, 1);
	assert_int_equal(qf_stats.auth_dialback_cert, 1);
	fx_free(f);
	cfg.require_tls = true;
}

/* ---- XEP-0198 stream management ---- */

#define SM_FEATURE "<sm xmlns='urn:xmpp:sm:3'/>"
#define SM_ENABLE  "<enable xmlns='urn:xmpp:sm:3'/>"
#define SM_ENABLED "<enabled xmlns='urn:xmpp:sm:3'/>"
#define SM_R       "<r xmlns='urn:xmpp:sm:3'/>"
#define MSG_B_A    "<message from='x@b.example' to='u@a.example'><body>m</body></message>"

/* An internet receiver from b.example through STARTTLS (the certificate valid for
 * b.example); the output holds the features after TLS. */
static struct fixture *
tls_receiver(void)
{
	struct fixture *f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");

	feed(f, PROSODY_HDR("b.example", "a.example"));
	assert_null(strstr(f->out.data, SM_FEATURE));       /* not before TLS */
	feed(f, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	f->rec.tls_up = true;
	fake_trusted = true;
	fake_valid_domain = "b.example";
	stream_tls_ready(f->s);
	buf_reset(&f->out);
	feed(f, PROSODY_HDR("b.example", "a.example"));
	return f;
}

/* Receiver: <sm/> is offered once TLS is up (on the internet; on the loopback leg
 * without), never under policy { stream_management off } or on the internet without
 * TLS. <enable/> before authentication is answered <failed/>, after it <enabled/>;
 * from then on the stanzas received are counted and <r/> is answered with their
 * number. */
static void
test_sm_receiver(void **state)
{
	struct fixture *f;

	(void)state;
	cfg.stream_management = true;
	f = tls_receiver();
	assert_non_null(strstr(f->out.data, SM_FEATURE));
	buf_reset(&f->out);
	feed(f, SM_ENABLE);                                 /* not authenticated yet */
	assert_non_null(strstr(f->out.data, "<failed xmlns='urn:xmpp:sm:3'>"));
	assert_false(f->s->sm.on);
	assert_null(f->rec.close_reason);
	feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
	buf_reset(&f->out);
	feed(f, PROSODY_HDR("b.example", "a.example"));
	assert_non_null(strstr(f->out.data, SM_FEATURE));   /* offered again after SASL */
	feed(f, MSG_B_A);                                   /* before enable: not counted */
	assert_int_equal(f->rec.nstanzas, 1);
	buf_reset(&f->out);
	feed(f, SM_ENABLE);
	assert_string_equal(f->out.data, SM_ENABLED);
	assert_true(f->s->sm.on);
	assert_int_equal(qf_stats.sm_enabled, 1);
	buf_reset(&f->out);
	feed(f, SM_R);
	assert_string_equal(f->out.data, "<a xmlns='urn:xmpp:sm:3' h='0'/>");
	buf_reset(&f->out);
	feed(f, MSG_B_A MSG_B_A SM_R);
	assert_int_equal(f->rec.nstanzas, 3);
	assert_string_equal(f->out.data, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
	buf_reset(&f->out);
	feed(f, SM_ENABLE);                                 /* once is enough */
	assert_non_null(strstr(f->out.data, "<failed xmlns='urn:xmpp:sm:3'>"));
	assert_null(f->rec.close_reason);
	fx_free(f);

	/* held stanzas count when taken, not when released */
	cfg.require_tls = false;
	f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("a.example", "remote.example"));
	assert_non_null(strstr(f->out.data, SM_FEATURE));   /* loopback: no TLS needed */
	feed(f, "<db:result from='a.example' to='remote.example'>k</db:result>");
	stream_dialback_verdict(f->s, "a.example", "remote.example", true);
	buf_reset(&f->out);
	feed(f, SM_ENABLE);
	assert_string_equal(f->out.data, SM_ENABLED);
	buf_reset(&f->out);
	feed(f, "<db:result from='a.example' to='other.example'>k</db:result>"
	    "<message from='u@a.example' to='x@other.example'><body>held</body></message>"
	    SM_R);
	assert_int_equal(f->rec.nstanzas, 0);
	assert_int_equal(f->s->n_held, 1);
	assert_string_equal(f->out.data, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
	fx_free(f);

	/* the internet without TLS: not offered, and refused */
	f = fx_new(STREAM_RECEIVER, STREAM_INTERNET, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("b.example", "a.example"));
	assert_non_null(strstr(f->out.data, "<dialback"));
	assert_null(strstr(f->out.data, SM_FEATURE));
	feed(f, "<db:result from='b.example' to='a.example'>k</db:result>");
	stream_dialback_verdict(f->s, "a.example", "b.example", true);
	buf_reset(&f->out);
	feed(f, SM_ENABLE);
	assert_non_null(strstr(f->out.data, "<failed xmlns='urn:xmpp:sm:3'>"));
	assert_false(f->s->sm.on);
	fx_free(f);
	cfg.require_tls = true;

	/* policy off: not offered, and refused after authentication */
	cfg.stream_management = false;
	f = tls_receiver();
	assert_null(strstr(f->out.data, SM_FEATURE));
	feed(f, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
	feed(f, PROSODY_HDR("b.example", "a.example"));
	assert_null(strstr(f->out.data, SM_FEATURE));
	buf_reset(&f->out);
	feed(f, SM_ENABLE);
	assert_non_null(strstr(f->out.data, "<failed xmlns='urn:xmpp:sm:3'>"));
	assert_false(stream_sm_tracking(f->s));
	assert_null(f->rec.close_reason);
	fx_free(f);
}

/* Initiator: when the receiver offered <sm/>, <enable/> goes out just before ready,
 * ahead of the stanzas the owner sends from its ready callback, and those are counted;
 * <a h/> reaches ops->acked with the stanzas it acknowledged; an h above what was sent
 * is a stream error. */
static void
test_sm_initiator(void **state)
{
	struct stanza *st = test_message("u@a.example", "x@b.example");
	struct fixture *f;
	const char *en, *msg;

	(void)state;
	cfg.stream_management = true;
	f = tls_initiator("<stream:features>" SM_FEATURE DB_FEATURE "</stream:features>");
	assert_null(strstr(f->out.data, SM_ENABLE));        /* not before authentication */
	f->rec.send_at_ready = st;
	buf_reset(&f->out);
	feed(f, "<db:result from='b.example' to='a.example' type='valid'/>");
	assert_int_equal(f->rec.ready, 1);
	en = strstr(f->out.data, SM_ENABLE);
	msg = strstr(f->out.data, "<message");
	assert_non_null(en);
	assert_non_null(msg);
	assert_true(en < msg);
	assert_true(stream_sm_tracking(f->s));
	assert_int_equal(f->s->sm.out, 1);
	assert_int_equal(stream_send(f->s, st), 0);
	assert_int_equal(f->s->sm.out, 2);
	assert_int_equal(sm_unacked(&f->s->sm), 2);
	buf_reset(&f->out);
	feed(f, SM_ENABLED);
	assert_true(f->s->sm.on);
	assert_int_equal(qf_stats.sm_enabled, 1);
	assert_string_equal(f->out.data, SM_R);             /* about the two sent so far */
	assert_int_equal(stream_send(f->s, st), 0);
	stream_sm_request(f->s);                            /* one <r/> outstanding */
	assert_null(strstr(strstr(f->out.data, SM_R) + 1, SM_R));
	feed(f, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
	assert_int_equal(f->rec.acked, 2);
	assert_int_equal(qf_stats.sm_acked, 2);
	assert_int_equal(sm_unacked(&f->s->sm), 1);
	/* the receiver answers an <r/> of ours with what it handled of theirs */
	buf_reset(&f->out);
	feed(f, SM_R);
	assert_string_equal(f->out.data, "<a xmlns='urn:xmpp:sm:3' h='0'/>");
	assert_null(f->rec.close_reason);
	feed(f, "<a xmlns='urn:xmpp:sm:3' h='4'/>");        /* 3 were sent */
	assert_int_equal(f->rec.acked, 2);
	assert_non_null(strstr(f->out.data, "<undefined-condition"));
	assert_non_null(strstr(f->out.data, "handled-count-too-high"));
	assert_string_equal(f->rec.close_reason, "sm-violation");
	fx_free(f);

	/* the SASL EXTERNAL path: offered in the features after the restart */
	fake_trusted = true;
	fake_valid_domain = "b.example";
	f = tls_initiator("<stream:features>" EXTERNAL_FEATURE "</stream:features>");
	feed(f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	buf_reset(&f->out);
	feed(f, PROSODY_HDR_ID("b.example", "a.example", "X3")
	    "<stream:features>" SM_FEATURE "</stream:features>");
	assert_int_equal(f->rec.ready, 1);
	assert_string_equal(f->out.data, SM_ENABLE);
	fx_free(f);

	/* not offered, or policy off: no <enable/>, nothing counted */
	for (int off = 0; off <= 1; off++) {
		cfg.stream_management = off == 0;
		f = tls_initiator(off ? "<stream:features>" SM_FEATURE DB_FEATURE
		    "</stream:features>" : "<stream:features>" DB_FEATURE "</stream:features>");
		buf_reset(&f->out);
		feed(f, "<db:result from='b.example' to='a.example' type='valid'/>");
		assert_int_equal(f->rec.ready, 1);
		assert_null(strstr(f->out.data, SM_ENABLE));
		assert_int_equal(stream_send(f->s, st), 0);
		assert_false(stream_sm_tracking(f->s));
		assert_int_equal(f->s->sm.out, 0);
		fx_free(f);
	}
	stanza_free(st);
}

/* Initiator: <failed/> after our <enable/> reaches ops->acked with failed, the stream
 * stays and counts no more; out of turn (before ready, or a second answer) it is a
 * stream error. */
static void
test_sm_initiator_failed(void **state)
{
	struct stanza *st = test_message("u@a.example", "x@b.example");
	struct fixture *f;

	(void)state;
	cfg.stream_management = true;
	f = tls_initiator("<stream:features>" SM_FEATURE DB_FEATURE "</stream:features>");
	feed(f, "<db:result from='b.example' to='a.example' type='valid'/>");
	assert_int_equal(stream_send(f->s, st), 0);
	assert_true(stream_sm_tracking(f->s));
	feed(f, "<failed xmlns='urn:xmpp:sm:3'><feature-not-implemented "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
	assert_int_equal(f->rec.sm_failed, 1);
	assert_int_equal(f->rec.acked, 0);
	assert_false(stream_sm_tracking(f->s));
	assert_null(f->rec.close_reason);
	assert_true(stream_is_ready(f->s));
	assert_int_equal(stream_send(f->s, st), 0);
	assert_int_equal(f->s->sm.out, 0);
	buf_reset(&f->out);
	feed(f, "<failed xmlns='urn:xmpp:sm:3'/>");         /* not asked any more */
	assert_int_equal(f->rec.sm_failed, 1);
	assert_non_null(strstr(f->out.data, "<undefined-condition"));
	assert_string_equal(f->rec.close_reason, "sm-violation");
	fx_free(f);

	/* stream management before the stream is open */
	f = tls_initiator("<stream:features>" SM_FEATURE DB_FEATURE "</stream:features>");
	feed(f, SM_ENABLED);
	assert_non_null(strstr(f->out.data, "<unsupported-stanza-type"));
	assert_string_equal(f->rec.close_reason, "unexpected-element");
	assert_int_equal(f->rec.ready, 0);
	fx_free(f);
	stanza_free(st);
}

/* stream_may_send: while a piggybacked db:result is pending, the pairs with the same
 * sending domain wait (Prosody resets that domain's authentication on a new
 * db:result), other sending domains go on; after the verdict, all go. On the loopback
 * leg the sending domain is the remote one we speak as. A receiver is never held. */
static void
test_sm_may_send(void **state)
{
	static struct cfg_domain dom_conf = { .name = "conference.a.example" };
	struct fixture *f;

	(void)state;
	dom_a.next = &dom_conf;
	f = external_initiator();
	assert_true(stream_may_send(f->s, "a.example", "b.example"));
	assert_int_equal(stream_add_pair(f->s, "a.example", "c.example"), 0);
	assert_false(stream_may_send(f->s, "a.example", "b.example"));
	assert_false(stream_may_send(f->s, "a.example", "c.example"));
	assert_true(stream_may_send(f->s, "conference.a.example", "b.example"));
	assert_int_equal(stream_add_pair(f->s, "conference.a.example", "b.example"), 0);
	assert_false(stream_may_send(f->s, "conference.a.example", "b.example"));
	feed(f, "<db:result from='c.example' to='a.example' type='valid'/>");
	assert_true(stream_may_send(f->s, "a.example", "b.example"));
	assert_true(stream_may_send(f->s, "a.example", "c.example"));
	assert_false(stream_may_send(f->s, "conference.a.example", "b.example"));
	feed(f, "<db:result from='b.example' to='conference.a.example' type='invalid'/>");
	assert_true(stream_may_send(f->s, "conference.a.example", "b.example"));
	assert_null(f->rec.close_reason);
	fx_free(f);

	/* the loopback leg: we speak as remote.example, other.example */
	f = fx_new(STREAM_INITIATOR, STREAM_LOCAL, STREAM_RELAY, "a.example", "remote.example");
	stream_start(f->s);
	feed(f, PROSODY_HDR_ID("a.example", "remote.example", "PID1")
	    "<stream:features>" DB_FEATURE "</stream:features>"
	    "<db:result from='a.example' to='remote.example' type='valid'/>");
	assert_int_equal(f->rec.ready, 1);
	assert_int_equal(stream_add_pair(f->s, "a.example", "other.example"), 0);
	assert_true(stream_may_send(f->s, "a.example", "remote.example"));
	assert_false(stream_may_send(f->s, "a.example", "other.example"));
	assert_false(stream_may_send(f->s, "conference.a.example", "other.example"));
	feed(f, "<db:result from='a.example' to='other.example' type='valid'/>");
	assert_true(stream_may_send(f->s, "a.example", "other.example"));
	assert_true(stream_may_send(f->s, "conference.a.example", "other.example"));
	fx_free(f);

	/* a receiver sends back (bidi) without this rule */
	f = fx_new(STREAM_RECEIVER, STREAM_LOCAL, STREAM_RELAY, "", "");
	feed(f, PROSODY_HDR("a.example", "remote.example")
	    "<db:result from='a.example' to='remote.example'>k</db:result>"
	    "<db:result from='a.example' to='other.example'>k</db:result>");
	assert_int_equal(f->rec.verify_needed, 2);
	assert_true(stream_may_send(f->s, "a.example", "remote.example"));
	fx_free(f);
	dom_a.next = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_local_receiver_dialback, setup),
		cmocka_unit_test_setup(test_local_receiver_refuses_foreign_origin, setup),
		cmocka_unit_test_setup(test_receiver_answers_db_verify, setup),
		cmocka_unit_test_setup(test_local_initiator, setup),
		cmocka_unit_test_setup(test_initiator_dialback_refused, setup),
		cmocka_unit_test_setup(test_internet_receiver_starttls_handoff, setup),
		cmocka_unit_test_setup(test_incoming_dane, setup),
		cmocka_unit_test_setup(test_internet_receiver_spoofed_from, setup),
		cmocka_unit_test_setup(test_internet_receiver_policy, setup),
		cmocka_unit_test_setup(test_full_jids_refused, setup),
		cmocka_unit_test_setup(test_internet_initiator_secure_auth, setup),
		cmocka_unit_test_setup(test_internet_initiator_external, setup),
		cmocka_unit_test_setup(test_verify_stream, setup),
		cmocka_unit_test_setup(test_split_everywhere, setup),
		cmocka_unit_test_setup(test_pipelined_initiator_external, setup),
		cmocka_unit_test_setup(test_pipelined_auth_refused, setup),
		cmocka_unit_test_setup(test_receiver_early_features_after_tls, setup),
		cmocka_unit_test_setup(test_receiver_holds_pipelined_dialback, setup),
		cmocka_unit_test_setup(test_held_released_only_by_own_pair, setup),
		cmocka_unit_test_setup(test_sasl_authorises_its_pair_only, setup),
		cmocka_unit_test_setup(test_held_budget_pauses_input, setup),
		cmocka_unit_test_setup(test_pairs_bounded_by_budget, setup),
		cmocka_unit_test_setup(test_pair_names_count, setup),
		cmocka_unit_test_setup(test_add_pair, setup),
		cmocka_unit_test_setup(test_pair_verdicts, setup),
		cmocka_unit_test_setup(test_many_pairs, setup),
		cmocka_unit_test_setup(test_add_pair_loopback, setup),
		cmocka_unit_test_setup(test_receiver_bidi, setup),
		cmocka_unit_test_setup(test_initiator_bidi, setup),
		cmocka_unit_test_setup(test_initiator_without_bidi, setup),
		cmocka_unit_test_setup(test_dialback_by_certificate, setup),
		cmocka_unit_test_setup(test_sm_receiver, setup),
		cmocka_unit_test_setup(test_sm_initiator, setup),
		cmocka_unit_test_setup(test_sm_initiator_failed, setup),
		cmocka_unit_test_setup(test_sm_may_send, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
