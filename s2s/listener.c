/* s2s/listener.c - listening sockets for the internet side and the loopback leg.
 * SPDX-License-Identifier: ISC
 * Opened by main.c. Before each accept it asks admit.c whether the listener has room:
 * if not, the oldest unauthenticated internet-side connection is shed to make room,
 * and if there is none the listener pauses (as on EMFILE) instead of spinning and
 * resumes from a one-second timer. After accept, a source over its per-address limit
 * is closed at once, before any TLS or XML work.
 * The local listener serves loopback peers only: config.c requires a loopback
 * address, and each accepted peer is checked too (a packet from another local address
 * can reach 127.0.0.1). Also serves "show listeners". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/log.h"
#include "../core/stats.h"
#include "../core/status.h"
#include "admit.h"
#include "conn.h"
#include "link.h"
#include "listener.h"
#include "route.h"

#define PAUSE_SECONDS      1.0   /* a full listener looks again after this */
#define LOG_INTERVAL       10.0  /* at most one "not accepting" and one "shedding" line
                                  * per listener in this many seconds */
#define FD_RESERVE         64    /* descriptors besides connections: status, resolver, files */

struct listener {
	ev_io    io;
	ev_timer resume;          /* re-enables accepting after a pause */
	int      fd;
	size_t   index;           /* position in the config, for "show listeners" */
	struct cfg_listener cl;   /* what it was opened for (a reload compares it) */
	enum stream_side side;
	bool     direct_tls;
	char     name[96];
	struct admit_listener *adm;  /* its connection accounting (admit.c) */
	double   pause_log_at;    /* last "not accepting" line, < 0: none yet */
	double   shed_log_at;     /* last "shedding" line, < 0: none yet */
	unsigned long shed_unlogged; /* sheds since that line */
	struct listener *next;
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct listener *listeners;
/* A reload in progress (listener_reload_prepare): the sockets opened for the new
 * config's listener i, not accepting yet, and which current one each keeps. */
static struct listener *pending[CFG_MAX_LISTENERS];
static int plan_from[CFG_MAX_LISTENERS];

static void accept_cb(EV_P_ ev_io *, int);
static void resume_cb(EV_P_ ev_timer *, int);
static bool conn_protected(void *);
static void check_fd_limit(void);
static void refuse(struct listener *, int, const struct sockaddr *,
    const struct admit_refusal *);
static void shed(struct listener *, struct admit_entry *);
static bool log_due(double *, double);
static int status_listeners(void *, const char *, struct buf *);
static void format_peer(const struct sockaddr *, char *, size_t);
static struct listener *listener_make(const struct cfg_listener *, size_t, int *);
static void listener_start(struct listener *);
static void listener_set_kind(struct listener *, const struct cfg_listener *);
static void listener_free(struct listener *);
static bool same_endpoint(const struct cfg_listener *, const struct cfg_listener *);

bool
listener_loopback_peer(const struct sockaddr *sa, socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static void
format_peer(const struct sockaddr *sa, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
	} else {
		snprintf(out, n, "family-%d", (int)sa->sa_family);
	}
}

/* A bound, listening socket for cl, not accepting yet (listener_start), or NULL with
 * *err = errno (logged). */
static struct listener *
listener_make(const struct cfg_listener *cl, size_t index, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct listener *l;
	int fd, one = 1;

	*err = EINVAL;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cl->address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(cl->port);
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cl->address,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(cl->port);
		len = sizeof(struct sockaddr_in6);
	} else {
		log_warnx("listener: bad address %s", cl->address);
		return NULL;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		*err = errno;
		log_warn("listener: socket");
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 128) == -1) {
		*err = errno;
		log_warn("listener: cannot listen on %s port %u", cl->address, cl->port);
		close(fd);
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatalx("listener: out of memory");
	l->fd = fd;
	l->index = index;
	l->pause_log_at = l->shed_log_at = -1;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	ev_init(&l->resume, resume_cb);
	l->io.data = l->resume.data = l;
	listener_set_kind(l, cl);
	return l;
}

/* (Re)state what l serves: kind, name, connection accounting (a new one when the kind
 * changes: the connections accepted before keep the old one, freed with the last of
 * them), TCP Fast Open. */
static void
listener_set_kind(struct listener *l, const struct cfg_listener *cl)
{
	bool same = l->adm != NULL && l->cl.kind == cl->kind;

	l->cl = *cl;
	l->side = cl->kind == CFG_LISTEN_LOCAL ? STREAM_LOCAL : STREAM_INTERNET;
	l->direct_tls = cl->kind == CFG_LISTEN_DIRECT_TLS;
	snprintf(l->name, sizeof(l->name), "%s:%s:%u", l->direct_tls ? "direct_tls" :
	    l->side == STREAM_INTERNET ? "internet" : "local", cl->address, cl->port);
	if (same) {
		admit_listener_set_max(l->adm, cl->max_connections);
	} else {
		if (l->adm != NULL)
			admit_listener_close(l->adm);
		l->adm = admit_listener_new(l->name, cl->max_connections,
		    l->side == STREAM_INTERNET);
	}
	if (cl->kind != CFG_LISTEN_LOCAL && cfg->tcp_fastopen) {
		int qlen = 64;

		/* RFC 7413; the kernel ignores it unless net.ipv4.tcp_fastopen allows servers */
		if (setsockopt(l->fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) == -1)
			log_debug("listener %s: no TCP Fast Open: %s", l->name, strerror(errno));
	}
}

static void
listener_start(struct listener *l)
{
	ev_io_start(loop, &l->io);
	l->next = listeners;
	listeners = l;
	log_info("listening on %s connections=%u", l->name, l->cl.max_connections);
}

/* Stop accepting and close the socket; the connections it accepted go on, and its
 * accounting with the last of them. */
static void
listener_free(struct listener *l)
{
	ev_io_stop(loop, &l->io);
	ev_timer_stop(loop, &l->resume);
	close(l->fd);
	if (l->adm != NULL)
		admit_listener_close(l->adm);
	free(l);
}

int
listener_open_all(struct ev_loop *lp, const struct config *c)
{
	loop = lp;
	cfg = c;
	admit_init(cfg->max_connections, cfg->max_connections_per_address, conn_protected);
	check_fd_limit();
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		struct listener *l;
		int err;

		if (cfg->listeners[i].kind == CFG_LISTEN_METRICS)
			continue;   /* core/metrics_http.c */
		if ((l = listener_make(&cfg->listeners[i], i, &err)) == NULL)
			return -1;
		listener_start(l);
	}
	return 0;
}

/* The same address (IPv4-mapped and plain IPv4 alike, any spelling) and port. */
static bool
same_endpoint(const struct cfg_listener *a, const struct cfg_listener *b)
{
	unsigned char x[16], y[16];
	int fa, fb;

	if (a->port != b->port)
		return false;
	fa = inet_pton(AF_INET, a->address, x) == 1 ? AF_INET :
	    inet_pton(AF_INET6, a->address, x) == 1 ? AF_INET6 : 0;
	fb = inet_pton(AF_INET, b->address, y) == 1 ? AF_INET :
	    inet_pton(AF_INET6, b->address, y) == 1 ? AF_INET6 : 0;
	if (fa == 0 || fb == 0)
		return strcmp(a->address, b->address) == 0;
	return fa == fb && memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

void
listener_plan(const struct cfg_listener *cur, size_t ncur, const struct cfg_listener *want,
    size_t nwant, int *from)
{
	bool used[CFG_MAX_LISTENERS] = { false };

	for (size_t j = 0; j < nwant; j++) {
		from[j] = -1;
		if (want[j].kind == CFG_LISTEN_METRICS)
			continue;   /* core/metrics_http.c's, opened once */
		for (size_t i = 0; i < ncur && i < CFG_MAX_LISTENERS; i++)
			if (!used[i] && same_endpoint(&cur[i], &want[j])) {
				from[j] = (int)i;
				used[i] = true;
				break;
			}
	}
}

int
listener_reload_prepare(const struct config *c, FILE *errs)
{
	struct cfg_listener cur[CFG_MAX_LISTENERS];
	struct listener *byidx[CFG_MAX_LISTENERS];
	size_t ncur = 0;

	for (struct listener *l = listeners; l != NULL && ncur < CFG_MAX_LISTENERS; l = l->next) {
		byidx[ncur] = l;
		cur[ncur++] = l->cl;
	}
	listener_plan(cur, ncur, c->listeners, c->n_listeners, plan_from);
	for (size_t j = 0; j < c->n_listeners; j++) {
		const struct cfg_listener *cl = &c->listeners[j];
		int err;

		pending[j] = NULL;
		if (cl->kind == CFG_LISTEN_METRICS)
			continue;
		if (plan_from[j] >= 0) {
			/* kept: remember which one by pointer (the list does not change
			 * before commit or abort) */
			pending[j] = byidx[plan_from[j]];
			continue;
		}
		if ((pending[j] = listener_make(cl, j, &err)) == NULL) {
			fprintf(errs, "%s:%d: listener %s port %u: cannot listen: %s\n", c->path,
			    cl->line, cl->address, cl->port, strerror(err));
			for (size_t k = 0; k < j; k++)
				if (plan_from[k] < 0)
					listener_free(pending[k]);
			memset(pending, 0, sizeof(pending));
			return -1;
		}
	}
	return 0;
}

void
listener_reload_abort(const struct config *c)
{
	for (size_t j = 0; j < c->n_listeners; j++)
		if (plan_from[j] < 0 && pending[j] != NULL)
			listener_free(pending[j]);
	memset(pending, 0, sizeof(pending));
}

void
listener_reload_commit(const struct config *c)
{
	struct listener **pp = &listeners, *l;

	cfg = c;
	admit_set_limits(cfg->max_connections, cfg->max_connections_per_address);
	/* close the current listeners no longer configured: their connections go on */
	while ((l = *pp) != NULL) {
		bool kept = false;

		for (size_t j = 0; j < c->n_listeners; j++)
			if (plan_from[j] >= 0 && pending[j] == l)
				kept = true;
		if (kept) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		log_info("listener %s closed by reload: its %u connection(s) go on", l->name,
		    admit_listener_count(l->adm));
		listener_free(l);
	}
	for (size_t j = 0; j < c->n_listeners; j++) {
		if ((l = pending[j]) == NULL)
			continue;   /* a metrics listener */
		l->index = j;
		if (plan_from[j] >= 0) {
			if (l->cl.kind != c->listeners[j].kind)
				log_info("listener %s: kind changed by reload, the socket stays open",
				    l->name);
			listener_set_kind(l, &c->listeners[j]);
		} else {
			listener_start(l);
		}
	}
	memset(pending, 0, sizeof(pending));
	check_fd_limit();
}

void
listener_register_status(struct status *st)
{
	status_register(st, "show listeners",
	    "show listeners: each listener's open connections and limit, whether it accepts",
	    status_listeners, NULL);
}

/* The shedding predicate: only open connections that authenticated nothing yet. */
static bool
conn_protected(void *owner)
{
	const struct link *l = owner;

	return !link_open(l) || link_authenticated(l);
}

/* The limits allow about two descriptors per accepted connection (it, and the one
 * quickfed opens to relay its traffic): raise the soft RLIMIT_NOFILE towards that if
 * the hard limit allows, so EMFILE does not come before the limits (and then hit the
 * local listener too); say so if it cannot. */
static void
check_fd_limit(void)
{
	unsigned long inet = 0, local = 0, need;
	struct rlimit rl;

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		if (cfg->listeners[i].kind == CFG_LISTEN_LOCAL)
			local += cfg->listeners[i].max_connections;
		else if (cfg->listeners[i].kind != CFG_LISTEN_METRICS)
			inet += cfg->listeners[i].max_connections;
	}
	if (inet > cfg->max_connections)
		inet = cfg->max_connections;
	need = 2 * (inet + local) + FD_RESERVE;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return;
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur) {
		struct rlimit nrl = rl;

		nrl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ?
		    rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &nrl) == 0) {
			log_info("open file limit raised from %lu to %lu",
			    (unsigned long)rl.rlim_cur, (unsigned long)nrl.rlim_cur);
			rl = nrl;
		}
	}
	if (rl.rlim_cur < need)
		log_warnx("open file limit %lu is below the %lu descriptors the connection "
		    "limits may need: accepting may stop at EMFILE first, on every listener",
		    (unsigned long)rl.rlim_cur, need);
}

/* Rate limit for a listener's repeated lines: true (and *at = now) when the last one
 * is LOG_INTERVAL old, or there was none (*at < 0), or the clock went back. */
static bool
log_due(double *at, double now)
{
	if (*at >= 0 && now - *at < LOG_INTERVAL && now >= *at)
		return false;
	*at = now;
	return true;
}

static void
pause_accepting(struct listener *l, const char *why)
{
	qf_stats.conns_paused++;
	if (log_due(&l->pause_log_at, ev_now(loop)))
		log_warnx("listener %s: not accepting for 1s: %s (connections=%u limit=%u, "
		    "internet side %u of %u)", l->name, why, admit_listener_count(l->adm),
		    admit_listener_max(l->adm), admit_internet_count(), admit_internet_max());
	ev_io_stop(loop, &l->io);
	ev_timer_set(&l->resume, PAUSE_SECONDS, 0.);
	ev_timer_start(loop, &l->resume);
}

/* A source over connections_per_address: closed before any TLS or XML work. */
static void
refuse(struct listener *l, int fd, const struct sockaddr *sa, const struct admit_refusal *r)
{
	char src[INET6_ADDRSTRLEN + 8], more[64] = "";

	qf_stats.conns_refused_per_address++;
	close(fd);
	if (!r->log)
		return;
	admit_source_str(sa, src, sizeof(src));
	if (r->suppressed > 0)
		snprintf(more, sizeof(more), "; %lu more refused since the last line",
		    r->suppressed);
	log_warnx("listener %s: refused a connection from %s: it holds %u "
	    "(connections_per_address %u)%s", l->name, src, r->count,
	    cfg->max_connections_per_address, more);
}

/* Close the oldest unauthenticated connection to make room (admit_room's victim).
 * One line per listener per LOG_INTERVAL; each shed connection's own close line says
 * reason=shed. */
static void
shed(struct listener *l, struct admit_entry *victim)
{
	struct link *v = admit_owner(victim);
	const struct conn *vc = link_conn(v);

	qf_stats.conns_shed++;
	l->shed_unlogged++;
	if (log_due(&l->shed_log_at, ev_now(loop))) {
		log_warnx("listener %s: full (connections=%u limit=%u, internet side %u of %u): "
		    "shedding the oldest unauthenticated connections, %lu since the last line",
		    l->name, admit_listener_count(l->adm), admit_listener_max(l->adm),
		    admit_internet_count(), admit_internet_max(), l->shed_unlogged);
		l->shed_unlogged = 0;
	}
	log_debug("listener %s: shedding conn=%lu from %s, unauthenticated for %.1fs",
	    l->name, vc->id, vc->addr, ev_now(loop) - vc->created);
	link_shed(v, "connection-timeout", "shed under load");
}

static void
accept_cb(EV_P_ ev_io *w, int revents)
{
	struct listener *l = w->data;

	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct admit_entry *victim;
		struct admit_refusal r;
		enum admit_room room;
		struct link *lk;
		struct conn *c;
		int fd;

		if ((room = admit_room(l->adm, &victim)) == ADMIT_FULL) {
			pause_accepting(l, l->side == STREAM_LOCAL ? "connection limit reached" :
			    "connection limit reached, no unauthenticated connection to shed");
			return;
		}
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_accepting(l, strerror(errno));
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("listener %s: accept", l->name);
			return;
		}
		if (l->side == STREAM_LOCAL &&
		    !listener_loopback_peer((struct sockaddr *)&ss, len)) {
			char peer[INET6_ADDRSTRLEN + 16];

			format_peer((struct sockaddr *)&ss, peer, sizeof(peer));
			log_warnx("local listener %s refused %s: not a loopback address", l->name,
			    peer);
			close(fd);
			continue;
		}
		if (!admit_source_ok(l->adm, (struct sockaddr *)&ss, ev_now(EV_A), &r)) {
			refuse(l, fd, (struct sockaddr *)&ss, &r);
			continue;
		}
		if (room == ADMIT_SHED)
			shed(l, victim);   /* victim is freed now */
		lk = link_accept(fd, l->side, l->direct_tls, (struct sockaddr *)&ss, len,
		    route_receiver_ops(), HANDLE_NULL);
		if (lk == NULL)
			continue;
		c = link_conn(lk);
		if ((c->admit = admit_add(l->adm, (struct sockaddr *)&ss, lk)) == NULL) {
			log_warnx("conn=%lu listener %s: out of memory", c->id, l->name);
			link_close(lk, "out-of-memory");
		}
	}
}

static void
resume_cb(EV_P_ ev_timer *w, int revents)
{
	struct listener *l = w->data;

	(void)revents;
	ev_io_start(EV_A, &l->io);
}

void
listener_close_internet(void)
{
	struct listener **pp = &listeners, *l;

	while ((l = *pp) != NULL) {
		if (l->side != STREAM_INTERNET) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		log_info("listener %s closed", l->name);
		listener_free(l);
	}
}

void
listener_close_all(void)
{
	struct listener *l;

	while ((l = listeners) != NULL) {
		listeners = l->next;
		listener_free(l);
	}
}

static int
status_listeners(void *arg, const char *args, struct buf *out)
{
	size_t n = 0;

	(void)arg;
	(void)args;
	for (const struct listener *l = listeners; l != NULL; l = l->next)
		n++;
	buf_printf(out, "listeners=%zu\n", n);
	buf_printf(out, "internet.connections=%u\n", admit_internet_count());
	buf_printf(out, "internet.limit=%u\n", admit_internet_max());
	buf_printf(out, "internet.per_address_limit=%u\n", cfg->max_connections_per_address);
	buf_printf(out, "internet.sources=%zu\n", admit_sources());
	for (size_t i = 0; i < CFG_MAX_LISTENERS; i++)
		for (const struct listener *l = listeners; l != NULL; l = l->next) {
			if (l->index != i)
				continue;
			buf_printf(out, "listener.%zu.name=%s\n", i, l->name);
			buf_printf(out, "listener.%zu.kind=%s\n", i, l->direct_tls ? "direct_tls" :
			    l->side == STREAM_INTERNET ? "internet" : "local");
			buf_printf(out, "listener.%zu.connections=%u\n", i,
			    admit_listener_count(l->adm));
			buf_printf(out, "listener.%zu.limit=%u\n", i, admit_listener_max(l->adm));
			buf_printf(out, "listener.%zu.accepting=%d\n", i, ev_is_active(&l->io));
		}
	return 0;
}
