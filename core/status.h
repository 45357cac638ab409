/* core/status.h - the unix status socket: one command per connection, table-driven.
 * SPDX-License-Identifier: ISC
 * main.c opens it; modules register their commands (route.c "show peers", stats.c
 * "show stats", resolver "show dns" ...). "help" is generated from the table. A client
 * sends one line, gets the answer ("name=value" lines) and the server closes. */
#ifndef QF_STATUS_H
#define QF_STATUS_H

#include "buf.h"

struct ev_loop;
struct status;

/* Handler: args is the rest of the line after the command words (may be ""); append the
 * answer to out. Return 0, or -1 to answer "error: <what you appended>". */
typedef int (*status_cmd_fn)(void *arg, const char *args, struct buf *out);

/* Create the socket at path (mode 0600, stale socket removed, parent must exist).
 * Returns NULL (logged) on failure. */
struct status *status_new(struct ev_loop *loop, const char *path);
void status_free(struct status *st);  /* closes clients, unlinks the socket */
/* Register "show peers" etc.; words is the full command, usage the help text. */
int status_register(struct status *st, const char *words, const char *usage,
    status_cmd_fn fn, void *arg);

#endif
