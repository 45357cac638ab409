/* core/status.h - the unix status socket: one command per connection, table-driven.
 * SPDX-License-Identifier: ISC
 * main.c opens it; modules register their commands (link.c "show peers", route.c
 * "show stats", resolver "show dns" ...). "help" is generated from the table. A client
 * sends one line, gets the answer ("name=value" lines) and the server closes. Answers
 * that grow with the daemon's state (a record per connection) are streamed: produced
 * part by part as the client reads, so they have no size limit and a client holds
 * little memory. */
#ifndef QF_STATUS_H
#define QF_STATUS_H

#include <stdint.h>

#include "buf.h"

struct ev_loop;
struct status;

/* Handler: args is the rest of the line after the command words (may be ""); append the
 * answer to out. Return 0, or -1 to answer "error: <what you appended>". The answer is
 * cut at 1 MiB (and says so): use a streaming handler for anything larger. */
typedef int (*status_cmd_fn)(void *arg, const char *args, struct buf *out);

/* The largest record a streaming handler appends in one piece. */
#define STATUS_RECORD_MAX 16384

/* Streaming handler: called for the first part of the answer with *cursor == 0, then
 * again each time the client has taken most of what came before, until it returns 0.
 * Each call appends whole records (lines ending in '\n', at most STATUS_RECORD_MAX
 * bytes each) while buf_room(out) >= STATUS_RECORD_MAX, and stores in *cursor where to
 * go on (it is the handler's own: e.g. the id of the last object listed; what came and
 * went between calls is the handler's to skip). Return 1 while more is to come, 0 when
 * the answer is complete; -1 on the first call answers "error: <what you appended>",
 * later it ends the answer with "error: answer incomplete". */
typedef int (*status_stream_fn)(void *arg, const char *args, struct buf *out,
    uint64_t *cursor);

/* Create the socket at path (mode 0600, stale socket removed, parent must exist).
 * Returns NULL (logged) on failure. */
struct status *status_new(struct ev_loop *loop, const char *path);
void status_free(struct status *st);  /* closes clients, unlinks the socket */
/* Register "show peers" etc.; words is the full command, usage the help text:
 * "WORDS [ARGS]: what it does" (e.g. "close link DOMAIN: reset ..."). "help" prints the
 * synopsis (words and arguments) once, then what it does; a usage that does not start
 * with the words is printed whole as what it does. */
int status_register(struct status *st, const char *words, const char *usage,
    status_cmd_fn fn, void *arg);
/* The same for a streaming handler. */
int status_register_stream(struct status *st, const char *words, const char *usage,
    status_stream_fn fn, void *arg);

#endif
