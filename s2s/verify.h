/* s2s/verify.h - dialback verifications: asking a domain's authoritative server (XEP-0220 §2.3).
 * SPDX-License-Identifier: ISC
 * A receiving stream that got a db:result hands the key here (through route.c). Jobs
 * for the same (local, remote) share one verification session: one resolution, one
 * connection, one db:verify per job, answers matched by stream id. A job is cancelled
 * when the stream that asked closes; the last job gone ends its session. Jobs are
 * capped in all by limits { verifications }. */
#ifndef QF_VERIFY_H
#define QF_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct config;
struct ev_loop;
struct resolver;

void verify_init(struct ev_loop *loop, const struct config *cfg, struct resolver *res);
/* Verify key for (local, remote) on receiving conn c's stream id. The verdict arrives
 * later through stream_dialback_verdict() on c's stream, if c still exists. Returns 0,
 * or -1 when limits { verifications } is reached (nothing started). */
int verify_start(struct conn *c, const char *local, const char *remote,
    const char *stream_id, const char *key);
/* The receiving connection with that id is gone: forget its jobs. */
void verify_cancel_conn(unsigned long conn_id);

/* Events of the verification connections (c->route is a session: verify_owns(c)). */
bool verify_owns(const struct conn *c);
void verify_conn_connected(struct conn *c);
void verify_conn_ready(struct conn *c);
void verify_conn_closed(struct conn *c);
void verify_answer(struct conn *c, const char *id, bool valid);

/* Jobs pending, sessions open (show stats). */
size_t verify_jobs(void);
size_t verify_sessions(void);
/* At exit. */
void verify_free_all(void);

#endif
