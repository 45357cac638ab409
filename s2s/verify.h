/* s2s/verify.h - dialback verifications: asking a domain's authoritative server (XEP-0220 §2.3).
 * SPDX-License-Identifier: ISC
 * A receiving link that got a db:result hands the key here (through route.c). Jobs
 * for the same (local, remote) share one verification session: one resolution, one
 * connection, one db:verify per job, answers matched by stream id. A job is cancelled
 * when the stream that asked closes; the last job gone ends its session. Jobs are
 * capped in all by limits { verifications }. */
#ifndef QF_VERIFY_H
#define QF_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/handle.h"

struct link;
struct config;
struct ev_loop;
struct resolver;

void verify_init(struct ev_loop *loop, const struct config *cfg, struct resolver *res);
/* Reload: peers and limits of cfg apply to verifications started from now on. */
void verify_set_config(const struct config *cfg);
/* Verify key for (local, remote) on receiving link l's stream id. The verdict arrives
 * later through link_dialback_verdict() on l, if l still exists (the job keeps l's
 * handle, not l). Returns 0, or -1 when limits { verifications } is reached (nothing
 * started). */
int verify_start(struct link *l, const char *local, const char *remote,
    const char *stream_id, const char *key);
/* The receiving link with that handle is gone: forget its jobs. */
void verify_cancel(struct handle asker);

/* Jobs pending, sessions open (show stats). */
size_t verify_jobs(void);
size_t verify_sessions(void);
/* At exit. */
void verify_free_all(void);

#endif
