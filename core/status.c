/* core/status.c - the unix status socket: one command per connection, table-driven.
 * SPDX-License-Identifier: ISC
 * main.c creates it with status_new() on the daemon's libev loop; modules add their
 * commands with status_register(). A client (quickfedctl, socat) sends one line, gets the
 * answer and the server closes. Only root and the daemon's own uid may connect; clients are
 * capped and each has a 5 s deadline (reading the command, then for each progress while
 * writing), so a stuck client cannot hold the socket. A streaming handler's answer is
 * produced in parts of at most STATUS_STREAM_PART bytes whenever fewer than
 * STATUS_STREAM_LOWAT bytes wait to be written: any size, bounded memory per client. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/status.h"

#define STATUS_MAGIC         0x51465354u  /* "QFST" */
#define STATUS_CLIENT_MAGIC  0x51465343u  /* "QFSC" */
#define STATUS_MAX_CLIENTS   16           /* concurrent clients; more wait in the backlog */
#define STATUS_LINE_MAX      1024         /* command line, without the newline */
#define STATUS_ANSWER_MAX    (1024 * 1024)  /* one-shot answers; larger ones are cut */
#define STATUS_STREAM_PART   (128 * 1024)   /* one call of a streaming handler, at most */
#define STATUS_STREAM_LOWAT  (64 * 1024)    /* produce more below this many unsent bytes */
#define STATUS_TIMEOUT       5.0          /* seconds per client, reading and writing */
#define STATUS_ACCEPT_RETRY  1.0          /* seconds before retrying accept after EMFILE */

struct status_cmd {
	char          *words;   /* owned; "show peers", single spaces */
	char          *usage;   /* owned; help text */
	size_t         nwords;
	status_cmd_fn  fn;      /* one-shot handler, or NULL */
	status_stream_fn more;  /* streaming handler, or NULL */
	void          *arg;     /* borrowed; passed to fn / more */
};

struct status_client {
	uint32_t              magic;
	struct status        *st;      /* owner */
	struct status_client *next, *prev;
	int                   fd;
	unsigned              id;
	ev_io                 rio, wio;
	ev_timer              timer;
	char                  line[STATUS_LINE_MAX + 2];  /* line + '\n' + NUL */
	size_t                linelen;
	struct buf            out;     /* the answer (streaming: its part not yet written) */
	size_t                sent;    /* bytes of out already written */
	/* streaming answer under way (more != NULL until the handler says it is complete) */
	status_stream_fn      more;
	void                 *more_arg;  /* borrowed */
	const char           *more_args; /* points into line */
	uint64_t              cursor;    /* the handler's */
	char                  last;      /* last byte of the answer so far */
};

struct status {
	uint32_t              magic;
	struct ev_loop       *loop;    /* borrowed */
	char                 *path;    /* owned */
	int                   fd;
	ev_io                 accept_io;
	ev_timer              retry;   /* accept restart after EMFILE with no client to wait for */
	bool                  paused;  /* accept stopped (cap or EMFILE) */
	struct status_cmd    *cmds;
	size_t                ncmds;
	struct status_client *clients;
	unsigned              nclients;
	unsigned              next_id;
};

static void status_accept_cb(struct ev_loop *, ev_io *, int);
static void status_retry_cb(struct ev_loop *, ev_timer *, int);
static void status_read_cb(struct ev_loop *, ev_io *, int);
static void status_write_cb(struct ev_loop *, ev_io *, int);
static void status_timeout_cb(struct ev_loop *, ev_timer *, int);
static void status_pause(struct status *, const char *);
static void status_resume(struct status *);
static void client_close(struct status_client *, const char *);
static void client_answer(struct status_client *);
static void client_pump(struct status_client *);
static int client_flush(struct status_client *);
static void client_produce(struct status_client *);
static int cmd_add(struct status *, const char *, const char *, status_cmd_fn,
    status_stream_fn, void *);
static void client_dispatch(struct status_client *);
static void client_write_failed(struct status_client *);
static const char *match_words(const char *, const char *);
static void split_usage(const struct status_cmd *, const char **, size_t *, const char **);
static int help_cmd(void *, const char *, struct buf *);
static size_t count_words(const char *);

struct status *
status_new(struct ev_loop *loop, const char *path)
{
	struct sockaddr_un sun;
	struct status *st;
	struct stat sb;
	mode_t old;
	int fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("status socket=%s reason=path-too-long", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);

	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			log_warnx("status socket=%s reason=exists-not-a-socket", path);
			return NULL;
		}
		/* A socket someone still listens on belongs to a running daemon. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (probe != -1 && (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
		    errno == EAGAIN)) {  /* EAGAIN: listening, backlog full */
			close(probe);
			log_warnx("status socket=%s reason=in-use", path);
			return NULL;
		}
		if (probe != -1)
			close(probe);
		if (unlink(path) == -1) {
			log_warn("status socket=%s reason=unlink-stale-failed", path);
			return NULL;
		}
	} else if (errno != ENOENT) {
		log_warn("status socket=%s reason=stat-failed", path);
		return NULL;
	}

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("status socket=%s reason=socket-failed", path);
		return NULL;
	}
	old = umask(077);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("status socket=%s reason=bind-failed", path);
		close(fd);
		return NULL;
	}
	umask(old);
	if (chmod(path, 0600) == -1 || listen(fd, STATUS_MAX_CLIENTS) == -1) {
		log_warn("status socket=%s reason=chmod-or-listen-failed", sun.sun_path);
		close(fd);
		unlink(path);
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->path = strdup(path)) == NULL) {
		log_warnx("status socket=%s reason=out-of-memory", sun.sun_path);
		free(st);
		close(fd);
		unlink(path);
		return NULL;
	}
	st->magic = STATUS_MAGIC;
	st->loop = loop;
	st->fd = fd;
	ev_io_init(&st->accept_io, status_accept_cb, fd, EV_READ);
	st->accept_io.data = st;
	ev_timer_init(&st->retry, status_retry_cb, STATUS_ACCEPT_RETRY, 0.);
	st->retry.data = st;
	ev_io_start(loop, &st->accept_io);
	if (status_register(st, "help", "help: list the commands", help_cmd, st) == -1) {
		status_free(st);
		return NULL;
	}
	log_debug("status socket=%s listening", path);
	return st;
}

void
status_free(struct status *st)
{
	if (st == NULL)
		return;
	while (st->clients != NULL)
		client_close(st->clients, "shutdown");
	ev_io_stop(st->loop, &st->accept_io);
	ev_timer_stop(st->loop, &st->retry);
	close(st->fd);
	if (unlink(st->path) == -1 && errno != ENOENT)
		log_warn("status socket=%s reason=unlink-failed", st->path);
	for (size_t i = 0; i < st->ncmds; i++) {
		free(st->cmds[i].words);
		free(st->cmds[i].usage);
	}
	free(st->cmds);
	free(st->path);
	st->magic = 0;
	free(st);
}

static size_t
count_words(const char *s)
{
	size_t n = 0;

	while (*s != '\0') {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		n++;
		while (*s != '\0' && *s != ' ' && *s != '\t')
			s++;
	}
	return n;
}

int
status_register(struct status *st, const char *words, const char *usage,
    status_cmd_fn fn, void *arg)
{
	if (fn == NULL)
		return -1;
	return cmd_add(st, words, usage, fn, NULL, arg);
}

int
status_register_stream(struct status *st, const char *words, const char *usage,
    status_stream_fn fn, void *arg)
{
	if (fn == NULL)
		return -1;
	return cmd_add(st, words, usage, NULL, fn, arg);
}

static int
cmd_add(struct status *st, const char *words, const char *usage, status_cmd_fn fn,
    status_stream_fn more, void *arg)
{
	struct status_cmd *n, *c;
	char *w, *p, *q;

	if (st == NULL || words == NULL || count_words(words) == 0)
		return -1;
	/* Normalise the words to single spaces, no leading or trailing blanks. */
	if ((w = malloc(strlen(words) + 1)) == NULL)
		return -1;
	for (p = w, q = (char *)words; *q != '\0';) {
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '\0')
			break;
		if (p != w)
			*p++ = ' ';
		while (*q != '\0' && *q != ' ' && *q != '\t')
			*p++ = *q++;
	}
	*p = '\0';
	for (size_t i = 0; i < st->ncmds; i++)
		if (strcmp(st->cmds[i].words, w) == 0) {
			log_warnx("status command='%s' reason=already-registered", w);
			free(w);
			return -1;
		}
	if ((n = realloc(st->cmds, (st->ncmds + 1) * sizeof(*n))) == NULL) {
		free(w);
		return -1;
	}
	st->cmds = n;
	c = &st->cmds[st->ncmds];
	if ((c->usage = strdup(usage != NULL ? usage : "")) == NULL) {
		free(w);
		return -1;
	}
	c->words = w;
	c->nwords = count_words(w);
	c->fn = fn;
	c->more = more;
	c->arg = arg;
	st->ncmds++;
	return 0;
}

/* A command's usage split for help: the synopsis (the words and their arguments, as
 * "close link DOMAIN") and what it does. usage reads "WORDS [ARGS]: what it does"; one
 * that does not start with the words is all description (the synopsis is the words). */
static void
split_usage(const struct status_cmd *c, const char **syn, size_t *synlen, const char **desc)
{
	size_t wl = strlen(c->words);
	const char *u = c->usage, *colon;

	*syn = c->words;
	*synlen = wl;
	*desc = u;
	if (strncmp(u, c->words, wl) != 0 || (u[wl] != '\0' && u[wl] != ':' && u[wl] != ' '))
		return;
	*syn = u;
	if ((colon = strchr(u + wl, ':')) == NULL) {
		*synlen = strlen(u);
		*desc = "";
		return;
	}
	*synlen = (size_t)(colon - u);
	while (*synlen > wl && u[*synlen - 1] == ' ')
		(*synlen)--;
	for (*desc = colon + 1; **desc == ' '; (*desc)++)
		;
}

/* Each command once: its synopsis, two spaces or more, what it does. */
static int
help_cmd(void *arg, const char *args, struct buf *out)
{
	struct status *st = arg;
	const char *syn, *desc;
	size_t width = 0, len;

	for (size_t i = 0; i < st->ncmds; i++) {
		split_usage(&st->cmds[i], &syn, &len, &desc);
		if (len > width)
			width = len;
	}
	for (size_t i = 0; i < st->ncmds; i++) {
		split_usage(&st->cmds[i], &syn, &len, &desc);
		buf_printf(out, "%.*s%*s  %s\n", (int)len, syn, (int)(width - len), "", desc);
	}
	return 0;
}

static void
status_pause(struct status *st, const char *reason)
{
	if (st->paused)
		return;
	st->paused = true;
	ev_io_stop(st->loop, &st->accept_io);
	log_debug("status socket=%s accept paused reason=%s clients=%u", st->path, reason,
	    st->nclients);
	/* With no client whose close would resume us, retry on a timer. */
	if (st->nclients == 0)
		ev_timer_start(st->loop, &st->retry);
}

static void
status_resume(struct status *st)
{
	if (!st->paused)
		return;
	st->paused = false;
	ev_timer_stop(st->loop, &st->retry);
	ev_io_start(st->loop, &st->accept_io);
}

static void
status_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct status *st = w->data;

	if (st->magic != STATUS_MAGIC)
		fatalx("status retry: bad magic");
	status_resume(st);
}

static void
status_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct status *st = w->data;
	struct status_client *c;
	struct ucred cred;
	socklen_t len;
	int fd;

	if (st->magic != STATUS_MAGIC)
		fatalx("status accept: bad magic");
	for (int n = 0; n < STATUS_MAX_CLIENTS; n++) {
		if (st->nclients >= STATUS_MAX_CLIENTS) {
			status_pause(st, "client-cap");
			return;
		}
		fd = accept4(st->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_warn("status socket=%s reason=accept-failed", st->path);
				status_pause(st, "out-of-fds");
				return;
			}
			log_warn("status socket=%s reason=accept-failed", st->path);
			return;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
			log_warn("status socket=%s reason=peercred-failed", st->path);
			close(fd);
			continue;
		}
		if (cred.uid != 0 && cred.uid != getuid()) {
			log_warnx("status socket=%s reason=uid-refused uid=%u pid=%d", st->path,
			    (unsigned)cred.uid, (int)cred.pid);
			close(fd);
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			log_warnx("status socket=%s reason=out-of-memory", st->path);
			close(fd);
			continue;
		}
		c->magic = STATUS_CLIENT_MAGIC;
		c->st = st;
		c->fd = fd;
		c->id = ++st->next_id;
		buf_init(&c->out, STATUS_ANSWER_MAX + 64);
		ev_io_init(&c->rio, status_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, status_write_cb, fd, EV_WRITE);
		ev_timer_init(&c->timer, status_timeout_cb, STATUS_TIMEOUT, 0.);
		c->rio.data = c->wio.data = c->timer.data = c;
		c->next = st->clients;
		if (st->clients != NULL)
			st->clients->prev = c;
		st->clients = c;
		st->nclients++;
		ev_io_start(loop, &c->rio);
		ev_timer_start(loop, &c->timer);
		log_trace("status client=%u accepted uid=%u pid=%d", c->id, (unsigned)cred.uid,
		    (int)cred.pid);
	}
}

static void
client_close(struct status_client *c, const char *reason)
{
	struct status *st = c->st;

	log_trace("status client=%u closed reason=%s", c->id, reason);
	ev_io_stop(st->loop, &c->rio);
	ev_io_stop(st->loop, &c->wio);
	ev_timer_stop(st->loop, &c->timer);
	close(c->fd);
	buf_free(&c->out);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		st->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	st->nclients--;
	c->magic = 0;
	free(c);
	status_resume(st);
}

static void
status_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct status_client *c = w->data;

	if (c->magic != STATUS_CLIENT_MAGIC)
		fatalx("status timeout: bad magic");
	log_debug("status client=%u reason=timeout", c->id);
	client_close(c, "timeout");
}

static void
status_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct status_client *c = w->data;
	size_t room = sizeof(c->line) - 1 - c->linelen;
	char *nl;
	ssize_t r;

	if (c->magic != STATUS_CLIENT_MAGIC)
		fatalx("status read: bad magic");
	r = read(c->fd, c->line + c->linelen, room);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_warn("status client=%u reason=read-failed", c->id);
		client_close(c, "read-error");
		return;
	}
	c->linelen += (size_t)r;
	c->line[c->linelen] = '\0';
	if ((nl = memchr(c->line, '\n', c->linelen)) != NULL) {
		*nl = '\0';
		c->linelen = (size_t)(nl - c->line);
	} else if (r == 0) {
		/* EOF without a newline: "printf 'help' | socat" still gets an answer. */
	} else if (c->linelen < sizeof(c->line) - 1) {
		return;  /* more to come */
	}
	ev_io_stop(loop, &c->rio);
	if (c->linelen > STATUS_LINE_MAX) {
		log_debug("status client=%u reason=line-too-long", c->id);
		buf_puts(&c->out, "error: line too long\n");
	} else {
		if (memchr(c->line, '\0', c->linelen) != NULL) {
			buf_puts(&c->out, "error: NUL in command\n");
		} else {
			if (c->linelen > 0 && c->line[c->linelen - 1] == '\r')
				c->line[--c->linelen] = '\0';
			client_dispatch(c);
		}
	}
	client_answer(c);
}

/* If line starts with words (at word boundaries, any run of blanks between them), return
 * the rest of the line after them; else NULL. */
static const char *
match_words(const char *words, const char *line)
{
	const char *w = words, *l = line;

	for (;;) {
		while (*l == ' ' || *l == '\t')
			l++;
		while (*w != '\0' && *w != ' ') {
			if (*l != *w)
				return NULL;
			w++;
			l++;
		}
		if (*l != '\0' && *l != ' ' && *l != '\t')
			return NULL;
		if (*w == '\0')
			return l;
		w++;  /* the single space between registered words */
	}
}

static void
client_dispatch(struct status_client *c)
{
	struct status *st = c->st;
	struct status_cmd *best = NULL;
	const char *rest = NULL, *r;
	char *args, *end, *p;
	struct buf body;
	size_t n;
	int rc;

	for (size_t i = 0; i < st->ncmds; i++) {
		if ((r = match_words(st->cmds[i].words, c->line)) == NULL)
			continue;
		if (best == NULL || st->cmds[i].nwords > best->nwords) {
			best = &st->cmds[i];
			rest = r;
		}
	}
	if (best == NULL) {
		p = c->line;
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		for (char *q = p; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				*q = '?';
		if (*p == '\0')
			buf_puts(&c->out, "error: empty command (try help)\n");
		else
			buf_printf(&c->out, "error: unknown command '%s' (try help)\n", p);
		log_debug("status client=%u reason=unknown-command", c->id);
		return;
	}

	/* args: the rest, trimmed. It lives in c->line, which we own. */
	args = (char *)rest;
	while (*args == ' ' || *args == '\t')
		args++;
	end = args + strlen(args);
	while (end > args && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';

	log_debug("status client=%u command='%s' args='%s'", c->id, best->words, args);
	if (best->more != NULL) {
		/* streamed: the first part now, the rest as the client reads */
		buf_init(&body, STATUS_STREAM_PART);
		rc = best->more(best->arg, args, &body, &c->cursor);
		if (rc == 1 && body.len == 0)
			rc = -1;   /* no progress: do not loop */
		if (rc == 1) {
			c->more = best->more;
			c->more_arg = best->arg;
			c->more_args = args;
			buf_append(&c->out, body.data, body.len);
			c->last = body.data[body.len - 1];
			buf_free(&body);
			return;
		}
	} else {
		buf_init(&body, STATUS_ANSWER_MAX);
		rc = best->fn(best->arg, args, &body);
	}
	if (rc == -1)
		buf_puts(&c->out, "error: ");
	if (body.len > 0)
		buf_append(&c->out, body.data, body.len);
	n = c->out.len;
	/* An append that did not fit was refused; near the cap, say so. */
	if (best->fn != NULL && buf_room(&body) < 4096)
		buf_puts(&c->out, "\nerror: answer truncated\n");
	else if (rc == -1 && body.len == 0)
		buf_puts(&c->out, "failed\n");
	else if (n > 0 && c->out.data[n - 1] != '\n')
		buf_puts(&c->out, "\n");
	buf_free(&body);
}

/* Returns 1 when everything is written, 0 when the socket is full, -1 on error. Each
 * write that makes progress restarts the client's deadline. */
static int
client_flush(struct status_client *c)
{
	struct status *st = c->st;
	size_t before = c->sent;
	ssize_t w;
	int rc = 1;

	while (c->sent < c->out.len) {
		w = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
			break;
		}
		c->sent += (size_t)w;
	}
	if (c->sent > before) {
		ev_timer_stop(st->loop, &c->timer);
		ev_timer_set(&c->timer, STATUS_TIMEOUT, 0.);
		ev_timer_start(st->loop, &c->timer);
	}
	return rc;
}

/* Streaming: drop what was written, then have the handler append parts until
 * STATUS_STREAM_LOWAT bytes wait or the answer is complete. */
static void
client_produce(struct status_client *c)
{
	struct buf part;
	int rc;

	buf_consume(&c->out, c->sent);
	c->sent = 0;
	while (c->more != NULL && c->out.len < STATUS_STREAM_LOWAT) {
		buf_init(&part, STATUS_STREAM_PART);
		rc = c->more(c->more_arg, c->more_args, &part, &c->cursor);
		if (part.len > 0) {
			buf_append(&c->out, part.data, part.len);
			c->last = part.data[part.len - 1];
		}
		if (rc == 1 && part.len == 0)
			rc = -1;   /* no progress: do not loop */
		buf_free(&part);
		if (rc == 1)
			continue;
		c->more = NULL;
		if (rc == -1) {
			log_warnx("status client=%u reason=stream-handler-failed", c->id);
			buf_puts(&c->out, "\nerror: answer incomplete\n");
		} else if (c->last != '\n') {
			buf_puts(&c->out, "\n");
		}
	}
}

static void
client_write_failed(struct status_client *c)
{
	/* A client that went away before its answer is routine, not a warning. */
	if (errno == EPIPE || errno == ECONNRESET)
		log_debug("status client=%u reason=client-gone", c->id);
	else
		log_warn("status client=%u reason=write-failed", c->id);
	client_close(c, "write-error");
}

/* Write what is pending, producing more of a streamed answer as the client takes it;
 * close the client once the whole answer is written. */
static void
client_pump(struct status_client *c)
{
	for (;;) {
		int rc = client_flush(c);

		if (rc == -1) {
			client_write_failed(c);
			return;
		}
		if (rc == 0) {
			ev_io_start(c->st->loop, &c->wio);
			return;
		}
		if (c->more == NULL) {
			client_close(c, "done");
			return;
		}
		client_produce(c);
	}
}

static void
client_answer(struct status_client *c)
{
	struct status *st = c->st;

	/* The deadline restarts for writing the answer. */
	ev_timer_stop(st->loop, &c->timer);
	ev_timer_set(&c->timer, STATUS_TIMEOUT, 0.);
	ev_timer_start(st->loop, &c->timer);
	client_pump(c);
}

static void
status_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct status_client *c = w->data;

	if (c->magic != STATUS_CLIENT_MAGIC)
		fatalx("status write: bad magic");
	client_pump(c);
}
