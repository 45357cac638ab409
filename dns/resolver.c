/* dns/resolver.c - asynchronous XMPP peer resolution on libunbound, driven by libev.
 * SPDX-License-Identifier: ISC
 * route.c calls resolver_lookup() for a remote domain and gets one callback with the
 * ordered connection targets (SRV _xmpp-server/_xmpps-server, then AAAA/A per target, or
 * the domain's own AAAA/A on 5269 when there is no SRV at all). This file owns the ub_ctx
 * (threaded, its fd on an ev_io), the answer cache (dns/cache.c, saved in the state
 * directory), one shared "flight" per (name, type) in libunbound that every request
 * needing it waits on, serve-stale, and the request lifetime: timeout, cancel and
 * deferred delivery so callbacks never run inside resolver_lookup() or ub_process(). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/atomicfile.h"
#include "core/log.h"
#include "core/sample.h"
#include "core/status.h"
#include "dns/cache.h"
#include "dns/resolver.h"
#include "dns/srv.h"

#define FLIGHT_BUCKETS 4096   /* chains of the flights' index (a power of two) */
#define RESOLVER_MAGIC   0x52534c56u   /* "RSLV" */
#define REQ_MAGIC        0x52455155u   /* "REQU" */
#define QUERY_MAGIC      0x51525959u   /* "QRYY" */
#define FLIGHT_MAGIC     0x464c4754u   /* "FLGT" */
#define DEAD_MAGIC       0xdeadbeefu

#define MAX_RECS_PER_ANSWER  32        /* SRV records taken from one answer */
#define MAX_ADDRS_PER_ANSWER 32        /* addresses taken from one A/AAAA answer */
#define MAX_SRV              (2 * MAX_RECS_PER_ANSWER)
#define MAX_HOSTS            16        /* distinct SRV targets whose addresses we resolve */
#define MAX_TARGETS          64        /* socket addresses handed back */
#define DEFAULT_TIMEOUT_MS   10000
#define DEFAULT_MAX_QUERIES  256       /* questions in libunbound at once */
#define STALE_WAIT_MAX_MS    1800      /* RFC 8767 client response timer */
#define SAVE_DELAY           1.0       /* seconds from a change to the cache file write */
#define STATUS_MAX_ENTRIES   200       /* entries listed by "show dns" */
#define DEFAULT_CACHE_ENTRIES 10000
#define DEFAULT_MIN_TTL      60
#define DEFAULT_MAX_TTL      86400
#define DEFAULT_MAX_STALE    86400
#define XMPP_S2S_PORT        5269
#define RR_CLASS_IN          1
#define RR_TYPE_A            1
#define RR_TYPE_AAAA         28
#define RR_TYPE_SRV          33
#define RR_TYPE_TLSA         52

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
	REQ_ADDR,      /* waiting for the AAAA/A answers of the targets, and the TLSA
	                * answers of targets named by a secure SRV (RFC 7673) */
	REQ_DONE,      /* result built, delivery deferred to the next loop iteration */
};

struct query;

/* One libunbound question (name, type), shared by every query waiting for it. Owned by
 * the resolver (r->flights) until its answer arrives, or until its last waiter leaves
 * and libunbound confirms the cancel. */
struct flight {
	uint32_t         magic;
	struct resolver *r;
	struct flight   *prev, *next;      /* in r->flights */
	struct flight   *hnext;            /* in r->fhash[flight_hash(name, rrtype)] */
	char             name[256];
	int              rrtype;
	int              ub_id;
	bool             inflight;         /* libunbound may still call back */
	bool             queued;           /* waiting for a slot (resolver { queries }) */
	struct flight   *qnext;            /* in r->queue while queued */
	bool             stale_served;     /* stale timer fired: joiners get the stale answer */
	struct query    *waiters;          /* linked by wnext */
	ev_timer         stale_timer;      /* serve a stale answer if the query takes long */
};

/* One request's view of a (name, type) question and, once done, its answer. */
struct query {
	uint32_t            magic;
	struct resolve_req *req;
	struct query       *next;          /* in req->queries */
	struct flight      *flight;        /* while waiting for an answer */
	struct query       *wnext;         /* in flight->waiters */
	char                name[256];
	int                 rrtype;
	bool                done;          /* qa, sec, ans, why are valid */
	enum query_answer   qa;
	enum dns_security   sec;
	bool                stale;         /* the answer came stale from the cache */
	struct dnscache_entry *ans;        /* owned; records for QA_DATA */
	char                why[160];
};

/* A distinct (host, port) of secure targets and its TLSA query. */
struct req_tlsa {
	char          host[256];
	uint16_t      port;
	struct query *q;              /* borrowed from req->queries; NULL if not started */
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
	size_t              pending;       /* queries of this phase still waiting */
	bool                step_due;      /* pending reached 0 inside an answer batch */
	struct resolve_req *dprev, *dnext; /* in r->due while step_due may be set */
	bool                in_due;
	struct query       *queries;       /* all queries of this request, owned */
	struct query       *srv_xmpp, *srv_xmpps;  /* borrowed from queries */
	bool                fallback;      /* no SRV: the domain itself on 5269 */
	/* Arrays sized to the answers (a request in flight is small: many may wait on a
	 * slow DNS at once): */
	struct srv_record  *recs;          /* usable records in connection order, owned */
	size_t             *rec_host;      /* owned, as many as recs */
	size_t              cap_recs;
	size_t              n_recs;
	struct req_host     hosts[MAX_HOSTS];
	size_t              n_hosts;
	struct req_tlsa    *tlsa;          /* owned, n_recs entries once addresses are asked */
	size_t              n_tlsa;
	ev_timer            timeout;
	ev_timer            deliver;
	char                why[256];
	struct resolve_target *targets;    /* owned, sized when the addresses are in */
	size_t              cap_targets;
	struct resolve_result result;
};

struct resolver {
	uint32_t            magic;
	struct ev_loop     *loop;
	struct ub_ctx      *ctx;
	ev_io               io;            /* ub_fd() readable: answers are waiting */
	uint32_t            timeout_ms;
	bool                validating;    /* DNSSEC trust anchor configured */
	struct resolve_req *reqs;          /* pending requests */
	struct flight      *flights;       /* questions in libunbound or queued for it */
	struct flight      *fhash[FLIGHT_BUCKETS];   /* the same, by (name, type) */
	struct resolve_req *due;           /* requests whose step is due (step_due_requests
	                                    * takes them from here, not from a walk of reqs) */
	size_t              n_inflight;    /* of those, in libunbound (at most max_inflight) */
	size_t              max_inflight;  /* resolver { queries } */
	struct flight      *queue, **queue_tail; /* questions waiting for a slot, FIFO */
	ev_timer            dequeue;       /* starts queued questions from the loop (a 0 s
	                                    * timer: the loop does not block before it) */
	struct dnscache    *cache;
	bool                serve_stale;
	char               *cache_path;    /* owned; NULL: memory only */
	ev_timer            save_timer;
	unsigned long       saved_gen;     /* cache generation last written */
	struct resolver_stats stats;
};

static void resolver_io_cb(struct ev_loop *, ev_io *, int);
static void resolver_ub_cb(void *, int, struct ub_result *);
static void flight_stale_cb(struct ev_loop *, ev_timer *, int);
static void save_timer_cb(struct ev_loop *, ev_timer *, int);
static void req_timeout_cb(struct ev_loop *, ev_timer *, int);
static void req_deliver_cb(struct ev_loop *, ev_timer *, int);
static uint32_t resolver_rand(void *, uint32_t);
static int64_t wall_now(void);
static int domain_normalize(const char *, char *, size_t);
static int setup_trust_anchor(struct resolver *, const struct config *);
static int copy_file(const char *, const char *);
static void cache_changed(struct resolver *);
static void step_due_requests(struct resolver *);
static struct flight *flight_find(struct resolver *, const char *, int);
static void flight_detach(struct flight *, struct query *);
static void flight_free(struct flight *);
static void flight_link(struct resolver *, struct flight *);
static void flight_unlink(struct resolver *, struct flight *);
static void queue_remove(struct resolver *, struct flight *);
static void dequeue_cb(struct ev_loop *, ev_timer *, int);
static struct query *query_start(struct resolve_req *, const char *, int);
static void query_set_entry(struct query *, const struct dnscache_entry *, bool);
static void query_set_fail(struct query *, enum query_answer, enum dns_security,
    const char *);
static void query_deliver(struct query *);
static void query_release(struct query *);
static enum query_answer query_answer(const struct query *);
static enum dns_security query_security(const struct query *);
static const char *query_why(const struct query *);
static enum dns_security sec_weakest(enum dns_security, enum dns_security);
static void req_step(struct resolve_req *);
static void req_srv_complete(struct resolve_req *);
static void req_addr_complete(struct resolve_req *);
static void req_tlsa_complete(struct resolve_req *);
static void target_set_tlsa(struct resolve_target *, const struct query *);
static size_t req_collect_srv(struct resolve_req *, struct query *, bool, bool *);
static size_t req_add_addrs(struct resolve_req *, size_t, const struct srv_record *,
    const struct query *, enum dns_security);
static void req_finish(struct resolve_req *, enum resolve_status, const char *);
static void req_release_queries(struct resolve_req *);
static void req_unlink(struct resolve_req *);
static void req_free(struct resolve_req *);
static int status_show_dns(void *, const char *, struct buf *);
static int status_flush_dns(void *, const char *, struct buf *);
static const char *rrtype_str(int, char *, size_t);

struct resolver *
resolver_new(struct ev_loop *loop, const struct config *cfg)
{
	struct resolver *r;
	size_t entries = DEFAULT_CACHE_ENTRIES;
	uint32_t min_ttl = DEFAULT_MIN_TTL, max_ttl = DEFAULT_MAX_TTL;
	uint32_t max_stale = DEFAULT_MAX_STALE;
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
	r->max_inflight = (cfg != NULL && cfg->dns_max_queries != 0) ?
	    cfg->dns_max_queries : DEFAULT_MAX_QUERIES;
	r->queue_tail = &r->queue;
	ev_timer_init(&r->dequeue, dequeue_cb, 0., 0.);
	r->dequeue.data = r;
	if (cfg != NULL && cfg->dns_cache_entries != 0) {
		entries = cfg->dns_cache_entries;
		min_ttl = cfg->dns_cache_min_ttl_ms / 1000;
		max_ttl = cfg->dns_cache_max_ttl_ms / 1000;
		max_stale = cfg->dns_serve_stale_ms / 1000;
	}
	r->serve_stale = cfg == NULL || cfg->dns_cache_entries == 0 ||
	    cfg->dns_serve_stale_ms != 0;
	if ((r->cache = dnscache_new(entries, min_ttl, max_ttl, max_stale)) == NULL) {
		log_warn("dns resolver-init reason=alloc");
		free(r);
		return NULL;
	}
	if ((r->ctx = ub_ctx_create()) == NULL) {
		log_warnx("dns resolver-init reason=ub_ctx_create-failed");
		dnscache_free(r->cache);
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
	if (setup_trust_anchor(r, cfg) == -1)
		goto fail;

	/* The disk cache: STATE_DIR/dns.cache unless configured otherwise. */
	if (cfg != NULL && cfg->dns_cache_file != NULL) {
		if (strcmp(cfg->dns_cache_file, "none") != 0 &&
		    (r->cache_path = strdup(cfg->dns_cache_file)) == NULL)
			goto nomem;
	} else if (cfg != NULL && cfg->state_dir != NULL) {
		size_t n = strlen(cfg->state_dir) + sizeof("/dns.cache");

		if ((r->cache_path = malloc(n)) == NULL)
			goto nomem;
		snprintf(r->cache_path, n, "%s/dns.cache", cfg->state_dir);
	}
	if (r->cache_path != NULL) {
		dnscache_load(r->cache, r->cache_path, r->validating, wall_now());
		r->saved_gen = dnscache_generation(r->cache);
	}
	ev_timer_init(&r->save_timer, save_timer_cb, SAVE_DELAY, 0.);
	r->save_timer.data = r;

	ev_io_init(&r->io, resolver_io_cb, ub_fd(r->ctx), EV_READ);
	r->io.data = r;
	ev_io_start(loop, &r->io);
	ev_unref(loop);         /* an idle resolver does not keep the loop alive */
	return r;
nomem:
	log_warn("dns resolver-init reason=alloc");
fail:
	ub_ctx_delete(r->ctx);
	dnscache_free(r->cache);
	free(r->cache_path);
	r->magic = DEAD_MAGIC;
	free(r);
	return NULL;
}

void
resolver_free(struct resolver *r)
{
	struct flight *f;

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
	if (ev_is_active(&r->save_timer)) {
		ev_ref(r->loop);
		ev_timer_stop(r->loop, &r->save_timer);
	}
	if (r->cache_path != NULL && dnscache_generation(r->cache) != r->saved_gen)
		resolver_save_cache(r);
	ev_ref(r->loop);
	ev_io_stop(r->loop, &r->io);
	ev_timer_stop(r->loop, &r->dequeue);
	/* Deletes outstanding libunbound queries without calling back. */
	ub_ctx_delete(r->ctx);
	while ((f = r->flights) != NULL) {
		r->flights = f->next;
		flight_free(f);
	}
	dnscache_free(r->cache);
	free(r->cache_path);
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
	if (req->srv_xmpp == NULL || req->srv_xmpps == NULL) {
		log_warnx("dns lookup domain=%s reason=cannot-start-queries", req->domain);
		req_release_queries(req);
		req_unlink(req);
		req_free(req);
		return NULL;
	}
	ev_timer_start(r->loop, &req->timeout);
	r->stats.lookups++;
	log_debug("dns lookup domain=%s started", req->domain);
	/* Both answered at once (cache, or refused): go on now; delivery is deferred. */
	if (req->pending == 0)
		req_step(req);
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
	out->entries = dnscache_count(r->cache);
}

int
resolver_register_status(struct resolver *r, struct status *st)
{
	if (r == NULL || r->magic != RESOLVER_MAGIC || st == NULL)
		return -1;
	if (status_register(st, "show dns", "show dns: resolver counters and cached answers",
	    status_show_dns, r) == -1)
		return -1;
	return status_register(st, "flush dns", "flush dns [NAME]: drop cached answers "
	    "(all, or NAME's and those below it)", status_flush_dns, r);
}

size_t
resolver_flush(struct resolver *r, const char *name)
{
	size_t n;

	if (r == NULL || r->magic != RESOLVER_MAGIC)
		return 0;
	n = dnscache_flush(r->cache, name);
	log_info("dns flush name=%s entries=%zu", name != NULL && *name != '\0' ? name : "*",
	    n);
	if (n > 0)
		cache_changed(r);
	return n;
}

int
resolver_save_cache(struct resolver *r)
{
	if (r == NULL || r->magic != RESOLVER_MAGIC || r->cache_path == NULL)
		return -1;
	if (dnscache_save(r->cache, r->cache_path, r->validating, wall_now()) == -1)
		return -1;
	r->saved_gen = dnscache_generation(r->cache);
	return 0;
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

/* A flight's answer: cache it, hand it (or a stale one) to every waiter. */
static void
resolver_ub_cb(void *mydata, int err, struct ub_result *res)
{
	struct flight *f = mydata;
	struct resolver *r;
	struct dnscache_entry e;
	const struct dnscache_entry *cached = NULL;
	enum query_answer qa = QA_FAIL;
	enum dns_security sec = DNS_INSECURE;
	char why[160] = "";
	bool stale = false;
	struct query *q;

	if (f == NULL || f->magic != FLIGHT_MAGIC) {
		log_warnx("dns answer reason=unknown-query");
		if (res != NULL)
			ub_resolve_free(res);
		return;
	}
	r = f->r;
	if (f->inflight) {
		f->inflight = false;
		r->n_inflight--;
		if (r->queue != NULL)
			ev_timer_start(r->loop, &r->dequeue);
	}
	memset(&e, 0, sizeof(e));
	log_debug("dns answer name=%s type=%d err=%d rcode=%d data=%d secure=%d bogus=%d "
	    "ttl=%d waiters=%d", f->name, f->rrtype, err, res ? res->rcode : -1,
	    res ? res->havedata : 0, res ? res->secure : 0, res ? res->bogus : 0,
	    res ? res->ttl : 0, f->waiters != NULL);
	if (err != 0 || res == NULL) {
		snprintf(why, sizeof(why), "%s", err != 0 ? ub_strerror(err) : "no answer");
	} else if (res->bogus) {
		qa = QA_BOGUS;
		sec = DNS_BOGUS;
		snprintf(why, sizeof(why), "%s", res->why_bogus != NULL ? res->why_bogus :
		    "DNSSEC validation failed");
		log_warnx("dns answer name=%s type=%d security=bogus reason=\"%s\"", f->name,
		    f->rrtype, why);
	} else if (res->nxdomain || (res->rcode == 0 && !(res->havedata &&
	    res->data != NULL && res->data[0] != NULL))) {
		qa = res->nxdomain ? QA_NXDOMAIN : QA_NODATA;
	} else if (res->rcode != 0) {
		snprintf(why, sizeof(why), "%s", res->rcode == 2 ? "SERVFAIL" :
		    res->rcode == 5 ? "REFUSED" : "DNS error");
	} else {
		qa = QA_DATA;
	}
	if (qa == QA_DATA || qa == QA_NODATA || qa == QA_NXDOMAIN) {
		sec = res->secure ? DNS_SECURE : DNS_INSECURE;
		if (dnscache_entry_init(&e, f->name, (uint16_t)f->rrtype,
		    qa == QA_DATA ? DNSCACHE_DATA : qa == QA_NODATA ? DNSCACHE_NODATA :
		    DNSCACHE_NXDOMAIN, sec, res->ttl > 0 ? (uint32_t)res->ttl : 0) == -1) {
			qa = QA_FAIL;
			snprintf(why, sizeof(why), "invalid name");
		}
		for (size_t i = 0; qa == QA_DATA && i < DNSCACHE_MAX_RR &&
		    res->data[i] != NULL; i++)
			if (res->len[i] > 0 && dnscache_entry_add_rr(&e, res->data[i],
			    (size_t)res->len[i]) == -1)
				log_debug("dns answer name=%s reason=record-ignored", f->name);
		if (qa == QA_DATA && e.n_rr == 0) {
			qa = QA_NODATA;
			e.kind = DNSCACHE_NODATA;
		}
		if (qa != QA_FAIL && dnscache_put(r->cache, &e, wall_now()) == 0)
			cache_changed(r);
	}
	if (res != NULL)
		ub_resolve_free(res);
	if (qa == QA_FAIL && r->serve_stale) {
		cached = dnscache_get(r->cache, f->name, (uint16_t)f->rrtype, wall_now(), true,
		    &stale);
		if (cached != NULL)
			log_info("dns answer name=%s type=%d status=failed reason=\"%s\" "
			    "serving=%s", f->name, f->rrtype, why, stale ? "stale" : "cached");
	}

	/* Unlink the flight first: a request stepping below may start a new one. */
	flight_unlink(r, f);
	if (ev_is_active(&f->stale_timer))
		ev_timer_stop(r->loop, &f->stale_timer);
	while ((q = f->waiters) != NULL) {
		f->waiters = q->wnext;
		q->wnext = NULL;
		q->flight = NULL;
		if (cached != NULL) {
			query_set_entry(q, cached, stale);
			if (stale)
				r->stats.stale_served++;
		} else if (qa == QA_FAIL || qa == QA_BOGUS)
			query_set_fail(q, qa, sec, why);
		else
			query_set_entry(q, &e, false);
		query_deliver(q);
	}
	dnscache_entry_clear(&e);
	f->magic = DEAD_MAGIC;
	free(f);
	step_due_requests(r);
}

/* The flight takes longer than the client response timer: its waiters get the stale
 * answer now; the flight goes on and refreshes the cache when it is answered. */
static void
flight_stale_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct flight *f = w->data;
	struct resolver *r;
	const struct dnscache_entry *e;
	struct query *q;
	bool stale;

	if (f == NULL || f->magic != FLIGHT_MAGIC)
		return;
	r = f->r;
	f->stale_served = true;
	e = dnscache_get(r->cache, f->name, (uint16_t)f->rrtype, wall_now(), true, &stale);
	if (e == NULL)
		return;                 /* flushed meanwhile: wait for the answer */
	log_info("dns answer name=%s type=%d status=slow serving=stale", f->name, f->rrtype);
	while ((q = f->waiters) != NULL) {
		f->waiters = q->wnext;
		q->wnext = NULL;
		q->flight = NULL;
		query_set_entry(q, e, stale);
		if (stale)
			r->stats.stale_served++;
		query_deliver(q);
	}
	step_due_requests(r);
}

static void
save_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolver *r = w->data;

	if (r == NULL || r->magic != RESOLVER_MAGIC)
		return;
	ev_ref(loop);                   /* balances the unref when it was started */
	resolver_save_cache(r);
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

static int64_t
wall_now(void)
{
	return (int64_t)time(NULL);
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

/* DNSSEC: the configured trust anchor, or (auto_trust_anchor) an RFC 5011 file in the
 * state directory seeded from it on first use. */
static int
setup_trust_anchor(struct resolver *r, const struct config *cfg)
{
	char autr[4096];
	int rc;

	if (cfg == NULL || !cfg->dnssec || cfg->trust_anchor_file == NULL)
		return 0;
	if (cfg->dns_auto_trust_anchor && cfg->state_dir != NULL) {
		snprintf(autr, sizeof(autr), "%s/root.key", cfg->state_dir);
		if (access(autr, F_OK) == -1) {
			if (copy_file(cfg->trust_anchor_file, autr) == -1) {
				log_warn("dns resolver-init auto_trust_anchor=%s reason=seed-from-%s",
				    autr, cfg->trust_anchor_file);
				return -1;
			}
			log_info("dns resolver-init auto_trust_anchor=%s seeded-from=%s", autr,
			    cfg->trust_anchor_file);
		}
		if ((rc = ub_ctx_add_ta_autr(r->ctx, autr)) != 0) {
			log_warnx("dns resolver-init auto_trust_anchor=%s reason=%s", autr,
			    ub_strerror(rc));
			return -1;
		}
		log_debug("dns resolver-init dnssec=on auto_trust_anchor=%s", autr);
	} else {
		if ((rc = ub_ctx_add_ta_file(r->ctx, cfg->trust_anchor_file)) != 0) {
			log_warnx("dns resolver-init trust_anchor_file=%s reason=%s",
			    cfg->trust_anchor_file, ub_strerror(rc));
			return -1;
		}
		log_debug("dns resolver-init dnssec=on trust_anchor_file=%s",
		    cfg->trust_anchor_file);
	}
	r->validating = true;
	return 0;
}

/* Copy from (a trust anchor file, at most 64 KiB) to a new file to, 0644, atomically. */
static int
copy_file(const char *from, const char *to)
{
	char data[65536];
	size_t len = 0;
	ssize_t n;
	int in, saved;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while (len < sizeof(data) && (n = read(in, data + len, sizeof(data) - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(in);
			errno = saved;
			return -1;
		}
		len += (size_t)n;
	}
	close(in);
	if (len == sizeof(data)) {
		errno = EFBIG;
		return -1;
	}
	return atomicfile_write(to, data, len, 0644);
}

/* The cache changed: write the file within SAVE_DELAY (at most once per delay). */
static void
cache_changed(struct resolver *r)
{
	if (r->cache_path == NULL || ev_is_active(&r->save_timer))
		return;
	ev_timer_set(&r->save_timer, SAVE_DELAY, 0.);
	ev_timer_start(r->loop, &r->save_timer);
	ev_unref(r->loop);              /* a pending save does not keep the loop alive */
}

/* req's step is due: on r->due (once). */
static void
due_push(struct resolve_req *req)
{
	struct resolver *r = req->r;

	if (req->in_due)
		return;
	req->in_due = true;
	req->dprev = NULL;
	req->dnext = r->due;
	if (r->due != NULL)
		r->due->dprev = req;
	r->due = req;
}

static void
due_remove(struct resolve_req *req)
{
	struct resolver *r = req->r;

	if (!req->in_due)
		return;
	if (req->dprev != NULL)
		req->dprev->dnext = req->dnext;
	else
		r->due = req->dnext;
	if (req->dnext != NULL)
		req->dnext->dprev = req->dprev;
	req->dprev = req->dnext = NULL;
	req->in_due = false;
}

/* Continue every request whose last pending query was just answered: those on r->due,
 * so an answer costs in proportion to the requests it completes, not to all pending
 * ones (10,000 peers resolving at once). Stepping never frees a request (delivery is
 * deferred); a step that completes others puts them on r->due, taken in turn. */
static void
step_due_requests(struct resolver *r)
{
	struct resolve_req *req;

	while ((req = r->due) != NULL) {
		due_remove(req);
		if (req->step_due) {
			req->step_due = false;
			if (req->pending == 0 && req->phase != REQ_DONE)
				req_step(req);
		}
	}
}

static size_t
flight_bucket(const char *name, int rrtype)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	h = (h ^ (uint32_t)rrtype) * 16777619u;
	return h & (FLIGHT_BUCKETS - 1);
}

/* f into r->flights and its index. */
static void
flight_link(struct resolver *r, struct flight *f)
{
	size_t b = flight_bucket(f->name, f->rrtype);

	f->prev = NULL;
	f->next = r->flights;
	if (r->flights != NULL)
		r->flights->prev = f;
	r->flights = f;
	f->hnext = r->fhash[b];
	r->fhash[b] = f;
}

/* f out of r->flights and its index. */
static void
flight_unlink(struct resolver *r, struct flight *f)
{
	struct flight **pp;

	if (f->prev != NULL)
		f->prev->next = f->next;
	else if (r->flights == f)
		r->flights = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	for (pp = &r->fhash[flight_bucket(f->name, f->rrtype)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == f) {
			*pp = f->hnext;
			break;
		}
	f->hnext = NULL;
}

static struct flight *
flight_find(struct resolver *r, const char *name, int rrtype)
{
	for (struct flight *f = r->fhash[flight_bucket(name, rrtype)]; f != NULL; f = f->hnext)
		if (f->rrtype == rrtype && strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* q leaves f. When nobody waits any more, cancel the question in libunbound; if
 * libunbound cannot confirm, the flight stays and its answer still fills the cache. */
static void
flight_detach(struct flight *f, struct query *q)
{
	struct resolver *r = f->r;
	struct query **pp = &f->waiters;

	while (*pp != NULL && *pp != q)
		pp = &(*pp)->wnext;
	if (*pp == q)
		*pp = q->wnext;
	q->wnext = NULL;
	q->flight = NULL;
	if (f->waiters != NULL)
		return;
	if (ev_is_active(&f->stale_timer))
		ev_timer_stop(r->loop, &f->stale_timer);
	if (f->inflight && ub_cancel(r->ctx, f->ub_id) != 0)
		return;
	if (f->inflight) {
		f->inflight = false;
		r->n_inflight--;
		if (r->queue != NULL)
			ev_timer_start(r->loop, &r->dequeue);
	}
	if (f->queued)
		queue_remove(r, f);
	flight_unlink(r, f);
	flight_free(f);
}

static void
queue_remove(struct resolver *r, struct flight *f)
{
	struct flight **pp;

	for (pp = &r->queue; *pp != NULL; pp = &(*pp)->qnext)
		if (*pp == f) {
			*pp = f->qnext;
			if (r->queue_tail == &f->qnext)
				r->queue_tail = pp;
			break;
		}
	f->qnext = NULL;
	f->queued = false;
}

/* Slots freed: start queued questions (from the loop, never inside libunbound's
 * callback). A question that cannot be started gets a failure, like an answer would. */
static void
dequeue_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct resolver *r = w->data;
	struct flight *f;

	(void)loop;
	(void)w;
	(void)revents;
	while ((f = r->queue) != NULL && r->n_inflight < r->max_inflight) {
		int rc;

		queue_remove(r, f);
		rc = ub_resolve_async(r->ctx, f->name, f->rrtype, RR_CLASS_IN, f,
		    resolver_ub_cb, &f->ub_id);
		if (rc != 0) {
			log_warnx("dns query name=%s type=%d reason=%s", f->name, f->rrtype,
			    ub_strerror(rc));
			resolver_ub_cb(f, rc, NULL);   /* its waiters fail (or get stale data) */
			continue;
		}
		f->inflight = true;
		r->n_inflight++;
		r->stats.queries_sent++;
	}
}

static void
flight_free(struct flight *f)
{
	if (ev_is_active(&f->stale_timer))
		ev_timer_stop(f->r->loop, &f->stale_timer);
	f->magic = DEAD_MAGIC;
	free(f);
}

/* Start one (name, type) question for req: answered from the cache when fresh, else
 * joined to the flight already asking it, else a new flight. Returns the query (linked
 * into req; counted in req->pending while it waits, done at once otherwise), or NULL
 * when out of memory. */
static struct query *
query_start(struct resolve_req *req, const char *name, int rrtype)
{
	struct resolver *r = req->r;
	const struct dnscache_entry *e;
	struct flight *f;
	struct query *q;
	bool stale;
	int rc;

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		log_warn("dns query domain=%s name=%s reason=alloc", req->domain, name);
		return NULL;
	}
	q->magic = QUERY_MAGIC;
	q->req = req;
	q->rrtype = rrtype;
	if (domain_normalize(name, q->name, sizeof(q->name)) == -1)
		snprintf(q->name, sizeof(q->name), "%s", name);
	q->next = req->queries;
	req->queries = q;

	e = dnscache_get(r->cache, q->name, (uint16_t)rrtype, wall_now(), r->serve_stale,
	    &stale);
	if (e != NULL && !stale) {
		r->stats.hits++;
		if (e->kind != DNSCACHE_DATA)
			r->stats.negative++;
		query_set_entry(q, e, false);
		log_debug("dns query domain=%s name=%s type=%d cache=hit", req->domain,
		    q->name, rrtype);
		return q;
	}
	r->stats.misses++;
	if ((f = flight_find(r, q->name, rrtype)) != NULL) {
		if (f->stale_served && e != NULL) {
			r->stats.stale_served++;
			query_set_entry(q, e, true);
			return q;
		}
		r->stats.coalesced++;
		q->flight = f;
		q->wnext = f->waiters;
		f->waiters = q;
		req->pending++;
		return q;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		log_warn("dns query domain=%s name=%s reason=alloc", req->domain, q->name);
		query_set_fail(q, QA_FAIL, DNS_INSECURE, "out of memory");
		return q;
	}
	f->magic = FLIGHT_MAGIC;
	f->r = r;
	f->rrtype = rrtype;
	memcpy(f->name, q->name, sizeof(f->name));
	ev_timer_init(&f->stale_timer, flight_stale_cb, 0., 0.);
	f->stale_timer.data = f;
	if (r->n_inflight >= r->max_inflight) {
		/* resolver { queries }: wait for a slot (the request's timeout still runs) */
		f->queued = true;
		*r->queue_tail = f;
		r->queue_tail = &f->qnext;
		r->stats.queued++;
	} else if ((rc = ub_resolve_async(r->ctx, f->name, rrtype, RR_CLASS_IN, f,
	    resolver_ub_cb, &f->ub_id)) != 0) {
		log_warnx("dns query domain=%s name=%s type=%d reason=%s", req->domain,
		    q->name, rrtype, ub_strerror(rc));
		free(f);
		if (e != NULL) {
			r->stats.stale_served++;
			query_set_entry(q, e, true);
		} else
			query_set_fail(q, QA_FAIL, DNS_INSECURE, ub_strerror(rc));
		return q;
	} else {
		f->inflight = true;
		r->n_inflight++;
		r->stats.queries_sent++;
	}
	flight_link(r, f);
	q->flight = f;
	f->waiters = q;
	req->pending++;
	if (e != NULL) {
		/* A stale answer exists: do not make the peer wait the full timeout. */
		double wait = r->timeout_ms / 3 / 1000.0;

		if (wait > STALE_WAIT_MAX_MS / 1000.0)
			wait = STALE_WAIT_MAX_MS / 1000.0;
		ev_timer_set(&f->stale_timer, wait, 0.);
		ev_timer_start(r->loop, &f->stale_timer);
	}
	return q;
}

/* q's answer is e (borrowed: copied). */
static void
query_set_entry(struct query *q, const struct dnscache_entry *e, bool stale)
{
	q->done = true;
	q->stale = stale;
	q->sec = e->security;
	q->qa = e->kind == DNSCACHE_DATA ? QA_DATA : e->kind == DNSCACHE_NODATA ?
	    QA_NODATA : QA_NXDOMAIN;
	if (q->qa != QA_DATA)
		return;
	if ((q->ans = dnscache_entry_dup(e)) == NULL) {
		log_warn("dns query name=%s reason=alloc", q->name);
		query_set_fail(q, QA_FAIL, DNS_INSECURE, "out of memory");
	}
}

static void
query_set_fail(struct query *q, enum query_answer qa, enum dns_security sec,
    const char *why)
{
	q->done = true;
	q->qa = qa;
	q->sec = sec;
	q->stale = false;
	dnscache_entry_free(q->ans);
	q->ans = NULL;
	snprintf(q->why, sizeof(q->why), "%s", why != NULL ? why : "DNS error");
}

/* A waiting query got its answer: count it down in its request. */
static void
query_deliver(struct query *q)
{
	struct resolve_req *req = q->req;

	if (req->pending > 0)
		req->pending--;
	if (req->pending == 0 && req->phase != REQ_DONE) {
		req->step_due = true;
		due_push(req);
	}
}

/* Let go of a query: leave its flight if it is still waiting. */
static void
query_release(struct query *q)
{
	if (q->flight != NULL)
		flight_detach(q->flight, q);
	dnscache_entry_free(q->ans);
	q->magic = DEAD_MAGIC;
	free(q);
}

static enum query_answer
query_answer(const struct query *q)
{
	if (q == NULL || !q->done)
		return QA_FAIL;
	return q->qa;
}

static enum dns_security
query_security(const struct query *q)
{
	if (q == NULL || !q->done)
		return DNS_INSECURE;
	return q->sec;
}

static const char *
query_why(const struct query *q)
{
	if (q == NULL)
		return "query not started";
	if (!q->done)
		return "no answer";
	return q->why[0] != '\0' ? q->why : "DNS error";
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

/* Room for n records in req->recs and req->rec_host; 0 or -1 (out of memory). */
static int
req_grow_recs(struct resolve_req *req, size_t n)
{
	size_t cap = req->cap_recs ? req->cap_recs : 4;
	struct srv_record *r;
	size_t *h;

	if (n <= req->cap_recs)
		return 0;
	while (cap < n)
		cap *= 2;
	if ((r = realloc(req->recs, cap * sizeof(*r))) == NULL)
		return -1;
	req->recs = r;
	if ((h = realloc(req->rec_host, cap * sizeof(*h))) == NULL)
		return -1;
	req->rec_host = h;
	req->cap_recs = cap;
	return 0;
}

/* Append the usable records of one SRV answer to req->recs. Returns how many were
 * added; *saw_root is set when the answer holds a "." target. */
static size_t
req_collect_srv(struct resolve_req *req, struct query *q, bool direct_tls, bool *saw_root)
{
	size_t added = 0;

	if (query_answer(q) != QA_DATA || q->ans == NULL)
		return 0;
	for (size_t i = 0; i < MAX_RECS_PER_ANSWER && i < q->ans->n_rr; i++) {
		struct srv_record rec;

		if (srv_parse_rdata(q->ans->data + q->ans->rdoff[i], q->ans->rdlen[i],
		    &rec) == -1) {
			log_debug("dns answer domain=%s name=%s reason=malformed-srv-ignored",
			    req->domain, q->name);
			continue;
		}
		if (rec.target[0] == '\0') {
			*saw_root = true;
			continue;
		}
		if (req->n_recs >= MAX_SRV || req_grow_recs(req, req->n_recs + 1) == -1)
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
	char name[300];

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
		if (req_grow_recs(req, 1) == -1) {
			req_finish(req, RESOLVE_SERVFAIL, "out of memory");
			return;
		}
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
	if (n > 0 && (req->tlsa = calloc(n, sizeof(*req->tlsa))) == NULL) {
		req_finish(req, RESOLVE_SERVFAIL, "out of memory");
		return;
	}

	req->phase = REQ_ADDR;
	for (size_t h = 0; h < req->n_hosts; h++) {
		snprintf(name, sizeof(name), "%s", req->hosts[h].name);
		req->hosts[h].aaaa = query_start(req, name, RR_TYPE_AAAA);
		req->hosts[h].a = query_start(req, name, RR_TYPE_A);
	}
	/* RFC 7673: TLSA at _port._tcp.host for each (host, port) of a secure SRV answer
	 * (or secure denial on fallback), asked alongside the addresses; used only for
	 * targets whose address answer turns out secure too. */
	for (size_t i = 0; i < req->n_recs; i++) {
		const struct srv_record *rec = &req->recs[i];
		enum dns_security srv_sec = req->fallback ?
		    sec_weakest(query_security(req->srv_xmpp), query_security(req->srv_xmpps)) :
		    query_security(rec->direct_tls ? req->srv_xmpps : req->srv_xmpp);
		size_t k;

		if (srv_sec != DNS_SECURE)
			continue;
		for (k = 0; k < req->n_tlsa; k++)
			if (req->tlsa[k].port == rec->port &&
			    strcasecmp(req->tlsa[k].host, rec->target) == 0)
				break;
		if (k < req->n_tlsa || k == req->n_recs)
			continue;
		snprintf(req->tlsa[k].host, sizeof(req->tlsa[k].host), "%s", rec->target);
		req->tlsa[k].port = rec->port;
		req->n_tlsa++;
		snprintf(name, sizeof(name), "_%u._tcp.%s", (unsigned)rec->port, rec->target);
		req->tlsa[k].q = query_start(req, name, RR_TYPE_TLSA);
	}
	if (req->pending == 0)          /* all answered at once */
		req_addr_complete(req);
}

/* Append rec's addresses from one address answer to the target list. */
static size_t
req_add_addrs(struct resolve_req *req, size_t n, const struct srv_record *rec,
    const struct query *q, enum dns_security srv_sec)
{
	enum dns_security sec = sec_weakest(srv_sec, query_security(q));

	if (query_answer(q) != QA_DATA || q->ans == NULL)
		return n;
	for (size_t i = 0; i < MAX_ADDRS_PER_ANSWER && i < q->ans->n_rr; i++) {
		const unsigned char *rd = q->ans->data + q->ans->rdoff[i];
		size_t len = q->ans->rdlen[i];
		struct resolve_target *t;

		if (n >= req->cap_targets)
			break;
		t = &req->targets[n];
		memset(t, 0, sizeof(*t));
		if (q->rrtype == RR_TYPE_AAAA && len == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(rec->port);
			memcpy(&sin6->sin6_addr, rd, 16);
			t->addrlen = sizeof(*sin6);
		} else if (q->rrtype == RR_TYPE_A && len == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

			sin->sin_family = AF_INET;
			sin->sin_port = htons(rec->port);
			memcpy(&sin->sin_addr, rd, 4);
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
	/* room for every address the answers hold (at most MAX_TARGETS) */
	for (size_t i = 0; i < req->n_recs; i++) {
		const struct req_host *h = &req->hosts[req->rec_host[i]];

		for (int k = 0; k < 2; k++) {
			const struct query *q = k ? h->a : h->aaaa;

			if (query_answer(q) == QA_DATA && q->ans != NULL)
				req->cap_targets += q->ans->n_rr < MAX_ADDRS_PER_ANSWER ?
				    q->ans->n_rr : MAX_ADDRS_PER_ANSWER;
		}
	}
	if (req->cap_targets > MAX_TARGETS)
		req->cap_targets = MAX_TARGETS;
	if (req->cap_targets > 0 &&
	    (req->targets = calloc(req->cap_targets, sizeof(*req->targets))) == NULL)
		req->cap_targets = 0;
	for (size_t i = 0; i < req->n_recs && n < req->cap_targets; i++) {
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
	if (n > 0) {
		req_tlsa_complete(req);
	} else if (failed != NULL)
		req_finish(req, RESOLVE_SERVFAIL, query_why(failed));
	else
		req_finish(req, RESOLVE_NOTFOUND, req->fallback ?
		    "no SRV records and no address for the domain" :
		    "no address for any SRV target");
}

/* Targets and TLSA answers are in: hand each secure target its records, deliver. */
static void
req_tlsa_complete(struct resolve_req *req)
{
	size_t n = req->result.n_targets;

	for (size_t i = 0; i < n; i++) {
		struct resolve_target *t = &req->targets[i];

		t->tlsa_status = RESOLVE_TLSA_NONE;
		t->n_tlsa = 0;
		if (t->security != DNS_SECURE)
			continue;
		for (size_t k = 0; k < req->n_tlsa; k++)
			if (req->tlsa[k].port == t->port &&
			    strcasecmp(req->tlsa[k].host, t->host) == 0) {
				target_set_tlsa(t, req->tlsa[k].q);
				break;
			}
		if (t->tlsa_status != RESOLVE_TLSA_NONE)
			log_debug("dns lookup domain=%s target=%s:%u tlsa=%s records=%zu",
			    req->domain, t->host, (unsigned)t->port,
			    resolve_tlsa_status_str(t->tlsa_status), t->n_tlsa);
	}
	req_finish(req, RESOLVE_OK, NULL);
}

/* Fill t's TLSA from the answer q (NULL: the query could not be started). */
static void
target_set_tlsa(struct resolve_target *t, const struct query *q)
{
	enum query_answer a = query_answer(q);

	t->n_tlsa = 0;
	if (a == QA_BOGUS || a == QA_FAIL) {
		/* RFC 7673 §3: bogus or indeterminate TLSA: do not connect. */
		t->tlsa_status = RESOLVE_TLSA_BOGUS;
		return;
	}
	if (query_security(q) != DNS_SECURE) {
		t->tlsa_status = RESOLVE_TLSA_INSECURE;
		return;
	}
	t->tlsa_status = RESOLVE_TLSA_SECURE;
	if (a != QA_DATA || q->ans == NULL)
		return;                 /* secure denial: no TLSA, PKIX */
	for (size_t i = 0; i < q->ans->n_rr && t->n_tlsa < RESOLVE_TLSA_MAX; i++)
		if (resolver_parse_tlsa(q->ans->data + q->ans->rdoff[i], q->ans->rdlen[i],
		    &t->tlsa[t->n_tlsa]) == 0)
			t->n_tlsa++;
}

int
resolver_parse_tlsa(const unsigned char *rd, size_t len, struct resolve_tlsa *out)
{
	size_t n;

	if (rd == NULL || out == NULL || len < 4)
		return -1;
	memset(out, 0, sizeof(*out));
	out->usage = rd[0];
	out->selector = rd[1];
	out->mtype = rd[2];
	n = len - 3;
	if (n > RESOLVE_TLSA_DATA_MAX) {
		n = RESOLVE_TLSA_DATA_MAX;
		out->truncated = true;
	}
	memcpy(out->data, rd + 3, n);
	out->len = (uint16_t)n;
	return 0;
}

const char *
resolve_tlsa_status_str(enum resolve_tlsa_status st)
{
	switch (st) {
	case RESOLVE_TLSA_NONE:     return "none";
	case RESOLVE_TLSA_INSECURE: return "insecure";
	case RESOLVE_TLSA_SECURE:   return "secure";
	case RESOLVE_TLSA_BOGUS:    return "bogus";
	}
	return "unknown";
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
	req->step_due = false;
	if (st != RESOLVE_OK) {
		req->result.n_targets = 0;
		req->result.targets = NULL;
		r->stats.failures++;
		if (st == RESOLVE_BOGUS)
			r->stats.bogus++;
	}
	req->result.status = st;
	req->result.stale = false;
	for (const struct query *q = req->queries; q != NULL; q = q->next)
		if (q->done && q->stale)
			req->result.stale = true;
	if (why != NULL) {
		snprintf(req->why, sizeof(req->why), "%s", why);
		req->result.why = req->why;
	} else {
		req->result.why = NULL;
	}
	if (st == RESOLVE_OK)
		log_debug("dns lookup domain=%s status=ok targets=%zu stale=%d", req->domain,
		    req->result.n_targets, req->result.stale);
	else
		log_info("dns lookup domain=%s status=%s stale=%d reason=\"%s\"", req->domain,
		    resolve_status_str(st), req->result.stale, req->why);
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
		query_release(q);
	}
	req->srv_xmpp = req->srv_xmpps = NULL;
	for (size_t h = 0; h < req->n_hosts; h++)
		req->hosts[h].aaaa = req->hosts[h].a = NULL;
	for (size_t k = 0; k < req->n_tlsa; k++)
		req->tlsa[k].q = NULL;
}

static void
req_unlink(struct resolve_req *req)
{
	struct resolver *r = req->r;

	due_remove(req);
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
	free(req->recs);
	free(req->rec_host);
	free(req->tlsa);
	req->magic = DEAD_MAGIC;
	free(req);
}

/* ---- status socket ---- */

struct show_ctx {
	struct buf *out;
	int64_t now;
	size_t listed;
};

static const char *
rrtype_str(int t, char *tmp, size_t tmpsz)
{
	switch (t) {
	case RR_TYPE_A:    return "A";
	case RR_TYPE_AAAA: return "AAAA";
	case RR_TYPE_SRV:  return "SRV";
	case RR_TYPE_TLSA: return "TLSA";
	}
	snprintf(tmp, tmpsz, "TYPE%d", t);
	return tmp;
}

static int
show_entry(void *arg, const struct dnscache_entry *e)
{
	struct show_ctx *sc = arg;
	int64_t left = e->expires - sc->now;
	const char *kind = e->kind == DNSCACHE_DATA ? "data" : e->kind == DNSCACHE_NODATA ?
	    "nodata" : "nxdomain";
	char tmp[16];
	const char *type = rrtype_str(e->qtype, tmp, sizeof(tmp));

	if (sc->listed >= STATUS_MAX_ENTRIES)
		return 1;
	sc->listed++;
	buf_printf(sc->out, "dns.entry.%s.%s.ttl_left=%lld\n", e->name, type,
	    (long long)(left > 0 ? left : 0));
	buf_printf(sc->out, "dns.entry.%s.%s.security=%s\n", e->name, type,
	    e->security == DNS_SECURE ? "secure" : "insecure");
	buf_printf(sc->out, "dns.entry.%s.%s.stale=%d\n", e->name, type, left <= 0);
	buf_printf(sc->out, "dns.entry.%s.%s.answer=%s\n", e->name, type, kind);
	buf_printf(sc->out, "dns.entry.%s.%s.records=%zu\n", e->name, type, e->n_rr);
	return 0;
}

/* "show dns"'s counters and gauges: one family per sample_put of resolver_emit, in its
 * order (named after the keys: dns.hits -> quickfed_dns_hits_total). */
static const struct sample_family fam_dns[] = {
	{ NULL, SAMPLE_GAUGE, "answers in the DNS cache" },
	{ NULL, SAMPLE_COUNTER, "questions answered fresh from the cache" },
	{ NULL, SAMPLE_COUNTER, "questions that needed (or joined) a query" },
	{ NULL, SAMPLE_COUNTER, "answers served stale after a failure or the stale timer" },
	{ NULL, SAMPLE_COUNTER, "answers that failed DNSSEC validation" },
	{ NULL, SAMPLE_COUNTER, "queries sent to the resolver" },
	{ NULL, SAMPLE_COUNTER, "NODATA/NXDOMAIN answers served from the cache" },
	{ NULL, SAMPLE_COUNTER, "questions that joined a query already under way" },
	{ NULL, SAMPLE_COUNTER, "lookups (SRV and fallbacks of one domain) started" },
	{ NULL, SAMPLE_COUNTER, "lookups that failed" },
	{ NULL, SAMPLE_GAUGE, "queries under way" },
	{ NULL, SAMPLE_GAUGE, "queries under way at libunbound, against resolver { queries }" },
	{ NULL, SAMPLE_COUNTER, "questions that waited for a slot (resolver { queries })" },
	{ NULL, SAMPLE_GAUGE, "1 when answers are DNSSEC-validated" },
};

void
resolver_emit(void *arg, struct sample_sink *sink)
{
	struct resolver *r = arg;
	struct resolver_stats st;
	size_t inflight = 0;
	const struct sample_family *f = fam_dns;

	if (r == NULL || r->magic != RESOLVER_MAGIC)
		return;
	resolver_get_stats(r, &st);
	for (const struct flight *fl = r->flights; fl != NULL; fl = fl->next)
		inflight++;
	sample_put(sink, "dns.entries", f++, (int64_t)st.entries);
	sample_put(sink, "dns.hits", f++, (int64_t)st.hits);
	sample_put(sink, "dns.misses", f++, (int64_t)st.misses);
	sample_put(sink, "dns.stale_served", f++, (int64_t)st.stale_served);
	sample_put(sink, "dns.bogus", f++, (int64_t)st.bogus);
	sample_put(sink, "dns.queries_sent", f++, (int64_t)st.queries_sent);
	sample_put(sink, "dns.negative", f++, (int64_t)st.negative);
	sample_put(sink, "dns.coalesced", f++, (int64_t)st.coalesced);
	sample_put(sink, "dns.lookups", f++, (int64_t)st.lookups);
	sample_put(sink, "dns.failures", f++, (int64_t)st.failures);
	sample_put(sink, "dns.inflight", f++, (int64_t)inflight);
	sample_put(sink, "dns.asking", f++, (int64_t)r->n_inflight);
	sample_put(sink, "dns.queued", f++, (int64_t)st.queued);
	sample_put(sink, "dns.validating", f++, (int64_t)r->validating);
}

static int
status_show_dns(void *arg, const char *args, struct buf *out)
{
	struct resolver *r = arg;
	struct resolver_stats st;
	struct sample_sink sink;
	struct show_ctx sc;

	if (r == NULL || r->magic != RESOLVER_MAGIC) {
		buf_puts(out, "resolver gone");
		return -1;
	}
	resolver_get_stats(r, &st);
	sample_kv_sink(&sink, out);
	resolver_emit(r, &sink);
	buf_printf(out, "dns.cache_file=%s\n", r->cache_path != NULL ? r->cache_path : "none");
	sc.out = out;
	sc.now = wall_now();
	sc.listed = 0;
	dnscache_foreach(r->cache, show_entry, &sc);
	if (sc.listed < st.entries)
		buf_printf(out, "dns.entries_not_listed=%lu\n", st.entries - sc.listed);
	return 0;
}

static int
status_flush_dns(void *arg, const char *args, struct buf *out)
{
	struct resolver *r = arg;
	char name[256];
	size_t len;

	if (r == NULL || r->magic != RESOLVER_MAGIC) {
		buf_puts(out, "resolver gone");
		return -1;
	}
	while (args != NULL && (*args == ' ' || *args == '\t'))
		args++;
	len = args != NULL ? strcspn(args, " \t\r\n") : 0;
	if (len == 0) {
		buf_printf(out, "flushed=%zu\n", resolver_flush(r, NULL));
		return 0;
	}
	if (len >= sizeof(name) || args[len + strspn(args + len, " \t\r\n")] != '\0') {
		buf_puts(out, "usage: flush dns [NAME]");
		return -1;
	}
	memcpy(name, args, len);
	name[len] = '\0';
	buf_printf(out, "flushed=%zu\n", resolver_flush(r, name));
	return 0;
}
