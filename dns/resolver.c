/* dns/resolver.c - asynchronous XMPP peer resolution on libunbound, driven by libev.
 * SPDX-License-Identifier: ISC
 * route.c calls resolver_lookup() for a remote domain and gets one callback with the
 * ordered connection targets (SRV _xmpp-server/_xmpps-server, then AAAA/A per target, or
 * the domain's own AAAA/A on 5269 when there is no SRV at all). This file owns the ub_ctx
 * (threaded, its fd on an ev_io), one "query" object per (name, type) so a disk cache and
 * TLSA lookups can slot in later, and the request lifetime: timeout, cancel and deferred
 * delivery so callbacks never run inside resolver_lookup() or inside ub_process(). */
#include <arpa/inet.h>
#include <ctype.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#include "core/log.h"
#include "dns/resolver.h"
#include "dns/srv.h"

#define RESOLVER_MAGIC   0x52534c56u   /* "RSLV" */
#define REQ_MAGIC        0x52455155u   /* "REQU" */
#define QUERY_MAGIC      0x51525959u   /* "QRYY" */
#define DEAD_MAGIC       0xdeadbeefu

#define MAX_RECS_PER_ANSWER  32        /* SRV records taken from one answer */
#define MAX_ADDRS_PER_ANSWER 32        /* addresses taken from one A/AAAA answer */
#define MAX_SRV              (2 * MAX_RECS_PER_ANSWER)
#define MAX_HOSTS            16        /* distinct SRV targets whose addresses we resolve */
#define MAX_TARGETS          64        /* socket addresses handed back */
#define DEFAULT_TIMEOUT_MS   10000
#define XMPP_S2S_PORT        5269
#define RR_CLASS_IN          1
#define RR_TYPE_A            1
#define RR_TYPE_AAAA         28
#define RR_TYPE_SRV          33

/* What one finished query said, in the terms the request logic needs. */
enum query_answer {
	QA_DATA = 0,   /* records of the asked type */
	QA_NODATA,     /* the name exists, no records of that type */
	QA_NXDOMAIN,   /* the name does not exist */
	QA_FAIL,       /* resolver error, SERVFAIL/REFUSED, or no answer */
	QA_BOGUS,      /* DNSSEC validation failed */
};

/* Where a request is. */
enum req_phase {
	REQ_SRV = 0,   /* waiting for both SRV answers */
	REQ_ADDR,      /* waiting for the AAAA/A answers of the targets */
	REQ_DONE,      /* result built, delivery deferred to the next loop iteration */
};

/* One libunbound question (name, type) and its answer. Owned by a request; once the
 * request is cancelled while libunbound still holds it, it is an orphan owned by the
 * resolver until its callback arrives or the ub_ctx is deleted. */
struct query {
	uint32_t            magic;
	struct resolver    *r;
	struct resolve_req *req;      /* NULL for an orphan */
	struct query       *next;     /* in req->queries or r->orphans */
	char                name[300];
	int                 rrtype;
	int                 ub_id;
	bool                inflight; /* libunbound may still call back */
	bool                done;     /* err/res are valid */
	int                 err;      /* libunbound error, 0 when res holds an answer */
	struct ub_result   *res;      /* owned; NULL on error */
};

/* A distinct SRV target name and its address queries. */
struct req_host {
	char          name[256];
	struct query *aaaa, *a;       /* borrowed from req->queries; NULL if not started */
};

struct resolve_req {
	uint32_t            magic;
	struct resolver    *r;
	struct resolve_req *prev, *next;   /* in r->reqs */
	char                domain[256];
	resolve_cb          cb;
	void               *arg;
	enum req_phase      phase;
	size_t              pending;       /* queries of this phase still in flight */
	struct query       *queries;       /* all queries of this request, owned */
	struct query       *srv_xmpp, *srv_xmpps;  /* borrowed from queries */
	bool                fallback;      /* no SRV: the domain itself on 5269 */
	struct srv_record   recs[MAX_SRV]; /* usable records in connection order */
	size_t              rec_host[MAX_SRV];
	size_t              n_recs;
	struct req_host     hosts[MAX_HOSTS];
	size_t              n_hosts;
	ev_timer            timeout;
	ev_timer            deliver;
	char                why[256];
	struct resolve_target *targets;    /* owned, MAX_TARGETS entries */
	struct resolve_result result;
};

struct resolver {
	uint32_t            magic;
	struct ev_loop     *loop;
	struct ub_ctx      *ctx;
	ev_io               io;            /* ub_fd() readable: answers are waiting */
	uint32_t            timeout_ms;
	struct resolve_req *reqs;          /* pending requests */
	struct query       *orphans;       /* cancelled queries libunbound may still answer */
	struct resolver_stats stats;
};

static void resolver_io_cb(struct ev_loop *, ev_io *, int);
static void resolver_ub_cb(void *, int, struct ub_result *);
static void req_timeout_cb(struct ev_loop *, ev_timer *, int);
static void req_deliver_cb(struct ev_loop *, ev_timer *, int);
static uint32_t resolver_rand(void *, uint32_t);
static int domain_normalize(const char *, char *, size_t);
static struct query *query_start(struct resolve_req *, const char *, int);
static void query_release(struct resolver *, struct query *);
static void query_free(struct query *);
static enum query_answer query_answer(const struct query *);
static enum dns_security query_security(const struct query *);
static const char *query_why(const struct query *);
static enum dns_security sec_weakest(enum dns_security, enum dns_security);
static void req_step(struct resolve_req *);
static void req_srv_complete(struct resolve_req *);
static void req_addr_complete(struct resolve_req *);
static size_t req_collect_srv(struct resolve_req *, struct query *, bool, bool *);
static size_t req_add_addrs(struct resolve_req *, size_t, const struct srv_record *,
    const struct query *, enum dns_security);
static void req_finish(struct resolve_req *, enum resolve_status, const char *);
static void req_release_queries(struct resolve_req *);
static void req_unlink(struct resolve_req *);
static void req_free(struct resolve_req *);

struct resolver *
resolver_new(struct ev_loop *loop, const struct config *cfg)
{
	struct resolver *r;
	int rc;

	if (loop == NULL) {
		log_warnx("dns resolver-init reason=no-loop");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_warn("dns resolver-init reason=alloc");
		return NULL;
	}
	r->magic = RESOLVER_MAGIC;
	r->loop = loop;
	r->timeout_ms = (cfg != NULL && cfg->dns_timeout_ms != 0) ?
	    cfg->dns_timeout_ms : DEFAULT_TIMEOUT_MS;
	if ((r->ctx = ub_ctx_create()) == NULL) {
		log_warnx("dns resolver-init reason=ub_ctx_create-failed");
		free(r);
		return NULL;
	}
	if ((rc = ub_ctx_async(r->ctx, 1)) != 0) {
		log_warnx("dns resolver-init reason=ub_ctx_async: %s", ub_strerror(rc));
		goto fail;
	}
	if ((rc = ub_ctx_set_option(r->ctx, "do-not-query-localhost:", "no")) != 0) {
		log_warnx("dns resolver-init reason=do-not-query-localhost: %s",
		    ub_strerror(rc));
		goto fail;
	}
	if (cfg != NULL && cfg->n_forwarders > 0) {
		for (size_t i = 0; i < cfg->n_forwarders && i < CFG_MAX_FORWARDERS; i++) {
			const char *fwd = cfg->forwarders[i];

			if (fwd == NULL || *fwd == '\0')
				continue;
			if ((rc = ub_ctx_set_fwd(r->ctx, fwd)) != 0) {
				log_warnx("dns resolver-init forwarder=%s reason=%s", fwd,
				    ub_strerror(rc));
				goto fail;
			}
			log_debug("dns resolver-init forwarder=%s", fwd);
		}
	} else if ((rc = ub_ctx_resolvconf(r->ctx, NULL)) != 0) {
		/* Without resolv.conf libunbound recurses from the root hints itself. */
		log_warnx("dns resolver-init resolvconf reason=%s (recursing ourselves)",
		    ub_strerror(rc));
	}
	if (cfg != NULL && cfg->dnssec && cfg->trust_anchor_file != NULL) {
		if ((rc = ub_ctx_add_ta_file(r->ctx, cfg->trust_anchor_file)) != 0) {
			log_warnx("dns resolver-init trust_anchor_file=%s reason=%s",
			    cfg->trust_anchor_file, ub_strerror(rc));
			goto fail;
		}
		log_debug("dns resolver-init dnssec=on trust_anchor_file=%s",
		    cfg->trust_anchor_file);
	}
	ev_io_init(&r->io, resolver_io_cb, ub_fd(r->ctx), EV_READ);
	r->io.data = r;
	ev_io_start(loop, &r->io);
	ev_unref(loop);         /* an idle resolver does not keep the loop alive */
	return r;
fail:
	ub_ctx_delete(r->ctx);
	r->magic = DEAD_MAGIC;
	free(r);
	return NULL;
}

void
resolver_free(struct resolver *r)
{
	struct query *q;

	if (r == NULL)
		return;
	if (r->magic != RESOLVER_MAGIC) {
		log_warnx("dns resolver-free reason=bad-magic");
		return;
	}
	while (r->reqs != NULL) {
		struct resolve_req *req = r->reqs;

		log_debug("dns lookup domain=%s cancelled reason=resolver-free", req->domain);
		req_release_queries(req);
		ev_timer_stop(r->loop, &req->timeout);
		ev_timer_stop(r->loop, &req->deliver);
		req_unlink(req);
		req_free(req);
	}
	ev_ref(r->loop);
	ev_io_stop(r->loop, &r->io);
	/* Deletes outstanding libunbound queries without calling back. */
	ub_ctx_delete(r->ctx);
	while ((q = r->orphans) != NULL) {
		r->orphans = q->next;
		query_free(q);
	}
	r->magic = DEAD_MAGIC;
	free(r);
}

struct resolve_req *
resolver_lookup(struct resolver *r, const char *domain, resolve_cb cb, void *arg)
{
	struct resolve_req *req;
	char name[300];

	if (r == NULL || r->magic != RESOLVER_MAGIC || cb == NULL || domain == NULL) {
		log_warnx("dns lookup reason=bad-arguments");
		return NULL;
	}
	if ((req = calloc(1, sizeof(*req))) == NULL) {
		log_warn("dns lookup domain=%s reason=alloc", domain);
		return NULL;
	}
	if (domain_normalize(domain, req->domain, sizeof(req->domain)) == -1) {
		log_warnx("dns lookup domain=%.64s reason=invalid-domain", domain);
		free(req);
		return NULL;
	}
	if ((req->targets = calloc(MAX_TARGETS, sizeof(*req->targets))) == NULL) {
		log_warn("dns lookup domain=%s reason=alloc", req->domain);
		free(req);
		return NULL;
	}
	req->magic = REQ_MAGIC;
	req->r = r;
	req->cb = cb;
	req->arg = arg;
	req->phase = REQ_SRV;
	ev_timer_init(&req->timeout, req_timeout_cb, r->timeout_ms / 1000.0, 0.);
	req->timeout.data = req;
	ev_timer_init(&req->deliver, req_deliver_cb, 0., 0.);
	req->deliver.data = req;

	req->next = r->reqs;
	if (r->reqs != NULL)
		r->reqs->prev = req;
	r->reqs = req;

	snprintf(name, sizeof(name), "_xmpp-server._tcp.%s", req->domain);
	req->srv_xmpp = query_start(req, name, RR_TYPE_SRV);
	snprintf(name, sizeof(name), "_xmpps-server._tcp.%s", req->domain);
	req->srv_xmpps = query_start(req, name, RR_TYPE_SRV);
	if (req->srv_xmpp == NULL || req->srv_xmpps == NULL || req->pending == 0) {
		/* Allocation failed or libunbound refused both: nothing is underway. */
		log_warnx("dns lookup domain=%s reason=cannot-start-queries", req->domain);
		req_release_queries(req);
		req_unlink(req);
		req_free(req);
		return NULL;
	}
	ev_timer_start(r->loop, &req->timeout);
	r->stats.lookups++;
	log_debug("dns lookup domain=%s started", req->domain);
	return req;
}

void
resolver_cancel(struct resolve_req *req)
{
	struct resolver *r;

	if (req == NULL)
		return;
	if (req->magic != REQ_MAGIC) {
		log_warnx("dns cancel reason=bad-magic");
		return;
	}
	r = req->r;
	log_debug("dns lookup domain=%s cancelled", req->domain);
	req_release_queries(req);
	ev_timer_stop(r->loop, &req->timeout);
	ev_timer_stop(r->loop, &req->deliver);
	req_unlink(req);
	req_free(req);
}

const char *
resolve_status_str(enum resolve_status st)
{
	switch (st) {
	case RESOLVE_OK:        return "ok";
	case RESOLVE_NOTFOUND:  return "notfound";
	case RESOLVE_NOSERVICE: return "noservice";
	case RESOLVE_BOGUS:     return "bogus";
	case RESOLVE_SERVFAIL:  return "servfail";
	case RESOLVE_TIMEOUT:   return "timeout";
	}
	return "unknown";
}

void
resolver_get_stats(const struct resolver *r, struct resolver_stats *out)
{
	if (out == NULL)
		return;
	if (r == NULL || r->magic != RESOLVER_MAGIC) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = r->stats;
}

static void
resolver_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct resolver *r = w->data;
	int rc;

	if (r == NULL || r->magic != RESOLVER_MAGIC) {
		log_warnx("dns io reason=bad-magic");
		return;
	}
	/* Runs resolver_ub_cb for every answer waiting; no user callback runs in here. */
	if ((rc = ub_process(r->ctx)) != 0)
		log_warnx("dns io reason=ub_process: %s", ub_strerror(rc));
}

static void
resolver_ub_cb(void *mydata, int err, struct ub_result *res)
{
	struct query *q = mydata;
	struct resolve_req *req;

	if (q == NULL || q->magic != QUERY_MAGIC) {
		log_warnx("dns answer reason=unknown-query");
		if (res != NULL)
			ub_resolve_free(res);
		return;
	}
	q->inflight = false;
	if ((req = q->req) == NULL) {
		/* Cancelled while libunbound held it: drop the orphan. */
		struct query **pp = &q->r->orphans;

		while (*pp != NULL && *pp != q)
			pp = &(*pp)->next;
		if (*pp == q)
			*pp = q->next;
		if (res != NULL)
			ub_resolve_free(res);
		query_free(q);
		return;
	}
	q->done = true;
	q->err = err;
	q->res = res;
	log_debug("dns answer domain=%s name=%s type=%d err=%d rcode=%d data=%d secure=%d bogus=%d",
	    req->domain, q->name, q->rrtype, err, res ? res->rcode : -1,
	    res ? res->havedata : 0, res ? res->secure : 0, res ? res->bogus : 0);
	if (req->pending > 0)
		req->pending--;
	if (req->pending == 0 && req->phase != REQ_DONE)
		req_step(req);
}

static void
req_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolve_req *req = w->data;

	if (req == NULL || req->magic != REQ_MAGIC)
		return;
	req_finish(req, RESOLVE_TIMEOUT, "no answer within the DNS timeout");
}

static void
req_deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolve_req *req = w->data;
	resolve_cb cb;
	void *arg;

	if (req == NULL || req->magic != REQ_MAGIC)
		return;
	cb = req->cb;
	arg = req->arg;
	/* Unlinked first: the callback may free the resolver or start new lookups. */
	req_unlink(req);
	req->magic = DEAD_MAGIC;        /* late resolver_cancel() on this handle is refused */
	cb(arg, &req->result);
	req_free(req);
}

static uint32_t
resolver_rand(void *arg, uint32_t bound)
{
	return arc4random_uniform(bound);
}

/* Copy domain into out without a trailing dot; refuse names that cannot be a host. */
static int
domain_normalize(const char *domain, char *out, size_t outsz)
{
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || len >= outsz || domain[0] == '.')
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c <= 0x20 || c >= 0x7f || c == '\\')
			return -1;
		if (c == '.' && domain[i + 1] == '.')
			return -1;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

/* Start one (name, type) question for req. Returns the query (linked into req, and
 * counted in req->pending when libunbound took it; marked done with err otherwise),
 * or NULL when out of memory. */
static struct query *
query_start(struct resolve_req *req, const char *name, int rrtype)
{
	struct resolver *r = req->r;
	struct query *q;
	int rc;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("dns query domain=%s name=%s reason=alloc", req->domain, name);
		return NULL;
	}
	q->magic = QUERY_MAGIC;
	q->r = r;
	q->req = req;
	q->rrtype = rrtype;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->next = req->queries;
	req->queries = q;
	rc = ub_resolve_async(r->ctx, q->name, rrtype, RR_CLASS_IN, q, resolver_ub_cb,
	    &q->ub_id);
	if (rc != 0) {
		log_warnx("dns query domain=%s name=%s type=%d reason=%s", req->domain,
		    q->name, rrtype, ub_strerror(rc));
		q->done = true;
		q->err = rc;
		return q;
	}
	q->inflight = true;
	req->pending++;
	r->stats.queries_sent++;
	return q;
}

/* Let go of a query: cancel it in libunbound if it is in flight. When libunbound
 * cannot confirm the cancel, the query becomes an orphan its callback will free. */
static void
query_release(struct resolver *r, struct query *q)
{
	if (q->inflight) {
		if (ub_cancel(r->ctx, q->ub_id) != 0) {
			q->req = NULL;
			q->next = r->orphans;
			r->orphans = q;
			return;
		}
		q->inflight = false;
	}
	query_free(q);
}

static void
query_free(struct query *q)
{
	if (q->res != NULL)
		ub_resolve_free(q->res);
	q->magic = DEAD_MAGIC;
	free(q);
}

static enum query_answer
query_answer(const struct query *q)
{
	if (q == NULL || !q->done || q->err != 0 || q->res == NULL)
		return QA_FAIL;
	if (q->res->bogus)
		return QA_BOGUS;
	if (q->res->nxdomain)
		return QA_NXDOMAIN;
	if (q->res->rcode != 0)
		return QA_FAIL;
	if (q->res->havedata && q->res->data != NULL && q->res->data[0] != NULL)
		return QA_DATA;
	return QA_NODATA;
}

static enum dns_security
query_security(const struct query *q)
{
	if (q == NULL || q->res == NULL)
		return DNS_INSECURE;
	if (q->res->bogus)
		return DNS_BOGUS;
	return q->res->secure ? DNS_SECURE : DNS_INSECURE;
}

static const char *
query_why(const struct query *q)
{
	if (q == NULL)
		return "query not started";
	if (q->err != 0)
		return ub_strerror(q->err);
	if (q->res == NULL)
		return "no answer";
	if (q->res->bogus)
		return q->res->why_bogus != NULL ? q->res->why_bogus : "DNSSEC validation failed";
	if (q->res->rcode == 2)
		return "SERVFAIL";
	if (q->res->rcode == 5)
		return "REFUSED";
	return "DNS error";
}

static enum dns_security
sec_weakest(enum dns_security a, enum dns_security b)
{
	if (a == DNS_BOGUS || b == DNS_BOGUS)
		return DNS_BOGUS;
	if (a == DNS_INSECURE || b == DNS_INSECURE)
		return DNS_INSECURE;
	return DNS_SECURE;
}

static void
req_step(struct resolve_req *req)
{
	if (req->phase == REQ_SRV)
		req_srv_complete(req);
	else if (req->phase == REQ_ADDR)
		req_addr_complete(req);
}

/* Append the usable records of one SRV answer to req->recs. Returns how many were
 * added; *saw_root is set when the answer holds a "." target. */
static size_t
req_collect_srv(struct resolve_req *req, struct query *q, bool direct_tls, bool *saw_root)
{
	size_t added = 0;

	if (query_answer(q) != QA_DATA)
		return 0;
	for (size_t i = 0; i < MAX_RECS_PER_ANSWER && q->res->data[i] != NULL; i++) {
		struct srv_record rec;
		int len = q->res->len[i];

		if (len < 0 || srv_parse_rdata((const unsigned char *)q->res->data[i],
		    (size_t)len, &rec) == -1) {
			log_debug("dns answer domain=%s name=%s reason=malformed-srv-ignored",
			    req->domain, q->name);
			continue;
		}
		if (rec.target[0] == '\0') {
			*saw_root = true;
			continue;
		}
		if (req->n_recs >= MAX_SRV)
			break;
		rec.direct_tls = direct_tls;
		req->recs[req->n_recs++] = rec;
		added++;
	}
	return added;
}

static void
req_srv_complete(struct resolve_req *req)
{
	enum query_answer ax = query_answer(req->srv_xmpp), axs = query_answer(req->srv_xmpps);
	bool saw_root = false;
	size_t n = 0;
	char name[256];

	if (ax == QA_BOGUS || axs == QA_BOGUS) {
		req_finish(req, RESOLVE_BOGUS,
		    query_why(ax == QA_BOGUS ? req->srv_xmpp : req->srv_xmpps));
		return;
	}
	req_collect_srv(req, req->srv_xmpp, false, &saw_root);
	req_collect_srv(req, req->srv_xmpps, true, &saw_root);
	if (req->n_recs == 0) {
		if (saw_root) {
			req_finish(req, RESOLVE_NOSERVICE, "SRV target \".\": no s2s service");
			return;
		}
		if (ax == QA_FAIL || axs == QA_FAIL) {
			req_finish(req, RESOLVE_SERVFAIL,
			    query_why(ax == QA_FAIL ? req->srv_xmpp : req->srv_xmpps));
			return;
		}
		/* RFC 6120 §3.2.2: no SRV at all, use the domain itself on 5269. */
		req->fallback = true;
		memset(&req->recs[0], 0, sizeof(req->recs[0]));
		req->recs[0].port = XMPP_S2S_PORT;
		snprintf(req->recs[0].target, sizeof(req->recs[0].target), "%s", req->domain);
		req->n_recs = 1;
	} else {
		srv_order(req->recs, req->n_recs, resolver_rand, NULL);
	}

	/* Map records to distinct hosts; records beyond MAX_HOSTS hosts are dropped. */
	for (size_t i = 0; i < req->n_recs; i++) {
		size_t h;

		for (h = 0; h < req->n_hosts; h++)
			if (strcasecmp(req->hosts[h].name, req->recs[i].target) == 0)
				break;
		if (h == req->n_hosts) {
			if (req->n_hosts == MAX_HOSTS)
				continue;
			snprintf(req->hosts[h].name, sizeof(req->hosts[h].name), "%s",
			    req->recs[i].target);
			req->n_hosts++;
		}
		req->recs[n] = req->recs[i];
		req->rec_host[n] = h;
		n++;
	}
	req->n_recs = n;

	req->phase = REQ_ADDR;
	for (size_t h = 0; h < req->n_hosts; h++) {
		snprintf(name, sizeof(name), "%s", req->hosts[h].name);
		req->hosts[h].aaaa = query_start(req, name, RR_TYPE_AAAA);
		req->hosts[h].a = query_start(req, name, RR_TYPE_A);
	}
	if (req->pending == 0)          /* nothing could be started */
		req_addr_complete(req);
}

/* Append rec's addresses from one address answer to the target list. */
static size_t
req_add_addrs(struct resolve_req *req, size_t n, const struct srv_record *rec,
    const struct query *q, enum dns_security srv_sec)
{
	enum dns_security sec = sec_weakest(srv_sec, query_security(q));

	if (query_answer(q) != QA_DATA)
		return n;
	for (size_t i = 0; i < MAX_ADDRS_PER_ANSWER && q->res->data[i] != NULL; i++) {
		struct resolve_target *t;
		int len = q->res->len[i];

		if (n >= MAX_TARGETS)
			break;
		t = &req->targets[n];
		memset(t, 0, sizeof(*t));
		if (q->rrtype == RR_TYPE_AAAA && len == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(rec->port);
			memcpy(&sin6->sin6_addr, q->res->data[i], 16);
			t->addrlen = sizeof(*sin6);
		} else if (q->rrtype == RR_TYPE_A && len == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

			sin->sin_family = AF_INET;
			sin->sin_port = htons(rec->port);
			memcpy(&sin->sin_addr, q->res->data[i], 4);
			t->addrlen = sizeof(*sin);
		} else {
			log_debug("dns answer domain=%s name=%s reason=malformed-address-ignored",
			    req->domain, q->name);
			continue;
		}
		snprintf(t->host, sizeof(t->host), "%s", rec->target);
		t->port = rec->port;
		t->direct_tls = rec->direct_tls;
		t->security = sec;
		n++;
	}
	return n;
}

static void
req_addr_complete(struct resolve_req *req)
{
	enum dns_security fallback_sec = sec_weakest(query_security(req->srv_xmpp),
	    query_security(req->srv_xmpps));
	const struct query *failed = NULL;
	size_t n = 0;

	for (size_t h = 0; h < req->n_hosts; h++) {
		const struct query *qs[2] = { req->hosts[h].aaaa, req->hosts[h].a };

		for (int k = 0; k < 2; k++) {
			enum query_answer a = query_answer(qs[k]);

			if (a == QA_BOGUS) {
				req_finish(req, RESOLVE_BOGUS, query_why(qs[k]));
				return;
			}
			if (a == QA_FAIL && failed == NULL)
				failed = qs[k];
		}
	}
	for (size_t i = 0; i < req->n_recs && n < MAX_TARGETS; i++) {
		const struct srv_record *rec = &req->recs[i];
		const struct req_host *h = &req->hosts[req->rec_host[i]];
		enum dns_security srv_sec;

		if (req->fallback)
			srv_sec = fallback_sec;
		else
			srv_sec = query_security(rec->direct_tls ? req->srv_xmpps : req->srv_xmpp);
		n = req_add_addrs(req, n, rec, h->aaaa, srv_sec);
		n = req_add_addrs(req, n, rec, h->a, srv_sec);
	}
	req->result.n_targets = n;
	req->result.targets = n > 0 ? req->targets : NULL;
	if (n > 0)
		req_finish(req, RESOLVE_OK, NULL);
	else if (failed != NULL)
		req_finish(req, RESOLVE_SERVFAIL, query_why(failed));
	else
		req_finish(req, RESOLVE_NOTFOUND, req->fallback ?
		    "no SRV records and no address for the domain" :
		    "no address for any SRV target");
}

/* Settle the request: free its queries, stop its timer and deliver the result on the
 * next loop iteration (never from inside resolver_lookup() or ub_process()). */
static void
req_finish(struct resolve_req *req, enum resolve_status st, const char *why)
{
	struct resolver *r = req->r;

	if (req->phase == REQ_DONE)
		return;
	req->phase = REQ_DONE;
	if (st != RESOLVE_OK) {
		req->result.n_targets = 0;
		req->result.targets = NULL;
		r->stats.failures++;
		if (st == RESOLVE_BOGUS)
			r->stats.bogus++;
	}
	req->result.status = st;
	if (why != NULL) {
		snprintf(req->why, sizeof(req->why), "%s", why);
		req->result.why = req->why;
	} else {
		req->result.why = NULL;
	}
	if (st == RESOLVE_OK)
		log_debug("dns lookup domain=%s status=ok targets=%zu", req->domain,
		    req->result.n_targets);
	else
		log_info("dns lookup domain=%s status=%s reason=\"%s\"", req->domain,
		    resolve_status_str(st), req->why);
	req_release_queries(req);       /* why was copied: answers can go */
	req->pending = 0;
	ev_timer_stop(r->loop, &req->timeout);
	ev_timer_set(&req->deliver, 0., 0.);
	ev_timer_start(r->loop, &req->deliver);
}

static void
req_release_queries(struct resolve_req *req)
{
	struct query *q;

	while ((q = req->queries) != NULL) {
		req->queries = q->next;
		query_release(req->r, q);
	}
	req->srv_xmpp = req->srv_xmpps = NULL;
	for (size_t h = 0; h < req->n_hosts; h++)
		req->hosts[h].aaaa = req->hosts[h].a = NULL;
}

static void
req_unlink(struct resolve_req *req)
{
	struct resolver *r = req->r;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else if (r->reqs == req)
		r->reqs = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
}

static void
req_free(struct resolve_req *req)
{
	free(req->targets);
	req->magic = DEAD_MAGIC;
	free(req);
}
