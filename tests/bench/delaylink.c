/* tests/bench/delaylink.c - a point-to-point IP link between two network namespaces with a fixed delay.
 * SPDX-License-Identifier: ISC
 * Used by tests/bench/run.sh to emulate an internet path: this kernel has no sch_netem,
 * so one TUN device is opened in each namespace and every IP packet read from one side
 * is written to the other after RTT/2, first in first out, nothing dropped below the
 * queue cap. TCP, TLS and XMPP see the real round trips (a TCP relay would hide the SYN).
 * Not part of libquickfed; run.sh builds it with cc into build/bench/.
 *
 * usage: delaylink NS1 ADDR1/PREFIX NS2 ADDR2/PREFIX RTT_MS [MAX_LIFETIME_S]
 *   RTT_MS is the round-trip time: each direction is delayed by RTT_MS/2.
 *   MAX_LIFETIME_S (default 1800) bounds how long the relay runs, so it can never outlive
 *   a benchmark; SIGTERM/SIGINT end it at once. The TUN devices vanish with the process.
 * Prints "ready IF1 IF2" on stdout once both ends are configured. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define DL_QUEUE_MAX	65536		/* packets queued per direction before drops */
#define DL_PKT_MAX	65536		/* largest packet read from a TUN device */
#define DL_LIFETIME_DEF	1800		/* seconds */

/* One queued packet. */
struct dl_pkt {
	struct dl_pkt	*next;
	uint64_t	 due_ns;		/* CLOCK_MONOTONIC time it may leave */
	size_t		 len;
	unsigned char	 data[];
};

/* One direction: packets read from `from` wait here and are written to `to`. */
struct dl_dir {
	const char	*name;			/* "1->2" for logs */
	int		 from, to;
	struct dl_pkt	*head, *tail;
	size_t		 queued, queued_max;
	uint64_t	 fwd, dropped, write_err;
};

static volatile sig_atomic_t dl_stop;

static void	 dl_usage(void);
static void	 dl_on_signal(int);
static uint64_t	 dl_now_ns(void);
static int	 dl_open_tun(const char *, char *);
static int	 dl_sh(const char *, ...) __attribute__((format(printf, 1, 2)));
static void	 dl_read(struct dl_dir *, uint64_t, uint64_t, unsigned char *);
static int	 dl_flush(struct dl_dir *, uint64_t);

static void
dl_usage(void)
{
	fprintf(stderr, "usage: delaylink NS1 ADDR1/PREFIX NS2 ADDR2/PREFIX RTT_MS "
	    "[MAX_LIFETIME_S]\n"
	    "  each direction is delayed by RTT_MS/2; default lifetime %d s\n",
	    DL_LIFETIME_DEF);
	exit(2);
}

static void
dl_on_signal(int sig)
{
	(void)sig;
	dl_stop = 1;
}

static uint64_t
dl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Open a TUN device inside namespace ns (a name under /var/run/netns); the device
 * name chosen by the kernel is copied into ifname (IFNAMSIZ). Returns the fd or -1. */
static int
dl_open_tun(const char *ns, char *ifname)
{
	char path[PATH_MAX];
	struct ifreq ifr;
	int self, nsfd, fd = -1, saved;

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self == -1) {
		fprintf(stderr, "delaylink: open /proc/self/ns/net: %s\n", strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd == -1) {
		fprintf(stderr, "delaylink: namespace %s: open %s: %s\n", ns, path,
		    strerror(errno));
		close(self);
		return -1;
	}
	if (setns(nsfd, CLONE_NEWNET) == -1) {
		fprintf(stderr, "delaylink: namespace %s: setns: %s\n", ns, strerror(errno));
		goto out;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		fprintf(stderr, "delaylink: namespace %s: open /dev/net/tun: %s\n", ns,
		    strerror(errno));
	} else {
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
		snprintf(ifr.ifr_name, IFNAMSIZ, "qfdl%%d");
		if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
			fprintf(stderr, "delaylink: namespace %s: TUNSETIFF: %s\n", ns,
			    strerror(errno));
			close(fd);
			fd = -1;
		} else
			snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
	}
	saved = errno;
	if (setns(self, CLONE_NEWNET) == -1) {
		/* Staying in the wrong namespace would configure the wrong devices. */
		fprintf(stderr, "delaylink: cannot return to own namespace: %s\n",
		    strerror(errno));
		exit(1);
	}
	errno = saved;
out:
	close(nsfd);
	close(self);
	return fd;
}

/* Run a shell command built from fmt; returns 0 when it exited 0. */
static int
dl_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "delaylink: command failed (status %d): %s\n", rc, cmd);
		return -1;
	}
	return 0;
}

/* Read every packet waiting on d->from and queue it, due at now + delay. */
static void
dl_read(struct dl_dir *d, uint64_t now, uint64_t delay_ns, unsigned char *buf)
{
	struct dl_pkt *p;
	ssize_t n;

	for (;;) {
		n = read(d->from, buf, DL_PKT_MAX);
		if (n <= 0) {
			if (n == -1 && errno != EAGAIN && errno != EINTR)
				fprintf(stderr, "delaylink: %s: read: %s\n", d->name,
				    strerror(errno));
			return;
		}
		if (d->queued >= DL_QUEUE_MAX || (p = malloc(sizeof(*p) + (size_t)n)) == NULL) {
			d->dropped++;
			continue;
		}
		p->next = NULL;
		p->due_ns = now + delay_ns;
		p->len = (size_t)n;
		memcpy(p->data, buf, (size_t)n);
		if (d->tail)
			d->tail->next = p;
		else
			d->head = p;
		d->tail = p;
		if (++d->queued > d->queued_max)
			d->queued_max = d->queued;
	}
}

/* Write every due packet of d. Returns 1 when the output would block (poll for
 * POLLOUT), else 0. */
static int
dl_flush(struct dl_dir *d, uint64_t now)
{
	struct dl_pkt *p;
	ssize_t n;

	while ((p = d->head) != NULL && p->due_ns <= now) {
		n = write(d->to, p->data, p->len);
		if (n == -1 && (errno == EAGAIN || errno == ENOBUFS))
			return 1;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			/* e.g. EINVAL for a malformed packet: drop that one and go on. */
			d->write_err++;
			fprintf(stderr, "delaylink: %s: write: %s\n", d->name, strerror(errno));
		} else
			d->fwd++;
		d->head = p->next;
		if (d->head == NULL)
			d->tail = NULL;
		d->queued--;
		free(p);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	struct dl_dir dir[2];
	struct pollfd pfd[2];
	struct sigaction sa;
	struct timespec ts, *tsp;
	unsigned char *buf;
	char if1[IFNAMSIZ], if2[IFNAMSIZ], a1[64], a2[64], *slash;
	uint64_t delay_ns, deadline, now, next;
	long rtt_ms, life_s = DL_LIFETIME_DEF;
	int fd1, fd2, blocked[2] = { 0, 0 }, i;

	if (argc != 6 && argc != 7)
		dl_usage();
	rtt_ms = strtol(argv[5], &slash, 10);
	if (*argv[5] == '\0' || *slash != '\0' || rtt_ms < 0 || rtt_ms > 60000)
		dl_usage();
	if (argc == 7) {
		life_s = strtol(argv[6], &slash, 10);
		if (*argv[6] == '\0' || *slash != '\0' || life_s < 1)
			dl_usage();
	}
	if (strlen(argv[2]) >= sizeof(a1) || strlen(argv[4]) >= sizeof(a2) ||
	    strchr(argv[2], '/') == NULL || strchr(argv[4], '/') == NULL)
		dl_usage();
	/* The addresses go into shell commands: allow only address characters. */
	for (i = 1; i <= 4; i++)
		if (strspn(argv[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789.:/-_") != strlen(argv[i])) {
			fprintf(stderr, "delaylink: bad characters in '%s'\n", argv[i]);
			return 2;
		}
	snprintf(a1, sizeof(a1), "%s", argv[2]);
	snprintf(a2, sizeof(a2), "%s", argv[4]);
	*strchr(a1, '/') = '\0';
	*strchr(a2, '/') = '\0';
	delay_ns = (uint64_t)rtt_ms * 1000000u / 2;

	if ((fd1 = dl_open_tun(argv[1], if1)) == -1 ||
	    (fd2 = dl_open_tun(argv[3], if2)) == -1)
		return 1;
	if (dl_sh("ip netns exec %s ip addr add %s dev %s", argv[1], argv[2], if1) ||
	    dl_sh("ip netns exec %s ip link set %s up", argv[1], if1) ||
	    dl_sh("ip netns exec %s ip route replace %s dev %s", argv[1], a2, if1) ||
	    dl_sh("ip netns exec %s ip addr add %s dev %s", argv[3], argv[4], if2) ||
	    dl_sh("ip netns exec %s ip link set %s up", argv[3], if2) ||
	    dl_sh("ip netns exec %s ip route replace %s dev %s", argv[3], a1, if2))
		return 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = dl_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);		/* no SA_RESTART: ppoll returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((buf = malloc(DL_PKT_MAX)) == NULL) {
		fprintf(stderr, "delaylink: out of memory\n");
		return 1;
	}
	memset(dir, 0, sizeof(dir));
	dir[0].name = "1->2";
	dir[0].from = fd1;
	dir[0].to = fd2;
	dir[1].name = "2->1";
	dir[1].from = fd2;
	dir[1].to = fd1;

	printf("ready %s %s rtt_ms=%ld lifetime_s=%ld\n", if1, if2, rtt_ms, life_s);
	fflush(stdout);

	deadline = dl_now_ns() + (uint64_t)life_s * 1000000000u;
	while (!dl_stop) {
		now = dl_now_ns();
		if (now >= deadline) {
			fprintf(stderr, "delaylink: maximum lifetime %ld s reached, exiting\n",
			    life_s);
			break;
		}
		next = deadline;
		for (i = 0; i < 2; i++) {
			blocked[i] = dl_flush(&dir[i], now);
			if (!blocked[i] && dir[i].head && dir[i].head->due_ns < next)
				next = dir[i].head->due_ns;
		}
		/* pfd[i] reads dir[i].from and, when dir[1-i] is blocked, waits to write
		 * dir[1-i].to (the same fd). */
		for (i = 0; i < 2; i++) {
			pfd[i].fd = dir[i].from;
			pfd[i].events = POLLIN | (blocked[1 - i] ? POLLOUT : 0);
			pfd[i].revents = 0;
		}
		if (next < now)
			next = now;
		ts.tv_sec = (time_t)((next - now) / 1000000000u);
		ts.tv_nsec = (long)((next - now) % 1000000000u);
		tsp = &ts;
		if (ppoll(pfd, 2, tsp, NULL) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "delaylink: ppoll: %s\n", strerror(errno));
			break;
		}
		now = dl_now_ns();
		for (i = 0; i < 2; i++)
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				fprintf(stderr, "delaylink: TUN device %s gone, exiting\n",
				    i == 0 ? if1 : if2);
				dl_stop = 1;
			}
		for (i = 0; i < 2; i++)
			if (pfd[i].revents & POLLIN)
				dl_read(&dir[i], now, delay_ns, buf);
	}

	for (i = 0; i < 2; i++) {
		struct dl_pkt *p;

		fprintf(stderr, "delaylink: %s forwarded=%llu dropped=%llu write_errors=%llu "
		    "max_queued=%zu left=%zu\n", dir[i].name,
		    (unsigned long long)dir[i].fwd, (unsigned long long)dir[i].dropped,
		    (unsigned long long)dir[i].write_err, dir[i].queued_max, dir[i].queued);
		while ((p = dir[i].head) != NULL) {
			dir[i].head = p->next;
			free(p);
		}
	}
	free(buf);
	close(fd1);
	close(fd2);
	return 0;
}
