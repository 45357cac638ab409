/* core/reload.h - re-read the configuration while running (SIGHUP, "quickfedctl reload").
 * SPDX-License-Identifier: ISC
 * main.c hands over the config it started with; from then on this file owns the
 * config in effect. A reload builds everything new first (config, TLS credentials, new
 * listening sockets) and swaps only when all of it succeeded: a config with errors, a
 * certificate that does not load or an address that cannot be bound leaves the running
 * config as it was, and the reasons ("FILE:LINE: message") are logged and answered. */
#ifndef QF_RELOAD_H
#define QF_RELOAD_H

#include <stdio.h>

#include "buf.h"

struct config;
struct ev_loop;
struct status;
struct tls_ctx;

/* Take over cfg (the loader's reference), install SIGHUP and the "reload" status
 * command (st may be NULL). */
void reload_init(struct ev_loop *loop, struct config *cfg, struct tls_ctx *tls,
    struct status *st);
/* The config in effect (borrowed; valid until the next reload or reload_free). */
const struct config *reload_config(void);
/* Reload now from the file the config in effect was read from. Appends the answer to
 * out (may be NULL): "reload=ok" and a "warning: ..." line per keyword kept at its
 * running value, or, returning -1, why it was refused (one line per error). */
int reload_run(struct buf *out);
/* Shutdown has begun: reloads are refused from now on. */
void reload_shutdown(void);
/* Drop the reference on the config in effect (at exit, after the connections). */
void reload_free(void);

/* Keywords that only take effect at a restart (state_dir, status_socket,
 * dialback_secret, the resolver block, tls { session_store session_store_entries
 * ticket_key_file ticket_rotation }): where next differs from running, next gets the
 * running value back (so "show config" shows what is in effect) and a line
 * "warning: FILE: KEYWORD changed: takes effect at the next restart..." goes to warn
 * (may be NULL).
 * Returns the number of such keywords. */
int reload_keep_fixed(const struct config *running, struct config *next, FILE *warn);

#endif
