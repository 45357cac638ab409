/* s2s/targets.h - where to connect without DNS: the local server, or a peer's fixed address.
 * SPDX-License-Identifier: ISC
 * route.c and verify.c ask here first and resolve the domain (dns/resolver.c) only
 * when neither applies. */
#ifndef QF_TARGETS_H
#define QF_TARGETS_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct resolve_target;

/* The configured local server (local_server { address; port }). False when its address
 * is not numeric. */
bool targets_local_server(const struct config *cfg, struct resolve_target *t);
/* A `peer DOMAIN { address IP }` block replaces DNS for that domain. False when there is
 * none (or its address is not numeric). */
bool targets_static(const struct config *cfg, const char *domain, struct resolve_target *t);

#endif
