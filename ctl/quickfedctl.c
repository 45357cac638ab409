/* ctl/quickfedctl.c - send one command to quickfed's status socket and print the answer.
 * SPDX-License-Identifier: ISC
 * Used by operators and the integration tests ("quickfedctl show stats"). Standalone: it
 * speaks the status protocol of core/status.c (one line in, the answer out, server closes)
 * and does not link libquickfed. -j converts the answer to JSON (ctl/kvjson.c). Exit: 0
 * answer, 1 "error:" answer, 2 no answer, 64 usage. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kvjson.h"

/* Without -s: the installed layout's socket (the systemd unit's RuntimeDirectory), else
 * the daemon's built-in default (STATE_DIR/quickfed.sock with the default state_dir). */
#define CTL_DEFAULT_SOCKET  "/run/quickfed/quickfed.sock"
#define CTL_FALLBACK_SOCKET "/var/lib/quickfed/quickfed.sock"
#define CTL_LINE_MAX        1024   /* the server's limit, without the newline */
#define CTL_TIMEOUT_MS      10000
#define CTL_JSON_LINE_MAX   (1024 * 1024)  /* -j: a longer answer line is an error */

#define EXIT_ANSWER_ERROR   1
#define EXIT_NO_ANSWER      2
#define EXIT_USAGE          64

static void usage(FILE *, int) __attribute__((noreturn));
static long elapsed_ms(const struct timespec *);
static int json_feed(struct kvjson *, char **, size_t *, size_t *, const char *, size_t);

static void
usage(FILE *f, int code)
{
	fprintf(f, "usage: quickfedctl [-h] [-j] [-s SOCKET] COMMAND [ARG ...]\n"
	    "  sends COMMAND to quickfed's status socket (default %s,\n"
	    "  or %s if that does not exist)\n"
	    "  and prints the answer (-j: as one JSON object); try \"quickfedctl help\".\n",
	    CTL_DEFAULT_SOCKET,
	    CTL_FALLBACK_SOCKET);
	exit(code);
}

/* -j: split what arrived (data, n bytes) into lines for the converter; *line holds a
 * partial line between calls. n == 0 flushes the last line. Returns 0 or -1. */
static int
json_feed(struct kvjson *j, char **line, size_t *len, size_t *cap, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			kvjson_line(j, *line != NULL ? *line : "", *len);
			*len = 0;
			continue;
		}
		if (*len == *cap) {
			char *p;

			if (*cap >= CTL_JSON_LINE_MAX || (p = realloc(*line, *cap * 2 + 256)) == NULL)
				return -1;
			*line = p;
			*cap = *cap * 2 + 256;
		}
		(*line)[(*len)++] = data[i];
	}
	if (n == 0 && *len > 0) {
		kvjson_line(j, *line, *len);
		*len = 0;
	}
	return 0;
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int
main(int argc, char *argv[])
{
	const char *sock = NULL;
	char line[CTL_LINE_MAX + 2], buf[8192], head[6];
	struct sockaddr_un sun;
	struct timeval tv = { CTL_TIMEOUT_MS / 1000, 0 };
	struct timespec t0;
	struct pollfd pfd;
	size_t len = 0, nhead = 0, off;
	ssize_t r;
	int ch, fd, rc;
	long left;
	bool json = false;
	struct kvjson kj;
	char *jline = NULL;
	size_t jlen = 0, jcap = 0;

	while ((ch = getopt(argc, argv, "+hjs:")) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout, 0);
		case 'j':
			json = true;
			break;
		case 's':
			sock = optarg;
			break;
		default:
			usage(stderr, EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage(stderr, EXIT_USAGE);
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (len + (i > 0) + n > CTL_LINE_MAX || strchr(argv[i], '\n') != NULL) {
			fprintf(stderr, "quickfedctl: command too long or contains a newline\n");
			return EXIT_USAGE;
		}
		if (i > 0)
			line[len++] = ' ';
		memcpy(line + len, argv[i], n);
		len += n;
	}
	line[len++] = '\n';
	if (sock == NULL)
		sock = access(CTL_DEFAULT_SOCKET, F_OK) == 0 ? CTL_DEFAULT_SOCKET :
		    CTL_FALLBACK_SOCKET;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "quickfedctl: socket path too long: %s\n", sock);
		return EXIT_USAGE;
	}
	strcpy(sun.sun_path, sock);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "quickfedctl: socket: %s\n", strerror(errno));
		return EXIT_NO_ANSWER;
	}
	/* A blocking unix connect waits for backlog room at most SO_SNDTIMEO. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "quickfedctl: cannot connect to %s: %s\n", sock, strerror(errno));
		close(fd);
		return EXIT_NO_ANSWER;
	}
	for (off = 0; off < len;) {
		r = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "quickfedctl: send to %s: %s\n", sock, strerror(errno));
			close(fd);
			return EXIT_NO_ANSWER;
		}
		off += (size_t)r;
	}

	pfd.fd = fd;
	pfd.events = POLLIN;
	if (json)   /* show metrics answers an exposition, not name=value lines */
		kvjson_begin(&kj, stdout, argc == 2 && strcmp(argv[0], "show") == 0 &&
		    strcmp(argv[1], "metrics") == 0);
	for (;;) {
		left = CTL_TIMEOUT_MS - elapsed_ms(&t0);
		if (left <= 0) {
			fprintf(stderr, "quickfedctl: no complete answer from %s within %d s\n",
			    sock, CTL_TIMEOUT_MS / 1000);
			close(fd);
			return EXIT_NO_ANSWER;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "quickfedctl: poll: %s\n", strerror(errno));
			close(fd);
			return EXIT_NO_ANSWER;
		}
		if (r <= 0)
			continue;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != ECONNRESET) {
			fprintf(stderr, "quickfedctl: read from %s: %s\n", sock, strerror(errno));
			close(fd);
			return EXIT_NO_ANSWER;
		}
		if (r <= 0)
			break;  /* the server closed: the answer is complete */
		for (ssize_t i = 0; i < r && nhead < sizeof(head); i++)
			head[nhead++] = buf[i];
		if (json) {
			if (json_feed(&kj, &jline, &jlen, &jcap, buf, (size_t)r) == -1) {
				fprintf(stderr, "quickfedctl: -j: out of memory or an answer line "
				    "over %d bytes\n", CTL_JSON_LINE_MAX);
				close(fd);
				return EXIT_NO_ANSWER;
			}
		} else if (fwrite(buf, 1, (size_t)r, stdout) != (size_t)r) {
			fprintf(stderr, "quickfedctl: write to stdout failed\n");
			close(fd);
			return EXIT_NO_ANSWER;
		}
	}
	close(fd);
	if (json) {
		json_feed(&kj, &jline, &jlen, &jcap, NULL, 0);
		free(jline);
		if ((rc = kvjson_end(&kj)) == -1) {
			fprintf(stderr, "quickfedctl: -j: out of memory\n");
			return EXIT_NO_ANSWER;
		}
		if (rc == 1 && fflush(stdout) != EOF)
			return EXIT_ANSWER_ERROR;
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "quickfedctl: write to stdout failed\n");
		return EXIT_NO_ANSWER;
	}
	if (nhead == 0) {
		fprintf(stderr, "quickfedctl: empty answer from %s\n", sock);
		return EXIT_NO_ANSWER;
	}
	if (nhead == sizeof(head) && memcmp(head, "error:", sizeof(head)) == 0)
		return EXIT_ANSWER_ERROR;
	return 0;
}
