/* s2s/listener.c - listening sockets for the internet side and the loopback leg.
 * SPDX-License-Identifier: ISC
 * Opened by main.c. Accepts until max_connections is reached, then pauses accepting
 * (and on EMFILE) instead of spinning; resumes from a short timer. The local listener
 * serves loopback peers only: config.c requires a loopback address, and each accepted
 * peer is checked too (a packet from another local address can reach 127.0.0.1). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/log.h"
#include "conn.h"
#include "listener.h"

struct listener {
	ev_io    io;
	ev_timer resume;          /* re-enables accepting after a pause */
	int      fd;
	enum stream_side side;
	bool     direct_tls;
	char     name[80];
	struct listener *next;
};

static struct ev_loop *loop;
static const struct config *cfg;
static struct listener *listeners;

static void accept_cb(EV_P_ ev_io *, int);
static void resume_cb(EV_P_ ev_timer *, int);
static void format_peer(const struct sockaddr *, char *, size_t);

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

static int
open_one(const struct cfg_listener *cl)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct listener *l;
	int fd, one = 1;

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
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("listener: socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (cl->kind != CFG_LISTEN_LOCAL && cfg->tcp_fastopen) {
		int qlen = 64;

		/* RFC 7413; the kernel ignores it unless net.ipv4.tcp_fastopen allows servers */
		if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) == -1)
			log_debug("listener %s:%u: no TCP Fast Open: %s", cl->address, cl->port,
			    strerror(errno));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 128) == -1) {
		log_warn("listener: cannot listen on %s port %u", cl->address, cl->port);
		close(fd);
		return -1;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatalx("listener: out of memory");
	l->fd = fd;
	l->side = cl->kind == CFG_LISTEN_LOCAL ? STREAM_LOCAL : STREAM_INTERNET;
	l->direct_tls = cl->kind == CFG_LISTEN_DIRECT_TLS;
	snprintf(l->name, sizeof(l->name), "%s:%s:%u", l->direct_tls ? "direct_tls" :
	    l->side == STREAM_INTERNET ? "internet" : "local", cl->address, cl->port);
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	ev_init(&l->resume, resume_cb);
	l->io.data = l->resume.data = l;
	ev_io_start(loop, &l->io);
	l->next = listeners;
	listeners = l;
	log_info("listening on %s", l->name);
	return 0;
}

int
listener_open_all(struct ev_loop *lp, const struct config *c)
{
	loop = lp;
	cfg = c;
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (open_one(&cfg->listeners[i]) == -1)
			return -1;
	return 0;
}

static void
pause_accepting(struct listener *l, const char *why)
{
	log_warnx("listener %s: not accepting for 1s: %s", l->name, why);
	ev_io_stop(loop, &l->io);
	ev_timer_set(&l->resume, 1., 0.);
	ev_timer_start(loop, &l->resume);
}

static void
accept_cb(EV_P_ ev_io *w, int revents)
{
	struct listener *l = w->data;

	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd;

		if (conn_count() >= cfg->max_connections) {
			pause_accepting(l, "connection limit reached");
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
		conn_accept(fd, l->side, l->direct_tls, (struct sockaddr *)&ss, len);
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
		ev_io_stop(loop, &l->io);
		ev_timer_stop(loop, &l->resume);
		close(l->fd);
		log_info("listener %s closed", l->name);
		free(l);
	}
}

void
listener_close_all(void)
{
	struct listener *l;

	while ((l = listeners) != NULL) {
		listeners = l->next;
		ev_io_stop(loop, &l->io);
		ev_timer_stop(loop, &l->resume);
		close(l->fd);
		free(l);
	}
}
