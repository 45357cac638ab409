/* tests/bench/tcprelay.c - a trivial TCP relay: the floor under quickfed's added latency.
 * SPDX-License-Identifier: ISC
 *
 * tests/bench/synth.sh runs two of these in quickfed's place (synthsrv A -> relay 1 ->
 * relay 2 -> synthsrv B) to measure what two extra processes on the path cost on this
 * machine by themselves: two more wake-ups, two more loopback hops, nothing parsed, no
 * TLS. quickfed's added latency above that floor is quickfed's own work.
 * Not part of libquickfed; synth.sh builds it with cc into build/bench/.
 *
 * usage: tcprelay LISTEN_IP:PORT TARGET_IP:PORT [MAX_LIFETIME_S]
 * Every accepted connection gets its own connection to TARGET; bytes go both ways as
 * they come (TCP_NODELAY on both, one read per readiness, at most RELAY_BUF bytes held per
 * direction: when the far side does not take them, the near side is not read). When one
 * side closes, both do. Prints "ready" on stdout once listening; MAX_LIFETIME_S (default
 * 1800) bounds its life; SIGTERM ends it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inaddr.h"

#define RELAY_BUF	(256 * 1024)	/* bytes held per direction */
#define RELAY_LIFETIME	1800		/* seconds, default */

/* One side of a relayed connection; its peer is the other side. out holds bytes read
 * from the peer that this side's socket has not taken yet. */
struct side {
	int		 fd;
	bool		 dead;		/* closed; freed after this batch of events */
	uint32_t	 mask;		/* events asked of epoll */
	struct side	*peer, *next_dead;
	size_t		 off, len;
	char		*out;
};

static int ep;
static volatile sig_atomic_t stop;

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("tcprelay: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
parse_addr(const char *s, struct sockaddr_in *sa)
{
	if (parse_inaddr(s, sa) == -1)
		die("bad address '%s' (want IPv4:PORT)", s);
}

/* watch(s): read s while its peer's buffer has room, write s while its own has bytes. */
static void
watch(struct side *s, int op)
{
	struct epoll_event ev = { .data.ptr = s };

	ev.events = (s->peer->len == 0 ? EPOLLIN : 0) | (s->len > 0 ? EPOLLOUT : 0);
	if (op == EPOLL_CTL_MOD && ev.events == s->mask)
		return;
	s->mask = ev.events;
	if (epoll_ctl(ep, op, s->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static struct side *graveyard;

/* close_pair(s): close both sides now, free them after the batch (an event for the
 * peer may still be in it). */
static void
close_pair(struct side *s)
{
	struct side *p = s->peer;

	close(s->fd);
	close(p->fd);
	s->dead = p->dead = true;
	s->next_dead = p;
	p->next_dead = graveyard;
	graveyard = s;
}

static void
bury(void)
{
	while (graveyard != NULL) {
		struct side *s = graveyard;

		graveyard = s->next_dead;
		free(s->out);
		free(s);
	}
}

static struct side *
side_new(int fd)
{
	struct side *s = calloc(1, sizeof(*s));
	int one = 1;

	if (s == NULL || (s->out = malloc(RELAY_BUF)) == NULL)
		die("out of memory");
	s->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

static void
accept_one(int lfd, const struct sockaddr_in *target)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK), tfd;
	struct side *a, *b;

	if (fd < 0)
		return;
	/* a blocking connect on loopback, then non-blocking: set-up is not what is measured */
	if ((tfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(tfd, (const struct sockaddr *)target, sizeof(*target)) < 0 ||
	    fcntl(tfd, F_SETFL, O_NONBLOCK) < 0) {
		fprintf(stderr, "tcprelay: connect: %s\n", strerror(errno));
		if (tfd >= 0)
			close(tfd);
		close(fd);
		return;
	}
	a = side_new(fd);
	b = side_new(tfd);
	a->peer = b;
	b->peer = a;
	watch(a, EPOLL_CTL_ADD);
	watch(b, EPOLL_CTL_ADD);
}

/* pump(s, events): write what s holds, read what s's peer should get; false when the
 * pair is done. */
static bool
pump(struct side *s, uint32_t events)
{
	struct side *p = s->peer;
	ssize_t n;

	if ((events & EPOLLOUT) && s->len > 0) {
		n = send(s->fd, s->out + s->off, s->len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0) {
			s->off += (size_t)n;
			s->len -= (size_t)n;
			if (s->len == 0)
				s->off = 0;
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && p->len == 0) {
		n = recv(s->fd, p->out, RELAY_BUF, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return false;
		if (n > 0) {
			p->len = (size_t)n;
			n = send(p->fd, p->out, p->len, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return false;
			if (n > 0) {
				p->len -= (size_t)n;
				p->off = p->len > 0 ? (size_t)n : 0;
			}
		}
	}
	watch(s, EPOLL_CTL_MOD);
	watch(p, EPOLL_CTL_MOD);
	return true;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in la, ta;
	struct epoll_event evs[64];
	int lfd, one = 1, life = RELAY_LIFETIME;
	struct sigaction sa = { .sa_handler = on_signal };
	time_t end;

	if (argc < 3 || argc > 4)
		die("usage: tcprelay LISTEN_IP:PORT TARGET_IP:PORT [MAX_LIFETIME_S]");
	parse_addr(argv[1], &la);
	parse_addr(argv[2], &ta);
	if (argc == 4 && (life = atoi(argv[3])) <= 0)
		die("bad lifetime '%s'", argv[3]);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((ep = epoll_create1(0)) < 0 ||
	    (lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 1024) < 0)
		die("listen on %s: %s", argv[1], strerror(errno));
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
	}
	printf("ready\n");
	fflush(stdout);
	end = time(NULL) + life;
	while (!stop && time(NULL) < end) {
		int n = epoll_wait(ep, evs, 64, 1000);

		for (int i = 0; i < n; i++) {
			struct side *s = evs[i].data.ptr;

			if (s == NULL)
				accept_one(lfd, &ta);
			else if (!s->dead && !pump(s, evs[i].events))
				close_pair(s);
		}
		bury();
	}
	return 0;
}
