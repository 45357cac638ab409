/* core/metrics_http.c - the metrics listener: a minimal HTTP/1.x server for GET /metrics.
 * SPDX-License-Identifier: ISC
 * main.c opens one per `listener metrics` of the config (loopback addresses only) on the
 * daemon's libev loop. A client sends one request; the answer is the exposition of
 * core/metrics.c (200), or 400 (malformed), 404 (another path), 405 (another method),
 * 431 (request line and headers over METRICS_HTTP_HEADER_MAX), 505 (not HTTP/1.x), and
 * the server closes after it (Connection: close; it reads and discards what the client
 * still sends for up to a second first, so the answer is not lost to a reset). Bounds:
 * the listener's `connections` clients at once (then it stops accepting: more wait in
 * the kernel's backlog of METRICS_HTTP_BACKLOG until a client finishes or times out),
 * METRICS_HTTP_TIMEOUT seconds to send the whole request (a slow or silent client is
 * closed), one answer of at most METRICS_HTTP_BODY_MAX bytes. Refusals and I/O errors
 * are logged at most once per METRICS_HTTP_LOG_INTERVAL per listener, with a count. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/metrics_http.h"

#define MHTTP_MAGIC          0x4d485450u  /* "MHTP" */
#define MHTTP_CLIENT_MAGIC   0x4d484343u  /* "MHCC" */
#define METRICS_HTTP_BODY_MAX  (1024 * 1024)
#define METRICS_HTTP_LINGER    1.0          /* seconds of reading after the answer */
#define METRICS_HTTP_DISCARD   (64 * 1024)  /* bytes read and dropped after the answer */
#define METRICS_HTTP_LOG_INTERVAL 10.0      /* seconds between two refusal lines */
#define METRICS_HTTP_RETRY     1.0          /* seconds before accepting again after EMFILE */

enum mhttp_state {
	MH_READING = 0,   /* the request is arriving */
	MH_WRITING,       /* the answer is being written */
	MH_LINGER,        /* answered, our side shut: reading until the client closes */
};

struct mhttp_listener {
	uint32_t               magic;
	struct mhttp_listener *next;
	int                    fd;
	ev_io                  io;
	ev_timer               retry;     /* accept again after EMFILE */
	char                   name[80];  /* "127.0.0.1 port 5280", for logs */
	unsigned               max;       /* clients at once (listener connections N) */
	unsigned               nclients;
	bool                   paused;    /* accept stopped: at max, or out of descriptors */
	struct mhttp_client   *clients;
	unsigned               next_id;
	double                 log_at;    /* last refusal line, -1 none */
	unsigned long          log_suppressed;
};

struct mhttp_client {
	uint32_t               magic;
	struct mhttp_listener *owner;
	struct mhttp_client   *next, *prev;
	int                    fd;
	unsigned               id;
	enum mhttp_state       state;
	ev_io                  rio, wio;
	ev_timer               timer;
	char                   in[METRICS_HTTP_HEADER_MAX];
	size_t                 inlen;
	size_t                 discarded; /* MH_LINGER */
	struct buf             out;       /* the answer */
	size_t                 sent;
};

static struct ev_loop *loop;
static struct mhttp_listener *listeners;

static bool is_tchar(unsigned char);
static const char *find_eol(const char *, const char *);
static int parse_request_line(const char *, const char *, struct metrics_http_req *,
    bool *, bool *);
static bool has_token_ci(const char *, size_t, const char *);
static const char *reason_phrase(int);
static void refusal(struct mhttp_listener *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static int listener_open(const struct cfg_listener *);
static void accept_cb(struct ev_loop *, ev_io *, int);
static void retry_cb(struct ev_loop *, ev_timer *, int);
static void pause_accept(struct mhttp_listener *, bool);
static void client_close(struct mhttp_client *, const char *);
static void client_read_cb(struct ev_loop *, ev_io *, int);
static void client_write_cb(struct ev_loop *, ev_io *, int);
static void client_timeout_cb(struct ev_loop *, ev_timer *, int);
static void client_answer(struct mhttp_client *, const struct metrics_http_req *);
static void client_flush(struct mhttp_client *);
static void client_linger(struct mhttp_client *);
static void client_restart_timer(struct mhttp_client *, double);

/* ---- the request parser ---- */

/* RFC 9110 token characters. */
static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The '\n' ending the line at p, or NULL when it has not arrived before end. */
static const char *
find_eol(const char *p, const char *end)
{
	return memchr(p, '\n', (size_t)(end - p));
}

/* Does the comma-separated header value v (n bytes) name media type t (any case, any
 * parameters after it)? */
static bool
has_token_ci(const char *v, size_t n, const char *t)
{
	size_t tl = strlen(t);

	for (size_t i = 0; i + tl <= n; i++)
		if (strncasecmp(v + i, t, tl) == 0 && (i == 0 || v[i - 1] == ',' ||
		    v[i - 1] == ' ' || v[i - 1] == '\t'))
			return true;
	return false;
}

/* "METHOD SP /target SP HTTP/1.x" from p to eol (the '\r' before it removed). Returns
 * 0 (req->status 200, 404 or 405 so far), or the refusal (400, 505). *v11: HTTP/1.1. */
static int
parse_request_line(const char *p, const char *eol, struct metrics_http_req *req,
    bool *v11, bool *get)
{
	const char *m = p, *sp1, *t, *sp2, *v;
	size_t tl;

	for (sp1 = m; sp1 < eol && is_tchar((unsigned char)*sp1); sp1++)
		;
	if (sp1 == m || sp1 == eol || *sp1 != ' ')
		return 400;
	t = sp1 + 1;
	for (sp2 = t; sp2 < eol && (unsigned char)*sp2 > 0x20 && (unsigned char)*sp2 < 0x7f;
	    sp2++)
		;
	if (sp2 == t || sp2 == eol || *sp2 != ' ' || *t != '/')
		return 400;   /* origin-form only: no "*", no absolute URI */
	v = sp2 + 1;
	if (eol - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' ||
	    v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1')
		return 505;
	*v11 = v[7] != '0';
	*get = (sp1 - m == 3 && memcmp(m, "GET", 3) == 0);
	req->head = (sp1 - m == 4 && memcmp(m, "HEAD", 4) == 0);
	tl = (size_t)(sp2 - t);
	if (!*get && !req->head)
		req->status = 405;
	else if ((tl == 8 || (tl > 8 && t[8] == '?')) && memcmp(t, "/metrics", 8) == 0)
		req->status = 200;
	else
		req->status = 404;
	return 0;
}

int
metrics_http_parse(const char *p, size_t len, struct metrics_http_req *req)
{
	const char *end = p + len, *line, *eol, *le;
	bool v11 = false, get = false;
	unsigned hosts = 0;
	int rc;

	memset(req, 0, sizeof(*req));
	req->fmt = METRICS_PROMETHEUS;
	req->status = 400;
	req->length = len;
	if (memchr(p, '\0', len) != NULL)
		return 1;
	/* garbage is refused as soon as it shows: the method is a token */
	for (size_t i = 0; i < len && p[i] != ' '; i++)
		if (!is_tchar((unsigned char)p[i]))
			return 1;
	if ((eol = find_eol(p, end)) == NULL)
		goto incomplete;
	le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
	if ((rc = parse_request_line(p, le, req, &v11, &get)) != 0) {
		req->status = rc;
		return 1;
	}
	for (line = eol + 1;; line = eol + 1) {
		const char *colon, *v;

		if ((eol = find_eol(line, end)) == NULL)
			goto incomplete;
		le = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
		if (le == line)
			break;   /* the empty line: the request is complete */
		if (*line == ' ' || *line == '\t')
			goto bad;   /* obsolete line folding */
		if ((colon = memchr(line, ':', (size_t)(le - line))) == NULL || colon == line)
			goto bad;
		for (const char *c = line; c < colon; c++)
			if (!is_tchar((unsigned char)*c))
				goto bad;   /* also a blank before the colon */
		for (v = colon + 1; v < le && (*v == ' ' || *v == '\t'); v++)
			;
		for (const char *c = v; c < le; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
				goto bad;   /* a bare CR or another control character */
		if (colon - line == 4 && strncasecmp(line, "host", 4) == 0)
			hosts++;
		else if (colon - line == 6 && strncasecmp(line, "accept", 6) == 0 &&
		    has_token_ci(v, (size_t)(le - v), "application/openmetrics-text"))
			req->fmt = METRICS_OPENMETRICS;
	}
	req->length = (size_t)(eol + 1 - p);
	if (req->length > METRICS_HTTP_HEADER_MAX) {
		req->status = 431;
		return 1;
	}
	if (hosts > 1 || (v11 && hosts == 0))
		goto bad;   /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
	return 1;
incomplete:
	if (len >= METRICS_HTTP_HEADER_MAX) {
		req->status = 431;
		return 1;
	}
	req->status = 0;
	return 0;
bad:
	req->status = 400;
	req->head = false;
	return 1;
}

/* ---- the server ---- */

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 505: return "HTTP Version Not Supported";
	default:  return "Internal Server Error";
	}
}

/* A refusal or I/O error, logged at most once per METRICS_HTTP_LOG_INTERVAL per
 * listener; the next line says how many were not. */
static void
refusal(struct mhttp_listener *l, const char *fmt, ...)
{
	double now = ev_now(loop);
	char msg[256];
	va_list ap;

	if (l->log_at >= 0 && now - l->log_at < METRICS_HTTP_LOG_INTERVAL && now >= l->log_at) {
		l->log_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->log_suppressed > 0)
		log_warnx("metrics listener %s: %s (and %lu line(s) like it not logged before)",
		    l->name, msg, l->log_suppressed);
	else
		log_warnx("metrics listener %s: %s", l->name, msg);
	l->log_at = now;
	l->log_suppressed = 0;
}

static int
listener_open(const struct cfg_listener *cl)
{
	struct addrinfo hints, *ai = NULL;
	struct mhttp_listener *l;
	char port[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)cl->port);
	if ((rc = getaddrinfo(cl->address, port, &hints, &ai)) != 0) {
		log_warnx("metrics listener %s port %s: %s", cl->address, port, gai_strerror(rc));
		return -1;
	}
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (ai->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, METRICS_HTTP_BACKLOG) == -1) {
		log_warn("metrics listener %s port %s (line %d): cannot listen", cl->address,
		    port, cl->line);
		if (fd != -1)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_warnx("metrics listener %s port %s: out of memory", cl->address, port);
		close(fd);
		return -1;
	}
	l->magic = MHTTP_MAGIC;
	l->fd = fd;
	l->max = cl->max_connections > 0 ? cl->max_connections : 1;
	l->log_at = -1;
	snprintf(l->name, sizeof(l->name), "%s port %s", cl->address, port);
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	l->io.data = l;
	ev_timer_init(&l->retry, retry_cb, METRICS_HTTP_RETRY, 0.);
	l->retry.data = l;
	ev_io_start(loop, &l->io);
	l->next = listeners;
	listeners = l;
	log_info("metrics listener %s: serving GET /metrics (clients=%u)", l->name, l->max);
	return 0;
}

int
metrics_http_open_all(struct ev_loop *lp, const struct config *cfg)
{
	loop = lp;
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (cfg->listeners[i].kind == CFG_LISTEN_METRICS &&
		    listener_open(&cfg->listeners[i]) == -1)
			return -1;
	return 0;
}

void
metrics_http_close_all(void)
{
	struct mhttp_listener *l;

	while ((l = listeners) != NULL) {
		listeners = l->next;
		while (l->clients != NULL)
			client_close(l->clients, "shutdown");
		ev_io_stop(loop, &l->io);
		ev_timer_stop(loop, &l->retry);
		close(l->fd);
		l->magic = 0;
		free(l);
	}
}

/* Stop accepting: at the client limit (a client's close resumes), or out of
 * descriptors (a timer resumes when no client will). */
static void
pause_accept(struct mhttp_listener *l, bool out_of_fds)
{
	ev_io_stop(loop, &l->io);
	l->paused = true;
	if (out_of_fds || l->nclients == 0)
		ev_timer_start(loop, &l->retry);
}

static void
retry_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
	struct mhttp_listener *l = w->data;

	if (l->magic != MHTTP_MAGIC)
		fatalx("metrics listener retry: bad magic");
	if (l->paused && l->nclients < l->max) {
		l->paused = false;
		ev_io_start(loop, &l->io);
	}
}

static void
accept_cb(struct ev_loop *lp, ev_io *w, int revents)
{
	struct mhttp_listener *l = w->data;
	struct mhttp_client *c;
	int fd;

	if (l->magic != MHTTP_MAGIC)
		fatalx("metrics listener accept: bad magic");
	for (;;) {
		if (l->nclients >= l->max) {
			log_debug("metrics listener %s: %u clients, not accepting until one "
			    "finishes", l->name, l->nclients);
			pause_accept(l, false);
			return;
		}
		if ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			refusal(l, "accept failed: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				pause_accept(l, true);
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			refusal(l, "out of memory for a client");
			close(fd);
			return;
		}
		c->magic = MHTTP_CLIENT_MAGIC;
		c->owner = l;
		c->fd = fd;
		c->id = ++l->next_id;
		buf_init(&c->out, METRICS_HTTP_BODY_MAX + 512);
		ev_io_init(&c->rio, client_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, client_write_cb, fd, EV_WRITE);
		ev_timer_init(&c->timer, client_timeout_cb, METRICS_HTTP_TIMEOUT, 0.);
		c->rio.data = c->wio.data = c->timer.data = c;
		c->next = l->clients;
		if (l->clients != NULL)
			l->clients->prev = c;
		l->clients = c;
		l->nclients++;
		ev_io_start(loop, &c->rio);
		ev_timer_start(loop, &c->timer);
	}
}

static void
client_close(struct mhttp_client *c, const char *reason)
{
	struct mhttp_listener *l = c->owner;

	log_trace("metrics client=%u closed reason=%s", c->id, reason);
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	buf_free(&c->out);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	l->nclients--;
	c->magic = 0;
	free(c);
	if (l->paused && l->nclients < l->max) {
		l->paused = false;
		ev_timer_stop(loop, &l->retry);
		ev_io_start(loop, &l->io);
	}
}

static void
client_restart_timer(struct mhttp_client *c, double secs)
{
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, secs, 0.);
	ev_timer_start(loop, &c->timer);
}

static void
client_timeout_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
	struct mhttp_client *c = w->data;

	if (c->magic != MHTTP_CLIENT_MAGIC)
		fatalx("metrics client timeout: bad magic");
	if (c->state == MH_READING)
		refusal(c->owner, "client=%u: no complete request within %.0f s (%zu bytes)",
		    c->id, METRICS_HTTP_TIMEOUT, c->inlen);
	else if (c->state == MH_WRITING)
		refusal(c->owner, "client=%u: answer not taken within %.0f s", c->id,
		    METRICS_HTTP_TIMEOUT);
	client_close(c, "timeout");
}

static void
client_read_cb(struct ev_loop *lp, ev_io *w, int revents)
{
	struct mhttp_client *c = w->data;
	struct metrics_http_req req;
	char sink[4096];
	ssize_t r;

	if (c->magic != MHTTP_CLIENT_MAGIC)
		fatalx("metrics client read: bad magic");
	if (c->state == MH_LINGER) {
		r = read(c->fd, sink, sizeof(sink));
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r > 0 && (c->discarded += (size_t)r) < METRICS_HTTP_DISCARD)
			return;
		client_close(c, "done");
		return;
	}
	r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		refusal(c->owner, "client=%u: read failed: %s", c->id, strerror(errno));
		client_close(c, "read-error");
		return;
	}
	if (r == 0 && c->inlen == 0) {
		client_close(c, "client-gone");
		return;
	}
	c->inlen += (size_t)r;
	if (metrics_http_parse(c->in, c->inlen, &req) == 0) {
		if (r > 0)
			return;   /* more to come */
		req.status = 400;   /* the client ended its side before the request's end */
		req.head = false;
	}
	client_answer(c, &req);
}

/* Build the answer, then write it. */
static void
client_answer(struct mhttp_client *c, const struct metrics_http_req *req)
{
	struct buf body;
	int status = req->status;

	buf_init(&body, METRICS_HTTP_BODY_MAX);
	if (status == 200 && metrics_render(&body, req->fmt) == -1) {
		log_warnx("metrics listener %s: client=%u: the exposition is over %d bytes",
		    c->owner->name, c->id, METRICS_HTTP_BODY_MAX);
		status = 500;
		buf_reset(&body);
	}
	if (status != 200)
		buf_printf(&body, "%d %s\n", status, reason_phrase(status));
	if (status == 400 || status == 431 || status == 505)
		refusal(c->owner, "client=%u: %d %s (%zu bytes read)", c->id, status,
		    reason_phrase(status), c->inlen);
	else
		log_debug("metrics client=%u status=%d bytes=%zu", c->id, status, body.len);
	buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "%sConnection: close\r\n\r\n", status, reason_phrase(status),
	    status == 200 ? metrics_content_type(req->fmt) : "text/plain; charset=utf-8",
	    body.len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!req->head)
		buf_append(&c->out, body.data, body.len);
	buf_free(&body);
	c->state = MH_WRITING;
	ev_io_stop(loop, &c->rio);
	client_restart_timer(c, METRICS_HTTP_TIMEOUT);
	client_flush(c);
}

static void
client_flush(struct mhttp_client *c)
{
	ssize_t w;
	size_t before = c->sent;

	while (c->sent < c->out.len) {
		w = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (c->sent > before)
					client_restart_timer(c, METRICS_HTTP_TIMEOUT);
				ev_io_start(loop, &c->wio);
				return;
			}
			if (errno == EPIPE || errno == ECONNRESET)
				log_debug("metrics client=%u reason=client-gone", c->id);
			else
				refusal(c->owner, "client=%u: write failed: %s", c->id,
				    strerror(errno));
			client_close(c, "write-error");
			return;
		}
		c->sent += (size_t)w;
	}
	client_linger(c);
}

/* Answered: shut our side and read what the client still sends until it closes (a
 * close with unread input would reset the connection and could lose the answer). */
static void
client_linger(struct mhttp_client *c)
{
	ev_io_stop(loop, &c->wio);
	buf_free(&c->out);
	if (shutdown(c->fd, SHUT_WR) == -1) {
		client_close(c, "done");
		return;
	}
	c->state = MH_LINGER;
	client_restart_timer(c, METRICS_HTTP_LINGER);
	ev_io_start(loop, &c->rio);
}

static void
client_write_cb(struct ev_loop *lp, ev_io *w, int revents)
{
	struct mhttp_client *c = w->data;

	if (c->magic != MHTTP_CLIENT_MAGIC)
		fatalx("metrics client write: bad magic");
	client_flush(c);
}
