/* tests/unit/test_status.c - the status socket over a real unix socket and libev loop.
 * SPDX-License-Identifier: ISC
 * Links core/status.c and core/stats.c (plus log, buf, libev). Clients are plain sockets in
 * this thread; the loop is run in short bounded steps while they wait. When the built
 * quickfedctl is found ($QF_BUILD/quickfedctl or $QF_CTL) it is run against the socket too. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>

#include "core/buf.h"
#include "core/stats.h"
#include "core/status.h"

static struct ev_loop *loop;
static ev_timer tick;          /* bounds every ev_run(EVRUN_ONCE) to 10 ms */
static char dir[64], path[128];
static struct status *st;
static struct rlimit saved_nofile;  /* restored in teardown even when test_emfile fails */

static void
tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the loop for about secs. */
static void
spin(double secs)
{
	double end = now() + secs;

	while (now() < end)
		ev_run(loop, EVRUN_ONCE);
}

static int
client_connect(void)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
client_send(int fd, const char *s, size_t n)
{
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read until the server closes, running the loop meanwhile. Returns the answer (caller
 * frees), or NULL when nothing closed within secs. *waited gets the time spent. */
static char *
client_read_all(int fd, double secs, double *waited)
{
	double start = now();
	char *ans = NULL;
	size_t len = 0, cap = 0;
	char tmp[65536];
	ssize_t r;

	for (;;) {
		r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
		if (r > 0) {
			if (len + (size_t)r + 1 > cap) {   /* geometric: answers reach MiBs */
				cap = (len + (size_t)r + 1) * 2;
				ans = realloc(ans, cap);
				assert_non_null(ans);
			}
			memcpy(ans + len, tmp, (size_t)r);
			len += (size_t)r;
			ans[len] = '\0';
			continue;
		}
		/* Closing with our unread input queued makes the kernel report a reset. */
		if (r == 0 || errno == ECONNRESET) {
			if (ans == NULL)
				ans = strdup("");
			break;
		}
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		if (now() - start > secs) {
			free(ans);
			ans = NULL;
			break;
		}
		ev_run(loop, EVRUN_ONCE);
	}
	if (waited != NULL)
		*waited = now() - start;
	return ans;
}

static char *
query(const char *line)
{
	int fd = client_connect();
	char *ans;

	client_send(fd, line, strlen(line));
	ans = client_read_all(fd, 3.0, NULL);
	close(fd);
	assert_non_null(ans);
	return ans;
}

static int
cmd_peers(void *arg, const char *args, struct buf *out)
{
	(*(int *)arg)++;
	buf_printf(out, "peers args='%s'\n", args);
	return 0;
}

static int
cmd_peers_detail(void *arg, const char *args, struct buf *out)
{
	buf_printf(out, "detail args='%s'", args);  /* no newline: the server adds it */
	return 0;
}

static int
cmd_fail(void *arg, const char *args, struct buf *out)
{
	buf_puts(out, "it broke\n");
	return -1;
}

static int
cmd_big(void *arg, const char *args, struct buf *out)
{
	/* 2 MiB into a 1 MiB answer: the cap holds and the answer says it was cut. */
	for (int i = 0; i < 2 * 1024; i++)
		if (buf_printf(out, "%01023d\n", i) == -1)
			break;
	return 0;
}

static int
cmd_stats(void *arg, const char *args, struct buf *out)
{
	stats_format(out);
	return 0;
}

/* A streamed answer of HUGE_LINES lines of 100 bytes (about 6 MiB): line i is
 * "huge.NNNNNNN=" padded with x to 99 bytes and a newline. *cursor is the next line. */
#define HUGE_LINES 60000
static unsigned huge_calls;
static uint64_t huge_done;   /* lines produced so far */

static void
huge_line(char *l, unsigned i)
{
	int n = snprintf(l, 101, "huge.%07u=", i);

	memset(l + n, 'x', (size_t)(99 - n));
	l[99] = '\n';
	l[100] = '\0';
}

static int
cmd_huge(void *arg, const char *args, struct buf *out, uint64_t *cursor)
{
	char l[101];

	huge_calls++;
	if (strcmp(args, "fail-first") == 0) {
		buf_puts(out, "nope");
		return -1;
	}
	while (*cursor < HUGE_LINES && buf_room(out) >= STATUS_RECORD_MAX) {
		huge_line(l, (unsigned)*cursor);
		assert_int_equal(buf_append(out, l, 100), 0);
		(*cursor)++;
		if (strcmp(args, "fail-later") == 0 && *cursor == 5000)
			return -1;
	}
	huge_done = *cursor;
	return *cursor < HUGE_LINES ? 1 : 0;
}

/* The whole huge answer, exactly. */
static void
check_huge(const char *ans)
{
	char l[101];

	if (strlen(ans) != (size_t)HUGE_LINES * 100)
		fail_msg("answer has %zu bytes, want %u", strlen(ans), HUGE_LINES * 100);
	for (unsigned i = 0; i < HUGE_LINES; i++) {
		huge_line(l, i);
		if (memcmp(ans + (size_t)i * 100, l, 100) != 0)
			fail_msg("line %u differs: %.100s", i, ans + (size_t)i * 100);
	}
}

static int peers_calls;

static int
setup(void **state)
{
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(loop);
	ev_timer_init(&tick, tick_cb, 0.01, 0.01);
	ev_timer_start(loop, &tick);
	snprintf(dir, sizeof(dir), "/tmp/qf-status-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/quickfed.sock", dir);
	st = status_new(loop, path);
	assert_non_null(st);
	peers_calls = 0;
	assert_int_equal(status_register(st, "show peers", "show peers [DOMAIN]: list peers", cmd_peers,
	    &peers_calls), 0);
	assert_int_equal(status_register(st, "show  peers detail ",
	    "show peers detail DOMAIN: one peer in detail: address, state",
	    cmd_peers_detail, NULL), 0);
	assert_int_equal(status_register(st, "fail", "always fails", cmd_fail, NULL), 0);
	assert_int_equal(status_register(st, "big", "a huge answer", cmd_big, NULL), 0);
	assert_int_equal(status_register(st, "show stats", "daemon counters", cmd_stats, NULL), 0);
	assert_int_equal(status_register_stream(st, "huge", "a streamed answer of ~6 MiB",
	    cmd_huge, NULL), 0);
	assert_int_equal(status_register_stream(st, "huge", "again", cmd_huge, NULL), -1);
	assert_int_equal(status_register_stream(st, "nothing", "no handler", NULL, NULL), -1);
	huge_calls = 0;
	huge_done = 0;
	/* Duplicates and empty words are refused. */
	assert_int_equal(status_register(st, "show peers", "again", cmd_peers, NULL), -1);
	assert_int_equal(status_register(st, "  ", "blank", cmd_peers, NULL), -1);
	return 0;
}

static int
teardown(void **state)
{
	struct stat sb;

	setrlimit(RLIMIT_NOFILE, &saved_nofile);
	status_free(st);
	st = NULL;
	/* status_free unlinks the socket. */
	assert_int_equal(lstat(path, &sb), -1);
	assert_int_equal(errno, ENOENT);
	ev_timer_stop(loop, &tick);
	ev_loop_destroy(loop);
	assert_int_equal(rmdir(dir), 0);
	return 0;
}

static void
test_socket_mode(void **state)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
}

static void
test_help(void **state)
{
	/* Each command once: its synopsis (words and arguments, from a usage "WORDS ARGS:
	 * what it does"; registered words are normalised to single spaces), padded to the
	 * longest, then what it does; a usage without the words is all description. */
	static const char *const want[][2] = {
		{ "help", "list the commands" },
		{ "show peers [DOMAIN]", "list peers" },
		{ "show peers detail DOMAIN", "one peer in detail: address, state" },
		{ "fail", "always fails" },
		{ "big", "a huge answer" },
		{ "show stats", "daemon counters" },
		{ "huge", "a streamed answer of ~6 MiB" },
	};
	char *ans = query("help\n"), expect[1024];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%-24s  %s\n", want[i][0],
		    want[i][1]);
	assert_string_equal(ans, expect);
	free(ans);
}

static void
test_dispatch(void **state)
{
	static const struct {
		const char *line, *answer;
	} cases[] = {
		{ "show peers\n", "peers args=''\n" },
		{ "show peers\r\n", "peers args=''\n" },
		{ "  show   peers   example.org  \n", "peers args='example.org'\n" },
		/* The longest registered prefix wins. */
		{ "show peers detail a.example\n", "detail args='a.example'\n" },
		{ "show peers detailed\n", "peers args='detailed'\n" },
		/* Words match whole words only. */
		{ "show peersx\n", "error: unknown command 'show peersx' (try help)\n" },
		{ "show\n", "error: unknown command 'show' (try help)\n" },
		{ "frobnicate now\n", "error: unknown command 'frobnicate now' (try help)\n" },
		{ "\n", "error: empty command (try help)\n" },
		/* A handler's -1 becomes "error: <its text>". */
		{ "fail\n", "error: it broke\n" },
		/* No newline before EOF is handled by the EOF test below. */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *ans = query(cases[i].line);

		assert_string_equal(ans, cases[i].answer);
		free(ans);
	}
	assert_int_equal(peers_calls, 4);
}

static void
test_eof_without_newline(void **state)
{
	int fd = client_connect();
	char *ans;

	client_send(fd, "show peers x", 12);
	shutdown(fd, SHUT_WR);
	ans = client_read_all(fd, 3.0, NULL);
	assert_non_null(ans);
	assert_string_equal(ans, "peers args='x'\n");
	free(ans);
	close(fd);
}

static void
test_line_too_long(void **state)
{
	char line[2100], *ans;

	/* 1024 bytes is the longest line accepted. */
	memset(line, 'a', 1024);
	strcpy(line + 1024, "\n");
	ans = query(line);
	assert_true(strncmp(ans, "error: unknown command 'aaaa", 28) == 0);
	free(ans);
	memset(line, 'a', 1025);
	strcpy(line + 1025, "\n");
	ans = query(line);
	assert_string_equal(ans, "error: line too long\n");
	free(ans);
	memset(line, 'b', 2000);
	strcpy(line + 2000, "\n");
	ans = query(line);
	assert_string_equal(ans, "error: line too long\n");
	free(ans);
}

static void
test_answer_cap(void **state)
{
	char *ans = query("big\n");
	size_t len = strlen(ans);

	assert_true(len > 1000 * 1024);
	assert_true(len <= 1024 * 1024 + 64);
	assert_non_null(strstr(ans, "error: answer truncated\n"));
	free(ans);
}

/* An answer far larger than the 1 MiB cap of one-shot answers is streamed: produced as
 * the client reads it, read back completely. */
static void
test_stream_large(void **state)
{
	int fd = client_connect();
	char *ans;

	client_send(fd, "huge\n", 5);
	/* The client reads nothing yet: only the first parts are produced, not 6 MiB. */
	spin(0.3);
	assert_true(huge_done > 0);
	assert_true(huge_done < HUGE_LINES / 4);
	ans = client_read_all(fd, 30.0, NULL);
	close(fd);
	assert_non_null(ans);
	check_huge(ans);
	assert_true(huge_calls > 10);
	free(ans);
	/* a second client gets it all again */
	fd = client_connect();
	client_send(fd, "huge\n", 5);
	ans = client_read_all(fd, 30.0, NULL);
	close(fd);
	assert_non_null(ans);
	check_huge(ans);
	free(ans);
}

/* A slow reader keeps the stream going (the deadline counts from the last progress);
 * one that goes away mid-answer is closed without harm. */
static void
test_stream_slow_and_gone(void **state)
{
	int fd = client_connect();
	size_t got = 0;
	char tmp[65536];
	ssize_t r;
	double start = now();
	char *ans;

	client_send(fd, "huge\n", 5);
	/* about 1.2 MiB in 64 KiB reads, one every 0.1 s: over 2 s, under the deadline
	 * each time */
	while (got < 1200 * 1024 && now() - start < 10) {
		spin(0.1);
		r = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
	}
	assert_true(got >= 1200 * 1024);
	close(fd);
	spin(0.2);
	/* the server noticed and serves others */
	ans = query("show peers\n");
	assert_string_equal(ans, "peers args=''\n");
	free(ans);
}

static void
test_stream_errors(void **state)
{
	char *ans = query("huge fail-first\n");
	size_t len;

	assert_string_equal(ans, "error: nope\n");
	free(ans);
	ans = query("huge fail-later\n");
	len = strlen(ans);
	assert_true(len == 5000 * 100 + strlen("\nerror: answer incomplete\n"));
	assert_string_equal(ans + 5000 * 100, "\nerror: answer incomplete\n");
	free(ans);
}

static void
test_client_cap(void **state)
{
	int fds[16], extra, i;
	char *ans;
	double waited;

	for (i = 0; i < 16; i++) {
		fds[i] = client_connect();
		client_send(fds[i], "show pe", 7);  /* incomplete: the slot stays busy */
	}
	spin(0.1);
	/* The 17th connects (backlog) but is not served while 16 are busy. */
	extra = client_connect();
	client_send(extra, "help\n", 5);
	ans = client_read_all(extra, 0.3, &waited);
	assert_null(ans);
	/* One busy client finishes; its slot goes to the waiting one. */
	client_send(fds[0], "ers\n", 4);
	ans = client_read_all(fds[0], 3.0, NULL);
	assert_non_null(ans);
	assert_string_equal(ans, "peers args=''\n");
	free(ans);
	close(fds[0]);
	ans = client_read_all(extra, 3.0, NULL);
	assert_non_null(ans);
	assert_non_null(strstr(ans, "show peers"));
	free(ans);
	close(extra);
	for (i = 1; i < 16; i++)
		close(fds[i]);
	/* The server notices the closes and serves new clients again. */
	spin(0.05);
	ans = query("show peers\n");
	assert_string_equal(ans, "peers args=''\n");
	free(ans);
}

/* Out of fds: accept pauses (no busy loop) and resumes when a client closes, or on a
 * timer when there is no client to wait for. */
static void
test_emfile(void **state)
{
	struct rlimit old, lim;
	unsigned iter;
	int probe, a, b;
	char *ans;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	probe = dup(0);
	assert_true(probe >= 0);
	close(probe);
	/* Room for: client a (probe), its server side (probe+1), client b (probe+2). */
	lim = old;
	lim.rlim_cur = (rlim_t)probe + 3;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	a = client_connect();
	client_send(a, "show pe", 7);
	spin(0.05);
	b = client_connect();
	client_send(b, "help\n", 5);
	iter = ev_iteration(loop);
	ans = client_read_all(b, 0.3, NULL);
	assert_null(ans);
	/* ~30 ticks of 10 ms; a spinning accept watcher would make thousands. */
	assert_true(ev_iteration(loop) - iter < 100);
	client_send(a, "ers\n", 4);
	ans = client_read_all(a, 3.0, NULL);
	assert_non_null(ans);
	assert_string_equal(ans, "peers args=''\n");
	free(ans);
	close(a);
	ans = client_read_all(b, 3.0, NULL);
	assert_non_null(ans);
	assert_non_null(strstr(ans, "show peers"));
	free(ans);
	close(b);

	/* No client at all: the retry timer (1 s) restarts accepting. */
	lim.rlim_cur = (rlim_t)probe + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	a = client_connect();
	client_send(a, "help\n", 5);
	iter = ev_iteration(loop);
	ans = client_read_all(a, 0.3, NULL);
	assert_null(ans);
	assert_true(ev_iteration(loop) - iter < 100);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	ans = client_read_all(a, 3.0, NULL);
	assert_non_null(ans);
	assert_non_null(strstr(ans, "show peers"));
	free(ans);
	close(a);
}

static void
test_client_timeout(void **state)
{
	int fd = client_connect();
	double waited;
	char *ans;

	client_send(fd, "show pe", 7);
	ans = client_read_all(fd, 8.0, &waited);
	assert_non_null(ans);         /* closed by the server ... */
	assert_string_equal(ans, ""); /* ... without an answer */
	assert_true(waited > 4.0);
	free(ans);
	close(fd);
}

static void
test_path_checks(void **state)
{
	struct sockaddr_un sun;
	char other[160];
	struct status *st2;
	struct stat sb;
	int fd;
	char *ans;

	/* A live socket at the path (ours) is not taken over. */
	assert_null(status_new(loop, path));
	ans = query("show peers\n");
	assert_string_equal(ans, "peers args=''\n");
	free(ans);

	/* A regular file is never removed. */
	snprintf(other, sizeof(other), "%s/file", dir);
	fd = open(other, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_null(status_new(loop, other));
	assert_int_equal(lstat(other, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(unlink(other), 0);

	/* A stale socket (nobody listening) is replaced. */
	snprintf(other, sizeof(other), "%s/stale.sock", dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, other);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	st2 = status_new(loop, other);
	assert_non_null(st2);
	assert_int_equal(lstat(other, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	status_free(st2);
	assert_int_equal(lstat(other, &sb), -1);

	/* Missing parent directory. */
	snprintf(other, sizeof(other), "%s/nodir/x.sock", dir);
	assert_null(status_new(loop, other));
}

static void
test_stats(void **state)
{
	char *ans;

	memset(&qf_stats, 0, sizeof(qf_stats));
	qf_stats.conns_in = 3;
	qf_stats.conns_out = 5;
	qf_stats.conns_open = 2;
	qf_stats.conns_refused_per_address = 13;
	qf_stats.conns_shed = 17;
	qf_stats.stanzas_in = 7;
	qf_stats.stanzas_out = 11;
	qf_stats.auth_dialback = 1;
	qf_stats.tls_handshakes = 4;
	qf_stats.pairs_piggybacked = 19;
	qf_stats.pairs_riding = 23;
	qf_stats.auth_dialback_cert = 29;
	qf_stats.bidi_streams = 31;
	qf_stats.sm_enabled = 32;
	qf_stats.sm_acked = 33;
	qf_stats.sm_requeued = 34;
	qf_stats.sm_lost = 35;
	qf_stats.links_dead = 36;
	qf_stats.route_retries = 37;
	stats_stream_error("host-unknown", 1);
	stats_stream_error("host-unknown", 1);
	stats_stream_error("not-well-formed", 0);
	stats_stream_error("x-made-up", 0);
	stats_stream_error(NULL, 1);
	ans = query("show stats\n");
	assert_string_equal(ans,
	    "conns.in=3\n"
	    "conns.out=5\n"
	    "conns.open=2\n"
	    "conns.refused_per_address=13\n"
	    "conns.shed=17\n"
	    "conns.paused=0\n"
	    "stanzas.in=7\n"
	    "stanzas.out=11\n"
	    "bounces=0\n"
	    "dropped_errors=0\n"
	    "auth.external=0\n"
	    "auth.dialback=1\n"
	    "auth.failures=0\n"
	    "dialback.verify_answered=0\n"
	    "tls.handshakes=4\n"
	    "rtt.used=0\n"
	    "rtt.saved=0\n"
	    "tcp_fastopen.used=0\n"
	    "held.released=0\n"
	    "held.discarded=0\n"
	    "reads.paused=0\n"
	    "reads.paused_memory=0\n"
	    "held.paused=0\n"
	    "verify.refused=0\n"
	    "pairs.refused=0\n"
	    "pairs.piggybacked=19\n"
	    "pairs.riding=23\n"
	    "auth.dialback_cert=29\n"
	    "bidi.streams=31\n"
	    "sm.enabled=32\n"
	    "sm.acked=33\n"
	    "sm.requeued=34\n"
	    "sm.lost=35\n"
	    "sm.acks_deferred=0\n"
	    "tcp.proven=0\n"
	    "stanzas.unproven_bounced=0\n"
	    "links.dead=36\n"
	    "routes.retries=37\n"
	    "conns.quieted=0\n"
	    "heap.trims=0\n"
	    "heap.trim_due=0\n"
	    "loop.turns=0\n"
	    "loop.busy_us=0\n"
	    "loop.turns_over_1ms=0\n"
	    "loop.turns_over_10ms=0\n"
	    "loop.max_us=0\n"
	    "xml.dict_renewals=0\n"
	    "stream_errors.sent.host-unknown=2\n"
	    "stream_errors.sent.other=1\n"
	    "stream_errors.sent.total=3\n"
	    "stream_errors.received.not-well-formed=1\n"
	    "stream_errors.received.other=1\n"
	    "stream_errors.received.total=2\n");
	free(ans);
}

/* quickfedctl, when built: run it and serve it from this loop. */
static const char *
ctl_path(void)
{
	static char p[512];
	const char *e;

	if ((e = getenv("QF_CTL")) != NULL && access(e, X_OK) == 0)
		return e;
	if ((e = getenv("QF_BUILD")) != NULL) {
		snprintf(p, sizeof(p), "%s/quickfedctl", e);
		if (access(p, X_OK) == 0)
			return p;
	}
	return NULL;
}

static int
run_ctl(char *const argv[], char **out)
{
	int pfd[2], status = -1;
	size_t len = 0, cap = 1;
	double start = now();
	char tmp[65536];
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	*out = calloc(1, 1);
	for (;;) {
		while ((r = read(pfd[0], tmp, sizeof(tmp))) > 0) {
			if (len + (size_t)r + 1 > cap) {
				cap = (len + (size_t)r + 1) * 2;
				*out = realloc(*out, cap);
				assert_non_null(*out);
			}
			memcpy(*out + len, tmp, (size_t)r);
			len += (size_t)r;
			(*out)[len] = '\0';
		}
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (now() - start > 15) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("quickfedctl did not finish");
		}
		ev_run(loop, EVRUN_ONCE);
	}
	while ((r = read(pfd[0], tmp, sizeof(tmp))) > 0) {
		if (len + (size_t)r + 1 > cap) {
			cap = (len + (size_t)r + 1) * 2;
			*out = realloc(*out, cap);
			assert_non_null(*out);
		}
		memcpy(*out + len, tmp, (size_t)r);
		len += (size_t)r;
		(*out)[len] = '\0';
	}
	close(pfd[0]);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_quickfedctl(void **state)
{
	const char *ctl = ctl_path();
	char nosock[160], *out;

	if (ctl == NULL) {
		print_message("quickfedctl not built (set QF_BUILD or QF_CTL); skipped\n");
		skip();
	}
	{
		char *const argv[] = { (char *)ctl, "-s", path, "show", "peers", "a.example", NULL };
		assert_int_equal(run_ctl(argv, &out), 0);
		assert_string_equal(out, "peers args='a.example'\n");
		free(out);
	}
	{
		char *const argv[] = { (char *)ctl, "-s", path, "help", NULL };
		assert_int_equal(run_ctl(argv, &out), 0);
		assert_non_null(strstr(out, "show peers detail"));
		free(out);
	}
	{
		/* a streamed answer of ~6 MiB, complete */
		char *const argv[] = { (char *)ctl, "-s", path, "huge", NULL };
		assert_int_equal(run_ctl(argv, &out), 0);
		check_huge(out);
		free(out);
	}
	{
		char *const argv[] = { (char *)ctl, "-s", path, "fail", NULL };
		assert_int_equal(run_ctl(argv, &out), 1);
		assert_string_equal(out, "error: it broke\n");
		free(out);
	}
	{
		char *const argv[] = { (char *)ctl, "-s", path, "nope", NULL };
		assert_int_equal(run_ctl(argv, &out), 1);
		free(out);
	}
	snprintf(nosock, sizeof(nosock), "%s/absent.sock", dir);
	{
		char *const argv[] = { (char *)ctl, "-s", nosock, "help", NULL };
		assert_int_equal(run_ctl(argv, &out), 2);
		assert_string_equal(out, "");
		free(out);
	}
	{
		char *const argv[] = { (char *)ctl, "-s", path, NULL };
		assert_int_equal(run_ctl(argv, &out), 64);
		free(out);
	}
	{
		char *const argv[] = { (char *)ctl, "-x", NULL };
		assert_int_equal(run_ctl(argv, &out), 64);
		free(out);
	}
	{
		char *const argv[] = { (char *)ctl, "-h", NULL };
		assert_int_equal(run_ctl(argv, &out), 0);
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_without_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_slow_and_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quickfedctl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_timeout, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
